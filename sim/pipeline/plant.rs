//! Planting bugs: the scenario's `[bugs]` switches (`crate::parts::Bugs`) copied into every
//! part's config before the hosts are built, so each part tests its own flag where the bug
//! lives.

use crate::scenario::Scenario;

/// `scenario` with its `[bugs]` copied into every part's config (the parts read their own
/// copy). Idempotent.
pub(crate) fn plant(scenario: &Scenario) -> Scenario {
    let mut planted = scenario.clone();
    let bugs = scenario.bugs;
    planted.app.bugs = bugs;
    planted.agent.bugs = bugs;
    planted.collector.bugs = bugs;
    planted.aggregator.bugs = bugs;
    planted.shipper.bugs = bugs;
    planted.dash0.bugs = bugs;
    planted
}
