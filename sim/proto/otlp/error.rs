//! Decode errors. Decoding is strict (Dash0 must refuse what a real backend would, and a
//! corrupted record must surface, not be guessed at), and every refusal names the field
//! and the record (flat index within the request) that broke, so a checker or a log line
//! can point at it. Never a panic: the input is whatever arrived on the wire.

use std::borrow::Cow;
use std::fmt;

use crate::record::IdError;

/// Which OTLP signal a request carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Signal {
    /// ExportLogsServiceRequest.
    Logs,
    /// ExportTraceServiceRequest.
    Traces,
    /// ExportMetricsServiceRequest.
    Metrics,
}

impl Signal {
    /// "logs", "traces", "metrics".
    pub fn as_str(self) -> &'static str {
        match self {
            Signal::Logs => "logs",
            Signal::Traces => "traces",
            Signal::Metrics => "metrics",
        }
    }
}

/// What was wrong with the field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorKind {
    /// The bytes are not a valid protobuf message of the request type (whole request).
    Protobuf(String),
    /// A required field or attribute is absent (or empty).
    Missing,
    /// A byte field (trace_id, span_id) has the wrong length.
    WrongLength {
        /// Required bytes.
        expected: usize,
        /// Bytes found.
        actual: usize,
    },
    /// An id is all zero (W3C forbids it).
    ZeroId,
    /// An attribute or body has the wrong value type.
    WrongType {
        /// The type required.
        expected: &'static str,
        /// The type found.
        actual: &'static str,
    },
    /// The value is present and typed right but breaks a rule (the text says which).
    Invalid(Cow<'static, str>),
    /// The record lacks obsim's delivery identity (`obsim.source` / `obsim.seq`): it did
    /// not come from the simulated app — e.g. a real exporter's. Distinct so that Dash0 can
    /// count such records rather than treat them as corruption.
    MissingRecordId,
    /// The same attribute key appears twice.
    Duplicate,
    /// An extra attribute uses a key the mapping owns in another place.
    Reserved,
    /// A valid OTLP construct this mapping does not model (exponential histogram, summary).
    Unsupported,
}

/// A refused request or record: signal, where (resource and flat record index), which
/// field, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    /// The request's signal.
    pub signal: Signal,
    /// Index of the ResourceLogs/ResourceSpans/ResourceMetrics, if the error is inside one.
    pub resource_index: Option<usize>,
    /// Flat index of the record (log record, span, metric data point) within the whole
    /// request, counting across resources and scopes; `None` for resource- or request-level
    /// errors.
    pub record_index: Option<usize>,
    /// The field or attribute key (`trace_id`, `obsim.seq`, `resource.service.name`, …).
    pub field: Cow<'static, str>,
    /// What was wrong.
    pub kind: ErrorKind,
}

impl DecodeError {
    /// Whether the record merely lacks obsim's identity (a foreign record), as opposed to
    /// being malformed.
    pub fn is_missing_record_id(&self) -> bool {
        self.kind == ErrorKind::MissingRecordId
    }

    /// A whole-request protobuf error.
    pub(crate) fn protobuf(signal: Signal, error: prost::DecodeError) -> Self {
        Self {
            signal,
            resource_index: None,
            record_index: None,
            field: Cow::Borrowed("request"),
            kind: ErrorKind::Protobuf(error.to_string()),
        }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "otlp {}", self.signal.as_str())?;
        if let Some(r) = self.resource_index {
            write!(f, " resource {r}")?;
        }
        if let Some(i) = self.record_index {
            write!(f, " record {i}")?;
        }
        write!(f, ": field `{}`: ", self.field)?;
        match &self.kind {
            ErrorKind::Protobuf(e) => write!(f, "not a valid protobuf request: {e}"),
            ErrorKind::Missing => f.write_str("missing"),
            ErrorKind::WrongLength { expected, actual } => {
                write!(f, "{actual} bytes, expected {expected}")
            }
            ErrorKind::ZeroId => f.write_str("all-zero id is invalid"),
            ErrorKind::WrongType { expected, actual } => {
                write!(f, "expected {expected}, found {actual}")
            }
            ErrorKind::Invalid(rule) => f.write_str(rule),
            ErrorKind::MissingRecordId => f.write_str("missing obsim record id (not emitted by obsim)"),
            ErrorKind::Duplicate => f.write_str("appears more than once"),
            ErrorKind::Reserved => f.write_str("reserved key used as an extra attribute"),
            ErrorKind::Unsupported => f.write_str("not supported by this mapping"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// An error about one field, before the caller adds where it happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FieldError {
    pub(crate) field: Cow<'static, str>,
    pub(crate) kind: ErrorKind,
}

impl FieldError {
    pub(crate) fn new(field: impl Into<Cow<'static, str>>, kind: ErrorKind) -> Self {
        Self { field: field.into(), kind }
    }

    pub(crate) fn missing(field: impl Into<Cow<'static, str>>) -> Self {
        Self::new(field, ErrorKind::Missing)
    }

    pub(crate) fn invalid(field: impl Into<Cow<'static, str>>, rule: impl Into<Cow<'static, str>>) -> Self {
        Self::new(field, ErrorKind::Invalid(rule.into()))
    }

    /// Maps an id refusal on an OTLP bytes field; an empty field counts as missing.
    pub(crate) fn from_id(field: &'static str, error: IdError) -> Self {
        let kind = match error {
            IdError::WrongLength { actual: 0, .. } => ErrorKind::Missing,
            IdError::WrongLength { expected, actual, .. } => ErrorKind::WrongLength { expected, actual },
            IdError::AllZero { .. } => ErrorKind::ZeroId,
            IdError::NotLowercaseHex { .. } => ErrorKind::Invalid(Cow::Borrowed("not lowercase hex")),
        };
        Self::new(field, kind)
    }

    /// Places the error in the request.
    pub(crate) fn at(self, signal: Signal, resource_index: Option<usize>, record_index: Option<usize>) -> DecodeError {
        DecodeError { signal, resource_index, record_index, field: self.field, kind: self.kind }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_signal_place_and_field() {
        let e = FieldError::new("trace_id", ErrorKind::WrongLength { expected: 16, actual: 15 }).at(
            Signal::Logs,
            Some(0),
            Some(3),
        );
        assert_eq!(e.to_string(), "otlp logs resource 0 record 3: field `trace_id`: 15 bytes, expected 16");
        let id = FieldError::from_id(
            "span_id",
            IdError::WrongLength { id: "span_id", unit: "bytes", expected: 8, actual: 0 },
        );
        assert_eq!(id.kind, ErrorKind::Missing);
    }
}
