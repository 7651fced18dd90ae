//! `obsim report compare old.json new.json`: did a change make the pipeline slower, slower
//! to ship, or lossier?
//!
//! Compares two `result.json` files, or two chaos `index.json` files (run by run on
//! (scenario, seed), and in aggregate), and flags a regression when, beyond the threshold
//! (percent):
//! - log p99 latency rose (new > old · (1 + t));
//! - throughput fell: the slowest judged window or the mean of the judged windows
//!   (new < old · (1 − t));
//! - loss grew: a loss cause that was not there before (any count), or more records lost
//!   (new > old, by more than t percent of old when old > 0);
//! - a run that passed now fails (always: a new failure is the clearest regression).
//!
//! Why a threshold: latency and throughput of a *different* build under the same seed move a
//! little for good reasons; the threshold says how much is noise.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::html::latency_text;
use super::index::{INDEX_SCHEMA_VERSION, Index, IndexRun};
use super::result::losses_by_cause;
use crate::check::RunResult;

/// The default threshold, percent.
pub const THRESHOLD_PERCENT_DEFAULT: f64 = 10.0;

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
    pub(crate) rows: Vec<Row>,
    /// Notes that are not regressions: runs only in one index, unmeasured quantities.
    pub(crate) notes: Vec<String>,
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

/// The p99 (nearest rank) of `values`.
fn p99_of(values: &mut [u64]) -> Option<u64> {
    if values.is_empty() {
        return None;
    }
    values.sort_unstable();
    let rank = ((values.len() as f64) * 0.99).ceil() as usize;
    Some(values[rank.clamp(1, values.len()) - 1])
}

/// Compares two sweep indexes run by run on (scenario, seed), and in aggregate.
pub fn indexes(old: &Index, new: &Index, threshold: f64) -> Comparison {
    let key = |run: &IndexRun| (run.scenario.clone(), run.seed);
    let old_runs: BTreeMap<(String, u64), &IndexRun> = old.runs.iter().map(|run| (key(run), run)).collect();
    let new_runs: BTreeMap<(String, u64), &IndexRun> = new.runs.iter().map(|run| (key(run), run)).collect();
    let mut comparison = Comparison::default();
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
    if let (Some(old_p99), Some(new_p99)) = (p99_of(&mut old_p99s), p99_of(&mut new_p99s)) {
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
    comparison
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
pub fn compare(old: &Input, new: &Input, threshold: f64) -> Result<Comparison, String> {
    match (old, new) {
        (Input::Result(old), Input::Result(new)) => Ok(results(old, new, threshold)),
        (Input::Index(old), Input::Index(new)) => Ok(indexes(old, new, threshold)),
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

    #[test]
    fn p99_is_nearest_rank() {
        assert_eq!(p99_of(&mut []), None);
        assert_eq!(p99_of(&mut [5]), Some(5));
        let mut values: Vec<u64> = (1..=200).collect();
        assert_eq!(p99_of(&mut values), Some(198));
    }
}
