//! Metrics: do the totals Dash0 holds agree with the jobs that really ran (ARCHITECTURE.md §4)?
//!
//! Why: a metric pipeline fails quietly. A retried batch of *delta* points is summed twice
//! and a dashboard shows more jobs than ran; a lost batch of cumulative points is harmless
//! as long as a later one arrives. So totals are read the way the OTLP data model defines
//! the streams (FIDELITY.md, "Checks"):
//!
//! - a *cumulative* stream is one (metric, resource, attributes, start time): a restart
//!   begins a new stream with a new start time, so the total is the sum of each stream's
//!   current value. A monotonic sum's (and a histogram count's) current value is the
//!   *largest* point of its stream: it never decreases within a stream, so the largest is
//!   the newest whatever order the points arrived in and whatever the host's clock wrote in
//!   `time_unix_nano` (a clock skewed ahead and healed makes older points look newer; a
//!   retried batch arrives after newer ones). A non-monotonic cumulative sum takes the
//!   point Dash0 stored last (ingest order, true time), never the host's timestamp;
//! - *delta* points are summed, every stored copy counted: Dash0 cannot tell a retried
//!   delta it had already stored from a new one, and neither can the check.

use std::collections::BTreeMap;

use crate::record::{MetricPoint, MetricValue, Number, Resource, Temporality};

use super::jobs::JobCompletion;
use super::measured::Measured;
use super::name::CheckName;
use super::verdict::Check;
use crate::scenario::{Expect, MetricsExpectation};

/// A metric's total as Dash0's points say it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MetricTotal {
    pub total: f64,
    /// Points read (duplicates included).
    pub points_count: u64,
    /// Cumulative streams (resource, attributes, start time) seen.
    pub(crate) series_count: u64,
    /// Delta points summed into `total` (duplicates included).
    pub(crate) delta_points_count: u64,
}

/// A cumulative stream's key: (metric name, resource and attributes, start time).
type StreamKey = (String, String, u64);

/// Totals of every sum metric (and histogram counts, as `<name>.count`) by name. `points`
/// must come in Dash0's ingest order (the store keeps batches that way).
pub fn totals<'a>(points: impl IntoIterator<Item = (&'a Resource, &'a MetricPoint)>) -> BTreeMap<String, MetricTotal> {
    // Cumulative streams: key → current value.
    let mut current: BTreeMap<StreamKey, f64> = BTreeMap::new();
    let mut totals: BTreeMap<String, MetricTotal> = BTreeMap::new();
    for (resource, point) in points {
        let (name, temporality, monotonic, value) = match &point.value {
            MetricValue::Sum { temporality, monotonic, value } => {
                (point.name.clone(), *temporality, *monotonic, number(*value))
            }
            MetricValue::Histogram { temporality, data } => {
                (format!("{}.count", point.name), *temporality, true, data.count as f64)
            }
            MetricValue::Gauge { .. } => continue,
        };
        let entry = totals.entry(name.clone()).or_default();
        entry.points_count += 1;
        match temporality {
            Temporality::Delta => {
                entry.total += value;
                entry.delta_points_count += 1;
            }
            Temporality::Cumulative => {
                let stream = (name, format!("{resource:?}|{:?}", point.attributes), point.start_time_unix_nano);
                let slot = current.entry(stream).or_insert(value);
                *slot = if monotonic { slot.max(value) } else { value };
            }
        }
    }
    for ((name, _, _), value) in current {
        let entry = totals.entry(name).or_default();
        entry.total += value;
        entry.series_count += 1;
    }
    totals
}

fn number(value: Number) -> f64 {
    match value {
        Number::Int(int) => int as f64,
        Number::Double(double) => double,
    }
}

/// One expected total that Dash0's points do not show.
#[derive(Clone, Debug, PartialEq)]
pub struct Disagreement {
    pub metric: String,
    pub expected: u64,
    /// What the expected count is (`jobs ran`, `jobs were accepted`).
    pub(crate) truth: &'static str,
    /// `None`: Dash0 holds no point of the metric.
    pub found: Option<f64>,
    /// Delta points summed into `found`; cumulative streams read.
    pub(crate) delta_points_count: u64,
    pub(crate) series_count: u64,
}

impl std::fmt::Display for Disagreement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Some(found) = self.found else {
            return write!(f, "{}: no point stored in Dash0, but {} {}", self.metric, self.expected, self.truth);
        };
        write!(f, "{} totals {found} in Dash0, but {} {}", self.metric, self.expected, self.truth)?;
        match (self.delta_points_count, self.series_count) {
            (0, streams) => write!(f, " (cumulative: the largest point of each of {streams} streams)"),
            (points, 0) => {
                let hint = if found > self.expected as f64 { "; a delta stored twice counts twice" } else { "" };
                write!(f, " (delta: {points} points summed{hint})")
            }
            (points, streams) => write!(f, " (mixed: {points} delta points summed, {streams} cumulative streams)"),
        }
    }
}

/// One metric's expected total: (name, true count, what the count is).
pub(crate) type Expected<'a> = (&'a str, u64, &'static str);

/// Compares `totals` with `expected`.
pub fn disagreements(totals: &BTreeMap<String, MetricTotal>, expected: &[Expected<'_>]) -> Vec<Disagreement> {
    expected
        .iter()
        .filter_map(|&(metric, expected, truth)| {
            let stored = totals.get(metric);
            let found = stored.map(|total| total.total);
            let agrees =
                found.is_some_and(|found| (found - expected as f64).abs() < 0.5) || (found.is_none() && expected == 0);
            (!agrees).then(|| Disagreement {
                metric: metric.to_string(),
                expected,
                truth,
                found,
                delta_points_count: stored.map_or(0, |total| total.delta_points_count),
                series_count: stored.map_or(0, |total| total.series_count),
            })
        })
        .collect()
}

/// The metric names the app emits and the true count each must total (from the job book:
/// what the API accepted, and every completion the workers counted, a job run twice twice).
fn expected_metrics(jobs: &JobCompletion) -> [Expected<'static>; 3] {
    [
        ("jobs_submitted_total", jobs.submitted, "jobs were accepted"),
        ("jobs_completed_total", jobs.runs, "jobs ran"),
        ("job_duration_seconds.count", jobs.runs, "jobs ran"),
    ]
}

/// The `metrics` check (with `[expect] metrics = "agree"`): Dash0's totals agree with the
/// jobs that ran; a failure names each metric that disagrees.
pub fn check(run: &Measured, expect: &Expect) -> Option<Check> {
    if expect.metrics != MetricsExpectation::Agree {
        return None;
    }
    let disagreements = disagreements(&run.metric_totals, &expected_metrics(&run.jobs));
    Some(Check {
        name: CheckName::Metrics,
        passed: disagreements.is_empty(),
        detail: if disagreements.is_empty() {
            format!(
                "dash0's totals agree with the jobs that ran: {} accepted, {} runs completed",
                run.jobs.submitted, run.jobs.runs
            )
        } else {
            let lines: Vec<String> = disagreements.iter().map(|d| format!("\n    {d}")).collect();
            format!(
                "dash0's metric totals disagree with the jobs that ran (cumulative: each stream's largest point; delta: every point summed):{}",
                lines.concat()
            )
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Attributes;

    fn sum(value: i64, start: u64, time: u64, temporality: Temporality, monotonic: bool) -> MetricPoint {
        MetricPoint {
            name: "jobs_completed_total".into(),
            unit: "{job}".into(),
            start_time_unix_nano: start,
            time_unix_nano: time,
            attributes: Attributes::new(),
            value: MetricValue::Sum { temporality, monotonic, value: Number::Int(value) },
        }
    }

    fn total_of(points: &[MetricPoint]) -> MetricTotal {
        let resource = Resource::new("emp-machine");
        totals(points.iter().map(|point| (&resource, point))).remove("jobs_completed_total").unwrap()
    }

    const MINUTE: u64 = 60_000_000_000;

    #[test]
    fn a_cumulative_stream_reads_its_largest_point_whatever_the_timestamps_say() {
        // Written at 1m, 2m (clock 10 minutes ahead), 3m (healed): the skewed point has the
        // latest timestamp; the old check read 5 from it.
        let c = Temporality::Cumulative;
        let points = [sum(2, 0, MINUTE, c, true), sum(5, 0, 12 * MINUTE, c, true), sum(9, 0, 3 * MINUTE, c, true)];
        assert_eq!(total_of(&points).total, 9.0);
        // Behind: the healed point has the latest timestamp either way.
        let points = [sum(2, 0, MINUTE, c, true), sum(5, 0, 0, c, true), sum(9, 0, 3 * MINUTE, c, true)];
        assert_eq!(total_of(&points).total, 9.0);
    }

    #[test]
    fn a_cumulative_batch_arriving_late_does_not_roll_the_stream_back() {
        let c = Temporality::Cumulative;
        let points = [sum(9, 0, 3 * MINUTE, c, true), sum(2, 0, MINUTE, c, true)];
        assert_eq!(total_of(&points).total, 9.0);
    }

    #[test]
    fn restarts_are_new_streams_whose_values_add_up() {
        let c = Temporality::Cumulative;
        let points =
            [sum(4, 0, MINUTE, c, true), sum(3, 2 * MINUTE, 3 * MINUTE, c, true), sum(1, 2 * MINUTE, 150, c, true)];
        let total = total_of(&points);
        assert_eq!((total.total, total.series_count), (7.0, 2));
    }

    #[test]
    fn a_non_monotonic_cumulative_sum_takes_the_point_stored_last() {
        let c = Temporality::Cumulative;
        let points = [sum(4, 0, 3 * MINUTE, c, false), sum(3, 0, MINUTE, c, false)];
        assert_eq!(total_of(&points).total, 3.0);
    }

    #[test]
    fn deltas_are_summed_with_every_copy_and_a_duplicate_is_named() {
        let d = Temporality::Delta;
        let once = [sum(2, 0, MINUTE, d, true), sum(3, MINUTE, 2 * MINUTE, d, true)];
        assert_eq!(total_of(&once).total, 5.0);
        let twice = [once[0].clone(), once[1].clone(), once[1].clone()];
        let total = total_of(&twice);
        assert_eq!((total.total, total.delta_points_count), (8.0, 3));
        let totals = BTreeMap::from([("jobs_completed_total".to_string(), total)]);
        let disagreements = disagreements(&totals, &[("jobs_completed_total", 5, "jobs ran")]);
        assert_eq!(disagreements.len(), 1);
        assert_eq!(
            disagreements[0].to_string(),
            "jobs_completed_total totals 8 in Dash0, but 5 jobs ran (delta: 3 points summed; a delta stored twice counts twice)"
        );
    }

    #[test]
    fn a_metric_without_points_agrees_only_with_zero() {
        let totals = BTreeMap::new();
        assert!(disagreements(&totals, &[("jobs_completed_total", 0, "jobs ran")]).is_empty());
        let missing = disagreements(&totals, &[("jobs_completed_total", 3, "jobs ran")]);
        assert_eq!(missing[0].to_string(), "jobs_completed_total: no point stored in Dash0, but 3 jobs ran");
    }
}
