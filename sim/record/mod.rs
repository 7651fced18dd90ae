//! The records every part of the simulated pipeline carries: log records, spans and metric
//! points, the resource that describes their origin, and the identifiers that tie them
//! together (W3C trace/span ids and `traceparent`, the EMP correlation ids `job_id`,
//! `machine_id`, `worker_id`, and obsim's own delivery identity [`RecordId`]).
//!
//! Everything here is plain data with validated constructors: a value of one of these types
//! is always well formed, so the wire mappings (Forward/msgpack, JSON, OTLP) and the checkers
//! never re-validate what the type system already guarantees. Randomness only ever comes from
//! a caller-provided RNG (see ARCHITECTURE.md §2): same seed, same ids.

pub mod attributes;
pub mod correlation;
pub mod ids;
pub mod log;
pub mod metric;
pub mod record_id;
pub mod resource;
pub mod span;
pub mod traceparent;

pub use attributes::{AttrValue, AttributeError, Attributes, is_reserved_key, keys};
pub use correlation::{CorrelationError, JobId, MachineId, MachineType, WorkerId};
pub use ids::{IdError, SpanId, TraceId};
pub use log::{LogRecord, Severity};
pub use metric::{HistogramData, MetricPoint, MetricValue, Number, Temporality};
pub use record_id::{RecordId, SourceId};
pub use resource::Resource;
pub use span::{Span, SpanKind, SpanStatus};
pub use traceparent::{TraceParent, TraceParentError};
