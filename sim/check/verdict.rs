//! The verdict of one run: the run's measurements (`check::measured`), each expectation of
//! the scenario checked by the checks listed in `CHECKS`, and the command that replays the
//! run.
//!
//! Why text first: the verdict is what an engineer reads in CI output when a scenario fails;
//! it must say what broke, where, and how to replay it without opening another file.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::ops::Deref;

use super::measured::Measured;
use super::name::CheckName;
use super::result::RunResult;
use super::{
    bounds, correlation, delivery, duplicates, jobs, latency, liveness, metrics, occupancy, recovery, throughput,
};
use crate::ledger::{Custodian, Outcome};
use crate::pipeline::Pipeline;
use crate::scenario::{Expect, Scenario};
use crate::units::format_duration;
use crate::vocab::Part;
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
        let verdict = Verdict { measured, result };
        assert_eq!(verdict.render_measured(), verdict.render(), "TEMP: render from the model");
        verdict
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

    /// The one command that replays this run.
    pub fn replay_command(&self) -> String {
        self.result.replay.clone()
    }

    /// The verdict as the text `obsim run` prints (`RunResult::render`).
    pub fn render(&self) -> String {
        self.result.render()
    }

    /// TEMP: the old text, from the measurements.
    pub fn render_measured(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "scenario {}  seed {}", self.scenario, self.seed);
        let _ =
            writeln!(out, "simulated {} ({} events)", format_duration(self.outcome.elapsed), self.outcome.events_count);
        for (signal, totals) in &self.accounting.totals {
            // Lost, lost silently and in flight apart: records still held at the end are
            // not lost (result.json counts them as in flight), and a silent loss is a
            // harness bug, not a loss with a cause.
            let (mut lost, mut silent, mut in_flight) = (0u64, 0u64, 0u64);
            for (outcome, tally) in self.accounting.undelivered(*signal) {
                match outcome {
                    Outcome::Lost { .. } => lost += tally.count,
                    Outcome::LostSilently => silent += tally.count,
                    Outcome::InFlight(_) => in_flight += tally.count,
                }
            }
            let _ = writeln!(
                out,
                "{:<5} emitted {}  delivered {}  duplicated {}  lost {lost}  lost silently {silent}  in flight {in_flight}",
                format!("{signal:?}").to_lowercase(),
                totals.emitted,
                totals.delivered,
                totals.duplicated,
            );
            for (outcome, tally) in self.accounting.undelivered(*signal) {
                let _ = writeln!(out, "      {:>8}  {outcome}{}", tally.count, delivery::born(tally));
            }
        }
        for (name, latency) in [("log", self.log_latency), ("span", self.span_latency)] {
            let _ = writeln!(
                out,
                "{name} latency p50 {}  p90 {}  p99 {}  p99.9 {}  max {}",
                millis(latency.p50_micros),
                millis(latency.p90_micros),
                millis(latency.p99_micros),
                millis(latency.p999_micros),
                millis(latency.max_micros)
            );
        }
        for r in &self.recoveries {
            let _ = writeln!(
                out,
                "recovery fault[{}] {} {}..{}: logs {}, spans {}",
                r.fault_index,
                r.kind,
                format_duration(r.start),
                format_duration(r.end),
                r.logs.map_or("-".to_string(), format_duration),
                r.spans.map_or("-".to_string(), format_duration)
            );
        }
        let _ = writeln!(out, "log throughput {:.1}/s", self.log_throughput_per_second);
        if let Some((index, per_second)) = self.log_throughput.min_window() {
            let _ = writeln!(
                out,
                "log throughput per 10s window: min {per_second:.1}/s in {}",
                self.log_throughput.describe_window(index)
            );
        }
        let mut peaks: BTreeMap<Part, (u64, &Custodian)> = BTreeMap::new();
        for (custodian, occupancy) in &self.occupancy {
            let peak = peaks.entry(custodian.part).or_insert((occupancy.peak_count, custodian));
            if occupancy.peak_count > peak.0 {
                *peak = (occupancy.peak_count, custodian);
            }
        }
        let peaks: Vec<String> = peaks.values().map(|(count, custodian)| format!("{custodian} {count}")).collect();
        let _ = writeln!(out, "peak records held per part: {}", peaks.join(", "));
        for check in self.checks() {
            let _ = writeln!(out, "{} {:<12} {}", if check.passed { "ok  " } else { "FAIL" }, check.name, check.detail);
        }
        let _ = writeln!(out, "event-log hash {}", self.outcome.hash);
        let _ = writeln!(out, "verdict {}", if self.passed() { "PASS" } else { "FAIL" });
        let _ = writeln!(out, "replay: {}", self.replay_command());
        out
    }
}

/// Microseconds as milliseconds with one decimal: `12.3ms`.
fn millis(micros: u64) -> String {
    format!("{:.1}ms", micros as f64 / 1_000.0)
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
