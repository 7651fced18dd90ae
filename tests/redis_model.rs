//! The Redis model inside a turmoil world, driven by the real `redis` crate client over
//! simulated TCP: blocking BLMOVE served FIFO and timing out, OOM past maxmemory, and the
//! loss each persistence mode has on crash — counted exactly, and in the ledger.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, RedisConnectionInfo};

use obsim::ledger::{Custodian, Ledger, Outcome};
use obsim::parts::PartCtx;
use obsim::parts::redis::{Persistence, RedisConfig};
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
/// second, when the everysec fsync runs), crashes Redis at 3.5 s, restarts it, and
/// returns (pushes acknowledged, LLEN after restart, the ledger's account).
fn crash_after_pushes(persistence: Persistence) -> (u64, i64, obsim::ledger::Accounting) {
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
    world.power_loss(hosts::REDIS);
    ledger.host_lost(hosts::REDIS, obsim::ledger::HostLoss::Power);
    world.restart(hosts::REDIS);
    world.run_for(Duration::from_secs(5)).unwrap();
    let acked = *acked.lock().unwrap();
    let length = *length.lock().unwrap();
    (acked, length, ledger.account())
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
    ledger.host_lost(hosts::REDIS, obsim::ledger::HostLoss::Power);
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
