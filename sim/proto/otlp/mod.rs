//! OTLP: the pipeline's records ([`crate::record`]) mapped to and from the protobuf export
//! requests (`ExportLogsServiceRequest`, `ExportTraceServiceRequest`,
//! `ExportMetricsServiceRequest`, the prost types of `opentelemetry-proto`).
//!
//! Encoding takes batches of records that share a [`Resource`] and writes one
//! ResourceX → one ScopeX (scope name "obsim") per batch, in order, so identical input gives
//! identical bytes. Decoding is strict and never panics; it gives the batches back, or a
//! [`DecodeError`] naming the field and the record. The `*_partial` decoders keep the good
//! records and list the refused ones (what OTLP `partial_success` reports); records without
//! obsim's identity (real exporters) are refused with [`ErrorKind::MissingRecordId`].
//!
//! Wire conventions every hop relies on:
//! - log and span attributes: `obsim.source` (int), `obsim.seq` (int), `job_id`,
//!   `machine_id`, `worker_id` (strings; the last two only when known), then extras;
//! - resource attributes: `service.name`, `machine.id`, `deployment.environment`,
//!   `cloud.region`, then extras;
//! - severity: base SeverityNumber + text; span kind never UNSPECIFIED; sums and histograms
//!   carry their temporality; consecutive metric points of one metric share a `Metric`.

pub mod attributes;
pub mod bounds;
pub mod error;
pub mod logs;
pub mod metrics;
pub mod rpc_status;
pub mod traces;

pub use attributes::{encode_resource, scope};
pub use bounds::{
    BoundsError, DECODED_BYTES_ALLOWANCE, DECODED_ELEMENTS_LIMIT_DEFAULT, DECODED_EXPANSION_LIMIT_DEFAULT, DecodeCost,
    DecodeLimits, check_decode_bounds,
};
pub use error::{DecodeError, ErrorKind, Signal};
pub use logs::{decode_logs, decode_logs_bytes, decode_logs_partial, encode_logs, encode_logs_batches};
pub use metrics::{
    decode_metrics, decode_metrics_bytes, decode_metrics_partial, encode_metrics, encode_metrics_batches,
};
pub use traces::{decode_spans, decode_spans_bytes, decode_spans_partial, encode_spans, encode_spans_batches};

/// The request types, re-exported so that users need not spell the proto paths.
pub use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
pub use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
pub use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;

use crate::record::Resource;

/// The header naming the dataset (Dash0's own header, sent with every OTLP export; gRPC metadata keys are lowercase).
pub(crate) const DATASET_HEADER: &str = "dash0-dataset";

/// Records that share one resource: what one ResourceLogs/ResourceSpans/ResourceMetrics
/// holds (all of its scopes flattened, in order).
#[derive(Debug, Clone, PartialEq)]
pub struct Batch<T> {
    /// Who emitted them.
    pub resource: Resource,
    /// The records, in wire order.
    pub records: Vec<T>,
}

/// The outcome of a partial decode: the accepted records by resource, and every refusal.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded<T> {
    /// Accepted records (a resource whose own attributes were refused yields no batch).
    pub batches: Vec<Batch<T>>,
    /// One error per refused record, or per refused resource / metric (which refuses all
    /// records in it).
    pub errors: Vec<DecodeError>,
    /// How many records (log records, spans, data points) were refused in total: what
    /// `partial_success.rejected_*` reports.
    pub rejected_records: usize,
}

impl<T> Decoded<T> {
    /// Empty, with room for one batch per resource of the request.
    pub(crate) fn with_capacity(resources: usize) -> Self {
        Self { batches: Vec::with_capacity(resources), errors: Vec::new(), rejected_records: 0 }
    }

    /// Records one refusal covering `records` records.
    pub(crate) fn reject(&mut self, error: DecodeError, records: usize) {
        self.errors.push(error);
        self.rejected_records += records;
    }

    /// Records accepted.
    pub fn accepted_records(&self) -> usize {
        self.batches.iter().map(|b| b.records.len()).sum()
    }

    /// Records refused only because they lack obsim's identity (foreign records).
    pub fn missing_record_id_count(&self) -> usize {
        self.errors.iter().filter(|e| e.is_missing_record_id()).count()
    }
}

/// Serializes a request (or any prost message) to protobuf bytes, sized exactly once.
pub fn encode_to_vec(message: &impl prost::Message) -> Vec<u8> {
    message.encode_to_vec()
}

/// Parses protobuf bytes as message `M`; a malformed message is an
/// [`ErrorKind::Protobuf`] error for `signal`.
pub fn decode_message<M: prost::Message + Default>(signal: Signal, bytes: &[u8]) -> Result<M, DecodeError> {
    M::decode(bytes).map_err(|e| DecodeError::protobuf(signal, e))
}
