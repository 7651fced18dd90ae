//! The agent does what Fluent Bit 5.1 does (FIDELITY.md, Agent): every due chunk flushed at
//! once on its own connection (out_forward's 2 workers, `net.max_worker_connections`),
//! `storage.total_limit_size` making room before new data and refusing what it cannot
//! place, SIGTERM and `Grace`, chunk files `Written` until `storage.sync full` syncs them,
//! and `net.io_timeout 0` waiting for ever on a half-open connection.

mod aggregator_support;

use std::time::Duration;

use aggregator_support::{FakeRedis, emit_logs, events, in_flight, lost, lost_with, outcomes, part_ctx};
use obsim::ledger::{HostLoss, Ledger};
use obsim::parts::RecordPipe;
use obsim::parts::agent::{self, AgentConfig, RetryLimit, StorageSync, StorageType};
use obsim::parts::aggregator::{self, AggregatorConfig, OverflowAction};
use obsim::vocab::{EventKind, LossCause, Part, Signal, hosts};
use obsim::world::{World, WorldBuilder};

const MACHINE: &str = "comfyui-1";

/// How the machine's app emits: `batches` of `per_batch` records, `every` apart.
#[derive(Clone, Copy)]
struct Emit {
    batches: u64,
    per_batch: u64,
    every: Duration,
}

/// Adds the machine: its app (first incarnation only) and its agent.
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

/// An aggregator that holds every ack while Redis refuses writes (`block` over a small
/// buffer), so chunks stay in flight as long as a test wants.
fn blocking_aggregator() -> AggregatorConfig {
    AggregatorConfig {
        chunk_bytes_limit: 2_000,
        total_bytes_limit: 4_000,
        overflow_action: OverflowAction::Block,
        ..AggregatorConfig::default()
    }
}

/// An agent that waits for acks and never gives up.
fn acking_agent() -> AgentConfig {
    AgentConfig {
        require_ack: true,
        retry_limit: RetryLimit::NoLimits,
        io_timeout: Duration::from_secs(600),
        ..AgentConfig::default()
    }
}

fn world(seed: u64, duration: Duration) -> World<'static> {
    WorldBuilder::new(seed).duration(duration).build()
}

fn emitted(ledger: &Ledger) -> u64 {
    ledger.account().totals.get(&Signal::Log).map_or(0, |totals| totals.emitted)
}

/// The most flushes in flight at once: attempts started minus attempts ended (ack, sent,
/// retry, give-up), over the event log.
fn most_in_flight(world: &World<'_>) -> i64 {
    let mut changes: Vec<(f64, i64)> = events(world.events(), EventKind::AgentAttempt)
        .into_iter()
        .map(|(at, _)| (at, 1))
        .chain(
            [EventKind::AgentAck, EventKind::AgentSent, EventKind::AgentRetry, EventKind::AgentGiveUp]
                .into_iter()
                .flat_map(|kind| events(world.events(), kind))
                .map(|(at, _)| (at, -1)),
        )
        .collect();
    changes.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    changes
        .iter()
        .scan(0, |level, (_, change)| {
            *level += change;
            Some(*level)
        })
        .max()
        .unwrap_or(0)
}

// ---------------------------------------------------------------------------------------
// Workers: every due chunk at once, each on its own connection.
// ---------------------------------------------------------------------------------------

/// Redis refuses writes for 30 s, so the aggregator holds its acks; the app writes a chunk
/// a second. The old agent sent one chunk at a time: one in flight, one connection.
#[test]
fn every_due_chunk_is_flushed_at_once_on_its_own_connection() {
    let mut world = world(21, Duration::from_secs(200));
    let ledger = Ledger::new();
    let redis = add_railway(&mut world, &ledger, blocking_aggregator());
    redis.oom.store(true, std::sync::atomic::Ordering::SeqCst);
    add_machine(
        &mut world,
        &ledger,
        acking_agent(),
        Emit { batches: 10, per_batch: 20, every: Duration::from_secs(1) },
    );
    world.run_for(Duration::from_secs(30)).unwrap();

    let in_flight_at_most = most_in_flight(&world);
    assert!(in_flight_at_most >= 8, "a chunk a second, none acked: {in_flight_at_most} in flight at most");
    let connects = events(world.events(), EventKind::AgentConnect).len();
    assert!(connects as i64 >= in_flight_at_most, "one connection per flush in flight: {connects} connections");

    redis.oom.store(false, std::sync::atomic::Ordering::SeqCst);
    world.run_for(Duration::from_secs(150)).unwrap();
    assert_eq!(redis.pushed_ids().len(), 200);
    assert_eq!(outcomes(&ledger), vec![(in_flight(Part::Redis, "railway-redis"), 200)]);
}

/// Two workers of one connection each: at most two flushes hold a connection; the others
/// fail (`net.max_worker_connections 1 reached`) and are retried by the scheduler.
#[test]
fn max_worker_connections_bounds_the_connections_per_worker() {
    let mut world = world(22, Duration::from_secs(400));
    let ledger = Ledger::new();
    let redis = add_railway(&mut world, &ledger, blocking_aggregator());
    redis.oom.store(true, std::sync::atomic::Ordering::SeqCst);
    let config = AgentConfig { workers: 2, max_worker_connections: 1, ..acking_agent() };
    add_machine(&mut world, &ledger, config, Emit { batches: 6, per_batch: 20, every: Duration::from_secs(1) });
    world.run_for(Duration::from_secs(20)).unwrap();

    assert_eq!(events(world.events(), EventKind::AgentConnect).len(), 2, "one connection per worker");
    let refused = events(world.events(), EventKind::AgentRetry);
    assert!(refused.iter().any(|(_, detail)| detail.contains("net.max_worker_connections 1 reached")), "{refused:?}");
    redis.oom.store(false, std::sync::atomic::Ordering::SeqCst);
    world.run_for(Duration::from_secs(350)).unwrap();
    assert_eq!(outcomes(&ledger), vec![(in_flight(Part::Redis, "railway-redis"), 120)]);
}

// ---------------------------------------------------------------------------------------
// storage.total_limit_size: room is made before new data, which is refused without it.
// ---------------------------------------------------------------------------------------

/// Every sealed chunk is in flight (the aggregator holds the acks), so no chunk may be
/// evicted: new data past the limit is refused and lost with `agent_storage_limit`, and
/// the chunk files never pass the limit. The old agent wrote it anyway, over the limit.
#[test]
fn new_data_that_finds_no_room_under_the_total_limit_is_refused() {
    let mut world = world(23, Duration::from_secs(60));
    let ledger = Ledger::new();
    let redis = add_railway(&mut world, &ledger, blocking_aggregator());
    redis.oom.store(true, std::sync::atomic::Ordering::SeqCst);
    let config =
        AgentConfig { storage: StorageType::Filesystem, storage_total_bytes_limit: Some(20_000), ..acking_agent() };
    add_machine(&mut world, &ledger, config, Emit { batches: 20, per_batch: 20, every: Duration::from_secs(1) });
    let mut disk_bytes_most = 0;
    for second in 1..=30 {
        world.run_for(Duration::from_secs(second)).unwrap();
        disk_bytes_most = disk_bytes_most.max(world.disk(MACHINE).unwrap().bytes_used());
    }

    assert!(disk_bytes_most <= 20_000, "the chunk files stay under the limit: {disk_bytes_most}");
    let refusals = events(world.events(), EventKind::AgentRefused);
    assert!(!refusals.is_empty(), "new data was refused");
    let account = outcomes(&ledger);
    let refused = lost_with(&account, LossCause::AgentStorageLimit);
    assert!(refused > 0, "{account:?}");
    assert!(events(world.events(), EventKind::AgentDrop).is_empty(), "chunks in flight are never evicted");
    assert_eq!(emitted(&ledger), 400);
}

/// With nothing in flight (the aggregator is unreachable), room is made by evicting the
/// oldest chunks before the new data is written: the files never pass the limit, not
/// even between the write and the eviction, and nothing new is refused.
#[test]
fn the_oldest_chunks_are_evicted_before_new_data_is_placed() {
    let mut world = world(24, Duration::from_secs(60));
    let ledger = Ledger::new();
    world.host(hosts::AGGREGATOR, |_| async { std::future::pending::<turmoil::Result>().await });
    let config = AgentConfig {
        storage: StorageType::Filesystem,
        storage_total_bytes_limit: Some(20_000),
        take_records_max: 20,
        ..acking_agent()
    };
    add_machine(&mut world, &ledger, config, Emit { batches: 20, per_batch: 20, every: Duration::from_secs(1) });
    let mut disk_bytes_most = 0;
    for tenth in 1..=300 {
        world.run_for(Duration::from_millis(100 * tenth)).unwrap();
        disk_bytes_most = disk_bytes_most.max(world.disk(MACHINE).unwrap().bytes_used());
    }
    assert!(disk_bytes_most <= 20_000, "never over the limit: {disk_bytes_most}");
    // Four chunks of ~5 KB wait (19.9 KB); the next ~5 KB append needs room: Fluent Bit
    // frees as many bytes as the new data needs, oldest first — two chunks, since the oldest
    // is a few bytes smaller than the new data. (The old agent freed only the overage: one.)
    let drops = events(world.events(), EventKind::AgentDrop);
    let first_at = drops[0].0;
    let first: Vec<&String> = drops.iter().filter(|(at, _)| *at == first_at).map(|(_, detail)| detail).collect();
    assert_eq!(first.len(), 2, "{first:?}");
    assert!(first[0].starts_with("chunk 0 ") && first[1].starts_with("chunk 1 "), "oldest first: {first:?}");
    let account = outcomes(&ledger);
    let evicted = lost_with(&account, LossCause::AgentStorageLimit);
    assert!(evicted > 0 && events(world.events(), EventKind::AgentRefused).is_empty(), "{account:?}");
    assert_eq!(
        account,
        vec![
            (in_flight(Part::Agent, MACHINE), 400 - evicted),
            (lost(LossCause::AgentStorageLimit, Part::Agent, MACHINE), evicted),
        ]
    );
}

// ---------------------------------------------------------------------------------------
// SIGTERM and Grace.
// ---------------------------------------------------------------------------------------

/// Memory storage, the aggregator unreachable: on SIGTERM the agent flushes for `Grace`
/// (5 s) and exits; what it held is gone with the process, cause `agent_grace_expired`.
/// The old agent ignored SIGTERM until the SIGKILL 30 s later.
#[test]
fn sigterm_flushes_for_grace_then_exits_and_memory_chunks_are_lost() {
    let mut world = world(25, Duration::from_secs(120));
    let ledger = Ledger::new();
    world.host(hosts::AGGREGATOR, |_| async { std::future::pending::<turmoil::Result>().await });
    add_machine(&mut world, &ledger, acking_agent(), Emit { batches: 5, per_batch: 10, every: Duration::from_secs(1) });
    world.run_for(Duration::from_secs(10)).unwrap();
    world.terminate(MACHINE, Duration::from_secs(30));
    world.run_for(Duration::from_secs(20)).unwrap();

    let exits = events(world.events(), EventKind::AgentExit);
    assert_eq!(exits.len(), 1, "the agent exits by itself");
    let waited = exits[0].0 - 10.0;
    assert!((4.9..=5.1).contains(&waited), "it exits when Grace (5 s) runs out: {waited}s");
    assert_eq!(outcomes(&ledger), vec![(lost(LossCause::AgentGraceExpired, Part::Agent, MACHINE), 50)]);
}

/// A chunk waits for its retry (6–11 s) when the aggregator comes back and SIGTERM
/// arrives: Fluent Bit retries it at once and exits when nothing is left, well before the
/// SIGKILL (3 s later). The old agent kept the retry's wait and was killed first.
#[test]
fn sigterm_retries_at_once_and_exits_as_soon_as_nothing_is_pending() {
    let mut world = world(26, Duration::from_secs(120));
    let ledger = Ledger::new();
    let redis = FakeRedis::new(&ledger);
    let serve = redis.clone();
    world.host(hosts::REDIS, move |_| serve.clone().serve());
    // Nothing listens at first (every connect is refused at once); restarted, the aggregator.
    let aggregator_ledger = ledger.clone();
    world.host(hosts::AGGREGATOR, move |host| {
        let ctx = part_ctx(host, &aggregator_ledger);
        async move {
            if ctx.host.incarnation() == 0 {
                std::future::pending::<()>().await;
            }
            aggregator::run(ctx, AggregatorConfig::default()).await
        }
    });
    add_machine(&mut world, &ledger, acking_agent(), Emit { batches: 1, per_batch: 10, every: Duration::from_secs(1) });
    world.run_for(Duration::from_secs(3)).unwrap();
    assert_eq!(events(world.events(), EventKind::AgentRetry).len(), 1, "the chunk waits for its retry");
    world.restart(hosts::AGGREGATOR);
    world.run_for(Duration::from_millis(3_500)).unwrap();
    world.terminate(MACHINE, Duration::from_secs(3));
    world.run_for(Duration::from_secs(10)).unwrap();

    assert_eq!(redis.pushed_ids().len(), 10, "retried at SIGTERM and delivered");
    let exits = events(world.events(), EventKind::AgentExit);
    assert_eq!(exits.len(), 1);
    assert!(exits[0].0 < 3.5 + 1.1, "exits at the first grace tick with nothing pending: {}", exits[0].0);
    assert_eq!(outcomes(&ledger), vec![(in_flight(Part::Redis, "railway-redis"), 10)]);
}

/// Filesystem storage: what is unsent at exit stays on disk, and the next start sends it.
#[test]
fn sigterm_with_filesystem_storage_leaves_the_chunks_for_the_next_start() {
    let mut world = world(27, Duration::from_secs(200));
    let ledger = Ledger::new();
    let redis = add_railway(&mut world, &ledger, AggregatorConfig::default());
    let config = AgentConfig { storage: StorageType::Filesystem, ..acking_agent() };
    add_machine(&mut world, &ledger, config, Emit { batches: 5, per_batch: 10, every: Duration::from_secs(1) });
    world.partition(MACHINE, hosts::AGGREGATOR);
    world.run_for(Duration::from_secs(8)).unwrap();
    world.terminate(MACHINE, Duration::from_secs(30));
    world.run_for(Duration::from_secs(40)).unwrap();
    ledger.host_lost(MACHINE, HostLoss::Process);
    assert_eq!(events(world.events(), EventKind::AgentExit).len(), 1);
    assert_eq!(outcomes(&ledger), vec![(in_flight(Part::Agent, MACHINE), 50)], "held on disk, nothing lost");
    world.repair(MACHINE, hosts::AGGREGATOR);
    world.restart(MACHINE);
    world.run_for(Duration::from_secs(100)).unwrap();
    assert_eq!(redis.pushed_ids().len(), 50);
}

// ---------------------------------------------------------------------------------------
// Durability: Written until storage.sync full syncs at the flush.
// ---------------------------------------------------------------------------------------

/// Filesystem storage, a kill, a restart, for each `storage.sync`: every record taken
/// survives (the chunk files are in the page cache) and is delivered once.
#[test]
fn a_kill_keeps_every_record_written_to_a_chunk_file() {
    for sync in [StorageSync::Normal, StorageSync::Full] {
        let mut world = world(28, Duration::from_secs(300));
        let ledger = Ledger::new();
        let redis = add_railway(&mut world, &ledger, AggregatorConfig::default());
        let config = AgentConfig { storage: StorageType::Filesystem, storage_sync: sync, ..acking_agent() };
        add_machine(
            &mut world,
            &ledger,
            config,
            Emit { batches: 20, per_batch: 10, every: Duration::from_millis(300) },
        );
        world.partition(MACHINE, hosts::AGGREGATOR);
        // Mid-flush-interval: the open chunk holds records.
        world.run_for(Duration::from_millis(5_450)).unwrap();
        world.kill(MACHINE);
        ledger.host_lost(MACHINE, HostLoss::Process);
        let account = outcomes(&ledger);
        assert_eq!(lost_with(&account, LossCause::AgentCrashUnpersisted), 0, "{sync:?}: {account:?}");
        world.repair(MACHINE, hosts::AGGREGATOR);
        world.restart(MACHINE);
        world.run_for(Duration::from_secs(200)).unwrap();
        let taken = redis.pushed_ids().len() as u64;
        let account = outcomes(&ledger);
        assert_eq!(lost_with(&account, LossCause::AgentCrashUnpersisted), 0, "{sync:?}: {account:?}");
        assert_eq!(taken + lost_with(&account, LossCause::AppCrashUnpersisted), emitted(&ledger), "{sync:?}");
    }
}

/// A power loss: with `storage.sync normal` no chunk file was ever synced (msync
/// `MS_ASYNC`), so every unsent record is lost; with `full` the sealed chunks were synced
/// at their flush and come back. The old agent synced at the flush in both modes.
#[test]
fn a_power_loss_takes_unsynced_chunk_files_and_full_sync_keeps_sealed_ones() {
    let mut lost_by_mode = Vec::new();
    for sync in [StorageSync::Normal, StorageSync::Full] {
        let mut world = world(29, Duration::from_secs(300));
        let ledger = Ledger::new();
        let redis = add_railway(&mut world, &ledger, AggregatorConfig::default());
        let config = AgentConfig { storage: StorageType::Filesystem, storage_sync: sync, ..acking_agent() };
        add_machine(&mut world, &ledger, config, Emit { batches: 5, per_batch: 10, every: Duration::from_secs(1) });
        world.partition(MACHINE, hosts::AGGREGATOR);
        world.run_for(Duration::from_secs(8)).unwrap();
        world.power_loss(MACHINE);
        ledger.host_lost(MACHINE, HostLoss::Power);
        world.repair(MACHINE, hosts::AGGREGATOR);
        world.restart(MACHINE);
        world.run_for(Duration::from_secs(200)).unwrap();
        let account = outcomes(&ledger);
        let lost_at_agent = lost_with(&account, LossCause::AgentCrashUnpersisted);
        assert_eq!(redis.pushed_ids().len() as u64 + lost_at_agent, 50, "{sync:?}: {account:?}");
        lost_by_mode.push(lost_at_agent);
    }
    assert_eq!(lost_by_mode, vec![50, 0], "normal loses every unsynced file; full keeps the sealed chunks");
}

// ---------------------------------------------------------------------------------------
// net.io_timeout 0: Fluent Bit's default, no timeout.
// ---------------------------------------------------------------------------------------

/// The aggregator holds the acks (Redis refuses writes), then loses power: the agent's
/// connections are half-open with nothing left to retransmit. With `net.io_timeout 0` the
/// flushes waiting for their acks wait for ever — those chunks are never retried, even
/// after the aggregator is back; with the pipeline's 60 s they time out and are delivered.
/// The old config refused `io_timeout = 0`.
#[test]
fn io_timeout_zero_waits_for_ever_on_a_half_open_connection() {
    let mut stuck_by_timeout = Vec::new();
    for io_timeout in [Duration::ZERO, Duration::from_secs(60)] {
        let mut world = world(30, Duration::from_secs(900));
        let ledger = Ledger::new();
        let redis = add_railway(&mut world, &ledger, blocking_aggregator());
        redis.oom.store(true, std::sync::atomic::Ordering::SeqCst);
        let config = AgentConfig { io_timeout, ..acking_agent() };
        add_machine(&mut world, &ledger, config, Emit { batches: 3, per_batch: 20, every: Duration::from_secs(1) });
        world.run_for(Duration::from_secs(10)).unwrap();
        world.power_loss(hosts::AGGREGATOR);
        ledger.host_lost(hosts::AGGREGATOR, HostLoss::Power);
        redis.oom.store(false, std::sync::atomic::Ordering::SeqCst);
        world.run_for(Duration::from_secs(20)).unwrap();
        world.restart(hosts::AGGREGATOR);
        world.run_for(Duration::from_secs(800)).unwrap();
        let account = outcomes(&ledger);
        stuck_by_timeout.push(aggregator_support::count_of(&account, &in_flight(Part::Agent, MACHINE)));
        // What the aggregator had acked and buffered is lost with it, with its cause.
        assert!(!aggregator_support::any_silent(&account), "{account:?}");
    }
    assert!(stuck_by_timeout[0] > 0, "io_timeout 0: the chunks in flight stay stuck: {stuck_by_timeout:?}");
    assert_eq!(stuck_by_timeout[1], 0);
}
