//! Bounds on what decoding an OTLP body costs, checked before prost allocates anything.
//!
//! Why: prost builds the whole request tree while it reads, and a message's in-memory size
//! has nothing to do with its wire size — an empty `LogRecord` is 2 bytes on the wire and
//! a few hundred in a `Vec` (doubled while the `Vec` grows). A 1 MiB body of empty records
//! became a 92 MiB vector. [`check_decode_bounds`] walks the protobuf wire format once,
//! knowing the OTLP schema (which field holds which message), and adds up what prost would
//! allocate: each element of a repeated field (twice its size, for `Vec` doubling), each
//! string and bytes field, each packed scalar. The body is refused when that exceeds
//! `expansion_limit` × its own size (plus a fixed 64 KiB), or when it holds more repeated elements than
//! `elements_limit`. Nothing is allocated; the walk's depth is bounded like prost's
//! recursion (100).
//!
//! A body that is not valid protobuf is left to prost (its error text is what Dash0
//! answers) unless what came before the break already exceeds the bounds: prost allocates
//! up to the break before it fails. README "Wire decoders' limits" lists the defaults.

use std::fmt;
use std::mem::size_of;

use opentelemetry_proto::tonic::common::v1::{AnyValue, EntityRef, KeyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::exponential_histogram_data_point::Buckets;
use opentelemetry_proto::tonic::metrics::v1::summary_data_point::ValueAtQuantile;
use opentelemetry_proto::tonic::metrics::v1::{
    Exemplar, ExponentialHistogramDataPoint, HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics,
    ScopeMetrics, SummaryDataPoint,
};
use opentelemetry_proto::tonic::trace::v1::span::{Event, Link};
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};

use super::error::Signal;

/// Default `expansion_limit`: obsim's own requests decode to at most about 11 × their
/// size (tests/otlp_roundtrip.rs `own_requests_fit_well_inside_the_decode_bounds` holds
/// them to half of this).
pub const DECODED_EXPANSION_LIMIT_DEFAULT: usize = 32;
/// Default `elements_limit`: repeated elements (records, attributes, points, ...) in one
/// request: a 20 MiB request of 200-byte records with 6 attributes each holds about
/// 730,000; every element takes at least 2 wire bytes, so the bound bites before the
/// 10 million a 20 MiB body could declare.
pub const DECODED_ELEMENTS_LIMIT_DEFAULT: usize = 1 << 22;
/// Decoded bytes every body may take beyond the multiple: a request of a few bytes (one
/// empty resource) still decodes to a few hundred.
pub const DECODED_BYTES_ALLOWANCE: u64 = 64 << 10;
/// Nesting the walk follows, as deep as prost's recursion limit.
const DEPTH_LIMIT: usize = 100;

/// How much decoding one body may cost.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecodeLimits {
    /// The decoded request may take at most this many times the body's bytes.
    pub expansion_limit: usize,
    /// The request may hold at most this many repeated elements, at every depth.
    pub elements_limit: usize,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        Self { expansion_limit: DECODED_EXPANSION_LIMIT_DEFAULT, elements_limit: DECODED_ELEMENTS_LIMIT_DEFAULT }
    }
}

/// What decoding a body would cost: the walk's totals.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DecodeCost {
    /// Bytes prost would allocate, at most (repeated elements counted twice: `Vec` growth).
    pub decoded_bytes: u64,
    /// Repeated elements, at every depth.
    pub elements: u64,
}

/// A body refused before decoding: which bound it broke.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BoundsError {
    /// More decoded bytes than `expansion_limit` × the body's bytes (plus
    /// [`DECODED_BYTES_ALLOWANCE`]).
    Expansion {
        /// The body's bytes.
        body_bytes: u64,
        /// Decoded bytes counted (at least this many).
        decoded_bytes: u64,
        /// The configured multiple.
        expansion_limit: u64,
    },
    /// More repeated elements than `elements_limit`.
    Elements {
        /// Elements counted (at least this many).
        elements: u64,
        /// The configured limit.
        elements_limit: u64,
    },
}

impl fmt::Display for BoundsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Expansion { body_bytes, decoded_bytes, expansion_limit } => write!(
                f,
                "a {body_bytes}-byte body would decode to at least {decoded_bytes} bytes, more than \
                 decoded_expansion_limit {expansion_limit} × its size + {DECODED_BYTES_ALLOWANCE}"
            ),
            Self::Elements { elements, elements_limit } => {
                write!(
                    f,
                    "the body holds at least {elements} repeated elements, more than decoded_elements_limit {elements_limit}"
                )
            }
        }
    }
}

impl std::error::Error for BoundsError {}

/// Walks `body` as the export request of `signal` and refuses it if decoding it would
/// break `limits`. Allocates nothing; linear in the body's bytes.
pub fn check_decode_bounds(signal: Signal, body: &[u8], limits: &DecodeLimits) -> Result<DecodeCost, BoundsError> {
    let root = match signal {
        Signal::Logs => Msg::LogsRequest,
        Signal::Traces => Msg::TracesRequest,
        Signal::Metrics => Msg::MetricsRequest,
    };
    let mut cost = DecodeCost::default();
    // A walk that stops at malformed bytes still judges what came before them.
    let _well_formed = walk(root, body, 0, &mut cost);
    let body_bytes = body.len() as u64;
    if cost.elements > limits.elements_limit as u64 {
        return Err(BoundsError::Elements { elements: cost.elements, elements_limit: limits.elements_limit as u64 });
    }
    let allowed_bytes =
        body_bytes.saturating_mul(limits.expansion_limit as u64).saturating_add(DECODED_BYTES_ALLOWANCE);
    if cost.decoded_bytes > allowed_bytes {
        return Err(BoundsError::Expansion {
            body_bytes,
            decoded_bytes: cost.decoded_bytes,
            expansion_limit: limits.expansion_limit as u64,
        });
    }
    Ok(cost)
}

/// The OTLP messages the walk knows (the three export requests and everything inside).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Msg {
    LogsRequest,
    TracesRequest,
    MetricsRequest,
    ResourceLogs,
    ResourceSpans,
    ResourceMetrics,
    Resource,
    EntityRef,
    Scope,
    KeyValue,
    AnyValue,
    ArrayValue,
    KeyValueList,
    ScopeLogs,
    LogRecord,
    ScopeSpans,
    Span,
    Event,
    Link,
    Status,
    ScopeMetrics,
    Metric,
    /// Gauge, Sum, Histogram, ExponentialHistogram, Summary: field 1 is their points.
    Points(Point),
    NumberPoint,
    HistogramPoint,
    ExponentialPoint,
    Buckets,
    SummaryPoint,
    Quantile,
    Exemplar,
}

/// Which data point a metric's data holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Point {
    Number,
    Histogram,
    Exponential,
    Summary,
}

/// How prost stores one field, as far as its cost goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Field {
    /// A message held inline (optional or oneof): costs what it holds.
    Inline(Msg),
    /// An element of a repeated message field: its size twice, plus what it holds.
    Repeated(Msg),
    /// A string or bytes: its length.
    Bytes,
    /// An element of a repeated string: a `String` twice, plus its length.
    RepeatedBytes,
    /// Repeated fixed64 / double / sfixed64 (packed or not): 8 bytes twice per element.
    Repeated64,
    /// Repeated uint64 as varints (packed or not): 8 bytes twice per element.
    RepeatedVarint,
    /// A scalar, or a field prost skips: nothing allocated.
    Scalar,
}

/// The field `tag` of `msg`, from opentelemetry-proto's generated types.
fn field(msg: Msg, tag: u64) -> Field {
    use Field::{Bytes, Inline, Repeated, Repeated64, RepeatedBytes, RepeatedVarint, Scalar};
    match (msg, tag) {
        (Msg::LogsRequest, 1) => Repeated(Msg::ResourceLogs),
        (Msg::TracesRequest, 1) => Repeated(Msg::ResourceSpans),
        (Msg::MetricsRequest, 1) => Repeated(Msg::ResourceMetrics),
        (Msg::ResourceLogs | Msg::ResourceSpans | Msg::ResourceMetrics, 1) => Inline(Msg::Resource),
        (Msg::ResourceLogs, 2) => Repeated(Msg::ScopeLogs),
        (Msg::ResourceSpans, 2) => Repeated(Msg::ScopeSpans),
        (Msg::ResourceMetrics, 2) => Repeated(Msg::ScopeMetrics),
        (Msg::ScopeLogs | Msg::ScopeSpans | Msg::ScopeMetrics, 1) => Inline(Msg::Scope),
        (Msg::ScopeLogs, 2) => Repeated(Msg::LogRecord),
        (Msg::ScopeSpans, 2) => Repeated(Msg::Span),
        (Msg::ScopeMetrics, 2) => Repeated(Msg::Metric),
        (
            Msg::ResourceLogs
            | Msg::ResourceSpans
            | Msg::ResourceMetrics
            | Msg::ScopeLogs
            | Msg::ScopeSpans
            | Msg::ScopeMetrics,
            3,
        ) => Bytes,
        (Msg::Resource, 1) | (Msg::Scope, 3) | (Msg::KeyValueList, 1) => Repeated(Msg::KeyValue),
        (Msg::Resource, 3) => Repeated(Msg::EntityRef),
        (Msg::EntityRef, 1 | 2) | (Msg::Scope, 1 | 2) | (Msg::KeyValue, 1) => Bytes,
        (Msg::EntityRef, 3 | 4) => RepeatedBytes,
        (Msg::KeyValue, 2) => Inline(Msg::AnyValue),
        (Msg::AnyValue, 1 | 7) => Bytes,
        (Msg::AnyValue, 5) => Inline(Msg::ArrayValue),
        (Msg::AnyValue, 6) => Inline(Msg::KeyValueList),
        (Msg::ArrayValue, 1) => Repeated(Msg::AnyValue),
        (Msg::LogRecord, 3 | 9 | 10 | 12) => Bytes,
        (Msg::LogRecord, 5) => Inline(Msg::AnyValue),
        (Msg::LogRecord, 6) | (Msg::Span, 9) | (Msg::Event, 3) | (Msg::Link, 4) => Repeated(Msg::KeyValue),
        (Msg::Span, 1..=5) | (Msg::Event, 2) | (Msg::Link, 1..=3) | (Msg::Status, 2) => Bytes,
        (Msg::Span, 11) => Repeated(Msg::Event),
        (Msg::Span, 13) => Repeated(Msg::Link),
        (Msg::Span, 15) => Inline(Msg::Status),
        (Msg::Metric, 1..=3) => Bytes,
        (Msg::Metric, 12) => Repeated(Msg::KeyValue),
        (Msg::Metric, 5 | 7) => Inline(Msg::Points(Point::Number)),
        (Msg::Metric, 9) => Inline(Msg::Points(Point::Histogram)),
        (Msg::Metric, 10) => Inline(Msg::Points(Point::Exponential)),
        (Msg::Metric, 11) => Inline(Msg::Points(Point::Summary)),
        (Msg::Points(point), 1) => Repeated(match point {
            Point::Number => Msg::NumberPoint,
            Point::Histogram => Msg::HistogramPoint,
            Point::Exponential => Msg::ExponentialPoint,
            Point::Summary => Msg::SummaryPoint,
        }),
        (Msg::NumberPoint | Msg::SummaryPoint, 7) | (Msg::HistogramPoint, 9) | (Msg::ExponentialPoint, 1) => {
            Repeated(Msg::KeyValue)
        }
        (Msg::NumberPoint, 5) | (Msg::HistogramPoint, 8) | (Msg::ExponentialPoint, 11) => Repeated(Msg::Exemplar),
        (Msg::HistogramPoint, 6 | 7) => Repeated64,
        (Msg::ExponentialPoint, 8 | 9) => Inline(Msg::Buckets),
        (Msg::Buckets, 2) => RepeatedVarint,
        (Msg::SummaryPoint, 6) => Repeated(Msg::Quantile),
        (Msg::Exemplar, 7) => Repeated(Msg::KeyValue),
        (Msg::Exemplar, 4 | 5) => Bytes,
        _ => Scalar,
    }
}

/// The in-memory size of one element of a repeated field of `msg`.
fn element_bytes(msg: Msg) -> u64 {
    let bytes = match msg {
        Msg::ResourceLogs => size_of::<ResourceLogs>(),
        Msg::ResourceSpans => size_of::<ResourceSpans>(),
        Msg::ResourceMetrics => size_of::<ResourceMetrics>(),
        Msg::EntityRef => size_of::<EntityRef>(),
        Msg::KeyValue => size_of::<KeyValue>(),
        Msg::AnyValue => size_of::<AnyValue>(),
        Msg::ScopeLogs => size_of::<ScopeLogs>(),
        Msg::LogRecord => size_of::<LogRecord>(),
        Msg::ScopeSpans => size_of::<ScopeSpans>(),
        Msg::Span => size_of::<Span>(),
        Msg::Event => size_of::<Event>(),
        Msg::Link => size_of::<Link>(),
        Msg::ScopeMetrics => size_of::<ScopeMetrics>(),
        Msg::Metric => size_of::<Metric>(),
        Msg::NumberPoint => size_of::<NumberDataPoint>(),
        Msg::HistogramPoint => size_of::<HistogramDataPoint>(),
        Msg::ExponentialPoint => size_of::<ExponentialHistogramDataPoint>(),
        Msg::Buckets => size_of::<Buckets>(),
        Msg::SummaryPoint => size_of::<SummaryDataPoint>(),
        Msg::Quantile => size_of::<ValueAtQuantile>(),
        Msg::Exemplar => size_of::<Exemplar>(),
        // Never repeated: held inline in their parent.
        Msg::LogsRequest
        | Msg::TracesRequest
        | Msg::MetricsRequest
        | Msg::Resource
        | Msg::Scope
        | Msg::ArrayValue
        | Msg::KeyValueList
        | Msg::Status
        | Msg::Points(_) => 0,
    };
    bytes as u64
}

/// A cursor over protobuf wire bytes; every read is bounds checked.
struct Wire<'a> {
    bytes: &'a [u8],
    position: usize,
}

impl<'a> Wire<'a> {
    /// A varint of at most 10 bytes, or `None` when cut short or too long.
    fn varint(&mut self) -> Option<u64> {
        let mut value = 0u64;
        for index in 0..10 {
            let byte = *self.bytes.get(self.position)?;
            self.position += 1;
            value |= u64::from(byte & 0x7f) << (7 * index);
            if byte < 0x80 {
                return Some(value);
            }
        }
        None
    }

    /// The next `count` bytes, or `None` when fewer are left.
    fn take(&mut self, count: u64) -> Option<&'a [u8]> {
        let count = usize::try_from(count).ok()?;
        let end = self.position.checked_add(count)?;
        let slice = self.bytes.get(self.position..end)?;
        self.position = end;
        Some(slice)
    }
}

/// Adds what decoding `bytes` as `msg` costs to `cost`. `None` when the bytes are not well
/// formed (the walk stops there; what it counted stands). Depth-bounded.
fn walk(msg: Msg, bytes: &[u8], depth: usize, cost: &mut DecodeCost) -> Option<()> {
    if depth > DEPTH_LIMIT {
        return None;
    }
    let mut wire = Wire { bytes, position: 0 };
    // The repeated fields of this message already met: a `Vec`'s first push reserves room
    // for 4 elements, later ones double it (capacity ≤ 4 + 2 × (len - 1)).
    let mut met_tags = 0u64;
    // Bounded: every pass consumes at least the key's byte.
    while wire.position < bytes.len() {
        let key = wire.varint()?;
        let (tag, wire_type) = (key >> 3, key & 7);
        let kind = field(msg, tag);
        if kind != Field::Scalar && kind != Field::Bytes && !matches!(kind, Field::Inline(_)) && tag < 64 {
            if met_tags & (1 << tag) == 0 {
                cost.decoded_bytes += 2 * element_cost(kind);
            }
            met_tags |= 1 << tag;
        }
        match wire_type {
            0 => {
                wire.varint()?;
                count_scalars(kind, 1, cost);
            }
            1 => {
                wire.take(8)?;
                count_scalars(kind, 1, cost);
            }
            5 => {
                wire.take(4)?;
            }
            2 => {
                let length = wire.varint()?;
                let payload = wire.take(length)?;
                walk_delimited(kind, payload, depth, cost)?;
            }
            3 => skip_group(&mut wire, tag, depth)?,
            _ => return None,
        }
    }
    Some(())
}

/// What a string or bytes field of `length` bytes allocates: the first reserve of a byte
/// `Vec` takes at least 8.
fn text_bytes(length: u64) -> u64 {
    if length == 0 { 0 } else { length.max(8) }
}

/// The in-memory size of one element of a repeated field of `kind` (0 for other kinds).
fn element_cost(kind: Field) -> u64 {
    match kind {
        Field::Repeated(child) => element_bytes(child),
        Field::RepeatedBytes => size_of::<String>() as u64,
        Field::Repeated64 | Field::RepeatedVarint => 8,
        Field::Inline(_) | Field::Bytes | Field::Scalar => 0,
    }
}

/// Adds the cost of one length-delimited field of `kind`.
fn walk_delimited(kind: Field, payload: &[u8], depth: usize, cost: &mut DecodeCost) -> Option<()> {
    let length = payload.len() as u64;
    match kind {
        Field::Inline(child) => walk(child, payload, depth + 1, cost),
        Field::Repeated(child) => {
            cost.elements += 1;
            cost.decoded_bytes += 2 * element_bytes(child);
            walk(child, payload, depth + 1, cost)
        }
        Field::Bytes => {
            cost.decoded_bytes += text_bytes(length);
            Some(())
        }
        Field::RepeatedBytes => {
            cost.elements += 1;
            cost.decoded_bytes += 2 * size_of::<String>() as u64 + text_bytes(length);
            Some(())
        }
        // Packed: 8 bytes per element on the wire, 8 in memory.
        Field::Repeated64 => {
            count_scalars(kind, length / 8, cost);
            Some(())
        }
        // Packed varints: one element per byte below 0x80.
        Field::RepeatedVarint => {
            count_scalars(kind, payload.iter().filter(|&&b| b < 0x80).count() as u64, cost);
            Some(())
        }
        Field::Scalar => Some(()),
    }
}

/// Adds `elements` repeated scalars of `kind` (other kinds cost nothing here).
fn count_scalars(kind: Field, elements: u64, cost: &mut DecodeCost) {
    if matches!(kind, Field::Repeated64 | Field::RepeatedVarint) {
        cost.elements += elements;
        cost.decoded_bytes += 2 * 8 * elements;
    }
}

/// Skips a group (wire type 3) up to its end (wire type 4 with the same tag), as prost
/// skips an unknown field: nothing allocated.
fn skip_group(wire: &mut Wire<'_>, tag: u64, depth: usize) -> Option<()> {
    if depth > DEPTH_LIMIT {
        return None;
    }
    // Bounded: every pass consumes at least the key's byte.
    loop {
        let key = wire.varint()?;
        let (inner_tag, wire_type) = (key >> 3, key & 7);
        match wire_type {
            0 => {
                wire.varint()?;
            }
            1 => {
                wire.take(8)?;
            }
            2 => {
                let length = wire.varint()?;
                wire.take(length)?;
            }
            3 => skip_group(wire, inner_tag, depth + 1)?,
            4 if inner_tag == tag => return Some(()),
            5 => {
                wire.take(4)?;
            }
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
    use opentelemetry_proto::tonic::common::v1::any_value::Value;
    use prost::Message;

    use super::*;

    /// One resource, one scope, `records` log records.
    fn logs_request(records: Vec<LogRecord>) -> ExportLogsServiceRequest {
        ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                scope_logs: vec![ScopeLogs { log_records: records, ..ScopeLogs::default() }],
                ..ResourceLogs::default()
            }],
        }
    }

    /// What the decoded tree of a logs request really holds: every `Vec`'s and `String`'s
    /// capacity (the walk's estimate must be at least this).
    fn tree_bytes(request: &ExportLogsServiceRequest) -> u64 {
        fn attributes(values: &[KeyValue], capacity: usize) -> usize {
            capacity * size_of::<KeyValue>()
                + values
                    .iter()
                    .map(|kv| {
                        kv.key.capacity()
                            + match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                                Some(Value::StringValue(text)) => text.capacity(),
                                Some(Value::BytesValue(bytes)) => bytes.capacity(),
                                _ => 0,
                            }
                    })
                    .sum::<usize>()
        }
        let mut bytes = request.resource_logs.capacity() * size_of::<ResourceLogs>();
        for resource in &request.resource_logs {
            if let Some(r) = &resource.resource {
                bytes += attributes(&r.attributes, r.attributes.capacity());
            }
            bytes += resource.scope_logs.capacity() * size_of::<ScopeLogs>() + resource.schema_url.capacity();
            for scope in &resource.scope_logs {
                bytes += scope.log_records.capacity() * size_of::<LogRecord>();
                for record in &scope.log_records {
                    bytes += attributes(&record.attributes, record.attributes.capacity())
                        + record.severity_text.capacity()
                        + record.trace_id.capacity()
                        + record.span_id.capacity()
                        + record.event_name.capacity();
                    if let Some(Value::StringValue(text)) = record.body.as_ref().and_then(|b| b.value.as_ref()) {
                        bytes += text.capacity();
                    }
                }
            }
        }
        bytes as u64
    }

    /// A 1 MiB body of empty log records (2 wire bytes each) decoded into a vector of about
    /// 92 MiB: it is refused before decoding, naming the bound, and the walk counted at
    /// least what prost would have allocated.
    #[test]
    fn a_body_of_empty_records_is_refused_before_it_is_decoded() {
        let records = 1 << 19;
        let body = logs_request(vec![LogRecord::default(); records]).encode_to_vec();
        assert!(body.len() < (1 << 20) + 64, "{} bytes", body.len());
        let refused = check_decode_bounds(Signal::Logs, &body, &DecodeLimits::default()).unwrap_err();
        let BoundsError::Expansion { body_bytes, decoded_bytes, expansion_limit } = refused.clone() else {
            panic!("{refused:?}");
        };
        assert_eq!((body_bytes, expansion_limit), (body.len() as u64, 32));
        assert!(decoded_bytes >= (records * size_of::<LogRecord>()) as u64);
        assert!(refused.to_string().contains("decoded_expansion_limit 32"), "{refused}");
        // Cut short after the records: prost would still allocate them before failing.
        let mut cut = body.clone();
        cut.push(0xff);
        assert!(matches!(
            check_decode_bounds(Signal::Logs, &cut, &DecodeLimits::default()),
            Err(BoundsError::Expansion { .. })
        ));
        // The element count is a bound of its own.
        let few = logs_request(vec![LogRecord::default(); 11]).encode_to_vec();
        let limits = DecodeLimits { elements_limit: 12, expansion_limit: 1_000 };
        assert_eq!(
            check_decode_bounds(Signal::Logs, &few, &limits),
            Err(BoundsError::Elements { elements: 13, elements_limit: 12 })
        );
    }

    /// The walk's estimate covers what prost really allocates, for records with content.
    #[test]
    fn the_estimate_covers_the_decoded_tree() {
        let record = |index: usize| LogRecord {
            time_unix_nano: 7,
            severity_text: "INFO".to_owned(),
            body: Some(AnyValue { value: Some(Value::StringValue(format!("line {index}"))) }),
            attributes: (0..index % 5)
                .map(|a| KeyValue {
                    key: format!("key{a}"),
                    value: Some(AnyValue { value: Some(Value::StringValue("v".repeat(a))) }),
                    ..KeyValue::default()
                })
                .collect(),
            trace_id: vec![1; 16],
            span_id: vec![2; 8],
            ..LogRecord::default()
        };
        for count in [0, 1, 2, 3, 17, 100] {
            let body = logs_request((0..count).map(record).collect()).encode_to_vec();
            let cost = check_decode_bounds(Signal::Logs, &body, &DecodeLimits::default()).unwrap();
            let decoded = ExportLogsServiceRequest::decode(&body[..]).unwrap();
            assert!(cost.decoded_bytes >= tree_bytes(&decoded), "{count} records: {cost:?} < {}", tree_bytes(&decoded));
        }
        // Malformed bytes under the bounds are left to prost, whose error Dash0 answers.
        assert!(check_decode_bounds(Signal::Logs, &[0x0a, 0x05, 0x01], &DecodeLimits::default()).is_ok());
        assert!(check_decode_bounds(Signal::Traces, &[0x0b, 0x0c], &DecodeLimits::default()).is_ok());
    }

    /// Packed varints cost 8 bytes each in memory; groups are skipped like prost skips them.
    #[test]
    fn packed_scalars_and_groups_are_counted_as_prost_stores_them() {
        // Buckets { bucket_counts: [1; 100] } as field 2, packed.
        let mut buckets = vec![0x12, 100];
        buckets.extend([1u8; 100]);
        let mut cost = DecodeCost::default();
        walk(Msg::Buckets, &buckets, 0, &mut cost).unwrap();
        assert_eq!(cost, DecodeCost { decoded_bytes: 16 + 100 * 16, elements: 100 });
        // An unknown group holding a nested group, then one empty record.
        let mut scope = vec![0x1b, 0x0b, 0x08, 0x01, 0x0c, 0x1c];
        scope.extend([0x12, 0x00]);
        let mut cost = DecodeCost::default();
        walk(Msg::ScopeLogs, &scope, 0, &mut cost).unwrap();
        assert_eq!(cost.elements, 1);
        // A group that never ends is malformed.
        assert_eq!(walk(Msg::ScopeLogs, &[0x1b, 0x08, 0x01], 0, &mut DecodeCost::default()), None);
    }
}
