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
//! open are the ones worth opening. A passing run's `result.json` leaves out the sampled
//! latency points (the scatter's dots): only a page draws them.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::sweep::SweepRun;
use crate::check::RunResult;
use crate::report::failure_file::failure_file_text;
use crate::report::index::{FailedCheck, INDEX_SCHEMA_VERSION, Index, IndexRun, Shard, WORST_RUNS_COUNT, write_index};

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
            obsim: Some(crate::report::build_info::BuildInfo::current()),
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
        let result = run.verdict.as_ref().ok().map(|verdict| verdict.result.clone());
        let mut entry = IndexRun {
            scenario: scenario.clone(),
            file: crate::report::index::display_path(&run.base_path),
            file_index: run.file_index as u64,
            seed: run.seed,
            passed: run.passed(),
            failed_checks: run.failed_checks(),
            faults: run
                .case
                .as_ref()
                .map(|case| case.faults().iter().map(crate::faults::describe_line).collect())
                .unwrap_or_default(),
            failure_file: None,
            shrunk_steps: Vec::new(),
            shrunk_faults: Vec::new(),
            replay: None,
            error: run.verdict.as_ref().err().cloned(),
            report_dir: None,
            full_report: false,
            ..IndexRun::default()
        };
        if let Some(result) = &result {
            measurements_into(&mut entry, result);
        }
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
        result.scenario_file = Some(crate::report::index::display_path(&case_path));
        result.replay = format!("cargo run --release -- run {}", crate::report::index::display_path(&case_path));
        if entry.passed {
            // A passing run's result.json keeps every number but not the sampled points: they
            // only draw report.html's scatter, which a passing run gets only if it is
            // among the worst (rewritten in `finish` from the full result kept in memory).
            // It is most of the file's bytes (a 200-seed night of 40 files: ~290 MB with it).
            crate::report::write_run(&dir, &without_latency_sample(&result), None, false)?;
        } else {
            crate::report::write_run(&dir, &result, None, true)?;
        }
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
        entry.replay = Some(format!("cargo run --release -- replay {}", crate::report::index::display_path(&path)));
        entry.failure_file = Some(format!("failures/{name}"));
        Ok(())
    }
}

/// What the index keeps of a judged run's measurements: enough for the index pages, the
/// worst-runs list and `obsim report compare` of two nights without opening result.json.
fn measurements_into(entry: &mut IndexRun, r: &RunResult) {
    entry.log_latency_p99_micros = Some(r.signals.log.latency.p99_micros);
    entry.log_latency_max_micros = Some(r.signals.log.latency.max_micros);
    entry.event_log_hash = Some(r.event_log.hash.clone());
    entry.lost_count = Some(r.lost_count());
    entry.lost_silently_count = Some(r.signals.log.lost_silently_count + r.signals.span.lost_silently_count);
    entry.in_flight_count = Some(r.signals.log.in_flight_count + r.signals.span.in_flight_count);
    entry.loss_causes = r.loss_causes();
    entry.log_throughput_min_per_second = r.throughput.min_window_per_second;
    entry.log_throughput_mean_per_second = r.throughput.mean_per_second;
    entry.failed_check_details = r
        .checks
        .iter()
        .filter(|check| !check.passed)
        .map(|check| FailedCheck::new(&check.name.to_string(), &check.detail))
        .collect();
    entry.span_latency_p99_micros = Some(r.signals.span.latency.p99_micros);
    entry.duplicated_count = Some(r.signals.log.duplicated_count + r.signals.span.duplicated_count);
    entry.lost_by_cause =
        crate::report::result::losses_by_cause(r).into_iter().filter(|(_, count)| *count > 0).collect();
    entry.recovery_max_micros =
        r.faults.iter().flat_map(|fault| [fault.log_recovery_micros, fault.span_recovery_micros]).flatten().max();
    entry.log_offered_per_second =
        (r.duration_micros > 0).then(|| r.signals.log.emitted_count as f64 / (r.duration_micros as f64 / 1_000_000.0));
}

/// `result` with both signals' sampled points dropped. Kept: the sample's counts (so a
/// reader can tell a dropped sample, `batches_count > 0` with no points, from a run that
/// delivered nothing) and the undelivered marks (few, and they add up to the losses).
fn without_latency_sample(result: &RunResult) -> RunResult {
    let mut lean = result.clone();
    for signal in [&mut lean.signals.log, &mut lean.signals.span] {
        signal.latency_sample.points = Vec::new();
    }
    lean
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
        body = crate::report::failure_file::without_bugs_table(&body);
    }
    out.push_str(&crate::report::failure_file::with_name(&body, &name));
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
        assert!(crate::report::failure_file::recorded(text).is_none(), "no longer a failure file");
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
