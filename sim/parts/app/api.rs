//! The client and the API: the client submits jobs (Poisson arrivals at
//! `jobs_per_second`, for `submit_for` of true time); the API opens each job's trace
//! (`job.submitted`, Server, the root span), stores the job hash with its `traceparent`
//! and queues the job id on its type's pending queue, all in one pipeline:
//! `HSET job:{id} traceparent … status queued type … submitted_at …` + `RPUSH
//! jobs:pending:{type} id`. Logs "Job created" and "Job queued" follow once Redis took it.
//!
//! Completion events: workers RPUSH job ids on `jobs:completed`; the API consumes them
//! with the reliable-queue pattern (`BLMOVE jobs:completed jobs:completed:processing`, then
//! `LREM` once handled; on start the processing list is moved back). For each it reads the
//! job hash, opens `job.completed` (Consumer, child of `job.submitted` via the stored
//! traceparent) and logs "Job completed" with the job's machine and worker.
//!
//! While Redis is unreachable a submission is retried (`redis_attempts_max` attempts with
//! backoff) and the client waits for it, as a real client's request would be pending; a
//! submission that runs out of attempts is logged "Job submission failed" (span status
//! error) and never queued, so it never needs to complete.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use redis::RedisResult;

use super::config::AppConfig;
use super::control::WorkloadControl;
use super::emit::{AppPipes, Emitter, LogScope};
use super::keys;
use super::link::RedisLink;
use super::metrics;
use crate::parts::PartCtx;
use crate::record::{
    Attributes, JobId, MachineId, MachineType, Severity, SpanId, SpanKind, SpanStatus, TraceId, TraceParent, WorkerId,
};
use crate::redis_step;
use crate::vocab::EventKind;
use crate::world::true_elapsed_now;

/// Most completion events moved back on one recovery.
const RECOVER_EVENTS_MAX: usize = 1_000_000;

/// What the API counts (for its metrics and the event log).
#[derive(Default)]
struct ApiStats {
    submitted: u64,
    submit_failed: u64,
    completions_seen: u64,
}

/// Draws the next job's type by the configured weights.
fn draw_type(config: &AppConfig, rng: &mut ChaCha8Rng) -> MachineType {
    let total: u32 = MachineType::ALL.iter().map(|t| config.machine_type(*t).weight).sum();
    assert!(total > 0, "validated: some type has weight");
    let mut pick = rng.random_range(0..total);
    for machine_type in MachineType::ALL {
        let weight = config.machine_type(machine_type).weight;
        if pick < weight {
            return machine_type;
        }
        pick -= weight;
    }
    unreachable!("pick < total")
}

/// Runs the client and the API on the API host for one incarnation.
pub async fn run_api(ctx: PartCtx, config: AppConfig, pipes: AppPipes) -> turmoil::Result {
    run_api_with_control(ctx, config, pipes, WorkloadControl::new()).await
}

/// `run_api`, with `control` able to multiply the client's rate while it runs (a burst).
pub async fn run_api_with_control(
    ctx: PartCtx,
    config: AppConfig,
    pipes: AppPipes,
    control: WorkloadControl,
) -> turmoil::Result {
    config.validate()?;
    let emitter = Emitter::new(ctx.clone(), pipes);
    let stats = Arc::new(Mutex::new(ApiStats::default()));
    let started_unix_nano = emitter.now();
    let completions = crate::world::spawn(consume_completions(emitter.clone(), config.clone(), Arc::clone(&stats)));
    let metrics_task =
        crate::world::spawn(write_metrics(emitter.clone(), config.clone(), Arc::clone(&stats), started_unix_nano));

    let mut arrivals = ctx.host.rng("app/client");
    let mut ids = ctx.host.rng("app/api-ids");
    let mut retries = ctx.host.rng("app/api-retry");
    let mut link = RedisLink::new(&ctx, config.redis_timeout, config.redis_timeout);
    // Bounded by submit_for: every pass sleeps a positive inter-arrival time.
    loop {
        let u: f64 = arrivals.random_range(f64::EPSILON..1.0);
        let jobs_per_second = config.workload.jobs_per_second * control.rate_factor();
        let gap = Duration::from_secs_f64(-u.ln() / jobs_per_second).max(Duration::from_millis(1));
        tokio::time::sleep(gap).await;
        if true_elapsed_now() >= config.workload.submit_for {
            break;
        }
        submit(&emitter, &config, &mut link, &mut ids, &mut retries, &stats).await;
    }
    let (submitted, failed) = {
        let stats = stats.lock().unwrap_or_else(|p| p.into_inner());
        (stats.submitted, stats.submit_failed)
    };
    ctx.host.record(EventKind::AppClientDone, format!("{submitted} jobs submitted, {failed} refused"));
    // The API keeps consuming completions and writing metrics until the host stops.
    let _ = completions.await;
    let _ = metrics_task.await;
    Ok(())
}

/// One job submission: trace, job hash + queue, logs, span.
async fn submit(
    emitter: &Emitter,
    config: &AppConfig,
    link: &mut RedisLink,
    ids: &mut ChaCha8Rng,
    retries: &mut ChaCha8Rng,
    stats: &Mutex<ApiStats>,
) {
    let job_id = JobId::random(ids);
    let trace_id = TraceId::random(ids);
    let span_id = SpanId::random(ids);
    let machine_type = draw_type(config, ids);
    let scope = LogScope { trace_id, span_id, job_id, machine_id: None, worker_id: None };
    let span = emitter.open("job.submitted", SpanKind::Server, span_id, None, &scope);
    let traceparent = TraceParent::new(trace_id, span_id, true).to_string();
    let (job_key, pending_key) = (keys::job(&job_id), keys::pending(machine_type));
    let job_text = job_id.to_string();
    let submitted_at = span.start_time_unix_nano.to_string();
    let mut pipeline = redis::pipe();
    pipeline
        .cmd("HSET")
        .arg(&job_key)
        .arg("traceparent")
        .arg(&traceparent)
        .arg("status")
        .arg("queued")
        .arg("type")
        .arg(machine_type.as_str())
        .arg("submitted_at")
        .arg(&submitted_at)
        .ignore()
        .cmd("RPUSH")
        .arg(&pending_key)
        .arg(&job_text)
        .ignore();
    let result: RedisResult<()> =
        redis_step!(link, retries, config.redis_attempts_max, |conn| pipeline.query_async::<()>(conn));
    let mut stats = stats.lock().unwrap_or_else(|p| p.into_inner());
    match result {
        Ok(()) => {
            stats.submitted += 1;
            drop(stats);
            config.job_book.accepted(job_id);
            let created = format!("Job created: {} job", machine_type.as_str());
            let queued = format!("Job queued on {pending_key}");
            emitter.logs(&scope, &[(Severity::Info, &created), (Severity::Info, &queued)]);
            emitter.end_spans(vec![span], SpanStatus::Ok);
        }
        Err(error) => {
            stats.submit_failed += 1;
            drop(stats);
            config.job_book.refused(job_id);
            let failed = format!("Job submission failed: {error}");
            emitter.logs(&scope, &[(Severity::Error, &failed)]);
            emitter.end_spans(vec![span], SpanStatus::Error { message: "redis unavailable".to_string() });
            emitter.ctx().host.record(EventKind::AppSubmitFailed, format!("{job_id}: {error}"));
        }
    }
}

/// Moves completion events this API had taken but not finished back to the queue.
async fn recover_completions(link: &mut RedisLink) -> RedisResult<usize> {
    let conn = link.conn().await?;
    for moved in 0..RECOVER_EVENTS_MAX {
        let value: Option<String> = redis::cmd("LMOVE")
            .arg(keys::COMPLETED_PROCESSING)
            .arg(keys::COMPLETED)
            .arg("RIGHT")
            .arg("LEFT")
            .query_async(conn)
            .await?;
        if value.is_none() {
            return Ok(moved);
        }
    }
    Err(redis::RedisError::from((redis::ErrorKind::Client, "jobs:completed:processing longer than RECOVER_EVENTS_MAX")))
}

/// The completion consumer (see the module docs).
async fn consume_completions(emitter: Emitter, config: AppConfig, stats: Arc<Mutex<ApiStats>>) {
    let mut rng = emitter.ctx().host.rng("app/completion");
    let mut link = RedisLink::new(emitter.ctx(), config.redis_timeout, config.redis_timeout + config.blmove_timeout);
    let mut recovered = false;
    let mut failures = 0u32;
    // Runs for the incarnation; every failing pass sleeps.
    loop {
        let outcome: RedisResult<()> = async {
            if !recovered {
                let moved = recover_completions(&mut link).await?;
                if moved > 0 {
                    emitter.ctx().host.record(EventKind::AppCompletionsRecovered, format!("{moved} events"));
                }
                recovered = true;
            }
            let taken: Option<String> = redis::cmd("BLMOVE")
                .arg(keys::COMPLETED)
                .arg(keys::COMPLETED_PROCESSING)
                .arg("LEFT")
                .arg("RIGHT")
                .arg(crate::parts::redis_client::timeout_arg(config.blmove_timeout))
                .query_async(link.conn().await?)
                .await?;
            let Some(job_text) = taken else { return Ok(()) };
            let fields: Vec<(String, String)> =
                redis::cmd("HGETALL").arg(format!("job:{job_text}")).query_async(link.conn().await?).await?;
            complete(&emitter, &mut rng, &job_text, &fields);
            if let Ok(job_id) = JobId::parse(&job_text) {
                config.job_book.completion_seen(job_id);
            }
            let _: i64 = redis::cmd("LREM")
                .arg(keys::COMPLETED_PROCESSING)
                .arg(1)
                .arg(&job_text)
                .query_async(link.conn().await?)
                .await?;
            stats.lock().unwrap_or_else(|p| p.into_inner()).completions_seen += 1;
            Ok(())
        }
        .await;
        match outcome {
            Ok(()) => failures = 0,
            Err(error) => {
                link.reset();
                recovered = false;
                let delay = super::link::retry_delay(&mut rng, failures);
                failures = failures.saturating_add(1);
                emitter.ctx().host.record(EventKind::AppRedisError, format!("completions: {error}"));
                tokio::time::sleep(delay).await;
            }
        }
    }
}

/// Handles one completion event: span `job.completed` and the "Job completed" line.
fn complete(emitter: &Emitter, rng: &mut ChaCha8Rng, job_text: &str, fields: &[(String, String)]) {
    let field = |name: &str| fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let job_id = JobId::parse(job_text);
    let traceparent = field("traceparent").map(TraceParent::parse);
    let (Ok(job_id), Some(Ok(traceparent))) = (job_id, traceparent) else {
        emitter
            .ctx()
            .host
            .record(EventKind::AppCompletionUnknown, format!("{job_text}: no job hash with a valid traceparent"));
        return;
    };
    let machine_id = field("machine_id").and_then(|m| MachineId::parse(m).ok());
    let worker_id = field("worker_id")
        .and_then(|w| WorkerId::parse(w).ok())
        .filter(|w| machine_id.as_ref().is_some_and(|m| w.belongs_to(m)));
    let scope =
        LogScope { trace_id: traceparent.trace_id, span_id: SpanId::random(rng), job_id, machine_id, worker_id };
    let span = emitter.open("job.completed", SpanKind::Consumer, scope.span_id, Some(traceparent.parent_id), &scope);
    let line = match &scope.worker_id {
        Some(worker) => format!("Job completed by {worker}"),
        None => "Job completed".to_string(),
    };
    emitter.logs(&scope, &[(Severity::Info, &line)]);
    emitter.end_spans(vec![span], SpanStatus::Ok);
}

/// Every `metrics_interval`: jobs_submitted_total and queue_depth per machine type.
async fn write_metrics(emitter: Emitter, config: AppConfig, stats: Arc<Mutex<ApiStats>>, started_unix_nano: u64) {
    let mut link = RedisLink::new(emitter.ctx(), config.redis_timeout, config.redis_timeout);
    let mut submitted_stream = metrics::SumStream::new(
        "jobs_submitted_total",
        Attributes::new(),
        config.metrics_temporality,
        started_unix_nano,
    );
    let mut interval = tokio::time::interval(config.metrics_interval);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let now = emitter.now();
        let submitted = stats.lock().unwrap_or_else(|p| p.into_inner()).submitted;
        let mut points: Vec<_> = submitted_stream.collect(submitted, now).into_iter().collect();
        for machine_type in MachineType::ALL {
            let depth: RedisResult<i64> = match link.conn().await {
                Ok(conn) => redis::cmd("LLEN").arg(keys::pending(machine_type)).query_async(conn).await,
                Err(error) => Err(error),
            };
            match depth {
                Ok(depth) => points.push(metrics::gauge(
                    "queue_depth",
                    depth,
                    now,
                    Attributes::new().with("machine.type", machine_type.as_str()),
                )),
                Err(_) => {
                    // A missed sample is a gap in a gauge, not a loss.
                    link.reset();
                    break;
                }
            }
        }
        emitter.metrics(points);
    }
}
