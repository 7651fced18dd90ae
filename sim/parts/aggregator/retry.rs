//! Fluentd's output retry: exponential backoff with randomisation, until `retry_timeout`
//! (or `retry_max_times`) unless `retry_forever`.
//!
//! `lib/fluent/plugin_helper/retry_state.rb` (`ExponentialBackOffRetry`): the wait before
//! retry number `steps + 1` is `retry_wait · base^steps`, capped by `retry_max_interval`,
//! then randomised to `wait + wait · 0.125 · (2·rand − 1)` (`retry_randomize`, width 0.125);
//! a retry that would fall after the deadline `start + retry_timeout` is moved to the
//! deadline, and a failure at or after it ends the retries.

use std::time::Duration;

use rand::Rng;
use tokio::time::Instant;

use super::config::AggregatorConfig;

/// Fluentd's `randomize_width`.
pub(crate) const RANDOMIZE_WIDTH: f64 = 0.125;

/// The retry state of the chunk at the head of the queue.
#[derive(Clone, Debug)]
pub(crate) struct RetryState {
    /// When the first failure happened.
    pub start: Instant,
    /// Failures so far.
    pub steps: u32,
    /// When to try next.
    pub next: Instant,
}

/// The wait before the retry after `steps` earlier failures (0 for the first retry).
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
    /// After a failure at `now`: the next attempt time, or `None` when the retries are spent.
    pub(crate) fn after_failure(
        previous: Option<RetryState>,
        config: &AggregatorConfig,
        now: Instant,
        rng: &mut impl Rng,
    ) -> Option<RetryState> {
        let (start, steps) = match previous {
            Some(state) => (state.start, state.steps),
            None => (now, 0),
        };
        if !config.retry_forever {
            let deadline = start + config.retry_timeout;
            if steps > 0 && now >= deadline {
                return None;
            }
            if config.retry_max_times.is_some_and(|max| steps >= max) {
                return None;
            }
            let next = (now + retry_interval(config, steps, rng)).min(deadline);
            return Some(RetryState { start, steps: steps + 1, next });
        }
        Some(RetryState { start, steps: steps + 1, next: now + retry_interval(config, steps, rng) })
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

    #[test]
    fn max_times_ends_the_retries() {
        let config = AggregatorConfig { retry_max_times: Some(2), ..AggregatorConfig::default() };
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        let now = Instant::now(); // determinism: ok (tokio's clock, simulated by turmoil)
        let first = RetryState::after_failure(None, &config, now, &mut rng).unwrap();
        let second = RetryState::after_failure(Some(first), &config, now, &mut rng).unwrap();
        assert_eq!(second.steps, 2);
        assert!(RetryState::after_failure(Some(second), &config, now, &mut rng).is_none());
    }
}
