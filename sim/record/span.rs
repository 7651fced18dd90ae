//! The span: one timed operation of a job (API `job.submitted`, worker `job.executing`,
//! service calls), shipped by the OTel collector to Dash0. Parent links form one tree per
//! job; the checkers rebuild it from `trace_id`, `span_id` and `parent_span_id`.

use serde::{Deserialize, Serialize};

use super::attributes::Attributes;
use super::correlation::{JobId, MachineId, WorkerId};
use super::ids::{SpanId, TraceId};
use super::record_id::RecordId;

/// OTLP span kinds (UNSPECIFIED is not representable: we always say what a span is).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SpanKind {
    /// In-process work.
    Internal,
    /// Handling a remote request.
    Server,
    /// Making a remote request.
    Client,
    /// Enqueueing a message (API pushing a job).
    Producer,
    /// Dequeueing a message (machine taking a job).
    Consumer,
}

impl SpanKind {
    /// All kinds, in OTLP number order.
    pub const ALL: [SpanKind; 5] =
        [SpanKind::Internal, SpanKind::Server, SpanKind::Client, SpanKind::Producer, SpanKind::Consumer];

    /// The OTLP `SpanKind` number (1..=5).
    pub fn number(self) -> i32 {
        match self {
            SpanKind::Internal => 1,
            SpanKind::Server => 2,
            SpanKind::Client => 3,
            SpanKind::Producer => 4,
            SpanKind::Consumer => 5,
        }
    }

    /// The kind for an OTLP number, `None` for UNSPECIFIED (0) or unknown numbers.
    pub(crate) fn from_number(number: i32) -> Option<SpanKind> {
        Self::ALL.into_iter().find(|k| k.number() == number)
    }
}

/// A span's outcome (OTLP `Status`); a message only exists for errors.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SpanStatus {
    /// Not set by the instrumentation.
    Unset,
    /// Explicitly successful.
    Ok,
    /// Failed, with a description.
    Error {
        /// What went wrong.
        message: String,
    },
}

impl SpanStatus {
    /// The OTLP `StatusCode` number (0 unset, 1 ok, 2 error).
    pub fn code(&self) -> i32 {
        match self {
            SpanStatus::Unset => 0,
            SpanStatus::Ok => 1,
            SpanStatus::Error { .. } => 2,
        }
    }
}

/// One span with its correlation ids and delivery identity. As with logs, `machine_id` and
/// `worker_id` are absent for spans opened before a machine holds the job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Span {
    /// The job's trace.
    pub trace_id: TraceId,
    /// This span.
    pub span_id: SpanId,
    /// The parent span; `None` for the job's root span.
    pub parent_span_id: Option<SpanId>,
    /// Operation name (`job.executing`, …).
    pub name: String,
    /// Kind.
    pub kind: SpanKind,
    /// Start, host clock.
    pub start_time_unix_nano: u64,
    /// End, host clock; never before the start.
    pub end_time_unix_nano: u64,
    /// Outcome.
    pub status: SpanStatus,
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

impl Span {}
