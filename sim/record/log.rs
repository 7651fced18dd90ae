//! The log record: what a worker or service writes, what Fluent Bit ships in Forward frames
//! (as a msgpack map, `rmp_serde::to_vec_named`), what dev hosts POST to Fluentd as JSON, and
//! what the shipper turns into OTLP for Dash0.
//!
//! The msgpack/JSON form is one flat map, ids as lowercase hex / canonical text:
//! `time_unix_nano, observed_time_unix_nano, severity, body, trace_id, span_id, job_id,
//! [machine_id], [worker_id], obsim.source, obsim.seq, [attributes]`. Unknown fields are
//! ignored on reading (Fluentd enrichment may add some; read those separately).

use std::fmt;

use serde::de::{self, Visitor};
use serde::ser::SerializeStruct;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::attributes::{Attributes, keys};
use super::correlation::{JobId, MachineId, WorkerId};
use super::ids::{SpanId, TraceId};
use super::record_id::{RecordId, SourceId};

/// Log severity: the six OTel base levels, mapped to OTLP `SeverityNumber` (1, 5, 9, 13, 17,
/// 21) and text ("TRACE" … "FATAL").
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// Fine-grained tracing.
    Trace,
    /// Debugging.
    Debug,
    /// Normal operation.
    Info,
    /// Something unexpected, not yet an error.
    Warn,
    /// An error.
    Error,
    /// The process cannot continue.
    Fatal,
}

impl Severity {
    /// All levels, lowest first.
    pub const ALL: [Severity; 6] =
        [Severity::Trace, Severity::Debug, Severity::Info, Severity::Warn, Severity::Error, Severity::Fatal];

    /// The OTLP `SeverityNumber` of the level's base value.
    pub fn number(self) -> i32 {
        match self {
            Severity::Trace => 1,
            Severity::Debug => 5,
            Severity::Info => 9,
            Severity::Warn => 13,
            Severity::Error => 17,
            Severity::Fatal => 21,
        }
    }

    /// The level for an OTLP `SeverityNumber` (1..=24; e.g. INFO2 = 10 reads as Info), or
    /// `None` for UNSPECIFIED (0) and out-of-range numbers.
    pub(crate) fn from_number(number: i32) -> Option<Severity> {
        if !(1..=24).contains(&number) {
            return None;
        }
        Some(Self::ALL[((number - 1) / 4) as usize])
    }

    /// The severity text ("INFO", …), as OTLP `severity_text` and the msgpack/JSON field.
    pub fn text(self) -> &'static str {
        match self {
            Severity::Trace => "TRACE",
            Severity::Debug => "DEBUG",
            Severity::Info => "INFO",
            Severity::Warn => "WARN",
            Severity::Error => "ERROR",
            Severity::Fatal => "FATAL",
        }
    }

    /// The level written exactly as [`text`](Self::text) writes it.
    pub(crate) fn from_text(text: &str) -> Option<Severity> {
        Self::ALL.into_iter().find(|s| s.text() == text)
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.text())
    }
}

impl Serialize for Severity {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.text())
    }
}

impl<'de> Deserialize<'de> for Severity {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SeverityVisitor;
        impl Visitor<'_> for SeverityVisitor {
            type Value = Severity;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("one of TRACE, DEBUG, INFO, WARN, ERROR, FATAL")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Severity, E> {
                Severity::from_text(v).ok_or_else(|| E::custom(format!("unknown severity {v:?}")))
            }
        }
        deserializer.deserialize_str(SeverityVisitor)
    }
}

/// One log record with its correlation ids and delivery identity.
///
/// `job_id` is always present (the app only logs inside jobs); `machine_id` and `worker_id`
/// are absent for records written before a machine took the job (the API's). When both are
/// present they should agree ([`LogRecord::ids_consistent`]); that is the checkers' to judge,
/// not the wire's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord {
    /// When the app wrote it, on the emitting host's clock.
    pub time_unix_nano: u64,
    /// When the first collecting hop saw it (host clock; the app sets it equal to
    /// `time_unix_nano` and agents may restamp).
    pub observed_time_unix_nano: u64,
    /// Level.
    pub severity: Severity,
    /// The message.
    pub body: String,
    /// The job's trace.
    pub trace_id: TraceId,
    /// The span the record was written in.
    pub span_id: SpanId,
    /// The job.
    pub job_id: JobId,
    /// The machine, once one holds the job.
    pub machine_id: Option<MachineId>,
    /// The worker, once one runs the job.
    pub worker_id: Option<WorkerId>,
    /// Delivery identity for the ledger.
    pub id: RecordId,
    /// Extra attributes (few, ordered).
    pub attributes: Attributes,
}

impl LogRecord {
    /// Whether `worker_id` (if any) belongs to `machine_id`, and `machine_id` is present
    /// whenever `worker_id` is.
    pub fn ids_consistent(&self) -> bool {
        match (&self.machine_id, &self.worker_id) {
            (_, None) => true,
            (Some(m), Some(w)) => w.belongs_to(m),
            (None, Some(_)) => false,
        }
    }
}

impl Serialize for LogRecord {
    /// The flat map described in the module docs; optional fields are omitted when absent.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let len = 9
            + usize::from(self.machine_id.is_some())
            + usize::from(self.worker_id.is_some())
            + usize::from(!self.attributes.is_empty());
        let mut st = serializer.serialize_struct("LogRecord", len)?;
        st.serialize_field("time_unix_nano", &self.time_unix_nano)?;
        st.serialize_field("observed_time_unix_nano", &self.observed_time_unix_nano)?;
        st.serialize_field("severity", &self.severity)?;
        st.serialize_field("body", &self.body)?;
        st.serialize_field(keys::TRACE_ID, &self.trace_id)?;
        st.serialize_field(keys::SPAN_ID, &self.span_id)?;
        st.serialize_field(keys::JOB_ID, &self.job_id)?;
        if let Some(m) = &self.machine_id {
            st.serialize_field(keys::MACHINE_ID, m)?;
        }
        if let Some(w) = &self.worker_id {
            st.serialize_field(keys::WORKER_ID, w)?;
        }
        st.serialize_field(keys::OBSIM_SOURCE, &self.id.source)?;
        st.serialize_field(keys::OBSIM_SEQ, &self.id.seq)?;
        if !self.attributes.is_empty() {
            st.serialize_field("attributes", &self.attributes)?;
        }
        st.end()
    }
}

/// The owned shape read from msgpack/JSON; moved into a [`LogRecord`] without copies.
#[derive(Deserialize)]
struct LogRecordFields {
    time_unix_nano: u64,
    observed_time_unix_nano: u64,
    severity: Severity,
    body: String,
    trace_id: TraceId,
    span_id: SpanId,
    job_id: JobId,
    #[serde(default)]
    machine_id: Option<MachineId>,
    #[serde(default)]
    worker_id: Option<WorkerId>,
    #[serde(rename = "obsim.source")]
    source: SourceId,
    #[serde(rename = "obsim.seq")]
    seq: u64,
    #[serde(default)]
    attributes: Attributes,
}

impl<'de> Deserialize<'de> for LogRecord {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let f = LogRecordFields::deserialize(deserializer)?;
        if f.seq > RecordId::MAX_SEQ {
            return Err(de::Error::custom(format!("obsim.seq {} exceeds i64", f.seq)));
        }
        Ok(LogRecord {
            time_unix_nano: f.time_unix_nano,
            observed_time_unix_nano: f.observed_time_unix_nano,
            severity: f.severity,
            body: f.body,
            trace_id: f.trace_id,
            span_id: f.span_id,
            job_id: f.job_id,
            machine_id: f.machine_id,
            worker_id: f.worker_id,
            id: RecordId::new(f.source, f.seq),
            attributes: f.attributes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{MachineType, SourceId};
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn sample() -> LogRecord {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let machine = MachineId::new(MachineType::Openai, "7").unwrap();
        LogRecord {
            time_unix_nano: 1_700_000_000_000_000_000,
            observed_time_unix_nano: 1_700_000_000_000_000_001,
            severity: Severity::Warn,
            body: "retrying".into(),
            trace_id: TraceId::random(&mut rng),
            span_id: SpanId::random(&mut rng),
            job_id: JobId::random(&mut rng),
            worker_id: Some(WorkerId::new(&machine, 2)),
            machine_id: Some(machine),
            id: RecordId::new(SourceId(4), 99),
            attributes: Attributes::new().with("attempt", 2i64).with("gpu", true),
        }
    }

    #[test]
    fn severity_numbers() {
        for s in Severity::ALL {
            assert_eq!(Severity::from_number(s.number()), Some(s));
            assert_eq!(Severity::from_text(s.text()), Some(s));
        }
        assert_eq!(Severity::from_number(10), Some(Severity::Info));
        assert_eq!(Severity::from_number(0), None);
        assert_eq!(Severity::from_number(25), None);
    }

    #[test]
    fn json_is_flat_with_hex_ids() {
        let r = sample();
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["trace_id"], r.trace_id.to_string());
        assert_eq!(json["obsim.seq"], 99);
        assert_eq!(json["severity"], "WARN");
        assert_eq!(json["worker_id"], "openai-7-worker-2");
        let back: LogRecord = serde_json::from_value(json).unwrap();
        assert_eq!(back, r);
        assert!(back.ids_consistent());
    }

    #[test]
    fn msgpack_named_round_trip() {
        let mut r = sample();
        r.machine_id = None;
        r.worker_id = None;
        r.attributes = Attributes::new();
        let bytes = rmp_serde::to_vec_named(&r).unwrap();
        assert_eq!(bytes[0], 0x80 | 9, "a fixmap of exactly the present fields");
        let back: LogRecord = rmp_serde::from_slice(&bytes).unwrap();
        assert_eq!(back, r);
    }
}
