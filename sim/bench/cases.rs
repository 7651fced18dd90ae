//! The bench's fixed set of cases and the scenario each one runs, built in code from
//! `scenarios/baseline.toml` (README "Performance").
//!
//! Why built from the baseline and not from files of their own: the cases must measure the
//! same pipeline as the baseline at other sizes, so a change to the baseline moves every
//! case with it; and a bench case is no test case (`tests/scenarios.rs` runs every file).

use std::path::Path;
use std::time::Duration;

use crate::scenario::Scenario;

/// Where the baseline lives in the repository; it names the scenario in errors.
const BASELINE_PATH: &str = "scenarios/baseline.toml";

/// The baseline scenario's text, compiled in so the bench runs from any directory.
const BASELINE_TEXT: &str = include_str!("../../scenarios/baseline.toml");

/// The machines of the `load-16k` case: twice the baseline's, so that twice its job rate
/// keeps every machine as busy as in the baseline (ComfyUI's workers are the bottleneck).
const LOAD_MACHINES: u32 = 12;

/// Log lines per job in `load-16k`: with the baseline's 0.8 jobs/s per 6 machines doubled to
/// 1.6 jobs/s, 1.6 × 10,000 = 16,000 job logs per second (the most `logs_per_job` allows).
const LOAD_LOGS_PER_JOB: u32 = 10_000;

/// How a case changes the baseline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Shape {
    /// `scenarios/baseline.toml` as it is.
    Baseline,
    /// The baseline's machines scaled to this many, per-machine load kept.
    Fleet(u32),
    /// About 16,000 logs/s in total (`LOAD_MACHINES`, `LOAD_LOGS_PER_JOB`).
    Load16k,
}

/// One case of the fixed set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CaseSpec {
    /// The name `--only` and the JSON use.
    pub name: &'static str,
    pub(crate) shape: Shape,
}

/// The fixed set, in the order it runs (cheapest first, so a short budget still measures
/// the small ones).
pub const CASES: &[CaseSpec] = &[
    CaseSpec { name: "baseline", shape: Shape::Baseline },
    CaseSpec { name: "fleet-25", shape: Shape::Fleet(25) },
    CaseSpec { name: "fleet-100", shape: Shape::Fleet(100) },
    CaseSpec { name: "fleet-200", shape: Shape::Fleet(200) },
    CaseSpec { name: "fleet-1000", shape: Shape::Fleet(1000) },
    CaseSpec { name: "load-16k", shape: Shape::Load16k },
];

/// The case named `name`, or an error naming the known ones.
pub fn case_named(name: &str) -> Result<CaseSpec, String> {
    CASES.iter().copied().find(|case| case.name == name).ok_or_else(|| {
        let known: Vec<&str> = CASES.iter().map(|case| case.name).collect();
        format!("unknown bench case {name:?}; the cases are {}", known.join(", "))
    })
}

/// The cases `only` names, in the set's order (all of them when `only` is empty); an unknown
/// name is an error naming it and the known ones.
pub fn cases_selected(only: &[String]) -> Result<Vec<CaseSpec>, String> {
    for name in only {
        case_named(name)?;
    }
    Ok(CASES.iter().copied().filter(|case| only.is_empty() || only.iter().any(|name| name == case.name)).collect())
}

/// The baseline scenario as the repository has it.
pub(crate) fn baseline() -> Result<Scenario, String> {
    Scenario::parse(Path::new(BASELINE_PATH), BASELINE_TEXT).map_err(|error| error.to_string())
}

/// The scenario `case` runs for `sim`: the baseline reshaped, running load for `sim` with
/// no drain (the bench measures speed, it judges nothing), no chaos and no faults.
pub(crate) fn scenario_for(case: CaseSpec, sim: Duration) -> Result<Scenario, String> {
    assert!(!sim.is_zero(), "a bench case runs for some simulated time");
    let mut scenario = baseline()?;
    match case.shape {
        Shape::Baseline => {}
        Shape::Fleet(machines) => scale_machines(&mut scenario, machines),
        Shape::Load16k => {
            scale_machines(&mut scenario, LOAD_MACHINES);
            scenario.workload.logs_per_job = LOAD_LOGS_PER_JOB;
        }
    }
    scenario.name = format!("bench-{}", case.name);
    scenario.duration = sim;
    scenario.drain = Duration::ZERO;
    scenario.chaos = None;
    assert!(scenario.faults.is_empty(), "the baseline has no faults; a bench case must not inherit any");
    Ok(scenario)
}

/// Scales the scenario's machines to `machines` in the proportions of its groups (the
/// remainder goes to the first groups, one each), workers per machine unchanged, and its
/// job rate by the same factor, so each machine runs the load it runs in the scenario.
/// Builds past the loader's `MACHINES_LIMIT` (500): the bench measures what the limit
/// protects against.
pub(crate) fn scale_machines(scenario: &mut Scenario, machines: u32) {
    assert!(machines > 0, "a fleet has machines");
    let groups = &mut scenario.topology.machines;
    let before: u32 = groups.iter().map(|group| group.count).sum();
    assert!(before > 0, "the scenario has machines to scale");
    let mut placed = 0;
    for group in groups.iter_mut() {
        group.count = (u64::from(machines) * u64::from(group.count) / u64::from(before)) as u32;
        placed += group.count;
    }
    for group in groups.iter_mut().take((machines - placed) as usize) {
        group.count += 1;
    }
    groups.retain(|group| group.count > 0);
    let after: u32 = groups.iter().map(|group| group.count).sum();
    assert_eq!(after, machines, "every machine placed in a group");
    scenario.workload.jobs_per_second *= f64::from(machines) / f64::from(before);
}

/// The logs per second a scenario asks for: jobs × lines per job, plus the dev hosts' lines.
pub(crate) fn nominal_logs_per_second(scenario: &Scenario) -> f64 {
    scenario.workload.jobs_per_second * f64::from(scenario.workload.logs_per_job)
        + f64::from(scenario.topology.dev_hosts) * f64::from(scenario.app.dev.logs_per_second)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fleets_keep_the_baseline_per_machine_load() {
        let baseline = baseline().unwrap();
        let base_machines: u32 = baseline.topology.machines.iter().map(|group| group.count).sum();
        let per_machine = baseline.workload.jobs_per_second / f64::from(base_machines);
        for machines in [25, 100, 200, 1000] {
            let scenario =
                scenario_for(CaseSpec { name: "x", shape: Shape::Fleet(machines) }, Duration::from_secs(1)).unwrap();
            let counts: Vec<u32> = scenario.topology.machines.iter().map(|group| group.count).collect();
            assert_eq!(counts.iter().sum::<u32>(), machines);
            assert!(counts.iter().max().unwrap() - counts.iter().min().unwrap() <= 1, "{counts:?} stay balanced");
            let rate = scenario.workload.jobs_per_second / f64::from(machines);
            assert!((rate - per_machine).abs() < 1e-9, "{machines} machines: {rate} jobs/s each, not {per_machine}");
        }
    }

    #[test]
    fn the_load_case_asks_for_about_16000_logs_per_second() {
        let scenario = scenario_for(case_named("load-16k").unwrap(), Duration::from_secs(1)).unwrap();
        let logs = nominal_logs_per_second(&scenario);
        assert!((16_000.0..16_100.0).contains(&logs), "{logs} logs/s");
    }

    #[test]
    fn the_baseline_case_is_the_baseline_file_with_the_bench_duration() {
        let file = baseline().unwrap();
        let case = scenario_for(case_named("baseline").unwrap(), Duration::from_secs(3)).unwrap();
        assert_eq!(case.duration, Duration::from_secs(3));
        assert_eq!(case.workload.jobs_per_second, file.workload.jobs_per_second);
        assert_eq!(case.topology.machines.len(), file.topology.machines.len());
    }

    #[test]
    fn an_unknown_case_is_refused_naming_the_known_ones() {
        let error = cases_selected(&["fleet-7".to_string()]).unwrap_err();
        assert!(error.contains("\"fleet-7\"") && error.contains("fleet-1000"), "{error}");
        let two = cases_selected(&["load-16k".to_string(), "baseline".to_string()]).unwrap();
        assert_eq!(two.iter().map(|case| case.name).collect::<Vec<_>>(), ["baseline", "load-16k"]);
    }
}
