//! How the app writes telemetry: every log line and span gets its delivery identity from
//! the ledger, the app takes custody, and the records go into the host's pipes (to its
//! agent and collector). Log lines go to the host's log file, which never refuses a line:
//! rotation takes the oldest the agent has not read (`app_log_rotated`); spans and metrics
//! go to the SDK's export queue, which refuses what does not fit (`app_span_queue_full`).
//!
//! One log source and one span source per host incarnation (`{host}#{incarnation}/logs`,
//! `/spans`): sequence numbers are gap-free per source, which the ledger relies on. A job
//! step's lines are emitted in one call (one ledger entry, one pipe push).

use std::sync::{Arc, Mutex};

use crate::ledger::{Custodian, Durability};
use crate::parts::{PartCtx, RecordPipe};
use crate::record::{
    Attributes, JobId, LogRecord, MachineId, MetricPoint, RecordId, Severity, SourceId, Span, SpanId, SpanKind,
    SpanStatus, TraceId, WorkerId,
};
use crate::vocab::{EventKind, LossCause, Part, Signal};
use crate::world::true_elapsed_now;

/// The host's pipes to its agent (logs) and collector (spans, metrics).
#[derive(Clone)]
pub struct AppPipes {
    pub logs: RecordPipe<LogRecord>,
    pub spans: RecordPipe<Span>,
    pub metrics: RecordPipe<MetricPoint>,
}

impl AppPipes {
    /// A log file and two export queues of `records_limit` each (what a test builds).
    pub fn new(records_limit: usize) -> Self {
        Self::with_log_file(RecordPipe::log_file(records_limit), records_limit)
    }

    /// `logs` (the host's log file, which outlives its processes) and two export queues of
    /// `records_limit` each (what the integrator builds per incarnation).
    pub fn with_log_file(logs: RecordPipe<LogRecord>, records_limit: usize) -> Self {
        AppPipes { logs, spans: RecordPipe::new(records_limit), metrics: RecordPipe::new(records_limit) }
    }
}

/// Where a log line was written: its job, span and (on machines) machine and worker.
#[derive(Clone, Debug)]
pub struct LogScope {
    pub trace_id: TraceId,
    pub span_id: SpanId,
    pub job_id: JobId,
    pub machine_id: Option<MachineId>,
    pub worker_id: Option<WorkerId>,
}

/// An open span: its identity and start; becomes a [`Span`] when it ends.
#[derive(Clone, Debug)]
pub struct OpenSpan {
    pub name: &'static str,
    pub kind: SpanKind,
    pub trace_id: TraceId,
    pub span_id: SpanId,
    pub parent_span_id: Option<SpanId>,
    pub start_time_unix_nano: u64,
    pub job_id: JobId,
    pub machine_id: Option<MachineId>,
    pub worker_id: Option<WorkerId>,
}

impl OpenSpan {
    /// The scope of log lines written inside this span.
    pub fn scope(&self) -> LogScope {
        LogScope {
            trace_id: self.trace_id,
            span_id: self.span_id,
            job_id: self.job_id,
            machine_id: self.machine_id.clone(),
            worker_id: self.worker_id.clone(),
        }
    }
}

/// Writes one host incarnation's logs, spans and metrics. Cloning shares it (workers).
#[derive(Clone)]
pub struct Emitter {
    ctx: PartCtx,
    custodian: Custodian,
    log_source: SourceId,
    span_source: SourceId,
    pipes: AppPipes,
    /// Metric points refused by a full pipe (no ledger identity; reported as events).
    metrics_dropped: Arc<Mutex<u64>>,
}

impl Emitter {
    /// Registers this incarnation's sources.
    pub fn new(ctx: PartCtx, pipes: AppPipes) -> Self {
        let name = ctx.host.name();
        let incarnation = ctx.host.incarnation();
        let log_source = ctx.ledger.register_source(&format!("{name}#{incarnation}/logs"), Signal::Log);
        let span_source = ctx.ledger.register_source(&format!("{name}#{incarnation}/spans"), Signal::Span);
        Emitter {
            custodian: ctx.custodian(Part::App),
            ctx,
            log_source,
            span_source,
            pipes,
            metrics_dropped: Arc::new(Mutex::new(0)),
        }
    }

    /// This host's time now.
    pub fn now(&self) -> u64 {
        self.ctx.host.clock().now_unix_nanos()
    }

    /// Opens a span now.
    pub fn open(
        &self,
        name: &'static str,
        kind: SpanKind,
        span_id: SpanId,
        parent: Option<SpanId>,
        scope: &LogScope,
    ) -> OpenSpan {
        OpenSpan {
            name,
            kind,
            trace_id: scope.trace_id,
            span_id,
            parent_span_id: parent,
            start_time_unix_nano: self.now(),
            job_id: scope.job_id,
            machine_id: scope.machine_id.clone(),
            worker_id: scope.worker_id.clone(),
        }
    }

    /// Writes `lines` in `scope`, as one emission. Returns how many the pipe took.
    pub fn logs(&self, scope: &LogScope, lines: &[(Severity, &str)]) -> usize {
        if lines.is_empty() {
            return 0;
        }
        let now = self.now();
        let true_nanos = true_elapsed_now().as_nanos() as u64;
        let first = self.ctx.ledger.emit(self.log_source, lines.len() as u64, true_nanos);
        let records: Vec<LogRecord> = lines
            .iter()
            .enumerate()
            .map(|(index, (severity, body))| LogRecord {
                time_unix_nano: now,
                observed_time_unix_nano: now,
                severity: *severity,
                body: (*body).to_string(),
                trace_id: scope.trace_id,
                span_id: scope.span_id,
                job_id: scope.job_id,
                machine_id: scope.machine_id.clone(),
                worker_id: scope.worker_id.clone(),
                id: RecordId::new(self.log_source, first + index as u64),
                attributes: Attributes::new(),
            })
            .collect();
        self.push_logs(records)
    }

    /// Writes already built records (dev hosts build their own) to the log file: the app
    /// holds them as written (page cache: a killed process keeps them, a power loss takes
    /// them) until the agent reads them; lines rotation takes unread are lost.
    fn push_logs(&self, records: Vec<LogRecord>) -> usize {
        let ids: Vec<RecordId> = records.iter().map(|r| r.id).collect();
        self.ctx.ledger.hold(&self.custodian, &ids, Durability::Written);
        let count = records.len();
        if let Err(rotated) = self.pipes.logs.push(records) {
            let rotated: Vec<RecordId> = rotated.rejected.iter().map(|r| r.id).collect();
            self.ctx.ledger.drop_records(&self.custodian, LossCause::AppLogRotated, &rotated);
            self.ctx.host.record(
                EventKind::AppLogRotated,
                format!("{} unread lines rotated away writing {count}", rotated.len()),
            );
        }
        count
    }

    /// Ends `spans` now with `status` and hands them to the collector, as one emission.
    pub(crate) fn end_spans(&self, spans: Vec<OpenSpan>, status: SpanStatus) {
        if spans.is_empty() {
            return;
        }
        let now = self.now();
        let true_nanos = true_elapsed_now().as_nanos() as u64;
        let first = self.ctx.ledger.emit(self.span_source, spans.len() as u64, true_nanos);
        let records: Vec<Span> = spans
            .into_iter()
            .enumerate()
            .map(|(index, open)| Span {
                trace_id: open.trace_id,
                span_id: open.span_id,
                parent_span_id: open.parent_span_id,
                name: open.name.to_string(),
                kind: open.kind,
                start_time_unix_nano: open.start_time_unix_nano,
                end_time_unix_nano: now.max(open.start_time_unix_nano),
                status: status.clone(),
                job_id: open.job_id,
                machine_id: open.machine_id,
                worker_id: open.worker_id,
                id: RecordId::new(self.span_source, first + index as u64),
                attributes: Attributes::new(),
            })
            .collect();
        let ids: Vec<RecordId> = records.iter().map(|s| s.id).collect();
        self.ctx.ledger.hold(&self.custodian, &ids, Durability::Volatile);
        if let Err(full) = self.pipes.spans.push(records) {
            let rejected: Vec<RecordId> = full.rejected.iter().map(|s| s.id).collect();
            self.ctx.ledger.drop_records(&self.custodian, LossCause::AppSpanQueueFull, &rejected);
            self.ctx.host.record(EventKind::AppSpanQueueFull, format!("{} spans dropped", rejected.len()));
        }
    }

    /// Hands metric points to the collector; a full pipe drops the rest (counted in an event:
    /// metric points have no ledger identity; cumulative values recover at the next write).
    pub fn metrics(&self, points: Vec<MetricPoint>) {
        if let Err(full) = self.pipes.metrics.push(points) {
            let mut dropped = self.metrics_dropped.lock().unwrap_or_else(|p| p.into_inner());
            *dropped += full.rejected.len() as u64;
            self.ctx.host.record(
                EventKind::AppMetricsQueueFull,
                format!("{} points dropped, {} in all", full.rejected.len(), *dropped),
            );
        }
    }

    /// The app's custodian on this host.
    pub fn custodian(&self) -> &Custodian {
        &self.custodian
    }

    /// The part context.
    pub fn ctx(&self) -> &PartCtx {
        &self.ctx
    }
}
