//! The names of the checks: one enum, one string form each (`delivery`, `latency_p99`, …),
//! the same in the verdict text, result.json and the sweep index.
//!
//! Why an enum: code and tests that look a check up (`verdict.check(CheckName::Delivery)`)
//! then cannot misspell it, and adding a check means adding a variant here and a line to
//! the judge's list (`check::verdict::CHECKS`), which a test holds to cover every variant.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A check's name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckName {
    /// Every record delivered or lost with an accepted cause.
    Delivery,
    /// Nothing left in flight after the drain.
    Liveness,
    /// Duplicated records within `max_duplicate_ratio`.
    Duplicates,
    /// Every accepted job completed, none ran twice (beyond what is allowed).
    Jobs,
    /// Logs and spans tie every job together.
    Correlation,
    /// The 99th percentile of log latency within its budget.
    LatencyP99,
    /// The slowest log within its budget.
    LatencyMax,
    /// Every fault recovered from within `max_recovery`.
    Recovery,
    /// Every judged window of load stored at least `min_throughput`.
    Throughput,
    /// No custodian of a part held more than `max_occupancy`.
    Occupancy,
    /// No bounded buffer admitted a write its bound forbids.
    Bounds,
    /// No buffer of a part filled past `max_buffer_fill`.
    BufferFill,
    /// Dash0's metric totals agree with the jobs that ran.
    Metrics,
}

impl CheckName {
    /// Every check name, in the order the verdict lists its checks.
    pub const ALL: [CheckName; 13] = [
        CheckName::Delivery,
        CheckName::Liveness,
        CheckName::Duplicates,
        CheckName::Jobs,
        CheckName::Correlation,
        CheckName::LatencyP99,
        CheckName::LatencyMax,
        CheckName::Recovery,
        CheckName::Throughput,
        CheckName::Occupancy,
        CheckName::Bounds,
        CheckName::BufferFill,
        CheckName::Metrics,
    ];

    /// The one string form (serde's too): `delivery`, `latency_p99`, `buffer_fill`, …
    pub fn as_str(self) -> &'static str {
        match self {
            CheckName::Delivery => "delivery",
            CheckName::Liveness => "liveness",
            CheckName::Duplicates => "duplicates",
            CheckName::Jobs => "jobs",
            CheckName::Correlation => "correlation",
            CheckName::LatencyP99 => "latency_p99",
            CheckName::LatencyMax => "latency_max",
            CheckName::Recovery => "recovery",
            CheckName::Throughput => "throughput",
            CheckName::Occupancy => "occupancy",
            CheckName::Bounds => "bounds",
            CheckName::BufferFill => "buffer_fill",
            CheckName::Metrics => "metrics",
        }
    }

    /// The check named `text`, if any.
    pub fn parse(text: &str) -> Option<CheckName> {
        CheckName::ALL.into_iter().find(|name| name.as_str() == text)
    }
}

impl fmt::Display for CheckName {
    /// The string form; padding (`{:<12}`) applies, as the verdict text aligns names.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_name_has_one_string_form_and_serde_spells_it_the_same() {
        for name in CheckName::ALL {
            assert_eq!(CheckName::parse(name.as_str()), Some(name));
            assert_eq!(serde_json::to_string(&name).unwrap(), format!("\"{}\"", name.as_str()));
            assert_eq!(format!("{name:<12}|"), format!("{:<12}|", name.as_str()));
        }
        assert_eq!(CheckName::parse("latency"), None);
    }
}
