//! Log records ⇄ `ExportLogsServiceRequest`. This is what the shipper POSTs to Dash0's
//! `/v1/logs` and what Dash0 parses.

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::{LogRecord as ProtoLogRecord, ResourceLogs, ScopeLogs};

use super::attributes::{
    decode_resource, encode_resource, push_correlation, push_extras, scope, take_correlation, type_name,
};
use super::error::{DecodeError, ErrorKind, FieldError, Signal};
use super::{Batch, Decoded, decode_message};
use crate::record::{LogRecord, Resource, Severity, SpanId, TraceId};

/// One batch of log records sharing `resource` as a request.
pub fn encode_logs(resource: &Resource, records: &[LogRecord]) -> ExportLogsServiceRequest {
    encode_logs_batches([(resource, records)])
}

/// Several batches (e.g. one per machine) as one request, one ResourceLogs per batch, in
/// order.
pub fn encode_logs_batches<'a>(
    batches: impl IntoIterator<Item = (&'a Resource, &'a [LogRecord])>,
) -> ExportLogsServiceRequest {
    let batches = batches.into_iter();
    let mut resource_logs = Vec::with_capacity(batches.size_hint().0);
    for (resource, records) in batches {
        let mut log_records = Vec::with_capacity(records.len());
        log_records.extend(records.iter().map(encode_log));
        debug_assert_eq!(log_records.len(), records.len());
        resource_logs.push(ResourceLogs {
            resource: Some(encode_resource(resource)),
            scope_logs: vec![ScopeLogs { scope: Some(scope()), log_records, ..Default::default() }],
            ..Default::default()
        });
    }
    ExportLogsServiceRequest { resource_logs }
}

/// One record: times, severity number + text, string body, trace/span ids, then attributes.
fn encode_log(record: &LogRecord) -> ProtoLogRecord {
    let mut attributes = Vec::with_capacity(5 + record.attributes.len());
    push_correlation(&mut attributes, record.id, &record.job_id, record.machine_id.as_ref(), record.worker_id.as_ref());
    push_extras(&mut attributes, &record.attributes);
    ProtoLogRecord {
        time_unix_nano: record.time_unix_nano,
        observed_time_unix_nano: record.observed_time_unix_nano,
        severity_number: record.severity.number(),
        severity_text: record.severity.text().to_owned(),
        body: Some(AnyValue { value: Some(any_value::Value::StringValue(record.body.clone())) }),
        attributes,
        trace_id: record.trace_id.as_bytes().to_vec(),
        span_id: record.span_id.as_bytes().to_vec(),
        ..Default::default()
    }
}

/// One record back. Attributes are read first so that a foreign record is reported as
/// missing its obsim id rather than for whatever else it lacks.
fn decode_log(record: ProtoLogRecord) -> Result<LogRecord, FieldError> {
    let correlation = take_correlation(record.attributes)?;
    let trace_id = TraceId::from_slice(&record.trace_id).map_err(|e| FieldError::from_id("trace_id", e))?;
    let span_id = SpanId::from_slice(&record.span_id).map_err(|e| FieldError::from_id("span_id", e))?;
    let severity = Severity::from_number(record.severity_number)
        .ok_or_else(|| FieldError::invalid("severity_number", "must be 1..=24 (UNSPECIFIED is refused)"))?;
    let body = match record.body {
        Some(AnyValue { value: Some(any_value::Value::StringValue(s)) }) => s,
        None | Some(AnyValue { value: None }) => return Err(FieldError::missing("body")),
        other => {
            return Err(FieldError::new(
                "body",
                ErrorKind::WrongType { expected: "string", actual: type_name(&other) },
            ));
        }
    };
    Ok(LogRecord {
        time_unix_nano: record.time_unix_nano,
        observed_time_unix_nano: record.observed_time_unix_nano,
        severity,
        body,
        trace_id,
        span_id,
        job_id: correlation.job_id,
        machine_id: correlation.machine_id,
        worker_id: correlation.worker_id,
        id: correlation.id,
        attributes: correlation.extras,
    })
}

/// The one decode loop; `strict` stops at the first error.
fn decode_impl(request: ExportLogsServiceRequest, strict: bool) -> Result<Decoded<LogRecord>, DecodeError> {
    let mut decoded = Decoded::with_capacity(request.resource_logs.len());
    let mut index = 0usize;
    for (resource_index, resource_logs) in request.resource_logs.into_iter().enumerate() {
        let count: usize = resource_logs.scope_logs.iter().map(|s| s.log_records.len()).sum();
        let resource = match decode_resource(resource_logs.resource) {
            Ok(resource) => resource,
            Err(e) => {
                let e = e.at(Signal::Logs, Some(resource_index), None);
                if strict {
                    return Err(e);
                }
                decoded.reject(e, count);
                index += count;
                continue;
            }
        };
        let mut records = Vec::with_capacity(count);
        for scope_logs in resource_logs.scope_logs {
            for record in scope_logs.log_records {
                match decode_log(record) {
                    Ok(r) => records.push(r),
                    Err(e) => {
                        let e = e.at(Signal::Logs, Some(resource_index), Some(index));
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

/// Decodes a request strictly: every record valid, or the first error.
pub fn decode_logs(request: ExportLogsServiceRequest) -> Result<Vec<Batch<LogRecord>>, DecodeError> {
    decode_impl(request, true).map(|d| d.batches)
}

/// Decodes a request keeping the valid records and listing the refused ones.
pub fn decode_logs_partial(request: ExportLogsServiceRequest) -> Decoded<LogRecord> {
    decode_impl(request, false).expect("partial decoding collects errors instead of returning them")
}

/// Parses protobuf bytes and decodes them strictly.
pub fn decode_logs_bytes(bytes: &[u8]) -> Result<Vec<Batch<LogRecord>>, DecodeError> {
    decode_logs(decode_message(Signal::Logs, bytes)?)
}
