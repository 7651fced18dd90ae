//! `index.html` of a chaos sweep and its drill-down pages `scenarios/<name>.html`: one row
//! per scenario (runs, passed, failed, p99 of the runs' log p99, a link to its page), the
//! failures with why they failed (each failed check's detail) and a link to their replay
//! file, the distribution of log p99 across seeds, and the worst seeds. A scenario's page
//! lists its runs, failures first, with links to their report folders and failure files.
//!
//! Why rows per scenario and not a seed grid: a nightly sweep runs 200 seeds of some 40
//! files; a grid of 8,000 cells overflows any page and says less than "baseline: 200 runs,
//! 3 failed". The drill-down pages keep every run one click away, bounded by
//! `RUNS_PER_PAGE_LIMIT` rows (index.json has them all).
//!
//! Askama templates (`templates/sweep_*.html`, extending `page.html`): every value is
//! escaped, so a scenario name or a check's detail cannot break a page. Links are relative
//! inside the sweep's folder, so the folder works as one artifact. Self-contained and
//! well-formed XML like every obsim page.

use std::collections::BTreeMap;

use super::html::{latency_text, render_template, verdict_html};
use super::index::{FAILURES_LISTED_LIMIT, FailedCheck, Index, IndexRun, quantile_of, worst_index_runs};
use super::svg::{self, Axis, Bar, BarPlot};

/// Bins of the p99 histogram.
const HISTOGRAM_BINS: usize = 20;

/// The folder (inside the sweep's) of the drill-down pages.
pub(crate) const SCENARIOS_DIR: &str = "scenarios";

/// Most runs a scenario's page lists (failures first); the rest are counted, and
/// `index.json` has them.
pub(crate) const RUNS_PER_PAGE_LIMIT: usize = 1_000;

/// Most scenario rows `index.html` shows (a sweep's files are bounded by the library; this
/// bounds the page should a sweep be given thousands).
pub(crate) const SCENARIO_ROWS_LIMIT: usize = 1_000;

/// (a) Per-run log p99 across the sweep as a histogram.
pub(crate) fn p99_histogram(index: &Index) -> BarPlot {
    let values: Vec<u64> = index.runs.iter().filter_map(|run| run.log_latency_p99_micros).collect();
    let max = values.iter().copied().max().unwrap_or(0);
    let (unit, per_unit) = svg::latency_unit(max);
    let x = Axis::nice(&format!("log p99 latency of a run ({unit})"), 0.0, max as f64 / per_unit, 8, svg::plain);
    let width = (x.max - x.min) / HISTOGRAM_BINS as f64;
    let mut counts = [0u64; HISTOGRAM_BINS];
    for value in &values {
        let bin = ((*value as f64 / per_unit - x.min) / width).floor() as usize;
        counts[bin.min(HISTOGRAM_BINS - 1)] += 1;
    }
    let bars: Vec<Bar> = if values.is_empty() {
        Vec::new()
    } else {
        counts
            .iter()
            .enumerate()
            .filter(|(_, count)| **count > 0)
            .map(|(bin, &count)| {
                let from = x.min + bin as f64 * width;
                Bar {
                    from,
                    to: from + width,
                    value: count as f64,
                    label: format!(
                        "{count} runs with p99 in [{}, {}) {unit}",
                        svg::plain(from),
                        svg::plain(from + width)
                    ),
                }
            })
            .collect()
    };
    let y_max = counts.iter().copied().max().unwrap_or(0) as f64;
    BarPlot {
        series: "p99_distribution",
        title: format!("Log p99 latency across {} runs", values.len()),
        x,
        y: Axis::counts("runs", y_max, 4),
        bars,
        legend: "runs per bin".into(),
    }
}

/// The runs of one scenario file in a sweep, in index order.
#[derive(Debug)]
pub(crate) struct ScenarioGroup<'a> {
    pub(crate) scenario: &'a str,
    pub(crate) file: &'a str,
    pub(crate) runs: Vec<&'a IndexRun>,
    /// Its drill-down page, relative to the sweep's folder: `scenarios/<name>.html`.
    pub(crate) page: String,
}

/// The sweep's runs grouped by scenario file, in the sweep's file order, each with the name
/// of its page: the scenario's name made file-safe, with `-<file index>` when two files
/// share it.
pub(crate) fn scenario_groups(index: &Index) -> Vec<ScenarioGroup<'_>> {
    let mut groups: BTreeMap<(u64, &str), (&str, Vec<&IndexRun>)> = BTreeMap::new();
    for run in &index.runs {
        groups.entry((run.file_index, run.scenario.as_str())).or_insert((run.file.as_str(), Vec::new())).1.push(run);
    }
    let mut names_count: BTreeMap<String, u64> = BTreeMap::new();
    for (_, scenario) in groups.keys() {
        *names_count.entry(file_safe(scenario)).or_default() += 1;
    }
    groups
        .into_iter()
        .map(|((file_index, scenario), (file, runs))| {
            let name = file_safe(scenario);
            let page = if names_count[&name] > 1 {
                format!("{SCENARIOS_DIR}/{name}-{file_index}.html")
            } else {
                format!("{SCENARIOS_DIR}/{name}.html")
            };
            ScenarioGroup { scenario, file, runs, page }
        })
        .collect()
}

/// `name` with every character but ASCII letters, digits, `-`, `_` and `.` replaced by
/// `_` (and never empty or starting with a dot): a file name on every system.
fn file_safe(name: &str) -> String {
    let safe: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') { c } else { '_' }).collect();
    if safe.is_empty() || safe.starts_with('.') { format!("_{safe}") } else { safe }
}

/// One row of the scenarios table.
struct ScenarioRow {
    name: String,
    file: String,
    runs_count: usize,
    passed_count: usize,
    failed_count: usize,
    p99_of_p99s: String,
    failed_seeds: String,
    page: String,
}

/// Most failed seeds a scenario row names.
const FAILED_SEEDS_SHOWN_LIMIT: usize = 10;

impl ScenarioRow {
    fn of(group: &ScenarioGroup<'_>) -> ScenarioRow {
        let failed: Vec<u64> = group.runs.iter().filter(|run| !run.passed).map(|run| run.seed).collect();
        let mut p99s: Vec<u64> = group.runs.iter().filter_map(|run| run.log_latency_p99_micros).collect();
        let mut failed_seeds: Vec<String> = failed.iter().take(FAILED_SEEDS_SHOWN_LIMIT).map(u64::to_string).collect();
        if failed.len() > FAILED_SEEDS_SHOWN_LIMIT {
            failed_seeds.push(format!("… {} more", failed.len() - FAILED_SEEDS_SHOWN_LIMIT));
        }
        ScenarioRow {
            name: group.scenario.to_string(),
            file: group.file.to_string(),
            runs_count: group.runs.len(),
            passed_count: group.runs.len() - failed.len(),
            failed_count: failed.len(),
            p99_of_p99s: quantile_of(&mut p99s, 0.99).map(latency_text).unwrap_or_default(),
            failed_seeds: failed_seeds.join(", "),
            page: group.page.clone(),
        }
    }
}

/// A failed run as the pages show it: why (each failed check's detail), the replay command
/// and file, what shrinking left, and its report. Links are relative to the page, whose
/// folder is `prefix` away from the sweep's (`""` or `"../"`).
struct FailureEntry {
    scenario: String,
    seed: u64,
    /// The failed checks with their details; when the index has no details (written before
    /// obsim recorded them), the names with an empty detail.
    checks: Vec<FailedCheck>,
    error: Option<String>,
    undelivered: String,
    replay: String,
    replay_href: Option<String>,
    shrunk: String,
    report_href: Option<String>,
    report_label: String,
}

impl FailureEntry {
    fn of(run: &IndexRun, prefix: &str) -> FailureEntry {
        let checks = if run.failed_check_details.is_empty() {
            run.failed_checks
                .iter()
                .filter(|check| !matches!(check.as_str(), "world" | "case"))
                .map(|check| FailedCheck { check: check.clone(), detail: String::new() })
                .collect()
        } else {
            run.failed_check_details.clone()
        };
        let shrunk = if run.shrunk_faults.is_empty() && run.shrunk_steps.is_empty() {
            String::new()
        } else if run.shrunk_faults.is_empty() {
            "no faults".to_string()
        } else {
            run.shrunk_faults.join("; ")
        };
        let (report_href, report_label) = report_link(run, prefix);
        FailureEntry {
            scenario: run.scenario.clone(),
            seed: run.seed,
            checks,
            error: run.error.clone(),
            undelivered: super::index::undelivered_text(run),
            replay: run.replay.clone().unwrap_or_default(),
            replay_href: run.failure_file.as_ref().map(|file| format!("{prefix}{file}")),
            shrunk,
            report_href,
            report_label,
        }
    }
}

/// A run's report link and its label: `report.html` when it has a full report, else its
/// `result.json`; none without a report folder.
fn report_link(run: &IndexRun, prefix: &str) -> (Option<String>, String) {
    match (&run.report_dir, run.full_report) {
        (Some(dir), true) => (Some(format!("{prefix}{dir}/report.html")), "report".to_string()),
        (Some(dir), false) => (Some(format!("{prefix}{dir}/result.json")), "result.json".to_string()),
        _ => (None, String::new()),
    }
}

/// One of the worst seeds.
struct WorstRow {
    scenario: String,
    seed: u64,
    log_p99: String,
    log_max: String,
    verdict: &'static str,
    faults_count: usize,
    report_href: Option<String>,
    report_label: String,
}

/// `index.html`.
#[derive(askama::Template)]
#[template(path = "sweep_index.html")]
struct IndexPage {
    title: String,
    shard: String,
    verdict: &'static str,
    runs_count: u64,
    first_seed: u64,
    seeds_end: u64,
    failures_count: u64,
    incomplete: Option<String>,
    build: Option<String>,
    scenarios: Vec<ScenarioRow>,
    scenarios_more: usize,
    failures: Vec<FailureEntry>,
    failures_more: usize,
    histogram: String,
    worst: Vec<WorstRow>,
}

/// `index.html` of `index`: the header, one row per scenario, the failures, the p99
/// histogram and the worst seeds.
pub fn render(index: &Index) -> String {
    let incomplete = super::index::incompleteness(index);
    let groups = scenario_groups(index);
    let failed: Vec<&IndexRun> = index.runs.iter().filter(|run| !run.passed).collect();
    let page = IndexPage {
        title: format!("obsim chaos sweep {}", index.shard),
        shard: index.shard.clone(),
        // A sweep with shards missing or unfinished never shows PASS: nobody ran the rest.
        verdict: verdict_html(index.failures_count == 0 && incomplete.is_none()),
        runs_count: index.runs_count,
        first_seed: index.first_seed,
        seeds_end: index.first_seed + index.seeds,
        failures_count: index.failures_count,
        incomplete,
        build: index.obsim.as_ref().map(|build| format!("Built by {} (commit {}).", build.text(), build.commit)),
        scenarios: groups.iter().take(SCENARIO_ROWS_LIMIT).map(ScenarioRow::of).collect(),
        scenarios_more: groups.len().saturating_sub(SCENARIO_ROWS_LIMIT),
        failures: failed.iter().take(FAILURES_LISTED_LIMIT).map(|run| FailureEntry::of(run, "")).collect(),
        failures_more: failed.len().saturating_sub(FAILURES_LISTED_LIMIT),
        histogram: p99_histogram(index).render(),
        worst: worst_index_runs(index)
            .into_iter()
            .map(|run| {
                let (report_href, report_label) = report_link(run, "");
                WorstRow {
                    scenario: run.scenario.clone(),
                    seed: run.seed,
                    log_p99: latency_text(run.log_latency_p99_micros.unwrap_or(0)),
                    log_max: latency_text(run.log_latency_max_micros.unwrap_or(0)),
                    verdict: verdict_html(run.passed),
                    faults_count: run.faults.len(),
                    report_href,
                    report_label,
                }
            })
            .collect(),
    };
    render_template(&page)
}

/// One run on a scenario's page.
struct RunRow {
    seed: u64,
    passed: bool,
    failed_checks: String,
    log_p99: String,
    span_p99: String,
    undelivered: String,
    faults_count: usize,
    report_href: Option<String>,
    report_label: String,
    replay_href: Option<String>,
}

/// `scenarios/<name>.html`.
#[derive(askama::Template)]
#[template(path = "sweep_scenario.html")]
struct ScenarioPage {
    title: String,
    scenario: String,
    file: String,
    verdict: &'static str,
    runs_count: usize,
    failed_count: usize,
    failures: Vec<FailureEntry>,
    runs: Vec<RunRow>,
    runs_more: usize,
    runs_limit: usize,
}

/// The drill-down pages of `index`: (path relative to the sweep's folder, page), one per
/// scenario file, in the sweep's file order.
pub(crate) fn scenario_pages(index: &Index) -> Vec<(String, String)> {
    scenario_groups(index)
        .iter()
        .take(SCENARIO_ROWS_LIMIT)
        .map(|group| (group.page.clone(), render_scenario(group)))
        .collect()
}

/// One scenario's page: its failures with details, then its runs (failures first, then
/// seed order), at most `RUNS_PER_PAGE_LIMIT` of them.
fn render_scenario(group: &ScenarioGroup<'_>) -> String {
    let prefix = "../";
    let failed: Vec<&IndexRun> = group.runs.iter().copied().filter(|run| !run.passed).collect();
    let ordered = failed.iter().copied().chain(group.runs.iter().copied().filter(|run| run.passed));
    let runs: Vec<RunRow> = ordered
        .take(RUNS_PER_PAGE_LIMIT)
        .map(|run| {
            let (report_href, report_label) = report_link(run, prefix);
            RunRow {
                seed: run.seed,
                passed: run.passed,
                failed_checks: run.failed_checks.join(", "),
                log_p99: run.log_latency_p99_micros.map(latency_text).unwrap_or_default(),
                span_p99: run.span_latency_p99_micros.map(latency_text).unwrap_or_default(),
                undelivered: super::index::undelivered_text(run),
                faults_count: run.faults.len(),
                report_href,
                report_label,
                replay_href: run.failure_file.as_ref().map(|file| format!("{prefix}{file}")),
            }
        })
        .collect();
    let page = ScenarioPage {
        title: format!("obsim chaos sweep: {}", group.scenario),
        scenario: group.scenario.to_string(),
        file: group.file.to_string(),
        verdict: verdict_html(failed.is_empty()),
        runs_count: group.runs.len(),
        failed_count: failed.len(),
        failures: failed.iter().take(RUNS_PER_PAGE_LIMIT).map(|run| FailureEntry::of(run, prefix)).collect(),
        runs_more: group.runs.len().saturating_sub(runs.len()),
        runs,
        runs_limit: RUNS_PER_PAGE_LIMIT,
    };
    render_template(&page)
}
