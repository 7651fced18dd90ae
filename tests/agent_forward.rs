//! The agent (Fluent Bit) shipping to the aggregator (Fluentd) in small worlds: delivery
//! with acks and the custody trail, the retry schedule and `Retry_Limit`, the shared key,
//! crashes with memory and filesystem storage, `storage.total_limit_size`, a partition, and
//! an aggregator that refuses what it cannot buffer.

mod aggregator_support;

use std::collections::BTreeSet;
use std::time::Duration;

use aggregator_support::{
    FakeRedis, any_silent, count_of, emit_logs, events, in_flight, lost, lost_with, outcomes, part_ctx,
};
use obsim::ledger::Ledger;
use obsim::parts::RecordPipe;
use obsim::parts::agent::{self, AgentConfig, RetryLimit, StorageType};
use obsim::parts::aggregator::{self, AggregatorConfig};
use obsim::vocab::EventKind;
use obsim::vocab::{LossCause, Part, hosts};
use obsim::world::{World, WorldBuilder};

const MACHINE: &str = "comfyui-1";
const KEY: &str = "s3cret";

/// How the machine's app emits.
#[derive(Clone, Copy)]
struct Emit {
    batches: u64,
    per_batch: u64,
    every: Duration,
}

fn agent_config() -> AgentConfig {
    AgentConfig {
        shared_key: Some(KEY.into()),
        require_ack: true,
        io_timeout: Duration::from_secs(5),
        ..AgentConfig::default()
    }
}

fn aggregator_config() -> AggregatorConfig {
    AggregatorConfig { shared_key: Some(KEY.into()), ..AggregatorConfig::default() }
}

/// Adds the machine: its app (first incarnation only: a restarted machine's app does not
/// re-emit) and its agent.
fn add_machine(world: &mut World<'_>, ledger: &Ledger, config: AgentConfig, emit: Emit) {
    let ledger = ledger.clone();
    world.host(MACHINE, move |host| {
        let ctx = part_ctx(host, &ledger);
        let config = config.clone();
        async move {
            let pipe = RecordPipe::new(100_000);
            if ctx.host.incarnation() == 0 {
                tokio::spawn(emit_logs(
                    ctx.clone(),
                    pipe.clone(),
                    "comfyui-1/worker-0",
                    emit.batches,
                    emit.per_batch,
                    emit.every,
                ));
            }
            agent::run(ctx, config, pipe, "machine.comfyui".into()).await
        }
    });
}

/// Adds Railway: the aggregator and a fake Redis.
fn add_railway(world: &mut World<'_>, ledger: &Ledger, config: AggregatorConfig) -> FakeRedis {
    let redis = FakeRedis::new(ledger);
    let serve = redis.clone();
    world.host(hosts::REDIS, move |_| serve.clone().serve());
    let ledger = ledger.clone();
    world.host(hosts::AGGREGATOR, move |host| aggregator::run(part_ctx(host, &ledger), config.clone()));
    redis
}

fn world(seed: u64, duration: Duration) -> World<'static> {
    WorldBuilder::new(seed).duration(duration).build()
}

/// An aggregator whose small buffer fills because Redis refuses writes (OOM), and a machine
/// whose agent (never giving up; `require_ack` as asked) sends 500 records in 10 s.
fn full_aggregator_buffer_and_500_records(require_ack: bool) -> (World<'static>, Ledger, FakeRedis) {
    let mut world = world(9, Duration::from_secs(300));
    let ledger = Ledger::new();
    let config = AggregatorConfig { chunk_bytes_limit: 20_000, total_bytes_limit: 40_000, ..aggregator_config() };
    let redis = add_railway(&mut world, &ledger, config);
    redis.oom.store(true, std::sync::atomic::Ordering::SeqCst);
    let agent = AgentConfig { retry_limit: RetryLimit::NoLimits, require_ack, ..agent_config() };
    let emit = Emit { batches: 10, per_batch: 50, every: Duration::from_secs(1) };
    add_machine(&mut world, &ledger, agent, emit);
    (world, ledger, redis)
}

fn emitted(ledger: &Ledger) -> u64 {
    ledger.account().totals.get(&obsim::vocab::Signal::Log).map_or(0, |totals| totals.emitted)
}

/// Sum of `records N` in the details of events of `kind`.
fn records_in(world: &World<'_>, kind: EventKind) -> u64 {
    events(world.events(), kind)
        .iter()
        .map(|(_, detail)| {
            let at = detail.find("records ").expect("event names its records") + "records ".len();
            detail[at..].split_whitespace().next().unwrap().parse::<u64>().unwrap()
        })
        .sum()
}

fn assert_all_in_redis_once_or_more(redis: &FakeRedis, total: u64) {
    let ids: BTreeSet<u64> = redis.pushed_ids().iter().map(|id| id.seq).collect();
    assert_eq!(ids.len() as u64, total, "every record reaches Redis");
    assert_eq!(ids.into_iter().collect::<Vec<_>>(), (0..total).collect::<Vec<_>>());
}

#[test]
fn agent_to_aggregator_with_ack_delivers_every_record_and_hands_custody_on() {
    let mut world = world(1, Duration::from_secs(30));
    let ledger = Ledger::new();
    let redis = add_railway(&mut world, &ledger, aggregator_config());
    add_machine(
        &mut world,
        &ledger,
        agent_config(),
        Emit { batches: 10, per_batch: 50, every: Duration::from_millis(300) },
    );
    world.run_for(Duration::from_secs(15)).unwrap();

    assert_eq!(emitted(&ledger), 500);
    assert_eq!(redis.pushed_ids().len(), 500, "each record exactly once");
    assert_all_in_redis_once_or_more(&redis, 500);
    // Nothing is left at the app, the agent or the aggregator: Redis holds everything.
    assert_eq!(outcomes(&ledger), vec![(in_flight(Part::Redis, "railway-redis"), 500)]);
    assert_eq!(records_in(&world, EventKind::AgentAck), 500);
    let chunks = redis.chunks();
    assert!(chunks.iter().all(|(key, chunk)| key == "logs:buffer"
        && chunk.tag == "machine.comfyui"
        && chunk.environment == "production"
        && chunk.region == "us-west1"));
    // out_forward's two workers each open one connection, authenticated once.
    assert_eq!(events(world.events(), EventKind::AggregatorAuth).len(), 2, "one connection per worker");
}

#[test]
fn the_retry_schedule_follows_fluent_bits_backoff_and_the_limit_drops_the_chunk() {
    let mut world = world(2, Duration::from_secs(900));
    let ledger = Ledger::new();
    // A live Railway host with nothing listening: every connect is refused at once.
    world.host(hosts::AGGREGATOR, |_| async { std::future::pending::<turmoil::Result>().await });
    let config = AgentConfig { retry_limit: RetryLimit::Retries(6), ..agent_config() };
    add_machine(&mut world, &ledger, config, Emit { batches: 1, per_batch: 10, every: Duration::from_secs(1) });
    world.run_for(Duration::from_secs(800)).unwrap();

    let attempts = events(world.events(), EventKind::AgentAttempt);
    let failures = events(world.events(), EventKind::AgentRetry);
    assert_eq!(attempts.len(), 7, "the first attempt and six retries: {attempts:?}");
    assert_eq!(failures.len(), 6);
    for (retry, ((failed_at, _), (next_at, _))) in failures.iter().zip(&attempts[1..]).enumerate() {
        let retry = retry as u32 + 1;
        let upper = (5u64 << retry).min(2000) + 1;
        let waited = next_at - failed_at;
        // Whole seconds, plus at most one 10 ms tick of wake-up.
        assert!(
            waited >= 6.0 && waited <= upper as f64 + 0.011,
            "retry {retry} waited {waited}s, allowed [6, {upper}]"
        );
    }
    assert_eq!(events(world.events(), EventKind::AgentGiveUp).len(), 1);
    assert_eq!(outcomes(&ledger), vec![(lost(LossCause::AgentRetryLimit, Part::Agent, "comfyui-1"), 10)]);
}

/// The aggregator is down from 0 s to 40 s while the app writes 10 records a second.
fn outage(retry_limit: RetryLimit) -> (World<'static>, Ledger, FakeRedis) {
    let mut world = world(3, Duration::from_secs(400));
    let ledger = Ledger::new();
    let redis = add_railway(&mut world, &ledger, aggregator_config());
    let config = AgentConfig { retry_limit, ..agent_config() };
    add_machine(&mut world, &ledger, config, Emit { batches: 60, per_batch: 10, every: Duration::from_secs(1) });
    world.kill(hosts::AGGREGATOR);
    world.run_for(Duration::from_secs(40)).unwrap();
    world.restart(hosts::AGGREGATOR);
    world.run_for(Duration::from_secs(300)).unwrap();
    (world, ledger, redis)
}

#[test]
fn retry_limit_one_drops_exactly_the_chunks_that_could_not_be_sent() {
    let (world, ledger, redis) = outage(RetryLimit::Retries(1));
    let dropped = records_in(&world, EventKind::AgentDrop);
    let delivered = redis.pushed_ids().len() as u64;
    assert!(dropped > 0 && delivered > 0, "dropped {dropped}, delivered {delivered}");
    assert_eq!(dropped + delivered, 600, "every record is either in Redis or dropped");
    assert_eq!(
        outcomes(&ledger),
        vec![
            (in_flight(Part::Redis, "railway-redis"), delivered),
            (lost(LossCause::AgentRetryLimit, Part::Agent, "comfyui-1"), dropped),
        ]
    );
    // The dropped records are the oldest: each chunk failed twice within the outage.
    let max_dropped_attempt =
        events(world.events(), EventKind::AgentGiveUp).iter().map(|(at, _)| *at).fold(0.0, f64::max);
    assert!(max_dropped_attempt < 40.0 + 0.1, "gave up only on attempts during the outage ({max_dropped_attempt}s)");
}

#[test]
fn no_limits_delivers_everything_after_the_outage() {
    let (_world, ledger, redis) = outage(RetryLimit::NoLimits);
    assert_all_in_redis_once_or_more(&redis, 600);
    assert_eq!(outcomes(&ledger), vec![(in_flight(Part::Redis, "railway-redis"), 600)]);
}

#[test]
fn a_wrong_shared_key_is_refused_nothing_is_stored_and_the_agent_drops_auth_rejected() {
    let mut world = world(4, Duration::from_secs(60));
    let ledger = Ledger::new();
    let redis = add_railway(&mut world, &ledger, aggregator_config());
    let config = AgentConfig { shared_key: Some("guess".into()), ..agent_config() };
    add_machine(&mut world, &ledger, config, Emit { batches: 1, per_batch: 20, every: Duration::from_secs(1) });
    world.run_for(Duration::from_secs(30)).unwrap();

    let refused = events(world.events(), EventKind::AggregatorAuthRejected);
    assert_eq!(refused.len(), 2, "the first attempt and the one retry are refused: {refused:?}");
    assert!(refused[0].1.contains("shared_key mismatch"), "{refused:?}");
    assert!(redis.pushed.lock().unwrap().is_empty(), "nothing from that peer is stored");
    assert_eq!(outcomes(&ledger), vec![(lost(LossCause::AuthRejected, Part::Agent, "comfyui-1"), 20)]);
}

#[test]
fn memory_storage_and_a_crash_lose_exactly_what_was_not_acked() {
    let mut world = world(5, Duration::from_secs(120));
    let ledger = Ledger::new();
    let redis = add_railway(&mut world, &ledger, aggregator_config());
    let config = AgentConfig { retry_limit: RetryLimit::NoLimits, ..agent_config() };
    add_machine(&mut world, &ledger, config, Emit { batches: 30, per_batch: 10, every: Duration::from_secs(1) });
    world.run_for(Duration::from_secs(10)).unwrap();
    world.partition(MACHINE, hosts::AGGREGATOR);
    world.run_for(Duration::from_secs(20)).unwrap();
    world.power_loss(MACHINE);
    ledger.host_lost(MACHINE, obsim::ledger::HostLoss::Power);
    world.repair(MACHINE, hosts::AGGREGATOR);
    world.run_for(Duration::from_secs(60)).unwrap();

    let acked = records_in(&world, EventKind::AgentAck);
    let account = outcomes(&ledger);
    let lost_at_agent = lost_with(&account, LossCause::AgentCrashUnpersisted);
    let lost_at_app = lost_with(&account, LossCause::AppCrashUnpersisted);
    let emitted = emitted(&ledger);
    assert!(lost_at_agent > 0, "{account:?}");
    assert_eq!(
        lost_at_agent,
        emitted - acked - lost_at_app,
        "the agent loses exactly what was never acked: {account:?}"
    );
    assert_eq!(redis.pushed_ids().len() as u64, acked);
    assert!(!any_silent(&account), "{account:?}");
}

#[test]
fn filesystem_storage_survives_a_kill_and_the_restart_sends_the_chunks() {
    let mut world = world(6, Duration::from_secs(200));
    let ledger = Ledger::new();
    let redis = add_railway(&mut world, &ledger, aggregator_config());
    let config = AgentConfig { storage: StorageType::Filesystem, retry_limit: RetryLimit::NoLimits, ..agent_config() };
    add_machine(&mut world, &ledger, config, Emit { batches: 15, per_batch: 10, every: Duration::from_secs(1) });
    world.run_for(Duration::from_secs(5)).unwrap();
    world.partition(MACHINE, hosts::AGGREGATOR);
    world.run_for(Duration::from_secs(20)).unwrap();
    // A SIGKILL: the chunk files are in the page cache (`Written`), synced or not. A power
    // loss with `storage.sync normal` would take them (tests/agent_fluent_bit.rs).
    world.kill(MACHINE);
    ledger.host_lost(MACHINE, obsim::ledger::HostLoss::Process);
    assert!(!world.disk(MACHINE).unwrap().paths("agent/chunks/").is_empty(), "chunks wait on disk");
    world.run_for(Duration::from_secs(25)).unwrap();
    world.restart(MACHINE);
    world.repair(MACHINE, hosts::AGGREGATOR);
    world.run_for(Duration::from_secs(150)).unwrap();

    assert_eq!(emitted(&ledger), 150);
    assert!(!events(world.events(), EventKind::AgentLoad).is_empty(), "the restarted agent loads its chunks");
    assert_all_in_redis_once_or_more(&redis, 150);
    assert_eq!(outcomes(&ledger), vec![(in_flight(Part::Redis, "railway-redis"), 150)]);
    assert!(world.disk(MACHINE).unwrap().paths("agent/chunks/").is_empty(), "acked chunk files are removed");
}

#[test]
fn storage_total_limit_size_drops_the_oldest_chunks() {
    let mut world = world(7, Duration::from_secs(60));
    let ledger = Ledger::new();
    world.host(hosts::AGGREGATOR, |_| async { std::future::pending::<turmoil::Result>().await });
    let config = AgentConfig {
        storage: StorageType::Filesystem,
        storage_total_bytes_limit: Some(60_000),
        retry_limit: RetryLimit::NoLimits,
        ..agent_config()
    };
    add_machine(&mut world, &ledger, config, Emit { batches: 20, per_batch: 50, every: Duration::from_secs(1) });
    world.run_for(Duration::from_secs(30)).unwrap();

    let drops = events(world.events(), EventKind::AgentDrop);
    assert!(!drops.is_empty());
    let dropped_chunks: Vec<u64> =
        drops.iter().map(|(_, detail)| detail.split_whitespace().nth(1).unwrap().parse().unwrap()).collect();
    let mut sorted = dropped_chunks.clone();
    sorted.sort();
    assert_eq!(dropped_chunks, sorted, "oldest first");
    let dropped = records_in(&world, EventKind::AgentDrop);
    assert_eq!(
        outcomes(&ledger),
        vec![
            (in_flight(Part::Agent, "comfyui-1"), 1000 - dropped),
            (lost(LossCause::AgentStorageLimit, Part::Agent, "comfyui-1"), dropped),
        ]
    );
    let disk_bytes = world.disk(MACHINE).unwrap().bytes_used();
    assert!(disk_bytes <= 60_000, "the chunk files stay under the limit: {disk_bytes}");
}

#[test]
fn a_thirty_second_partition_then_repair_reconnects_and_delivers_all() {
    let mut world = world(8, Duration::from_secs(300));
    let ledger = Ledger::new();
    let redis = add_railway(&mut world, &ledger, aggregator_config());
    let config = AgentConfig { retry_limit: RetryLimit::NoLimits, ..agent_config() };
    add_machine(&mut world, &ledger, config, Emit { batches: 60, per_batch: 10, every: Duration::from_secs(1) });
    world.run_for(Duration::from_secs(10)).unwrap();
    world.partition(MACHINE, hosts::AGGREGATOR);
    world.run_for(Duration::from_secs(40)).unwrap();
    world.repair(MACHINE, hosts::AGGREGATOR);
    world.run_for(Duration::from_secs(250)).unwrap();

    assert_all_in_redis_once_or_more(&redis, 600);
    assert_eq!(outcomes(&ledger), vec![(in_flight(Part::Redis, "railway-redis"), 600)]);
    assert!(events(world.events(), EventKind::AgentConnect).len() >= 2, "the agent reconnected");
}

#[test]
fn the_aggregator_never_acks_what_it_could_not_buffer() {
    let (mut world, ledger, redis) = full_aggregator_buffer_and_500_records(true);
    world.run_for(Duration::from_secs(20)).unwrap();

    let refused = events(world.events(), EventKind::AggregatorOverflowRefused);
    assert!(!refused.is_empty(), "the full buffer refuses chunks");
    // While refused, the agent still holds those records: no ack was sent for them.
    let acked_so_far = records_in(&world, EventKind::AgentAck);
    assert!(acked_so_far < 500);
    let account = outcomes(&ledger);
    let at_agent = count_of(&account, &in_flight(Part::Agent, "comfyui-1"));
    assert_eq!(at_agent, 500 - acked_so_far, "{account:?}");

    redis.oom.store(false, std::sync::atomic::Ordering::SeqCst);
    world.run_for(Duration::from_secs(300)).unwrap();
    assert_all_in_redis_once_or_more(&redis, 500);
    assert_eq!(outcomes(&ledger), vec![(in_flight(Part::Redis, "railway-redis"), 500)]);
}

#[test]
fn memory_storage_pauses_the_input_at_mem_buf_limit_and_leaves_the_rest_with_the_app() {
    let mut world = world(10, Duration::from_secs(60));
    let ledger = Ledger::new();
    world.host(hosts::AGGREGATOR, |_| async { std::future::pending::<turmoil::Result>().await });
    let config = AgentConfig {
        mem_buf_bytes_limit: 20_000,
        take_records_max: 10,
        retry_limit: RetryLimit::NoLimits,
        ..agent_config()
    };
    add_machine(&mut world, &ledger, config, Emit { batches: 20, per_batch: 20, every: Duration::from_millis(500) });
    world.run_for(Duration::from_secs(20)).unwrap();

    assert!(!events(world.events(), EventKind::AgentPause).is_empty(), "the input paused");
    let account = outcomes(&ledger);
    let at_agent = count_of(&account, &in_flight(Part::Agent, "comfyui-1"));
    let at_app = count_of(&account, &in_flight(Part::App, "comfyui-1"));
    assert_eq!(at_agent + at_app, 400, "{account:?}");
    assert!(at_app > 0, "records wait in the app's pipe while paused: {account:?}");
    // One take (10 records, ~300 bytes each) may pass the limit, never more.
    let agent_bytes_bound = 20_000 + 10 * 400;
    assert!(at_agent * 250 <= agent_bytes_bound, "the agent holds {at_agent} records");
}

#[test]
fn block_holds_back_the_agent_until_redis_takes_chunks_again() {
    let mut world = world(11, Duration::from_secs(300));
    let ledger = Ledger::new();
    let config = AggregatorConfig {
        chunk_bytes_limit: 20_000,
        total_bytes_limit: 40_000,
        overflow_action: aggregator::OverflowAction::Block,
        ..aggregator_config()
    };
    let redis = add_railway(&mut world, &ledger, config);
    redis.oom.store(true, std::sync::atomic::Ordering::SeqCst);
    let agent =
        AgentConfig { retry_limit: RetryLimit::NoLimits, io_timeout: Duration::from_secs(120), ..agent_config() };
    add_machine(&mut world, &ledger, agent, Emit { batches: 10, per_batch: 50, every: Duration::from_secs(1) });
    world.run_for(Duration::from_secs(15)).unwrap();
    assert!(!events(world.events(), EventKind::AggregatorBlock).is_empty(), "the input blocks");
    redis.oom.store(false, std::sync::atomic::Ordering::SeqCst);
    world.run_for(Duration::from_secs(200)).unwrap();

    assert!(events(world.events(), EventKind::AggregatorOverflowRefused).is_empty(), "block never refuses");
    assert!(!events(world.events(), EventKind::AggregatorUnblock).is_empty());
    assert_all_in_redis_once_or_more(&redis, 500);
    assert_eq!(outcomes(&ledger), vec![(in_flight(Part::Redis, "railway-redis"), 500)]);
}

#[test]
fn without_require_ack_a_crashed_aggregator_loses_what_it_held_and_nothing_silently() {
    let mut world = world(12, Duration::from_secs(60));
    let ledger = Ledger::new();
    let redis = add_railway(&mut world, &ledger, aggregator_config());
    let config = AgentConfig { require_ack: false, ..agent_config() };
    add_machine(&mut world, &ledger, config, Emit { batches: 20, per_batch: 10, every: Duration::from_secs(1) });
    world.run_for(Duration::from_secs(8)).unwrap();
    world.kill(hosts::AGGREGATOR);
    ledger.host_lost(hosts::AGGREGATOR, obsim::ledger::HostLoss::Process);
    world.run_for(Duration::from_secs(30)).unwrap();

    // Fluent Bit counts a successful write as delivered. The kill closed the idle
    // connection, which the agent noticed; its reconnects are refused at once (the host's
    // kernel lives on and answers RST), so chunks use up their retries and are dropped;
    // what the aggregator held in memory died with it. Nothing is unaccounted for.
    let account = outcomes(&ledger);
    assert!(!any_silent(&account), "{account:?}");
    let at_agent = count_of(&account, &in_flight(Part::Agent, MACHINE));
    assert_eq!(
        redis.pushed_ids().len() as u64
            + at_agent
            + lost_with(&account, LossCause::AgentUnackedWrite)
            + lost_with(&account, LossCause::AggregatorCrashUnpersisted)
            + lost_with(&account, LossCause::AgentRetryLimit),
        200,
        "{account:?}"
    );
    assert!(lost_with(&account, LossCause::AgentRetryLimit) > 0, "refused reconnects use up the retries: {account:?}");
}

#[test]
fn without_require_ack_records_the_aggregator_refuses_are_lost_agent_unacked_write_at_the_agent() {
    let (mut world, ledger, redis) = full_aggregator_buffer_and_500_records(false);
    world.run_for(Duration::from_secs(20)).unwrap();
    redis.oom.store(false, std::sync::atomic::Ordering::SeqCst);
    world.run_for(Duration::from_secs(300)).unwrap();

    // Fluentd refused what its full buffer could not take and closed the connection; no
    // ack was asked for, so Fluent Bit had already called those chunks delivered. They are
    // lost, with the cause and the agent that wrote them named — not silently.
    let refused: u64 = events(world.events(), EventKind::AggregatorOverflowRefused)
        .iter()
        .map(|(_, detail)| {
            let at = detail.find("records ").expect("names its records") + "records ".len();
            detail[at..].split(':').next().unwrap().trim().parse::<u64>().unwrap()
        })
        .sum();
    assert!(refused > 0, "the full buffer refuses chunks");
    let account = outcomes(&ledger);
    let unacked = count_of(&account, &lost(LossCause::AgentUnackedWrite, Part::Agent, "comfyui-1"));
    assert!(unacked >= refused, "{refused} refused, {account:?}");
    assert!(!any_silent(&account), "{account:?}");
    assert_eq!(redis.pushed_ids().len() as u64 + unacked, 500, "{account:?}");
}

#[test]
fn the_same_seed_replays_the_same_event_log() {
    let run = |seed| {
        let mut world = world(seed, Duration::from_secs(30));
        let ledger = Ledger::new();
        add_railway(&mut world, &ledger, aggregator_config());
        add_machine(
            &mut world,
            &ledger,
            agent_config(),
            Emit { batches: 10, per_batch: 20, every: Duration::from_millis(700) },
        );
        world.run_for(Duration::from_secs(5)).unwrap();
        world.partition(MACHINE, hosts::AGGREGATOR);
        world.run_for(Duration::from_secs(12)).unwrap();
        world.repair(MACHINE, hosts::AGGREGATOR);
        world.run_for(Duration::from_secs(30)).unwrap().hash
    };
    assert_eq!(run(21), run(21));
    assert_ne!(run(21), run(22));
}

/// The agent dials the aggregator its wiring names, and the aggregator the Redis its wiring
/// names: here both run on hosts the pipeline's own list does not know, so a part that
/// still dialed a constant (`railway-aggregator`, `railway-redis`) would deliver nothing.
#[test]
fn the_agent_and_the_aggregator_dial_the_peers_the_wiring_gives_them() {
    use obsim::vocab::Part;
    use obsim::vocab::pipeline::{Address, Peers};
    use obsim::vocab::ports;

    let mut world = world(1, Duration::from_secs(30));
    let ledger = Ledger::new();
    let peers = Peers::of_pipeline()
        .with(Part::Agent, Part::Aggregator, Address::new("agg-b", ports::AGGREGATOR_FORWARD))
        .with(Part::Aggregator, Part::Redis, Address::new("redis-b", ports::REDIS));
    let redis = FakeRedis::new(&ledger);
    let serve = redis.clone();
    world.host("redis-b", move |_| serve.clone().serve());
    let (l, p) = (ledger.clone(), peers.clone());
    world.host("agg-b", move |host| aggregator::run(part_ctx(host, &l).with_peers(p.clone()), aggregator_config()));
    let (l, p) = (ledger.clone(), peers);
    world.host(MACHINE, move |host| {
        let ctx = part_ctx(host, &l).with_peers(p.clone());
        async move {
            let pipe = RecordPipe::new(100_000);
            tokio::spawn(emit_logs(ctx.clone(), pipe.clone(), "comfyui-1/worker-0", 5, 20, Duration::from_millis(300)));
            agent::run(ctx, agent_config(), pipe, "machine.comfyui".into()).await
        }
    });
    world.run_for(Duration::from_secs(15)).unwrap();

    assert_eq!(emitted(&ledger), 100);
    assert_all_in_redis_once_or_more(&redis, 100);
    let connects = events(world.events(), EventKind::AgentConnect);
    assert!(!connects.is_empty() && connects.iter().all(|(_, to)| to == "agg-b:24225"), "{connects:?}");
    assert_eq!(events(world.events(), EventKind::AggregatorRedisConnect).len(), 1);
}
