//! The Redis model answers exactly as a real `redis-server` 7.0 does: the same command
//! scripts run against both, and every reply must match byte for byte.
//!
//! The real server is Debian's `redis-server` (7.0.15; `.ci/run` installs it), started per
//! test on a free loopback port with no persistence and killed by a guard even when the
//! test fails. Without the binary the test fails, saying to install it.
//!
//! Everything — counts, order, error texts — is compared as raw RESP bytes. Streams are not
//! modelled (the pipeline buffers in lists), so no script uses them: real Redis knows them and
//! the model answers them as unknown commands (`parts::redis::tests`).

mod redis_support;

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use obsim::parts::redis::{Db, RedisConfig};
use redis_support::{RespClient, redis_server_binary};

/// One real server at a time in this test binary: tests run on parallel threads, and a port
/// freed by one test's probe or its dying server could otherwise be reached by another test's
/// client (seen as a connection reset mid-script).
static ONE_SERVER_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A running `redis-server`, killed and its directory removed on drop.
struct RealRedis {
    child: Child,
    dir: PathBuf,
    port: u16,
    _turn: std::sync::MutexGuard<'static, ()>,
}

impl Drop for RealRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl RealRedis {
    fn start(test: &str) -> RealRedis {
        RealRedis::start_with(test, None)
    }

    /// Starts a server; with `aof`, that file is placed in its directory as
    /// `appendonly.aof` and the server starts with `--appendonly yes` and loads it.
    fn start_with(test: &str, aof: Option<&[u8]>) -> RealRedis {
        let turn = ONE_SERVER_AT_A_TIME.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let binary = redis_server_binary();
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let dir = std::env::temp_dir().join(format!("obsim-redis-diff-{test}-{port}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        if let Some(aof) = aof {
            std::fs::write(dir.join("appendonly.aof"), aof).unwrap();
        }
        let appendonly = if aof.is_some() { "yes" } else { "no" };
        let child = Command::new(binary)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", appendonly])
            .arg("--dir")
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        let server = RealRedis { child, dir, port, _turn: turn };
        for _ in 0..100 {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return server;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("redis-server did not listen on port {port} within 5 s");
    }

    fn connect(&self) -> RespClient {
        RespClient::connect(self.port)
    }
}

/// Runs `script` (one command per line, arguments split on blanks) on both servers and
/// fails at the first reply that differs, naming the command and both replies.
fn differential(test: &str, script: &str) {
    let real = RealRedis::start(test);
    let mut client = real.connect();
    let mut model = Db::new(RedisConfig::default());
    let mut compared = 0;
    for line in script.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
        let argv: Vec<&str> = line.split_whitespace().collect();
        let real_reply = client.call(&argv);
        let command = obsim::parts::redis::db::command(&argv);
        let model_reply = model.execute(&command);
        let (real_bytes, model_bytes) = (real_reply.to_bytes(), model_reply.to_bytes());
        assert_eq!(
            String::from_utf8_lossy(&model_bytes),
            String::from_utf8_lossy(&real_bytes),
            "`{line}`: the model (left) answers differently from redis-server (right)"
        );
        compared += 1;
    }
    assert!(compared > 5, "the script ran");
}

#[test]
fn lists_match_real_redis() {
    differential(
        "lists",
        "
        RPUSH q a b c d e a b
        LPUSH q z y
        LRANGE q 0 -1
        LRANGE q -3 -1
        LRANGE q 5 2
        LRANGE q -100 100
        LRANGE q 0 x
        LRANGE missing 0 -1
        LINDEX q 0
        LINDEX q -1
        LINDEX q 99
        LINDEX q x
        LINDEX missing x
        LLEN q
        LLEN missing
        LREM q 1 a
        LREM q -1 b
        LREM q 0 nope
        LREM q 0 c
        LREM q x a
        LREM missing 0 a
        LRANGE q 0 -1
        LMOVE q processing LEFT RIGHT
        LMOVE q processing RIGHT LEFT
        LMOVE q q LEFT RIGHT
        LMOVE q processing MIDDLE LEFT
        LMOVE missing processing LEFT LEFT
        LRANGE processing 0 -1
        BLMOVE q processing LEFT LEFT 0.5
        BLMOVE q processing LEFT LEFT x
        BLMOVE q processing LEFT LEFT -1
        LPOP q
        RPOP q 2
        LPOP q 0
        LPOP q -1
        LPOP q 1 2
        LRANGE q 0 -1
        LPOP processing 100
        EXISTS processing
        LPOP processing
        LPOP processing 3
        RPOP missing
        MULTI
        RPUSH t 1
        BLMOVE empty t LEFT LEFT 0
        LRANGE t 0 -1
        EXEC
        DEL q t missing
        DBSIZE
        ",
    );
}

#[test]
fn hashes_match_real_redis() {
    differential(
        "hashes",
        "
        HSET job:1 status queued traceparent 00-abc-def-01 attempts 0
        HSET job:1 status running
        HMSET job:1 machine comfyui-1 worker comfyui-1-worker-0
        HGET job:1 status
        HGET job:1 nope
        HGET missing f
        HGETALL job:1
        HGETALL missing
        HINCRBY job:1 attempts 1
        HINCRBY job:1 attempts -5
        HINCRBY job:1 status 1
        HINCRBY job:1 attempts x
        HINCRBY job:1 big 9223372036854775807
        HINCRBY job:1 big 1
        HINCRBY newhash f 3
        HLEN job:1
        HLEN missing
        HEXISTS job:1 status
        HEXISTS job:1 nope
        HDEL job:1 status nope
        HDEL missing f
        HGETALL job:1
        HSET job:1 odd
        HMSET job:1 a 1 b
        HSET job:1
        HDEL newhash f
        EXISTS newhash
        HSETNX job:1 claimed_by comfyui-1-worker-0
        HSETNX job:1 claimed_by comfyui-2-worker-1
        HGET job:1 claimed_by
        HSETNX fresh f v
        HGETALL fresh
        HSETNX job:1 only-two
        RPUSH alist x
        HSETNX alist f v
        TYPE job:1
        TYPE newhash
        ",
    );
}

#[test]
fn errors_match_real_redis() {
    differential(
        "errors",
        "
        RPUSH list a
        HSET hash f v
        LPUSH hash x
        HSET list f v
        LRANGE hash 0 -1
        LMOVE list hash LEFT LEFT
        LRANGE list 0 -1
        LPUSH
        RPUSH x
        LLEN
        HGET h
        PING a b
        ECHO
        FOOBAR a b
        foobar
        CLIENT SETINFO lib-name redis-rs
        CLIENT
        CONFIG
        CONFIG GET
        CONFIG NOPE x
        SELECT x
        SELECT 99
        SELECT 1
        DBSIZE
        SELECT 0
        DBSIZE
        AUTH secret
        AUTH default anything
        AUTH a b c
        PING
        PING hello
        ECHO hi
        TYPE list
        TYPE nothing
        EXISTS list hash nothing list
        MULTI
        MULTI
        LPUSH list b
        EXEC
        MULTI
        LPUSH list
        LPUSH list c
        EXEC
        EXEC
        DISCARD
        MULTI
        LPUSH list d
        DISCARD
        LRANGE list 0 -1
        FLUSHALL BOGUS
        FLUSHALL
        DBSIZE
        ",
    );
}

#[test]
fn oom_matches_real_redis() {
    differential(
        "oom",
        "
        RPUSH q before
        HSET h f 1
        CONFIG SET maxmemory 1
        RPUSH q refused
        LPUSH q refused
        LMOVE q other LEFT LEFT
        HSET h f 2
        HINCRBY h f 1
        LLEN q
        LRANGE q 0 -1
        LREM q 0 nothing
        HDEL h f
        MULTI
        LLEN q
        EXEC
        LPOP q
        DEL q
        CONFIG SET maxmemory 0
        RPUSH q after
        LRANGE q 0 -1
        ",
    );
}

/// The model's AOF is real Redis's format: a real `redis-server` 7.0 started on it (as an
/// AOF from before 7.0's multi-part layout, which it upgrades) holds the same dataset —
/// lists, hashes, a transaction, a second database.
#[test]
fn the_models_aof_loads_into_real_redis_with_the_same_dataset() {
    use obsim::parts::redis::Persistence;
    use obsim::parts::redis::aof::{AOF_PATH, Aof};
    use obsim::world::Disk;

    let mut model = Db::new(RedisConfig::default());
    let disk = Disk::new(std::sync::Arc::from("railway-redis"), 1 << 30);
    let mut aof = Aof::open(disk.clone(), Persistence::AofAlways);
    let script = [
        "RPUSH jobs job-1 job-2 job-3",
        "BLMOVE jobs jobs:processing LEFT RIGHT 0",
        "LMOVE jobs jobs:processing LEFT RIGHT",
        "LREM jobs:processing 1 job-1",
        "HSET job:2 status running attempts 1",
        "HINCRBY job:2 attempts 1",
        "MULTI",
        "SELECT 3",
        "RPUSH elsewhere x",
        "EXEC",
        "SELECT 0",
    ];
    let mut session = model.new_session();
    for line in script {
        let argv: Vec<&str> = line.split_whitespace().collect();
        let command = obsim::parts::redis::db::command(&argv);
        model.execute_for(&mut session, &command);
        aof.append(&model.take_effects().propagate).unwrap();
    }
    let bytes = disk.read(AOF_PATH).expect("the AOF was written");
    // The golden file pins what the model writes (regenerate with OBSIM_UPDATE_FIXTURES=1).
    let golden = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/redis/appendonly.aof");
    if std::env::var_os("OBSIM_UPDATE_FIXTURES").is_some() {
        std::fs::create_dir_all(golden.parent().unwrap()).unwrap();
        std::fs::write(&golden, &bytes).unwrap();
    }
    let expected = std::fs::read(&golden).unwrap_or_else(|error| panic!("{}: {error}", golden.display()));
    assert_eq!(
        String::from_utf8_lossy(&bytes),
        String::from_utf8_lossy(&expected),
        "the AOF differs from {}",
        golden.display()
    );
    let real = RealRedis::start_with("aof", Some(&bytes));
    let mut client = real.connect();
    let reads = [
        "DBSIZE",
        "LRANGE jobs 0 -1",
        "LRANGE jobs:processing 0 -1",
        "HGETALL job:2",
        "SELECT 3",
        "LRANGE elsewhere 0 -1",
    ];
    for read in reads {
        let argv: Vec<&str> = read.split_whitespace().collect();
        let real_reply = client.call(&argv);
        let command = obsim::parts::redis::db::command(&argv);
        let model_reply = match model.execute_for(&mut session, &command) {
            obsim::parts::redis::Outcome::Reply(reply) => reply,
            blocked => panic!("{read} blocked: {blocked:?}"),
        };
        assert_eq!(
            String::from_utf8_lossy(&model_reply.to_bytes()),
            String::from_utf8_lossy(&real_reply.to_bytes()),
            "`{read}` after loading the model's AOF: the model (left) and redis-server (right) differ"
        );
    }
}
