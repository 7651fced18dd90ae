//! When the records emitted in each second of a run reached Dash0: the input of the
//! recovery-time budget (how long after a fault ended the pipeline caught up).
//!
//! Why per emit second and not per record: the ledger stays O(sources + seconds). For each
//! second of true time, the latest first delivery of any record emitted in it is kept; the
//! recovery of a fault over [start, end) is the latest delivery among the seconds of its
//! window, minus `end`. Emission is bucketed to the second; delivery times are exact.

use std::time::Duration;

/// Most seconds of emission tracked: 30 days of simulated time, far past any run.
pub(crate) const CATCH_UP_SECONDS_LIMIT: usize = 30 * 24 * 3600;

const NANOS_PER_SECOND: u64 = 1_000_000_000;

/// Latest first-delivery true time (nanos) of the records emitted in each second.
#[derive(Clone, Debug, Default)]
pub struct CatchUp {
    /// Index: emit second; value: latest delivery nanos, 0 when nothing emitted then was
    /// delivered yet.
    latest_delivery_nanos: Vec<u64>,
}

impl CatchUp {
    /// A record emitted at `emitted_nanos` was first delivered at `delivered_nanos`.
    pub fn record(&mut self, emitted_nanos: u64, delivered_nanos: u64) {
        let second = (emitted_nanos / NANOS_PER_SECOND) as usize;
        assert!(second < CATCH_UP_SECONDS_LIMIT, "emitted at second {second}, past CATCH_UP_SECONDS_LIMIT");
        if second >= self.latest_delivery_nanos.len() {
            self.latest_delivery_nanos.resize(second + 1, 0);
        }
        let latest = &mut self.latest_delivery_nanos[second];
        *latest = (*latest).max(delivered_nanos);
    }

    /// The latest delivery of records emitted in [start, end) (whole seconds, `start`
    /// rounded down, `end` up), if any was delivered.
    pub(crate) fn latest_delivery(&self, start: Duration, end: Duration) -> Option<Duration> {
        let first = start.as_secs() as usize;
        let last = (end.as_nanos().div_ceil(u128::from(NANOS_PER_SECOND)) as usize).max(first + 1);
        let window = self.latest_delivery_nanos.get(first..last.min(self.latest_delivery_nanos.len()))?;
        window.iter().copied().filter(|&nanos| nanos > 0).max().map(Duration::from_nanos)
    }

    /// How long after `end` the records emitted in [start, end) had all arrived (zero when
    /// they arrived before it); `None` when none of them was delivered.
    pub fn recovery(&self, start: Duration, end: Duration) -> Option<Duration> {
        self.latest_delivery(start, end).map(|latest| latest.saturating_sub(end))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: f64) -> u64 {
        (s * 1e9) as u64
    }

    #[test]
    fn recovery_is_the_latest_arrival_of_the_window_after_its_end() {
        let mut catch_up = CatchUp::default();
        catch_up.record(secs(5.5), secs(7.0)); // before the fault
        catch_up.record(secs(10.2), secs(11.0)); // in the window, on time
        catch_up.record(secs(14.9), secs(41.5)); // in the window, held back by the fault
        catch_up.record(secs(20.0), secs(21.0)); // after the window
        let (start, end) = (Duration::from_secs(10), Duration::from_secs(20));
        assert_eq!(catch_up.latest_delivery(start, end), Some(Duration::from_secs_f64(41.5)));
        assert_eq!(catch_up.recovery(start, end), Some(Duration::from_secs_f64(21.5)));
        // Everything of [5, 6) arrived before 6 + 1: no recovery needed.
        assert_eq!(catch_up.recovery(Duration::from_secs(5), Duration::from_secs(8)), Some(Duration::ZERO));
        // Nothing emitted in the window: nothing to say.
        assert_eq!(catch_up.recovery(Duration::from_secs(30), Duration::from_secs(40)), None);
        assert_eq!(catch_up.recovery(Duration::from_secs(12), Duration::from_secs(13)), None);
    }

    #[test]
    fn a_zero_length_window_covers_its_second() {
        let mut catch_up = CatchUp::default();
        catch_up.record(secs(3.4), secs(9.0));
        assert_eq!(catch_up.recovery(Duration::from_secs(3), Duration::from_secs(3)), Some(Duration::from_secs(6)));
    }
}
