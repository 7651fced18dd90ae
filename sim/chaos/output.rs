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
    /// The runs the sweep set out to do (seeds of its shard × files); more than
    /// `runs_count` when it stopped early (its `--time` budget, or killed). Null in indexes
    /// written before obsim recorded it.
    #[serde(default)]
    pub planned_runs_count: Option<u64>,
    /// Whether the sweep wrote this index at its end. A sweep rewrites its index after every
    /// finished run with `false`, so one killed mid-way leaves `false` and the runs it did.
    #[serde(default = "finished_default")]
    pub finished: bool,
    /// In a partial merge (`obsim report merge --partial`): the shards (`i/n`) that had no
    /// index, and those whose index was not finished.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing_shards: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unfinished_shards: Vec<String>,
    pub runs: Vec<IndexRun>,
}

/// Indexes written before `finished` existed were written only at a sweep's end.
fn finished_default() -> bool {
    true
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
    /// Of `lost_count`, records no part recorded a cause for (a harness bug signal).
    #[serde(default)]
    pub lost_silently_count: Option<u64>,
    /// Records still held by a part at the end (not lost: a liveness failure).
    #[serde(default)]
    pub in_flight_count: Option<u64>,
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

/// Writes the failure files, the per-run reports and the index of `runs` into `out`;
/// returns the index. The same as feeding every run to a [`SweepWriter`] and finishing it.
pub fn write(out: &Path, runs: &[SweepRun], shard: Shard, first_seed: u64, seeds: u64) -> std::io::Result<Index> {
    let mut writer = SweepWriter::new(out, shard, first_seed, seeds, runs.len() as u64)?;
    for run in runs {
        writer.add(run)?;
    }
    writer.finish()
}

/// A sweep's folder, written as runs finish.
///
/// Why incrementally: a nightly shard that hits its time limit is killed; if the index were
/// written only at the end, it would upload nothing and the runs it did (and the failures
/// it found) would be lost. So every finished run writes its failure file and report folder
/// at once, and the index (json, md, html) is rewritten, each file atomically (a temporary
/// file renamed over it), marked `finished: false` until [`SweepWriter::finish`]. A killed
/// sweep leaves a valid index of exactly the runs that finished.
///
/// The final index does not depend on the order runs finished in: runs are kept in
/// (seed, file) order, and the worst seeds (which get full reports) are chosen at the end by
/// (log p99, then that order).
#[derive(Debug)]
pub struct SweepWriter {
    out: PathBuf,
    /// The index so far: the finished runs' entries in (seed, file index) order, kept
    /// rather than rebuilt so a rewrite copies nothing.
    index: Index,
    /// The results of the runs that may be among the worst seeds, with their folders: at most
    /// `WORST_RUNS_COUNT`, highest log p99 first (ties: earlier (seed, file) first).
    worst: Vec<WorstCandidate>,
}

/// A run that may get a full report for being among the slowest.
#[derive(Debug)]
struct WorstCandidate {
    p99_micros: u64,
    order: (u64, u64),
    dir: PathBuf,
    result: RunResult,
}

impl SweepWriter {
    /// Starts the sweep's folder: creates `out` and writes an empty, unfinished index, so
    /// even a sweep killed before its first run leaves an index that says so.
    pub fn new(
        out: &Path,
        shard: Shard,
        first_seed: u64,
        seeds: u64,
        planned_runs_count: u64,
    ) -> std::io::Result<SweepWriter> {
        let index = Index {
            schema_version: INDEX_SCHEMA_VERSION,
            shard: shard.to_string(),
            first_seed,
            seeds,
            runs_count: 0,
            failures_count: 0,
            planned_runs_count: Some(planned_runs_count),
            finished: false,
            missing_shards: Vec::new(),
            unfinished_shards: Vec::new(),
            runs: Vec::new(),
        };
        let writer = SweepWriter { out: out.to_path_buf(), index, worst: Vec::new() };
        write_index(out, &writer.index)?;
        Ok(writer)
    }

    /// The runs recorded so far.
    pub fn runs_count(&self) -> u64 {
        self.index.runs_count
    }

    /// Records one finished run: its failure file (when it failed), its report folder
    /// (`summary.md` and `report.html` too when it failed), and the index rewritten with it.
    pub fn add(&mut self, run: &SweepRun) -> std::io::Result<()> {
        let (entry, result) = self.write_run(run)?;
        let order = (entry.seed, entry.file_index);
        let runs = &mut self.index.runs;
        let position = runs.partition_point(|other| (other.seed, other.file_index) < order);
        if let (Some(p99_micros), Some(dir), Some(result)) = (entry.log_latency_p99_micros, &entry.report_dir, result) {
            self.consider_worst(WorstCandidate { p99_micros, order, dir: self.out.join(dir), result });
        }
        let runs = &mut self.index.runs;
        self.index.failures_count += u64::from(!entry.passed);
        runs.insert(position, entry);
        self.index.runs_count = runs.len() as u64;
        debug_assert!(
            runs.windows(2).all(|pair| (pair[0].seed, pair[0].file_index) < (pair[1].seed, pair[1].file_index))
        );
        write_index(&self.out, &self.index)
    }

    /// Ends the sweep: full reports for the worst seeds, and the index marked finished.
    pub fn finish(self) -> std::io::Result<Index> {
        for candidate in &self.worst {
            crate::report::write_run(&candidate.dir, &candidate.result, None, true)?;
        }
        let mut index = self.index;
        index.finished = true;
        let worst: Vec<(u64, u64)> = self.worst.iter().map(|candidate| candidate.order).collect();
        for run in &mut index.runs {
            if run.report_dir.is_some() && worst.contains(&(run.seed, run.file_index)) {
                run.full_report = true;
            }
        }
        write_index(&self.out, &index)?;
        Ok(index)
    }

    /// Keeps `candidate` if it is among the `WORST_RUNS_COUNT` slowest so far.
    fn consider_worst(&mut self, candidate: WorstCandidate) {
        let rank = |c: &WorstCandidate| (std::cmp::Reverse(c.p99_micros), c.order);
        let position = self.worst.partition_point(|other| rank(other) < rank(&candidate));
        if position < WORST_RUNS_COUNT {
            self.worst.insert(position, candidate);
            self.worst.truncate(WORST_RUNS_COUNT);
        }
    }

    /// Writes one run's failure file and report folder; returns its index entry and result.
    fn write_run(&self, run: &SweepRun) -> std::io::Result<(IndexRun, Option<RunResult>)> {
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
            faults: run
                .case
                .as_ref()
                .map(|case| case.faults().iter().map(crate::faults::describe_line).collect())
                .unwrap_or_default(),
            log_latency_p99_micros: run.verdict.as_ref().ok().map(|v| v.log_latency.p99_micros),
            log_latency_max_micros: run.verdict.as_ref().ok().map(|v| v.log_latency.max_micros),
            event_log_hash: run.verdict.as_ref().ok().map(|v| v.outcome.hash.to_string()),
            failure_file: None,
            shrunk_steps: Vec::new(),
            shrunk_faults: Vec::new(),
            replay: None,
            error: run.verdict.as_ref().err().cloned(),
            lost_count: result.as_ref().map(RunResult::lost_count),
            lost_silently_count: result
                .as_ref()
                .map(|r| r.signals.log.lost_silently_count + r.signals.span.lost_silently_count),
            in_flight_count: result.as_ref().map(|r| r.signals.log.in_flight_count + r.signals.span.in_flight_count),
            loss_causes: result.as_ref().map(RunResult::loss_causes).unwrap_or_default(),
            log_throughput_min_per_second: result.as_ref().and_then(|r| r.throughput.min_window_per_second),
            log_throughput_mean_per_second: result.as_ref().and_then(|r| r.throughput.mean_per_second),
            report_dir: None,
            full_report: false,
        };
        if !entry.passed
            && let Ok(case) = &run.case
        {
            self.write_failure_file(run, case, &scenario, &mut entry)?;
        }
        let Ok(case) = &run.case else {
            return Ok((entry, None));
        };
        let Some(mut result) = result else {
            return Ok((entry, None));
        };
        // The run's folder: the case it ran (replayable with `obsim run`) and its result.
        let relative = format!("runs/{scenario}/{}", run.seed);
        let dir = self.out.join(&relative);
        std::fs::create_dir_all(&dir)?;
        let case_path = dir.join("case.toml");
        std::fs::write(&case_path, &case.text)?;
        result.scenario_file = Some(super::files::display_path(&case_path));
        result.replay = format!("cargo run --release -- run {}", super::files::display_path(&case_path));
        crate::report::write_run(&dir, &result, None, !entry.passed)?;
        entry.report_dir = Some(relative);
        entry.full_report = !entry.passed;
        Ok((entry, Some(result)))
    }

    /// Writes `failures/<scenario>-seed<N>.toml` of a failed run (shrunk when shrinking ran)
    /// and points `entry` at it.
    fn write_failure_file(
        &self,
        run: &SweepRun,
        case: &super::Case,
        scenario: &str,
        entry: &mut IndexRun,
    ) -> std::io::Result<()> {
        let failures_dir = self.out.join("failures");
        std::fs::create_dir_all(&failures_dir)?;
        let name = format!("{scenario}-seed{}.toml", run.seed);
        let path: PathBuf = failures_dir.join(&name);
        let text = match (&run.shrunk, &run.verdict) {
            (Some(shrunk), _) => {
                entry.shrunk_steps = shrunk.steps.clone();
                entry.shrunk_faults = shrunk.case.faults().iter().map(crate::faults::describe_line).collect();
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
        Ok(())
    }
}

/// The index's runs with the highest log p99, worst first (ties: index order).
pub fn worst_index_runs(index: &Index) -> Vec<&IndexRun> {
    let mut measured: Vec<&IndexRun> = index.runs.iter().filter(|run| run.log_latency_p99_micros.is_some()).collect();
    measured.sort_by_key(|run| std::cmp::Reverse(run.log_latency_p99_micros));
    measured.truncate(WORST_RUNS_COUNT);
    measured
}

/// Writes `index.json`, `index.md` and `index.html` of `index` into `out`, each atomically:
/// a reader (or a kill) never sees a half-written file.
pub fn write_index(out: &Path, index: &Index) -> std::io::Result<()> {
    std::fs::create_dir_all(out)?;
    let json = serde_json::to_string_pretty(index).map_err(std::io::Error::other)?;
    write_atomically(&out.join("index.json"), (json + "\n").as_bytes())?;
    write_atomically(&out.join("index.md"), markdown(index).as_bytes())?;
    write_atomically(&out.join("index.html"), crate::report::index_html::render(index).as_bytes())?;
    Ok(())
}

/// Writes `bytes` to `path` through a temporary file in the same folder renamed over it
/// (a rename within one file system replaces the file in one step).
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let Some(name) = path.file_name() else {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{}: not a file path", path.display()),
        ));
    };
    let mut temporary_name = std::ffi::OsString::from(".");
    temporary_name.push(name);
    temporary_name.push(".tmp");
    let temporary = path.with_file_name(temporary_name);
    std::fs::write(&temporary, bytes)?;
    std::fs::rename(&temporary, path)
}

/// What is missing from the sweep an index covers, in words; `None` when every shard is
/// there and finished. A sweep that stopped at its `--time` budget is finished (it ran what
/// its budget allowed, by design): `markdown` notes it, but it is not incomplete.
pub fn incompleteness(index: &Index) -> Option<String> {
    let mut parts = Vec::new();
    if !index.missing_shards.is_empty() {
        parts.push(format!("shards {} are missing (their runs are not here)", index.missing_shards.join(", ")));
    }
    if !index.unfinished_shards.is_empty() {
        parts.push(format!("shards {} stopped before they finished", index.unfinished_shards.join(", ")));
    }
    if !index.finished {
        parts.push("the sweep has not finished (or was stopped before it could)".to_string());
    }
    if parts.is_empty() { None } else { Some(format!("INCOMPLETE: {}.", parts.join("; "))) }
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
    if let Some(incomplete) = incompleteness(index) {
        let _ = writeln!(out, "**{incomplete}**\n");
    } else if let Some(planned) = index.planned_runs_count.filter(|planned| index.runs_count < *planned) {
        let _ = writeln!(out, "Stopped by its time budget after {} of {planned} planned runs.\n", index.runs_count);
    }
    if index.failures_count > 0 {
        let _ = writeln!(out, "## Failures\n");
        for run in index.runs.iter().filter(|run| !run.passed) {
            let _ = writeln!(out, "- **{}** seed {}: failed {}", run.scenario, run.seed, run.failed_checks.join(", "));
            if let Some(replay) = &run.replay {
                let _ = writeln!(out, "  - replay: `{replay}`");
            }
            if !run.shrunk_faults.is_empty() || !run.shrunk_steps.is_empty() {
                let _ = writeln!(
                    out,
                    "  - shrunk to: {}",
                    if run.shrunk_faults.is_empty() { "no faults".to_string() } else { run.shrunk_faults.join("; ") }
                );
            }
            if let Some(error) = &run.error {
                let _ = writeln!(out, "  - error: {error}");
            }
            let undelivered = undelivered_text(run);
            if !undelivered.is_empty() {
                let _ = writeln!(out, "  - undelivered: {undelivered}");
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
                run.report_dir
                    .as_ref()
                    .filter(|_| run.full_report)
                    .map(|dir| format!(" ({dir}/summary.md)"))
                    .unwrap_or_default()
            );
        }
        let _ = writeln!(out);
    }
    let _ = writeln!(
        out,
        "## Runs\n\n| scenario | seed | verdict | log p99 | undelivered | faults |\n|---|---|---|---|---|---|"
    );
    for run in &index.runs {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} |",
            run.scenario,
            run.seed,
            if run.passed { "pass".to_string() } else { format!("FAIL {}", run.failed_checks.join(", ")) },
            run.log_latency_p99_micros.map(|micros| format!("{:.1} ms", micros as f64 / 1000.0)).unwrap_or_default(),
            undelivered_text(run),
            run.faults.len()
        );
    }
    out
}

/// A run's undelivered records, each kind under its own name — lost with a cause, lost
/// silently, still in flight — or empty when every record arrived. Why separate: records
/// in flight at the end are not lost (the result says lost 0); calling them lost sends the
/// reader after the wrong bug.
pub fn undelivered_text(run: &IndexRun) -> String {
    let silent = run.lost_silently_count.unwrap_or(0);
    let with_cause = run.lost_count.unwrap_or(0).saturating_sub(silent);
    let in_flight = run.in_flight_count.unwrap_or(0);
    let mut parts = Vec::new();
    if with_cause > 0 {
        parts.push(format!(
            "{with_cause} lost ({})",
            run.loss_causes.iter().filter(|cause| *cause != "lost_silently").cloned().collect::<Vec<_>>().join(", ")
        ));
    }
    if silent > 0 {
        parts.push(format!("{silent} lost silently"));
    }
    if in_flight > 0 {
        parts.push(format!("{in_flight} in flight"));
    }
    parts.join(", ")
}

/// What `promote` made: the regression's text, and the planted bugs it stripped.
#[derive(Clone, Debug, PartialEq)]
pub struct Promoted {
    pub text: String,
    /// The regression's scenario `name` (`regression-<file name>`).
    pub name: String,
    /// Planted bugs (`[bugs]`, e.g. from `obsim chaos --bug`) removed from the scenario.
    pub stripped_bugs: Vec<&'static str>,
}

/// A failure file turned into a regression scenario for `fixtures/regressions/<file_name>`:
/// - the failure's `# obsim failure:` header (the verdict and hash the failing run
///   produced) is dropped — once the bug is fixed the scenario must pass, with a new hash —
///   and a header says where it came from; the shrinking notes stay (they say what the
///   case is about);
/// - the scenario gets its own `name`, `regression-<file_name>`: reports go to
///   `reports/<name>/<seed>/`, so a regression that kept the name of the scenario it was
///   drawn from would overwrite that scenario's reports;
/// - planted bugs are refused (`Err` naming them): a failure found with `--bug X` carries
///   `[bugs] X = true`, and a regression with a planted bug fails for ever. With
///   `strip_bugs` the `[bugs]` table is removed instead and `stripped_bugs` names what went.
///
/// `source` names the failure file in the header. The result is not checked as a scenario
/// here beyond the bugs; the caller loads it before writing it.
pub fn promote(failure_text: &str, source: &str, file_name: &str, strip_bugs: bool) -> Result<Promoted, String> {
    let planted: Vec<&'static str> = match crate::scenario::Scenario::parse(Path::new(source), failure_text) {
        Ok(scenario) => scenario.bugs.names().collect(),
        Err(error) => return Err(format!("the failure file is not a valid scenario: {error}")),
    };
    if !planted.is_empty() && !strip_bugs {
        return Err(format!(
            "{source} plants bugs ({}): a regression with a planted bug can never pass; \
             `--strip-bugs` removes the [bugs] table (the regression then runs the real pipeline)",
            planted.join(", ")
        ));
    }
    let name = format!("regression-{file_name}");
    let mut out = format!(
        "# Regression: a chaos failure promoted from {source}.\n\
         # It failed before the fix it guards; every `cargo test` runs it and it must pass.\n"
    );
    if !planted.is_empty() {
        let _ = writeln!(out, "# Planted bugs stripped when promoted: {}.", planted.join(", "));
    }
    let mut body = String::new();
    for line in failure_text.lines() {
        if line.starts_with("# obsim failure:") || line.starts_with("# replay:") {
            continue;
        }
        body.push_str(line);
        body.push('\n');
    }
    if !planted.is_empty() {
        body = crate::replay::without_bugs_table(&body);
    }
    out.push_str(&crate::replay::with_name(&body, &name));
    Ok(Promoted { text: out, name, stripped_bugs: planted })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn promoting_drops_the_failure_header_renames_and_keeps_the_scenario() {
        let failure = "# obsim chaos: removed fault[0] link_stall\n# obsim failure: event-log hash ab\n# obsim failure: verdict FAIL\n# replay: x\nname = \"baseline\"\nduration = \"30s\"\nseed = 5\n[topology]\nmachines = [{ type = \"openai\", count = 1 }]\n";
        let promoted = promote(failure, "failures/baseline-seed5.toml", "dash0-retry", false).unwrap();
        let text = &promoted.text;
        assert!(text.starts_with("# Regression: a chaos failure promoted from failures/baseline-seed5.toml."));
        assert!(text.contains("# obsim chaos: removed fault[0] link_stall\nname = \"regression-dash0-retry\"\nduration = \"30s\"\nseed = 5\n"), "{text}");
        assert!(!text.contains("obsim failure") && !text.contains("# replay:"), "{text}");
        assert!(crate::replay::recorded(text).is_none(), "no longer a failure file");
        assert_eq!((promoted.name.as_str(), promoted.stripped_bugs.len()), ("regression-dash0-retry", 0));
        let scenario = crate::scenario::Scenario::parse(Path::new("x.toml"), text).unwrap();
        assert_eq!(scenario.name, "regression-dash0-retry", "not the name of the scenario it was drawn from");
    }

    #[test]
    fn promoting_refuses_planted_bugs_or_strips_them_saying_so() {
        let failure = "# obsim failure: verdict FAIL\nname = \"tiny\"\nduration = \"30s\"\n[topology]\nmachines = [{ type = \"openai\", count = 1 }]\n[bugs]\nagent_no_retry = false\ndash0_drop_one_batch = true\n\n[expect]\nlost = 0\n";
        let error = promote(failure, "f.toml", "x", false).unwrap_err();
        assert!(
            error.contains("f.toml plants bugs (dash0_drop_one_batch)") && error.contains("--strip-bugs"),
            "{error}"
        );
        let promoted = promote(failure, "f.toml", "x", true).unwrap();
        assert_eq!(promoted.stripped_bugs, vec!["dash0_drop_one_batch"]);
        assert!(
            promoted.text.contains("# Planted bugs stripped when promoted: dash0_drop_one_batch."),
            "{}",
            promoted.text
        );
        let scenario = crate::scenario::Scenario::parse(Path::new("x.toml"), &promoted.text).unwrap();
        assert!(!scenario.bugs.any(), "{}", promoted.text);
        assert_eq!(scenario.expect.lost, Some(0), "the tables after [bugs] stay");
    }
}
