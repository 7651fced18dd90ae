//! Metrics: do the totals Dash0 holds agree with the jobs that really ran (DESIGN.md §4)?
//!
//! Why: a metric pipeline fails quietly. A retried batch of *delta* points is summed twice
//! and a dashboard shows more jobs than ran; a lost batch of cumulative points is harmless
//! as long as a later one arrives. So totals are read the way a backend must read them:
//! cumulative sums by the last value of each series (a series restarts with a new start
//! time, so each (series, start time) counts its own last value), delta sums by their sum.

use std::collections::BTreeMap;

use crate::record::{MetricPoint, MetricValue, Number, Resource, Temporality};

/// A metric's total as Dash0's points say it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MetricTotal {
    pub total: f64,
    /// Points read (duplicates included).
    pub points_count: u64,
    /// Series (resource, attributes, start time) seen.
    pub series_count: u64,
}

/// Totals of every sum metric (and histogram counts, as `<name>.count`) by name.
pub fn totals<'a>(points: impl IntoIterator<Item = (&'a Resource, &'a MetricPoint)>) -> BTreeMap<String, MetricTotal> {
    // Cumulative series: (name, series key, start) → (latest time, value at that time).
    let mut last: BTreeMap<(String, String, u64), (u64, f64)> = BTreeMap::new();
    let mut totals: BTreeMap<String, MetricTotal> = BTreeMap::new();
    for (resource, point) in points {
        let (name, temporality, value) = match &point.value {
            MetricValue::Sum { temporality, value, .. } => (point.name.clone(), *temporality, number(*value)),
            MetricValue::Histogram { temporality, data } => (format!("{}.count", point.name), *temporality, data.count as f64),
            MetricValue::Gauge { .. } => continue,
        };
        let entry = totals.entry(name.clone()).or_default();
        entry.points_count += 1;
        match temporality {
            Temporality::Delta => entry.total += value,
            Temporality::Cumulative => {
                let series = format!("{resource:?}|{:?}", point.attributes);
                let slot = last.entry((name, series, point.start_time_unix_nano)).or_insert((point.time_unix_nano, value));
                if point.time_unix_nano >= slot.0 {
                    *slot = (point.time_unix_nano, value);
                }
            }
        }
    }
    for ((name, _, _), (_, value)) in last {
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
    /// `None`: Dash0 holds no point of the metric.
    pub found: Option<f64>,
}

impl std::fmt::Display for Disagreement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.found {
            Some(found) => write!(f, "{} totals {found} in Dash0, but {} jobs ran", self.metric, self.expected),
            None => write!(f, "{}: no point stored in Dash0, but {} jobs ran", self.metric, self.expected),
        }
    }
}

/// Compares `totals` with `expected` (metric name → true count).
pub fn check(totals: &BTreeMap<String, MetricTotal>, expected: &[(&str, u64)]) -> Vec<Disagreement> {
    expected
        .iter()
        .filter_map(|&(metric, expected)| {
            let found = totals.get(metric).map(|total| total.total);
            let agrees = found.is_some_and(|found| (found - expected as f64).abs() < 0.5) || (found.is_none() && expected == 0);
            (!agrees).then(|| Disagreement { metric: metric.to_string(), expected, found })
        })
        .collect()
}
