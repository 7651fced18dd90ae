//! Fluentd's output retry: one retry state per output (not per chunk), exponential backoff
//! with randomisation, until `retry_timeout` (or `retry_max_times`) unless `retry_forever`.
//!
//! Fluentd 1.19 `lib/fluent/plugin_helper/retry_state.rb` (`ExponentialBackOffRetry`) and
//! `lib/fluent/plugin/output.rb` (`update_retry_state`), FIDELITY.md "Aggregator — Fluentd":
//! - the first failure creates the state: `steps` 0, next try exactly `retry_wait` later
//!   (`@next_time = @start + @constant_factor`: not randomised, not capped);
//! - each later failure (at or after the next try) steps: `steps += 1`, the next try is
//!   `now + randomize(retry_wait · base^steps)` (capped by `retry_max_interval` before the
//!   randomisation, `wait + wait · 0.125 · (2·rand − 1)`), moved to `start + retry_timeout`
//!   when it would fall at or after it; the first such move marks the timeout *reached*, the
//!   next one *timed out*;
//! - the limit is hit when timed out or `steps ≥ retry_max_times` (never with
//!   `retry_forever`); the caller then drops the whole queue (`handle_limit_reached`);
//! - a write that succeeds ends the state (`commit_write`: `@retry = nil`).

use std::time::Duration;

use rand::Rng;
use tokio::time::Instant;

use super::config::AggregatorConfig;

/// Fluentd's `randomize_width`.
pub(crate) const RANDOMIZE_WIDTH: f64 = 0.125;

/// The output's retry state while writes fail.
#[derive(Clone, Debug)]
pub(crate) struct RetryState {
    /// Fluentd's `steps`: 0 after the first failure, one more per later failure.
    pub steps: u32,
    /// When to try next.
    pub next: Instant,
    /// `start + retry_timeout`.
    timeout_at: Instant,
    /// A step's next try was moved to `timeout_at` (`@has_reached_timeout`).
    reached_timeout: bool,
    /// A later step's next try was at or after `timeout_at` again (`@has_timed_out`).
    timed_out: bool,
}

/// The wait before the next try after `steps` steps, capped and randomised as Fluentd's
/// `calc_interval` then `randomize` do. Used from the second failure on.
pub(crate) fn retry_interval(config: &AggregatorConfig, steps: u32, rng: &mut impl Rng) -> Duration {
    let factor = config.retry_exponential_backoff_base.powi(steps.min(1_000) as i32);
    let mut secs = config.retry_wait.as_secs_f64() * factor;
    if let Some(max) = config.retry_max_interval {
        secs = secs.min(max.as_secs_f64());
    }
    if config.retry_randomize {
        secs += secs * RANDOMIZE_WIDTH * (2.0 * rng.random::<f64>() - 1.0);
    }
    // Bounded: a wait beyond a year is a year (the world never runs that long).
    Duration::from_secs_f64(secs.clamp(0.0, 365.0 * 86_400.0))
}

impl RetryState {
    /// The state the first failure at `now` creates: next try exactly `retry_wait` later.
    pub(crate) fn first(config: &AggregatorConfig, now: Instant) -> RetryState {
        // Bounded: a retry_timeout beyond a year is a year (the world never runs that long).
        let timeout = config.retry_timeout.min(Duration::from_secs(365 * 86_400));
        RetryState {
            steps: 0,
            next: now + config.retry_wait,
            timeout_at: now + timeout,
            reached_timeout: false,
            timed_out: false,
        }
    }

    /// After a failure at `now`: the state created (first failure) or stepped.
    pub(crate) fn after_failure(
        previous: Option<RetryState>,
        config: &AggregatorConfig,
        now: Instant,
        rng: &mut impl Rng,
    ) -> RetryState {
        let Some(mut state) = previous else {
            return RetryState::first(config, now);
        };
        if now >= state.next {
            state.steps += 1;
            state.next = state.calc_next(config, now, rng);
            if state.reached_timeout {
                state.timed_out = state.next >= state.timeout_at;
            } else {
                state.reached_timeout = state.next >= state.timeout_at;
            }
        } else {
            // `recalc_next_time`: another thread failed before the next try was due.
            state.next = state.calc_next(config, now, rng);
        }
        state
    }

    /// `calc_next_time` (no secondary): `now + randomize(interval)`, moved to the timeout.
    fn calc_next(&self, config: &AggregatorConfig, now: Instant, rng: &mut impl Rng) -> Instant {
        let naive = now + retry_interval(config, self.steps, rng);
        if !config.retry_forever && naive >= self.timeout_at { self.timeout_at } else { naive }
    }

    /// `limit?`: the retries are spent (timed out, or `retry_max_times` steps).
    pub(crate) fn limit(&self, config: &AggregatorConfig) -> bool {
        !config.retry_forever && (self.timed_out || config.retry_max_times.is_some_and(|max| self.steps >= max))
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use super::*;

    #[test]
    fn waits_double_within_twelve_and_a_half_percent() {
        let config = AggregatorConfig::default();
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        for steps in 0..10 {
            let nominal = 2f64.powi(steps as i32);
            for _ in 0..100 {
                let wait = retry_interval(&config, steps, &mut rng).as_secs_f64();
                assert!(wait >= nominal * 0.875 - 1e-9 && wait <= nominal * 1.125 + 1e-9, "steps {steps}: {wait}");
            }
        }
        let capped =
            AggregatorConfig { retry_max_interval: Some(Duration::from_secs(30)), retry_randomize: false, ..config };
        assert_eq!(retry_interval(&capped, 20, &mut rng), Duration::from_secs(30));
    }

    /// `retry_max_times 2`: the first failure creates the state, two more step it; the
    /// second step hits the limit (three failures, two retries waited).
    #[test]
    fn max_times_ends_the_retries() {
        let config = AggregatorConfig { retry_max_times: Some(2), ..AggregatorConfig::default() };
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        let now = Instant::now(); // determinism: ok (tokio's clock, simulated by turmoil)
        let first = RetryState::after_failure(None, &config, now, &mut rng);
        assert!(!first.limit(&config));
        let second = RetryState::after_failure(Some(first), &config, now + Duration::from_secs(1), &mut rng);
        assert_eq!(second.steps, 1);
        assert!(!second.limit(&config));
        let third = RetryState::after_failure(Some(second.clone()), &config, second.next, &mut rng);
        assert!(third.limit(&config));
        let none = AggregatorConfig { retry_max_times: Some(0), ..AggregatorConfig::default() };
        assert!(RetryState::first(&none, now).limit(&none), "retry_max_times 0: the first failure is the limit");
    }

    /// The first retry waits exactly `retry_wait` whatever `retry_randomize` says (Fluentd
    /// creates the state with `@start + @constant_factor`); the second is randomised around
    /// `retry_wait · base`. Fails on the old code, which randomised the first wait too.
    #[test]
    fn the_first_retry_waits_exactly_retry_wait_and_later_ones_are_randomised() {
        let config = AggregatorConfig::default();
        assert!(config.retry_randomize);
        let now = Instant::now(); // determinism: ok (tokio's clock, simulated by turmoil)
        for seed in 0..50 {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let first = RetryState::after_failure(None, &config, now, &mut rng);
            assert_eq!(first.next - now, Duration::from_secs(1), "seed {seed}");
            let at = first.next;
            let second = RetryState::after_failure(Some(first), &config, at, &mut rng);
            let wait = (second.next - at).as_secs_f64();
            assert!((1.75..=2.25).contains(&wait), "seed {seed}: second wait {wait}");
        }
    }

    /// `retry_timeout`: the step whose next try falls past the deadline is moved to it
    /// (reached); the failure there steps again past it (timed out): the limit.
    #[test]
    fn the_timeout_is_reached_then_timed_out() {
        let config = AggregatorConfig {
            retry_timeout: Duration::from_secs(5),
            retry_randomize: false,
            ..AggregatorConfig::default()
        };
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let start = Instant::now(); // determinism: ok (tokio's clock, simulated by turmoil)
        let mut state = RetryState::after_failure(None, &config, start, &mut rng);
        let mut nexts = Vec::new();
        // Bounded: the timeout ends it within a few steps.
        while !state.limit(&config) {
            nexts.push((state.next - start).as_secs());
            let at = state.next;
            state = RetryState::after_failure(Some(state), &config, at, &mut rng);
            assert!(nexts.len() < 10);
        }
        // 1 s, then 1 + 2 = 3 s, then 3 + 4 = 7 s moved to the 5 s deadline, then the limit.
        assert_eq!(nexts, vec![1, 3, 5]);
    }
}
