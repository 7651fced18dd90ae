//! The Redis model inside a turmoil world, driven by the real `redis` crate client over
//! simulated TCP: blocking BLMOVE served FIFO and timing out, OOM past maxmemory, and the
//! loss each persistence mode has on crash — counted exactly, and in the ledger.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, RedisConnectionInfo};

use obsim::ledger::{Custodian, HostLoss, Ledger, Outcome};
use obsim::parts::PartCtx;
use obsim::parts::redis::{Persistence, RedisConfig, SavePoint};
use obsim::record::{RecordId, SourceId};
use obsim::vocab::{EventKind, hosts, ports};
use obsim::vocab::{LossCause, Part, Signal};
use obsim::world::{World, WorldBuilder};

/// Test values `rec-<seq>` carry record `seq` of source 0; anything else carries none.
fn test_record_ids(value: &[u8]) -> Vec<RecordId> {
    std::str::from_utf8(value)
        .ok()
        .and_then(|text| text.strip_prefix("rec-"))
        .and_then(|seq| seq.parse().ok())
        .map(|seq| vec![RecordId { source: SourceId(0), seq }])
        .unwrap_or_default()
}

/// A world with a Redis host running the model.
fn world_with_redis(seed: u64, config: RedisConfig, ledger: &Ledger) -> World<'static> {
    let mut world = WorldBuilder::new(seed).duration(Duration::from_secs(60)).build();
    let ledger = ledger.clone();
    world.host(hosts::REDIS, move |host| {
        let ctx = PartCtx::new(host, ledger.clone());
        obsim::parts::redis::run(ctx, config.clone(), test_record_ids)
    });
    world
}

/// Connects the real `redis` client over turmoil TCP (no response timeout: BLMOVE waits).
async fn connect() -> Result<MultiplexedConnection, Box<dyn std::error::Error>> {
    let stream = turmoil::net::TcpStream::connect((hosts::REDIS, ports::REDIS)).await?;
    let config = AsyncConnectionConfig::new().set_response_timeout(None);
    let (connection, driver) =
        MultiplexedConnection::new_with_config(&RedisConnectionInfo::default(), stream, config).await?;
    tokio::spawn(driver);
    Ok(connection)
}

type Log = Arc<Mutex<Vec<String>>>;

fn elapsed_ms() -> u128 {
    turmoil::sim_elapsed().unwrap_or_default().as_millis()
}

#[test]
fn blmove_waiters_are_woken_in_fifo_order_and_a_timeout_returns_nil() {
    let ledger = Ledger::new();
    let mut world = world_with_redis(1, RedisConfig::default(), &ledger);
    let log: Log = Arc::default();
    for (name, start_ms) in [("machine-a", 100), ("machine-b", 200)] {
        let log = Arc::clone(&log);
        world.host(name, move |_| {
            let log = Arc::clone(&log);
            async move {
                tokio::time::sleep(Duration::from_millis(start_ms)).await;
                let mut connection = connect().await?;
                let job: Option<String> = redis::cmd("BLMOVE")
                    .arg(&["jobs", "jobs:processing", "LEFT", "RIGHT", "0"])
                    .query_async(&mut connection)
                    .await?;
                log.lock().unwrap().push(format!("{name} got {job:?}"));
                Ok(())
            }
        });
    }
    let timeout_log = Arc::clone(&log);
    world.host("machine-c", move |_| {
        let log = Arc::clone(&timeout_log);
        async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            let mut connection = connect().await?;
            let asked_ms = elapsed_ms();
            let job: Option<String> = redis::cmd("BLMOVE")
                .arg(&["empty", "elsewhere", "LEFT", "RIGHT", "0.5"])
                .query_async(&mut connection)
                .await?;
            log.lock()
                .unwrap()
                .push(format!("machine-c got {job:?} after {} ms", (elapsed_ms() - asked_ms) / 100 * 100));
            Ok(())
        }
    });
    world.host("api", |_| async move {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let mut connection = connect().await?;
        let _: i64 = redis::cmd("RPUSH").arg(&["jobs", "job-1"]).query_async(&mut connection).await?;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let _: i64 = redis::cmd("RPUSH").arg(&["jobs", "job-2"]).query_async(&mut connection).await?;
        Ok(())
    });
    world.run_for(Duration::from_secs(1)).unwrap();
    assert_eq!(
        *log.lock().unwrap(),
        vec!["machine-c got None after 500 ms"],
        "the timed-out BLMOVE answers nil after its 0.5 s; the others still wait"
    );
    world.run_for(Duration::from_secs(4)).unwrap();
    assert_eq!(
        *log.lock().unwrap(),
        vec!["machine-c got None after 500 ms", "machine-a got Some(\"job-1\")", "machine-b got Some(\"job-2\")"],
        "the longest-waiting client is served first"
    );
    let connects = world.events().kept().iter().filter(|event| event.kind == EventKind::RedisConnect).count();
    assert_eq!(connects, 4);
}

#[test]
fn writes_past_maxmemory_get_oom_until_a_delete_frees_memory() {
    let ledger = Ledger::new();
    let config =
        RedisConfig { maxmemory_bytes: obsim::parts::redis::memory::BASELINE_BYTES + 10_000, ..RedisConfig::default() };
    let mut world = world_with_redis(2, config, &ledger);
    let log: Log = Arc::default();
    let client_log = Arc::clone(&log);
    world.host("railway-aggregator", move |_| {
        let log = Arc::clone(&client_log);
        async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let mut connection = connect().await?;
            let chunk = "x".repeat(1000);
            let mut accepted = 0;
            let error = loop {
                let pushed: redis::RedisResult<i64> =
                    redis::cmd("RPUSH").arg("logs").arg(&chunk).query_async(&mut connection).await;
                match pushed {
                    Ok(_) => accepted += 1,
                    Err(error) => break error,
                }
                assert!(accepted < 100, "maxmemory never refused a write");
            };
            log.lock().unwrap().push(format!(
                "accepted {accepted}, then {:?}: {}",
                error.code(),
                error.detail().unwrap_or_default()
            ));
            let length: i64 = redis::cmd("LLEN").arg("logs").query_async(&mut connection).await?;
            let popped: Option<String> = redis::cmd("LPOP").arg("logs").query_async(&mut connection).await?;
            log.lock().unwrap().push(format!("LLEN {length}, LPOP works: {}", popped.is_some()));
            let _: i64 = redis::cmd("DEL").arg("logs").query_async(&mut connection).await?;
            let after: i64 = redis::cmd("RPUSH").arg("logs").arg(&chunk).query_async(&mut connection).await?;
            log.lock().unwrap().push(format!("after DEL: RPUSH gives {after}"));
            Ok(())
        }
    });
    world.run_for(Duration::from_secs(2)).unwrap();
    assert_eq!(
        *log.lock().unwrap(),
        vec![
            "accepted 10, then Some(\"OOM\"): command not allowed when used memory > 'maxmemory'.".to_string(),
            "LLEN 10, LPOP works: true".to_string(),
            "after DEL: RPUSH gives 1".to_string(),
        ]
    );
}

/// Pushes `rec-0..rec-30`, one every 100 ms from t = 0.55 s (so none lands near a whole
/// second, when the everysec fsync runs), loses Redis at 3.5 s (`loss`), restarts it, and
/// returns (pushes acknowledged, LLEN after restart, the ledger's account).
fn lost_after_pushes(persistence: Persistence, loss: HostLoss) -> (u64, i64, obsim::ledger::Accounting) {
    let ledger = Ledger::new();
    let source = ledger.register_source("app", Signal::Log);
    assert_eq!(source, SourceId(0));
    ledger.emit(source, 30, 0);
    let config = RedisConfig { persistence, ..RedisConfig::default() };
    let mut world = world_with_redis(3, config, &ledger);
    let acked = Arc::new(Mutex::new(0u64));
    let writer_acked = Arc::clone(&acked);
    world.host("railway-aggregator", move |_| {
        let acked = Arc::clone(&writer_acked);
        async move {
            tokio::time::sleep(Duration::from_millis(550)).await;
            let mut every_100ms = tokio::time::interval(Duration::from_millis(100));
            let mut connection = connect().await?;
            for seq in 0..30 {
                every_100ms.tick().await;
                let _: i64 =
                    redis::cmd("RPUSH").arg("logs").arg(format!("rec-{seq}")).query_async(&mut connection).await?;
                *acked.lock().unwrap() += 1;
            }
            Ok(())
        }
    });
    let length = Arc::new(Mutex::new(-1i64));
    let checker_length = Arc::clone(&length);
    world.host("railway-shipper", move |_| {
        let length = Arc::clone(&checker_length);
        async move {
            tokio::time::sleep(Duration::from_secs(4)).await;
            let mut connection = connect().await?;
            *length.lock().unwrap() = redis::cmd("LLEN").arg("logs").query_async(&mut connection).await?;
            Ok(())
        }
    });
    world.run_for(Duration::from_millis(3_500)).unwrap();
    match loss {
        HostLoss::Power => world.power_loss(hosts::REDIS),
        HostLoss::Process => world.kill(hosts::REDIS),
    }
    ledger.host_lost(hosts::REDIS, loss);
    world.restart(hosts::REDIS);
    world.run_for(Duration::from_secs(5)).unwrap();
    let acked = *acked.lock().unwrap();
    let length = *length.lock().unwrap();
    (acked, length, ledger.account())
}

/// [`lost_after_pushes`] with a power loss.
fn crash_after_pushes(persistence: Persistence) -> (u64, i64, obsim::ledger::Accounting) {
    lost_after_pushes(persistence, HostLoss::Power)
}

/// The log records' outcomes with their counts, in the ledger's order.
fn lost_by_cause(account: &obsim::ledger::Accounting) -> Vec<(Outcome, u64)> {
    account.undelivered(Signal::Log).map(|(outcome, tally)| (outcome.clone(), tally.count)).collect()
}

/// Redis as a custodian.
fn redis_custodian() -> Custodian {
    Custodian { part: Part::Redis, host: Arc::from(hosts::REDIS) }
}

/// Lost by Redis's crash with nothing persisted.
fn crash_unpersisted() -> Outcome {
    Outcome::Lost { cause: LossCause::RedisCrashUnpersisted, custodian: redis_custodian() }
}

#[test]
fn persistence_none_loses_everything_on_crash_and_the_ledger_says_why() {
    let (acked, length, account) = crash_after_pushes(Persistence::None);
    assert_eq!(acked, 30);
    assert_eq!(length, 0, "appendonly no: nothing survives");
    assert_eq!(lost_by_cause(&account), vec![(crash_unpersisted(), 30)]);
}

#[test]
fn aof_always_loses_nothing_acknowledged() {
    let (acked, length, account) = crash_after_pushes(Persistence::AofAlways);
    assert_eq!(acked, 30);
    assert_eq!(length, 30, "every acknowledged write was fsynced before its reply");
    assert_eq!(lost_by_cause(&account), vec![(Outcome::InFlight(redis_custodian()), 30)]);
}

#[test]
fn aof_everysec_loses_exactly_the_writes_after_the_last_fsync() {
    let (acked, length, account) = crash_after_pushes(Persistence::AofEverysec);
    assert_eq!(acked, 30);
    // Pushes land at 0.55 s, 0.65 s, … 3.45 s; fsyncs run at 1 s, 2 s, 3 s; the crash at
    // 3.5 s loses the five pushes of 3.05 … 3.45 s.
    assert_eq!(length, 25);
    assert_eq!(lost_by_cause(&account), vec![(Outcome::InFlight(redis_custodian()), 25), (crash_unpersisted(), 5)]);
}

#[test]
fn custody_follows_values_moves_keep_it_pops_and_lrem_release_it() {
    let ledger = Ledger::new();
    let source = ledger.register_source("app", Signal::Log);
    ledger.emit(source, 10, 0);
    let mut world = world_with_redis(5, RedisConfig::default(), &ledger);
    world.host("railway-shipper", |_| async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut connection = connect().await?;
        let values: Vec<String> = (0..10).map(|seq| format!("rec-{seq}")).collect();
        let _: i64 = redis::cmd("RPUSH").arg("logs").arg(&values).query_async(&mut connection).await?;
        for _ in 0..3 {
            let _: String = redis::cmd("LMOVE")
                .arg(&["logs", "logs:processing", "LEFT", "RIGHT"])
                .query_async(&mut connection)
                .await?;
        }
        // The reliable queue: the shipper delivered rec-0 and rec-1 and removes them.
        let _: i64 = redis::cmd("LREM").arg(&["logs:processing", "1", "rec-0"]).query_async(&mut connection).await?;
        let _: i64 = redis::cmd("LREM").arg(&["logs:processing", "1", "rec-1"]).query_async(&mut connection).await?;
        let _: String = redis::cmd("RPOP").arg("logs").query_async(&mut connection).await?;
        Ok(())
    });
    world.run_for(Duration::from_secs(1)).unwrap();
    world.power_loss(hosts::REDIS);
    ledger.host_lost(hosts::REDIS, HostLoss::Power);
    // Released records have no custodian in this test (the shipper would hold them).
    assert_eq!(
        lost_by_cause(&ledger.account()),
        vec![(crash_unpersisted(), 7), (Outcome::LostSilently, 3)],
        "rec-2 (moved) and rec-3..rec-8 (queued) were held; rec-0, rec-1 (LREM) and rec-9 (RPOP) left"
    );
}

#[test]
fn pipelined_requests_get_all_replies_in_order_and_a_protocol_error_closes() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let ledger = Ledger::new();
    let mut world = world_with_redis(6, RedisConfig::default(), &ledger);
    let log: Log = Arc::default();
    let client_log = Arc::clone(&log);
    world.host("dev-1", move |_| {
        let log = Arc::clone(&client_log);
        async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let mut stream = turmoil::net::TcpStream::connect((hosts::REDIS, ports::REDIS)).await?;
            stream
                .write_all(
                    b"*3\r\n$5\r\nRPUSH\r\n$1\r\nq\r\n$1\r\na\r\nPING\r\n*2\r\n$4\r\nLLEN\r\n$1\r\nq\r\n*1\r\nx\r\n",
                )
                .await?;
            let mut replies = Vec::new();
            loop {
                let mut chunk = [0u8; 1024];
                let read = stream.read(&mut chunk).await?;
                if read == 0 {
                    break;
                }
                replies.extend_from_slice(&chunk[..read]);
            }
            log.lock().unwrap().push(String::from_utf8_lossy(&replies).to_string());
            Ok(())
        }
    });
    world.run_for(Duration::from_secs(1)).unwrap();
    assert_eq!(
        *log.lock().unwrap(),
        vec![":1\r\n+PONG\r\n:1\r\n-ERR Protocol error: expected '$', got 'x'\r\n"],
        "three replies, then the protocol error, then the server closed the connection"
    );
}

#[test]
fn sigkill_under_aof_everysec_loses_nothing_acknowledged() {
    // Every write reached the AOF file (the kernel) before its reply; the kill takes only
    // the process's memory, so the five writes after the last fsync survive too.
    let (acked, length, account) = lost_after_pushes(Persistence::AofEverysec, HostLoss::Process);
    assert_eq!(acked, 30);
    assert_eq!(length, 30);
    assert_eq!(lost_by_cause(&account), vec![(Outcome::InFlight(redis_custodian()), 30)]);
}

#[test]
fn sigkill_without_persistence_loses_everything_and_the_ledger_says_why() {
    let (acked, length, account) = lost_after_pushes(Persistence::None, HostLoss::Process);
    assert_eq!((acked, length), (30, 0));
    assert_eq!(lost_by_cause(&account), vec![(crash_unpersisted(), 30)]);
}

#[test]
fn the_default_persistence_is_redis_7_0s_rdb_save_points() {
    let config = RedisConfig::default();
    assert_eq!(config.persistence, Persistence::Rdb);
    let points: Vec<(u64, u64)> =
        config.save_points_in_force().iter().map(|point| (point.after_secs, point.changes)).collect();
    assert_eq!(points, vec![(3600, 1), (300, 100), (60, 10_000)]);
    let none = RedisConfig { persistence: Persistence::None, ..RedisConfig::default() };
    assert!(none.save_points_in_force().is_empty(), "persistence none is `save \"\"`");
}

/// How Redis stops in the RDB tests.
#[derive(Clone, Copy, Debug)]
enum Stop {
    /// SIGKILL at 3.5 s.
    Kill,
    /// SIGTERM at 3.5 s, SIGKILL 2 s later.
    Terminate,
}

/// What an RDB test saw: the lists after the restart, the ledger's account, the events.
struct RdbRun {
    logs: Vec<String>,
    processing: Vec<String>,
    account: obsim::ledger::Accounting,
    events: Vec<obsim::world::Event>,
}

/// `save 1 5`: rec-0..rec-9 pushed at 0.1 s (10 changes), so the save point fires at the
/// cron of 2 s (more than 1 s after the start at 0 s, at least 5 changes). At 3 s five more
/// changes (LPOP of rec-0, LMOVE of rec-1 to `processing`, LREM of it there, RPUSH of rec-10
/// and rec-11), too soon for the point (3 − 2 is not more than 1 s). Redis stops at 3.5 s and
/// restarts; a reader reads both lists at 6 s.
fn rdb_stream(stop: Stop) -> RdbRun {
    let ledger = Ledger::new();
    let source = ledger.register_source("app", Signal::Log);
    ledger.emit(source, 12, 0);
    let save_points = Some(vec![SavePoint { after_secs: 1, changes: 5 }]);
    let config = RedisConfig { persistence: Persistence::Rdb, save_points, ..RedisConfig::default() };
    let mut world = world_with_redis(7, config, &ledger);
    world.host("railway-aggregator", |_| async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut connection = connect().await?;
        let values: Vec<String> = (0..10).map(|seq| format!("rec-{seq}")).collect();
        let _: i64 = redis::cmd("RPUSH").arg("logs").arg(&values).query_async(&mut connection).await?;
        tokio::time::sleep(Duration::from_millis(2_900)).await;
        let _: String = redis::cmd("LPOP").arg("logs").query_async(&mut connection).await?;
        let _: String =
            redis::cmd("LMOVE").arg(&["logs", "processing", "LEFT", "RIGHT"]).query_async(&mut connection).await?;
        let _: i64 = redis::cmd("LREM").arg(&["processing", "1", "rec-1"]).query_async(&mut connection).await?;
        let _: i64 = redis::cmd("RPUSH").arg(&["logs", "rec-10", "rec-11"]).query_async(&mut connection).await?;
        // Keeps the connection open: the server's exit closes it.
        tokio::time::sleep(Duration::from_secs(60)).await;
        drop(connection);
        Ok(())
    });
    let lists = Arc::new(Mutex::new((Vec::new(), Vec::new())));
    let reader_lists = Arc::clone(&lists);
    world.host("railway-shipper", move |_| {
        let lists = Arc::clone(&reader_lists);
        async move {
            tokio::time::sleep(Duration::from_secs(6)).await;
            let mut connection = connect().await?;
            let logs: Vec<String> = redis::cmd("LRANGE").arg(&["logs", "0", "-1"]).query_async(&mut connection).await?;
            let processing: Vec<String> =
                redis::cmd("LRANGE").arg(&["processing", "0", "-1"]).query_async(&mut connection).await?;
            *lists.lock().unwrap() = (logs, processing);
            Ok(())
        }
    });
    world.run_for(Duration::from_millis(3_500)).unwrap();
    match stop {
        Stop::Kill => world.kill(hosts::REDIS),
        Stop::Terminate => {
            world.terminate(hosts::REDIS, Duration::from_secs(2));
            world.run_for(Duration::from_millis(5_600)).unwrap();
        }
    }
    ledger.host_lost(hosts::REDIS, HostLoss::Process);
    world.restart(hosts::REDIS);
    world.run_for(Duration::from_secs(7)).unwrap();
    let (logs, processing) = lists.lock().unwrap().clone();
    let events = world.events().kept().to_vec();
    RdbRun { logs, processing, account: ledger.account(), events }
}

/// The first event of `kind`: its true time in ms and its text.
fn first_event(events: &[obsim::world::Event], kind: EventKind) -> Option<(u128, String)> {
    events
        .iter()
        .find(|event| event.kind == kind)
        .map(|event| (u128::from(event.true_nanos / 1_000_000), event.detail.clone()))
}

#[test]
fn under_rdb_a_kill_brings_back_the_snapshot_consumed_values_included_and_loses_the_writes_after_it() {
    let run = rdb_stream(Stop::Kill);
    let snapshot: Vec<String> = (0..10).map(|seq| format!("rec-{seq}")).collect();
    assert_eq!(run.logs, snapshot, "the snapshot of 2 s: rec-0 and rec-1 back, rec-10 and rec-11 gone");
    assert!(run.processing.is_empty());
    let (at_ms, detail) = first_event(&run.events, EventKind::RedisBgsave).expect("the save point fired");
    assert_eq!(at_ms, 2_000, "more than 1 s after the start, at the cron: {detail}");
    assert_eq!(run.events.iter().filter(|event| event.kind == EventKind::RedisBgsave).count(), 1);
    // rec-0 and rec-1 left Redis (no custodian took them in this test) and came back: held
    // again, they will be delivered again downstream.
    assert_eq!(lost_by_cause(&run.account), vec![(Outcome::InFlight(redis_custodian()), 10), (crash_unpersisted(), 2)]);
}

#[test]
fn under_rdb_sigterm_saves_the_dataset_then_exits_and_nothing_is_lost() {
    let run = rdb_stream(Stop::Terminate);
    let expected: Vec<String> = (2..12).map(|seq| format!("rec-{seq}")).collect();
    assert_eq!(run.logs, expected, "the final SAVE holds every write, and not what was consumed");
    assert!(run.processing.is_empty());
    let (at_ms, detail) = first_event(&run.events, EventKind::RedisShutdown).expect("SIGTERM was acted on");
    assert_eq!(at_ms, 3_500, "at the next cron after the SIGTERM: {detail}");
    assert!(detail.starts_with("SIGTERM: saving the final snapshot (1 keys"), "{detail}");
    let (exit_ms, _) = first_event(&run.events, EventKind::RedisExit).expect("Redis exited by itself");
    assert!(exit_ms < 5_500, "before the SIGKILL: exited at {exit_ms} ms");
    let closed = run.events.iter().filter(|event| {
        event.kind == EventKind::RedisDisconnect && event.detail.ends_with("the server exited (SIGTERM)")
    });
    assert_eq!(closed.count(), 1, "the writer's connection closed as the process exited");
    assert_eq!(
        lost_by_cause(&run.account),
        vec![(Outcome::InFlight(redis_custodian()), 10), (Outcome::LostSilently, 2)],
        "rec-0 and rec-1 were consumed (no custodian took them in this test); the rest survived"
    );
}

#[test]
fn under_aof_everysec_sigterm_fsyncs_so_a_power_loss_after_the_exit_loses_nothing() {
    let ledger = Ledger::new();
    let source = ledger.register_source("app", Signal::Log);
    ledger.emit(source, 5, 0);
    let config = RedisConfig { persistence: Persistence::AofEverysec, ..RedisConfig::default() };
    let mut world = world_with_redis(8, config, &ledger);
    world.host("railway-aggregator", |_| async move {
        tokio::time::sleep(Duration::from_millis(1_250)).await;
        let mut connection = connect().await?;
        let values: Vec<String> = (0..5).map(|seq| format!("rec-{seq}")).collect();
        let _: i64 = redis::cmd("RPUSH").arg("logs").arg(&values).query_async(&mut connection).await?;
        Ok(())
    });
    let length = Arc::new(Mutex::new(-1i64));
    let reader_length = Arc::clone(&length);
    world.host("railway-shipper", move |_| {
        let length = Arc::clone(&reader_length);
        async move {
            tokio::time::sleep(Duration::from_secs(3)).await;
            let mut connection = connect().await?;
            *length.lock().unwrap() = redis::cmd("LLEN").arg("logs").query_async(&mut connection).await?;
            Ok(())
        }
    });
    // The writes land at ~1.25 s; SIGTERM at 1.5 s, before the 2 s fsync; the power goes at 1.8 s.
    world.run_for(Duration::from_millis(1_500)).unwrap();
    world.terminate(hosts::REDIS, Duration::from_secs(10));
    world.run_for(Duration::from_millis(1_800)).unwrap();
    world.power_loss(hosts::REDIS);
    ledger.host_lost(hosts::REDIS, HostLoss::Power);
    world.restart(hosts::REDIS);
    world.run_for(Duration::from_secs(4)).unwrap();
    assert_eq!(*length.lock().unwrap(), 5, "the exit's fsync made every write durable");
    assert_eq!(lost_by_cause(&ledger.account()), vec![(Outcome::InFlight(redis_custodian()), 5)]);
}

#[test]
fn under_aof_everysec_a_power_loss_before_the_fsync_loses_the_written_values() {
    // The control of the test above: without SIGTERM the same power loss loses them.
    let ledger = Ledger::new();
    let source = ledger.register_source("app", Signal::Log);
    ledger.emit(source, 5, 0);
    let config = RedisConfig { persistence: Persistence::AofEverysec, ..RedisConfig::default() };
    let mut world = world_with_redis(8, config, &ledger);
    world.host("railway-aggregator", |_| async move {
        tokio::time::sleep(Duration::from_millis(1_250)).await;
        let mut connection = connect().await?;
        let values: Vec<String> = (0..5).map(|seq| format!("rec-{seq}")).collect();
        let _: i64 = redis::cmd("RPUSH").arg("logs").arg(&values).query_async(&mut connection).await?;
        Ok(())
    });
    world.run_for(Duration::from_millis(1_800)).unwrap();
    world.power_loss(hosts::REDIS);
    ledger.host_lost(hosts::REDIS, HostLoss::Power);
    assert_eq!(lost_by_cause(&ledger.account()), vec![(crash_unpersisted(), 5)]);
}
