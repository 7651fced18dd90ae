//! The `liveness` check: after the drain (faults healed) nothing is left in flight; a
//! failure names each custodian still holding records.

use std::fmt::Write as _;

use super::delivery::{examples, window};
use super::measured::Measured;
use super::name::CheckName;
use super::verdict::Check;
use crate::ledger::Outcome;
use crate::scenario::Expect;
use crate::units::format_duration;

/// The `liveness` check (always on).
pub fn check(run: &Measured, _expect: &Expect) -> Option<Check> {
    let mut in_flight = 0u64;
    let mut holders = String::new();
    for ((signal, outcome), tally) in &run.accounting.outcomes {
        if let Outcome::InFlight(custodian) = outcome {
            in_flight += tally.count;
            let _ = write!(
                holders,
                "\n    {} {signal:?} records{} held by {custodian}; e.g. ids {}",
                tally.count,
                window(tally),
                examples(&tally.examples)
            );
        }
    }
    let drain = format_duration(run.drain);
    Some(Check {
        name: CheckName::Liveness,
        passed: in_flight == 0,
        detail: if in_flight == 0 {
            format!("nothing in flight after the {drain} drain")
        } else {
            format!(
                "{in_flight} records still in flight after the {drain} drain (faults healed); is the drain long \
                 enough, or is a part stuck?{holders}"
            )
        },
    })
}
