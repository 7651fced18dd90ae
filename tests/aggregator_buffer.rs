//! The aggregator's buffer as Fluentd 1.19 runs it (FIDELITY.md "Aggregator — Fluentd"):
//! the retry limit clears the whole queue, `queued_chunks_limit_size` keeps the flush timer
//! from queueing while the output fails, the first retry waits exactly `retry_wait`, SIGTERM
//! runs `flush_at_shutdown`, and buf_file chunks survive a kill (not a power loss) and are
//! resumed. Each drives a dev host, the aggregator and a fake Redis through the world.

mod aggregator_support;

use std::sync::atomic::Ordering;
use std::time::Duration;

use aggregator_support::dev::{add_dev_host, railway};
use aggregator_support::{FakeRedis, events, in_flight, lost, outcomes};
use obsim::ledger::{HostLoss, Ledger};
use obsim::parts::aggregator::{AggregatorConfig, BufferType};
use obsim::vocab::{EventKind, LossCause, Part, hosts};
use obsim::world::{World, WorldBuilder};

const AGGREGATOR: &str = hosts::AGGREGATOR;

/// A world whose host losses reach the ledger, as the pipeline wires it.
fn world_with_ledger(seed: u64, ledger: &Ledger) -> World<'static> {
    let mut world = WorldBuilder::new(seed).duration(Duration::from_secs(300)).build();
    let hook = ledger.clone();
    world.on_host_lost(move |host, loss| hook.host_lost(host, loss));
    world
}

/// The number in `detail` after `word ` (e.g. `records 40`).
fn number_after(detail: &str, word: &str) -> u64 {
    detail.split(&format!("{word} ")).nth(1).unwrap().split_whitespace().next().unwrap().parse().unwrap()
}

/// Records dropped per drop event, with the event's time.
fn drops(world: &World<'_>) -> Vec<(f64, u64, String)> {
    events(world.events(), EventKind::AggregatorDrop)
        .into_iter()
        .map(|(at, detail)| (at, number_after(&detail, "records"), detail))
        .collect()
}

/// Records flushed to Redis, one entry per flushed chunk.
fn flushed(world: &World<'_>) -> Vec<u64> {
    events(world.events(), EventKind::AggregatorFlush)
        .iter()
        .map(|(_, detail)| number_after(detail, "records"))
        .collect()
}

fn oom(redis: &FakeRedis, on: bool) {
    redis.oom.store(on, Ordering::SeqCst);
}

/// `handle_limit_reached` → `clear_queue!`: when the retries are spent, every queued chunk
/// goes at that moment with the error's cause — not only the head. Small chunks make each
/// POST its own chunk, so several are queued behind the failing one. On the old code each
/// chunk had its own retries and only the head was dropped at the limit.
#[test]
fn the_retry_limit_drops_every_queued_chunk_at_once_with_the_errors_cause() {
    let ledger = Ledger::new();
    let mut world = world_with_ledger(21, &ledger);
    let config = AggregatorConfig {
        chunk_bytes_limit: 4_000,
        retry_max_times: Some(2),
        retry_randomize: false,
        ..AggregatorConfig::default()
    };
    let redis = railway(&mut world, &ledger, config);
    oom(&redis, true);
    add_dev_host(&mut world, &ledger, 6, 10, Vec::new());
    world.run_for(Duration::from_secs(6)).unwrap();

    let limits = events(world.events(), EventKind::AggregatorRetryLimit);
    assert_eq!(limits.len(), 1, "{limits:?}");
    assert!(limits[0].1.ends_with("cause redis_oom"), "{limits:?}");
    let drops = drops(&world);
    assert!(drops.len() >= 2, "the whole queue, not only its head: {drops:?}");
    assert!(drops.iter().all(|(at, _, detail)| *at == limits[0].0 && detail.ends_with("cause redis_oom")), "{drops:?}");
    let dropped: u64 = drops.iter().map(|(_, records, _)| records).sum();
    let outcomes = outcomes(&ledger);
    assert_eq!(aggregator_support::lost_with(&outcomes, LossCause::RedisOom), dropped);
    // What was staged stays: the buffer goes on with the next POSTs.
    assert!(aggregator_support::count_of(&outcomes, &in_flight(Part::Aggregator, AGGREGATOR)) > 0, "{outcomes:?}");
}

/// `queued_chunks_limit_size` 1 (Fluentd's default, `flush_thread_count`): while the failing
/// chunk waits in the queue, the flush timer queues nothing; the staged chunk grows, and
/// after recovery the backlog goes as one chunk, not one per flush interval. On the old code
/// every tick queued a chunk: about twenty small chunks after twenty seconds.
#[test]
fn while_the_output_fails_the_staged_chunk_grows_instead_of_queueing_one_chunk_per_interval() {
    let ledger = Ledger::new();
    let mut world = world_with_ledger(22, &ledger);
    let config = AggregatorConfig { chunk_bytes_limit: 1_000_000, retry_forever: true, ..AggregatorConfig::default() };
    let redis = railway(&mut world, &ledger, config);
    oom(&redis, true);
    add_dev_host(&mut world, &ledger, 20, 10, Vec::new());
    world.run_for(Duration::from_secs(25)).unwrap();
    oom(&redis, false);
    world.run_for(Duration::from_secs(80)).unwrap();

    let chunks = flushed(&world);
    assert_eq!(chunks.iter().sum::<u64>(), 200, "{chunks:?}");
    assert_eq!(chunks.len(), 2, "the failing chunk, then everything staged meanwhile: {chunks:?}");
    assert_eq!(outcomes(&ledger), vec![(in_flight(Part::Redis, hosts::REDIS), 200)]);
}

/// A chunk is enqueued once it reaches `chunk_full_threshold` (95 %) of `chunk_limit_size`,
/// and a write that would take it past the limit enqueues it first: no chunk is written
/// larger than the limit (the old code appended first and let chunks pass the limit).
#[test]
fn chunks_never_pass_chunk_limit_size_and_full_ones_queue_past_the_queue_limit() {
    let ledger = Ledger::new();
    let mut world = world_with_ledger(23, &ledger);
    let config = AggregatorConfig {
        chunk_bytes_limit: 10_000,
        flush_interval: Duration::from_secs(60),
        retry_randomize: false,
        ..AggregatorConfig::default()
    };
    let redis = railway(&mut world, &ledger, config);
    add_dev_host(&mut world, &ledger, 12, 10, Vec::new());
    world.run_for(Duration::from_secs(20)).unwrap();

    let chunks = redis.chunks();
    assert!(chunks.len() >= 3, "full chunks are written before any flush interval: {}", chunks.len());
    let limit_records = 10_000 / 300; // a record's JSON is over 300 bytes
    assert!(chunks.iter().all(|(_, chunk)| chunk.records.len() <= limit_records), "no chunk past the limit");
    assert!(events(world.events(), EventKind::AggregatorRetry).is_empty());
}

/// The first retry waits exactly `retry_wait` even with `retry_randomize` on (Fluentd
/// creates the retry state with `@start + @constant_factor`); the next ones are randomised
/// around `retry_wait · 2^steps`. On the old code the first wait was randomised too.
#[test]
fn the_first_retry_waits_exactly_retry_wait_then_waits_are_randomised() {
    let ledger = Ledger::new();
    let mut world = world_with_ledger(24, &ledger);
    let config = AggregatorConfig { retry_max_times: Some(4), ..AggregatorConfig::default() };
    assert!(config.retry_randomize);
    let redis = railway(&mut world, &ledger, config);
    oom(&redis, true);
    add_dev_host(&mut world, &ledger, 1, 25, Vec::new());
    world.run_for(Duration::from_secs(40)).unwrap();

    let waits: Vec<u64> = events(world.events(), EventKind::AggregatorRetry)
        .iter()
        .map(|(_, detail)| detail.rsplit("next in ").next().unwrap().trim_end_matches("ms").parse().unwrap())
        .collect();
    assert_eq!(waits.len(), 4, "{waits:?}");
    assert_eq!(waits[0], 1_000);
    for (steps, wait) in waits.iter().enumerate().skip(1) {
        let nominal = 1_000f64 * 2f64.powi(steps as i32);
        assert!((*wait as f64) >= nominal * 0.875 && (*wait as f64) <= nominal * 1.125, "{waits:?}");
    }
    assert_ne!(waits[1], 2_000, "randomised (this seed draws off the nominal wait)");
    assert_eq!(outcomes(&ledger), vec![(lost(LossCause::RedisOom, Part::Aggregator, AGGREGATOR), 25)]);
}

/// SIGTERM with a memory buffer (`flush_at_shutdown` true by default): the inputs close,
/// every staged chunk is enqueued and written before the process exits, well within the
/// draining time. With Fluentd's `flush_interval` 60 s nothing had been flushed before; on
/// the old code SIGTERM was ignored and the SIGKILL lost everything.
#[test]
fn sigterm_flushes_a_memory_buffer_before_exiting() {
    let ledger = Ledger::new();
    let mut world = world_with_ledger(25, &ledger);
    let config = AggregatorConfig { flush_interval: Duration::from_secs(60), ..AggregatorConfig::default() };
    let redis = railway(&mut world, &ledger, config);
    add_dev_host(&mut world, &ledger, 5, 20, Vec::new());
    world.run_for(Duration::from_secs(8)).unwrap();
    assert!(redis.pushed_ids().is_empty(), "flush_interval 60s: nothing flushed yet");
    world.terminate(AGGREGATOR, Duration::from_secs(30));
    world.run_for(Duration::from_secs(50)).unwrap();

    assert_eq!(redis.pushed_ids().len(), 100);
    assert_eq!(outcomes(&ledger), vec![(in_flight(Part::Redis, hosts::REDIS), 100)]);
    let exit = events(world.events(), EventKind::AggregatorExit);
    assert_eq!(exit.len(), 1);
    assert!(exit[0].0 < 10.0, "exits once flushed, long before the SIGKILL: {exit:?}");
    assert_eq!(exit[0].1, "records lost from memory 0, left on file 0");
}

/// SIGTERM while Redis refuses: the shutdown flush stops at the first failure (Fluentd's
/// `submit_flush_all` loops only while no retry is pending) and the process exits; its
/// memory chunks are lost then, as `aggregator_crash_unpersisted`.
#[test]
fn sigterm_while_the_output_fails_exits_and_loses_the_memory_buffer() {
    let ledger = Ledger::new();
    let mut world = world_with_ledger(26, &ledger);
    let config = AggregatorConfig { flush_interval: Duration::from_secs(60), ..AggregatorConfig::default() };
    let redis = railway(&mut world, &ledger, config);
    oom(&redis, true);
    add_dev_host(&mut world, &ledger, 3, 20, Vec::new());
    world.run_for(Duration::from_secs(5)).unwrap();
    world.terminate(AGGREGATOR, Duration::from_secs(30));
    world.run_for(Duration::from_secs(40)).unwrap();

    let exit = events(world.events(), EventKind::AggregatorExit);
    assert_eq!(exit.len(), 1);
    assert!(exit[0].0 < 7.0, "{exit:?}");
    assert_eq!(exit[0].1, "records lost from memory 60, left on file 0");
    assert_eq!(
        outcomes(&ledger),
        vec![(lost(LossCause::AggregatorCrashUnpersisted, Part::Aggregator, AGGREGATOR), 60)]
    );
}

/// A file buffer while Redis refuses: `loss` hits the aggregator, Redis recovers, the
/// aggregator restarts. Returns the ledger's outcomes and the resume events.
fn file_buffer_then(loss: HostLoss, seed: u64) -> (Vec<(obsim::ledger::Outcome, u64)>, usize) {
    let ledger = Ledger::new();
    let mut world = world_with_ledger(seed, &ledger);
    let config = AggregatorConfig { buffer_type: BufferType::File, ..AggregatorConfig::default() };
    let redis = railway(&mut world, &ledger, config);
    oom(&redis, true);
    add_dev_host(&mut world, &ledger, 4, 20, Vec::new());
    world.run_for(Duration::from_secs(6)).unwrap();
    match loss {
        HostLoss::Process => world.kill(AGGREGATOR),
        HostLoss::Power => world.power_loss(AGGREGATOR),
    }
    oom(&redis, false);
    world.run_for(Duration::from_secs(7)).unwrap();
    world.restart(AGGREGATOR);
    world.run_for(Duration::from_secs(20)).unwrap();
    (outcomes(&ledger), events(world.events(), EventKind::AggregatorResume).len())
}

/// buf_file writes its chunk files without fsync: a SIGKILL keeps them (the kernel has
/// them), and the restarted Fluentd resumes and writes them — nothing is lost.
#[test]
fn a_killed_file_buffer_resumes_its_chunks_and_loses_nothing() {
    let (outcomes, resumed) = file_buffer_then(HostLoss::Process, 27);
    assert!(resumed >= 1);
    assert_eq!(outcomes, vec![(in_flight(Part::Redis, hosts::REDIS), 80)]);
}

/// ... and a power loss takes the unsynced chunk files with it: every record the file
/// buffer held is lost as `aggregator_crash_unpersisted`; nothing is resumed.
#[test]
fn a_power_loss_takes_the_unsynced_file_buffer_with_it() {
    let (outcomes, resumed) = file_buffer_then(HostLoss::Power, 27);
    assert_eq!(resumed, 0);
    assert_eq!(outcomes, vec![(lost(LossCause::AggregatorCrashUnpersisted, Part::Aggregator, AGGREGATOR), 80)]);
}

/// A file buffer's `flush_at_shutdown` is false by default: SIGTERM closes the inputs and
/// exits at once, leaving the chunks on file; the next start resumes and writes them.
#[test]
fn sigterm_leaves_a_file_buffer_on_disk_for_the_next_start() {
    let ledger = Ledger::new();
    let mut world = world_with_ledger(28, &ledger);
    let config = AggregatorConfig {
        buffer_type: BufferType::File,
        flush_interval: Duration::from_secs(60),
        ..AggregatorConfig::default()
    };
    let redis = railway(&mut world, &ledger, config);
    add_dev_host(&mut world, &ledger, 3, 20, Vec::new());
    world.run_for(Duration::from_secs(5)).unwrap();
    world.terminate(AGGREGATOR, Duration::from_secs(30));
    world.run_for(Duration::from_secs(40)).unwrap();
    let exit = events(world.events(), EventKind::AggregatorExit);
    assert_eq!(exit.len(), 1);
    assert_eq!(exit[0].1, "records lost from memory 0, left on file 60");
    assert!(redis.pushed_ids().is_empty());
    world.restart(AGGREGATOR);
    world.run_for(Duration::from_secs(45)).unwrap();
    assert_eq!(outcomes(&ledger), vec![(in_flight(Part::Redis, hosts::REDIS), 60)]);
}
