//! The library summary: one table of every scenario a run of the library judged
//! (`obsim run scenarios/`), as `summary.md` (for a CI step summary, `$GITHUB_STEP_SUMMARY`)
//! and `summary.html`, in the run's reports folder: per scenario its verdict, records lost
//! by cause, log p99 and max latency, its slowest recovery and its slowest throughput
//! window, each against the scenario's budget with ✓ or ✗, and a link to its report.
//!
//! Why one table: a library of dozens of scenarios is judged in one job, and the first
//! question after it is which scenarios broke which budget, by how much — the shape of the
//! OTel Collector testbed's results table and k6's end-of-test summary. The budgets are the
//! scenario's `[expect]` (the same the checks judge), so a ✗ here is a failed check there.

use std::fmt::Write as _;
use std::path::Path;

use super::html::{latency_text, page, render_template};
use crate::check::RunResult;
use crate::scenario::Expect;
use crate::units::format_duration;

/// The summary's file names in the reports folder.
pub const MARKDOWN_FILE: &str = "summary.md";
pub const HTML_FILE: &str = "summary.html";

/// The budgets a scenario's `[expect]` sets on what the table shows; `None`: no budget.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Budgets {
    /// `latency_p99`: logs' emit → Dash0 p99.
    pub latency_p99_micros: Option<u64>,
    /// `latency_max`: the slowest log.
    pub latency_max_micros: Option<u64>,
    /// `max_recovery`: the slowest fault's recovery.
    pub recovery_micros: Option<u64>,
    /// `min_throughput`: logs stored per second in the slowest judged window.
    pub throughput_per_second: Option<f64>,
}

impl Budgets {
    /// The budgets of `expect` (`latency_p99`, `latency_max`, `max_recovery`,
    /// `min_throughput`).
    pub fn of(expect: &Expect) -> Budgets {
        let micros = |duration: std::time::Duration| u64::try_from(duration.as_micros()).unwrap_or(u64::MAX);
        Budgets {
            latency_p99_micros: expect.latency_p99.map(micros),
            latency_max_micros: expect.latency_max.map(micros),
            recovery_micros: expect.max_recovery.map(micros),
            throughput_per_second: expect.min_throughput.map(|rate| rate.per_second),
        }
    }
}

/// One scenario of the library.
#[derive(Clone, Debug, PartialEq)]
pub struct LibraryRow {
    /// The scenario file as given (or the test's name).
    pub file: String,
    /// The scenario's `name`.
    pub scenario: String,
    /// What the run gave.
    pub run: RowRun,
    /// The run's `report.html`, relative to the summary's folder, when it was written.
    pub report: Option<String>,
}

/// A scenario's run: judged, or stopped before a verdict.
#[derive(Clone, Debug, PartialEq)]
pub enum RowRun {
    Judged {
        result: Box<RunResult>,
        budgets: Budgets,
    },
    /// The simulation stopped (a world error): no verdict.
    Stopped {
        error: String,
    },
}

impl LibraryRow {
    /// Whether the scenario passed.
    pub fn passed(&self) -> bool {
        matches!(&self.run, RowRun::Judged { result, .. } if result.passed)
    }
}

/// How a cell stands against its budget.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Standing {
    /// Within budget (✓).
    Within,
    /// Beyond budget (✗).
    Broken,
    /// No budget to hold it against.
    Unjudged,
}

/// One table cell: its text and how it stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Cell {
    text: String,
    standing: Standing,
}

impl Cell {
    /// A cell with no budget.
    fn plain(text: String) -> Cell {
        Cell { text, standing: Standing::Unjudged }
    }

    /// A cell judged `within` its budget or not; the mark ends its text.
    fn judged(text: String, within: bool) -> Cell {
        let (mark, standing) = if within { ("✓", Standing::Within) } else { ("✗", Standing::Broken) };
        Cell { text: format!("{text} {mark}"), standing }
    }

    /// The HTML class the page colours the cell with.
    pub(crate) fn class(&self) -> &'static str {
        match self.standing {
            Standing::Within => "cell-pass",
            Standing::Broken => "cell-fail",
            Standing::Unjudged => "",
        }
    }

    /// The cell's text.
    pub(crate) fn text(&self) -> &str {
        &self.text
    }
}

/// The column headings after the scenario's name, in the cells' order.
const COLUMNS: [&str; 6] =
    ["verdict", "lost by cause", "log p99 vs budget", "log max vs budget", "slowest recovery", "min throughput"];

/// The cells of a row, in `COLUMNS` order.
pub(crate) fn cells(row: &LibraryRow) -> Vec<Cell> {
    let (result, budgets) = match &row.run {
        RowRun::Judged { result, budgets } => (result, budgets),
        RowRun::Stopped { error } => {
            let mut cells = vec![Cell { text: format!("ERROR: {error}"), standing: Standing::Broken }];
            cells.resize(COLUMNS.len(), Cell::plain("—".to_owned()));
            return cells;
        }
    };
    let failed: Vec<&str> =
        result.checks.iter().filter(|check| !check.passed).map(|check| check.name.as_str()).collect();
    let verdict = if failed.is_empty() {
        Cell { text: "PASS".to_owned(), standing: Standing::Within }
    } else {
        Cell { text: format!("FAIL: {}", failed.join(", ")), standing: Standing::Broken }
    };
    vec![
        verdict,
        lost_cell(result),
        latency_cell(
            result.signals.log.latency.p99_micros,
            budgets.latency_p99_micros,
            result.signals.log.latency.count,
        ),
        latency_cell(
            result.signals.log.latency.max_micros,
            budgets.latency_max_micros,
            result.signals.log.latency.count,
        ),
        recovery_cell(result, budgets.recovery_micros),
        throughput_cell(result, budgets.throughput_per_second),
    ]
}

/// Records lost by cause (both signals), silent losses and records left in flight; "none"
/// when every record arrived. A loss fails the delivery check unless `[expect]` allows it,
/// so the cell is not judged here: the verdict says whether it broke a rule.
fn lost_cell(result: &RunResult) -> Cell {
    let mut parts: Vec<String> = super::result::losses_by_cause(result)
        .into_iter()
        .filter(|(_, count)| *count > 0)
        .map(|(cause, count)| format!("{count} {cause}"))
        .collect();
    let in_flight = result.signals.log.in_flight_count + result.signals.span.in_flight_count;
    if in_flight > 0 {
        parts.push(format!("{in_flight} in flight"));
    }
    if parts.is_empty() { Cell::plain("none".to_owned()) } else { Cell::plain(parts.join(", ")) }
}

/// A latency against its budget: within when measured ≤ budget, as the latency checks judge.
fn latency_cell(measured_micros: u64, budget_micros: Option<u64>, count: u64) -> Cell {
    if count == 0 {
        let text = "no log delivered".to_owned();
        return match budget_micros {
            Some(_) => Cell::judged(text, false),
            None => Cell::plain(text),
        };
    }
    let text = latency_text(measured_micros);
    match budget_micros {
        Some(budget) => Cell::judged(format!("{text} / {}", budget_text(budget)), measured_micros <= budget),
        None => Cell::plain(text),
    }
}

/// A budget in microseconds as the scenario writes durations.
fn budget_text(micros: u64) -> String {
    format_duration(std::time::Duration::from_micros(micros))
}

/// The slowest recovery of any fault (the later of logs and spans) and its fault, against
/// `max_recovery`: within when every fault recovered within it, as the recovery check
/// judges.
fn recovery_cell(result: &RunResult, budget_micros: Option<u64>) -> Cell {
    let slowest = result
        .faults
        .iter()
        .filter_map(|fault| {
            let worst = fault.log_recovery_micros.max(fault.span_recovery_micros)?;
            Some((worst, std::cmp::Reverse(fault.index), fault))
        })
        .max_by_key(|(worst, index, _)| (*worst, *index));
    let Some((worst, _, fault)) = slowest else {
        let text = if result.faults.is_empty() { "no faults" } else { "nothing held back" };
        return match budget_micros {
            Some(budget) => Cell::judged(format!("{text} / {}", budget_text(budget)), true),
            None => Cell::plain(text.to_owned()),
        };
    };
    let text = format!("{} after #{} {}", latency_text(worst), fault.index, fault.kind);
    match budget_micros {
        Some(budget) => Cell::judged(format!("{text} / {}", budget_text(budget)), worst <= budget),
        None => Cell::plain(text),
    }
}

/// The slowest judged 10 s window of load, against `min_throughput`: within when it stored
/// at least the budget; no judged window with a budget is broken, as the throughput check
/// judges.
fn throughput_cell(result: &RunResult, budget_per_second: Option<f64>) -> Cell {
    let measured = result.throughput.min_window_per_second;
    let text = measured.map_or_else(|| "no window judged".to_owned(), |rate| format!("{rate:.1}/s"));
    match budget_per_second {
        Some(budget) => Cell::judged(format!("{text} / {budget}/s"), measured.is_some_and(|rate| rate >= budget)),
        None => Cell::plain(text),
    }
}

/// The totals line: how many scenarios ran and how many failed.
fn totals_text(rows: &[LibraryRow]) -> String {
    let failed = rows.iter().filter(|row| !row.passed()).count();
    format!("{} scenarios, {} passed, {failed} failed.", rows.len(), rows.len() - failed)
}

/// Text safe inside a Markdown table cell (one line, no column breaks).
fn markdown_cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

/// `summary.md`: the totals, then one table row per scenario in `rows` order.
pub fn markdown(rows: &[LibraryRow]) -> String {
    let mut out = String::from("# obsim library summary\n\n");
    let _ = writeln!(out, "{}\n", totals_text(rows));
    let _ = writeln!(out, "| scenario | {} | report |", COLUMNS.join(" | "));
    let _ = writeln!(out, "|---|{}---|", "---|".repeat(COLUMNS.len()));
    for row in rows {
        let cells: Vec<String> = cells(row).iter().map(|cell| markdown_cell(&cell.text)).collect();
        let report = row.report.as_ref().map(|link| format!("[report]({link})")).unwrap_or_default();
        let _ = writeln!(out, "| {} | {} | {report} |", markdown_cell(&row.scenario), cells.join(" | "));
    }
    out
}

/// The HTML table (`templates/library.html`); every value escaped by the template.
#[derive(askama::Template)]
#[template(path = "library.html")]
struct LibraryTable<'a> {
    totals: String,
    columns: &'a [&'a str],
    rows: Vec<HtmlRow>,
}

/// One row of the HTML table.
struct HtmlRow {
    scenario: String,
    file: String,
    cells: Vec<Cell>,
    report: Option<String>,
}

/// `summary.html`: the same table as `summary.md`, in an obsim page with cells coloured by
/// their standing and links to each report.
pub fn html(rows: &[LibraryRow]) -> String {
    let table = LibraryTable {
        totals: totals_text(rows),
        columns: &COLUMNS,
        rows: rows
            .iter()
            .map(|row| HtmlRow {
                scenario: row.scenario.clone(),
                file: row.file.clone(),
                cells: cells(row),
                report: row.report.clone(),
            })
            .collect(),
    };
    page("obsim library summary", &render_template(&table))
}

/// Writes `summary.md` and `summary.html` of `rows` into `dir` (created if missing).
pub fn write(dir: &Path, rows: &[LibraryRow]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join(MARKDOWN_FILE), markdown(rows))?;
    std::fs::write(dir.join(HTML_FILE), html(rows))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cell_is_judged_as_the_checks_judge_and_marked() {
        assert_eq!(latency_cell(2_000_000, Some(2_000_000), 5).standing, Standing::Within);
        let broken = latency_cell(2_000_001, Some(2_000_000), 5);
        assert_eq!(broken.standing, Standing::Broken);
        assert!(broken.text.ends_with('✗'), "{}", broken.text);
        assert_eq!(latency_cell(0, Some(1), 0).standing, Standing::Broken, "nothing delivered breaks a budget");
        assert_eq!(latency_cell(5, None, 1).standing, Standing::Unjudged);
        assert_eq!(markdown_cell("a|b\nc"), "a\\|b c");
    }
}
