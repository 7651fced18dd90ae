//! `index.html` of a chaos sweep: pass/fail per scenario and seed, the failures with their
//! replay commands, the distribution of log p99 across seeds, and the worst seeds.
//!
//! Why a page and not only `index.md`: a nightly sweep of thousands of runs reads best as a
//! grid and a histogram; the failures and worst seeds link to their runs' own reports
//! (relative links inside the sweep's folder, so the folder works as one artifact).
//! Self-contained and well-formed XML like every obsim page.

use std::fmt::Write as _;

use super::html::{latency_text, page, verdict_html};
use super::index::{Index, IndexRun, worst_index_runs};
use super::svg::{self, Axis, Bar, BarPlot, escape};

/// Bins of the p99 histogram.
const HISTOGRAM_BINS: usize = 20;

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

/// A run's report link, when it has a full report.
fn report_link(run: &IndexRun) -> String {
    match (&run.report_dir, run.full_report) {
        (Some(dir), true) => format!("<a href=\"{}/report.html\">report</a>", escape(dir)),
        (Some(dir), false) => format!("<a href=\"{}/result.json\">result.json</a>", escape(dir)),
        _ => String::new(),
    }
}

/// `index.html` of `index`: one section after another, top to bottom.
pub fn render(index: &Index) -> String {
    let mut body = String::new();
    write_header(&mut body, index);
    write_grid(&mut body, index);
    write_failures(&mut body, index);
    let _ = writeln!(body, "<h2>Latency across seeds</h2>");
    body.push_str(&p99_histogram(index).render());
    body.push('\n');
    write_worst(&mut body, index);
    page(&format!("obsim chaos sweep {}", index.shard), &body)
}

/// The title, the sweep's verdict and size, and what is missing when it is incomplete.
fn write_header(body: &mut String, index: &Index) {
    let _ = writeln!(body, "<h1>obsim chaos sweep (shard {})</h1>", escape(&index.shard));
    let _ = writeln!(
        body,
        "<p class=\"verdict\">{} — {} runs (seeds {}..{}), {} failed</p>",
        // A sweep with shards missing or unfinished never shows PASS: nobody ran the rest.
        verdict_html(index.failures_count == 0 && super::index::incompleteness(index).is_none()),
        index.runs_count,
        index.first_seed,
        index.first_seed + index.seeds,
        index.failures_count
    );
    if let Some(incomplete) = super::index::incompleteness(index) {
        let _ = writeln!(body, "<p class=\"fail\">{}</p>", escape(&incomplete));
    }
}

/// The grid: one row per scenario file, one column per seed, each cell the run's verdict.
fn write_grid(body: &mut String, index: &Index) {
    let mut seeds: Vec<u64> = index.runs.iter().map(|run| run.seed).collect();
    seeds.sort_unstable();
    seeds.dedup();
    let mut files: Vec<(u64, &str, &str)> =
        index.runs.iter().map(|run| (run.file_index, run.file.as_str(), run.scenario.as_str())).collect();
    files.sort_unstable();
    files.dedup();
    let _ = writeln!(body, "<h2>Runs</h2>\n<table>\n<tr><th>scenario</th>");
    for seed in &seeds {
        let _ = write!(body, "<th class=\"num\">{seed}</th>");
    }
    let _ = writeln!(body, "</tr>");
    for (file_index, file, scenario) in &files {
        let _ = write!(body, "<tr><td title=\"{}\">{}</td>", escape(file), escape(scenario));
        for seed in &seeds {
            let run =
                index.runs.iter().find(|run| run.seed == *seed && run.file_index == *file_index && run.file == *file);
            write_grid_cell(body, run);
        }
        let _ = writeln!(body, "</tr>");
    }
    let _ = writeln!(body, "</table>");
}

/// One cell of the grid: ok, FAIL (naming the failed checks) or empty when no run there.
fn write_grid_cell(body: &mut String, run: Option<&IndexRun>) {
    match run {
        Some(run) if run.passed => {
            let _ = write!(body, "<td class=\"cell-pass\" title=\"pass\">ok</td>");
        }
        Some(run) => {
            let _ =
                write!(body, "<td class=\"cell-fail\" title=\"{}\">FAIL</td>", escape(&run.failed_checks.join(", ")));
        }
        None => {
            let _ = write!(body, "<td></td>");
        }
    }
}

/// The failed runs with what failed, what went undelivered, the replay command, what the
/// shrinker reduced the faults to and a link to the run's report.
fn write_failures(body: &mut String, index: &Index) {
    let _ = writeln!(body, "<h2>Failures</h2>");
    let failures: Vec<&IndexRun> = index.runs.iter().filter(|run| !run.passed).collect();
    if failures.is_empty() {
        let _ = writeln!(body, "<p class=\"muted\">None.</p>");
        return;
    }
    let _ = writeln!(
        body,
        "<table>\n<tr><th>scenario</th><th class=\"num\">seed</th><th>failed</th><th>undelivered</th><th>replay</th><th>shrunk to</th><th></th></tr>"
    );
    for run in failures {
        let shrunk = if run.shrunk_faults.is_empty() && run.shrunk_steps.is_empty() {
            String::new()
        } else if run.shrunk_faults.is_empty() {
            "no faults".to_string()
        } else {
            run.shrunk_faults.join("; ")
        };
        let _ = writeln!(
            body,
            "<tr><td>{}</td><td class=\"num\">{}</td><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
            escape(&run.scenario),
            run.seed,
            escape(&run.failed_checks.join(", ")),
            escape(&super::index::undelivered_text(run)),
            escape(run.replay.as_deref().unwrap_or(run.error.as_deref().unwrap_or(""))),
            escape(&shrunk),
            report_link(run)
        );
    }
    let _ = writeln!(body, "</table>");
}

/// The runs with the worst log p99, or a line saying no run measured latency.
fn write_worst(body: &mut String, index: &Index) {
    let _ = writeln!(body, "<h2>Worst seeds by log p99</h2>");
    let worst = worst_index_runs(index);
    if worst.is_empty() {
        let _ = writeln!(body, "<p class=\"muted\">No run measured latency.</p>");
        return;
    }
    let _ = writeln!(
        body,
        "<table>\n<tr><th>scenario</th><th class=\"num\">seed</th><th class=\"num\">log p99</th><th class=\"num\">log max</th><th>verdict</th><th class=\"num\">faults</th><th></th></tr>"
    );
    for run in worst {
        let _ = writeln!(
            body,
            "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
            escape(&run.scenario),
            run.seed,
            latency_text(run.log_latency_p99_micros.unwrap_or(0)),
            latency_text(run.log_latency_max_micros.unwrap_or(0)),
            verdict_html(run.passed),
            run.faults.len(),
            report_link(run)
        );
    }
    let _ = writeln!(body, "</table>");
}
