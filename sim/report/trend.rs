//! `obsim report trend HISTORY... --out DIR`: the last nights side by side — per scenario,
//! the failure rate and the p99 of the runs' log p99, night by night — as `trend.md` (for a
//! CI step summary), `trend.svg` (two plots) and `trend.html`.
//!
//! Why: one night's sweep says what failed tonight; whether the pipeline is getting slower
//! or flakier shows only across nights. The nightly workflow keeps the merged `index.json`
//! of its last nights as a history artifact (`<history>/<night>/index.json`) and runs this
//! on it.
//!
//! Inputs: an `index.json`, a night's folder holding one, or a history folder whose
//! subfolders (in name order: name them so they sort, e.g. `night-000123`) each hold one.
//! The last `nights` of them are read, at most `TREND_NIGHTS_LIMIT`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::html::{latency_text, render_template};
use super::index::{Index, quantile_of, write_atomically};
use super::svg::{self, Axis, Line, LinePlot, PALETTE};

/// Most nights one trend reads (a history artifact is bounded the same way).
pub const TREND_NIGHTS_LIMIT: usize = 90;

/// The nights a trend reads when not told.
pub const TREND_NIGHTS_DEFAULT: usize = 30;

/// Most scenario lines a plot draws besides "all runs" (their legend is one row); the
/// tables have every scenario. The scenarios drawn are the worst of the last night.
pub(crate) const PLOT_SCENARIOS_LIMIT: usize = 4;

/// The height of one of `svg.rs`'s plots, in SVG units: `trend.svg` stacks two.
const PLOT_HEIGHT: f64 = 320.0;
/// Its width.
const PLOT_WIDTH: f64 = 880.0;

/// One night: its label (the folder's name) and its sweep's index.
#[derive(Clone, Debug)]
pub struct Night {
    pub label: String,
    pub index: Index,
}

/// What one scenario did in one night.
#[derive(Clone, Debug, PartialEq)]
pub struct NightPoint {
    pub runs_count: u64,
    pub failures_count: u64,
    /// The p99 (nearest rank) of the runs' log p99; `None` when no run measured latency.
    pub p99_of_p99s_micros: Option<u64>,
}

impl NightPoint {
    /// Failed runs over runs, in percent.
    pub fn failure_percent(&self) -> f64 {
        if self.runs_count == 0 { 0.0 } else { self.failures_count as f64 * 100.0 / self.runs_count as f64 }
    }
}

/// One scenario across the nights: a point per night, `None` for a night it did not run.
#[derive(Clone, Debug, PartialEq)]
pub struct ScenarioTrend {
    pub scenario: String,
    pub points: Vec<Option<NightPoint>>,
}

/// The trend: the nights' labels, every scenario (by name) and all runs together.
#[derive(Clone, Debug, PartialEq)]
pub struct Trend {
    pub nights: Vec<String>,
    pub scenarios: Vec<ScenarioTrend>,
    pub all: ScenarioTrend,
}

/// The night's point of the runs `runs`.
fn point<'a>(runs: impl Iterator<Item = &'a super::index::IndexRun>) -> NightPoint {
    let mut point = NightPoint { runs_count: 0, failures_count: 0, p99_of_p99s_micros: None };
    let mut p99s = Vec::new();
    for run in runs {
        point.runs_count += 1;
        point.failures_count += u64::from(!run.passed);
        p99s.extend(run.log_latency_p99_micros);
    }
    point.p99_of_p99s_micros = quantile_of(&mut p99s, 0.99);
    point
}

/// The trend of `nights`, in their order.
pub fn trend(nights: &[Night]) -> Trend {
    let mut names: Vec<&str> =
        nights.iter().flat_map(|night| night.index.runs.iter().map(|run| run.scenario.as_str())).collect();
    names.sort_unstable();
    names.dedup();
    let scenarios = names
        .iter()
        .map(|name| ScenarioTrend {
            scenario: name.to_string(),
            points: nights
                .iter()
                .map(|night| {
                    let mut runs = night.index.runs.iter().filter(|run| run.scenario == *name).peekable();
                    runs.peek().is_some().then(|| point(runs))
                })
                .collect(),
        })
        .collect();
    let all = ScenarioTrend {
        scenario: "all runs".to_string(),
        points: nights.iter().map(|night| Some(point(night.index.runs.iter()))).collect(),
    };
    Trend { nights: nights.iter().map(|night| night.label.clone()).collect(), scenarios, all }
}

/// Reads the nights at `paths` (see the module's doc), keeps the last `nights_count` (at
/// most `TREND_NIGHTS_LIMIT`) and parses their indexes. Errors name the path.
pub fn load_nights(paths: &[PathBuf], nights_count: usize) -> Result<Vec<Night>, String> {
    if nights_count == 0 || nights_count > TREND_NIGHTS_LIMIT {
        return Err(format!("--nights {nights_count}: needs 1 to {TREND_NIGHTS_LIMIT}"));
    }
    let mut files: Vec<(String, PathBuf)> = Vec::new();
    for path in paths {
        files.extend(night_files(path)?);
    }
    if files.is_empty() {
        return Err(format!(
            "no index.json in {}",
            paths.iter().map(|path| path.display().to_string()).collect::<Vec<_>>().join(", ")
        ));
    }
    let skip = files.len().saturating_sub(nights_count);
    files
        .into_iter()
        .skip(skip)
        .map(|(label, file)| {
            let name = file.display().to_string();
            let text = std::fs::read_to_string(&file).map_err(|error| format!("{name}: {error}"))?;
            match super::compare::parse_input(&name, &text)? {
                super::compare::Input::Index(index) => Ok(Night { label, index: *index }),
                super::compare::Input::Result(_) => Err(format!("{name}: a result.json, not a chaos index.json")),
            }
        })
        .collect()
}

/// The nights one path holds, as (label, index.json path).
fn night_files(path: &Path) -> Result<Vec<(String, PathBuf)>, String> {
    let label_of = |dir: &Path| dir.file_name().map(|name| name.to_string_lossy().to_string()).unwrap_or_default();
    if path.is_file() {
        let label = path.parent().map(label_of).filter(|label| !label.is_empty()).unwrap_or_else(|| label_of(path));
        return Ok(vec![(label, path.to_path_buf())]);
    }
    if !path.is_dir() {
        return Err(format!("{}: no such file or folder", path.display()));
    }
    if path.join("index.json").is_file() {
        return Ok(vec![(label_of(path), path.join("index.json"))]);
    }
    let entries = std::fs::read_dir(path).map_err(|error| format!("{}: {error}", path.display()))?;
    let mut dirs: Vec<PathBuf> = entries
        .map(|entry| entry.map(|entry| entry.path()))
        .collect::<Result<_, _>>()
        .map_err(|error| format!("{}: {error}", path.display()))?;
    dirs.sort();
    Ok(dirs
        .into_iter()
        .filter(|dir| dir.join("index.json").is_file())
        .map(|dir| (label_of(&dir), dir.join("index.json")))
        .collect())
}

/// A cell of the failure table: "2/200 (1.0%)", or "—" when the scenario did not run.
fn failure_cell(point: &Option<NightPoint>) -> String {
    point.as_ref().map_or_else(
        || "—".to_string(),
        |point| format!("{}/{} ({:.1}%)", point.failures_count, point.runs_count, point.failure_percent()),
    )
}

/// A cell of the latency table: the p99 of the runs' log p99, or "—".
fn p99_cell(point: &Option<NightPoint>) -> String {
    point.as_ref().and_then(|point| point.p99_of_p99s_micros).map_or_else(|| "—".to_string(), latency_text)
}

/// `trend.md`: two tables, a row per scenario (and all runs), a column per night.
pub fn markdown(trend: &Trend) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# obsim nightly trend: the last {} nights\n", trend.nights.len());
    for (title, cell) in [
        ("Failed runs per night", failure_cell as fn(&Option<NightPoint>) -> String),
        ("p99 of the runs' log p99 per night", p99_cell),
    ] {
        let _ = writeln!(out, "## {title}\n");
        let _ = writeln!(out, "| scenario | {} |", trend.nights.join(" | "));
        let _ = writeln!(out, "|---|{}", "---|".repeat(trend.nights.len()));
        for scenario in std::iter::once(&trend.all).chain(&trend.scenarios) {
            let cells: Vec<String> = scenario.points.iter().map(cell).collect();
            let _ = writeln!(out, "| {} | {} |", scenario.scenario, cells.join(" | "));
        }
        let _ = writeln!(out);
    }
    out
}

/// The x axis: night k at k, labelled with its label, at most about eight ticks.
fn nights_axis(trend: &Trend) -> Axis {
    let count = trend.nights.len().max(1);
    let every = count.div_ceil(8).max(1);
    let ticks = trend
        .nights
        .iter()
        .enumerate()
        .filter(|(k, _)| k % every == 0)
        .map(|(k, label)| (k as f64, label.clone()))
        .collect();
    Axis { label: "night".to_string(), min: 0.0, max: (count - 1).max(1) as f64, ticks }
}

/// The scenarios a plot draws: the `PLOT_SCENARIOS_LIMIT` worst by `score` of the last
/// night they ran (ties: name order), best left out.
fn drawn(trend: &Trend, score: impl Fn(&NightPoint) -> f64) -> Vec<&ScenarioTrend> {
    let mut ranked: Vec<(f64, &ScenarioTrend)> = trend
        .scenarios
        .iter()
        .filter_map(|scenario| scenario.points.iter().rev().flatten().next().map(|last| (score(last), scenario)))
        .filter(|(score, _)| *score > 0.0)
        .collect();
    ranked.sort_by(|a, b| b.0.total_cmp(&a.0));
    ranked.into_iter().take(PLOT_SCENARIOS_LIMIT).map(|(_, scenario)| scenario).collect()
}

/// A plot line of `scenario`, `value` per night (`None` breaks the line).
fn line(
    scenario: &ScenarioTrend,
    color: &'static str,
    dashed: bool,
    value: impl Fn(&NightPoint) -> Option<f64>,
) -> Line {
    const LABEL_CHARS_LIMIT: usize = 24;
    let label: String = scenario.scenario.chars().take(LABEL_CHARS_LIMIT).collect();
    Line {
        label,
        color,
        dashed,
        points: scenario
            .points
            .iter()
            .enumerate()
            .map(|(k, point)| point.as_ref().and_then(&value).map(|y| (k as f64, y)))
            .collect(),
    }
}

/// The two plots: failure rate per night, and the p99 of the runs' log p99 per night;
/// each with all runs and the worst scenarios of the last night.
pub(crate) fn plots(trend: &Trend) -> [LinePlot; 2] {
    let failure = |point: &NightPoint| Some(point.failure_percent());
    let mut failure_lines = vec![line(&trend.all, PALETTE[6], true, failure)];
    for (k, scenario) in drawn(trend, NightPoint::failure_percent).into_iter().enumerate() {
        failure_lines.push(line(scenario, PALETTE[k], false, failure));
    }
    let max_micros = std::iter::once(&trend.all)
        .chain(&trend.scenarios)
        .flat_map(|scenario| scenario.points.iter().flatten().filter_map(|point| point.p99_of_p99s_micros))
        .max()
        .unwrap_or(0);
    let (unit, per_unit) = svg::latency_unit(max_micros);
    let p99 = |point: &NightPoint| point.p99_of_p99s_micros.map(|micros| micros as f64 / per_unit);
    let mut p99_lines = vec![line(&trend.all, PALETTE[6], true, p99)];
    let worst_p99 = drawn(trend, |point| point.p99_of_p99s_micros.unwrap_or(0) as f64);
    for (k, scenario) in worst_p99.into_iter().enumerate() {
        p99_lines.push(line(scenario, PALETTE[k], false, p99));
    }
    [
        LinePlot {
            series: "trend_failure_rate",
            title: format!("Failed runs per night, percent (last {} nights)", trend.nights.len()),
            x: nights_axis(trend),
            y: Axis::nice("failed runs (%)", 0.0, 100.0, 5, svg::plain),
            lines: failure_lines,
            bands: Vec::new(),
            markers: Vec::new(),
        },
        LinePlot {
            series: "trend_p99",
            title: format!("p99 of the runs' log p99 per night (last {} nights)", trend.nights.len()),
            x: nights_axis(trend),
            y: Axis::nice(&format!("p99 of runs' log p99 ({unit})"), 0.0, max_micros as f64 / per_unit, 5, svg::plain),
            lines: p99_lines,
            bands: Vec::new(),
            markers: Vec::new(),
        },
    ]
}

/// `trend.svg`: the two plots stacked in one file.
pub fn svg_file(trend: &Trend) -> String {
    let [failure, p99] = plots(trend);
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {w} {h}\" width=\"{w}\" height=\"{h}\">{}<g transform=\"translate(0,{PLOT_HEIGHT})\">{}</g></svg>\n",
        failure.render(),
        p99.render(),
        w = PLOT_WIDTH,
        h = 2.0 * PLOT_HEIGHT
    )
}

/// A row of a `trend.html` table.
struct TrendRow {
    scenario: String,
    cells: Vec<String>,
}

/// `trend.html`.
#[derive(askama::Template)]
#[template(path = "trend.html")]
struct TrendPage {
    title: String,
    nights: Vec<String>,
    failure_plot: String,
    p99_plot: String,
    failure_rows: Vec<TrendRow>,
    p99_rows: Vec<TrendRow>,
}

/// `trend.html`: the two plots and the two tables.
pub fn html(trend: &Trend) -> String {
    let [failure, p99] = plots(trend);
    let rows = |cell: fn(&Option<NightPoint>) -> String| -> Vec<TrendRow> {
        std::iter::once(&trend.all)
            .chain(&trend.scenarios)
            .map(|scenario| TrendRow {
                scenario: scenario.scenario.clone(),
                cells: scenario.points.iter().map(cell).collect(),
            })
            .collect()
    };
    render_template(&TrendPage {
        title: format!("obsim nightly trend ({} nights)", trend.nights.len()),
        nights: trend.nights.clone(),
        failure_plot: failure.render(),
        p99_plot: p99.render(),
        failure_rows: rows(failure_cell),
        p99_rows: rows(p99_cell),
    })
}

/// Writes `trend.md`, `trend.svg` and `trend.html` of `trend` into `out`.
pub fn write(out: &Path, trend: &Trend) -> std::io::Result<()> {
    std::fs::create_dir_all(out)?;
    write_atomically(&out.join("trend.md"), markdown(trend).as_bytes())?;
    write_atomically(&out.join("trend.svg"), svg_file(trend).as_bytes())?;
    write_atomically(&out.join("trend.html"), html(trend).as_bytes())?;
    Ok(())
}

/// The nights' labels and each scenario's failure percentages, for messages and tests.
pub fn failure_percents(trend: &Trend) -> BTreeMap<String, Vec<Option<f64>>> {
    trend
        .scenarios
        .iter()
        .map(|scenario| {
            (
                scenario.scenario.clone(),
                scenario.points.iter().map(|point| point.as_ref().map(NightPoint::failure_percent)).collect(),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::index::IndexRun;

    fn night(label: &str, runs: &[(&str, bool, u64)]) -> Night {
        let runs: Vec<IndexRun> = runs
            .iter()
            .enumerate()
            .map(|(k, (scenario, passed, p99_ms))| IndexRun {
                scenario: scenario.to_string(),
                seed: k as u64,
                passed: *passed,
                log_latency_p99_micros: Some(p99_ms * 1000),
                ..IndexRun::default()
            })
            .collect();
        Night {
            label: label.to_string(),
            index: Index {
                schema_version: crate::report::index::INDEX_SCHEMA_VERSION,
                obsim: None,
                shard: "1/1".into(),
                first_seed: 0,
                seeds: runs.len() as u64,
                runs_count: runs.len() as u64,
                failures_count: runs.iter().filter(|run| !run.passed).count() as u64,
                planned_runs_count: None,
                finished: true,
                missing_shards: Vec::new(),
                unfinished_shards: Vec::new(),
                runs,
            },
        }
    }

    #[test]
    fn three_nights_give_three_points_per_scenario_and_a_gap_where_one_did_not_run() {
        let nights = [
            night("n1", &[("a", true, 100), ("a", true, 200), ("b", true, 50)]),
            night("n2", &[("a", false, 300), ("a", true, 200)]),
            night("n3", &[("a", false, 900), ("a", false, 200), ("b", false, 70)]),
        ];
        let trend = trend(&nights);
        assert_eq!(trend.nights, vec!["n1", "n2", "n3"]);
        let percents = failure_percents(&trend);
        assert_eq!(percents["a"], vec![Some(0.0), Some(50.0), Some(100.0)]);
        assert_eq!(percents["b"], vec![Some(0.0), None, Some(100.0)]);
        assert_eq!(trend.scenarios[0].points[2].as_ref().unwrap().p99_of_p99s_micros, Some(900_000));
        assert_eq!(trend.all.points.len(), 3);
        let markdown = markdown(&trend);
        assert!(markdown.contains("| a | 0/2 (0.0%) | 1/2 (50.0%) | 2/2 (100.0%) |"), "{markdown}");
        assert!(markdown.contains("| b | 0/1 (0.0%) | — | 1/1 (100.0%) |"), "{markdown}");
        let [failure, _] = plots(&trend);
        let a = failure.lines.iter().find(|line| line.label == "a").unwrap();
        assert_eq!(a.points.iter().flatten().count(), 3);
    }
}
