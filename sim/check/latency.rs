//! The `latency_p99` and `latency_max` checks: logs' emit → Dash0 latency (true time, first
//! deliveries) against `[expect] latency_p99` and `latency_max`.

use std::time::Duration;

use super::measured::Measured;
use super::name::CheckName;
use super::verdict::Check;
use crate::scenario::Expect;
use crate::units::format_duration;

/// `name`: the measured latency against its budget, if the scenario sets one.
fn against(name: CheckName, budget: Option<Duration>, measured_micros: u64) -> Option<Check> {
    let budget = budget?;
    let measured = Duration::from_micros(measured_micros);
    Some(Check {
        name,
        passed: measured <= budget,
        detail: format!("log latency {} vs budget {}", format_duration(measured), format_duration(budget)),
    })
}

/// The `latency_p99` check (with `[expect] latency_p99`).
pub(crate) fn check_p99(run: &Measured, expect: &Expect) -> Option<Check> {
    against(CheckName::LatencyP99, expect.latency_p99, run.log_latency.p99_micros)
}

/// The `latency_max` check (with `[expect] latency_max`).
pub(crate) fn check_max(run: &Measured, expect: &Expect) -> Option<Check> {
    against(CheckName::LatencyMax, expect.latency_max, run.log_latency.max_micros)
}
