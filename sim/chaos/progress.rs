//! What a running sweep says about itself: the phase it is in (from the sweep and the
//! shrinker) and the text of a progress line (runs done of planned, failures, rate, ETA,
//! phase).
//!
//! Why the text is made here from numbers the caller passes: the wall clock stays outside
//! `sim/` (ARCHITECTURE.md §2); `obsim chaos` (sim/main.rs) reads it and hands the elapsed
//! time in. The text is then a pure function a unit test can pin.

use std::fmt;
use std::time::Duration;

use super::sweep::SweepRun;

/// Runs that must be done before an ETA is given: one run says little (it may have been
/// shrunk, or be the shortest), so before this many the line says "eta unknown".
pub const ETA_RUNS_MIN: u64 = 3;

/// The longest ETA given as a number; beyond it the line says "eta > 24h" rather than a
/// figure like `70y` no one acts on.
pub const ETA_SHOWN_MAX: Duration = Duration::from_secs(24 * 3600);

/// What a sweep is doing right now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase<'a> {
    /// Running the case of `scenario` at `seed`.
    Run { scenario: &'a str, seed: u64 },
    /// Shrinking the failure of `scenario` at `seed`: candidate `step` of at most
    /// `steps_max` (the `--shrink-runs` bound).
    Shrink { scenario: &'a str, seed: u64, step: u32, steps_max: u32 },
}

impl fmt::Display for Phase<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Phase::Run { scenario, seed } => write!(f, "run {scenario} seed {seed}"),
            Phase::Shrink { scenario, seed, step, steps_max } => {
                write!(f, "shrinking {scenario} seed {seed} step {step}/{steps_max}")
            }
        }
    }
}

/// What a sweep tells its caller as it goes, and asks it (a time budget). Every method has
/// a default, so an observer names only what it wants. Called from the sweep's threads.
pub trait SweepObserver: Sync {
    /// Whether to start another run (`--time`: false once the budget is spent).
    fn keep_going(&self) -> bool {
        true
    }

    /// Whether shrinking may try another candidate (`--time` bounds shrinking too: false
    /// cuts it short, keeping the smallest failing case so far).
    fn keep_shrinking(&self) -> bool {
        true
    }

    /// A phase began (a run, a shrinking step).
    fn phase(&self, _phase: Phase<'_>) {}

    /// A run finished (shrinking included), in completion order.
    fn finished(&self, _run: &SweepRun) {}
}

/// An observer that watches nothing and never stops the sweep (tests, `shrink`).
pub struct Unobserved;

impl SweepObserver for Unobserved {}

/// Where a sweep stands, in numbers: what a progress line says.
#[derive(Clone, Copy, Debug)]
pub struct Status<'a> {
    /// Runs finished.
    pub done: u64,
    /// Runs this sweep (this shard) plans.
    pub planned: u64,
    /// Runs that failed so far.
    pub failures: u64,
    /// Wall-clock time since the sweep started (read by the caller).
    pub elapsed: Duration,
    /// The `--time` budget, if any: the sweep starts no run and no shrinking step past it.
    pub budget: Option<Duration>,
    /// The latest phase, as text ("shrinking baseline seed 7 step 4/30").
    pub now: &'a str,
}

/// The progress line: `120/800 runs, 3 failures, 2.1 runs/s, eta 5m24s, now: run baseline
/// seed 121` (without the `obsim chaos: ` prefix the caller puts in front).
pub fn line(status: &Status<'_>) -> String {
    let mut text = format!(
        "{}/{} runs, {} failures, {}, {}",
        status.done,
        status.planned,
        status.failures,
        rate_text(status.done, status.elapsed),
        eta_text(status.done, status.planned, status.elapsed, status.budget)
    );
    if !status.now.is_empty() {
        text.push_str(", now: ");
        text.push_str(status.now);
    }
    text
}

/// Runs per second (or per minute when below one a second), or "rate unknown" before the
/// first run is done.
pub fn rate_text(done: u64, elapsed: Duration) -> String {
    let seconds = elapsed.as_secs_f64();
    if done == 0 || seconds <= 0.0 {
        return "rate unknown".to_string();
    }
    let per_second = done as f64 / seconds;
    if per_second >= 1.0 { format!("{per_second:.1} runs/s") } else { format!("{:.1} runs/min", per_second * 60.0) }
}

/// The time left, estimated from the runs done and the time they took: "eta unknown" before
/// `ETA_RUNS_MIN` runs, "eta > 24h" past `ETA_SHOWN_MAX`, and with a time budget never more
/// than what is left of it ("eta 4m (--time)": the sweep stops starting runs then).
pub fn eta_text(done: u64, planned: u64, elapsed: Duration, budget: Option<Duration>) -> String {
    let left_of_budget = budget.map(|budget| budget.saturating_sub(elapsed));
    if done >= planned {
        return "eta 0s".to_string();
    }
    let estimate = (done >= ETA_RUNS_MIN).then(|| {
        let per_run_seconds = elapsed.as_secs_f64() / done as f64;
        // Capped before converting: a Duration from an absurd float would panic.
        let seconds = (per_run_seconds * (planned - done) as f64).min(ETA_SHOWN_MAX.as_secs_f64() * 2.0);
        Duration::from_secs(seconds.ceil() as u64)
    });
    match (estimate, left_of_budget) {
        (Some(estimate), Some(left)) if left < estimate => format!("eta {} (--time)", whole_seconds(left)),
        (None, Some(left)) => format!("eta unknown, at most {} (--time)", whole_seconds(left)),
        (Some(estimate), _) if estimate > ETA_SHOWN_MAX => "eta > 24h".to_string(),
        (Some(estimate), _) => format!("eta {}", whole_seconds(estimate)),
        (None, None) => "eta unknown".to_string(),
    }
}

/// `duration` to the second, as `5m24s` (no milliseconds in an estimate).
fn whole_seconds(duration: Duration) -> String {
    crate::units::format_duration(Duration::from_secs(duration.as_secs()))
}
