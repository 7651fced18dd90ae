//! The app's metric points: counters (jobs submitted by the API, jobs completed per
//! machine), the job duration histogram (per machine), and the queue depth gauge (the API
//! samples LLEN of each pending queue).
//!
//! Sums and histograms are exported with the temporality `[app] metrics_temporality` names
//! ([`SumStream`], [`HistogramStream`]), as an OTel SDK's periodic reader does:
//! - cumulative: every point carries the total since the host (its process) started, with
//!   that start as `start_time_unix_nano`; a restart begins a new stream from zero with a new
//!   start time;
//! - delta: every point carries the change since the previous collection, with that
//!   collection's time as its start; an interval without a change exports no point, and a
//!   point lost on its way is lost for good (the SDK has already reset its state).
//!   See FIDELITY.md, "App".

use super::config::MetricsTemporality;
use crate::record::{Attributes, HistogramData, MetricPoint, MetricValue, Number, Temporality};

/// Job duration bucket bounds, seconds.
pub(crate) const DURATION_BOUNDS_SECONDS: [f64; 10] = [0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0];

/// A monotonic counter point of `temporality`.
pub fn counter(
    name: &str,
    value: u64,
    start_unix_nano: u64,
    now_unix_nano: u64,
    attributes: Attributes,
    temporality: Temporality,
) -> MetricPoint {
    MetricPoint {
        name: name.to_string(),
        unit: "{job}".to_string(),
        start_time_unix_nano: start_unix_nano,
        time_unix_nano: now_unix_nano,
        attributes,
        value: MetricValue::Sum {
            temporality,
            monotonic: true,
            value: Number::Int(i64::try_from(value).unwrap_or(i64::MAX)),
        },
    }
}

/// One monotonic counter's export state for one host incarnation.
#[derive(Clone, Debug)]
pub(crate) struct SumStream {
    name: &'static str,
    attributes: Attributes,
    temporality: MetricsTemporality,
    /// The incarnation's start (cumulative points' start time).
    started_unix_nano: u64,
    /// The total at the previous collection, and that collection's time (delta points'
    /// start).
    collected: u64,
    collected_unix_nano: u64,
}

impl SumStream {
    /// A stream starting at `started_unix_nano` (host clock) with total 0.
    pub fn new(
        name: &'static str,
        attributes: Attributes,
        temporality: MetricsTemporality,
        started_unix_nano: u64,
    ) -> Self {
        SumStream {
            name,
            attributes,
            temporality,
            started_unix_nano,
            collected: 0,
            collected_unix_nano: started_unix_nano,
        }
    }

    /// Collects the counter at `total` (never less than the previous total): the point to
    /// export, or `None` for a delta interval without a change.
    pub fn collect(&mut self, total: u64, now_unix_nano: u64) -> Option<MetricPoint> {
        assert!(total >= self.collected, "{}: a monotonic counter went from {} to {total}", self.name, self.collected);
        let (start, value) = match self.temporality {
            MetricsTemporality::Cumulative => (self.started_unix_nano, total),
            MetricsTemporality::Delta => (self.collected_unix_nano, total - self.collected),
        };
        self.collected = total;
        self.collected_unix_nano = now_unix_nano;
        if self.temporality == MetricsTemporality::Delta && value == 0 {
            return None;
        }
        Some(counter(self.name, value, start, now_unix_nano, self.attributes.clone(), self.temporality.as_record()))
    }
}

/// One histogram's export state for one host incarnation (see [`SumStream`]).
#[derive(Clone, Debug)]
pub(crate) struct HistogramStream {
    name: &'static str,
    attributes: Attributes,
    temporality: MetricsTemporality,
    started_unix_nano: u64,
    collected: DurationHistogram,
    collected_unix_nano: u64,
}

impl HistogramStream {
    /// A stream starting at `started_unix_nano` (host clock) with no observation.
    pub fn new(
        name: &'static str,
        attributes: Attributes,
        temporality: MetricsTemporality,
        started_unix_nano: u64,
    ) -> Self {
        HistogramStream {
            name,
            attributes,
            temporality,
            started_unix_nano,
            collected: DurationHistogram::default(),
            collected_unix_nano: started_unix_nano,
        }
    }

    /// Collects `total` (the histogram since the incarnation started): the point to export,
    /// or `None` for a delta interval without an observation.
    pub fn collect(&mut self, total: &DurationHistogram, now_unix_nano: u64) -> Option<MetricPoint> {
        let (start, data) = match self.temporality {
            MetricsTemporality::Cumulative => (self.started_unix_nano, total.data.clone()),
            MetricsTemporality::Delta => (self.collected_unix_nano, total.minus(&self.collected)),
        };
        self.collected = total.clone();
        self.collected_unix_nano = now_unix_nano;
        if self.temporality == MetricsTemporality::Delta && data.count == 0 {
            return None;
        }
        debug_assert!(data.check().is_ok());
        Some(MetricPoint {
            name: self.name.to_string(),
            unit: "s".to_string(),
            start_time_unix_nano: start,
            time_unix_nano: now_unix_nano,
            attributes: self.attributes.clone(),
            value: MetricValue::Histogram { temporality: self.temporality.as_record(), data },
        })
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
pub(crate) struct DurationHistogram {
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
    pub(crate) fn observe(&mut self, seconds: f64) {
        let bucket = DURATION_BOUNDS_SECONDS.partition_point(|bound| *bound < seconds);
        self.data.bucket_counts[bucket] += 1;
        self.data.count += 1;
        self.data.sum += seconds;
        debug_assert!(self.data.check().is_ok());
    }

    /// The observations made since `earlier` (an earlier state of this histogram).
    fn minus(&self, earlier: &DurationHistogram) -> HistogramData {
        assert!(self.data.count >= earlier.data.count, "a histogram only grows");
        HistogramData {
            explicit_bounds: self.data.explicit_bounds.clone(),
            bucket_counts: self
                .data
                .bucket_counts
                .iter()
                .zip(&earlier.data.bucket_counts)
                .map(|(now, then)| now - then)
                .collect(),
            count: self.data.count - earlier.data.count,
            sum: (self.data.sum - earlier.data.sum).max(0.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(point: &MetricPoint) -> (Temporality, i64, u64, u64) {
        match point.value {
            MetricValue::Sum { temporality, value: Number::Int(value), .. } => {
                (temporality, value, point.start_time_unix_nano, point.time_unix_nano)
            }
            _ => panic!("not an int sum: {point:?}"),
        }
    }

    #[test]
    fn cumulative_points_carry_the_total_since_the_start() {
        let mut stream = SumStream::new("c", Attributes::new(), MetricsTemporality::Cumulative, 100);
        assert_eq!(value(&stream.collect(3, 110).unwrap()), (Temporality::Cumulative, 3, 100, 110));
        assert_eq!(value(&stream.collect(3, 120).unwrap()), (Temporality::Cumulative, 3, 100, 120));
        assert_eq!(value(&stream.collect(7, 130).unwrap()), (Temporality::Cumulative, 7, 100, 130));
    }

    #[test]
    fn delta_points_carry_the_change_since_the_previous_collection_and_skip_no_change() {
        let mut stream = SumStream::new("c", Attributes::new(), MetricsTemporality::Delta, 100);
        assert_eq!(value(&stream.collect(3, 110).unwrap()), (Temporality::Delta, 3, 100, 110));
        assert!(stream.collect(3, 120).is_none());
        assert_eq!(value(&stream.collect(7, 130).unwrap()), (Temporality::Delta, 4, 120, 130));
    }

    #[test]
    fn delta_histograms_hold_the_observations_of_the_interval() {
        let mut total = DurationHistogram::default();
        let mut stream = HistogramStream::new("h", Attributes::new(), MetricsTemporality::Delta, 0);
        total.observe(0.7);
        total.observe(3.0);
        let first = stream.collect(&total, 10).unwrap();
        total.observe(0.7);
        let second = stream.collect(&total, 20).unwrap();
        let MetricValue::Histogram { temporality: Temporality::Delta, data } = second.value else {
            panic!("{second:?}")
        };
        assert_eq!((data.count, data.bucket_counts[1], data.bucket_counts[3]), (1, 1, 0));
        assert_eq!((second.start_time_unix_nano, first.time_unix_nano), (10, 10));
        assert!(stream.collect(&total, 30).is_none(), "no observation, no point");
    }
}
