//! The verdict of one run: the run's measurements (`check::measured`), each expectation of
//! the scenario checked by the checks listed in `CHECKS`, and the result model
//! (`check::result`) every rendering reads, with the command that replays the run.
//!
//! Why one list of checks: the order of the verdict text, result.json and the sweep index
//! is written once, and a new check is one file plus one line here.

use std::ops::Deref;

use super::measured::Measured;
use super::name::CheckName;
use super::result::RunResult;
use super::{
    bounds, correlation, delivery, duplicates, jobs, latency, liveness, metrics, occupancy, recovery, throughput,
};
use crate::pipeline::Pipeline;
use crate::scenario::{Expect, Scenario};
use crate::world::{RunOutcome, WorldError};

/// One expectation, checked.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Check {
    /// Which check: `delivery`, `duplicates`, `correlation`, `latency_p99`, …
    pub name: CheckName,
    pub passed: bool,
    /// What was measured against what was allowed; on failure, where and examples.
    pub detail: String,
}

/// A check: the run's measurements against the scenario's `[expect]`; `None` when the
/// scenario does not ask for it.
pub type Checker = fn(&Measured, &Expect) -> Option<Check>;

/// Every check, in the order the verdict lists them (the verdict text, result.json and the
/// sweep index keep this order). Each name appears once; each checker returns its own name.
pub const CHECKS: [(CheckName, Checker); 13] = [
    (CheckName::Delivery, delivery::check),
    (CheckName::Liveness, liveness::check),
    (CheckName::Duplicates, duplicates::check),
    (CheckName::Jobs, jobs::check),
    (CheckName::Correlation, correlation::check),
    (CheckName::LatencyP99, latency::check_p99),
    (CheckName::LatencyMax, latency::check_max),
    (CheckName::Recovery, recovery::check),
    (CheckName::Throughput, throughput::check),
    (CheckName::Occupancy, occupancy::check),
    (CheckName::Bounds, bounds::check),
    (CheckName::BufferFill, bounds::check_buffer_fill),
    (CheckName::Metrics, metrics::check),
];

/// Runs every check of `CHECKS` in order on `run` against `expect`.
pub fn judge(run: &Measured, expect: &Expect) -> Vec<Check> {
    let checks: Vec<Check> = CHECKS
        .iter()
        .filter_map(|(name, checker)| {
            let check = checker(run, expect)?;
            assert_eq!(check.name, *name, "the checker listed as {name} returned a check named {}", check.name);
            Some(check)
        })
        .collect();
    assert!(checks.iter().any(|check| check.name == CheckName::Delivery), "the delivery check is always on");
    checks
}

/// The judged run: its measurements (read through `Deref`: `verdict.accounting`) and the
/// result model (`check::result`) every rendering reads, its checks included.
#[derive(Clone, Debug)]
pub struct Verdict {
    /// What the run measured.
    pub measured: Measured,
    /// The run's result: checks, measurements in their serialisable form, replay command.
    pub result: RunResult,
}

impl Deref for Verdict {
    type Target = Measured;

    /// A verdict reads as its measurements: `verdict.accounting`, `verdict.jobs`, …
    fn deref(&self) -> &Measured {
        &self.measured
    }
}

impl Verdict {
    /// Judges a finished pipeline run.
    pub fn judge(pipeline: &Pipeline, outcome: RunOutcome) -> Verdict {
        let measured = Measured::of(pipeline, outcome);
        let checks = judge(&measured, &pipeline.scenario.expect);
        let result = RunResult::of(&measured, checks, None);
        Verdict { measured, result }
    }

    /// Builds, runs and judges `scenario` with `seed`.
    pub fn run(scenario: std::sync::Arc<Scenario>, seed: u64) -> Result<Verdict, WorldError> {
        let mut pipeline = Pipeline::build(scenario, seed);
        let outcome = pipeline.run()?;
        Ok(Verdict::judge(&pipeline, outcome))
    }

    /// Names the scenario file the run came from (as given on the command line): the
    /// replay command then runs that file.
    pub fn set_scenario_path(&mut self, path: String) {
        self.result.replay = super::result::replay_command(&self.result.scenario, Some(&path), self.result.seed);
        self.result.scenario_file = Some(path);
    }

    /// Whether every check passed.
    pub fn passed(&self) -> bool {
        self.result.passed
    }

    /// Every check, in `CHECKS` order.
    pub fn checks(&self) -> &[Check] {
        &self.result.checks
    }

    /// The check named `name`, if the run judged it.
    pub fn check(&self, name: CheckName) -> Option<&Check> {
        self.result.checks.iter().find(|check| check.name == name)
    }

    /// The verdict as the text `obsim run` prints (`RunResult::render`).
    pub fn render(&self) -> String {
        self.result.render()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_judge_lists_every_check_name_once_in_the_names_order() {
        let listed: Vec<CheckName> = CHECKS.iter().map(|(name, _)| *name).collect();
        assert_eq!(listed, CheckName::ALL, "CHECKS and CheckName::ALL list the same names in the same order");
    }
}
