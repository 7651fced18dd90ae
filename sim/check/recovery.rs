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
use std::fmt::Write as _;

use super::measured::Measured;
use super::name::CheckName;
use super::verdict::Check;
use crate::scenario::Expect;
use crate::units::format_duration;

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

/// The `recovery` check (with `[expect] max_recovery`): every fault recovered within the
/// budget; a failure names the fault, its window and the signal that lagged.
pub fn check(run: &Measured, expect: &Expect) -> Option<Check> {
    let budget = expect.max_recovery?;
    let slow: Vec<&Recovery> = run.recoveries.iter().filter(|r| r.worst().is_some_and(|w| w > budget)).collect();
    let detail = if slow.is_empty() {
        let worst = run
            .recoveries
            .iter()
            .filter_map(|r| r.worst().map(|w| (w, r)))
            .max_by_key(|(w, r)| (*w, std::cmp::Reverse(r.fault_index)));
        match worst {
            Some((time, r)) => format!(
                "slowest recovery {} after fault[{}] {} (budget {})",
                format_duration(time),
                r.fault_index,
                r.kind,
                format_duration(budget)
            ),
            None => format!("no fault held back any record (budget {})", format_duration(budget)),
        }
    } else {
        let mut text = format!("{} faults took longer than {} to recover from:", slow.len(), format_duration(budget));
        for r in &slow {
            let _ = write!(
                text,
                "\n    fault[{}] {} over {}..{}: logs caught up {} after it ended, spans {}; what emitted in the window waited at which hop? (see the peak occupancy)",
                r.fault_index,
                r.kind,
                format_duration(r.start),
                format_duration(r.end),
                r.logs.map_or("never".to_string(), format_duration),
                r.spans.map_or("never".to_string(), format_duration)
            );
        }
        text
    };
    Some(Check { name: CheckName::Recovery, passed: slow.is_empty(), detail })
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
