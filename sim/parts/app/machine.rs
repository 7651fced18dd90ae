//! A machine and its workers. Each worker (`{machine_id}-worker-{index}`) is one task with
//! its own Redis connection (BLMOVE blocks the connection it runs on), looping:
//!
//! 1. `BLMOVE jobs:pending:{type} jobs:active:{worker_id} LEFT RIGHT <timeout>` (reliable
//!    queue: the job stays in the worker's active list until it is finished);
//! 2. `HGETALL job:{id}` → `traceparent`: span `job.executing` (Consumer) continues the
//!    trace as a child of `job.submitted`, and the service span (`comfyui.generate` Client,
//!    `simulation.run` Internal, `openai.request` Client) is its child;
//! 3. `HSET status running machine_id … worker_id … started_at …`, logs "Job received",
//!    "Processing started"; half the service time; `HSET progress 50`, log "Progress 50%";
//!    the other half; the service's own lines (`logs_per_job` − 7 of them);
//! 4. one MULTI/EXEC transaction: `HSET status completed progress 100 completed_at …`, `RPUSH
//!    jobs:completed id`, `LREM jobs:active:{worker_id} 1 id`; log "Job completed".
//!
//! On start and after any Redis failure, the worker first moves its active list back to
//! the pending queue (`LMOVE active pending RIGHT LEFT` until nil), so a job interrupted by
//! a crash runs again (first deleting its own `claimed_by` claims). A job whose hash already
//! says `completed` (its completion landed but its LREM did not) is only LREMed; a job
//! another worker claimed (`HSETNX job:{id} claimed_by`: the same job queued twice by a
//! retried submission) is only LREMed too. Spans opened for an interrupted attempt are ended with
//! an error status, so the lines written in them still resolve to a span.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use redis::RedisResult;
use serde::{Deserialize, Serialize};

use super::config::{AppConfig, LOGS_PER_JOB_MIN};
use super::emit::{AppPipes, Emitter, LogScope, OpenSpan};
use super::keys;
use super::link::{RedisLink, retry_delay};
use super::metrics::{DurationHistogram, HistogramStream, SumStream};
use crate::parts::PartCtx;
use crate::record::{
    Attributes, JobId, MachineId, MachineType, Severity, SpanId, SpanKind, SpanStatus, TraceParent, WorkerId,
};
use crate::vocab::EventKind;
use crate::world::true_elapsed_now;

/// Most jobs moved back from one worker's active list on recovery.
const RECOVER_JOBS_MAX: usize = 10_000;

/// Which machine this host is and how many workers it runs.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MachineSpec {
    pub machine_id: MachineId,
    pub workers: u32,
}

/// The service a machine type runs: its span name and kind.
pub(crate) fn service_span(machine_type: MachineType) -> (&'static str, SpanKind) {
    match machine_type {
        MachineType::Comfyui => ("comfyui.generate", SpanKind::Client),
        MachineType::Simulation => ("simulation.run", SpanKind::Internal),
        MachineType::Openai => ("openai.request", SpanKind::Client),
    }
}

/// What a machine counts for its metrics.
#[derive(Default)]
struct MachineStats {
    completed: u64,
    durations: DurationHistogram,
}

/// Runs a machine host's workers and metrics for one incarnation.
pub async fn run_machine(ctx: PartCtx, config: AppConfig, machine: MachineSpec, pipes: AppPipes) -> turmoil::Result {
    config.validate()?;
    if machine.workers == 0 {
        return Err(format!("machine {}: workers must be at least 1", machine.machine_id).into());
    }
    let emitter = Emitter::new(ctx.clone(), pipes);
    let stats = Arc::new(Mutex::new(MachineStats::default()));
    let started_unix_nano = emitter.now();
    let mut workers = Vec::with_capacity(machine.workers as usize);
    for index in 0..machine.workers {
        let worker = Worker {
            emitter: emitter.clone(),
            config: config.clone(),
            machine_id: machine.machine_id.clone(),
            worker_id: WorkerId::new(&machine.machine_id, index),
            rng: ctx.host.rng(&format!("app/worker-{index}")),
            stats: Arc::clone(&stats),
            unconfirmed: None,
        };
        workers.push(crate::world::spawn(worker.run()));
    }
    let attributes = Attributes::new().with("machine.type", machine.machine_id.machine_type().as_str());
    let temporality = config.metrics_temporality;
    let mut completed = SumStream::new("jobs_completed_total", attributes.clone(), temporality, started_unix_nano);
    let mut durations = HistogramStream::new("job_duration_seconds", attributes, temporality, started_unix_nano);
    let mut interval = tokio::time::interval(config.metrics_interval);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Runs for the incarnation.
    loop {
        interval.tick().await;
        let now = emitter.now();
        let points: Vec<_> = {
            let stats = stats.lock().unwrap_or_else(|p| p.into_inner());
            [completed.collect(stats.completed, now), durations.collect(&stats.durations, now)]
                .into_iter()
                .flatten()
                .collect()
        };
        emitter.metrics(points);
    }
}

/// One worker's state.
struct Worker {
    emitter: Emitter,
    config: AppConfig,
    machine_id: MachineId,
    worker_id: WorkerId,
    rng: ChaCha8Rng,
    stats: Arc<Mutex<MachineStats>>,
    /// A completion transaction whose reply was lost: it may or may not have run.
    unconfirmed: Option<Unconfirmed>,
}

/// A completion sent but not answered (the connection broke during EXEC). If it ran, the
/// job is done and no longer in the active list, so it will not run again: the worker must
/// count it once it can tell, or `jobs_completed_total` falls short of the jobs that ran.
struct Unconfirmed {
    job_id: JobId,
    job_key: String,
    /// The `completed_at` this attempt wrote: only this attempt's transaction sets it.
    completed_at: String,
    /// Execution time, for the duration histogram.
    took: Duration,
}

/// Why a job attempt stopped early.
type Interrupted = (redis::RedisError, Vec<OpenSpan>);

impl Worker {
    async fn run(mut self) {
        let machine_type = self.machine_id.machine_type();
        let (pending, active) = (keys::pending(machine_type), keys::active(&self.worker_id));
        let mut link = RedisLink::new(
            self.emitter.ctx(),
            self.config.redis_timeout,
            self.config.redis_timeout + self.config.blmove_timeout,
        );
        let mut recovered = false;
        let mut failures = 0u32;
        // Runs for the incarnation; failing passes sleep.
        loop {
            let step: Result<(), Interrupted> = async {
                self.confirm_completion(&mut link).await.map_err(|e| (e, Vec::new()))?;
                if !recovered {
                    let moved = recover_active(&mut link, &active, &pending, &self.worker_id)
                        .await
                        .map_err(|e| (e, Vec::new()))?;
                    if moved > 0 {
                        self.emitter
                            .ctx()
                            .host
                            .record(EventKind::AppJobsRequeued, format!("{}: {moved} jobs", self.worker_id));
                    }
                    recovered = true;
                }
                let conn = link.conn().await.map_err(|e| (e, Vec::new()))?;
                let taken: Option<String> = redis::cmd("BLMOVE")
                    .arg(&pending)
                    .arg(&active)
                    .arg("LEFT")
                    .arg("RIGHT")
                    .arg(crate::parts::redis_client::timeout_arg(self.config.blmove_timeout))
                    .query_async(conn)
                    .await
                    .map_err(|e| (e, Vec::new()))?;
                match taken {
                    Some(job_text) => self.run_job(&mut link, &active, &job_text).await,
                    None => Ok(()),
                }
            }
            .await;
            match step {
                Ok(()) => failures = 0,
                Err((error, spans)) => {
                    self.emitter.end_spans(spans, SpanStatus::Error { message: format!("interrupted: {error}") });
                    link.reset();
                    recovered = false;
                    let delay = retry_delay(&mut self.rng, failures);
                    failures = failures.saturating_add(1);
                    self.emitter.ctx().host.record(EventKind::AppRedisError, format!("{}: {error}", self.worker_id));
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }

    /// After a restart with a completion whose write was not confirmed: reads the job's
    /// `completed_at` back to learn whether the write landed, and counts the job as ran
    /// only if it did. Nothing unconfirmed: nothing to do.
    async fn confirm_completion(&mut self, link: &mut RedisLink) -> Result<(), redis::RedisError> {
        let Some(unconfirmed) = &self.unconfirmed else { return Ok(()) };
        let conn = link.conn().await?;
        let written: Option<String> =
            redis::cmd("HGET").arg(&unconfirmed.job_key).arg("completed_at").query_async(conn).await?;
        let ran = written.as_deref() == Some(unconfirmed.completed_at.as_str());
        if ran {
            let mut stats = self.stats.lock().unwrap_or_else(|p| p.into_inner());
            stats.completed += 1;
            stats.durations.observe(unconfirmed.took.as_secs_f64());
            self.config.job_book.ran(unconfirmed.job_id);
        }
        self.emitter.ctx().host.record(
            EventKind::AppCompletionConfirmed,
            format!("{} {}: {}", self.worker_id, unconfirmed.job_key, if ran { "ran" } else { "did not run" }),
        );
        self.unconfirmed = None;
        Ok(())
    }

    /// Steps 2–4 for one job (see the module docs), each a step below: claim it, open its
    /// spans, run it, complete it.
    async fn run_job(&mut self, link: &mut RedisLink, active: &str, job_text: &str) -> Result<(), Interrupted> {
        let job_key = format!("job:{job_text}");
        let claimed = self.claim(link, active, job_text, &job_key).await.map_err(|e| (e, Vec::new()))?;
        let Some((job_id, traceparent)) = claimed else { return Ok(()) };
        let machine_type = self.machine_id.machine_type();
        let started_true = true_elapsed_now();
        let (executing, service) = self.open_job_spans(job_id, &traceparent, machine_type);
        let exec_scope = executing.scope();
        let mut open = vec![service.clone(), executing.clone()];

        // 3. Running.
        let service_time = match self.run_service(link, &job_key, &exec_scope, service.name, machine_type).await {
            Ok(service_time) => service_time,
            Err(error) => return Err((error, open)),
        };
        // The service's own lines, then its span ends.
        let service_lines = (self.config.workload.logs_per_job.max(LOGS_PER_JOB_MIN) - 7) as usize;
        let texts: Vec<String> =
            (1..=service_lines).map(|i| format!("{} step {i}/{service_lines}", service.name)).collect();
        let lines: Vec<(Severity, &str)> = texts.iter().map(|t| (Severity::Info, t.as_str())).collect();
        self.emitter.logs(&service.scope(), &lines);
        self.emitter.end_spans(vec![service], SpanStatus::Ok);
        open.remove(0);

        // 4. Completion.
        if let Err(error) = self.complete(link, active, job_text, &job_key, job_id, started_true).await {
            return Err((error, open));
        }
        let done = format!("Job completed in {}ms", service_time.as_millis());
        self.emitter.logs(&exec_scope, &[(Severity::Info, &done)]);
        self.emitter.end_spans(open, SpanStatus::Ok);
        let mut stats = self.stats.lock().unwrap_or_else(|p| p.into_inner());
        stats.completed += 1;
        stats.durations.observe((true_elapsed_now() - started_true).as_secs_f64());
        // The ground truth, counted where the metric counts (no await in between: a crash
        // cannot separate them).
        self.config.job_book.ran(job_id);
        Ok(())
    }

    /// Step 2: reads the job's hash and claims it. `None` (after taking it off the active
    /// list) when it has no valid traceparent, is already completed, or another worker
    /// claimed it.
    async fn claim(
        &mut self,
        link: &mut RedisLink,
        active: &str,
        job_text: &str,
        job_key: &str,
    ) -> RedisResult<Option<(JobId, TraceParent)>> {
        let fields: Vec<(String, String)> = redis::cmd("HGETALL").arg(job_key).query_async(link.conn().await?).await?;
        let field = |name: &str| fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        let job_id = JobId::parse(job_text);
        let traceparent = field("traceparent").map(|t| TraceParent::parse(&t));
        let (Ok(job_id), Some(Ok(traceparent))) = (job_id, traceparent) else {
            self.emitter
                .ctx()
                .host
                .record(EventKind::AppJobInvalid, format!("{job_text}: no job hash with a valid traceparent"));
            return self.lrem(link, active, job_text).await.map(|()| None);
        };
        if field("status").as_deref() == Some("completed") {
            self.emitter.ctx().host.record(EventKind::AppJobAlreadyCompleted, job_text.to_string());
            return self.lrem(link, active, job_text).await.map(|()| None);
        }
        // Claim the job: it can sit in the pending queue twice (the API's submission retried
        // after a timeout can land twice), and two workers must not both run it. A claim of
        // our own is a rerun of ours (after a crash or a lost connection).
        let claimed: bool = redis::cmd("HSETNX")
            .arg(job_key)
            .arg("claimed_by")
            .arg(self.worker_id.as_str())
            .query_async(link.conn().await?)
            .await?;
        if !claimed && field("claimed_by").as_deref() != Some(self.worker_id.as_str()) {
            self.emitter
                .ctx()
                .host
                .record(EventKind::AppJobClaimedElsewhere, format!("{job_text} by {}", self.worker_id));
            return self.lrem(link, active, job_text).await.map(|()| None);
        }
        Ok(Some((job_id, traceparent)))
    }

    /// Opens the job's `job.executing` span (continuing the API's trace) and the service's
    /// span inside it.
    fn open_job_spans(
        &mut self,
        job_id: JobId,
        traceparent: &TraceParent,
        machine_type: MachineType,
    ) -> (OpenSpan, OpenSpan) {
        // Planted bug `api_new_trace_at_redis_hop` (`crate::parts::bugs`): the job's trace is not
        // continued across Redis; the worker opens a fresh trace with no parent.
        let new_trace = self.config.bugs.api_new_trace_at_redis_hop;
        let (trace_id, parent_id) = if new_trace {
            (crate::record::TraceId::random(&mut self.rng), None)
        } else {
            (traceparent.trace_id, Some(traceparent.parent_id))
        };
        let base = LogScope {
            trace_id,
            span_id: SpanId::random(&mut self.rng),
            job_id,
            machine_id: Some(self.machine_id.clone()),
            worker_id: Some(self.worker_id.clone()),
        };
        let executing = self.emitter.open("job.executing", SpanKind::Consumer, base.span_id, parent_id, &base);
        let (service_name, service_kind) = service_span(machine_type);
        let service = self.emitter.open(
            service_name,
            service_kind,
            SpanId::random(&mut self.rng),
            Some(executing.span_id),
            &base,
        );
        (executing, service)
    }

    /// Step 3: marks the job running, runs the service for its drawn time with a progress
    /// update half-way; returns the service time.
    async fn run_service(
        &mut self,
        link: &mut RedisLink,
        job_key: &str,
        exec_scope: &LogScope,
        service_name: &str,
        machine_type: MachineType,
    ) -> RedisResult<Duration> {
        let now_text = self.emitter.now().to_string();
        let running = redis::cmd("HSET")
            .arg(job_key)
            .arg("status")
            .arg("running")
            .arg("machine_id")
            .arg(self.machine_id.as_str())
            .arg("worker_id")
            .arg(self.worker_id.as_str())
            .arg("started_at")
            .arg(&now_text)
            .clone();
        running.query_async::<()>(link.conn().await?).await?;
        let received = format!("Job received by {}", self.worker_id);
        let started = format!("Processing started: {service_name}");
        self.emitter.logs(exec_scope, &[(Severity::Info, &received), (Severity::Info, &started)]);

        let kind = self.config.machine_type(machine_type);
        let (min, max) = (kind.service_time_min.as_nanos() as u64, kind.service_time_max.as_nanos() as u64);
        let service_time = Duration::from_nanos(self.rng.random_range(min..=max));
        tokio::time::sleep(service_time / 2).await;
        let progress = redis::cmd("HSET").arg(job_key).arg("progress").arg(50).clone();
        progress.query_async::<()>(link.conn().await?).await?;
        self.emitter.logs(exec_scope, &[(Severity::Info, "Progress 50%")]);
        tokio::time::sleep(service_time - service_time / 2).await;
        Ok(service_time)
    }

    /// Step 4: state, event, ack in one transaction (MULTI/EXEC): a plain pipeline is not
    /// atomic, so under `maxmemory` the denyoom HSET and RPUSH were refused while the LREM
    /// ran, and the job vanished from every list. A broken connection leaves the outcome
    /// unknown: it is remembered as unconfirmed, to be read back after reconnecting.
    async fn complete(
        &mut self,
        link: &mut RedisLink,
        active: &str,
        job_text: &str,
        job_key: &str,
        job_id: JobId,
        started_true: Duration,
    ) -> RedisResult<()> {
        let completed_at = self.emitter.now().to_string();
        let mut pipeline = redis::pipe();
        pipeline
            .atomic()
            .cmd("HSET")
            .arg(job_key)
            .arg("status")
            .arg("completed")
            .arg("progress")
            .arg(100)
            .arg("completed_at")
            .arg(&completed_at)
            .ignore()
            .cmd("RPUSH")
            .arg(keys::COMPLETED)
            .arg(job_text)
            .ignore()
            .cmd("LREM")
            .arg(active)
            .arg(1)
            .arg(job_text)
            .ignore();
        let conn = link.conn().await?;
        let Err(error) = pipeline.query_async::<()>(conn).await else { return Ok(()) };
        // A refusal (OOM, EXECABORT) is an answer: nothing ran. A broken connection is
        // not: the transaction may have run; find out after reconnecting.
        if error.is_io_error() || error.is_timeout() || error.is_connection_dropped() {
            self.unconfirmed = Some(Unconfirmed {
                job_id,
                job_key: job_key.to_owned(),
                completed_at,
                took: true_elapsed_now() - started_true,
            });
        }
        Err(error)
    }

    async fn lrem(&mut self, link: &mut RedisLink, active: &str, job_text: &str) -> RedisResult<()> {
        let conn = link.conn().await?;
        redis::cmd("LREM").arg(active).arg(1).arg(job_text).query_async::<()>(conn).await
    }
}

/// Moves the worker's unfinished jobs back to the head of the pending queue, in order.
async fn recover_active(link: &mut RedisLink, active: &str, pending: &str, worker_id: &WorkerId) -> RedisResult<usize> {
    let conn = link.conn().await?;
    // Give up our claims first, so whoever takes the job next may run it; only the claimant
    // deletes a claim (HSETNX never overwrites one), so read-then-delete cannot race.
    let held: Vec<String> = redis::cmd("LRANGE").arg(active).arg(0).arg(RECOVER_JOBS_MAX - 1).query_async(conn).await?;
    for job_text in &held {
        let job_key = format!("job:{job_text}");
        let owner: Option<String> = redis::cmd("HGET").arg(&job_key).arg("claimed_by").query_async(conn).await?;
        if owner.as_deref() == Some(worker_id.as_str()) {
            redis::cmd("HDEL").arg(&job_key).arg("claimed_by").query_async::<()>(conn).await?;
        }
    }
    for moved in 0..RECOVER_JOBS_MAX {
        let value: Option<String> =
            redis::cmd("LMOVE").arg(active).arg(pending).arg("RIGHT").arg("LEFT").query_async(conn).await?;
        if value.is_none() {
            return Ok(moved);
        }
    }
    Err(redis::RedisError::from((redis::ErrorKind::Client, "jobs:active list longer than RECOVER_JOBS_MAX")))
}
