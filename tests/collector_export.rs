//! The OTel Collector on a machine exporting to Dash0 over OTLP/gRPC in a small world: the
//! Dash0 host and one machine host whose app pushes spans (and metric points) into the
//! collector's pipes on a schedule. Each test asserts exact ledger outcomes.

use std::sync::Arc;
use std::time::Duration;

use obsim::ledger::{Custodian, Durability, Ledger, Outcome};
use obsim::parts::collector::{self, CollectorConfig};
use obsim::parts::dash0::{self, Dash0Config, Dash0Control, Dash0Store, ScriptedErrors};
use obsim::parts::{PartCtx, RecordPipe};
use obsim::record::{
    Attributes, JobId, MetricPoint, MetricValue, Number, RecordId, Resource, SourceId, Span, SpanId, SpanKind,
    SpanStatus, Temporality, TraceId,
};
use obsim::vocab::hosts;
use obsim::vocab::{EventKind, LossCause, Part, Signal};
use obsim::world::{Event, World, WorldBuilder, true_elapsed_now};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

const MACHINE: &str = "comfyui-1";

struct Rig {
    world: World<'static>,
    ledger: Ledger,
    store: Dash0Store,
    control: Dash0Control,
    source: SourceId,
}

/// The app's schedule: at each true time, push this many spans (and metric points).
#[derive(Clone)]
struct Push {
    at: Duration,
    spans: u64,
    metric_points: u64,
}

fn pushes(first: Duration, every: Duration, times: u32, spans: u64) -> Vec<Push> {
    (0..times).map(|i| Push { at: first + every * i, spans, metric_points: 0 }).collect()
}

fn span(source: SourceId, seq: u64, rng: &mut ChaCha8Rng, now: u64) -> Span {
    Span {
        trace_id: TraceId::random(rng),
        span_id: SpanId::random(rng),
        parent_span_id: None,
        name: "job.executing".into(),
        kind: SpanKind::Consumer,
        start_time_unix_nano: now - 1_000_000,
        end_time_unix_nano: now,
        status: SpanStatus::Ok,
        job_id: JobId::random(rng),
        machine_id: None,
        worker_id: None,
        id: RecordId::new(source, seq),
        attributes: Attributes::new(),
    }
}

fn point(seq: u64, now: u64) -> MetricPoint {
    MetricPoint {
        name: "jobs.completed".into(),
        unit: "{job}".into(),
        start_time_unix_nano: now - 1_000_000_000,
        time_unix_nano: now,
        attributes: Attributes::new(),
        value: MetricValue::Sum { temporality: Temporality::Delta, monotonic: true, value: Number::Int(seq as i64) },
    }
}

/// Dash0 plus a machine running the collector with `config` and an app following `schedule`.
fn rig(seed: u64, config: CollectorConfig, schedule: Vec<Push>, duration: Duration) -> Rig {
    let mut world = WorldBuilder::new(seed).duration(duration).build();
    let (ledger, store, control) = (Ledger::new(), Dash0Store::new(), Dash0Control::new());
    let (l, s, c) = (ledger.clone(), store.clone(), control.clone());
    world.host(hosts::DASH0, move |host| {
        let ctx = PartCtx::new(host, l.clone());
        dash0::run(ctx, Dash0Config::default(), c.clone(), s.clone())
    });
    let source = ledger.register_source("comfyui-1/spans", Signal::Span);
    let l = ledger.clone();
    world.host(MACHINE, move |host| {
        let ctx = PartCtx::new(host.clone(), l.clone());
        let (config, schedule) = (config.clone(), schedule.clone());
        async move {
            let spans: RecordPipe<Span> = RecordPipe::new(100_000);
            let metrics: RecordPipe<MetricPoint> = RecordPipe::new(100_000);
            let resource = Resource::new("emp-worker").with_machine_id(MACHINE);
            tokio::spawn(app(ctx.clone(), source, schedule, spans.clone(), metrics.clone()));
            collector::run(ctx, config, spans, metrics, resource).await
        }
    });
    Rig { world, ledger, store, control, source }
}

/// The app: emits spans as the ledger expects (emit, hold as App, push).
async fn app(
    ctx: PartCtx,
    source: SourceId,
    schedule: Vec<Push>,
    spans: RecordPipe<Span>,
    metrics: RecordPipe<MetricPoint>,
) {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let app = ctx.custodian(Part::App);
    let mut next_point = 0;
    for push in schedule {
        tokio::time::sleep(push.at.saturating_sub(true_elapsed_now())).await;
        let now = ctx.host.clock().now_unix_nanos();
        let first = ctx.ledger.emit(source, push.spans, true_elapsed_now().as_nanos() as u64);
        let batch: Vec<Span> = (first..first + push.spans).map(|seq| span(source, seq, &mut rng, now)).collect();
        let ids: Vec<RecordId> = batch.iter().map(|s| s.id).collect();
        ctx.ledger.hold(&app, &ids, Durability::Volatile);
        spans.push(batch).expect("the test pipe is large enough");
        let points: Vec<MetricPoint> = (next_point..next_point + push.metric_points).map(|i| point(i, now)).collect();
        next_point += push.metric_points;
        metrics.push(points).expect("the test pipe is large enough");
    }
}

fn collector_custodian() -> Custodian {
    Custodian { part: Part::Collector, host: Arc::from(MACHINE) }
}

fn undelivered(ledger: &Ledger) -> Vec<(Outcome, u64)> {
    ledger.account().undelivered(Signal::Span).map(|(outcome, tally)| (outcome.clone(), tally.count)).collect()
}

fn events(world: &World<'_>, kind: EventKind) -> Vec<Event> {
    world.events().kept().into_iter().filter(|e| e.kind == kind).collect()
}

fn failing(status: u16) -> Option<ScriptedErrors> {
    Some(ScriptedErrors { status, rate: 1.0, retry_after: None })
}

#[test]
fn spans_and_metric_points_reach_dash0_in_batches() {
    // 10 spans every 50 ms for 5 s: the 200 ms batch timeout gathers about 40 per request.
    let mut schedule = pushes(Duration::from_secs(1), Duration::from_millis(50), 100, 10);
    schedule[0].metric_points = 3;
    schedule[99].metric_points = 2;
    let mut rig = rig(1, CollectorConfig::default(), schedule, Duration::from_secs(20));
    rig.world.run_for(Duration::from_secs(10)).unwrap();

    let account = rig.ledger.account();
    assert_eq!(account.totals[&Signal::Span].emitted, 1_000);
    assert_eq!(account.totals[&Signal::Span].delivered, 1_000);
    assert_eq!(undelivered(&rig.ledger), vec![]);
    let requests = rig.store.counts().traces.requests_accepted;
    assert!((20..=40).contains(&requests), "1000 spans in {requests} requests: batched by the 200 ms timeout");
    assert_eq!(rig.store.metric_points_count(), 5);
    let latency = rig.ledger.latency_micros(Signal::Span);
    assert!(latency.max() < 400_000, "batch wait + network: max {} µs", latency.max());
}

#[test]
fn a_full_batch_leaves_at_once_without_waiting_for_the_timeout() {
    let config = CollectorConfig { send_batch_size: 100, batch_timeout: Duration::from_secs(10), ..Default::default() };
    let schedule = vec![Push { at: Duration::from_secs(1), spans: 250, metric_points: 0 }];
    let mut rig = rig(2, config, schedule, Duration::from_secs(20));
    rig.world.run_for(Duration::from_secs(3)).unwrap();
    // 250 arrive at once: one batch of all 250 (send_batch_max_size 0 = unbounded).
    assert_eq!(rig.store.spans_count(), 250);
    assert_eq!(rig.store.counts().traces.requests_accepted, 1);
}

#[test]
fn during_a_60s_outage_retries_follow_the_backoff_and_everything_arrives_after() {
    let schedule = vec![Push { at: Duration::from_secs(1), spans: 10, metric_points: 0 }];
    let mut rig = rig(3, CollectorConfig::default(), schedule, Duration::from_secs(200));
    rig.control.set_errors(failing(503)).unwrap();
    rig.world.run_for(Duration::from_millis(60_500)).unwrap();
    rig.control.heal();
    rig.world.run_for(Duration::from_secs(150)).unwrap();

    assert_eq!(rig.ledger.account().totals[&Signal::Span].delivered, 10);
    assert_eq!(undelivered(&rig.ledger), vec![]);
    let attempts: Vec<u64> = events(&rig.world, EventKind::CollectorAttempt)
        .iter()
        .filter(|e| e.detail.starts_with("traces batch 0 "))
        .map(|e| e.true_nanos)
        .collect();
    assert!(attempts.len() >= 5, "a 60 s outage takes at least 4 retries: {attempts:?}");
    // Interval n (1-based) is drawn around min(5 s · 1.5^(n−1), 30 s) ± 50 %, plus the
    // failed attempt's round trip (≤ 2 × 20 ms latency, 10 ms ticks).
    let mut interval_secs = 5.0f64;
    for pair in attempts.windows(2) {
        let gap = (pair[1] - pair[0]) as f64 / 1e9;
        assert!(
            gap >= interval_secs * 0.5 && gap <= interval_secs * 1.5 + 0.1,
            "gap {gap:.3}s outside {interval_secs}s ± 50 %: {attempts:?}"
        );
        interval_secs = (interval_secs * 1.5).min(30.0);
    }
    let last_failure = events(&rig.world, EventKind::CollectorRetry).last().unwrap().true_nanos;
    assert!(last_failure < 61_000_000_000 && *attempts.last().unwrap() > 60_500_000_000);
}

#[test]
fn an_outage_longer_than_max_elapsed_time_drops_exactly_the_batches_it_held() {
    let config = CollectorConfig { retry_max_elapsed_time: Duration::from_secs(20), ..Default::default() };
    let schedule = vec![
        Push { at: Duration::from_secs(1), spans: 10, metric_points: 4 },
        Push { at: Duration::from_secs(50), spans: 7, metric_points: 0 },
    ];
    let mut rig = rig(4, config, schedule, Duration::from_secs(100));
    rig.control.set_errors(failing(503)).unwrap();
    rig.world.run_for(Duration::from_secs(45)).unwrap();
    rig.control.heal();
    rig.world.run_for(Duration::from_secs(60)).unwrap();

    let account = rig.ledger.account();
    assert_eq!(account.totals[&Signal::Span].delivered, 7, "the batch sent after the outage");
    assert_eq!(
        undelivered(&rig.ledger),
        vec![(Outcome::Lost { cause: LossCause::CollectorRetryExpired, custodian: collector_custodian() }, 10)]
    );
    let lost = account.undelivered(Signal::Span).next().unwrap().1;
    assert_eq!(lost.examples, (0..5).map(|seq| RecordId::new(rig.source, seq)).collect::<Vec<_>>());
    let dropped: Vec<String> = events(&rig.world, EventKind::CollectorDropped).into_iter().map(|e| e.detail).collect();
    assert_eq!(dropped.len(), 2, "{dropped:?}");
    assert!(dropped.iter().any(|d| d.starts_with("metrics batch 0 collector_retry_expired items 4")), "{dropped:?}");
    assert_eq!(rig.store.metric_points_count(), 0);
}

#[test]
fn a_non_retryable_refusal_drops_at_once() {
    let schedule = vec![Push { at: Duration::from_secs(1), spans: 6, metric_points: 0 }];
    let mut rig = rig(5, CollectorConfig::default(), schedule, Duration::from_secs(20));
    rig.control.set_errors(failing(400)).unwrap();
    rig.world.run_for(Duration::from_secs(5)).unwrap();
    assert_eq!(
        undelivered(&rig.ledger),
        vec![(Outcome::Lost { cause: LossCause::CollectorRejected, custodian: collector_custodian() }, 6)]
    );
    assert_eq!(events(&rig.world, EventKind::CollectorAttempt).len(), 1, "InvalidArgument is not retried");
}

#[test]
fn a_full_sending_queue_drops_new_batches() {
    // One consumer busy 3 s per export; 10 single-span batches 300 ms apart: the first is
    // in flight, two wait in the queue, seven find it full.
    let config = CollectorConfig { queue_size: 2, num_consumers: 1, ..Default::default() };
    let schedule = pushes(Duration::from_secs(1), Duration::from_millis(300), 10, 1);
    let mut rig = rig(6, config, schedule, Duration::from_secs(30));
    rig.control.set_slow(Some(Duration::from_secs(3)));
    rig.world.run_for(Duration::from_secs(20)).unwrap();

    let account = rig.ledger.account();
    assert_eq!(account.totals[&Signal::Span].delivered, 3);
    assert_eq!(
        undelivered(&rig.ledger),
        vec![(Outcome::Lost { cause: LossCause::CollectorQueueFull, custodian: collector_custodian() }, 7)]
    );
    let delivered: Vec<u64> = rig.store.spans().iter().map(|(s, _)| s.id.seq).collect();
    assert_eq!(delivered, vec![0, 1, 2]);
}

#[test]
fn after_a_30s_partition_the_channel_recovers_and_every_span_arrives() {
    // 5 spans a second for a minute; the machine is cut from Dash0 from 10 s to 40 s.
    let schedule = pushes(Duration::from_secs(1), Duration::from_secs(1), 60, 5);
    let mut rig = rig(7, CollectorConfig::default(), schedule, Duration::from_secs(200));
    rig.world.run_for(Duration::from_secs(10)).unwrap();
    rig.world.partition(MACHINE, hosts::DASH0);
    rig.world.run_for(Duration::from_secs(40)).unwrap();
    rig.world.repair(MACHINE, hosts::DASH0);
    rig.world.run_for(Duration::from_secs(150)).unwrap();

    let account = rig.ledger.account();
    assert_eq!(account.totals[&Signal::Span].emitted, 300);
    assert_eq!(account.totals[&Signal::Span].delivered, 300);
    assert_eq!(undelivered(&rig.ledger), vec![]);
    let retries = events(&rig.world, EventKind::CollectorRetry);
    assert!(!retries.is_empty(), "the partition must have failed some exports");
    let last_retry = retries.last().unwrap().true_nanos;
    let last_delivery = rig.store.spans().iter().map(|(_, t)| *t).max().unwrap();
    assert!(last_delivery > last_retry, "delivered after the last failure");
    assert!(last_delivery < 120_000_000_000, "recovered within the backoff after repair: {last_delivery} ns");
}

#[test]
fn the_same_seed_replays_the_same_export_history() {
    let run = |seed: u64| {
        let schedule = pushes(Duration::from_secs(1), Duration::from_millis(700), 30, 3);
        let mut rig = rig(seed, CollectorConfig::default(), schedule, Duration::from_secs(120));
        rig.control.set_errors(Some(ScriptedErrors { status: 503, rate: 0.5, retry_after: None })).unwrap();
        rig.world.run_for(Duration::from_secs(8)).unwrap();
        rig.world.partition(MACHINE, hosts::DASH0);
        rig.world.run_for(Duration::from_secs(20)).unwrap();
        rig.world.repair(MACHINE, hosts::DASH0);
        rig.control.heal();
        let outcome = rig.world.run_for(Duration::from_secs(110)).unwrap();
        assert_eq!(rig.ledger.account().totals[&Signal::Span].delivered, 90);
        outcome.hash
    };
    assert_eq!(run(9), run(9));
    assert_ne!(run(9), run(10), "the seed drives the scripted errors and the jitter");
}

/// A Dash0 restart breaks the collector's connection mid-call. grpc-go (the real collector)
/// reports that as UNAVAILABLE and retries; tonic reports UNKNOWN "transport error", which
/// the retry policy would drop as permanent (`collector_rejected`). The exporter translates,
/// so a restart costs retries, not spans.
#[test]
fn a_dash0_restart_mid_export_is_retried_not_rejected() {
    // 5 spans every 200 ms for a minute; Dash0 answers slowly (so calls are in flight) and
    // is down from 10 s to 20 s.
    let schedule = pushes(Duration::from_secs(1), Duration::from_millis(200), 300, 5);
    let mut rig = rig(11, CollectorConfig::default(), schedule, Duration::from_secs(200));
    rig.control.set_slow(Some(Duration::from_secs(2)));
    rig.world.run_for(Duration::from_secs(10)).unwrap();
    rig.world.kill(hosts::DASH0);
    rig.world.run_for(Duration::from_secs(20)).unwrap();
    rig.world.restart(hosts::DASH0);
    rig.world.run_for(Duration::from_secs(200)).unwrap();

    assert_eq!(
        undelivered(&rig.ledger),
        vec![],
        "nothing dropped: {:?}",
        events(&rig.world, EventKind::CollectorDropped)
    );
    let account = rig.ledger.account();
    assert_eq!(account.totals[&Signal::Span].emitted, 1500);
    assert_eq!(account.totals[&Signal::Span].delivered, 1500);
    let retries = events(&rig.world, EventKind::CollectorRetry);
    assert!(
        retries.iter().any(|e| e.detail.contains("Unavailable")),
        "the restart failed exports as UNAVAILABLE: {retries:?}"
    );
}
