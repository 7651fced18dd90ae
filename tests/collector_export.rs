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

/// exporterhelper's memory queue frees a request's place only when its export ends, so
/// `queue_size` counts the request in flight: with room for 2, one exporting and one waiting
/// fill it. (obsim counted only the waiting ones and took a third.)
#[test]
fn a_full_sending_queue_drops_new_batches() {
    // One consumer busy 3 s per export; 10 single-span batches 300 ms apart: the first is
    // in flight, one waits in the queue, eight find it full.
    let config = CollectorConfig { queue_size: 2, num_consumers: 1, ..Default::default() };
    let schedule = pushes(Duration::from_secs(1), Duration::from_millis(300), 10, 1);
    let mut rig = rig(6, config, schedule, Duration::from_secs(30));
    rig.control.set_slow(Some(Duration::from_secs(3)));
    rig.world.run_for(Duration::from_secs(20)).unwrap();

    let account = rig.ledger.account();
    assert_eq!(account.totals[&Signal::Span].delivered, 2);
    assert_eq!(
        undelivered(&rig.ledger),
        vec![(Outcome::Lost { cause: LossCause::CollectorQueueFull, custodian: collector_custodian() }, 8)]
    );
    let delivered: Vec<u64> = rig.store.spans().iter().map(|(s, _)| s.id.seq).collect();
    assert_eq!(delivered, vec![0, 1]);
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

/// batchprocessor's timer is free-running: it starts with the processor and fires every
/// `timeout`, so spans pushed 7 s into a 10 s period leave at the 10 s tick, not 10 s after
/// they arrived (obsim started the timer at a batch's first item).
#[test]
fn the_batch_timer_ticks_from_the_start_not_from_a_batchs_first_item() {
    let config = CollectorConfig { batch_timeout: Duration::from_secs(10), ..Default::default() };
    let schedule = vec![
        Push { at: Duration::from_secs(7), spans: 3, metric_points: 0 },
        Push { at: Duration::from_secs(12), spans: 2, metric_points: 0 },
    ];
    let mut rig = rig(12, config, schedule, Duration::from_secs(40));
    rig.world.run_for(Duration::from_secs(30)).unwrap();

    let arrivals: Vec<(u64, u64)> =
        rig.store.spans().iter().map(|(span, at)| (span.id.seq, *at / 1_000_000_000)).collect();
    assert_eq!(arrivals, vec![(0, 10), (1, 10), (2, 10), (3, 20), (4, 20)], "sent at the 10 s and 20 s ticks");
    assert_eq!(rig.store.counts().traces.requests_accepted, 2);
}

/// exporterhelper's retry sender stretches the backoff by the server's RetryInfo delay and
/// drops the request when that wait would end past `max_elapsed_time` ("no more retries
/// left"), instead of retrying once more (obsim checked the unstretched backoff).
#[test]
fn a_retry_info_delay_past_max_elapsed_time_drops_instead_of_retrying() {
    let schedule = vec![Push { at: Duration::from_secs(1), spans: 4, metric_points: 0 }];
    let mut rig = rig(13, CollectorConfig::default(), schedule, Duration::from_secs(500));
    let retry_after = Some(Duration::from_secs(120));
    rig.control.set_errors(Some(ScriptedErrors { status: 503, rate: 1.0, retry_after })).unwrap();
    rig.world.run_for(Duration::from_secs(450)).unwrap();

    // Attempts at ~1 s, ~121 s, ~241 s; at 241 s the next wait (120 s) ends past 300 s.
    let attempts: Vec<u64> =
        events(&rig.world, EventKind::CollectorAttempt).iter().map(|e| e.true_nanos / 1_000_000_000).collect();
    assert_eq!(attempts, vec![1, 121, 241], "every wait is the server's 120 s");
    assert_eq!(
        undelivered(&rig.ledger),
        vec![(Outcome::Lost { cause: LossCause::CollectorRetryExpired, custodian: collector_custodian() }, 4)]
    );
    let dropped = events(&rig.world, EventKind::CollectorDropped);
    assert_eq!(dropped.len(), 1);
    assert!(dropped[0].true_nanos < 242_000_000_000, "dropped at the third attempt: {dropped:?}");
}

/// A rig whose world tells the ledger of a host loss (the SIGKILL at the end of a draining
/// time), as the pipeline does.
fn rig_with_losses(seed: u64, config: CollectorConfig, schedule: Vec<Push>, duration: Duration) -> Rig {
    let mut rig = rig(seed, config, schedule, duration);
    let ledger = rig.ledger.clone();
    rig.world.on_host_lost(move |host, loss| ledger.host_lost(host, loss));
    rig
}

/// On SIGTERM the batch processor flushes what it holds and the sending queue exports it
/// before the process exits, well within the draining time. (obsim ignored SIGTERM: the
/// batch waited for its 10 s tick and the SIGKILL at 8 s lost it from memory.)
#[test]
fn sigterm_flushes_the_batch_processor_and_drains_the_queue_before_exiting() {
    let config = CollectorConfig { batch_timeout: Duration::from_secs(10), ..Default::default() };
    let schedule = vec![Push { at: Duration::from_secs(1), spans: 6, metric_points: 2 }];
    let mut rig = rig_with_losses(14, config, schedule, Duration::from_secs(30));
    rig.world.run_for(Duration::from_secs(3)).unwrap();
    rig.world.terminate(MACHINE, Duration::from_secs(5));
    rig.world.run_for(Duration::from_secs(20)).unwrap();

    assert_eq!(undelivered(&rig.ledger), vec![]);
    assert_eq!(rig.ledger.account().totals[&Signal::Span].delivered, 6);
    assert_eq!(rig.store.metric_points_count(), 2);
    let arrived_max = rig.store.spans().iter().map(|(_, at)| *at).max().unwrap();
    assert!(arrived_max < 4_000_000_000, "sent at SIGTERM (3 s), not at the 10 s tick: {arrived_max}");
    let shutdown: Vec<String> =
        events(&rig.world, EventKind::CollectorShutdown).into_iter().map(|e| e.detail).collect();
    assert_eq!(shutdown.len(), 2, "draining, then exiting: {shutdown:?}");
    assert!(shutdown[1].starts_with("drained"), "{shutdown:?}");
}

/// With Dash0 failing at SIGTERM, the retry sender stops: the batch waiting to retry is
/// dropped at once and each queued one gets a single attempt; the collector exits before the
/// SIGKILL, having said why each was lost (`collector_shutdown`). (obsim kept retrying until
/// the SIGKILL took everything as `collector_crash_unpersisted`.)
#[test]
fn sigterm_while_dash0_fails_drops_what_cannot_be_sent_with_collector_shutdown() {
    // One consumer: batch 0 is in its retry wait, batches 1 and 2 wait in the queue.
    let config = CollectorConfig { num_consumers: 1, ..Default::default() };
    let schedule = pushes(Duration::from_secs(1), Duration::from_secs(1), 3, 2);
    let mut rig = rig_with_losses(15, config, schedule, Duration::from_secs(60));
    rig.control.set_errors(failing(503)).unwrap();
    rig.world.run_for(Duration::from_secs(5)).unwrap();
    rig.world.terminate(MACHINE, Duration::from_secs(30));
    rig.world.run_for(Duration::from_secs(50)).unwrap();

    assert_eq!(
        undelivered(&rig.ledger),
        vec![(Outcome::Lost { cause: LossCause::CollectorShutdown, custodian: collector_custodian() }, 6)]
    );
    let attempts: Vec<String> = events(&rig.world, EventKind::CollectorAttempt).into_iter().map(|e| e.detail).collect();
    assert!(attempts.contains(&"traces batch 1 attempt 1".to_string()), "{attempts:?}");
    assert!(attempts.contains(&"traces batch 2 attempt 1".to_string()), "{attempts:?}");
    assert!(!attempts.iter().any(|a| a.starts_with("traces batch 1 attempt 2")), "no retry on shutdown");
    let exited = events(&rig.world, EventKind::CollectorShutdown).last().map(|e| e.true_nanos).unwrap();
    assert!(exited < 35_000_000_000, "exited before the SIGKILL at 35 s: {exited}");
}

/// grpc-go's channel reconnects on its backoff (1 s × 1.6 up to 120 s, ± 20 %), and export
/// attempts while it backs off fail fast with UNAVAILABLE and spend the retry sender's
/// `max_elapsed_time`. After 10 minutes of Dash0 down, the channel redials up to two minutes
/// after Dash0 is back: batches whose 300 s run out in that gap are dropped, as the real
/// collector drops them. (obsim redialled on the next call, so everything still within its
/// 300 s was delivered on the first retry after Dash0 came back.)
#[test]
fn after_dash0_is_down_10_minutes_the_channel_backs_off_and_batches_expire_in_the_gap() {
    // A batch every 5 s, each taken by a consumer at once (enough of them), so each one's
    // 300 s run from its first attempt: those sent at 310–375 s run out around 610–675 s.
    let back_at = Duration::from_secs(610);
    let schedule = pushes(Duration::from_secs(1), Duration::from_secs(5), 140, 2);
    let config = CollectorConfig { num_consumers: 200, ..Default::default() };
    let mut rig = rig(16, config, schedule, Duration::from_secs(1100));
    rig.world.run_for(Duration::from_secs(10)).unwrap();
    rig.world.kill(hosts::DASH0);
    rig.world.run_for(back_at).unwrap();
    rig.world.restart(hosts::DASH0);
    rig.world.run_for(Duration::from_secs(1050)).unwrap();

    let channel = events(&rig.world, EventKind::CollectorChannel);
    let reconnected = channel.iter().find(|e| e.detail.ends_with("connected")).expect("the channel reconnected");
    let back_nanos = back_at.as_nanos() as u64;
    assert!(reconnected.true_nanos > back_nanos + 5_000_000_000, "redialled on the backoff, not at once");
    let failed_dials = channel.iter().filter(|e| e.detail.contains("failed")).count();
    // Dash0's process is dead but its host's kernel answers: each dial is refused at once,
    // then the backoff (1 s × 1.6 up to 120 s, ±20 %): about 13 over 10 min.
    assert!((11..=16).contains(&failed_dials), "1 s × 1.6 up to 120 s over 10 min: {failed_dials} dials");
    let fast_fails = events(&rig.world, EventKind::CollectorRetry)
        .into_iter()
        .filter(|e| e.true_nanos > back_nanos && e.detail.contains("Unavailable"))
        .count();
    assert!(fast_fails > 0, "attempts after Dash0 was back failed fast while the channel backed off");
    let expired_in_gap = events(&rig.world, EventKind::CollectorDropped)
        .into_iter()
        .filter(|e| e.detail.contains("collector_retry_expired"))
        .filter(|e| e.true_nanos > back_nanos && e.true_nanos < reconnected.true_nanos)
        .count();
    assert!(expired_in_gap > 0, "batches ran out of retry time while the channel backed off");
    let account = rig.ledger.account();
    let outcomes = undelivered(&rig.ledger);
    assert_eq!(outcomes.len(), 1, "only collector_retry_expired: {outcomes:?}");
    assert_eq!(
        outcomes[0].0,
        Outcome::Lost { cause: LossCause::CollectorRetryExpired, custodian: collector_custodian() }
    );
    assert_eq!(account.totals[&Signal::Span].delivered + outcomes[0].1, 280);
}
