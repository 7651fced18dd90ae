//! The OpenTelemetry Collector on each machine: spans and metric points from the app, through
//! the batch processor and the OTLP exporter's sending queue, to Dash0 over OTLP/gRPC.
//!
//! ```text
//! app ─RecordPipe<Span>────────▶ batch (8192 | 200 ms) ─▶ sending queue (1000) ─▶ 10 consumers ─gRPC─▶ Dash0 :4317
//! app ─RecordPipe<MetricPoint>─▶ batch (8192 | 200 ms) ─▶ sending queue (1000) ─▶ 10 consumers ─┘
//! ```
//!
//! Each signal has its own pipeline, as `traces` and `metrics` pipelines do in a collector
//! config; both share one gRPC channel. Where does the collector take custody? `batch.rs`
//! (on taking from the pipe). Where does it drop? `batch.rs` (queue full) and `queue.rs`
//! (retries expired, permanent refusal, shutdown). Which codes are retried, and when?
//! `retry.rs`. How does the channel reconnect? `channel.rs`.
//!
//! On SIGTERM the collector shuts down as the real one does: the batch processors send what
//! they hold, the retry sender stops, the sending queues export what they still hold (one
//! attempt each) and the process exits. What it has not sent by the SIGKILL that ends the
//! draining time is lost from memory (FIDELITY.md "Collector").

pub mod batch;
pub mod channel;
pub mod config;
pub mod exporter;
pub mod outcome;
pub mod queue;
pub mod retry;

pub use config::CollectorConfig;

use std::sync::{Arc, Mutex};

use crate::ledger::Durability;
use crate::parts::{PartCtx, RecordPipe};
use crate::proto::otlp::{encode_metrics, encode_spans};
use crate::record::{MetricPoint, RecordId, Resource, Span};
use crate::vocab::{EventKind, Part};
use channel::{ChannelSettings, ConnectionBackoff, grpc_go_channel};
use exporter::{Exporter, Payload, QueuedBatch};
use outcome::Outcomes;
use queue::{Consumers, SendingQueue};

/// Records the collector's start with the settings that shape its exports.
fn record_start(ctx: &PartCtx, config: &CollectorConfig, endpoint: &crate::vocab::pipeline::Address) {
    ctx.host.record(
        EventKind::CollectorStart,
        format!(
            "to {endpoint} batch {}/{}ms queue {} consumers {}",
            config.send_batch_size,
            config.batch_timeout.as_millis(),
            config.queue_size,
            config.num_consumers
        ),
    );
}

/// Runs the collector on its host until the host stops. The app pushes into `spans` and
/// `metrics`; the app has registered and emitted the spans and holds them as `Part::App`
/// on this host until the batch processor takes them. `resource` describes this machine.
pub async fn run(
    ctx: PartCtx,
    config: CollectorConfig,
    spans: RecordPipe<Span>,
    metrics: RecordPipe<MetricPoint>,
    resource: Resource,
) -> turmoil::Result {
    config.check()?;
    let endpoint = config.endpoint(ctx.peer(Part::Collector, Part::Dash0));
    let (queues, consumer_tasks) = start_exporters(&ctx, &config, &endpoint)?;
    record_start(&ctx, &config, &endpoint);
    let [span_queue, metric_queue] = queues.clone();
    let outcomes = Outcomes::new(&ctx);
    let span_batches = span_processor(&ctx, &config, spans, span_queue, resource.clone());
    let metric_batches = batch::BatchProcessor {
        config,
        pipe: metrics,
        queue: metric_queue,
        outcomes,
        sigterm: ctx.host.sigterm().clone(),
        on_take: Box::new(|_: &[MetricPoint]| {}),
        seal: Box::new(move |batch_seq: u64, batch: Vec<MetricPoint>| QueuedBatch {
            batch_seq,
            ids: Vec::new(),
            items_count: batch.len(),
            payload: Payload::Metrics(encode_metrics(&resource, &batch)),
        }),
    };
    // Until SIGTERM; then the processors have flushed into the queues.
    tokio::join!(span_batches.run(), metric_batches.run());
    shut_down(&ctx, queues, consumer_tasks).await;
    Ok(())
}

/// The OTLP exporters of both signals: one gRPC channel (grpc-go's reconnect backoff), a
/// sending queue each and `num_consumers` consumers each, already running.
fn start_exporters(
    ctx: &PartCtx,
    config: &CollectorConfig,
    endpoint: &crate::vocab::pipeline::Address,
) -> Result<([SendingQueue; 2], Vec<tokio::task::JoinHandle<()>>), String> {
    let settings = ChannelSettings {
        host: endpoint.host.to_string(),
        port: endpoint.port,
        request_timeout: config.export_timeout,
        connect_timeout: config.connect_timeout,
        keepalive_interval: config.keepalive_interval,
        keepalive_timeout: config.keepalive_timeout,
    };
    let channel = grpc_go_channel(&settings, ConnectionBackoff::default(), &ctx.host);
    let consumers = Consumers {
        host: ctx.host.clone(),
        exporter: Exporter::new(channel, config)?,
        outcomes: Outcomes::new(ctx),
        rng: Arc::new(Mutex::new(ctx.host.rng("collector/retry"))),
        config: config.clone(),
    };
    let queues = [SendingQueue::new(config.queue_size), SendingQueue::new(config.queue_size)];
    let mut consumer_tasks = Vec::with_capacity(2 * config.num_consumers);
    for _ in 0..config.num_consumers {
        for queue in &queues {
            consumer_tasks.push(crate::world::spawn(consumers.clone().run(queue.clone())));
        }
    }
    Ok((queues, consumer_tasks))
}

/// The traces pipeline's batch processor: taking spans moves their custody from the app to
/// the collector; sealing encodes them for this machine's `resource`.
fn span_processor(
    ctx: &PartCtx,
    config: &CollectorConfig,
    spans: RecordPipe<Span>,
    queue: SendingQueue,
    resource: Resource,
) -> batch::BatchProcessor<Span> {
    let (app, collector) = (ctx.custodian(Part::App), ctx.custodian(Part::Collector));
    let ledger = ctx.ledger.clone();
    let take_spans = move |taken: &[Span]| {
        if taken.is_empty() {
            return;
        }
        let ids: Vec<RecordId> = taken.iter().map(|span| span.id).collect();
        ledger.release(&app, &ids);
        ledger.hold(&collector, &ids, Durability::Volatile);
    };
    let drop_traceparent = config.bugs.collector_drop_traceparent;
    let seal_spans = move |batch_seq: u64, mut batch: Vec<Span>| {
        if drop_traceparent {
            // Planted bug (`crate::parts::bugs`): the parent link is lost on export.
            for span in &mut batch {
                span.parent_span_id = None;
            }
        }
        QueuedBatch {
            batch_seq,
            ids: batch.iter().map(|span| span.id).collect(),
            items_count: batch.len(),
            payload: Payload::Traces(encode_spans(&resource, &batch)),
        }
    };
    batch::BatchProcessor {
        config: config.clone(),
        pipe: spans,
        queue,
        outcomes: Outcomes::new(ctx),
        sigterm: ctx.host.sigterm().clone(),
        on_take: Box::new(take_spans),
        seal: Box::new(seal_spans),
    }
}

/// The exporters' shutdown after the processors flushed: the queues stop and their
/// consumers export what is left (the retry sender already stopped at SIGTERM), then the
/// process exits.
async fn shut_down(ctx: &PartCtx, queues: [SendingQueue; 2], consumer_tasks: Vec<tokio::task::JoinHandle<()>>) {
    let held: usize = queues.iter().map(SendingQueue::held).sum();
    ctx.host.record(EventKind::CollectorShutdown, format!("SIGTERM: draining {held} requests"));
    for queue in &queues {
        queue.stop();
    }
    for task in consumer_tasks {
        // A consumer ends once its queue is stopped and empty; it never panics on purpose.
        let _ = task.await;
    }
    ctx.host.record(EventKind::CollectorShutdown, "drained: exiting".to_string());
}
