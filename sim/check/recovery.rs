//! Recovery time after each fault: how long after a fault ended the pipeline had delivered
//! everything emitted while it lasted (ARCHITECTURE.md §4, budgets).
//!
//! Definition: for a fault over [start, end) — a fault with no end of its own (`crash`,
//! `clock_step`) ends at `duration`, when every fault is healed — the recovery of a signal
//! is the time from `end` until the last record of that signal emitted in the window
//! (emission bucketed to the second) first reached Dash0; zero when all of them arrived
//! before `end`. Records of the window never delivered are the delivery and liveness
//! checks' business; a window none of whose records arrived has no recovery to report.

use std::time::Duration;

use crate::faults::FaultSpec;
use crate::ledger::CatchUp;

/// One fault's recovery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recovery {
    /// Index of the fault in the scenario's `[[fault]]` list.
    pub fault_index: usize,
    pub kind: &'static str,
    pub start: Duration,
    pub end: Duration,
    /// Logs and spans; `None` when none emitted in the window arrived.
    pub logs: Option<Duration>,
    pub spans: Option<Duration>,
}

impl Recovery {
    /// The slower of the two signals.
    pub fn worst(&self) -> Option<Duration> {
        self.logs.max(self.spans)
    }
}

/// The recovery of each fault of `faults` in a load phase of `duration`.
pub fn recoveries(faults: &[FaultSpec], duration: Duration, logs: &CatchUp, spans: &CatchUp) -> Vec<Recovery> {
    faults
        .iter()
        .enumerate()
        .map(|(fault_index, fault)| {
            let start = fault.at();
            let end = fault.end().unwrap_or(duration).min(duration).max(start);
            Recovery {
                fault_index,
                kind: fault.kind(),
                start,
                end,
                logs: logs.recovery(start, end),
                spans: spans.recovery(start, end),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_fault_is_measured_from_its_own_end_and_a_crash_ends_at_duration() {
        let mut logs = CatchUp::default();
        logs.record(12_000_000_000, 50_000_000_000);
        logs.record(70_000_000_000, 95_000_000_000);
        let spans = CatchUp::default();
        let faults: Vec<FaultSpec> = toml::from_str::<toml::Table>(
            r#"
            [[f]]
            kind = "link_drop"
            at = "10s"
            for = "20s"
            from = "machines"
            to = "railway"
            [[f]]
            kind = "crash"
            at = "60s"
            target = "railway-aggregator"
            "#,
        )
        .unwrap()["f"]
            .as_array()
            .unwrap()
            .iter()
            .map(|value| value.clone().try_into().unwrap())
            .collect();
        let found = recoveries(&faults, Duration::from_secs(90), &logs, &spans);
        assert_eq!(found[0].end, Duration::from_secs(30));
        assert_eq!(found[0].logs, Some(Duration::from_secs(20)));
        assert_eq!(found[0].spans, None);
        assert_eq!((found[1].kind, found[1].end), ("crash", Duration::from_secs(90)));
        assert_eq!(found[1].logs, Some(Duration::from_secs(5)));
        assert_eq!(found[1].worst(), Some(Duration::from_secs(5)));
    }
}
