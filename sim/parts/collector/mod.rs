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
//! (retries expired, permanent refusal). Which codes are retried, and when? `retry.rs`.

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
use channel::{ChannelSettings, lazy_channel};
use exporter::{Exporter, Payload, QueuedBatch};
use outcome::Outcomes;
use queue::Consumers;

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
    let channel = lazy_channel(&ChannelSettings {
        host: endpoint.host.to_string(),
        port: endpoint.port,
        request_timeout: config.export_timeout,
        connect_timeout: config.connect_timeout,
        keepalive_interval: config.keepalive_interval,
        keepalive_timeout: config.keepalive_timeout,
    });
    let consumers = Consumers {
        host: ctx.host.clone(),
        exporter: Exporter::new(channel, &config)?,
        outcomes: Outcomes::new(&ctx),
        rng: Arc::new(Mutex::new(ctx.host.rng("collector/retry"))),
        config: config.clone(),
    };
    record_start(&ctx, &config, &endpoint);
    let span_queue: RecordPipe<QueuedBatch> = RecordPipe::new(config.queue_size);
    let metric_queue: RecordPipe<QueuedBatch> = RecordPipe::new(config.queue_size);
    for _ in 0..config.num_consumers {
        crate::world::spawn(consumers.clone().run(span_queue.clone()));
        crate::world::spawn(consumers.clone().run(metric_queue.clone()));
    }

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
    let span_resource = resource.clone();
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
            payload: Payload::Traces(encode_spans(&span_resource, &batch)),
        }
    };
    let seal_metrics = move |batch_seq: u64, batch: Vec<MetricPoint>| QueuedBatch {
        batch_seq,
        ids: Vec::new(),
        items_count: batch.len(),
        payload: Payload::Metrics(encode_metrics(&resource, &batch)),
    };
    let outcomes = Outcomes::new(&ctx);
    tokio::join!(
        batch::run(config.clone(), spans, span_queue, outcomes.clone(), take_spans, seal_spans),
        batch::run(config, metrics, metric_queue, outcomes, |_: &[MetricPoint]| {}, seal_metrics),
    );
    Ok(())
}
