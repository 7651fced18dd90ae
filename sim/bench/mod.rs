//! `obsim bench`: how fast the simulation runs, on a fixed set of cases (README
//! "Performance").
//!
//! Each case (`cases::CASES`: the baseline, fleets of 25 to 1,000 machines, a 16,000 logs/s
//! load) runs the real pipeline for a fixed simulated time in a child process of its own
//! (`obsim bench --case NAME`), so that each case's peak memory is its own high-water mark
//! and a case that runs away is killed without taking the others with it. Each child stops
//! early at a wall-clock budget and reports what it measured so far. The parent collects one
//! [`BenchReport`]: a table for the terminal and JSON that `obsim bench compare` reads.
//!
//! Wall-clock time is read here and only here: it decides when a case stops measuring,
//! never what a run does (ARCHITECTURE.md §2); the simulated run itself is the usual seeded
//! one.

mod cases;
pub mod compare;
mod measure;
mod render;

pub use cases::{CASES, CaseSpec, case_named, cases_selected};
pub use render::{COLUMNS, table};

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::pipeline::Pipeline;

/// The version of the bench JSON's layout; `compare` refuses another.
pub const BENCH_SCHEMA_VERSION: u32 = 1;

/// Default simulated time each case runs.
pub const SIM_SECS_DEFAULT: f64 = 30.0;

/// Default wall-clock budget of one case, seconds.
pub const CASE_WALL_SECS_DEFAULT: f64 = 120.0;

/// Longest simulated time a case may be asked to run (one hour): the bench is a measurement,
/// not a soak.
pub const SIM_SECS_LIMIT: f64 = 3_600.0;

/// Longest wall-clock budget of one case (one hour).
pub const CASE_WALL_SECS_LIMIT: f64 = 3_600.0;

/// How long the parent waits for a child past the child's own budget before killing it: a
/// single step of a huge fleet, or its build, may overrun the budget the child checks between
/// steps.
const CHILD_GRACE: Duration = Duration::from_secs(60);

/// How often the parent looks whether a child has finished.
const CHILD_POLL: Duration = Duration::from_millis(20);

/// How a case's measurement ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stop {
    /// It ran the whole simulated time.
    Done,
    /// It hit its wall-clock budget first; the numbers cover the simulated time it reached.
    WallBudget,
    /// The run stopped with an error (`error` says which).
    Failed,
    /// The child overran its budget by `CHILD_GRACE` and was killed: nothing was measured.
    Killed,
}

/// What one case measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CaseResult {
    /// The case's name (`cases::CASES`).
    pub name: String,
    /// Machine hosts in the case's topology.
    pub machines: u32,
    /// Simulated hosts (machines, dev hosts, the API, Railway's processes, Dash0).
    pub hosts: u32,
    /// Logs per second the case's workload asks for (jobs × lines per job + dev hosts).
    pub load_logs_per_sec: f64,
    /// Simulated time the case was asked to run.
    pub sim_secs_target: f64,
    /// Simulated time it reached.
    pub sim_secs: f64,
    /// Wall-clock time of the run (building the pipeline excluded).
    pub wall_secs: f64,
    /// Wall-clock time building the pipeline took.
    pub build_wall_secs: f64,
    /// Simulated seconds per wall second: above 1, faster than real time.
    pub sim_per_wall: f64,
    /// CPU time of the run (building excluded), all threads.
    pub cpu_secs: Option<f64>,
    /// Simulated seconds per CPU-second: the speed with the machine's other load taken out
    /// (on a shared machine, wall time also counts the time others held the cores).
    pub sim_per_cpu: Option<f64>,
    /// Records (logs and spans) the app emitted in the run.
    pub records: u64,
    /// Of those, records Dash0 stored by the end.
    pub records_delivered: u64,
    /// Records emitted per simulated second: the load the case actually put on the pipeline.
    pub records_per_sim_sec: f64,
    /// Records emitted per CPU-second of the run: the pipeline's cost per record.
    pub records_per_cpu_sec: Option<f64>,
    /// The case's process's peak resident memory (VmHWM), MiB.
    pub peak_mib: Option<f64>,
    /// How the measurement ended.
    pub stop: Stop,
    /// Why the case failed or was killed.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub error: Option<String>,
}

/// The machine a bench ran on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MachineInfo {
    /// Cores offered to the process.
    pub cores: u32,
    /// The processor's model name, where `/proc/cpuinfo` says it.
    pub cpu_model: Option<String>,
}

/// A whole bench: what ran where, and each case's result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BenchReport {
    /// [`BENCH_SCHEMA_VERSION`] when written.
    pub bench_schema_version: u32,
    /// The obsim that measured (its Cargo version).
    pub obsim_version: String,
    /// The checkout's commit when the bench ran inside one.
    pub git_commit: Option<String>,
    /// `release` or `debug`: a debug build's numbers are not comparable with a release's.
    pub profile: String,
    /// Where it ran.
    pub machine: MachineInfo,
    /// Simulated seconds each case was asked to run (`--sim-secs`).
    pub sim_secs: f64,
    /// Each case's wall-clock budget (`--case-wall-secs`).
    pub case_wall_secs: f64,
    /// The cases, in the order they ran.
    pub cases: Vec<CaseResult>,
}

/// How each case runs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CaseOptions {
    /// Simulated time to run.
    pub sim: Duration,
    /// Wall-clock budget: the case stops measuring when building and running have taken this.
    pub wall_budget: Duration,
}

impl CaseOptions {
    /// Options from the command line's seconds, or an error naming the bad flag.
    pub fn from_secs(sim_secs: f64, case_wall_secs: f64) -> Result<CaseOptions, String> {
        if !(sim_secs.is_finite() && sim_secs > 0.0 && sim_secs <= SIM_SECS_LIMIT) {
            return Err(format!("--sim-secs {sim_secs} must be above 0 and at most {SIM_SECS_LIMIT}"));
        }
        if !(case_wall_secs.is_finite() && case_wall_secs > 0.0 && case_wall_secs <= CASE_WALL_SECS_LIMIT) {
            return Err(format!(
                "--case-wall-secs {case_wall_secs} must be above 0 and at most {CASE_WALL_SECS_LIMIT}"
            ));
        }
        Ok(CaseOptions { sim: Duration::from_secs_f64(sim_secs), wall_budget: Duration::from_secs_f64(case_wall_secs) })
    }
}

/// Runs the case named `name` in this process and measures it (the child's side of
/// `obsim bench`; its peak memory is this process's).
pub fn run_case_here(name: &str, options: CaseOptions) -> Result<CaseResult, String> {
    let case = case_named(name)?;
    let scenario = Arc::new(cases::scenario_for(case, options.sim)?);
    let seed = scenario.seed;
    #[allow(clippy::disallowed_methods)] // determinism: ok (bench measures wall time; never reaches a run)
    let started = Instant::now(); // determinism: ok (bench measures wall time; never reaches a run)
    let mut pipeline = Pipeline::build(Arc::clone(&scenario), seed);
    let build_wall = started.elapsed();
    let cpu_before = measure::cpu_secs();
    #[allow(clippy::disallowed_methods)] // determinism: ok (bench measures wall time; never reaches a run)
    let run_started = Instant::now(); // determinism: ok (bench measures wall time; never reaches a run)
    let (stop, error) = step_within(&mut pipeline, options.sim, options.wall_budget.saturating_sub(build_wall));
    let wall = run_started.elapsed();
    let cpu = cpu_before.zip(measure::cpu_secs()).map(|(before, after)| (after - before).max(0.0));
    let sim_secs = pipeline.world.elapsed().as_secs_f64();
    let accounting = pipeline.ledger.account();
    let records: u64 = accounting.totals.values().map(|totals| totals.emitted).sum();
    let records_delivered: u64 = accounting.totals.values().map(|totals| totals.delivered).sum();
    let wall_secs = wall.as_secs_f64();
    Ok(CaseResult {
        name: case.name.to_string(),
        machines: scenario.topology.machines.iter().map(|group| group.count).sum(),
        hosts: scenario.placed_hosts().len() as u32,
        load_logs_per_sec: cases::nominal_logs_per_second(&scenario),
        sim_secs_target: options.sim.as_secs_f64(),
        sim_secs,
        wall_secs,
        build_wall_secs: build_wall.as_secs_f64(),
        sim_per_wall: if wall_secs > 0.0 { sim_secs / wall_secs } else { 0.0 },
        cpu_secs: cpu,
        sim_per_cpu: cpu.filter(|secs| *secs > 0.0).map(|secs| sim_secs / secs),
        records,
        records_delivered,
        records_per_sim_sec: if sim_secs > 0.0 { records as f64 / sim_secs } else { 0.0 },
        records_per_cpu_sec: cpu.filter(|secs| *secs > 0.0).map(|secs| records as f64 / secs),
        peak_mib: measure::peak_mib(),
        stop,
        error,
    })
}

/// Steps `pipeline` until it reaches `sim` or `budget` of wall-clock time has passed,
/// whichever comes first; bounded by both (each step advances simulated time by one tick).
fn step_within(pipeline: &mut Pipeline, sim: Duration, budget: Duration) -> (Stop, Option<String>) {
    #[allow(clippy::disallowed_methods)] // determinism: ok (bench measures wall time; never reaches a run)
    let started = Instant::now(); // determinism: ok (bench measures wall time; never reaches a run)
    while pipeline.world.elapsed() < sim {
        if started.elapsed() >= budget {
            return (Stop::WallBudget, None);
        }
        if let Err(error) = pipeline.world.step() {
            return (Stop::Failed, Some(error.to_string()));
        }
    }
    (Stop::Done, None)
}

/// Runs each of `cases` in a child process (`exe bench --case NAME …`), in order, calling
/// `on_case` after each; returns the whole report.
pub fn run_set(exe: &Path, cases: &[CaseSpec], options: CaseOptions, on_case: &dyn Fn(&CaseResult)) -> BenchReport {
    let mut results = Vec::with_capacity(cases.len());
    for case in cases {
        let result = run_child(exe, *case, options);
        on_case(&result);
        results.push(result);
    }
    BenchReport {
        bench_schema_version: BENCH_SCHEMA_VERSION,
        obsim_version: env!("CARGO_PKG_VERSION").to_string(),
        git_commit: measure::git_commit(),
        profile: if cfg!(debug_assertions) { "debug" } else { "release" }.to_string(),
        machine: MachineInfo { cores: measure::cores(), cpu_model: measure::cpu_model() },
        sim_secs: options.sim.as_secs_f64(),
        case_wall_secs: options.wall_budget.as_secs_f64(),
        cases: results,
    }
}

/// Runs `case` in a child process and reads its result (the last line of its stdout); a
/// child that overruns its budget by `CHILD_GRACE` is killed.
fn run_child(exe: &Path, case: CaseSpec, options: CaseOptions) -> CaseResult {
    use std::io::Read as _;
    let spawned = std::process::Command::new(exe)
        .args(["bench", "--case", case.name])
        .args(["--sim-secs", &options.sim.as_secs_f64().to_string()])
        .args(["--case-wall-secs", &options.wall_budget.as_secs_f64().to_string()])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(error) => {
            return unmeasured(case, options, Stop::Failed, format!("cannot start {}: {error}", exe.display()));
        }
    };
    let deadline = options.wall_budget + CHILD_GRACE;
    #[allow(clippy::disallowed_methods)] // determinism: ok (bench measures wall time; never reaches a run)
    let started = Instant::now(); // determinism: ok (bench measures wall time; never reaches a run)
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() < deadline => std::thread::sleep(CHILD_POLL),
            Ok(None) | Err(_) => {
                // Killing a child that has just exited fails harmlessly; wait reaps it.
                let _ = child.kill();
                let _ = child.wait();
                let message = format!("killed after {:.0} s (budget + grace)", deadline.as_secs_f64());
                return unmeasured(case, options, Stop::Killed, message);
            }
        }
    };
    let mut stdout = String::new();
    if let Some(mut pipe) = child.stdout.take() {
        let _ = pipe.read_to_string(&mut stdout);
    }
    let line = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(line).unwrap_or_else(|error| {
        let message = format!("the case's process exited with {status} and no result ({error})");
        unmeasured(case, options, Stop::Failed, message)
    })
}

/// The result of a case that measured nothing: zeros and `None`s, with the reason.
fn unmeasured(case: CaseSpec, options: CaseOptions, stop: Stop, error: String) -> CaseResult {
    let scenario = cases::scenario_for(case, options.sim).ok();
    CaseResult {
        name: case.name.to_string(),
        machines: scenario.as_ref().map_or(0, |s| s.topology.machines.iter().map(|group| group.count).sum()),
        hosts: scenario.as_ref().map_or(0, |s| s.placed_hosts().len() as u32),
        load_logs_per_sec: scenario.as_ref().map_or(0.0, cases::nominal_logs_per_second),
        sim_secs_target: options.sim.as_secs_f64(),
        sim_secs: 0.0,
        wall_secs: 0.0,
        build_wall_secs: 0.0,
        sim_per_wall: 0.0,
        cpu_secs: None,
        sim_per_cpu: None,
        records: 0,
        records_delivered: 0,
        records_per_sim_sec: 0.0,
        records_per_cpu_sec: None,
        peak_mib: None,
        stop,
        error: Some(error),
    }
}
