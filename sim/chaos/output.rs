//! What a sweep leaves behind: one replayable failure file per failing run (shrunk when
//! shrinking ran) under `failures/`; per run a folder `runs/<scenario>/<seed>/` with its
//! `result.json` and the case it ran (`case.toml`), plus `summary.md` and `report.html` for
//! failed runs and the worst seeds by log p99; and the sweep's index (`index.json`,
//! `index.md`, `index.html`).
//!
//! Why a file per failure and not only a seed: a chaos case is the base scenario *plus* a
//! drawn schedule; the file carries both, with the verdict and event-log hash in its
//! header, so `obsim replay <file>` proves the failure on any machine without the sweep.
//!
//! Why full reports only for failures and the worst seeds: a nightly sweep runs thousands of
//! seeds; a `result.json` each keeps every number for trend lines, while the pages people
//! open are the ones worth opening.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::sweep::{Shard, SweepRun};
use crate::replay::failure_file_text;
use crate::report::result::RunResult;

/// How many of the slowest runs (by log p99) get a full report and a place in the index's
/// "worst seeds".
pub const WORST_RUNS_COUNT: usize = 5;

/// The version of `index.json`'s layout; bumped on any incompatible change.
pub const INDEX_SCHEMA_VERSION: u32 = 1;

/// `index.json`: the sweep at a glance.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Index {
    pub schema_version: u32,
    /// `i/n` of the sweep this index covers.
    pub shard: String,
    pub first_seed: u64,
    pub seeds: u64,
    pub runs_count: u64,
    pub failures_count: u64,
    pub runs: Vec<IndexRun>,
}

/// One run in the index.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IndexRun {
    pub scenario: String,
    pub file: String,
    /// The file's position in the sweep's (path-ordered) list: runs are in (seed,
    /// file_index) order.
    #[serde(default)]
    pub file_index: u64,
    pub seed: u64,
    pub passed: bool,
    pub failed_checks: Vec<String>,
    pub faults: Vec<String>,
    pub log_latency_p99_micros: Option<u64>,
    pub log_latency_max_micros: Option<u64>,
    pub event_log_hash: Option<String>,
    /// The failure file, relative to the sweep's folder.
    pub failure_file: Option<String>,
    /// The reductions shrinking kept, and the faults left.
    pub shrunk_steps: Vec<String>,
    pub shrunk_faults: Vec<String>,
    /// The command that replays the failure.
    pub replay: Option<String>,
    /// A world error or a case that could not be made.
    pub error: Option<String>,
    /// Records lost (with a cause or silently), logs and spans; null without a verdict.
    #[serde(default)]
    pub lost_count: Option<u64>,
    /// The loss causes with at least one record.
    #[serde(default)]
    pub loss_causes: Vec<String>,
    /// The slowest judged 10 s window and the mean of the judged windows, in logs stored at
    /// Dash0 per second; null when no window was judged.
    #[serde(default)]
    pub log_throughput_min_per_second: Option<f64>,
    #[serde(default)]
    pub log_throughput_mean_per_second: Option<f64>,
    /// The run's report folder, relative to the sweep's folder (`runs/<scenario>/<seed>`);
    /// it holds `result.json` and `case.toml`, and `summary.md` and `report.html` when
    /// `full_report`.
    #[serde(default)]
    pub report_dir: Option<String>,
    #[serde(default)]
    pub full_report: bool,
}

/// A fault as one line: kind, window, parameters.
pub fn describe_fault(fault: &crate::faults::FaultSpec) -> String {
    let text = toml::to_string(fault).unwrap_or_default();
    let fields: Vec<String> = text.lines().filter(|line| !line.starts_with("kind")).map(|line| line.replace(" = ", "=")).collect();
    format!("{} {}", fault.kind(), fields.join(" "))
}

/// Writes the failure files, the per-run reports and the index of `runs` into `out`;
/// returns the index.
pub fn write(out: &Path, runs: &[SweepRun], shard: Shard, first_seed: u64, seeds: u64) -> std::io::Result<Index> {
    let failures_dir = out.join("failures");
    let worst = worst_runs(runs);
    let mut index_runs = Vec::with_capacity(runs.len());
    for (position, run) in runs.iter().enumerate() {
        let scenario = match &run.case {
            Ok(case) => case.scenario.name.clone(),
            Err(_) => run.base_path.file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_default(),
        };
        let result = run.verdict.as_ref().ok().map(|verdict| RunResult::of(verdict, None));
        let mut entry = IndexRun {
            scenario: scenario.clone(),
            file: super::files::display_path(&run.base_path),
            file_index: run.file_index as u64,
            seed: run.seed,
            passed: run.passed(),
            failed_checks: run.failed_checks(),
            faults: run.case.as_ref().map(|case| case.faults().iter().map(describe_fault).collect()).unwrap_or_default(),
            log_latency_p99_micros: run.verdict.as_ref().ok().map(|v| v.log_latency.p99_micros),
            log_latency_max_micros: run.verdict.as_ref().ok().map(|v| v.log_latency.max_micros),
            event_log_hash: run.verdict.as_ref().ok().map(|v| v.outcome.hash.to_string()),
            failure_file: None,
            shrunk_steps: Vec::new(),
            shrunk_faults: Vec::new(),
            replay: None,
            error: run.verdict.as_ref().err().cloned(),
            lost_count: result.as_ref().map(RunResult::lost_count),
            loss_causes: result.as_ref().map(RunResult::loss_causes).unwrap_or_default(),
            log_throughput_min_per_second: result.as_ref().and_then(|r| r.throughput.min_window_per_second),
            log_throughput_mean_per_second: result.as_ref().and_then(|r| r.throughput.mean_per_second),
            report_dir: None,
            full_report: false,
        };
        if !entry.passed
            && let Ok(case) = &run.case
        {
            std::fs::create_dir_all(&failures_dir)?;
            let name = format!("{scenario}-seed{}.toml", run.seed);
            let path: PathBuf = failures_dir.join(&name);
            let text = match (&run.shrunk, &run.verdict) {
                (Some(shrunk), _) => {
                    entry.shrunk_steps = shrunk.steps.clone();
                    entry.shrunk_faults = shrunk.case.faults().iter().map(describe_fault).collect();
                    let mut header = format!(
                        "# obsim chaos: shrunk in {} runs from {} faults to {} while `{}` kept failing\n",
                        shrunk.runs,
                        case.faults().len(),
                        shrunk.case.faults().len(),
                        shrunk.check
                    );
                    for step in &shrunk.steps {
                        let _ = writeln!(header, "# obsim chaos: {step}");
                    }
                    header + &failure_file_text(&shrunk.case.text, run.seed, &shrunk.verdict)
                }
                (None, Ok(verdict)) => failure_file_text(&case.text, run.seed, verdict),
                // A world error has no verdict to record: the case itself reproduces it.
                (None, Err(_)) => case.text.clone(),
            };
            std::fs::write(&path, text)?;
            entry.replay = Some(format!("cargo run --release -- replay {}", super::files::display_path(&path)));
            entry.failure_file = Some(format!("failures/{name}"));
        }
        if let (Ok(case), Some(mut result)) = (&run.case, result) {
            // The run's folder: the case it ran (replayable with `obsim run`) and its result.
            let relative = format!("runs/{scenario}/{}", run.seed);
            let dir = out.join(&relative);
            std::fs::create_dir_all(&dir)?;
            let case_path = dir.join("case.toml");
            std::fs::write(&case_path, &case.text)?;
            result.scenario_file = Some(super::files::display_path(&case_path));
            result.replay = format!("cargo run --release -- run {}", super::files::display_path(&case_path));
            let full = !entry.passed || worst.contains(&position);
            crate::report::write_run(&dir, &result, None, full)?;
            entry.report_dir = Some(relative);
            entry.full_report = full;
        }
        index_runs.push(entry);
    }
    let index = Index {
        schema_version: INDEX_SCHEMA_VERSION,
        shard: shard.to_string(),
        first_seed,
        seeds,
        runs_count: index_runs.len() as u64,
        failures_count: index_runs.iter().filter(|run| !run.passed).count() as u64,
        runs: index_runs,
    };
    write_index(out, &index)?;
    Ok(index)
}

/// Positions in `runs` of the `WORST_RUNS_COUNT` runs with the highest log p99 (ties: the
/// earlier run first).
fn worst_runs(runs: &[SweepRun]) -> Vec<usize> {
    let mut measured: Vec<(u64, usize)> = runs
        .iter()
        .enumerate()
        .filter_map(|(position, run)| run.verdict.as_ref().ok().map(|v| (v.log_latency.p99_micros, position)))
        .collect();
    measured.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    measured.into_iter().take(WORST_RUNS_COUNT).map(|(_, position)| position).collect()
}

/// The index's runs with the highest log p99, worst first (ties: index order).
pub fn worst_index_runs(index: &Index) -> Vec<&IndexRun> {
    let mut measured: Vec<&IndexRun> = index.runs.iter().filter(|run| run.log_latency_p99_micros.is_some()).collect();
    measured.sort_by_key(|run| std::cmp::Reverse(run.log_latency_p99_micros));
    measured.truncate(WORST_RUNS_COUNT);
    measured
}

/// Writes `index.json`, `index.md` and `index.html` of `index` into `out`.
pub fn write_index(out: &Path, index: &Index) -> std::io::Result<()> {
    std::fs::create_dir_all(out)?;
    let json = serde_json::to_string_pretty(index).map_err(std::io::Error::other)?;
    std::fs::write(out.join("index.json"), json + "\n")?;
    std::fs::write(out.join("index.md"), markdown(index))?;
    std::fs::write(out.join("index.html"), crate::report::index_html::render(index))?;
    Ok(())
}

/// `index.md`: the failures with their replay commands, then every run.
pub fn markdown(index: &Index) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# obsim chaos sweep (shard {})\n", index.shard);
    let _ = writeln!(
        out,
        "{} runs (seeds {}..{}), {} failed.\n",
        index.runs_count,
        index.first_seed,
        index.first_seed + index.seeds,
        index.failures_count
    );
    if index.failures_count > 0 {
        let _ = writeln!(out, "## Failures\n");
        for run in index.runs.iter().filter(|run| !run.passed) {
            let _ = writeln!(out, "- **{}** seed {}: failed {}", run.scenario, run.seed, run.failed_checks.join(", "));
            if let Some(replay) = &run.replay {
                let _ = writeln!(out, "  - replay: `{replay}`");
            }
            if !run.shrunk_faults.is_empty() || !run.shrunk_steps.is_empty() {
                let _ = writeln!(out, "  - shrunk to: {}", if run.shrunk_faults.is_empty() { "no faults".to_string() } else { run.shrunk_faults.join("; ") });
            }
            if let Some(error) = &run.error {
                let _ = writeln!(out, "  - error: {error}");
            }
        }
        let _ = writeln!(out);
    }
    let worst = worst_index_runs(index);
    if !worst.is_empty() {
        let _ = writeln!(out, "## Worst seeds by log p99\n");
        for run in worst {
            let _ = writeln!(
                out,
                "- **{}** seed {}: p99 {:.1} ms, max {:.1} ms{}",
                run.scenario,
                run.seed,
                run.log_latency_p99_micros.unwrap_or(0) as f64 / 1000.0,
                run.log_latency_max_micros.unwrap_or(0) as f64 / 1000.0,
                run.report_dir.as_ref().filter(|_| run.full_report).map(|dir| format!(" ({dir}/summary.md)")).unwrap_or_default()
            );
        }
        let _ = writeln!(out);
    }
    let _ = writeln!(out, "## Runs\n\n| scenario | seed | verdict | log p99 | faults |\n|---|---|---|---|---|");
    for run in &index.runs {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} |",
            run.scenario,
            run.seed,
            if run.passed { "pass".to_string() } else { format!("FAIL {}", run.failed_checks.join(", ")) },
            run.log_latency_p99_micros.map(|micros| format!("{:.1} ms", micros as f64 / 1000.0)).unwrap_or_default(),
            run.faults.len()
        );
    }
    out
}

/// A failure file turned into a regression scenario for `fixtures/regressions/`: the
/// failure's `# obsim failure:` header (the verdict and hash the failing run produced) is
/// dropped — once the bug is fixed the scenario must pass, with a new hash — and a header
/// says where it came from. The shrinking notes stay: they say what the case is about.
pub fn promote(failure_text: &str, source: &str) -> String {
    let mut out = format!(
        "# Regression: a chaos failure promoted from {source}.\n\
         # It failed before the fix it guards; every `cargo test` runs it and it must pass.\n"
    );
    for line in failure_text.lines() {
        if line.starts_with("# obsim failure:") || line.starts_with("# replay:") {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn promoting_drops_the_failure_header_and_keeps_the_scenario() {
        let failure = "# obsim chaos: removed fault[0] link_stall\n# obsim failure: event-log hash ab\n# obsim failure: verdict FAIL\n# replay: x\nname = \"baseline\"\nseed = 5\n";
        let promoted = promote(failure, "failures/baseline-seed5.toml");
        assert!(promoted.starts_with("# Regression: a chaos failure promoted from failures/baseline-seed5.toml."));
        assert!(promoted.contains("# obsim chaos: removed fault[0] link_stall\nname = \"baseline\"\nseed = 5\n"));
        assert!(!promoted.contains("obsim failure") && !promoted.contains("# replay:"), "{promoted}");
        assert!(crate::replay::recorded(&promoted).is_none(), "no longer a failure file");
    }
}
