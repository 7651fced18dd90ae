//! The pipeline's parts and the signals they carry: the words every layer above uses to say
//! who holds a record and what kind of record it is.
//!
//! Why at the bottom: the ledger, the parts, the scenario's expectations and the reports all
//! name parts; defining them once here keeps each of those layers free of the others.

use std::fmt;

use super::LossCause;

/// The pipeline's parts, as custodians. Ordered by custody (`vocab::pipeline::PARTS`), not
/// by this declaration: the order is written once, in the pipeline's list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Part {
    App,
    Agent,
    Collector,
    Aggregator,
    Redis,
    Shipper,
    Dash0,
}

impl Part {
    /// The part's name as scenarios and reports spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Part::App => "app",
            Part::Agent => "agent",
            Part::Collector => "collector",
            Part::Aggregator => "aggregator",
            Part::Redis => "redis",
            Part::Shipper => "shipper",
            Part::Dash0 => "dash0",
        }
    }

    /// The cause recorded for what this part held only in memory when its host crashed.
    pub(crate) fn crash_cause(self) -> LossCause {
        match self {
            Part::App => LossCause::AppCrashUnpersisted,
            Part::Agent => LossCause::AgentCrashUnpersisted,
            Part::Collector => LossCause::CollectorCrashUnpersisted,
            Part::Aggregator => LossCause::AggregatorCrashUnpersisted,
            Part::Redis => LossCause::RedisCrashUnpersisted,
            Part::Shipper => LossCause::ShipperCrashUnpersisted,
            Part::Dash0 => LossCause::Dash0CrashUnpersisted,
        }
    }
}

impl Ord for Part {
    /// Custody order: the ledger's maps, the timeline and the reports list parts in it.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        super::pipeline::custody_rank(*self).cmp(&super::pipeline::custody_rank(*other))
    }
}

impl PartialOrd for Part {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a source emits: the ledger accounts logs and spans separately.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Signal {
    Log,
    Span,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_part_loses_its_crash_unpersisted_records_under_its_own_name() {
        let parts =
            [Part::App, Part::Agent, Part::Collector, Part::Aggregator, Part::Redis, Part::Shipper, Part::Dash0];
        for part in parts {
            assert_eq!(part.crash_cause().as_str(), format!("{part}_crash_unpersisted"));
        }
    }
}
