//! Fluent Bit's retry wait: "backoff full jitter" from its scheduler.
//!
//! `src/flb_scheduler.c` (fluent/fluent-bit, v1.8.7 and later):
//!
//! ```c
//! temp = xmin(cap, base * ipow(2, n));
//! return random_uniform(base, temp);       // integers, both ends included
//! ...
//! seconds = backoff_full_jitter(config->sched_base, config->sched_cap, tries);
//! seconds += 1;
//! ```
//!
//! with `tries` the retry number (1 for the first retry). Releases before the fix computed
//! `ipow(base * 2, n)`; the documented behaviour (docs "Scheduling and Retries": upper bound
//! `min(base * 2^N, cap)`) is the one modelled. The jitter comes from the host's seeded
//! stream `agent/retry`, so a seed replays the same waits.

use std::time::Duration;

use rand::Rng;

/// The wait before retry number `retry` (≥ 1): uniform whole seconds in
/// `[base, min(cap, base·2^retry)]`, plus one second.
pub fn retry_wait(base_secs: u64, cap_secs: u64, retry: u32, rng: &mut impl Rng) -> Duration {
    assert!(retry >= 1, "retry numbers start at 1");
    assert!(base_secs >= 1 && cap_secs >= base_secs);
    let upper = upper_bound_secs(base_secs, cap_secs, retry);
    Duration::from_secs(rng.random_range(base_secs..=upper) + 1)
}

/// `min(cap, base·2^retry)` without overflow.
pub fn upper_bound_secs(base_secs: u64, cap_secs: u64, retry: u32) -> u64 {
    let factor = 1u64.checked_shl(retry.min(63)).unwrap_or(u64::MAX);
    base_secs.saturating_mul(factor).min(cap_secs)
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use super::*;

    #[test]
    fn waits_stay_in_the_documented_window() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for retry in 1..=12 {
            let upper = upper_bound_secs(5, 2000, retry);
            assert_eq!(upper, (5u64 << retry).min(2000));
            for _ in 0..200 {
                let wait = retry_wait(5, 2000, retry, &mut rng).as_secs();
                assert!((6..=upper + 1).contains(&wait), "retry {retry}: {wait}");
            }
        }
        assert_eq!(upper_bound_secs(5, 2000, 200), 2000);
    }

    #[test]
    fn the_first_retry_waits_six_to_eleven_seconds_and_both_ends_occur() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let waits: std::collections::BTreeSet<u64> =
            (0..500).map(|_| retry_wait(5, 2000, 1, &mut rng).as_secs()).collect();
        assert_eq!(waits.into_iter().collect::<Vec<_>>(), vec![6, 7, 8, 9, 10, 11]);
    }
}
