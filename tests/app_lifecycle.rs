//! The job lifecycle end to end against a fake Redis: the client submits, the API opens the
//! trace and queues, machines' workers take, run and complete jobs, the API sees every
//! completion; every line and span carries consistent ids and forms one trace per job; a
//! crashed machine's job runs again; dev hosts POST JSON and drop with a cause when the
//! aggregator stays away.

#[path = "shipper_fakes.rs"]
mod fakes;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use fakes::FakeRedis;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use obsim::ledger::{Custodian, Ledger, Outcome};
use obsim::parts::PartCtx;
use obsim::parts::app::{self, AppConfig, AppPipes, DevSpec, MachineSpec};
use obsim::record::{JobId, LogRecord, MachineId, MachineType, MetricValue, Number, SourceId, Span, SpanId};
use obsim::vocab::hosts;
use obsim::vocab::{EventKind, LossCause, Part, Signal};
use obsim::world::WorldBuilder;

fn config(submit_for_secs: u64) -> AppConfig {
    let mut config = AppConfig::default().only_types(&[MachineType::Comfyui, MachineType::Openai]);
    config.workload.jobs_per_second = 2.0;
    config.workload.logs_per_job = 10;
    config.workload.submit_for = Duration::from_secs(submit_for_secs);
    config.comfyui.service_time_min = Duration::from_secs(1);
    config.comfyui.service_time_max = Duration::from_secs(3);
    config.openai.service_time_min = Duration::from_millis(500);
    config.openai.service_time_max = Duration::from_secs(1);
    config.metrics_interval = Duration::from_secs(5);
    config
}

struct Run {
    world: obsim::world::World<'static>,
    ledger: Ledger,
    redis: FakeRedis,
    /// Pipes per host name.
    pipes: BTreeMap<String, AppPipes>,
}

impl Run {
    fn logs(&self) -> Vec<(String, LogRecord)> {
        self.pipes
            .iter()
            .flat_map(|(host, p)| p.logs.take(usize::MAX).into_iter().map(move |r| (host.clone(), r)))
            .collect()
    }
    fn spans(&self) -> Vec<Span> {
        self.pipes.values().flat_map(|p| p.spans.take(usize::MAX)).collect()
    }
}

fn lifecycle(seed: u64, config: AppConfig, machines: &[(&str, u32)]) -> Run {
    let ledger = Ledger::new();
    let mut world = WorldBuilder::new(seed).duration(Duration::from_secs(600)).build();
    let redis = FakeRedis::new();
    let r = redis.clone();
    world.host(hosts::REDIS, move |_| r.clone().serve());
    let mut pipes = BTreeMap::new();
    let api_pipes = AppPipes::new(config.log_pipe_records_limit);
    pipes.insert(hosts::API.to_string(), api_pipes.clone());
    let (l, c) = (ledger.clone(), config.clone());
    world.host(hosts::API, move |host| app::run_api(PartCtx::new(host, l.clone()), c.clone(), api_pipes.clone()));
    for (machine_id, workers) in machines {
        let spec = MachineSpec { machine_id: MachineId::parse(machine_id).unwrap(), workers: *workers };
        let machine_pipes = AppPipes::new(config.log_pipe_records_limit);
        pipes.insert(machine_id.to_string(), machine_pipes.clone());
        let (l, c) = (ledger.clone(), config.clone());
        world.host(machine_id, move |host| {
            app::run_machine(PartCtx::new(host, l.clone()), c.clone(), spec.clone(), machine_pipes.clone())
        });
    }
    Run { world, ledger, redis, pipes }
}

/// Ids: formats, worker belongs to machine, machine lines come from that machine's host,
/// and every job wrote its `logs_per_job` lines.
fn assert_ids_consistent(logs: &[(String, LogRecord)]) {
    let mut per_job: BTreeMap<JobId, usize> = BTreeMap::new();
    for (host, record) in logs {
        assert!(record.ids_consistent(), "{record:?}");
        let job = record.job_id.to_string();
        assert!(job.starts_with("job-") && job.len() == 40, "{job}");
        assert_eq!(record.trace_id.to_string().len(), 32);
        if host != hosts::API {
            assert_eq!(record.machine_id.as_ref().map(|m| m.as_str()), Some(host.as_str()));
            assert!(record.worker_id.as_ref().unwrap().as_str().starts_with(&format!("{host}-worker-")));
        }
        *per_job.entry(record.job_id).or_default() += 1;
    }
    assert!(per_job.values().all(|&count| count == 10), "logs_per_job lines per job: {per_job:?}");
}

/// Spans: one tree per job, submitted → executing → service, and submitted → completed;
/// every line resolves to a stored span of the same trace, job and machine.
fn assert_one_span_tree_per_job(spans: &[Span], logs: &[(String, LogRecord)]) {
    let by_id: BTreeMap<SpanId, &Span> = spans.iter().map(|s| (s.span_id, s)).collect();
    assert_eq!(by_id.len(), spans.len(), "span ids are unique");
    let mut names_per_job: BTreeMap<JobId, Vec<String>> = BTreeMap::new();
    for span in spans {
        names_per_job.entry(span.job_id).or_default().push(span.name.clone());
        let parent = span.parent_span_id.map(|p| by_id[&p]);
        match span.name.as_str() {
            "job.submitted" => assert!(parent.is_none()),
            "job.executing" | "job.completed" => assert_eq!(parent.unwrap().name, "job.submitted"),
            "comfyui.generate" | "openai.request" => assert_eq!(parent.unwrap().name, "job.executing"),
            other => panic!("unexpected span {other}"),
        }
        if let Some(parent) = parent {
            assert_eq!((parent.trace_id, parent.job_id), (span.trace_id, span.job_id), "a job's spans share its trace");
        }
        assert!(span.end_time_unix_nano >= span.start_time_unix_nano);
    }
    for (job, names) in &names_per_job {
        assert_eq!(names.len(), 4, "{job}: {names:?}");
    }
    // Every line resolves to a stored span of the same trace, job and machine.
    for (_, record) in logs {
        let span = by_id.get(&record.span_id).unwrap_or_else(|| panic!("line without span: {record:?}"));
        assert_eq!((span.trace_id, span.job_id), (record.trace_id, record.job_id));
        assert_eq!(span.machine_id, record.machine_id);
        assert_eq!(span.worker_id, record.worker_id);
    }
}

#[test]
fn jobs_flow_from_api_to_machines_and_back_with_one_consistent_trace_each() {
    let mut run = lifecycle(21, config(20), &[("comfyui-1", 2), ("openai-1", 2)]);
    run.world.run_for(Duration::from_secs(60)).unwrap();
    let (logs, spans) = (run.logs(), run.spans());

    // Every submitted job completed, and the API saw its completion event.
    let created: BTreeSet<JobId> =
        logs.iter().filter(|(_, r)| r.body.starts_with("Job created")).map(|(_, r)| r.job_id).collect();
    let seen: BTreeSet<JobId> = logs
        .iter()
        .filter(|(h, r)| h == hosts::API && r.body.starts_with("Job completed"))
        .map(|(_, r)| r.job_id)
        .collect();
    assert!(created.len() >= 25, "about 2 jobs/s for 20 s, got {}", created.len());
    assert_eq!(created, seen, "every job's completion reached the API");
    for job in &created {
        assert_eq!(run.redis.hash(&format!("job:{job}"))["status"], "completed");
    }
    for key in ["jobs:pending:comfyui", "jobs:pending:openai", "jobs:completed", "jobs:completed:processing"] {
        assert!(run.redis.list(key).is_empty(), "{key} drained");
    }
    for worker in ["comfyui-1-worker-0", "comfyui-1-worker-1", "openai-1-worker-0", "openai-1-worker-1"] {
        assert!(run.redis.list(&format!("jobs:active:{worker}")).is_empty());
    }

    assert_ids_consistent(&logs);
    assert_one_span_tree_per_job(&spans, &logs);

    // Ledger: every source emitted gap-free seqs, all of them are in the pipes.
    let mut seqs: BTreeMap<SourceId, Vec<u64>> = BTreeMap::new();
    for id in logs.iter().map(|(_, r)| r.id).chain(spans.iter().map(|s| s.id)) {
        seqs.entry(id.source).or_default().push(id.seq);
    }
    for (source, mut list) in seqs {
        list.sort_unstable();
        assert_eq!(list, (0..list.len() as u64).collect::<Vec<_>>(), "source {:?}", run.ledger.source_name(source));
    }
    let account = run.ledger.account();
    assert_eq!(account.totals[&Signal::Log].emitted, logs.len() as u64);
    assert_eq!(account.totals[&Signal::Span].emitted, spans.len() as u64);

    // Metrics agree with what ran.
    let metrics: Vec<_> = run.pipes.values().flat_map(|p| p.metrics.take(usize::MAX)).collect();
    let last_int = |name: &str, host_points: &[obsim::record::MetricPoint]| -> i64 {
        match &host_points.iter().rev().find(|p| p.name == name).unwrap().value {
            MetricValue::Sum { value: Number::Int(v), .. } => *v,
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(last_int("jobs_submitted_total", &metrics), created.len() as i64);
    let completed: i64 = ["comfyui", "openai"]
        .iter()
        .map(|t| {
            let points: Vec<_> = metrics
                .iter()
                .filter(|p| {
                    p.attributes.get("machine.type").is_some_and(|v| *v == obsim::record::AttrValue::Str(t.to_string()))
                })
                .cloned()
                .collect();
            last_int("jobs_completed_total", &points)
        })
        .sum();
    assert_eq!(completed, created.len() as i64);
    assert!(
        metrics.iter().any(|p| p.name == "queue_depth") && metrics.iter().any(|p| p.name == "job_duration_seconds")
    );
}

#[test]
fn a_machine_crash_mid_job_requeues_the_job_and_it_completes_after_restart() {
    let mut config = config(2);
    config.workload.jobs_per_second = 1.0;
    config.comfyui.service_time_min = Duration::from_secs(10);
    config.comfyui.service_time_max = Duration::from_secs(10);
    let config = config.only_types(&[MachineType::Comfyui]);
    let mut run = lifecycle(22, config, &[("comfyui-1", 1)]);
    run.world.run_for(Duration::from_secs(5)).unwrap();
    let active = run.redis.list("jobs:active:comfyui-1-worker-0");
    assert_eq!(active.len(), 1, "the worker holds a job when the machine dies");
    run.world.kill("comfyui-1");
    run.ledger.host_lost("comfyui-1", obsim::ledger::HostLoss::Process);
    run.world.run_for(Duration::from_secs(7)).unwrap();
    run.world.restart("comfyui-1");
    run.world.run_for(Duration::from_secs(60)).unwrap();
    let logs = run.logs();
    let created: BTreeSet<JobId> =
        logs.iter().filter(|(_, r)| r.body.starts_with("Job created")).map(|(_, r)| r.job_id).collect();
    assert!(!created.is_empty());
    for job in &created {
        assert_eq!(run.redis.hash(&format!("job:{job}"))["status"], "completed", "{job}");
        let seen = logs
            .iter()
            .filter(|(h, r)| h == hosts::API && r.job_id == *job && r.body.starts_with("Job completed"))
            .count();
        assert_eq!(seen, 1, "{job} completion reached the API once");
    }
    let interrupted = JobId::parse(std::str::from_utf8(&active[0]).unwrap()).unwrap();
    assert!(created.contains(&interrupted));
    assert!(
        run.world
            .events()
            .kept()
            .iter()
            .any(|e| e.kind == EventKind::AppJobsRequeued && e.detail.contains("comfyui-1-worker-0: 1 jobs"))
    );
    // The first incarnation's undelivered lines are lost with the app's crash cause, not silently.
    let account = run.ledger.account();
    assert!(account.undelivered(Signal::Log).all(|(o, _)| !matches!(o, obsim::ledger::Outcome::LostSilently)));
}

#[test]
fn the_same_seed_replays_the_same_lifecycle() {
    let hash = |seed| {
        let mut run = lifecycle(seed, config(10), &[("comfyui-1", 1), ("openai-1", 1)]);
        run.world.run_for(Duration::from_secs(20)).unwrap().hash
    };
    assert_eq!(hash(23), hash(23));
}

/// One accepted POST: path, content type, records.
type Received = (String, String, Vec<LogRecord>);

/// A fake Fluentd in_http: answers `statuses` in order, then 200; keeps the records and,
/// standing in for the rest of the pipeline, marks accepted ones delivered.
#[derive(Clone, Default)]
struct FakeInHttp {
    ledger: Ledger,
    statuses: Arc<Mutex<Vec<u16>>>,
    /// (path, content type, records) of accepted POSTs.
    received: Arc<Mutex<Vec<Received>>>,
}

impl FakeInHttp {
    async fn serve(self) -> turmoil::Result {
        let listener = turmoil::net::TcpListener::bind(("0.0.0.0", 24224)).await?;
        loop {
            let (stream, _) = listener.accept().await?;
            let fake = self.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request: http::Request<hyper::body::Incoming>| {
                    let fake = fake.clone();
                    async move {
                        let path = request.uri().path().to_string();
                        let content_type = request.headers()["content-type"].to_str().unwrap().to_string();
                        let body = request.into_body().collect().await.unwrap().to_bytes();
                        let records: Vec<LogRecord> = serde_json::from_slice(&body).expect("a JSON array of records");
                        let status = {
                            let mut statuses = fake.statuses.lock().unwrap();
                            if statuses.is_empty() { 200 } else { statuses.remove(0) }
                        };
                        if status == 200 {
                            let ids: Vec<_> = records.iter().map(|r| r.id).collect();
                            fake.ledger.deliver(&ids, obsim::world::true_elapsed_now().as_nanos() as u64);
                            fake.received.lock().unwrap().push((path, content_type, records));
                        }
                        Ok::<_, std::convert::Infallible>(
                            http::Response::builder().status(status).body(Full::new(Bytes::new())).unwrap(),
                        )
                    }
                });
                let _ =
                    hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
            });
        }
    }
}

#[test]
fn dev_hosts_post_json_retry_and_drop_with_a_cause_when_the_aggregator_stays_away() {
    let mut config = AppConfig::default();
    config.dev.logs_per_second = 4;
    config.dev.retry_limit = 3;
    let ledger = Ledger::new();
    let mut world = WorldBuilder::new(24).duration(Duration::from_secs(600)).build();
    // First POST: 503 twice then accepted; later the aggregator is partitioned away.
    let fake =
        FakeInHttp { statuses: Arc::new(Mutex::new(vec![503, 503])), ledger: ledger.clone(), ..FakeInHttp::default() };
    let f = fake.clone();
    world.host(hosts::AGGREGATOR, move |_| f.clone().serve());
    let (l, c) = (ledger.clone(), config.clone());
    world.host("dev-1", move |host| app::run_dev(PartCtx::new(host, l.clone()), c.clone(), DevSpec::default()));
    world.run_for(Duration::from_secs(10)).unwrap();
    let received = fake.received.lock().unwrap().clone();
    assert!(received.len() >= 5, "{} posts", received.len());
    for (path, content_type, records) in &received {
        assert_eq!((path.as_str(), content_type.as_str()), ("/dev.app", "application/json"));
        assert_eq!(records.len(), 4);
        assert!(
            records
                .iter()
                .all(|r| r.attributes.get("source.kind") == Some(&obsim::record::AttrValue::Str("dev".into())))
        );
        assert!(records.iter().all(|r| r.machine_id.is_none() && r.worker_id.is_none()));
    }
    world.partition("dev-1", hosts::AGGREGATOR);
    world.run_for(Duration::from_secs(60)).unwrap();
    let account = ledger.account();
    let lost: Vec<(Outcome, u64)> = account
        .undelivered(Signal::Log)
        .filter(|(o, _)| matches!(o, Outcome::Lost { .. }))
        .map(|(o, t)| (o.clone(), t.count))
        .collect();
    assert_eq!(lost.len(), 1, "{lost:?}");
    let dev = Custodian { part: Part::App, host: Arc::from("dev-1") };
    assert_eq!(lost[0].0, Outcome::Lost { cause: LossCause::AppDevHttpFailed, custodian: dev });
    assert!(lost[0].1 >= 4 && lost[0].1.is_multiple_of(4), "whole batches dropped: {lost:?}");
    assert!(account.undelivered(Signal::Log).all(|(o, _)| !matches!(o, obsim::ledger::Outcome::LostSilently)));
    let received_count: usize = fake.received.lock().unwrap().iter().map(|(_, _, r)| r.len()).sum();
    assert_eq!(account.totals[&Signal::Log].delivered, received_count as u64);
    // The first batch got through on its third attempt: retried, not dropped.
    assert_eq!(received[0].2[0].id.seq, 0);
}

/// Workers whose Redis connection dies in a partition notice it through their timeouts,
/// reconnect after the repair and re-queue the jobs in their active lists. Every job
/// completes except one the partition strands — a finding of the TCP model, pinned here:
/// the `BLMOVE` a worker sent into the partition waits in its kernel's send buffer; the
/// worker times out, closes the connection, reconnects and recovers its active list; then
/// the old connection's retransmission delivers the `BLMOVE` (a kernel keeps sending what
/// a closed socket still holds), Redis executes it, and a job moves into the active list of
/// a worker that never learns of it and recovers its list only after its next failure.
/// Before obsim modelled retransmission, turmoil dropped that `BLMOVE` and every job
/// completed — a verdict real TCP would not give.
#[test]
fn a_machine_partitioned_from_redis_recovers_but_a_blmove_retransmitted_after_recovery_strands_a_job() {
    let mut run = lifecycle(25, config(20), &[("comfyui-1", 2), ("openai-1", 2)]);
    run.world.run_for(Duration::from_secs(8)).unwrap();
    run.world.partition("comfyui-1", hosts::REDIS);
    run.world.run_for(Duration::from_secs(20)).unwrap();
    run.world.repair("comfyui-1", hosts::REDIS);
    run.world.run_for(Duration::from_secs(90)).unwrap();
    let logs = run.logs();
    let created: BTreeSet<JobId> =
        logs.iter().filter(|(_, r)| r.body.starts_with("Job created")).map(|(_, r)| r.job_id).collect();
    let seen: BTreeSet<JobId> = logs
        .iter()
        .filter(|(h, r)| h == hosts::API && r.body.starts_with("Job completed"))
        .map(|(_, r)| r.job_id)
        .collect();
    assert!(created.len() >= 25);
    let stranded: BTreeSet<JobId> = created.difference(&seen).copied().collect();
    let active: BTreeSet<String> = (0..=2)
        .flat_map(|index| run.redis.list(&format!("jobs:active:comfyui-1-worker-{index}")))
        .map(|id| String::from_utf8_lossy(&id).into_owned())
        .collect();
    assert_eq!(stranded.len(), 1, "one BLMOVE in flight at the partition lands after recovery: {stranded:?}");
    for job in &stranded {
        assert!(active.contains(&job.to_string()), "{job} is stranded in a worker's active list: {active:?}");
    }
    assert!(
        run.world
            .events()
            .kept()
            .iter()
            .any(|e| e.kind == EventKind::AppRedisError && e.detail.starts_with("comfyui-1-worker"))
    );
    // Lines written in an interrupted attempt still resolve to a (failed) span.
    let spans = run.spans();
    let span_ids: BTreeSet<SpanId> = spans.iter().map(|s| s.span_id).collect();
    assert!(logs.iter().all(|(_, r)| span_ids.contains(&r.span_id)));
}
