//! `obsim report compare old.json new.json`: did a change make the pipeline slower, slower
//! to ship, or lossier?
//!
//! Compares two `result.json` files, or two chaos `index.json` files, and flags a
//! regression when, beyond the threshold (percent, `--threshold`, default 10):
//! - log p99 latency rose (new > old · (1 + t));
//! - throughput fell: the slowest judged window or the mean of the judged windows
//!   (new < old · (1 − t));
//! - loss grew: a loss cause that was not there before (any count), or more records lost
//!   (new > old, by more than t percent of old when old > 0);
//! - a run that passed now fails (always: a new failure is the clearest regression).
//!
//! Two sweep indexes are compared run by run on (scenario, seed) when at least
//! `SEED_OVERLAP_MIN_PERCENT` of the smaller one's runs match. Two nights sweep different
//! seeds, though, and then each scenario's runs are compared as *distributions*, with the
//! distribution threshold (`--distribution-threshold`, default 25 %: different seeds draw
//! different faults and loads, so more moves by chance). Per scenario, a regression when:
//! - the failure rate rose by more than `FAILURE_RATE_MARGIN_POINTS` percentage points
//!   with at least `FAILED_RUNS_MIN_COUNT` failed runs in the new sweep;
//! - the p50 or p99 of the runs' log p99, or of their span p99, rose beyond the threshold;
//! - records lost per run, in total or of one cause, rose beyond the threshold and by more
//!   than `PER_RUN_SLACK_COUNT` records a run; a loss cause the old sweep never saw;
//! - duplicates per run rose the same way;
//! - the slowest recovery of any run rose beyond the threshold;
//! - throughput as a fraction of the offered load (the p50 over runs of the mean, and of
//!   the slowest window) fell beyond the threshold. Why a fraction: seeds draw different
//!   loads, so raw rates of two seeds differ for no fault of the pipeline.
//!
//! Whichever way, the comparison says when the two sweeps were built from different
//! commits (`index.json`'s `obsim` stamp): a difference then may be the change.
//!
//! Why a threshold: latency and throughput of a *different* build under the same seed move a
//! little for good reasons; the threshold says how much is noise.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::html::latency_text;
use super::index::{INDEX_SCHEMA_VERSION, Index, IndexRun, quantile_of};
use super::result::losses_by_cause;
use crate::check::RunResult;

/// The default threshold, percent.
pub const THRESHOLD_PERCENT_DEFAULT: f64 = 10.0;

/// The default threshold of distribution comparisons (sweeps of different seeds), percent.
pub const DISTRIBUTION_THRESHOLD_PERCENT_DEFAULT: f64 = 25.0;

/// Two indexes are compared run by run when at least this percentage of the smaller one's
/// runs have a (scenario, seed) in the other; else as distributions per scenario.
pub const SEED_OVERLAP_MIN_PERCENT: u64 = 50;

/// A scenario's failure rate regresses when it rose by more than this many percentage
/// points…
pub const FAILURE_RATE_MARGIN_POINTS: f64 = 5.0;

/// …and the new sweep has at least this many failed runs of it (one failure among a few
/// seeds is a finding to replay, not a change of distribution).
pub const FAILED_RUNS_MIN_COUNT: u64 = 2;

/// Runs each side of a distribution comparison must have for its measured quantities
/// (latency quantiles, records per run, slowest recovery, throughput ratios) to be judged.
/// Why: with 3 seeds a scenario's p99 of run p99s moved from 4.0 s to 14.6 s between two
/// nights of the same build (measured); below this many runs such rows are shown, marked
/// "few runs", and never called regressions. The failure rate and a new loss cause are
/// still judged: they are counts of findings, not estimates of a distribution.
pub const DISTRIBUTION_RUNS_MIN_COUNT: u64 = 20;

/// Records a run (lost or duplicated, on average) must have grown by, beyond the
/// threshold, to be a regression: from 0.2 to 0.4 lost records a run is 100 % more and
/// one record in five runs.
pub const PER_RUN_SLACK_COUNT: f64 = 1.0;

/// The thresholds of a comparison, percent.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Thresholds {
    /// Results, and indexes compared run by run.
    pub run_percent: f64,
    /// Indexes of different seeds, compared as distributions per scenario.
    pub distribution_percent: f64,
}

impl Default for Thresholds {
    fn default() -> Thresholds {
        Thresholds {
            run_percent: THRESHOLD_PERCENT_DEFAULT,
            distribution_percent: DISTRIBUTION_THRESHOLD_PERCENT_DEFAULT,
        }
    }
}

/// One compared quantity.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Row {
    /// What was compared: `result`, `all runs`, or `<scenario> seed <n>`.
    pub(crate) subject: String,
    /// `log p99`, `throughput min window`, `lost records`, `loss cause x`, `verdict`, …
    pub metric: String,
    pub old: String,
    pub new: String,
    /// The change in percent (or a word when a percentage means nothing).
    pub change: String,
    pub regression: bool,
}

/// The outcome of a comparison.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Comparison {
    /// What the reader must know first: which builds, which way the sweeps were compared.
    pub(crate) header: Vec<String>,
    pub(crate) rows: Vec<Row>,
    /// Notes that are not regressions: runs only in one index, unmeasured quantities.
    pub(crate) notes: Vec<String>,
    /// The threshold the rows were judged by when it is not the one `render` is given (a
    /// distribution comparison).
    pub(crate) threshold_percent: Option<f64>,
}

impl Comparison {
    /// How many rows are regressions.
    pub fn regressions_count(&self) -> usize {
        self.rows.iter().filter(|row| row.regression).count()
    }

    /// The comparison as an aligned text table, regressions marked, then the notes.
    pub fn render(&self, threshold_percent: f64) -> String {
        let header = ["", "subject", "metric", "old", "new", "change"];
        let cells: Vec<[String; 6]> = self
            .rows
            .iter()
            .map(|row| {
                [
                    if row.regression { "REGRESSION".to_string() } else { "ok".to_string() },
                    row.subject.clone(),
                    row.metric.clone(),
                    row.old.clone(),
                    row.new.clone(),
                    row.change.clone(),
                ]
            })
            .collect();
        let mut widths = header.map(|h| h.chars().count());
        for row in &cells {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        for line in &self.header {
            let _ = writeln!(out, "{line}");
        }
        let line = |out: &mut String, row: &[String]| {
            let padded: Vec<String> = row
                .iter()
                .zip(widths)
                .map(|(cell, width)| format!("{cell}{}", " ".repeat(width - cell.chars().count())))
                .collect();
            let _ = writeln!(out, "{}", padded.join("  ").trim_end());
        };
        line(&mut out, &header.map(String::from));
        for row in &cells {
            line(&mut out, row);
        }
        for note in &self.notes {
            let _ = writeln!(out, "note: {note}");
        }
        let count = self.regressions_count();
        let threshold_percent = self.threshold_percent.unwrap_or(threshold_percent);
        let _ = writeln!(
            out,
            "{} beyond the {threshold_percent}% threshold",
            match count {
                0 => "no regression".to_string(),
                1 => "1 regression".to_string(),
                _ => format!("{count} regressions"),
            }
        );
        out
    }
}

/// Percent change from `old` to `new` as text.
fn change_text(old: f64, new: f64) -> String {
    if old == 0.0 {
        return if new == 0.0 { "0%".to_string() } else { "new".to_string() };
    }
    format!("{:+.1}%", (new - old) / old * 100.0)
}

/// A quantity where higher is worse (latency, loss): a regression above old · (1 + t).
fn higher_is_worse(subject: &str, metric: &str, old: u64, new: u64, threshold: f64, text: fn(u64) -> String) -> Row {
    let regression = new > old && (old == 0 || (new - old) as f64 > old as f64 * threshold / 100.0);
    Row {
        subject: subject.to_string(),
        metric: metric.to_string(),
        old: text(old),
        new: text(new),
        change: change_text(old as f64, new as f64),
        regression,
    }
}

/// A latency, where an unmeasured old value (nothing delivered) flags nothing.
fn latency_row(subject: &str, metric: &str, old: u64, new: u64, threshold: f64) -> Row {
    let mut row = higher_is_worse(subject, metric, old, new, threshold, latency_text);
    if old == 0 {
        row.regression = false;
    }
    row
}

/// A rate where lower is worse: a regression below old · (1 − t), or when it vanished.
fn lower_is_worse(subject: &str, metric: &str, old: Option<f64>, new: Option<f64>, threshold: f64) -> Option<Row> {
    let text = |value: Option<f64>| value.map_or_else(|| "none".to_string(), |v| format!("{v:.1}/s"));
    let (regression, change) = match (old, new) {
        (None, None) => return None,
        (Some(old), Some(new)) => (new < old * (1.0 - threshold / 100.0), change_text(old, new)),
        (Some(_), None) => (true, "gone".to_string()),
        (None, Some(_)) => (false, "new".to_string()),
    };
    Some(Row {
        subject: subject.to_string(),
        metric: metric.to_string(),
        old: text(old),
        new: text(new),
        change,
        regression,
    })
}

fn count_text(value: u64) -> String {
    value.to_string()
}

fn verdict_row(subject: &str, old: bool, new: bool) -> Row {
    let word = |passed: bool| if passed { "PASS" } else { "FAIL" }.to_string();
    Row {
        subject: subject.to_string(),
        metric: "verdict".into(),
        old: word(old),
        new: word(new),
        change: if old == new { "same".into() } else { "changed".into() },
        regression: old && !new,
    }
}

/// Loss rows: total lost records, and a row per cause that is new (with its new count).
fn loss_rows(
    subject: &str,
    old_total: u64,
    new_total: u64,
    new_causes: Vec<(String, String)>,
    threshold: f64,
) -> Vec<Row> {
    let mut rows = vec![higher_is_worse(subject, "lost records", old_total, new_total, threshold, count_text)];
    for (cause, count) in new_causes {
        rows.push(Row {
            subject: subject.to_string(),
            metric: format!("new loss cause {cause}"),
            old: "0".into(),
            new: count,
            change: "new".into(),
            regression: true,
        });
    }
    rows
}

/// Causes with records in `new` and none in `old`, with their counts.
fn new_causes(old: &BTreeMap<String, u64>, new: &BTreeMap<String, u64>) -> Vec<(String, String)> {
    new.iter()
        .filter(|(cause, count)| **count > 0 && old.get(*cause).copied().unwrap_or(0) == 0)
        .map(|(cause, count)| (cause.clone(), count.to_string()))
        .collect()
}

/// Compares two run results.
pub fn results(old: &RunResult, new: &RunResult, threshold: f64) -> Comparison {
    let subject = if old.scenario == new.scenario && old.seed == new.seed {
        format!("{} seed {}", new.scenario, new.seed)
    } else {
        format!("{} seed {} → {} seed {}", old.scenario, old.seed, new.scenario, new.seed)
    };
    let mut comparison = Comparison::default();
    comparison.rows.push(verdict_row(&subject, old.passed, new.passed));
    comparison.rows.push(latency_row(
        &subject,
        "log p99",
        old.signals.log.latency.p99_micros,
        new.signals.log.latency.p99_micros,
        threshold,
    ));
    comparison.rows.extend(lower_is_worse(
        &subject,
        "log throughput min window",
        old.throughput.min_window_per_second,
        new.throughput.min_window_per_second,
        threshold,
    ));
    comparison.rows.extend(lower_is_worse(
        &subject,
        "log throughput mean",
        old.throughput.mean_per_second,
        new.throughput.mean_per_second,
        threshold,
    ));
    let (old_losses, new_losses) = (losses_by_cause(old), losses_by_cause(new));
    comparison.rows.extend(loss_rows(
        &subject,
        old_losses.values().sum(),
        new_losses.values().sum(),
        new_causes(&old_losses, &new_losses),
        threshold,
    ));
    if old.scenario != new.scenario {
        comparison.notes.push(format!("comparing different scenarios: {} and {}", old.scenario, new.scenario));
    }
    comparison
}

/// Each index's runs by (scenario, seed).
fn runs_by_key(index: &Index) -> BTreeMap<(String, u64), &IndexRun> {
    index.runs.iter().map(|run| ((run.scenario.clone(), run.seed), run)).collect()
}

/// Compares two sweep indexes: run by run on (scenario, seed) when their seeds (mostly)
/// match, else as distributions per scenario; says first whether they were built from
/// different code.
pub fn indexes(old: &Index, new: &Index, thresholds: Thresholds) -> Comparison {
    let mut comparison = Comparison { header: vec![builds_text(old, new)], ..Comparison::default() };
    let old_keys = runs_by_key(old);
    let matched = new.runs.iter().filter(|run| old_keys.contains_key(&(run.scenario.clone(), run.seed))).count();
    let smaller = old.runs.len().min(new.runs.len());
    if smaller > 0 && matched as u64 * 100 >= SEED_OVERLAP_MIN_PERCENT * smaller as u64 {
        comparison.header.push(format!(
            "{matched} of {smaller} runs match on (scenario, seed): compared run by run (threshold {}%)",
            thresholds.run_percent
        ));
        run_by_run(old, new, thresholds.run_percent, &mut comparison);
    } else {
        comparison.header.push(format!(
            "{matched} of {smaller} runs match on (scenario, seed), under {SEED_OVERLAP_MIN_PERCENT}%: the seeds \
             differ, so each scenario's runs are compared as distributions (threshold {}%)",
            thresholds.distribution_percent
        ));
        comparison.threshold_percent = Some(thresholds.distribution_percent);
        distributions(old, new, thresholds.distribution_percent, &mut comparison);
    }
    comparison
}

/// Which obsim built each sweep, and whether the code differs.
fn builds_text(old: &Index, new: &Index) -> String {
    match (&old.obsim, &new.obsim) {
        (Some(old_build), Some(new_build)) if old_build.differs_from(new_build) => format!(
            "different builds: old {} (commit {}), new {} (commit {}) — a change may come from the code",
            old_build.text(),
            old_build.commit,
            new_build.text(),
            new_build.commit
        ),
        (Some(old_build), Some(_)) => format!("same build: {} (commit {})", old_build.text(), old_build.commit),
        (None, _) | (_, None) => {
            "builds unknown: an index written before obsim stamped its build cannot say which code ran it".to_string()
        }
    }
}

/// What a set of runs (one scenario's in one sweep) measured, for a distribution
/// comparison.
#[derive(Debug, Default)]
struct Distribution {
    runs_count: u64,
    failures_count: u64,
    log_p99s_micros: Vec<u64>,
    span_p99s_micros: Vec<u64>,
    /// Runs with a loss count (a verdict), their lost records, per cause where known.
    measured_count: u64,
    lost_count: u64,
    lost_by_cause: BTreeMap<String, u64>,
    /// Causes named without counts (indexes written before per-cause counts).
    causes: Vec<String>,
    duplicated_measured_count: u64,
    duplicated_count: u64,
    recovery_max_micros: Option<u64>,
    /// Per run: mean and slowest-window throughput over the offered load.
    throughput_ratios: Vec<f64>,
    min_window_ratios: Vec<f64>,
}

impl Distribution {
    fn of<'a>(runs: impl Iterator<Item = &'a IndexRun>) -> Distribution {
        let mut d = Distribution::default();
        for run in runs {
            d.runs_count += 1;
            d.failures_count += u64::from(!run.passed);
            d.log_p99s_micros.extend(run.log_latency_p99_micros);
            d.span_p99s_micros.extend(run.span_latency_p99_micros);
            if let Some(lost) = run.lost_count {
                d.measured_count += 1;
                d.lost_count += lost;
            }
            for (cause, count) in &run.lost_by_cause {
                *d.lost_by_cause.entry(cause.clone()).or_default() += count;
            }
            d.causes.extend(run.loss_causes.iter().filter(|cause| *cause != "lost_silently").cloned());
            if let Some(duplicated) = run.duplicated_count {
                d.duplicated_measured_count += 1;
                d.duplicated_count += duplicated;
            }
            d.recovery_max_micros = d.recovery_max_micros.max(run.recovery_max_micros);
            if let Some(offered) = run.log_offered_per_second.filter(|offered| *offered > 0.0) {
                d.throughput_ratios.extend(run.log_throughput_mean_per_second.map(|rate| rate / offered));
                d.min_window_ratios.extend(run.log_throughput_min_per_second.map(|rate| rate / offered));
            }
        }
        d.causes.extend(d.lost_by_cause.keys().cloned());
        d.causes.sort();
        d.causes.dedup();
        d
    }

    fn failure_rate(&self) -> f64 {
        if self.runs_count == 0 { 0.0 } else { self.failures_count as f64 / self.runs_count as f64 }
    }

    /// Records a run of `total` over the measured runs.
    fn per_run(total: u64, measured_count: u64) -> Option<f64> {
        (measured_count > 0).then(|| total as f64 / measured_count as f64)
    }
}

/// The p50 of `values` (nearest rank).
fn median_f64(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    Some(sorted[(sorted.len() - 1) / 2])
}

/// Compares the runs of each scenario of two sweeps of different seeds as distributions,
/// then all runs together, into `comparison`.
fn distributions(old: &Index, new: &Index, threshold: f64, comparison: &mut Comparison) {
    let (old_groups, new_groups) = (runs_by_scenario(old), runs_by_scenario(new));
    for (scenario, new_runs) in &new_groups {
        let Some(old_runs) = old_groups.get(scenario) else {
            comparison.notes.push(format!("{scenario} is only in the new sweep ({} runs)", new_runs.len()));
            continue;
        };
        let (old_d, new_d) = (Distribution::of(old_runs.iter().copied()), Distribution::of(new_runs.iter().copied()));
        let mut rows = distribution_rows(scenario, &old_d, &new_d, threshold);
        if few_runs(&old_d, &new_d) {
            comparison.notes.push(format!(
                "{scenario}: {} → {} runs, fewer than {DISTRIBUTION_RUNS_MIN_COUNT}: latency, loss per run, recovery and throughput are shown, not judged",
                old_d.runs_count, new_d.runs_count
            ));
            unjudge_estimates(&mut rows);
        }
        comparison.rows.extend(rows);
    }
    for (scenario, old_runs) in &old_groups {
        if !new_groups.contains_key(scenario) {
            comparison.notes.push(format!("{scenario} is only in the old sweep ({} runs)", old_runs.len()));
        }
    }
    let (old_all, new_all) = (Distribution::of(old.runs.iter()), Distribution::of(new.runs.iter()));
    let all = format!("all runs ({} → {})", old_all.runs_count, new_all.runs_count);
    let mut rows = vec![failure_rate_row(&all, &old_all, &new_all)];
    rows.extend(quantile_rows(&all, "log p99", &old_all.log_p99s_micros, &new_all.log_p99s_micros, threshold));
    if few_runs(&old_all, &new_all) {
        unjudge_estimates(&mut rows);
    }
    comparison.rows.extend(rows);
}

/// Whether either side has too few runs for its measured quantities to be judged
/// (`DISTRIBUTION_RUNS_MIN_COUNT`).
fn few_runs(old: &Distribution, new: &Distribution) -> bool {
    old.runs_count.min(new.runs_count) < DISTRIBUTION_RUNS_MIN_COUNT
}

/// Marks every row but the failure rate and new loss causes "few runs" and not a
/// regression: with few runs they are noise (`DISTRIBUTION_RUNS_MIN_COUNT`).
fn unjudge_estimates(rows: &mut [Row]) {
    for row in rows.iter_mut().filter(|row| row.metric != "failure rate" && !row.metric.starts_with("new loss cause")) {
        row.regression = false;
        row.change.push_str(" (few runs)");
    }
}

/// An index's runs by scenario name (names, not files: a file may move between nights).
fn runs_by_scenario(index: &Index) -> BTreeMap<String, Vec<&IndexRun>> {
    let mut groups: BTreeMap<String, Vec<&IndexRun>> = BTreeMap::new();
    for run in &index.runs {
        groups.entry(run.scenario.clone()).or_default().push(run);
    }
    groups
}

/// The rows of one scenario's distributions (see the module's list).
fn distribution_rows(subject: &str, old: &Distribution, new: &Distribution, threshold: f64) -> Vec<Row> {
    let mut rows = vec![failure_rate_row(subject, old, new)];
    rows.extend(quantile_rows(subject, "log p99", &old.log_p99s_micros, &new.log_p99s_micros, threshold));
    rows.extend(quantile_rows(subject, "span p99", &old.span_p99s_micros, &new.span_p99s_micros, threshold));
    let old_lost = Distribution::per_run(old.lost_count, old.measured_count);
    let new_lost = Distribution::per_run(new.lost_count, new.measured_count);
    rows.extend(per_run_row(subject, "lost records per run", old_lost, new_lost, threshold));
    for cause in &new.causes {
        if !old.causes.contains(cause) {
            rows.push(Row {
                subject: subject.to_string(),
                metric: format!("new loss cause {cause}"),
                old: "0".into(),
                new: new.lost_by_cause.get(cause).map_or_else(|| "some".to_string(), |count| count.to_string()),
                change: "new".into(),
                regression: true,
            });
        } else if let (Some(old_count), Some(new_count)) = (old.lost_by_cause.get(cause), new.lost_by_cause.get(cause))
        {
            let (old_per_run, new_per_run) = (
                Distribution::per_run(*old_count, old.measured_count),
                Distribution::per_run(*new_count, new.measured_count),
            );
            rows.extend(per_run_row(subject, &format!("lost per run: {cause}"), old_per_run, new_per_run, threshold));
        }
    }
    let old_duplicated = Distribution::per_run(old.duplicated_count, old.duplicated_measured_count);
    let new_duplicated = Distribution::per_run(new.duplicated_count, new.duplicated_measured_count);
    rows.extend(per_run_row(subject, "duplicates per run", old_duplicated, new_duplicated, threshold));
    if let (Some(old_recovery), Some(new_recovery)) = (old.recovery_max_micros, new.recovery_max_micros) {
        rows.push(latency_row(subject, "slowest recovery", old_recovery, new_recovery, threshold));
    }
    rows.extend(ratio_row(
        subject,
        "throughput / offered load (p50 of runs)",
        median_f64(&old.throughput_ratios),
        median_f64(&new.throughput_ratios),
        threshold,
    ));
    rows.extend(ratio_row(
        subject,
        "slowest window / offered load (p50 of runs)",
        median_f64(&old.min_window_ratios),
        median_f64(&new.min_window_ratios),
        threshold,
    ));
    rows
}

/// The failure rate: a regression when it rose by more than `FAILURE_RATE_MARGIN_POINTS`
/// points with at least `FAILED_RUNS_MIN_COUNT` failures.
fn failure_rate_row(subject: &str, old: &Distribution, new: &Distribution) -> Row {
    let text = |d: &Distribution| format!("{}/{} ({:.1}%)", d.failures_count, d.runs_count, d.failure_rate() * 100.0);
    let points = (new.failure_rate() - old.failure_rate()) * 100.0;
    Row {
        subject: subject.to_string(),
        metric: "failure rate".into(),
        old: text(old),
        new: text(new),
        change: format!("{points:+.1} pts"),
        regression: points > FAILURE_RATE_MARGIN_POINTS && new.failures_count >= FAILED_RUNS_MIN_COUNT,
    }
}

/// The p50 and p99 of the runs' `what` latencies; nothing when either side measured none.
fn quantile_rows(subject: &str, what: &str, old: &[u64], new: &[u64], threshold: f64) -> Vec<Row> {
    let (mut old, mut new) = (old.to_vec(), new.to_vec());
    let mut rows = Vec::new();
    for (name, q) in [("p50", 0.5), ("p99", 0.99)] {
        if let (Some(old_value), Some(new_value)) = (quantile_of(&mut old, q), quantile_of(&mut new, q)) {
            rows.push(latency_row(subject, &format!("{name} of runs' {what}"), old_value, new_value, threshold));
        }
    }
    rows
}

/// Records per run, where higher is worse: a regression beyond the threshold and by more
/// than `PER_RUN_SLACK_COUNT`; nothing when either side is unmeasured.
fn per_run_row(subject: &str, metric: &str, old: Option<f64>, new: Option<f64>, threshold: f64) -> Option<Row> {
    let (old, new) = (old?, new?);
    Some(Row {
        subject: subject.to_string(),
        metric: metric.to_string(),
        old: format!("{old:.2}"),
        new: format!("{new:.2}"),
        change: change_text(old, new),
        regression: new - old > (old * threshold / 100.0).max(PER_RUN_SLACK_COUNT),
    })
}

/// A fraction of the offered load, where lower is worse: a regression below old · (1 − t).
fn ratio_row(subject: &str, metric: &str, old: Option<f64>, new: Option<f64>, threshold: f64) -> Option<Row> {
    let (old, new) = (old?, new?);
    Some(Row {
        subject: subject.to_string(),
        metric: metric.to_string(),
        old: format!("{:.1}%", old * 100.0),
        new: format!("{:.1}%", new * 100.0),
        change: change_text(old, new),
        regression: new < old * (1.0 - threshold / 100.0),
    })
}

/// Compares two sweep indexes of (mostly) the same seeds run by run on (scenario, seed),
/// and in aggregate, into `comparison`.
fn run_by_run(old: &Index, new: &Index, threshold: f64, comparison: &mut Comparison) {
    let old_runs = runs_by_key(old);
    let new_runs = runs_by_key(new);
    let (mut old_p99s, mut new_p99s) = (Vec::new(), Vec::new());
    let mut matched = 0u64;
    for ((scenario, seed), new_run) in &new_runs {
        let Some(old_run) = old_runs.get(&(scenario.clone(), *seed)) else {
            comparison.notes.push(format!("{scenario} seed {seed} is only in the new index"));
            continue;
        };
        matched += 1;
        let subject = format!("{scenario} seed {seed}");
        let mut rows = vec![verdict_row(&subject, old_run.passed, new_run.passed)];
        if let (Some(old_p99), Some(new_p99)) = (old_run.log_latency_p99_micros, new_run.log_latency_p99_micros) {
            old_p99s.push(old_p99);
            new_p99s.push(new_p99);
            rows.push(latency_row(&subject, "log p99", old_p99, new_p99, threshold));
        }
        rows.extend(lower_is_worse(
            &subject,
            "log throughput min window",
            old_run.log_throughput_min_per_second,
            new_run.log_throughput_min_per_second,
            threshold,
        ));
        rows.extend(lower_is_worse(
            &subject,
            "log throughput mean",
            old_run.log_throughput_mean_per_second,
            new_run.log_throughput_mean_per_second,
            threshold,
        ));
        if let (Some(old_lost), Some(new_lost)) = (old_run.lost_count, new_run.lost_count) {
            // The index lists causes without per-cause counts.
            let causes: Vec<(String, String)> = new_run
                .loss_causes
                .iter()
                .filter(|cause| !old_run.loss_causes.contains(cause))
                .map(|cause| (cause.clone(), "some".to_string()))
                .collect();
            rows.extend(loss_rows(&subject, old_lost, new_lost, causes, threshold));
        }
        // Per run, only what regressed: a sweep has thousands of runs.
        comparison.rows.extend(rows.into_iter().filter(|row| row.regression));
    }
    for (scenario, seed) in old_runs.keys() {
        if !new_runs.contains_key(&(scenario.clone(), *seed)) {
            comparison.notes.push(format!("{scenario} seed {seed} is only in the old index"));
        }
    }
    let subject = format!("all {matched} matched runs");
    let old_failures = old_runs.iter().filter(|(k, run)| new_runs.contains_key(*k) && !run.passed).count() as u64;
    let new_failures = new_runs.iter().filter(|(k, run)| old_runs.contains_key(*k) && !run.passed).count() as u64;
    let mut failures = higher_is_worse(&subject, "failed runs", old_failures, new_failures, 0.0, count_text);
    failures.regression = new_failures > old_failures;
    comparison.rows.push(failures);
    if let (Some(old_p99), Some(new_p99)) = (quantile_of(&mut old_p99s, 0.99), quantile_of(&mut new_p99s, 0.99)) {
        comparison.rows.push(latency_row(&subject, "p99 of runs' log p99", old_p99, new_p99, threshold));
        let mean = |values: &[u64]| values.iter().sum::<u64>() / values.len() as u64;
        comparison.rows.push(latency_row(
            &subject,
            "mean of runs' log p99",
            mean(&old_p99s),
            mean(&new_p99s),
            threshold,
        ));
    }
}

/// What a compare input file is.
#[derive(Debug)]
pub enum Input {
    Result(Box<RunResult>),
    Index(Box<Index>),
}

/// Reads `text` (named `name` in errors) as a `result.json` or an `index.json`.
pub fn parse_input(name: &str, text: &str) -> Result<Input, String> {
    let value: serde_json::Value = serde_json::from_str(text).map_err(|error| format!("{name}: not JSON: {error}"))?;
    if value.get("runs").is_some() && value.get("shard").is_some() {
        let version = value.get("schema_version").and_then(serde_json::Value::as_u64);
        if version != Some(u64::from(INDEX_SCHEMA_VERSION)) {
            return Err(format!(
                "{name}: index schema_version {version:?}: this obsim reads version {INDEX_SCHEMA_VERSION}"
            ));
        }
        let index: Index =
            serde_json::from_value(value).map_err(|error| format!("{name}: not a chaos index.json: {error}"))?;
        return Ok(Input::Index(Box::new(index)));
    }
    RunResult::parse(text).map(|result| Input::Result(Box::new(result))).map_err(|error| format!("{name}: {error}"))
}

/// Compares two inputs of the same kind.
pub fn compare(old: &Input, new: &Input, thresholds: Thresholds) -> Result<Comparison, String> {
    match (old, new) {
        (Input::Result(old), Input::Result(new)) => Ok(results(old, new, thresholds.run_percent)),
        (Input::Index(old), Input::Index(new)) => Ok(indexes(old, new, thresholds)),
        _ => Err("one file is a result.json and the other a chaos index.json: compare like with like".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_decide_latency_throughput_and_loss() {
        assert!(!latency_row("s", "p99", 1_000_000, 1_090_000, 10.0).regression);
        assert!(latency_row("s", "p99", 1_000_000, 1_110_000, 10.0).regression);
        assert!(!latency_row("s", "p99", 0, 1_110_000, 10.0).regression, "nothing measured before");
        assert!(lower_is_worse("s", "t", Some(100.0), Some(85.0), 10.0).unwrap().regression);
        assert!(!lower_is_worse("s", "t", Some(100.0), Some(95.0), 10.0).unwrap().regression);
        assert!(lower_is_worse("s", "t", Some(100.0), None, 10.0).unwrap().regression);
        let old: BTreeMap<String, u64> = [("a".to_string(), 100)].into();
        let more: BTreeMap<String, u64> = [("a".to_string(), 105), ("b".to_string(), 1)].into();
        let rows = loss_rows("s", 100, 106, new_causes(&old, &more), 10.0);
        assert!(!rows[0].regression, "6 % more lost is within 10 %");
        assert!(rows[1].regression && rows[1].metric == "new loss cause b", "{rows:?}");
        assert_eq!(rows.len(), 2);
        assert!(loss_rows("s", 0, 1, Vec::new(), 10.0)[0].regression, "any loss where there was none");
    }

    /// A sweep of `seeds` of scenarios "a" and "b", each run's log p99 `p99_ms(scenario,
    /// k)` (k the run's number within its scenario), every run passing with no loss.
    fn sweep(first_seed: u64, seeds: u64, p99_ms: impl Fn(&str, u64) -> u64) -> Index {
        let mut runs = Vec::new();
        for k in 0..seeds {
            for scenario in ["a", "b"] {
                runs.push(IndexRun {
                    scenario: scenario.to_string(),
                    seed: first_seed + k,
                    passed: true,
                    log_latency_p99_micros: Some(p99_ms(scenario, k) * 1000),
                    span_latency_p99_micros: Some(p99_ms(scenario, k) * 1000),
                    lost_count: Some(0),
                    duplicated_count: Some(0),
                    log_offered_per_second: Some(100.0),
                    log_throughput_mean_per_second: Some(99.0),
                    ..IndexRun::default()
                });
            }
        }
        Index {
            schema_version: INDEX_SCHEMA_VERSION,
            obsim: None,
            shard: "1/1".into(),
            first_seed,
            seeds,
            runs_count: runs.len() as u64,
            failures_count: 0,
            planned_runs_count: None,
            finished: true,
            missing_shards: Vec::new(),
            unfinished_shards: Vec::new(),
            runs,
        }
    }

    #[test]
    fn sweeps_of_different_seeds_compare_as_distributions_per_scenario() {
        // The same distribution (1.0 s to 1.9 s) drawn in another order by other seeds.
        let old = sweep(1, 20, |_, k| 1000 + (k % 10) * 100);
        let new = sweep(1001, 20, |_, k| 1000 + ((k + 3) % 10) * 100);
        let comparison = indexes(&old, &new, Thresholds::default());
        assert_eq!(comparison.regressions_count(), 0, "{}", comparison.render(10.0));
        assert_eq!(comparison.threshold_percent, Some(DISTRIBUTION_THRESHOLD_PERCENT_DEFAULT));
        assert!(comparison.rows.iter().any(|row| row.subject == "a" && row.metric == "p99 of runs' log p99"));
        // Planted: scenario b's runs are half again slower.
        let slower = sweep(2001, 20, |scenario, k| (1000 + (k % 10) * 100) * if scenario == "b" { 3 } else { 2 } / 2);
        let comparison = indexes(&old, &slower, Thresholds::default());
        let regressed: Vec<(&str, &str)> = comparison
            .rows
            .iter()
            .filter(|row| row.regression)
            .map(|row| (row.subject.as_str(), row.metric.as_str()))
            .collect();
        assert!(regressed.contains(&("b", "p50 of runs' log p99")), "{}", comparison.render(10.0));
        assert!(!regressed.iter().any(|(subject, _)| *subject == "a"), "{}", comparison.render(10.0));
        // Failures, a new loss cause and throughput over the offered load.
        let mut worse = sweep(3001, 20, |_, k| 1000 + (k % 10) * 100);
        for run in worse.runs.iter_mut().filter(|run| run.scenario == "a").take(3) {
            run.passed = false;
            run.lost_by_cause.insert("agent_buffer_full".into(), 40);
            run.lost_count = Some(40);
            run.log_offered_per_second = Some(200.0);
        }
        let comparison = indexes(&old, &worse, Thresholds::default());
        let regressed: Vec<&str> =
            comparison.rows.iter().filter(|row| row.regression).map(|row| row.metric.as_str()).collect();
        assert!(regressed.contains(&"failure rate"), "{}", comparison.render(10.0));
        assert!(regressed.contains(&"new loss cause agent_buffer_full"), "{}", comparison.render(10.0));
        assert!(regressed.contains(&"lost records per run"), "{}", comparison.render(10.0));
        assert!(!regressed.contains(&"throughput / offered load (p50 of runs)"), "3 of 20 runs move no median");
    }

    #[test]
    fn with_few_runs_latency_is_shown_not_judged_but_failures_still_are() {
        let old = sweep(1, 3, |_, _| 1000);
        let mut new = sweep(1001, 3, |_, _| 9000);
        for run in new.runs.iter_mut().filter(|run| run.scenario == "a") {
            run.passed = false;
        }
        let comparison = indexes(&old, &new, Thresholds::default());
        let rendered = comparison.render(10.0);
        let p99 = comparison.rows.iter().find(|row| row.subject == "b" && row.metric == "p99 of runs' log p99");
        let p99 = p99.expect("the latency row is still shown");
        assert!(!p99.regression && p99.change.ends_with("(few runs)"), "{rendered}");
        let failures: Vec<&Row> =
            comparison.rows.iter().filter(|row| row.regression && row.metric == "failure rate").collect();
        assert_eq!(failures.len(), 2, "scenario a and all runs: {rendered}");
        assert!(comparison.notes.iter().any(|note| note.starts_with("b: 3 → 3 runs, fewer than 20")), "{rendered}");
    }

    #[test]
    fn sweeps_of_the_same_seeds_still_compare_run_by_run() {
        let old = sweep(1, 4, |_, k| 1000 + k);
        let mut new = old.clone();
        new.runs[3].log_latency_p99_micros = Some(5_000_000);
        let comparison = indexes(&old, &new, Thresholds::default());
        assert_eq!(comparison.threshold_percent, None);
        assert!(comparison.header[1].starts_with("8 of 8 runs match"), "{:?}", comparison.header);
        let regressed: Vec<&Row> = comparison.rows.iter().filter(|row| row.regression).collect();
        assert_eq!(regressed[0].subject, "b seed 2", "{regressed:?}");
    }

    #[test]
    fn p99_is_nearest_rank() {
        assert_eq!(quantile_of(&mut [], 0.99), None);
        assert_eq!(quantile_of(&mut [5], 0.99), Some(5));
        let mut values: Vec<u64> = (1..=200).collect();
        assert_eq!(quantile_of(&mut values, 0.99), Some(198));
        assert_eq!(quantile_of(&mut values, 0.5), Some(100));
    }
}
