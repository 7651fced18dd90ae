//! What survives a stop, the model against a real `redis-server` 7.0 (FIDELITY.md "Redis").
//!
//! For each persistence (`save 1 5` with `appendonly no`, `save ""` with `appendonly no`,
//! `appendfsync everysec`, `appendfsync always`) one stream of writes runs on a real server
//! and on the model: RPUSH of ten values (ten changes: the `rdb` save point fires), then,
//! once that snapshot is on disk, one LPOP, one LMOVE to a second list and an RPUSH of two
//! more (four changes: below the point, so no second snapshot). The server is then stopped
//! — by SIGKILL, and in another run by SIGTERM — and started again on the same directory,
//! and both lists are read back. The model runs the same stream in a turmoil world, stopped
//! with `World::kill` or `World::terminate` and started with `World::restart`. The lists
//! must be equal.
//!
//! A power loss cannot be done to a real server here (the page cache survives any process
//! death), so what a power loss takes is modelled but not differentially tested.
//!
//! The real server is Debian's `redis-server` (7.0.15; `.ci/run` installs it), on a free
//! loopback port, in its own directory, killed by a guard even when the test fails. Without
//! the binary the test fails, saying to install it.

mod redis_support;

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use obsim::ledger::Ledger;
use obsim::parts::PartCtx;
use obsim::parts::redis::{Persistence, RedisConfig, SavePoint};
use obsim::proto::resp::Reply;
use obsim::record::RecordId;
use obsim::vocab::{hosts, ports};
use obsim::world::WorldBuilder;
use redis_support::{RespClient, redis_server_binary};

/// One real server at a time in this binary (tests run on parallel threads; see
/// tests/redis_differential.rs).
static ONE_SERVER_AT_A_TIME: Mutex<()> = Mutex::new(());

/// The stream before the snapshot: ten changes.
const BEFORE_SNAPSHOT: &[&[&str]] =
    &[&["RPUSH", "logs", "rec-0", "rec-1", "rec-2", "rec-3", "rec-4", "rec-5", "rec-6", "rec-7", "rec-8", "rec-9"]];
/// The stream after it: four changes, below the save point's five.
const AFTER_SNAPSHOT: &[&[&str]] =
    &[&["LPOP", "logs"], &["LMOVE", "logs", "processing", "LEFT", "RIGHT"], &["RPUSH", "logs", "rec-10", "rec-11"]];

/// How the server is stopped.
#[derive(Clone, Copy, Debug)]
enum Stop {
    Kill,
    Terminate,
}

/// The persistence under test: the model's config and the real server's arguments.
fn persistence_args(persistence: Persistence) -> Vec<&'static str> {
    match persistence {
        Persistence::Rdb => vec!["--save", "1 5", "--appendonly", "no"],
        Persistence::None => vec!["--save", "", "--appendonly", "no"],
        Persistence::AofEverysec => vec!["--save", "", "--appendonly", "yes", "--appendfsync", "everysec"],
        Persistence::AofAlways => vec!["--save", "", "--appendonly", "yes", "--appendfsync", "always"],
    }
}

fn model_config(persistence: Persistence) -> RedisConfig {
    let save_points = (persistence == Persistence::Rdb).then(|| vec![SavePoint { after_secs: 1, changes: 5 }]);
    RedisConfig { persistence, save_points, ..RedisConfig::default() }
}

/// The two lists after the restart.
type Lists = (Vec<String>, Vec<String>);

// ---------------------------------------------------------------------------------------
// The real server.

/// A real server's directory, removed on drop.
struct Dir(PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running `redis-server`, SIGKILLed on drop.
struct Server {
    child: Child,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn start(dir: &Path, persistence: Persistence) -> Server {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new(redis_server_binary())
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(persistence_args(persistence))
            .arg("--dir")
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        let server = Server { child, port };
        for _ in 0..200 {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return server;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("redis-server did not listen on port {port} within 5 s");
    }

    fn connect(&self) -> Client {
        Client(RespClient::connect(self.port))
    }

    /// Stops the server as `stop` says and waits for the process to end.
    fn stop(mut self, stop: Stop) {
        match stop {
            Stop::Kill => self.child.kill().expect("SIGKILL"),
            Stop::Terminate => {
                let pid = self.child.id().to_string();
                let status = Command::new("kill").args(["-TERM", &pid]).status().expect("kill runs");
                assert!(status.success(), "kill -TERM {pid} failed");
            }
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.child.try_wait().expect("the server's status").is_none() {
            assert!(Instant::now() < deadline, "redis-server did not exit within 10 s of {stop:?}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// A client with the persistence questions the test asks.
struct Client(RespClient);

impl Client {
    fn call(&mut self, argv: &[&str]) -> Reply {
        self.0.call(argv)
    }

    /// A field of `INFO persistence`.
    fn persistence_info(&mut self, field: &str) -> String {
        let Reply::Bulk(info) = self.call(&["INFO", "persistence"]) else { panic!("INFO answers a bulk string") };
        let text = String::from_utf8_lossy(&info).to_string();
        let prefix = format!("{field}:");
        text.lines()
            .find_map(|line| line.strip_prefix(&prefix).map(str::to_string))
            .unwrap_or_else(|| panic!("INFO persistence has no {field}: {text}"))
    }

    /// Waits (up to 10 s) until the save point's background save finished.
    fn wait_for_snapshot(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.persistence_info("rdb_changes_since_last_save") != "0"
            || self.persistence_info("rdb_bgsave_in_progress") != "0"
        {
            assert!(Instant::now() < deadline, "the save point `save 1 5` did not fire within 10 s");
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(self.persistence_info("rdb_last_bgsave_status"), "ok");
    }

    /// Waits (up to 10 s) until the server loaded its dataset (it answers `-LOADING` before).
    fn wait_loaded(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.persistence_info("loading") != "0" {
            assert!(Instant::now() < deadline, "redis-server did not load its dataset within 10 s");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn list(&mut self, key: &str) -> Vec<String> {
        match self.call(&["LRANGE", key, "0", "-1"]) {
            Reply::Array(items) => items
                .into_iter()
                .map(|item| match item {
                    Reply::Bulk(bytes) => String::from_utf8_lossy(&bytes).to_string(),
                    other => panic!("LRANGE answered {other:?}"),
                })
                .collect(),
            other => panic!("LRANGE answered {other:?}"),
        }
    }
}

/// The stream on a real server, stopped by `stop`, restarted: the lists it holds then.
fn real_run(persistence: Persistence, stop: Stop) -> Lists {
    let _turn = ONE_SERVER_AT_A_TIME.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let dir = std::env::temp_dir().join(format!("obsim-redis-persist-{persistence:?}-{stop:?}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let dir = Dir(dir);
    let server = Server::start(&dir.0, persistence);
    let mut client = server.connect();
    for argv in BEFORE_SNAPSHOT {
        client.call(argv);
    }
    if persistence == Persistence::Rdb {
        client.wait_for_snapshot();
    }
    for argv in AFTER_SNAPSHOT {
        client.call(argv);
    }
    drop(client);
    server.stop(stop);
    let server = Server::start(&dir.0, persistence);
    let mut client = server.connect();
    client.wait_loaded();
    (client.list("logs"), client.list("processing"))
}

// ---------------------------------------------------------------------------------------
// The model.

/// No value carries log records here: the test compares data, not custody.
fn no_records(_: &[u8]) -> Vec<RecordId> {
    Vec::new()
}

/// Sends `commands` over a real `redis` client connection in the simulated network.
async fn send(commands: &[&[&str]]) -> Result<(), Box<dyn std::error::Error>> {
    let stream = turmoil::net::TcpStream::connect((hosts::REDIS, ports::REDIS)).await?;
    let (mut connection, driver) = redis::aio::MultiplexedConnection::new_with_config(
        &redis::RedisConnectionInfo::default(),
        stream,
        redis::AsyncConnectionConfig::new(),
    )
    .await?;
    tokio::spawn(driver);
    for argv in commands {
        let _: redis::Value = redis::cmd(argv[0]).arg(&argv[1..]).query_async(&mut connection).await?;
    }
    Ok(())
}

/// The stream on the model: written at 0.1 s, the save point fires at 2 s, the rest at 3 s;
/// stopped at 3.2 s (a SIGTERM has 2 s of draining: restarted at 5.7 s), read back at 6 s.
fn model_run(persistence: Persistence, stop: Stop) -> Lists {
    let ledger = Ledger::new();
    let config = model_config(persistence);
    let mut world = WorldBuilder::new(11).duration(Duration::from_secs(60)).build();
    world.host(hosts::REDIS, move |host| {
        let ctx = PartCtx::new(host, ledger.clone());
        obsim::parts::redis::run(ctx, config.clone(), no_records)
    });
    world.host("railway-aggregator", |_| async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        send(BEFORE_SNAPSHOT).await?;
        tokio::time::sleep(Duration::from_millis(2_900)).await;
        send(AFTER_SNAPSHOT).await?;
        Ok(())
    });
    let lists: Arc<Mutex<Option<Lists>>> = Arc::default();
    let reader_lists = Arc::clone(&lists);
    world.host("railway-shipper", move |_| {
        let lists = Arc::clone(&reader_lists);
        async move {
            tokio::time::sleep(Duration::from_secs(6)).await;
            let stream = turmoil::net::TcpStream::connect((hosts::REDIS, ports::REDIS)).await?;
            let (mut connection, driver) = redis::aio::MultiplexedConnection::new_with_config(
                &redis::RedisConnectionInfo::default(),
                stream,
                redis::AsyncConnectionConfig::new(),
            )
            .await?;
            tokio::spawn(driver);
            let logs: Vec<String> = redis::cmd("LRANGE").arg(&["logs", "0", "-1"]).query_async(&mut connection).await?;
            let processing: Vec<String> =
                redis::cmd("LRANGE").arg(&["processing", "0", "-1"]).query_async(&mut connection).await?;
            *lists.lock().unwrap() = Some((logs, processing));
            Ok(())
        }
    });
    world.run_for(Duration::from_millis(3_200)).unwrap();
    match stop {
        Stop::Kill => world.kill(hosts::REDIS),
        Stop::Terminate => {
            world.terminate(hosts::REDIS, Duration::from_secs(2));
            world.run_for(Duration::from_millis(5_700)).unwrap();
        }
    }
    world.restart(hosts::REDIS);
    world.run_for(Duration::from_secs(7)).unwrap();
    let lists = lists.lock().unwrap().clone();
    lists.expect("the reader read both lists after the restart")
}

/// Both sides, compared; returns what survived.
fn differential(persistence: Persistence, stop: Stop) -> Lists {
    let real = real_run(persistence, stop);
    let model = model_run(persistence, stop);
    assert_eq!(
        model, real,
        "{persistence:?}, stopped by {stop:?}: the model (left) kept other lists than redis-server (right)"
    );
    model
}

fn strings(values: &[&str]) -> Vec<String> {
    values.iter().map(|value| value.to_string()).collect()
}

/// Every value of the stream, as it stood at the stop.
fn everything() -> Lists {
    (
        strings(&["rec-2", "rec-3", "rec-4", "rec-5", "rec-6", "rec-7", "rec-8", "rec-9", "rec-10", "rec-11"]),
        strings(&["rec-1"]),
    )
}

/// The snapshot: the ten values of the first RPUSH, consumed ones back.
fn snapshot() -> Lists {
    (strings(&["rec-0", "rec-1", "rec-2", "rec-3", "rec-4", "rec-5", "rec-6", "rec-7", "rec-8", "rec-9"]), Vec::new())
}

#[test]
fn rdb_sigkill_keeps_the_snapshot_consumed_values_back_later_writes_gone() {
    assert_eq!(differential(Persistence::Rdb, Stop::Kill), snapshot());
}

#[test]
fn rdb_sigterm_saves_everything_before_exit() {
    assert_eq!(differential(Persistence::Rdb, Stop::Terminate), everything());
}

#[test]
fn no_persistence_keeps_nothing_after_sigkill_or_sigterm() {
    assert_eq!(differential(Persistence::None, Stop::Kill), (Vec::new(), Vec::new()));
    assert_eq!(differential(Persistence::None, Stop::Terminate), (Vec::new(), Vec::new()));
}

#[test]
fn aof_everysec_keeps_every_acknowledged_write_after_sigkill_and_sigterm() {
    assert_eq!(differential(Persistence::AofEverysec, Stop::Kill), everything());
    assert_eq!(differential(Persistence::AofEverysec, Stop::Terminate), everything());
}

#[test]
fn aof_always_keeps_every_acknowledged_write_after_sigkill_and_sigterm() {
    assert_eq!(differential(Persistence::AofAlways, Stop::Kill), everything());
    assert_eq!(differential(Persistence::AofAlways, Stop::Terminate), everything());
}
