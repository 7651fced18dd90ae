//! What Dash0 stored, with the true time it was ingested: the checkers' view of the end of
//! the pipeline (correlation, metric totals, latency per record).
//!
//! Why outside the host: the integrator creates the store next to the world, so what Dash0
//! stored survives a crash of the Dash0 host (a real backend's storage is durable) and can
//! be read after the run. Records are kept as the batches they arrived in: one allocation
//! per request, not per record, and the ingest time and dataset are stored once per batch.

use std::sync::{Arc, Mutex};

use crate::record::{LogRecord, MetricPoint, Resource, Span};

/// Which protocol carried a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Transport {
    /// OTLP/HTTP protobuf on :4318.
    Http,
    /// OTLP/gRPC on :4317.
    Grpc,
}

impl Transport {
    /// "http" or "grpc", for events.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Http => "http",
            Transport::Grpc => "grpc",
        }
    }
}

/// Records of one resource from one request, as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredBatch<T> {
    /// True simulated time (nanoseconds since the run began) at which Dash0 stored them.
    pub(crate) ingest_true_nanos: u64,
    /// The dataset they were written to.
    pub dataset: Arc<str>,
    /// The protocol they came by.
    pub transport: Transport,
    /// Who emitted them.
    pub resource: Resource,
    /// The records, in wire order.
    pub records: Vec<T>,
}

/// Counts of what Dash0 did, per signal.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SignalCounts {
    /// Requests answered with success (including partial success).
    pub requests_accepted: u64,
    /// Requests refused as a whole (auth, scripted errors, rate limit, size, bad protobuf).
    pub requests_refused: u64,
    /// Records stored.
    pub(crate) records_stored: u64,
    /// Records stored that carry no obsim identity (a real exporter's): counted only.
    pub(crate) foreign_records: u64,
    /// Records refused for their timestamp (`dash0_timestamp_range`).
    pub records_refused_timestamp: u64,
    /// Records refused as invalid (partial success with the decoder's reason).
    pub(crate) records_refused_invalid: u64,
}

/// Per-signal counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoreCounts {
    pub logs: SignalCounts,
    pub traces: SignalCounts,
    pub metrics: SignalCounts,
}

#[derive(Default)]
struct StoreInner {
    logs: Vec<StoredBatch<LogRecord>>,
    spans: Vec<StoredBatch<Span>>,
    metric_points: Vec<StoredBatch<MetricPoint>>,
    counts: StoreCounts,
}

/// Everything Dash0 stored. Cloning shares it.
#[derive(Clone, Default)]
pub struct Dash0Store {
    inner: Arc<Mutex<StoreInner>>,
}

impl Dash0Store {
    /// An empty store.
    pub fn new() -> Self {
        Dash0Store::default()
    }

    /// Reads the stored log batches, in ingest order.
    pub fn with_logs<R>(&self, read: impl FnOnce(&[StoredBatch<LogRecord>]) -> R) -> R {
        read(&self.lock().logs)
    }

    /// Reads the stored span batches, in ingest order.
    pub fn with_spans<R>(&self, read: impl FnOnce(&[StoredBatch<Span>]) -> R) -> R {
        read(&self.lock().spans)
    }

    /// Reads the stored metric point batches, in ingest order.
    pub(crate) fn with_metric_points<R>(&self, read: impl FnOnce(&[StoredBatch<MetricPoint>]) -> R) -> R {
        read(&self.lock().metric_points)
    }

    /// Reads the stored logs, spans and metric points under one lock, each in ingest order:
    /// the query layer (`query.rs`) indexes all three in one consistent view.
    pub(crate) fn with_stored<R>(
        &self,
        read: impl FnOnce(&[StoredBatch<LogRecord>], &[StoredBatch<Span>], &[StoredBatch<MetricPoint>]) -> R,
    ) -> R {
        let inner = self.lock();
        read(&inner.logs, &inner.spans, &inner.metric_points)
    }

    /// Every stored log record with its ingest true time (copies: for tests and reports).
    pub fn logs(&self) -> Vec<(LogRecord, u64)> {
        self.with_logs(flatten)
    }

    /// Every stored span with its ingest true time (copies).
    pub fn spans(&self) -> Vec<(Span, u64)> {
        self.with_spans(flatten)
    }

    /// Every stored metric point with its ingest true time (copies).
    pub fn metric_points(&self) -> Vec<(MetricPoint, u64)> {
        self.with_metric_points(flatten)
    }

    /// Log records stored.
    pub fn logs_count(&self) -> usize {
        self.lock().logs.iter().map(|batch| batch.records.len()).sum()
    }

    /// Spans stored.
    pub fn spans_count(&self) -> usize {
        self.lock().spans.iter().map(|batch| batch.records.len()).sum()
    }

    /// Metric points stored.
    pub fn metric_points_count(&self) -> usize {
        self.lock().metric_points.iter().map(|batch| batch.records.len()).sum()
    }

    /// What Dash0 accepted and refused so far.
    pub fn counts(&self) -> StoreCounts {
        self.lock().counts
    }

    pub(crate) fn store_logs(&self, batches: Vec<StoredBatch<LogRecord>>) {
        self.lock().logs.extend(batches.into_iter().filter(|b| !b.records.is_empty()));
    }

    pub(crate) fn store_spans(&self, batches: Vec<StoredBatch<Span>>) {
        self.lock().spans.extend(batches.into_iter().filter(|b| !b.records.is_empty()));
    }

    pub(crate) fn store_metric_points(&self, batches: Vec<StoredBatch<MetricPoint>>) {
        self.lock().metric_points.extend(batches.into_iter().filter(|b| !b.records.is_empty()));
    }

    pub(crate) fn count(&self, change: impl FnOnce(&mut StoreCounts)) {
        change(&mut self.lock().counts);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, StoreInner> {
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn flatten<T: Clone>(batches: &[StoredBatch<T>]) -> Vec<(T, u64)> {
    batches.iter().flat_map(|batch| batch.records.iter().map(|r| (r.clone(), batch.ingest_true_nanos))).collect()
}
