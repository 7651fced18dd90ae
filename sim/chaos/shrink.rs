//! Shrinking a failing chaos case: fewer faults, shorter faults, fewer machines, lower load,
//! a shorter load phase — each step kept only when the same check still fails.
//!
//! Why a greedy pass over named candidates rather than proptest's value-tree shrinking: the
//! things worth shrinking are not only the drawn schedule but the scenario around it
//! (machines, load, duration), and a person reads the result. Each candidate is one
//! simple, named reduction, tried biggest first; the first that still fails the same check
//! is kept and the pass starts over. Every kept step makes the case strictly smaller (by
//! fault count, total fault time, machines, load or duration), so the pass ends; `runs_max`
//! bounds it anyway, and a sweep's time budget may cut it short (`shrink_observed`).

use std::time::Duration;

use super::case::Case;
use super::progress::{Phase, SweepObserver, Unobserved};
use super::strategy::DURATION_MIN;
use crate::check::{CheckName, Verdict};
use crate::faults::FaultSpec;
use crate::scenario::Scenario;

/// The least job rate shrinking goes down to: below it a run submits too few jobs to show
/// anything.
pub(crate) const JOBS_PER_SECOND_MIN: f64 = 0.05;

/// The smallest case found and how.
#[derive(Clone, Debug)]
pub struct Shrunk {
    /// The smallest case that still fails `check`.
    pub case: Case,
    /// Its verdict.
    pub verdict: Verdict,
    /// The check kept failing: the first check the original case failed.
    pub check: CheckName,
    /// Runs spent shrinking (candidates tried).
    pub runs: u32,
    /// The reductions kept, in order ("removed fault[2] link_drop", …), and last, when
    /// shrinking was cut short, a step saying so.
    pub steps: Vec<String>,
    /// Whether the sweep's time budget stopped shrinking before it ended by itself: the
    /// case is the smallest found so far, not as small as shrinking would make it.
    pub cut_short: bool,
}

/// Shrinks `case`, which failed with `verdict`, spending at most `runs_max` runs.
pub fn shrink(case: Case, verdict: Verdict, runs_max: u32) -> Shrunk {
    shrink_observed(case, verdict, runs_max, &Unobserved)
}

/// `shrink`, telling `observer` each step ("shrinking S seed N step k/n") and asking it
/// before each: when it says stop (the sweep's `--time` budget is spent) shrinking ends with
/// the smallest failing case so far, `cut_short` set and a last step saying so (the failure
/// file and the index list the steps).
pub fn shrink_observed(case: Case, verdict: Verdict, runs_max: u32, observer: &dyn SweepObserver) -> Shrunk {
    let check = verdict
        .checks()
        .iter()
        .find(|check| !check.passed)
        .map(|check| check.name)
        .expect("only a failing case is shrunk");
    let mut shrunk = Shrunk { case, verdict, check, runs: 0, steps: Vec::new(), cut_short: false };
    // Each pass either keeps a strictly smaller case and starts over, or ends the loop.
    'passes: loop {
        for (step, candidate) in candidates(&shrunk.case.scenario) {
            if shrunk.runs >= runs_max {
                break 'passes;
            }
            if !observer.keep_shrinking() {
                shrunk.cut_short = true;
                shrunk.steps.push(format!(
                    "shrinking cut short after {} of at most {runs_max} runs: the time budget (--time) was \
                     spent; this is the smallest failing case found so far",
                    shrunk.runs
                ));
                break 'passes;
            }
            let Ok(case) = Case::of(candidate, &shrunk.case.base_path, shrunk.case.seed) else {
                continue; // e.g. a fault names a machine the reduction removed
            };
            shrunk.runs += 1;
            observer.phase(Phase::Shrink {
                scenario: &shrunk.case.scenario.name,
                seed: shrunk.case.seed,
                step: shrunk.runs,
                steps_max: runs_max,
            });
            let Ok(verdict) = case.run() else { continue };
            if verdict.checks().iter().any(|c| !c.passed && c.name == shrunk.check) {
                shrunk.steps.push(step);
                shrunk.case = case;
                shrunk.verdict = verdict;
                continue 'passes;
            }
        }
        break;
    }
    shrunk
}

/// The reductions of `scenario` worth trying, biggest first, each with what it did.
fn candidates(scenario: &Scenario) -> Vec<(String, Scenario)> {
    let mut out = Vec::new();
    let faults = &scenario.faults;
    if faults.len() > 1 {
        out.push(("removed every fault".to_string(), Scenario { faults: Vec::new(), ..scenario.clone() }));
    }
    for index in 0..faults.len() {
        let mut fewer = scenario.clone();
        let removed = fewer.faults.remove(index);
        out.push((format!("removed fault[{index}] {}", removed.kind()), fewer));
    }
    // A shorter load phase, still holding every fault.
    let needed = faults.iter().map(|fault| fault.end().unwrap_or(fault.at() + Duration::from_secs(1))).max();
    let half = Duration::from_secs((scenario.duration.as_secs() / 2).max(DURATION_MIN.as_secs()));
    let shorter = half.max(needed.unwrap_or_default());
    if shorter < scenario.duration {
        out.push((
            format!(
                "load phase {} → {}",
                crate::units::format_duration(scenario.duration),
                crate::units::format_duration(shorter)
            ),
            Scenario { duration: shorter, ..scenario.clone() },
        ));
    }
    // Fewer machines: a whole group, then half of one.
    let groups = &scenario.topology.machines;
    for index in 0..groups.len() {
        if groups.len() > 1 {
            let mut fewer = scenario.clone();
            let removed = fewer.topology.machines.remove(index);
            out.push((format!("removed the {} {} machines", removed.count, removed.machine_type.as_str()), fewer));
        }
        if groups[index].count > 1 {
            let mut fewer = scenario.clone();
            let group = &mut fewer.topology.machines[index];
            let before = group.count;
            group.count -= group.count / 2;
            out.push((format!("{} machines {before} → {}", group.machine_type.as_str(), group.count), fewer));
        }
    }
    if scenario.topology.dev_hosts > 0 {
        let mut fewer = scenario.clone();
        fewer.topology.dev_hosts = 0;
        out.push(("removed the dev hosts".to_string(), fewer));
    }
    // Lower load.
    let rate = scenario.workload.jobs_per_second;
    if rate / 2.0 >= JOBS_PER_SECOND_MIN {
        let mut lighter = scenario.clone();
        lighter.workload.jobs_per_second = rate / 2.0;
        out.push((format!("jobs_per_second {rate} → {}", rate / 2.0), lighter));
    }
    // Shorter faults.
    for (index, fault) in faults.iter().enumerate() {
        if let Some(halved) = halve(fault) {
            let mut shorter = scenario.clone();
            shorter.faults[index] = halved;
            out.push((format!("fault[{index}] {} lasts half as long", fault.kind()), shorter));
        }
    }
    out
}

/// `fault` lasting half as long (whole seconds, at least one), if it lasts longer than 1 s.
fn halve(fault: &FaultSpec) -> Option<FaultSpec> {
    let half = |lasting: &Duration| {
        (lasting.as_secs() > 1).then(|| Duration::from_secs(lasting.as_secs() - lasting.as_secs() / 2))
    };
    let mut halved = fault.clone();
    let (_, lasting) = halved.window_mut();
    let lasting = lasting?;
    *lasting = half(lasting)?;
    Some(halved)
}
