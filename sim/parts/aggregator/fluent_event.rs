//! What in_forward makes of one event: Fluentd's per-event judgement (`invalid_event?`,
//! `skip_invalid_event`, a zero time read as now), and a record written by a client other
//! than obsim's own agents mapped onto the pipeline's log record.
//!
//! Why here and not in the decoder: the decoder says what the bytes are (a float time, a
//! time outside an EventTime's range); whether that makes the event invalid, skipped or
//! stored is Fluentd's configuration (FIDELITY.md, Aggregator — Fluentd).

use std::collections::BTreeMap;

use crate::proto::forward::{Entry, NANOSECONDS_PER_SECOND, TimeForm};
use crate::record::{
    AttrValue, Attributes, JobId, LogRecord, MachineId, RecordId, Severity, SpanId, TraceId, WorkerId,
};

/// Fields of a foreign record read as the body, first present wins: `message` (most
/// logging libraries), `log` (Fluent Bit's tail and Docker), `msg`.
const BODY_KEYS: [&str; 3] = ["message", "log", "msg"];
/// Fields read as the severity text, first present wins.
const SEVERITY_KEYS: [&str; 2] = ["severity", "level"];
/// A foreign record's fields kept at most (the rest are named in the error): a bound on
/// the attribute list one record may grow.
pub(crate) const FOREIGN_FIELDS_LIMIT: usize = 256;
/// A time this far past the aggregator's own clock is recorded as odd (it is stored all
/// the same, as Fluentd stores it; Dash0 will refuse it later as out of range).
pub(crate) const ODD_FUTURE_NANOS: u64 = 24 * 3600 * 1_000_000_000;

/// Fluentd 1.19's `invalid_event?`: the time must be an Integer or an EventTime (the
/// decoder already refused a tag that is not a string and a record that is not a map).
pub(crate) fn is_invalid(entry: &Entry) -> bool {
    entry.time_form == TimeForm::Float
}

/// The time Fluentd stores for an event: `EventTime.now` when the time reads as zero
/// (`time.to_i == 0`, "for empty EventTime"), the event's own time otherwise. A saturated
/// zero (a negative number on the wire) is not an empty time and is kept.
pub(crate) fn stored_time_nanos(entry: &Entry, now_unix_nanos: u64) -> u64 {
    if entry.time.seconds == 0 && !entry.time_saturated {
        return now_unix_nanos;
    }
    u64::from(entry.time.seconds) * u64::from(NANOSECONDS_PER_SECOND) + u64::from(entry.time.nanoseconds)
}

/// Why a time is odd enough to record, if it is: it lay outside an EventTime's range on the
/// wire, or it is more than [`ODD_FUTURE_NANOS`] ahead of the aggregator's clock.
pub(crate) fn odd_time(entry: &Entry, stored_nanos: u64, now_unix_nanos: u64) -> Option<String> {
    let form = match entry.time_form {
        TimeForm::EventTime => "EventTime",
        TimeForm::Integer => "integer",
        TimeForm::Float => "float",
    };
    if entry.time_saturated {
        return Some(format!("{form} time outside 1970..2106 on the wire, kept as {} s", entry.time.seconds));
    }
    let ahead_nanos = stored_nanos.saturating_sub(now_unix_nanos);
    (ahead_nanos > ODD_FUTURE_NANOS).then(|| {
        format!(
            "{form} time {} s is {} h ahead of this host's clock",
            entry.time.seconds,
            ahead_nanos / 3_600_000_000_000
        )
    })
}

/// A record from a client other than obsim's agents (a logging library speaking Forward),
/// mapped onto the pipeline's log record: the correlation fields every log of this
/// pipeline carries are required (`trace_id`, `span_id`, `job_id`; `machine_id` and
/// `worker_id` optional), the body is the first of [`BODY_KEYS`], the severity the first of
/// [`SEVERITY_KEYS`] (INFO when absent), and every other field is kept as an attribute —
/// strings, integers and booleans as they are, anything else as its JSON text. `Err` says
/// which rule the record broke. The record's `id` is left for the caller to assign (its
/// ledger source), so only records that map take a seq.
pub(crate) fn foreign_record(record: &[u8], time_unix_nano: u64, observed_unix_nano: u64) -> Result<LogRecord, String> {
    let fields: BTreeMap<String, serde_json::Value> =
        rmp_serde::from_slice(record).map_err(|error| format!("record is not a map of named fields: {error}"))?;
    if fields.len() > FOREIGN_FIELDS_LIMIT {
        return Err(format!("record has {} fields, over FOREIGN_FIELDS_LIMIT {FOREIGN_FIELDS_LIMIT}", fields.len()));
    }
    let text = |key: &str| -> Result<Option<&str>, String> {
        match fields.get(key) {
            None => Ok(None),
            Some(serde_json::Value::String(text)) => Ok(Some(text)),
            Some(other) => Err(format!("field {key} must be a string, got {other}")),
        }
    };
    let required =
        |key: &str| text(key)?.ok_or_else(|| format!("record lacks {key}, which every log of the pipeline carries"));
    let trace_id: TraceId = required("trace_id")?.parse().map_err(|error| format!("trace_id: {error}"))?;
    let span_id: SpanId = required("span_id")?.parse().map_err(|error| format!("span_id: {error}"))?;
    let job_id = JobId::parse(required("job_id")?).map_err(|error| error.to_string())?;
    let machine_id = text("machine_id")?.map(MachineId::parse).transpose().map_err(|error| error.to_string())?;
    let worker_id = text("worker_id")?.map(WorkerId::parse).transpose().map_err(|error| error.to_string())?;
    let body_key = BODY_KEYS.into_iter().find(|key| fields.contains_key(*key));
    let body = match body_key.map(|key| &fields[key]) {
        Some(serde_json::Value::String(body)) => body.clone(),
        Some(other) => other.to_string(),
        None => String::new(),
    };
    let severity_key = SEVERITY_KEYS.into_iter().find(|key| fields.contains_key(*key));
    let severity = match severity_key.map(|key| &fields[key]) {
        Some(serde_json::Value::String(level)) => Severity::from_text(&level.to_ascii_uppercase())
            .or_else(|| (level.eq_ignore_ascii_case("warning")).then_some(Severity::Warn))
            .ok_or_else(|| format!("severity {level:?} is not one of TRACE, DEBUG, INFO, WARN, ERROR, FATAL"))?,
        Some(other) => return Err(format!("severity must be a string, got {other}")),
        None => Severity::Info,
    };
    let handled = |key: &str| {
        matches!(key, "trace_id" | "span_id" | "job_id" | "machine_id" | "worker_id")
            || Some(key) == body_key
            || Some(key) == severity_key
    };
    let mut attributes = Attributes::with_capacity(fields.len());
    for (key, value) in fields.iter().filter(|(key, _)| !handled(key)) {
        let value = match value {
            serde_json::Value::String(text) => AttrValue::Str(text.clone()),
            serde_json::Value::Bool(flag) => AttrValue::Bool(*flag),
            serde_json::Value::Number(number) if number.is_i64() => AttrValue::Int(number.as_i64().unwrap_or_default()),
            other => AttrValue::Str(other.to_string()),
        };
        // A key the pipeline's mapping owns (`service.name`, `obsim.*`) is kept under
        // `fluent.` so nothing the client sent is lost and no mapping is overwritten.
        if attributes.try_push(key.clone(), value.clone()).is_err() {
            attributes.try_push(format!("fluent.{key}"), value).map_err(|error| error.to_string())?;
        }
    }
    let record = LogRecord {
        time_unix_nano,
        observed_time_unix_nano: observed_unix_nano,
        severity,
        body,
        trace_id,
        span_id,
        job_id,
        machine_id,
        worker_id,
        id: RecordId::new(crate::record::SourceId(0), 0),
        attributes,
    };
    if !record.ids_consistent() {
        return Err("worker_id does not belong to machine_id".to_owned());
    }
    Ok(record)
}

/// An EventTime as Unix nanoseconds.
#[cfg(test)]
fn nanos(time: crate::proto::forward::EventTime) -> u64 {
    u64::from(time.seconds) * u64::from(NANOSECONDS_PER_SECOND) + u64::from(time.nanoseconds)
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::proto::forward::EventTime;

    const NOW: u64 = 1_764_340_000 * 1_000_000_000;

    fn entry(time: EventTime, form: TimeForm, saturated: bool) -> Entry {
        Entry { time, time_form: form, time_saturated: saturated, record: Bytes::from_static(&[0x80]) }
    }

    fn map(fields: serde_json::Value) -> Vec<u8> {
        rmp_serde::to_vec(&fields).unwrap()
    }

    #[test]
    fn a_float_time_is_invalid_and_integers_and_event_times_are_not() {
        let time = EventTime { seconds: 5, nanoseconds: 0 };
        assert!(is_invalid(&entry(time, TimeForm::Float, false)));
        assert!(!is_invalid(&entry(time, TimeForm::Integer, false)));
        assert!(!is_invalid(&entry(time, TimeForm::EventTime, false)));
    }

    #[test]
    fn a_zero_time_is_now_but_a_saturated_zero_is_kept() {
        let zero = EventTime::default();
        assert_eq!(stored_time_nanos(&entry(zero, TimeForm::Integer, false), NOW), NOW);
        assert_eq!(stored_time_nanos(&entry(zero, TimeForm::Integer, true), NOW), 0);
        let time = EventTime { seconds: 1_764_000_000, nanoseconds: 9 };
        assert_eq!(stored_time_nanos(&entry(time, TimeForm::EventTime, false), NOW), nanos(time));
    }

    #[test]
    fn far_future_and_saturated_times_are_odd() {
        let milliseconds = entry(EventTime { seconds: u32::MAX, nanoseconds: 0 }, TimeForm::Float, true);
        let why = odd_time(&milliseconds, nanos(milliseconds.time), NOW).unwrap();
        assert!(why.contains("outside 1970..2106"), "{why}");
        let tomorrow = EventTime { seconds: 1_764_340_000 + 2 * 86_400, nanoseconds: 0 };
        let why = odd_time(&entry(tomorrow, TimeForm::Integer, false), nanos(tomorrow), NOW).unwrap();
        assert!(why.contains("48 h ahead"), "{why}");
        let soon = EventTime { seconds: 1_764_340_060, nanoseconds: 0 };
        assert_eq!(odd_time(&entry(soon, TimeForm::EventTime, false), nanos(soon), NOW), None);
    }

    #[test]
    fn a_foreign_record_keeps_its_fields_as_attributes() {
        let record = map(serde_json::json!({
            "message": "render done",
            "level": "warning",
            "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
            "span_id": "00f067aa0ba902b7",
            "job_id": "job-0f8fad5b-d9cb-469f-a165-70867728950e",
            "machine_id": "openai-7",
            "worker_id": "openai-7-worker-2",
            "attempt": 3,
            "gpu": true,
            "ratio": 0.5,
            "service.name": "mine",
        }));
        let log = foreign_record(&record, 7, 8).unwrap();
        assert_eq!((log.time_unix_nano, log.observed_time_unix_nano), (7, 8));
        assert_eq!((log.body.as_str(), log.severity), ("render done", Severity::Warn));
        assert_eq!(log.trace_id.to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(log.worker_id.unwrap().to_string(), "openai-7-worker-2");
        assert_eq!(log.attributes.get("attempt"), Some(&AttrValue::Int(3)));
        assert_eq!(log.attributes.get("gpu"), Some(&AttrValue::Bool(true)));
        assert_eq!(log.attributes.get("ratio"), Some(&AttrValue::Str("0.5".into())));
        assert_eq!(log.attributes.get("fluent.service.name"), Some(&AttrValue::Str("mine".into())));
        assert_eq!(log.attributes.len(), 4);
    }

    #[test]
    fn a_foreign_record_without_the_correlation_fields_names_the_one_missing() {
        let record = map(serde_json::json!({"message": "hi", "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736"}));
        let error = foreign_record(&record, 1, 1).unwrap_err();
        assert_eq!(error, "record lacks span_id, which every log of the pipeline carries");
        let bad_level = map(serde_json::json!({
            "level": "loud",
            "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
            "span_id": "00f067aa0ba902b7",
            "job_id": "job-0f8fad5b-d9cb-469f-a165-70867728950e",
        }));
        let error = foreign_record(&bad_level, 1, 1).unwrap_err();
        assert!(error.contains("\"loud\""), "{error}");
    }
}
