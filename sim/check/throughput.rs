//! Throughput: logs Dash0 stored per window of true time, from the store's ingest times.
//!
//! Why windows and not an average: a pipeline that stalls for a minute and then catches up
//! has a fine average and an outage in the middle. The smallest window during load is what
//! a budget like `min_throughput = "500/s"` is held against.

use std::time::Duration;

use super::measured::Measured;
use super::name::CheckName;
use super::verdict::Check;
use crate::scenario::Expect;

/// The window throughput is counted in (ARCHITECTURE.md §4: "throughput per window").
pub(crate) const WINDOW: Duration = crate::ledger::timeline::WINDOW;

/// Records stored per window.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Throughput {
    pub window: Duration,
    /// Records stored in window k = [k·window, (k+1)·window) of true time.
    pub counts: Vec<u64>,
    /// The window where load is judged from: the one after the first stored record's
    /// (the pipeline's first seconds are its fill time, not its throughput).
    pub(crate) judged_from: usize,
    /// Windows judged: those that end within the load phase.
    pub(crate) judged_until: usize,
}

impl Throughput {
    /// Counts `(ingest true nanos, records)` batches into windows over `load` (the scenario's
    /// duration); batches after it are counted too, for the report.
    pub fn of(batches: impl IntoIterator<Item = (u64, u64)>, load: Duration, window: Duration) -> Throughput {
        assert!(!window.is_zero(), "a throughput window is longer than 0");
        let window_nanos = window.as_nanos() as u64;
        let mut counts: Vec<u64> = Vec::new();
        let mut first: Option<usize> = None;
        for (nanos, records) in batches {
            if records == 0 {
                continue;
            }
            let index = (nanos / window_nanos) as usize;
            if counts.len() <= index {
                counts.resize(index + 1, 0);
            }
            counts[index] += records;
            first = Some(first.map_or(index, |first| first.min(index)));
        }
        let judged_until = (load.as_nanos() / window.as_nanos()) as usize;
        if counts.len() < judged_until {
            counts.resize(judged_until, 0);
        }
        let judged_from = first.map_or(0, |first| first + 1);
        Throughput { window, counts, judged_from, judged_until }
    }

    /// The slowest judged window: (index, records per second), if any window is judged.
    pub fn min_window(&self) -> Option<(usize, f64)> {
        (self.judged_from..self.judged_until)
            .map(|index| (index, self.counts[index] as f64 / self.window.as_secs_f64()))
            .min_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)))
    }

    /// The window `index` as text: `[1m30s, 1m40s)`.
    pub(crate) fn describe_window(&self, index: usize) -> String {
        let start = self.window * index as u32;
        format!("[{}, {})", crate::units::format_duration(start), crate::units::format_duration(start + self.window))
    }
}

/// The `throughput` check (with `[expect] min_throughput`): the slowest judged window of
/// load stored at least the budget; no judged window at all fails.
pub fn check(run: &Measured, expect: &Expect) -> Option<Check> {
    let budget = expect.min_throughput?;
    let throughput = &run.log_throughput;
    Some(match throughput.min_window() {
        Some((index, per_second)) => Check {
            name: CheckName::Throughput,
            passed: per_second >= budget.per_second,
            detail: format!(
                "slowest 10s window of load {} stored {per_second:.1} logs/s at dash0 vs budget {budget}",
                throughput.describe_window(index)
            ),
        },
        None => Check {
            name: CheckName::Throughput,
            passed: false,
            detail: format!(
                "no 10s window of load to judge against {budget}: dash0 stored {} logs during the {} of load",
                throughput.counts.iter().take(throughput.judged_until).sum::<u64>(),
                crate::units::format_duration(run.duration)
            ),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_window_is_fill_time_and_the_slowest_judged_window_is_found() {
        let second = 1_000_000_000u64;
        let batches = [(3 * second, 5), (12 * second, 100), (25 * second, 40), (35 * second, 100), (61 * second, 7)];
        let throughput = Throughput::of(batches, Duration::from_secs(50), WINDOW);
        assert_eq!(throughput.counts, vec![5, 100, 40, 100, 0, 0, 7]);
        assert_eq!((throughput.judged_from, throughput.judged_until), (1, 5));
        assert_eq!(throughput.min_window(), Some((4, 0.0)));
        assert_eq!(throughput.describe_window(4), "[40s, 50s)");
    }
}
