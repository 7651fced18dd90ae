//! Each host's own clock: true simulated time bent by offset, drift and steps.
//!
//! Why: real pipelines break on clock skew (Dash0 refuses timestamps more than 6 h old or
//! 3 days ahead; latency measured from a skewed stamp lies). Every part stamps what it
//! writes with its host's `Clock`, never with true time, while the checkers measure with
//! true time. The fault injector bends a clock from outside the host, so the state is shared
//! behind a lock (everything runs on turmoil's one thread; the lock is never contended).
//!
//! host time = epoch + true elapsed + offset + drift · (true elapsed − drift start)
//!
//! A step adds to the offset at once; a drift change first folds the drift accumulated so
//! far into the offset, so host time is continuous across drift changes.

use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Nanoseconds in a second, for the drift arithmetic.
const NANOS_PER_SECOND: i128 = 1_000_000_000;

/// Parts per billion in a part per million: drift is configured in ppm, kept in ppb so the
/// arithmetic stays in integers (floating point would be deterministic too, but integers
/// make the pinned values in tests exact).
const PPB_PER_PPM: f64 = 1_000.0;

/// A host's clock. Cloning shares it: the host reads it, the fault injector bends it.
#[derive(Clone, Debug)]
pub struct Clock {
    /// Unix time in nanoseconds at true elapsed zero: the world's fixed epoch.
    epoch_unix_nanos: u64,
    state: Arc<Mutex<ClockState>>,
}

/// How far this clock is bent from true time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct ClockState {
    /// Offset from true time, including every step and all drift folded in so far.
    offset_nanos: i64,
    /// Current drift rate in parts per billion (positive: the clock runs fast).
    drift_ppb: i64,
    /// True elapsed time at which the current drift rate began.
    drift_start_nanos: u64,
}

impl Clock {
    /// A clock that reads true time until it is bent.
    pub fn new(epoch_unix_nanos: u64) -> Self {
        Clock { epoch_unix_nanos, state: Arc::new(Mutex::new(ClockState::default())) }
    }

    /// True Unix time at the given true elapsed time: what the checkers use.
    pub(crate) fn true_unix_nanos(&self, true_elapsed: Duration) -> u64 {
        self.epoch_unix_nanos.saturating_add(duration_nanos(true_elapsed))
    }

    /// This host's Unix time in nanoseconds at the given true elapsed time.
    ///
    /// Saturates at zero and `u64::MAX` rather than wrapping: a clock skewed before 1970 is
    /// a scenario error caught at validation, never a silent wrap.
    pub(crate) fn unix_nanos_at(&self, true_elapsed: Duration) -> u64 {
        let state = *self.lock();
        let elapsed_nanos = duration_nanos(true_elapsed);
        let drift_nanos = drift_nanos(state.drift_ppb, elapsed_nanos.saturating_sub(state.drift_start_nanos));
        let host_nanos = i128::from(self.epoch_unix_nanos)
            + i128::from(elapsed_nanos)
            + i128::from(state.offset_nanos)
            + drift_nanos;
        host_nanos.clamp(0, i128::from(u64::MAX)) as u64
    }

    /// This host's Unix time now, in nanoseconds. Call it from inside a simulated host
    /// (parts do): it reads turmoil's simulated elapsed time, never the machine's clock.
    pub fn now_unix_nanos(&self) -> u64 {
        self.unix_nanos_at(true_elapsed_now())
    }

    /// The clock's offset from true time at `true_elapsed`, drift included: for reports and
    /// for tests that a skew was applied as configured.
    pub fn skew_nanos_at(&self, true_elapsed: Duration) -> i128 {
        i128::from(self.unix_nanos_at(true_elapsed)) - i128::from(self.true_unix_nanos(true_elapsed))
    }

    /// Jump the clock by `delta_nanos` at once (an NTP step, a VM resume).
    pub fn step(&self, delta_nanos: i64) {
        let mut state = self.lock();
        state.offset_nanos = state.offset_nanos.saturating_add(delta_nanos);
    }

    /// Set the offset from true time, discarding earlier steps (drift so far is kept).
    pub fn set_offset(&self, true_elapsed: Duration, offset_nanos: i64) {
        let mut state = self.lock();
        fold_drift(&mut state, duration_nanos(true_elapsed));
        state.offset_nanos = offset_nanos;
    }

    /// Change the drift rate from `true_elapsed` on; the drift accumulated so far stays.
    pub fn set_drift_ppm(&self, true_elapsed: Duration, drift_ppm: f64) {
        assert!(drift_ppm.is_finite(), "clock drift must be a finite number of ppm");
        let mut state = self.lock();
        fold_drift(&mut state, duration_nanos(true_elapsed));
        state.drift_ppb = (drift_ppm * PPB_PER_PPM).round() as i64;
    }

    /// Bend the clock to read `offset_nanos` off true time at `true_elapsed`, drifting at
    /// `drift_ppm` from then on: what the fault injector sets when the set of clock faults
    /// on this host changes (it computes both from every fault in force). Host time jumps
    /// only by the difference between the old and the new offset at `true_elapsed`.
    pub fn bend(&self, true_elapsed: Duration, offset_nanos: i64, drift_ppm: f64) {
        self.set_offset(true_elapsed, offset_nanos);
        self.set_drift_ppm(true_elapsed, drift_ppm);
    }

    /// Straighten the clock: no offset, no drift (a healed clock_skew fault).
    pub fn reset(&self, true_elapsed: Duration) {
        let mut state = self.lock();
        *state = ClockState { offset_nanos: 0, drift_ppb: 0, drift_start_nanos: duration_nanos(true_elapsed) };
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ClockState> {
        // A poisoned lock means a panic already happened mid-update; the state is plain data
        // and still consistent, so keep reading it rather than panic twice.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Moves the drift accumulated up to `now_nanos` into the offset and restarts drift there.
fn fold_drift(state: &mut ClockState, now_nanos: u64) {
    let accumulated = drift_nanos(state.drift_ppb, now_nanos.saturating_sub(state.drift_start_nanos));
    let offset = i128::from(state.offset_nanos) + accumulated;
    state.offset_nanos = offset.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64;
    state.drift_start_nanos = now_nanos;
}

/// Nanoseconds a clock drifting at `drift_ppm` gains (or loses) over `span`, with the same
/// integer arithmetic the clock itself uses: for the fault injector's bookkeeping of each
/// skew's own accumulated drift.
pub fn drift_nanos_over(drift_ppm: f64, span: Duration) -> i128 {
    assert!(drift_ppm.is_finite(), "clock drift must be a finite number of ppm");
    drift_nanos((drift_ppm * PPB_PER_PPM).round() as i64, duration_nanos(span))
}

/// Nanoseconds gained (or lost) over `span_nanos` at `drift_ppb`.
fn drift_nanos(drift_ppb: i64, span_nanos: u64) -> i128 {
    i128::from(drift_ppb) * i128::from(span_nanos) / NANOS_PER_SECOND
}

/// A duration in nanoseconds; simulated runs are far below the 584 years that overflow u64.
fn duration_nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

/// True simulated time since the run began, read from inside a host. In live mode
/// (`obsim serve`, `net/live.rs`) the real time since the live runtime started.
///
/// Panics outside a simulation or a live run: reading time there is a programming error
/// (the machine's clock would make the run irreproducible), and no input can cause it.
pub fn true_elapsed_now() -> Duration {
    if let Some(elapsed) = super::net::live::elapsed() {
        return elapsed;
    }
    turmoil::sim_elapsed().expect("true time is read only from inside a simulated host")
}

#[cfg(test)]
mod tests {
    use super::*;

    const EPOCH: u64 = 1_767_225_600 * 1_000_000_000;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn an_unbent_clock_reads_true_time() {
        let clock = Clock::new(EPOCH);
        assert_eq!(clock.unix_nanos_at(secs(90)), EPOCH + 90_000_000_000);
        assert_eq!(clock.skew_nanos_at(secs(90)), 0);
    }

    #[test]
    fn offset_and_drift_read_as_configured() {
        let clock = Clock::new(EPOCH);
        clock.set_offset(secs(0), -120_000_000_000); // two minutes behind
        clock.set_drift_ppm(secs(100), 50.0); // 50 µs fast per second from t = 100 s
        // At t = 100 s no drift has accumulated yet.
        assert_eq!(clock.skew_nanos_at(secs(100)), -120_000_000_000);
        // 1000 s later: 1000 s · 50 ppm = 50 ms gained.
        assert_eq!(clock.skew_nanos_at(secs(1100)), -120_000_000_000 + 50_000_000);
        assert_eq!(clock.unix_nanos_at(secs(1100)), EPOCH + 1_100_000_000_000 - 120_000_000_000 + 50_000_000);
    }

    #[test]
    fn drift_changes_keep_host_time_continuous() {
        let clock = Clock::new(EPOCH);
        clock.set_drift_ppm(secs(0), 1000.0); // 1 ms per second
        let before = clock.unix_nanos_at(secs(10));
        clock.set_drift_ppm(secs(10), -1000.0);
        assert_eq!(clock.unix_nanos_at(secs(10)), before, "a drift change must not jump the clock");
        assert_eq!(clock.skew_nanos_at(secs(10)), 10_000_000);
        assert_eq!(clock.skew_nanos_at(secs(20)), 0);
    }

    #[test]
    fn steps_add_and_reset_heals() {
        let clock = Clock::new(EPOCH);
        clock.step(3_600_000_000_000);
        clock.step(-600_000_000_000);
        assert_eq!(clock.skew_nanos_at(secs(5)), 3_000_000_000_000);
        clock.reset(secs(5));
        assert_eq!(clock.skew_nanos_at(secs(500)), 0);
    }

    #[test]
    fn clones_share_one_clock() {
        let host_side = Clock::new(EPOCH);
        let injector_side = host_side.clone();
        injector_side.step(7);
        assert_eq!(host_side.skew_nanos_at(secs(1)), 7);
    }

    #[test]
    fn a_clock_skewed_before_1970_saturates_instead_of_wrapping() {
        let clock = Clock::new(1_000);
        clock.step(-1_000_000);
        assert_eq!(clock.unix_nanos_at(secs(0)), 0);
    }
}
