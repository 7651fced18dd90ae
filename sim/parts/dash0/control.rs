//! Scripted misbehaviour: the fault injector (or a test) makes Dash0 answer errors, answer
//! slowly, or rate-limit, between steps of the world.
//!
//! Why a shared handle and not config: faults start and stop during a run (`dash0_errors`
//! at 5 m for 90 s). The handle lives outside the Dash0 host, like its store, so a script
//! survives a restart of the host. Dash0 reads it on every request and records every change
//! in the event log when it notices it (the watcher in `run`).

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

use super::store::Transport;
use crate::proto::otlp::Signal;

/// Answer a fraction of requests with an error status.
#[derive(Clone, Debug, PartialEq)]
pub struct ScriptedErrors {
    /// HTTP status to answer (400..=599; e.g. 503, 502, 504, 500, 429, 400, 413). Over gRPC
    /// it becomes the code the OTLP specification pairs with it (see `refusal.rs`).
    pub status: u16,
    /// Fraction of requests refused, 0.0..=1.0, drawn per request from Dash0's random stream.
    pub rate: f64,
    /// Sent as `Retry-After` (whole seconds, rounded up) over HTTP and as `RetryInfo` over gRPC.
    pub retry_after: Option<Duration>,
}

/// Which requests an error script hits: `None` in a field means every value of it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ErrorScope {
    /// Only requests of this signal.
    pub signal: Option<Signal>,
    /// Only requests over this protocol.
    pub transport: Option<Transport>,
}

impl ErrorScope {
    /// Whether a request of `signal` over `transport` is in scope.
    pub fn covers(&self, signal: Signal, transport: Transport) -> bool {
        self.signal.is_none_or(|own| own == signal) && self.transport.is_none_or(|own| own == transport)
    }
}

/// One active error script and the requests it hits. Several may be active at once
/// (overlapping `dash0_errors` faults), earliest-scheduled first.
#[derive(Clone, Debug, PartialEq)]
pub struct ErrorScript {
    pub errors: ScriptedErrors,
    pub scope: ErrorScope,
}

/// Delay every answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slowness {
    /// How long Dash0 takes to answer.
    pub delay: Duration,
    /// Store the request at once and answer after the delay (a client that gives up first
    /// has its batch stored anyway and retries it: a duplicate). Else the delay comes before
    /// Dash0 looks at the request, so a client that gives up first has nothing stored.
    pub stores_before_delay: bool,
}

/// Admit at most this many records per second (token bucket, one second of burst); requests
/// beyond the budget get 429.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    /// Records (log records, spans, data points) per second.
    pub(crate) records_per_second: u64,
}

/// Everything scripted right now; `Behaviour::default()` is a healthy Dash0.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Behaviour {
    /// Every active error script, earliest-scheduled first; a request fails if any script
    /// covering it fires, with the status of the first that fires.
    pub errors: Vec<ErrorScript>,
    pub slow: Option<Slowness>,
    pub(crate) rate_limit: Option<RateLimit>,
}

impl fmt::Display for Behaviour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.errors.is_empty() {
            f.write_str("errors off")?;
        }
        for (position, ErrorScript { errors: e, scope }) in self.errors.iter().enumerate() {
            if position > 0 {
                f.write_str(" + ")?;
            }
            write!(f, "errors status {} rate {}", e.status, e.rate)?;
            if let Some(after) = e.retry_after {
                write!(f, " retry_after {}ms", after.as_millis())?;
            }
            if let Some(signal) = scope.signal {
                write!(f, " signal {}", signal.as_str())?;
            }
            if let Some(transport) = scope.transport {
                write!(f, " protocol {}", transport.as_str())?;
            }
        }
        match &self.slow {
            Some(s) => {
                write!(f, ", slow {}ms", s.delay.as_millis())?;
                if s.stores_before_delay {
                    f.write_str(" storing before the delay")?;
                }
            }
            None => f.write_str(", slow off")?,
        }
        match &self.rate_limit {
            Some(r) => write!(f, ", rate_limit {}/s", r.records_per_second),
            None => f.write_str(", rate_limit off"),
        }
    }
}

/// A scripted behaviour that breaks a rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ControlError(pub String);

impl fmt::Display for ControlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ControlError {}

/// The shared script. Cloning shares it.
#[derive(Clone, Default)]
pub struct Dash0Control {
    inner: Arc<ControlInner>,
}

#[derive(Default)]
struct ControlInner {
    state: Mutex<ControlState>,
    /// Wakes Dash0's watcher so that it records the change.
    changed: Notify,
}

#[derive(Default)]
struct ControlState {
    behaviour: Behaviour,
    /// Bumped on every change; the watcher records each generation it has not seen.
    generation: u64,
}

impl Dash0Control {
    /// A healthy Dash0.
    pub fn new() -> Self {
        Dash0Control::default()
    }

    /// Answer `errors.rate` of every request with `errors.status`, or stop (`None`).
    pub fn set_errors(&self, errors: Option<ScriptedErrors>) -> Result<(), ControlError> {
        let scripts = errors.into_iter().map(|errors| ErrorScript { errors, scope: ErrorScope::default() }).collect();
        self.set_error_scripts(scripts)
    }

    /// Every active error script at once, earliest-scheduled first (none: healthy).
    pub(crate) fn set_error_scripts(&self, scripts: Vec<ErrorScript>) -> Result<(), ControlError> {
        for ErrorScript { errors: e, .. } in &scripts {
            if !(400..=599).contains(&e.status) {
                return Err(ControlError(format!("dash0 errors.status {} must be a 4xx or 5xx status", e.status)));
            }
            if !(0.0..=1.0).contains(&e.rate) {
                return Err(ControlError(format!("dash0 errors.rate {} must be within 0.0..=1.0", e.rate)));
            }
        }
        self.update(|behaviour| behaviour.errors = scripts);
        Ok(())
    }

    /// Delay every answer by `delay` (storing after the delay), or stop (`None`).
    pub fn set_slow(&self, delay: Option<Duration>) {
        self.set_slowness(delay.map(|delay| Slowness { delay, stores_before_delay: false }));
    }

    /// Delay every answer as `slowness` says, or stop (`None`).
    pub(crate) fn set_slowness(&self, slowness: Option<Slowness>) {
        self.update(|behaviour| behaviour.slow = slowness);
    }

    /// Admit at most `records_per_second`, or stop (`None`).
    pub fn set_rate_limit(&self, records_per_second: Option<u64>) -> Result<(), ControlError> {
        if records_per_second == Some(0) {
            return Err(ControlError("dash0 rate_limit.records_per_second must be at least 1".to_string()));
        }
        self.update(|behaviour| behaviour.rate_limit = records_per_second.map(|r| RateLimit { records_per_second: r }));
        Ok(())
    }

    /// Back to healthy: no errors, no delay, no rate limit.
    pub fn heal(&self) {
        self.update(|behaviour| *behaviour = Behaviour::default());
    }

    /// What is scripted now.
    pub fn behaviour(&self) -> Behaviour {
        self.lock().behaviour.clone()
    }

    /// The behaviour with its generation, for the watcher.
    pub(crate) fn snapshot(&self) -> (u64, Behaviour) {
        let state = self.lock();
        (state.generation, state.behaviour.clone())
    }

    /// Waits for the next change (returns at once if one happened since the last wait).
    pub(crate) async fn changed(&self) {
        self.inner.changed.notified().await;
    }

    fn update(&self, change: impl FnOnce(&mut Behaviour)) {
        let mut state = self.lock();
        change(&mut state.behaviour);
        state.generation += 1;
        drop(state);
        // notify_one keeps a permit if the watcher is not waiting right now.
        self.inner.changed.notify_one();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ControlState> {
        self.inner.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_what_no_server_would_answer() {
        let control = Dash0Control::new();
        let error = control.set_errors(Some(ScriptedErrors { status: 200, rate: 1.0, retry_after: None })).unwrap_err();
        assert!(error.0.contains("4xx or 5xx"), "{error}");
        let error = control.set_errors(Some(ScriptedErrors { status: 503, rate: 1.5, retry_after: None })).unwrap_err();
        assert!(error.0.contains("0.0..=1.0"), "{error}");
        assert!(control.set_rate_limit(Some(0)).is_err());
        assert_eq!(control.behaviour(), Behaviour::default());
    }

    #[test]
    fn clones_share_the_script_and_every_change_bumps_the_generation() {
        let control = Dash0Control::new();
        let injector = control.clone();
        injector.set_slow(Some(Duration::from_secs(2)));
        injector.set_rate_limit(Some(100)).unwrap();
        let (generation, behaviour) = control.snapshot();
        assert_eq!(generation, 2);
        assert_eq!(behaviour.to_string(), "errors off, slow 2000ms, rate_limit 100/s");
        injector.heal();
        assert_eq!(control.behaviour(), Behaviour::default());
    }
}
