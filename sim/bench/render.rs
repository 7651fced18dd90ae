//! The bench's report as an aligned text table (the JSON is the report serialized).
//!
//! Why a renderer apart: the table is what README "Performance" quotes and what a person
//! reads; it never measures, it only lays out a [`BenchReport`].

use std::fmt::Write as _;

use super::{BenchReport, CaseResult, Stop};

/// The table's column headers, in order.
pub const COLUMNS: [&str; 11] = [
    "case",
    "machines",
    "simulated s",
    "wall s",
    "sim s / wall s",
    "sim s / CPU-s",
    "records",
    "records / sim s",
    "records / CPU-s",
    "peak MiB",
    "stop",
];

/// A number with as many decimals as its size needs to show three significant figures or
/// more (`1234`, `56.7`, `8.90`, `0.012`, `0.00018`): a huge fleet's speed is tiny, not zero.
pub(crate) fn figure(value: f64) -> String {
    let magnitude = value.abs();
    if magnitude >= 100.0 {
        format!("{value:.0}")
    } else if magnitude >= 10.0 {
        format!("{value:.1}")
    } else if magnitude >= 1.0 || magnitude == 0.0 {
        format!("{value:.2}")
    } else {
        // Two significant figures below the first non-zero decimal, at least three decimals.
        let decimals = ((-magnitude.log10()).ceil() as usize + 1).clamp(3, 12);
        format!("{value:.decimals$}")
    }
}

/// An optional number, "—" when it was not measured.
fn optional(value: Option<f64>) -> String {
    value.map_or_else(|| "—".to_string(), figure)
}

/// How the case ended, as the table says it.
fn stop_text(result: &CaseResult) -> String {
    match result.stop {
        Stop::Done => "done".to_string(),
        Stop::WallBudget => "wall budget".to_string(),
        Stop::Failed | Stop::Killed => {
            let word = if result.stop == Stop::Failed { "failed" } else { "killed" };
            format!("{word}: {}", result.error.as_deref().unwrap_or("no reason given"))
        }
    }
}

/// One case's row, in `COLUMNS` order.
fn row(result: &CaseResult) -> [String; 11] {
    [
        result.name.clone(),
        result.machines.to_string(),
        figure(result.sim_secs),
        figure(result.wall_secs),
        figure(result.sim_per_wall),
        optional(result.sim_per_cpu),
        result.records.to_string(),
        figure(result.records_per_sim_sec),
        optional(result.records_per_cpu_sec),
        optional(result.peak_mib),
        stop_text(result),
    ]
}

/// The report as a header line (version, commit, machine, profile) and an aligned table,
/// one row per case; numbers right-aligned.
pub fn table(report: &BenchReport) -> String {
    let mut text = String::new();
    let _ = writeln!(
        text,
        "obsim {} bench ({} build, commit {}) on {} cores ({}): {} simulated s per case, {} s wall budget",
        report.obsim_version,
        report.profile,
        report.git_commit.as_deref().unwrap_or("unknown"),
        report.machine.cores,
        report.machine.cpu_model.as_deref().unwrap_or("unknown cpu"),
        figure(report.sim_secs),
        figure(report.case_wall_secs),
    );
    let rows: Vec<[String; 11]> = report.cases.iter().map(row).collect();
    let widths: Vec<usize> = (0..COLUMNS.len())
        .map(|column| {
            rows.iter()
                .map(|row| row[column].chars().count())
                .chain([COLUMNS[column].chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: &[String]| -> String {
        let padded: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(column, cell)| {
                let width = widths[column];
                // The first column and the last (words) read left-aligned; numbers right.
                if column == 0 || column == COLUMNS.len() - 1 {
                    format!("{cell:<width$}")
                } else {
                    format!("{cell:>width$}")
                }
            })
            .collect();
        format!("| {} |\n", padded.join(" | "))
    };
    text.push_str(&line(&COLUMNS.map(str::to_string)));
    let rule: Vec<String> = widths.iter().map(|width| "-".repeat(*width)).collect();
    text.push_str(&format!("|-{}-|\n", rule.join("-|-")));
    for row in &rows {
        text.push_str(&line(row));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_keep_three_significant_digits() {
        assert_eq!(figure(1234.4), "1234");
        assert_eq!(figure(56.78), "56.8");
        assert_eq!(figure(8.9), "8.90");
        assert_eq!(figure(0.0123), "0.012");
        assert_eq!(figure(0.000181), "0.00018");
        assert_eq!(figure(0.0), "0.00");
    }
}
