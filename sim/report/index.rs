//! A chaos sweep's index (`index.json`, `index.md`; `index.html` is `index_html.rs`): the
//! sweep at a glance, written by `crate::chaos` as runs finish and read back by
//! `obsim report merge` and `obsim report compare`.
//!
//! Why in the report layer: the index is a report of many runs; the sweep writes it and the
//! report commands read it, so it lives below both.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::build_info::BuildInfo;

/// How many of the slowest runs (by log p99) get a full report and a place in the index's
/// "worst seeds".
pub(crate) const WORST_RUNS_COUNT: usize = 5;

/// Most failures `index.md` and `index.html` list (a night that breaks everything fails
/// thousands of runs); the scenario pages and `index.json` have every one.
pub(crate) const FAILURES_LISTED_LIMIT: usize = 100;

/// The version of `index.json`'s layout; bumped on any incompatible change.
pub(crate) const INDEX_SCHEMA_VERSION: u32 = 1;

/// `index.json`: the sweep at a glance.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Index {
    pub schema_version: u32,
    /// The obsim that ran the sweep (version and commit): nights are compared with nights,
    /// and a change of code is the first suspect when they differ. Null in indexes written
    /// before obsim recorded it.
    #[serde(default)]
    pub obsim: Option<BuildInfo>,
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

/// One run in the index. `Default` is an empty entry, for building indexes in tests.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
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
    /// The failed checks with what each measured against what it allowed (the check's own
    /// text, cut at `FAILED_CHECK_DETAIL_CHARS_LIMIT`), in `failed_checks` order: a failure
    /// entry says why, not only which check. Empty for passed runs, world errors (see
    /// `error`) and indexes written before obsim recorded it.
    #[serde(default)]
    pub failed_check_details: Vec<FailedCheck>,
    /// The span p99 latency; null without a verdict.
    #[serde(default)]
    pub span_latency_p99_micros: Option<u64>,
    /// Records Dash0 stored more than once, logs and spans; null without a verdict.
    #[serde(default)]
    pub duplicated_count: Option<u64>,
    /// Records lost per cause (logs and spans together), causes with at least one record:
    /// `obsim report compare` of two sweeps compares loss per cause per run.
    #[serde(default)]
    pub lost_by_cause: BTreeMap<String, u64>,
    /// The slowest recovery of any fault, either signal (from the fault's end until the
    /// last record emitted during it reached Dash0); null when no fault has one.
    #[serde(default)]
    pub recovery_max_micros: Option<u64>,
    /// The offered load: logs emitted per second of the load phase. Why: seeds draw
    /// different loads, so two sweeps compare throughput as a fraction of it, not raw.
    #[serde(default)]
    pub log_offered_per_second: Option<f64>,
}

/// Most characters of a failed check's detail an index keeps (a detail lists examples; the
/// run's `result.json` keeps them all).
pub(crate) const FAILED_CHECK_DETAIL_CHARS_LIMIT: usize = 2_000;

/// A failed check of a run and why it failed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedCheck {
    /// The check's name: `delivery`, `latency_p99`, …
    pub check: String,
    /// What was measured against what was allowed, and where.
    pub detail: String,
}

impl FailedCheck {
    /// A failed check with its detail cut at `FAILED_CHECK_DETAIL_CHARS_LIMIT` characters
    /// (saying so).
    pub fn new(check: &str, detail: &str) -> FailedCheck {
        let detail = match detail.char_indices().nth(FAILED_CHECK_DETAIL_CHARS_LIMIT) {
            Some((cut, _)) => format!("{}… (cut; result.json has it all)", &detail[..cut]),
            None => detail.to_string(),
        };
        FailedCheck { check: check.to_string(), detail }
    }
}

/// One part of a sweep split across machines: `index` of `count`, 1-based as written
/// (`--shard 2/4`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl Shard {
    /// The whole sweep.
    pub const WHOLE: Shard = Shard { index: 1, count: 1 };

    /// Parses `i/n` with 1 ≤ i ≤ n.
    pub fn parse(text: &str) -> Result<Shard, String> {
        let (index, count) = text.split_once('/').ok_or_else(|| format!("shard {text:?}: expected i/n, e.g. 2/4"))?;
        let number =
            |part: &str| part.trim().parse::<u32>().map_err(|_| format!("shard {text:?}: {part:?} is not a number"));
        let shard = Shard { index: number(index)?, count: number(count)? };
        if shard.count == 0 || shard.index == 0 || shard.index > shard.count {
            return Err(format!("shard {text:?}: needs 1 ≤ i ≤ n"));
        }
        Ok(shard)
    }

    /// Whether the seed at `seed_index` of the sweep is this shard's.
    pub fn owns(self, seed_index: u64) -> bool {
        seed_index % u64::from(self.count) == u64::from(self.index - 1)
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
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
pub(crate) fn write_index(out: &Path, index: &Index) -> std::io::Result<()> {
    std::fs::create_dir_all(out)?;
    let json = serde_json::to_string_pretty(index).map_err(std::io::Error::other)?;
    write_atomically(&out.join("index.json"), (json + "\n").as_bytes())?;
    write_atomically(&out.join("index.md"), markdown(index).as_bytes())?;
    write_atomically(&out.join("index.html"), super::index_html::render(index).as_bytes())?;
    let pages = super::index_html::scenario_pages(index);
    if !pages.is_empty() {
        std::fs::create_dir_all(out.join(super::index_html::SCENARIOS_DIR))?;
    }
    for (relative, html) in pages {
        write_atomically(&out.join(relative), html.as_bytes())?;
    }
    Ok(())
}

/// Writes `bytes` to `path` through a temporary file in the same folder renamed over it
/// (a rename within one file system replaces the file in one step).
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
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
    write_markdown_header(&mut out, index);
    write_markdown_scenarios(&mut out, index);
    write_markdown_failures(&mut out, index);
    write_markdown_worst(&mut out, index);
    write_markdown_runs(&mut out, index);
    out
}

/// The title, the sweep's size and verdict counts, and why it is incomplete or stopped
/// early, when it is.
fn write_markdown_header(out: &mut String, index: &Index) {
    let _ = writeln!(out, "# obsim chaos sweep (shard {})\n", index.shard);
    if let Some(build) = &index.obsim {
        let _ = writeln!(out, "Built by {} (commit {}).\n", build.text(), build.commit);
    }
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
}

/// The runs grouped by scenario, in the sweep's file order: how many ran, how many
/// failed and at which seeds. Why: a sweep over the whole library runs dozens of files, and
/// the question after a night is which scenarios fail, before which seeds.
fn write_markdown_scenarios(out: &mut String, index: &Index) {
    let mut groups: std::collections::BTreeMap<(u64, &str), (u64, Vec<u64>)> = std::collections::BTreeMap::new();
    for run in &index.runs {
        let group = groups.entry((run.file_index, run.scenario.as_str())).or_default();
        group.0 += 1;
        if !run.passed {
            group.1.push(run.seed);
        }
    }
    if groups.is_empty() {
        return;
    }
    let _ = writeln!(out, "## By scenario\n\n| scenario | runs | failed | failed seeds |\n|---|---|---|---|");
    for ((_, scenario), (runs_count, failed_seeds)) in &groups {
        let seeds: Vec<String> = failed_seeds.iter().map(u64::to_string).collect();
        let _ = writeln!(out, "| {scenario} | {runs_count} | {} | {} |", failed_seeds.len(), seeds.join(", "));
    }
    let _ = writeln!(out);
}

/// One bullet per failed run with its replay command, shrunk faults, error and undelivered
/// records; nothing when every run passed.
fn write_markdown_failures(out: &mut String, index: &Index) {
    if index.failures_count == 0 {
        return;
    }
    let _ = writeln!(out, "## Failures\n");
    for run in index.runs.iter().filter(|run| !run.passed).take(FAILURES_LISTED_LIMIT) {
        let _ = writeln!(out, "- **{}** seed {}: failed {}", run.scenario, run.seed, run.failed_checks.join(", "));
        for failed in &run.failed_check_details {
            // The first line: a detail's examples follow on further lines (in result.json).
            let _ = writeln!(out, "  - {}: {}", failed.check, failed.detail.lines().next().unwrap_or_default());
        }
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
    let listed = (index.failures_count as usize).min(FAILURES_LISTED_LIMIT);
    if index.failures_count as usize > listed {
        let _ = writeln!(
            out,
            "- … and {} more failures (index.json and the scenario pages under scenarios/ list them all)",
            index.failures_count as usize - listed
        );
    }
    let _ = writeln!(out);
}

/// The runs with the worst log p99, linking their summaries; nothing when no run measured
/// latency.
fn write_markdown_worst(out: &mut String, index: &Index) {
    let worst = worst_index_runs(index);
    if worst.is_empty() {
        return;
    }
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

/// Every run as a table row: verdict, log p99, undelivered records and fault count.
fn write_markdown_runs(out: &mut String, index: &Index) {
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

/// `path` relative to the current folder when it is inside it, for replay commands.
pub fn display_path(path: &Path) -> String {
    let relative = std::env::current_dir().ok().and_then(|dir| path.strip_prefix(dir).ok().map(Path::to_path_buf));
    relative.unwrap_or_else(|| path.to_path_buf()).display().to_string()
}

/// The `q` quantile (0 < q ≤ 1, nearest rank) of `values`, sorting them; `None` when empty.
/// Why nearest rank: the answer is one of the runs, so a reader can find it.
pub(crate) fn quantile_of(values: &mut [u64], q: f64) -> Option<u64> {
    if values.is_empty() {
        return None;
    }
    values.sort_unstable();
    let rank = ((values.len() as f64) * q).ceil() as usize;
    Some(values[rank.clamp(1, values.len()) - 1])
}
