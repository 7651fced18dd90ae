//! Metric points: the app's jobs submitted / completed counters (sums), job duration
//! (histogram with explicit bounds) and queue depth (gauge), shipped via the collector.
//!
//! Sum temporality is part of the value and must survive every hop: the checkers compare a
//! cumulative counter by its last value and a delta counter by the sum of its points, so a
//! retried delta batch shows up as double counting (ARCHITECTURE.md §4).

use serde::{Deserialize, Serialize};

use super::attributes::Attributes;

/// Aggregation temporality of sums and histograms (OTLP: DELTA = 1, CUMULATIVE = 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Temporality {
    /// Each point covers the interval since the previous point.
    Delta,
    /// Each point covers the interval since a fixed start.
    Cumulative,
}

impl Temporality {
    /// The OTLP `AggregationTemporality` number.
    pub fn number(self) -> i32 {
        match self {
            Temporality::Delta => 1,
            Temporality::Cumulative => 2,
        }
    }

    /// The temporality for an OTLP number; `None` for UNSPECIFIED or unknown.
    pub(crate) fn from_number(number: i32) -> Option<Temporality> {
        match number {
            1 => Some(Temporality::Delta),
            2 => Some(Temporality::Cumulative),
            _ => None,
        }
    }
}

/// A number as OTLP carries it: integer or double.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Number {
    /// `as_int`.
    Int(i64),
    /// `as_double`.
    Double(f64),
}

/// An explicit-bounds histogram point. Invariants ([`HistogramData::check`]): bounds finite
/// and strictly increasing, one more bucket than bounds, `count` = Σ buckets, `sum` finite.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistogramData {
    /// Bucket upper bounds (bucket `i` holds values ≤ `explicit_bounds[i]`; the last bucket is unbounded).
    pub explicit_bounds: Vec<f64>,
    /// Counts per bucket; `explicit_bounds.len() + 1` of them.
    pub bucket_counts: Vec<u64>,
    /// Number of observations.
    pub count: u64,
    /// Sum of observations.
    pub sum: f64,
}

impl HistogramData {
    /// Checks the invariants; the error names the one broken.
    pub fn check(&self) -> Result<(), &'static str> {
        if self.bucket_counts.len() != self.explicit_bounds.len() + 1 {
            return Err("bucket_counts must have one more entry than explicit_bounds");
        }
        if !self.explicit_bounds.iter().all(|b| b.is_finite()) {
            return Err("explicit_bounds must be finite");
        }
        if !self.explicit_bounds.windows(2).all(|w| w[0] < w[1]) {
            return Err("explicit_bounds must be strictly increasing");
        }
        let total = self.bucket_counts.iter().try_fold(0u64, |acc, c| acc.checked_add(*c));
        if total != Some(self.count) {
            return Err("count must equal the sum of bucket_counts");
        }
        if !self.sum.is_finite() {
            return Err("sum must be finite");
        }
        Ok(())
    }
}

/// What a point measures, with its value(s).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MetricValue {
    /// A sum (counter when monotonic).
    Sum {
        /// Delta or cumulative.
        temporality: Temporality,
        /// Whether it only grows (a counter).
        monotonic: bool,
        /// The value.
        value: Number,
    },
    /// An instantaneous reading (queue depth).
    Gauge {
        /// The value.
        value: Number,
    },
    /// A distribution (job duration).
    Histogram {
        /// Delta or cumulative.
        temporality: Temporality,
        /// Buckets, count and sum.
        data: HistogramData,
    },
}

/// One data point of one metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricPoint {
    /// Metric name (`jobs.submitted`, …).
    pub name: String,
    /// UCUM unit (`1`, `ms`, `{job}`), may be empty.
    pub unit: String,
    /// Start of the aggregation interval (sums, histograms; 0 when not meaningful).
    pub start_time_unix_nano: u64,
    /// When the point was taken, host clock.
    pub time_unix_nano: u64,
    /// Point attributes (few, ordered).
    pub attributes: Attributes,
    /// Kind and value.
    pub value: MetricValue,
}

impl MetricPoint {
    /// Checks what the type system cannot: finite numbers and histogram invariants.
    pub fn check(&self) -> Result<(), &'static str> {
        if self.name.is_empty() {
            return Err("name must not be empty");
        }
        match &self.value {
            MetricValue::Sum { value, .. } | MetricValue::Gauge { value } => match value {
                Number::Double(d) if !d.is_finite() => Err("value must be finite"),
                _ => Ok(()),
            },
            MetricValue::Histogram { data, .. } => data.check(),
        }
    }
}
