//! `obsim determinism`: every case a sweep draws, run twice in separate processes (and
//! once more under another obsim binary, `--compare-with`), compared event by event
//! (README "Chaos sweeps", "Checking determinism").
//!
//! Why: ARCHITECTURE.md §2's rule — same case, same event log, in any process, on any
//! build — is what makes a chaos failure replayable. Tests pin a few hashes; this command
//! checks it over as many seeds as a night allows, and when two runs part, it names the
//! first event where they do (simulated time, host, both texts) and the command that
//! reproduces it.
//!
//! The pieces: `child.rs` runs one case in the current process (the hidden
//! `obsim determinism-case`) and writes its drawn case, event log, result and digests;
//! `diverge.rs` compares two runs' files; this file plans the cases (the sweep's own order
//! and shards), starts the children and collects a [`DeterminismReport`]; `render.rs`
//! prints it.
//!
//! Wall-clock time is read here only to stop starting cases (`--time`) and to kill a child
//! that overruns [`CHILD_WALL_LIMIT`]; it never reaches a run.

pub mod child;
pub mod diverge;
mod render;

pub use child::{ChildRequest, ChildSummary, PERTURB_ENV, run_case_here};
pub use diverge::Divergence;
pub use render::{render_case, render_summary};

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::report::index::Shard;
use crate::scenario::Scenario;

/// Most cases one check may plan (`--cases-limit` may only lower it).
pub const CASES_LIMIT_MAX: u64 = 1_000_000;

/// Default `--cases-limit`.
pub const CASES_LIMIT_DEFAULT: u64 = 10_000;

/// Default `--event-bytes-limit`: most bytes of event lines each run writes and the check
/// compares (a chaos case of the shipped scenarios writes about 1 MiB: 5,000 events).
pub const EVENT_BYTES_LIMIT_DEFAULT: u64 = 64 * 1024 * 1024;

/// Most `--event-bytes-limit` may be: the files of one case's runs stay within a few GiB of
/// disk.
pub const EVENT_BYTES_LIMIT_MAX: u64 = 1024 * 1024 * 1024;

/// Longest a child may run before it is killed and its case reported unchecked: far beyond
/// any chaos case (minutes), short of a night.
pub const CHILD_WALL_LIMIT: Duration = Duration::from_secs(60 * 60);

/// How often the parent looks whether a child has finished.
const CHILD_POLL: Duration = Duration::from_millis(20);

/// Most threads one check may use.
const JOBS_LIMIT: usize = 256;

/// Which run of a case: two by this binary, one by `--compare-with`'s.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunLabel {
    /// The first run, by this binary.
    First,
    /// The second run, by this binary, in another process.
    Second,
    /// The run by the other binary (`--compare-with`).
    Other,
}

impl RunLabel {
    /// Every label, in run order.
    pub const ALL: [RunLabel; 3] = [RunLabel::First, RunLabel::Second, RunLabel::Other];

    /// The one string form: file names, `--label`, the report.
    pub const fn as_str(self) -> &'static str {
        match self {
            RunLabel::First => "first",
            RunLabel::Second => "second",
            RunLabel::Other => "other",
        }
    }

    /// The label spelt `text`, if any.
    pub fn from_name(text: &str) -> Option<RunLabel> {
        RunLabel::ALL.into_iter().find(|label| label.as_str() == text)
    }
}

impl std::fmt::Display for RunLabel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// One event as a run writes it (and as the report shows it): the event log's fields, with
/// the kind as its string form.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoggedEvent {
    /// True simulated time since the run began, in nanoseconds.
    pub true_nanos: u64,
    pub host: String,
    pub kind: String,
    pub detail: String,
}

impl LoggedEvent {
    /// The event as written.
    pub fn of(event: &crate::world::Event) -> LoggedEvent {
        LoggedEvent {
            true_nanos: event.true_nanos,
            host: event.host.to_string(),
            kind: event.kind.as_str().to_string(),
            detail: event.detail.clone(),
        }
    }

    /// The event of a written line; a line that is not one (a truncated or foreign file)
    /// becomes an event of kind `unparsed` holding the line, so it is still shown.
    pub fn parse(line: &str) -> LoggedEvent {
        serde_json::from_str(line).unwrap_or_else(|_| LoggedEvent {
            true_nanos: 0,
            host: "?".into(),
            kind: "unparsed".into(),
            detail: line.to_string(),
        })
    }
}

impl std::fmt::Display for LoggedEvent {
    /// As `events.log` prints an event: seconds with milliseconds, host, kind, detail.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let secs = self.true_nanos / 1_000_000_000;
        let millis = (self.true_nanos % 1_000_000_000) / 1_000_000;
        write!(f, "{secs:>6}.{millis:03}s {:<16} {:<20} {}", self.host, self.kind, self.detail)
    }
}

/// How a check runs.
#[derive(Clone, Debug)]
pub struct DeterminismOptions {
    /// Seeds per file, as a sweep's `--seeds`.
    pub seeds: u64,
    /// The first seed.
    pub first_seed: u64,
    /// This machine's part, as a sweep's `--shard`.
    pub shard: Shard,
    /// Cases checked at once.
    pub jobs: usize,
    /// Bugs planted by name in every case (`--bug`).
    pub bugs: Vec<String>,
    /// The other binary each case also runs under.
    pub compare_with: Option<PathBuf>,
    /// Most bytes of event lines each run writes and the check compares.
    pub event_bytes_limit: u64,
    /// Most cases the check may plan.
    pub cases_limit: u64,
    /// Stop starting cases after this much wall-clock time.
    pub time: Option<Duration>,
    /// Where the runs' files go (kept only for cases that diverged) and the report.
    pub out: PathBuf,
}

/// One case of the check: a file of the sweep and a seed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedCase {
    pub base_path: PathBuf,
    pub seed: u64,
}

/// What checking one case found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum CaseStatus {
    /// Every run wrote the same case, events, hash and result.
    Equal { events_count: u64, hash: String, verdict: String },
    /// Runs parted: each pair compared with the first run, and where it parted.
    Diverged { pairs: Vec<PairDivergence>, kept: PathBuf },
    /// A run gave nothing to compare (it could not start, died, or overran
    /// [`CHILD_WALL_LIMIT`]): which run, and why.
    Unchecked { label: RunLabel, reason: String, kept: PathBuf },
}

/// Two runs that parted, and where.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PairDivergence {
    pub first: RunLabel,
    pub second: RunLabel,
    pub divergence: Divergence,
}

/// One checked case.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseCheck {
    pub case: PlannedCase,
    pub status: CaseStatus,
    /// The command that checks this case again.
    pub replay: String,
}

/// A whole check, as `determinism.json` holds it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeterminismReport {
    /// Runs per case: 2, or 3 with another binary.
    pub runs_per_case: u32,
    /// The other binary, when one was given.
    pub compare_with: Option<PathBuf>,
    /// Cases planned (this shard's).
    pub planned_count: u64,
    /// The checked cases in the sweep's (seed, file) order; fewer than planned when
    /// `--time` stopped the check.
    pub cases: Vec<CaseCheck>,
}

impl DeterminismReport {
    /// Cases whose runs parted.
    pub fn diverged_count(&self) -> usize {
        self.cases.iter().filter(|case| matches!(case.status, CaseStatus::Diverged { .. })).count()
    }

    /// Cases a run of which gave nothing to compare.
    pub fn unchecked_count(&self) -> usize {
        self.cases.iter().filter(|case| matches!(case.status, CaseStatus::Unchecked { .. })).count()
    }

    /// The exit status: 0 when every planned case was checked equal (or `--time` stopped
    /// the check with every checked case equal), 1 when a case diverged or went unchecked.
    pub fn exit_status(&self) -> u8 {
        u8::from(self.diverged_count() + self.unchecked_count() > 0)
    }
}

/// The cases of a sweep over `files` with `options`' seeds and shard, in the sweep's order
/// ((seed, file), `chaos::sweep`); an error when they exceed `cases_limit`.
pub fn plan(files: &[(PathBuf, Arc<Scenario>)], options: &DeterminismOptions) -> Result<Vec<PlannedCase>, String> {
    let owned_seeds = (0..options.seeds).filter(|index| options.shard.owns(*index)).count() as u64;
    let planned = owned_seeds.saturating_mul(files.len() as u64);
    let limit = options.cases_limit.min(CASES_LIMIT_MAX);
    if planned > limit {
        return Err(format!(
            "{owned_seeds} seeds × {} files is {planned} cases on this shard, above --cases-limit {limit}",
            files.len()
        ));
    }
    let mut cases = Vec::with_capacity(planned as usize);
    for seed_index in (0..options.seeds).filter(|index| options.shard.owns(*index)) {
        for (path, _) in files {
            cases.push(PlannedCase { base_path: path.clone(), seed: options.first_seed + seed_index });
        }
    }
    assert_eq!(cases.len() as u64, planned, "the plan holds every owned (seed, file) once");
    Ok(cases)
}

/// Checks every case of `cases` with `options`, starting this binary `exe` (and the other
/// one) per run; calls `on_case` as each case is checked (any thread, completion order).
/// Returns the report, cases in plan order.
pub fn check(
    exe: &Path,
    cases: &[PlannedCase],
    options: &DeterminismOptions,
    on_case: &(dyn Fn(&CaseCheck) + Sync),
) -> DeterminismReport {
    #[allow(clippy::disallowed_methods)] // determinism: ok (the --time budget; never reaches a run)
    let started = Instant::now(); // determinism: ok (the --time budget; never reaches a run)
    let next = AtomicUsize::new(0);
    let done: std::sync::Mutex<Vec<(usize, CaseCheck)>> = std::sync::Mutex::new(Vec::new());
    let runs = runs_of(exe, options);
    std::thread::scope(|scope| {
        for _ in 0..options.jobs.clamp(1, JOBS_LIMIT) {
            scope.spawn(|| {
                // Bounded by cases.len(): each pass takes one index for good.
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    if index >= cases.len() || options.time.is_some_and(|budget| started.elapsed() >= budget) {
                        return;
                    }
                    let checked = check_case(&cases[index], &runs, options);
                    on_case(&checked);
                    done.lock().unwrap_or_else(|p| p.into_inner()).push((index, checked));
                }
            });
        }
    });
    let mut checked = done.into_inner().unwrap_or_else(|p| p.into_inner());
    checked.sort_by_key(|(index, _)| *index);
    DeterminismReport {
        runs_per_case: runs.len() as u32,
        compare_with: options.compare_with.clone(),
        planned_count: cases.len() as u64,
        cases: checked.into_iter().map(|(_, case)| case).collect(),
    }
}

/// The runs of every case: twice this binary, and the other binary when given.
fn runs_of(exe: &Path, options: &DeterminismOptions) -> Vec<(RunLabel, PathBuf)> {
    let mut runs = vec![(RunLabel::First, exe.to_path_buf()), (RunLabel::Second, exe.to_path_buf())];
    if let Some(other) = &options.compare_with {
        runs.push((RunLabel::Other, other.clone()));
    }
    runs
}

/// Runs `case` once per run in `runs`, compares each later run with the first, and keeps
/// the files only when they differ.
fn check_case(case: &PlannedCase, runs: &[(RunLabel, PathBuf)], options: &DeterminismOptions) -> CaseCheck {
    let dir = case_dir(&options.out, case);
    let replay = replay_command(case, options);
    // A summary left by an earlier check must not stand in for a run that dies now.
    let _ = std::fs::remove_dir_all(&dir);
    let mut summaries: Vec<(RunLabel, ChildSummary)> = Vec::with_capacity(runs.len());
    for (label, exe) in runs {
        match run_child(exe, case, *label, &dir, options) {
            Ok(summary) => summaries.push((*label, summary)),
            Err(reason) => {
                let status = CaseStatus::Unchecked { label: *label, reason, kept: dir };
                return CaseCheck { case: case.clone(), status, replay };
            }
        }
    }
    let (first_label, first) = &summaries[0];
    let mut pairs = Vec::new();
    for (label, summary) in &summaries[1..] {
        match diverge::compare_runs(&dir, (*first_label, first), (*label, summary)) {
            Ok(None) => {}
            Ok(Some(divergence)) => pairs.push(PairDivergence { first: *first_label, second: *label, divergence }),
            Err(error) => {
                let reason = format!("cannot compare its files in {}: {error}", dir.display());
                let status = CaseStatus::Unchecked { label: *label, reason, kept: dir };
                return CaseCheck { case: case.clone(), status, replay };
            }
        }
    }
    let status = if pairs.is_empty() {
        // Equal runs leave nothing behind: a night of seeds would otherwise fill the disk.
        let _ = std::fs::remove_dir_all(&dir);
        CaseStatus::Equal { events_count: first.events_count, hash: first.hash.clone(), verdict: first.verdict.clone() }
    } else {
        CaseStatus::Diverged { pairs, kept: dir }
    };
    CaseCheck { case: case.clone(), status, replay }
}

/// The folder of `case`'s runs: `<out>/cases/<file stem>-seed<N>`.
pub fn case_dir(out: &Path, case: &PlannedCase) -> PathBuf {
    let stem = case.base_path.file_stem().map_or_else(|| "case".into(), |stem| stem.to_string_lossy());
    out.join("cases").join(format!("{stem}-seed{}", case.seed))
}

/// The command that checks `case` again with the same limits and binaries.
fn replay_command(case: &PlannedCase, options: &DeterminismOptions) -> String {
    let mut command = format!("obsim determinism {} --first-seed {} --seeds 1", case.base_path.display(), case.seed);
    for bug in &options.bugs {
        command.push_str(&format!(" --bug {bug}"));
    }
    if let Some(other) = &options.compare_with {
        command.push_str(&format!(" --compare-with {}", other.display()));
    }
    if options.event_bytes_limit != EVENT_BYTES_LIMIT_DEFAULT {
        command.push_str(&format!(" --event-bytes-limit {}", options.event_bytes_limit));
    }
    command
}

/// Runs `case` as `label` under `exe` in a child process (`exe determinism-case …`) and
/// reads its summary; the reason when it gave none (the tail of its stderr).
fn run_child(
    exe: &Path,
    case: &PlannedCase,
    label: RunLabel,
    dir: &Path,
    options: &DeterminismOptions,
) -> Result<ChildSummary, String> {
    std::fs::create_dir_all(dir).map_err(|error| format!("cannot create {}: {error}", dir.display()))?;
    let stderr_path = child::file_of(dir, label, "stderr");
    let stderr = std::fs::File::create(&stderr_path)
        .map_err(|error| format!("cannot create {}: {error}", stderr_path.display()))?;
    let mut command = std::process::Command::new(exe);
    command
        .arg("determinism-case")
        .arg("--scenario")
        .arg(&case.base_path)
        .args(["--seed", &case.seed.to_string(), "--label", label.as_str()])
        .arg("--dir")
        .arg(dir)
        .args(["--event-bytes-limit", &options.event_bytes_limit.to_string()]);
    for bug in &options.bugs {
        command.args(["--bug", bug]);
    }
    let mut running = command
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(stderr)
        .spawn()
        .map_err(|error| format!("cannot start {}: {error}", exe.display()))?;
    let status = wait_bounded(&mut running)?;
    let summary_path = child::file_of(dir, label, "summary.json");
    let text = std::fs::read_to_string(&summary_path).map_err(|_| {
        let tail = stderr_tail(&stderr_path);
        format!("{} exited with {status} and wrote no summary: {tail}", exe.display())
    })?;
    serde_json::from_str(&text).map_err(|error| format!("{}: not a run's summary: {error}", summary_path.display()))
}

/// Waits for `running` at most [`CHILD_WALL_LIMIT`], killing it past that.
fn wait_bounded(running: &mut std::process::Child) -> Result<std::process::ExitStatus, String> {
    #[allow(clippy::disallowed_methods)] // determinism: ok (kills a runaway child; never reaches a run)
    let started = Instant::now(); // determinism: ok (kills a runaway child; never reaches a run)
    loop {
        match running.try_wait() {
            Ok(Some(status)) => return Ok(status),
            Ok(None) if started.elapsed() < CHILD_WALL_LIMIT => std::thread::sleep(CHILD_POLL),
            Ok(None) | Err(_) => {
                // Killing a child that has just exited fails harmlessly; wait reaps it.
                let _ = running.kill();
                let _ = running.wait();
                return Err(format!("killed after {} s (CHILD_WALL_LIMIT)", CHILD_WALL_LIMIT.as_secs()));
            }
        }
    }
}

/// The last lines of a child's stderr (a panic's message), or a note that it was empty.
fn stderr_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().filter(|line| !line.trim().is_empty()).collect();
    if lines.is_empty() {
        return "its stderr is empty".to_string();
    }
    lines[lines.len().saturating_sub(5)..].join(" | ")
}

/// Writes `report` as `<out>/determinism.json`.
pub fn write_report(out: &Path, report: &DeterminismReport) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(out)?;
    let path = out.join("determinism.json");
    let json = serde_json::to_string_pretty(report).map_err(std::io::Error::other)?;
    std::fs::write(&path, json)?;
    Ok(path)
}
