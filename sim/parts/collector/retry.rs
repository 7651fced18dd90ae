//! `retry_on_failure`: which failures are retried, and when.
//!
//! The schedule is the collector's: exporterhelper's retry sender drives
//! `cenkalti/backoff`'s `ExponentialBackOff`. Each wait is drawn uniformly from
//! `interval · (1 ± randomization_factor)`; the interval then grows by `multiplier` until it
//! reaches `max_interval` (the wait itself may exceed it by the randomization); once the
//! time since the first attempt plus the next wait would pass `max_elapsed_time`, the batch
//! is given up. A server's `RetryInfo` delay stretches the wait (never shortens it), and the
//! stretched wait is what is held against `max_elapsed_time`: a delay past the time left
//! drops the request rather than retrying once more (FIDELITY.md "Collector").
//!
//! Which failures (OTLP specification, "OTLP/gRPC Response" / otlpexporter): CANCELLED,
//! DEADLINE_EXCEEDED, ABORTED, OUT_OF_RANGE, UNAVAILABLE, DATA_LOSS are retryable;
//! RESOURCE_EXHAUSTED only when the server sent RetryInfo; everything else is permanent.

use std::time::Duration;

use rand::Rng;

use super::config::CollectorConfig;
use crate::proto::otlp::rpc_status::retry_delay_of;

/// What to do after a failed export.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Try again, waiting at least `throttle` if the server said so.
    Retryable { throttle: Option<Duration> },
    /// Do not try again: the data is dropped (`collector_rejected`).
    Permanent,
}

/// Classifies a gRPC failure as the OTLP exporter does.
pub(crate) fn classify(status: &tonic::Status) -> Verdict {
    use tonic::Code;
    let throttle = retry_delay_of(status);
    match status.code() {
        Code::Cancelled
        | Code::DeadlineExceeded
        | Code::Aborted
        | Code::OutOfRange
        | Code::Unavailable
        | Code::DataLoss => Verdict::Retryable { throttle },
        Code::ResourceExhausted if throttle.is_some() => Verdict::Retryable { throttle },
        _ => Verdict::Permanent,
    }
}

/// One batch's exponential backoff (`backoff.ExponentialBackOff` after `Reset`).
#[derive(Clone, Debug)]
pub(crate) struct Backoff {
    current_interval: Duration,
    randomization_factor: f64,
    multiplier: f64,
    max_interval: Duration,
    /// Zero means no limit, as in the collector.
    max_elapsed_time: Duration,
}

impl Backoff {
    /// A fresh schedule from the collector's `retry_on_failure` settings.
    pub fn new(config: &CollectorConfig) -> Self {
        Backoff {
            current_interval: config.retry_initial_interval,
            randomization_factor: config.retry_randomization_factor,
            multiplier: config.retry_multiplier,
            max_interval: config.retry_max_interval,
            max_elapsed_time: config.retry_max_elapsed_time,
        }
    }

    /// The interval the next wait is drawn around.
    #[cfg(test)]
    pub(crate) fn current_interval(&self) -> Duration {
        self.current_interval
    }

    /// The next wait, or `None` when `elapsed` (since the first attempt) plus that wait
    /// would pass `max_elapsed_time`: give up. `throttle` (the server's RetryInfo delay)
    /// stretches the wait before that check, as exporterhelper's retry sender does.
    pub fn next(&mut self, elapsed: Duration, throttle: Option<Duration>, rng: &mut impl Rng) -> Option<Duration> {
        let drawn = randomized(self.randomization_factor, rng.random::<f64>(), self.current_interval);
        self.increment();
        let next = throttle.map_or(drawn, |throttle| drawn.max(throttle));
        debug_assert!(next >= drawn, "a throttle never shortens the wait");
        if !self.max_elapsed_time.is_zero() && elapsed + next > self.max_elapsed_time {
            return None;
        }
        Some(next)
    }

    fn increment(&mut self) {
        let ceiling = self.max_interval.as_secs_f64() / self.multiplier;
        self.current_interval = if self.current_interval.as_secs_f64() >= ceiling {
            self.max_interval
        } else {
            self.current_interval.mul_f64(self.multiplier)
        };
    }
}

/// `getRandomValueFromInterval`: uniform in `[interval − δ, interval + δ]`, δ = f·interval.
fn randomized(factor: f64, random: f64, interval: Duration) -> Duration {
    if factor == 0.0 {
        return interval;
    }
    let nanos = interval.as_nanos() as f64;
    let delta = factor * nanos;
    let (low, high) = (nanos - delta, nanos + delta);
    Duration::from_nanos((low + random * (high - low + 1.0)) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn intervals_grow_by_half_to_the_cap_and_waits_stay_within_half_either_side() {
        let config = CollectorConfig::default();
        let mut backoff = Backoff::new(&config);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let expected_intervals = [5.0, 7.5, 11.25, 16.875, 25.3125, 30.0, 30.0];
        let mut elapsed = Duration::ZERO;
        for interval in expected_intervals {
            assert!((backoff.current_interval().as_secs_f64() - interval).abs() < 1e-6);
            let wait = backoff.next(elapsed, None, &mut rng).expect("far from max_elapsed_time");
            assert!(wait.as_secs_f64() >= interval * 0.5 && wait.as_secs_f64() <= interval * 1.5 + 1e-6, "{wait:?}");
            elapsed += wait;
        }
    }

    #[test]
    fn gives_up_when_the_next_wait_would_pass_max_elapsed_time() {
        let config = CollectorConfig { retry_randomization_factor: 0.0, ..CollectorConfig::default() };
        let mut backoff = Backoff::new(&config);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        assert_eq!(backoff.next(Duration::from_secs(290), None, &mut rng), Some(Duration::from_secs(5)));
        assert_eq!(backoff.next(Duration::from_secs(295), None, &mut rng), None, "295 s + 7.5 s > 300 s");
    }

    /// exporterhelper's retry sender stretches the backoff by the server's RetryInfo delay and
    /// then gives up when the stretched wait ends past `max_elapsed_time`.
    #[test]
    fn a_retry_info_delay_past_the_time_left_gives_up() {
        let config = CollectorConfig { retry_randomization_factor: 0.0, ..CollectorConfig::default() };
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let mut backoff = Backoff::new(&config);
        let stretched = backoff.next(Duration::from_secs(200), Some(Duration::from_secs(60)), &mut rng);
        assert_eq!(stretched, Some(Duration::from_secs(60)), "200 s + 60 s is within 300 s");
        let mut backoff = Backoff::new(&config);
        let past = backoff.next(Duration::from_secs(250), Some(Duration::from_secs(60)), &mut rng);
        assert_eq!(past, None, "250 s + 60 s passes 300 s: dropped, not retried once more");
    }

    #[test]
    fn only_the_otlp_retryable_codes_are_retried() {
        assert_eq!(classify(&tonic::Status::unavailable("x")), Verdict::Retryable { throttle: None });
        assert_eq!(classify(&tonic::Status::cancelled("x")), Verdict::Retryable { throttle: None });
        assert_eq!(classify(&tonic::Status::resource_exhausted("x")), Verdict::Permanent);
        assert_eq!(classify(&tonic::Status::invalid_argument("x")), Verdict::Permanent);
        assert_eq!(classify(&tonic::Status::unauthenticated("x")), Verdict::Permanent);
        assert_eq!(classify(&tonic::Status::internal("x")), Verdict::Permanent);
    }
}
