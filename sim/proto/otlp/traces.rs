//! Spans ⇄ `ExportTraceServiceRequest`. This is what the collector exports to Dash0 (gRPC
//! :4317 or HTTP `/v1/traces`). Span events and links are not modelled: the encoder writes
//! none and the decoder ignores any.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span as ProtoSpan, Status};

use super::attributes::{decode_resource, encode_resource, push_correlation, push_extras, scope, take_correlation};
use super::error::{DecodeError, FieldError, Signal};
use super::{Batch, Decoded, decode_message};
use crate::record::{Resource, Span, SpanId, SpanKind, SpanStatus, TraceId};

/// One batch of spans sharing `resource` as a request.
pub fn encode_spans(resource: &Resource, spans: &[Span]) -> ExportTraceServiceRequest {
    encode_spans_batches([(resource, spans)])
}

/// Several batches as one request, one ResourceSpans per batch, in order.
pub fn encode_spans_batches<'a>(
    batches: impl IntoIterator<Item = (&'a Resource, &'a [Span])>,
) -> ExportTraceServiceRequest {
    let batches = batches.into_iter();
    let mut resource_spans = Vec::with_capacity(batches.size_hint().0);
    for (resource, spans) in batches {
        let mut encoded = Vec::with_capacity(spans.len());
        encoded.extend(spans.iter().map(encode_span));
        debug_assert_eq!(encoded.len(), spans.len());
        resource_spans.push(ResourceSpans {
            resource: Some(encode_resource(resource)),
            scope_spans: vec![ScopeSpans { scope: Some(scope()), spans: encoded, ..Default::default() }],
            ..Default::default()
        });
    }
    ExportTraceServiceRequest { resource_spans }
}

/// One span; the status is omitted when unset (as SDKs do).
fn encode_span(span: &Span) -> ProtoSpan {
    assert!(span.end_time_unix_nano >= span.start_time_unix_nano, "span ends before it starts");
    let mut attributes = Vec::with_capacity(5 + span.attributes.len());
    push_correlation(&mut attributes, span.id, &span.job_id, span.machine_id.as_ref(), span.worker_id.as_ref());
    push_extras(&mut attributes, &span.attributes);
    let status = match &span.status {
        SpanStatus::Unset => None,
        SpanStatus::Ok => Some(Status { code: 1, message: String::new() }),
        SpanStatus::Error { message } => Some(Status { code: 2, message: message.clone() }),
    };
    ProtoSpan {
        trace_id: span.trace_id.as_bytes().to_vec(),
        span_id: span.span_id.as_bytes().to_vec(),
        parent_span_id: span.parent_span_id.map(|p| p.as_bytes().to_vec()).unwrap_or_default(),
        name: span.name.clone(),
        kind: span.kind.number(),
        start_time_unix_nano: span.start_time_unix_nano,
        end_time_unix_nano: span.end_time_unix_nano,
        attributes,
        status,
        ..Default::default()
    }
}

/// One span back; attributes first (foreign spans are reported as missing the obsim id).
fn decode_span(span: ProtoSpan) -> Result<Span, FieldError> {
    let correlation = take_correlation(span.attributes)?;
    let trace_id = TraceId::from_slice(&span.trace_id).map_err(|e| FieldError::from_id("trace_id", e))?;
    let span_id = SpanId::from_slice(&span.span_id).map_err(|e| FieldError::from_id("span_id", e))?;
    let parent_span_id = if span.parent_span_id.is_empty() {
        None
    } else {
        Some(SpanId::from_slice(&span.parent_span_id).map_err(|e| FieldError::from_id("parent_span_id", e))?)
    };
    let kind = SpanKind::from_number(span.kind)
        .ok_or_else(|| FieldError::invalid("kind", "must be 1..=5 (SPAN_KIND_UNSPECIFIED is refused)"))?;
    if span.end_time_unix_nano < span.start_time_unix_nano {
        return Err(FieldError::invalid("end_time_unix_nano", "must not be before start_time_unix_nano"));
    }
    let status = match span.status {
        None => SpanStatus::Unset,
        Some(Status { code: 0, .. }) => SpanStatus::Unset,
        Some(Status { code: 1, .. }) => SpanStatus::Ok,
        Some(Status { code: 2, message }) => SpanStatus::Error { message },
        Some(_) => {
            return Err(FieldError::invalid("status.code", "must be 0 (unset), 1 (ok) or 2 (error)"));
        }
    };
    Ok(Span {
        trace_id,
        span_id,
        parent_span_id,
        name: span.name,
        kind,
        start_time_unix_nano: span.start_time_unix_nano,
        end_time_unix_nano: span.end_time_unix_nano,
        status,
        job_id: correlation.job_id,
        machine_id: correlation.machine_id,
        worker_id: correlation.worker_id,
        id: correlation.id,
        attributes: correlation.extras,
    })
}

/// The one decode loop; `strict` stops at the first error.
fn decode_impl(request: ExportTraceServiceRequest, strict: bool) -> Result<Decoded<Span>, DecodeError> {
    let mut decoded = Decoded::with_capacity(request.resource_spans.len());
    let mut index = 0usize;
    for (resource_index, resource_spans) in request.resource_spans.into_iter().enumerate() {
        let count: usize = resource_spans.scope_spans.iter().map(|s| s.spans.len()).sum();
        let resource = match decode_resource(resource_spans.resource) {
            Ok(resource) => resource,
            Err(e) => {
                let e = e.at(Signal::Traces, Some(resource_index), None);
                if strict {
                    return Err(e);
                }
                decoded.reject(e, count);
                index += count;
                continue;
            }
        };
        let mut records = Vec::with_capacity(count);
        for scope_spans in resource_spans.scope_spans {
            for span in scope_spans.spans {
                match decode_span(span) {
                    Ok(s) => records.push(s),
                    Err(e) => {
                        let e = e.at(Signal::Traces, Some(resource_index), Some(index));
                        if strict {
                            return Err(e);
                        }
                        decoded.reject(e, 1);
                    }
                }
                index += 1;
            }
        }
        decoded.batches.push(Batch { resource, records });
    }
    debug_assert_eq!(decoded.accepted_records() + decoded.rejected_records, index);
    Ok(decoded)
}

/// Decodes a request strictly: every span valid, or the first error.
pub fn decode_spans(request: ExportTraceServiceRequest) -> Result<Vec<Batch<Span>>, DecodeError> {
    decode_impl(request, true).map(|d| d.batches)
}

/// Decodes a request keeping the valid spans and listing the refused ones.
pub fn decode_spans_partial(request: ExportTraceServiceRequest) -> Decoded<Span> {
    decode_impl(request, false).expect("partial decoding collects errors instead of returning them")
}

/// Parses protobuf bytes and decodes them strictly.
pub fn decode_spans_bytes(bytes: &[u8]) -> Result<Vec<Batch<Span>>, DecodeError> {
    decode_spans(decode_message(Signal::Traces, bytes)?)
}
