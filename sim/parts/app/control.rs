//! `WorkloadControl`: a runtime multiplier on the client's `jobs_per_second`, shared between
//! the harness and the API, so a fault can burst the load for a window (ARCHITECTURE.md §3,
//! `backpressure`: a load burst).
//!
//! Why a factor and not a new rate: a burst is "N times the usual traffic"; the scenario's
//! `[workload] jobs_per_second` stays the one statement of the usual rate. The client reads
//! the factor before drawing each inter-arrival gap, so arrivals stay a Poisson process
//! whose rate changes at the next arrival after a change.

use std::sync::{Arc, Mutex};

/// Largest factor a burst may ask for: every loop's rate stays bounded.
pub(crate) const RATE_FACTOR_MAX: f64 = 1_000.0;

/// A handle on the multiplier; clones share it. `WorkloadControl::new()` is inert (×1).
#[derive(Clone, Debug)]
pub struct WorkloadControl {
    factor: Arc<Mutex<f64>>,
}

impl Default for WorkloadControl {
    fn default() -> Self {
        WorkloadControl { factor: Arc::new(Mutex::new(1.0)) }
    }
}

impl WorkloadControl {
    /// The configured rate, unchanged.
    pub fn new() -> Self {
        WorkloadControl::default()
    }

    /// Multiplies `jobs_per_second` by `factor` (1.0 restores it).
    pub(crate) fn set_rate_factor(&self, factor: f64) -> Result<(), String> {
        if !(factor.is_finite() && factor > 0.0 && factor <= RATE_FACTOR_MAX) {
            return Err(format!("jobs_per_second factor {factor} must be above 0 and at most {RATE_FACTOR_MAX}"));
        }
        *self.factor.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = factor;
        Ok(())
    }

    /// The current multiplier.
    pub fn rate_factor(&self) -> f64 {
        *self.factor.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
