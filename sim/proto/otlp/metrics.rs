//! Metric points ⇄ `ExportMetricsServiceRequest`. Consecutive points of the same metric
//! (name, unit, kind, temporality, monotonicity) share one `Metric`, as collectors do; the
//! decoder flattens every data point back into a [`MetricPoint`], so a batch round-trips in
//! order. Exponential histograms and summaries are valid OTLP we do not model: refused as
//! `ErrorKind::Unsupported`.

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::metrics::v1::{
    Gauge, Histogram, HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, metric,
    number_data_point,
};

use super::attributes::{decode_resource, encode_resource, push_extras, scope, take_extras};
use super::error::{DecodeError, ErrorKind, FieldError, Signal};
use super::{Batch, Decoded, decode_message};
use crate::record::{HistogramData, MetricPoint, MetricValue, Number, Resource, Temporality};

/// One batch of points sharing `resource` as a request.
pub fn encode_metrics(resource: &Resource, points: &[MetricPoint]) -> ExportMetricsServiceRequest {
    encode_metrics_batches([(resource, points)])
}

/// Several batches as one request, one ResourceMetrics per batch, in order.
pub fn encode_metrics_batches<'a>(
    batches: impl IntoIterator<Item = (&'a Resource, &'a [MetricPoint])>,
) -> ExportMetricsServiceRequest {
    let batches = batches.into_iter();
    let mut resource_metrics = Vec::with_capacity(batches.size_hint().0);
    for (resource, points) in batches {
        let mut metrics = Vec::new();
        for group in points.chunk_by(same_metric) {
            metrics.push(encode_metric(group));
        }
        resource_metrics.push(ResourceMetrics {
            resource: Some(encode_resource(resource)),
            scope_metrics: vec![ScopeMetrics { scope: Some(scope()), metrics, ..Default::default() }],
            ..Default::default()
        });
    }
    ExportMetricsServiceRequest { resource_metrics }
}

/// Whether two points belong in one OTLP `Metric`.
fn same_metric(a: &MetricPoint, b: &MetricPoint) -> bool {
    a.name == b.name
        && a.unit == b.unit
        && match (&a.value, &b.value) {
            (
                MetricValue::Sum { temporality: t1, monotonic: m1, .. },
                MetricValue::Sum { temporality: t2, monotonic: m2, .. },
            ) => t1 == t2 && m1 == m2,
            (MetricValue::Gauge { .. }, MetricValue::Gauge { .. }) => true,
            (MetricValue::Histogram { temporality: t1, .. }, MetricValue::Histogram { temporality: t2, .. }) => {
                t1 == t2
            }
            _ => false,
        }
}

fn encode_number(point: &MetricPoint, value: Number) -> NumberDataPoint {
    let mut attributes = Vec::with_capacity(point.attributes.len());
    push_extras(&mut attributes, &point.attributes);
    NumberDataPoint {
        attributes,
        start_time_unix_nano: point.start_time_unix_nano,
        time_unix_nano: point.time_unix_nano,
        value: Some(match value {
            Number::Int(i) => number_data_point::Value::AsInt(i),
            Number::Double(d) => number_data_point::Value::AsDouble(d),
        }),
        ..Default::default()
    }
}

/// One `Metric` from a non-empty group of points that [`same_metric`] says belong together.
fn encode_metric(group: &[MetricPoint]) -> Metric {
    let first = &group[0];
    for point in group {
        if let Err(rule) = point.check() {
            panic!("metric point {:?} breaks an invariant: {rule}", point.name);
        }
    }
    let data = match &first.value {
        MetricValue::Sum { temporality, monotonic, .. } => {
            let mut data_points = Vec::with_capacity(group.len());
            for point in group {
                let MetricValue::Sum { value, .. } = &point.value else { unreachable!("grouped by kind") };
                data_points.push(encode_number(point, *value));
            }
            metric::Data::Sum(Sum {
                data_points,
                aggregation_temporality: temporality.number(),
                is_monotonic: *monotonic,
            })
        }
        MetricValue::Gauge { .. } => {
            let mut data_points = Vec::with_capacity(group.len());
            for point in group {
                let MetricValue::Gauge { value } = &point.value else { unreachable!("grouped by kind") };
                data_points.push(encode_number(point, *value));
            }
            metric::Data::Gauge(Gauge { data_points })
        }
        MetricValue::Histogram { temporality, .. } => {
            let mut data_points = Vec::with_capacity(group.len());
            for point in group {
                let MetricValue::Histogram { data, .. } = &point.value else { unreachable!("grouped by kind") };
                let mut attributes = Vec::with_capacity(point.attributes.len());
                push_extras(&mut attributes, &point.attributes);
                data_points.push(HistogramDataPoint {
                    attributes,
                    start_time_unix_nano: point.start_time_unix_nano,
                    time_unix_nano: point.time_unix_nano,
                    count: data.count,
                    sum: Some(data.sum),
                    bucket_counts: data.bucket_counts.clone(),
                    explicit_bounds: data.explicit_bounds.clone(),
                    ..Default::default()
                });
            }
            metric::Data::Histogram(Histogram { data_points, aggregation_temporality: temporality.number() })
        }
    };
    Metric { name: first.name.clone(), unit: first.unit.clone(), data: Some(data), ..Default::default() }
}

fn temporality(number: i32) -> Result<Temporality, FieldError> {
    Temporality::from_number(number)
        .ok_or_else(|| FieldError::invalid("aggregation_temporality", "must be 1 (delta) or 2 (cumulative)"))
}

fn number_value(value: Option<number_data_point::Value>) -> Result<Number, FieldError> {
    match value {
        None => Err(FieldError::missing("value")),
        Some(number_data_point::Value::AsInt(i)) => Ok(Number::Int(i)),
        Some(number_data_point::Value::AsDouble(d)) if d.is_finite() => Ok(Number::Double(d)),
        Some(number_data_point::Value::AsDouble(_)) => Err(FieldError::invalid("value", "must be finite")),
    }
}

/// Decodes one number point of a sum or gauge.
fn decode_number_point(
    name: &str,
    unit: &str,
    point: NumberDataPoint,
    make: impl Fn(Number) -> MetricValue,
) -> Result<MetricPoint, FieldError> {
    let attributes = take_extras(point.attributes)?;
    let value = make(number_value(point.value)?);
    Ok(MetricPoint {
        name: name.to_owned(),
        unit: unit.to_owned(),
        start_time_unix_nano: point.start_time_unix_nano,
        time_unix_nano: point.time_unix_nano,
        attributes,
        value,
    })
}

fn decode_histogram_point(
    name: &str,
    unit: &str,
    temporality: Temporality,
    point: HistogramDataPoint,
) -> Result<MetricPoint, FieldError> {
    let attributes = take_extras(point.attributes)?;
    let sum = point.sum.ok_or_else(|| FieldError::missing("sum"))?;
    let data = HistogramData {
        explicit_bounds: point.explicit_bounds,
        bucket_counts: point.bucket_counts,
        count: point.count,
        sum,
    };
    data.check().map_err(|rule| FieldError::invalid("histogram", rule))?;
    Ok(MetricPoint {
        name: name.to_owned(),
        unit: unit.to_owned(),
        start_time_unix_nano: point.start_time_unix_nano,
        time_unix_nano: point.time_unix_nano,
        attributes,
        value: MetricValue::Histogram { temporality, data },
    })
}

/// Number of data points a metric holds (a metric without data counts as one record, so
/// that refusing it is counted).
fn point_count(metric: &Metric) -> usize {
    let n = match &metric.data {
        None => 0,
        Some(metric::Data::Gauge(g)) => g.data_points.len(),
        Some(metric::Data::Sum(s)) => s.data_points.len(),
        Some(metric::Data::Histogram(h)) => h.data_points.len(),
        Some(metric::Data::ExponentialHistogram(h)) => h.data_points.len(),
        Some(metric::Data::Summary(s)) => s.data_points.len(),
    };
    n.max(1)
}

/// Where the decode loop is and what to do with errors.
struct Cursor<'a> {
    decoded: &'a mut Decoded<MetricPoint>,
    strict: bool,
    resource_index: usize,
    index: usize,
}

impl Cursor<'_> {
    /// Accepts or refuses one point and advances the flat index.
    fn point(
        &mut self,
        out: &mut Vec<MetricPoint>,
        result: Result<MetricPoint, FieldError>,
    ) -> Result<(), DecodeError> {
        match result {
            Ok(p) => out.push(p),
            Err(e) => self.refuse(e, 1)?,
        }
        self.index += 1;
        Ok(())
    }

    /// Refuses `count` points starting at the current index (without advancing).
    fn refuse(&mut self, error: FieldError, count: usize) -> Result<(), DecodeError> {
        let e = error.at(Signal::Metrics, Some(self.resource_index), Some(self.index));
        if self.strict {
            return Err(e);
        }
        self.decoded.reject(e, count);
        Ok(())
    }
}

/// Decodes one metric's points into `out`.
fn decode_metric(cursor: &mut Cursor<'_>, out: &mut Vec<MetricPoint>, metric: Metric) -> Result<(), DecodeError> {
    let count = point_count(&metric);
    let header = if metric.name.is_empty() {
        Err(FieldError::missing("name"))
    } else {
        match &metric.data {
            None => Err(FieldError::missing("data")),
            Some(metric::Data::ExponentialHistogram(_)) => {
                Err(FieldError::new("exponential_histogram", ErrorKind::Unsupported))
            }
            Some(metric::Data::Summary(_)) => Err(FieldError::new("summary", ErrorKind::Unsupported)),
            Some(metric::Data::Sum(s)) => temporality(s.aggregation_temporality).map(Some),
            Some(metric::Data::Histogram(h)) => temporality(h.aggregation_temporality).map(Some),
            Some(metric::Data::Gauge(_)) => Ok(None),
        }
    };
    let temporality = match header {
        Ok(t) => t,
        Err(e) => {
            cursor.refuse(e, count)?;
            cursor.index += count;
            return Ok(());
        }
    };
    let (name, unit) = (metric.name.as_str(), metric.unit.as_str());
    match metric.data.expect("checked above") {
        metric::Data::Sum(sum) => {
            let temporality = temporality.expect("sums have one");
            let monotonic = sum.is_monotonic;
            for point in sum.data_points {
                let result =
                    decode_number_point(name, unit, point, |value| MetricValue::Sum { temporality, monotonic, value });
                cursor.point(out, result)?;
            }
        }
        metric::Data::Gauge(gauge) => {
            for point in gauge.data_points {
                let result = decode_number_point(name, unit, point, |value| MetricValue::Gauge { value });
                cursor.point(out, result)?;
            }
        }
        metric::Data::Histogram(histogram) => {
            let temporality = temporality.expect("histograms have one");
            for point in histogram.data_points {
                let result = decode_histogram_point(name, unit, temporality, point);
                cursor.point(out, result)?;
            }
        }
        metric::Data::ExponentialHistogram(_) | metric::Data::Summary(_) => {
            unreachable!("refused above")
        }
    }
    Ok(())
}

/// The one decode loop; `strict` stops at the first error.
fn decode_impl(request: ExportMetricsServiceRequest, strict: bool) -> Result<Decoded<MetricPoint>, DecodeError> {
    let mut decoded = Decoded::with_capacity(request.resource_metrics.len());
    let mut index = 0usize;
    for (resource_index, resource_metrics) in request.resource_metrics.into_iter().enumerate() {
        let count: usize = resource_metrics.scope_metrics.iter().flat_map(|s| s.metrics.iter()).map(point_count).sum();
        let resource = match decode_resource(resource_metrics.resource) {
            Ok(resource) => resource,
            Err(e) => {
                let e = e.at(Signal::Metrics, Some(resource_index), None);
                if strict {
                    return Err(e);
                }
                decoded.reject(e, count);
                index += count;
                continue;
            }
        };
        let mut records = Vec::with_capacity(count);
        let mut cursor = Cursor { decoded: &mut decoded, strict, resource_index, index };
        for scope_metrics in resource_metrics.scope_metrics {
            for metric in scope_metrics.metrics {
                decode_metric(&mut cursor, &mut records, metric)?;
            }
        }
        index = cursor.index;
        decoded.batches.push(Batch { resource, records });
    }
    debug_assert_eq!(decoded.accepted_records() + decoded.rejected_records, index);
    Ok(decoded)
}

/// Decodes a request strictly: every point valid, or the first error.
pub fn decode_metrics(request: ExportMetricsServiceRequest) -> Result<Vec<Batch<MetricPoint>>, DecodeError> {
    decode_impl(request, true).map(|d| d.batches)
}

/// Decodes a request keeping the valid points and listing the refused ones.
pub fn decode_metrics_partial(request: ExportMetricsServiceRequest) -> Decoded<MetricPoint> {
    decode_impl(request, false).expect("partial decoding collects errors instead of returning them")
}

/// Parses protobuf bytes and decodes them strictly.
pub fn decode_metrics_bytes(bytes: &[u8]) -> Result<Vec<Batch<MetricPoint>>, DecodeError> {
    decode_metrics(decode_message(Signal::Metrics, bytes)?)
}
