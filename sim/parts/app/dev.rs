//! A developer's machine: the app logs straight to Fluentd's in_http (`:24224`), a JSON
//! array of records per POST to `/dev.app` (Fluentd takes the tag from the path), with no
//! agent and no collector in between.
//!
//! Correlation decision: dev hosts have no collector, so their spans are never stored. Each
//! flush is one dev "request" with its own trace, span and job id (drawn from the seed),
//! and every dev line carries the attribute `source.kind = "dev"`: the correlation checker
//! exempts those lines from "every log's span resolves to a stored span". All other id
//! formats still hold (job_id `job-{uuid}`, no machine or worker).
//!
//! Delivery: the dev app holds the lines (volatile) until a 2xx; it retries a failed POST
//! up to `retry_limit` attempts with doubling, jittered delays, then drops the batch with
//! `app_dev_http_failed`. One connection per POST (dev traffic is a trickle).

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use rand::Rng;
use serde::{Deserialize, Serialize};

use super::config::AppConfig;
use crate::ledger::Durability;
use crate::parts::PartCtx;
use crate::record::{Attributes, JobId, LogRecord, RecordId, Severity, SpanId, TraceId};
use crate::vocab::pipeline::Address;
use crate::vocab::{EventKind, LossCause, Part, Signal};
use crate::world::true_elapsed_now;

/// Longest wait between POST attempts.
pub(crate) const RETRY_DELAY_MAX: Duration = Duration::from_secs(30);

/// The attribute that marks dev lines for the correlation checker.
pub(crate) const SOURCE_KIND_KEY: &str = "source.kind";

/// A dev host's settings beyond `[app.dev]`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct DevSpec {
    /// Overrides `[app.dev] logs_per_second` for this host.
    pub logs_per_second: Option<u32>,
}

/// Runs a dev host's app for one incarnation.
pub async fn run_dev(ctx: PartCtx, config: AppConfig, dev: DevSpec) -> turmoil::Result {
    config.validate()?;
    let custodian = ctx.custodian(Part::App);
    let aggregator = ctx.peer(Part::App, Part::Aggregator).clone();
    let source =
        ctx.ledger.register_source(&format!("{}#{}/logs", ctx.host.name(), ctx.host.incarnation()), Signal::Log);
    let mut rng = ctx.host.rng("app/dev");
    let per_second = dev.logs_per_second.unwrap_or(config.dev.logs_per_second);
    let per_flush = ((f64::from(per_second) * config.dev.flush_interval.as_secs_f64()).round() as u64).max(1);
    let mut interval = tokio::time::interval(config.dev.flush_interval);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    interval.tick().await;
    // Logs while the workload runs (`submit_for`), so that the drain phase can empty the
    // pipeline; every pass waits for the next flush.
    while true_elapsed_now() < config.workload.submit_for {
        interval.tick().await;
        let now = ctx.host.clock().now_unix_nanos();
        let (trace_id, span_id, job_id) =
            (TraceId::random(&mut rng), SpanId::random(&mut rng), JobId::random(&mut rng));
        let first = ctx.ledger.emit(source, per_flush, true_elapsed_now().as_nanos() as u64);
        let records: Vec<LogRecord> = (0..per_flush)
            .map(|i| LogRecord {
                time_unix_nano: now,
                observed_time_unix_nano: now,
                severity: Severity::Debug,
                body: format!("dev request line {}/{per_flush}", i + 1),
                trace_id,
                span_id,
                job_id,
                machine_id: None,
                worker_id: None,
                id: RecordId::new(source, first + i),
                attributes: Attributes::new().with(SOURCE_KIND_KEY, "dev"),
            })
            .collect();
        let ids: Vec<RecordId> = records.iter().map(|r| r.id).collect();
        ctx.ledger.hold(&custodian, &ids, Durability::Volatile);
        let body = Bytes::from(serde_json::to_vec(&records).expect("log records serialize to JSON"));
        let mut delivered = false;
        let mut last_error = String::new();
        for attempt in 0..config.dev.retry_limit {
            match tokio::time::timeout(config.dev.request_timeout, post(&aggregator, body.clone())).await {
                Ok(Ok(status)) if (200..300).contains(&status) => {
                    delivered = true;
                    break;
                }
                Ok(Ok(status)) => last_error = format!("http {status}"),
                Ok(Err(error)) => last_error = error,
                Err(_) => last_error = format!("no answer within {:?}", config.dev.request_timeout),
            }
            if attempt + 1 < config.dev.retry_limit {
                let base = config.dev.retry_initial.saturating_mul(1u32 << attempt.min(10)).min(RETRY_DELAY_MAX);
                tokio::time::sleep(base.mul_f64(rng.random_range(0.5..1.5))).await;
            }
        }
        if delivered {
            ctx.ledger.release(&custodian, &ids);
        } else {
            ctx.ledger.drop_records(&custodian, LossCause::AppDevHttpFailed, &ids);
            ctx.host.record(
                EventKind::AppDevHttpFailed,
                format!("{per_flush} lines after {} attempts: {last_error}", config.dev.retry_limit),
            );
        }
    }
    ctx.host.record(EventKind::AppDevDone, format!("{} lines emitted", ctx.ledger.emitted_count(source)));
    Ok(())
}

/// Whether `log` came from a dev host: dev lines belong to no job's trace (dev hosts have no
/// collector), so the correlation checker exempts them; delivery still accounts for them.
pub fn is_dev_log(log: &LogRecord) -> bool {
    matches!(log.attributes.get(SOURCE_KIND_KEY), Some(crate::record::AttrValue::Str(kind)) if kind == "dev")
}

/// One POST of a JSON array to the aggregator's in_http at `aggregator`; returns the status.
async fn post(aggregator: &Address, body: Bytes) -> Result<u16, String> {
    let stream = crate::world::TcpStream::connect(aggregator.pair())
        .await
        .map_err(|error| format!("connect {aggregator}: {error}"))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake::<_, Full<Bytes>>(TokioIo::new(stream))
        .await
        .map_err(|error| format!("http handshake: {error}"))?;
    let driver = crate::world::spawn(async move {
        let _ = connection.await;
    });
    let request = http::Request::post("/dev.app")
        .header(http::header::HOST, aggregator.to_string())
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::new(body))
        .map_err(|error| format!("building the request: {error}"))?;
    let result = async {
        let response = sender.send_request(request).await.map_err(|error| format!("POST /dev.app: {error}"))?;
        let status = response.status().as_u16();
        response.into_body().collect().await.map_err(|error| format!("reading the response: {error}"))?;
        Ok(status)
    }
    .await;
    driver.abort();
    result
}
