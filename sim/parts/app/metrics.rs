//! The app's metric points: cumulative counters (jobs submitted by the API, jobs completed
//! per machine), the job duration histogram (per machine, cumulative), and the queue depth
//! gauge (the API samples LLEN of each pending queue). Cumulative points restart from zero
//! with a new start time when the host restarts, as an OTel SDK's do.

use crate::record::{Attributes, HistogramData, MetricPoint, MetricValue, Number, Temporality};

/// Job duration bucket bounds, seconds.
pub const DURATION_BOUNDS_SECONDS: [f64; 10] = [0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0];

/// A cumulative monotonic counter point.
pub fn counter(
    name: &str,
    value: u64,
    start_unix_nano: u64,
    now_unix_nano: u64,
    attributes: Attributes,
) -> MetricPoint {
    MetricPoint {
        name: name.to_string(),
        unit: "{job}".to_string(),
        start_time_unix_nano: start_unix_nano,
        time_unix_nano: now_unix_nano,
        attributes,
        value: MetricValue::Sum {
            temporality: Temporality::Cumulative,
            monotonic: true,
            value: Number::Int(i64::try_from(value).unwrap_or(i64::MAX)),
        },
    }
}

/// A gauge point.
pub fn gauge(name: &str, value: i64, now_unix_nano: u64, attributes: Attributes) -> MetricPoint {
    MetricPoint {
        name: name.to_string(),
        unit: "{job}".to_string(),
        start_time_unix_nano: 0,
        time_unix_nano: now_unix_nano,
        attributes,
        value: MetricValue::Gauge { value: Number::Int(value) },
    }
}

/// A cumulative histogram of job durations.
#[derive(Clone, Debug)]
pub struct DurationHistogram {
    data: HistogramData,
}

impl Default for DurationHistogram {
    fn default() -> Self {
        DurationHistogram {
            data: HistogramData {
                explicit_bounds: DURATION_BOUNDS_SECONDS.to_vec(),
                bucket_counts: vec![0; DURATION_BOUNDS_SECONDS.len() + 1],
                count: 0,
                sum: 0.0,
            },
        }
    }
}

impl DurationHistogram {
    /// Adds one observation.
    pub fn observe(&mut self, seconds: f64) {
        let bucket = DURATION_BOUNDS_SECONDS.partition_point(|bound| *bound < seconds);
        self.data.bucket_counts[bucket] += 1;
        self.data.count += 1;
        self.data.sum += seconds;
        debug_assert!(self.data.check().is_ok());
    }

    /// Observations so far.
    pub fn count(&self) -> u64 {
        self.data.count
    }

    /// The point as of now.
    pub fn point(&self, name: &str, start_unix_nano: u64, now_unix_nano: u64, attributes: Attributes) -> MetricPoint {
        MetricPoint {
            name: name.to_string(),
            unit: "s".to_string(),
            start_time_unix_nano: start_unix_nano,
            time_unix_nano: now_unix_nano,
            attributes,
            value: MetricValue::Histogram { temporality: Temporality::Cumulative, data: self.data.clone() },
        }
    }
}
