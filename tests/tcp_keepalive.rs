//! Keepalive finds the peer that died silently (FIDELITY.md "Network / TCP"): an idle
//! connection whose peer lost its power stays half-open for ever unless its end enabled
//! `SO_KEEPALIVE`; then it fails after the idle time and the unanswered probes, and a probe
//! that meets the peer's new kernel is reset. Redis enables it on every client socket
//! (`tcp-keepalive 300`), so a client blocked in BLMOVE on a machine that lost power is
//! dropped after ten minutes instead of being handed the next job.

use std::io::ErrorKind;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, RedisConnectionInfo};

use obsim::ledger::Ledger;
use obsim::parts::PartCtx;
use obsim::parts::redis::RedisConfig;
use obsim::vocab::{hosts, ports};
use obsim::world::{Keepalive, TcpListener, TcpStream, World, WorldBuilder, true_elapsed_now};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const PORT: u16 = 7200;

fn secs(value: u64) -> Duration {
    Duration::from_secs(value)
}

/// Redis's default: idle 300 s, probes every 100 s, 3 of them.
fn redis_default() -> Keepalive {
    Keepalive::new(secs(300), secs(100), 3)
}

/// How the server's read of the first connection ended (`None` kind for EOF), in true ms.
type ServerEnd = Arc<Mutex<Option<(Option<ErrorKind>, u128)>>>;

/// A server that turns keepalive on (or not) and reads the first connection until it ends.
async fn server(keepalive: Option<Keepalive>, end: ServerEnd) -> turmoil::Result {
    let listener = TcpListener::bind(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), PORT)).await?;
    let (mut stream, _) = listener.accept().await?;
    if let Some(keepalive) = keepalive {
        stream.set_keepalive(keepalive);
    }
    let mut buffer = vec![0u8; 256];
    let ended = loop {
        match stream.read(&mut buffer).await {
            Ok(0) => break None,
            Ok(_) => {}
            Err(error) => break Some(error.kind()),
        }
    };
    *end.lock().unwrap() = Some((ended, true_elapsed_now().as_millis()));
    std::future::pending::<()>().await;
    Ok(())
}

/// A client that writes one record at start and then stays idle (its first incarnation
/// only: once restarted it does nothing).
async fn client(incarnation: u32) -> turmoil::Result {
    if incarnation > 0 {
        std::future::pending::<()>().await;
    }
    let mut stream = TcpStream::connect(("server", PORT)).await?;
    stream.write_all(&[1u8; 100]).await?;
    std::future::pending::<()>().await;
    Ok(())
}

/// Runs to `run_secs` with the client's power cut at 10 s and, with `back_at`, restored
/// then; how the server's read ended.
fn server_end_after(keepalive: Option<Keepalive>, power_off: bool, back_at: Option<u64>, run_secs: u64) -> ServerEnd {
    let end: ServerEnd = Arc::default();
    let mut world = WorldBuilder::new(9).duration(secs(run_secs + 1)).build();
    let server_end = Arc::clone(&end);
    world.host("server", move |_| server(keepalive, Arc::clone(&server_end)));
    world.host("client", |ctx| client(ctx.incarnation()));
    world.run_for(secs(10)).unwrap();
    if power_off {
        world.power_loss("client");
    }
    if let Some(back_at) = back_at {
        world.run_for(secs(back_at)).unwrap();
        world.restart("client");
    }
    world.run_for(secs(run_secs)).unwrap();
    end
}

#[test]
fn an_idle_connection_to_a_powered_off_peer_fails_after_the_keepalive_probes() {
    let end = server_end_after(Some(redis_default()), true, None, 700);
    let (kind, at_ms) = end.lock().unwrap().expect("keepalive ended the half-open connection");
    assert_eq!(kind, Some(ErrorKind::TimedOut));
    // Last segment in at ~0 s; probes at 300, 400, 500 s go unanswered; fails at 600 s.
    assert!((600_000..=601_000).contains(&at_ms), "failed at {at_ms} ms, expected 600 s");

    let without = server_end_after(None, true, None, 700);
    assert_eq!(*without.lock().unwrap(), None, "without keepalive the idle end stays half-open");
}

#[test]
fn an_idle_connection_to_a_live_peer_stays_open_through_the_probes() {
    let end = server_end_after(Some(redis_default()), false, None, 2_000);
    assert_eq!(*end.lock().unwrap(), None, "every probe is answered");
}

#[test]
fn a_keepalive_probe_that_meets_the_peers_new_kernel_is_reset() {
    let end = server_end_after(Some(redis_default()), true, Some(100), 400);
    let (kind, at_ms) = end.lock().unwrap().expect("the first probe after the reboot is reset");
    assert_eq!(kind, Some(ErrorKind::ConnectionReset));
    assert!((300_000..=301_000).contains(&at_ms), "reset at {at_ms} ms, expected the first probe at 300 s");
}

/// Connects the real `redis` client over obsim's TCP (a powered-off machine's socket
/// dies silently, as a kernel's does).
async fn connect() -> Result<MultiplexedConnection, Box<dyn std::error::Error>> {
    let stream = TcpStream::connect((hosts::REDIS, ports::REDIS)).await?;
    let config = AsyncConnectionConfig::new().set_response_timeout(None);
    let (connection, driver) =
        MultiplexedConnection::new_with_config(&RedisConnectionInfo::default(), stream, config).await?;
    tokio::spawn(driver);
    Ok(connection)
}

/// Lengths of `jobs` and `jobs:processing` seen at 710 s, after a machine blocked in
/// BLMOVE lost its power at 10 s and the API pushed one job at 700 s.
fn queue_after_a_dead_blocked_worker(config: RedisConfig) -> (i64, i64) {
    let ledger = Ledger::new();
    let mut world: World<'static> = WorldBuilder::new(4).duration(secs(720)).build();
    world.host(hosts::REDIS, move |host| {
        obsim::parts::redis::run(PartCtx::new(host, ledger.clone()), config.clone(), |_| Vec::new())
    });
    world.host("machine-a", |_| async move {
        let mut connection = connect().await?;
        let _: Option<String> = redis::cmd("BLMOVE")
            .arg(&["jobs", "jobs:processing", "LEFT", "RIGHT", "0"])
            .query_async(&mut connection)
            .await?;
        Ok(())
    });
    let lengths = Arc::new(Mutex::new((0, 0)));
    let seen = Arc::clone(&lengths);
    world.host("api", move |_| {
        let seen = Arc::clone(&seen);
        async move {
            tokio::time::sleep(secs(700)).await;
            let mut connection = connect().await?;
            let _: i64 = redis::cmd("RPUSH").arg(&["jobs", "job-1"]).query_async(&mut connection).await?;
            tokio::time::sleep(secs(10)).await;
            let jobs: i64 = redis::cmd("LLEN").arg("jobs").query_async(&mut connection).await?;
            let processing: i64 = redis::cmd("LLEN").arg("jobs:processing").query_async(&mut connection).await?;
            *seen.lock().unwrap() = (jobs, processing);
            Ok(())
        }
    });
    world.run_for(secs(10)).unwrap();
    world.power_loss("machine-a");
    world.run_for(secs(715)).unwrap();
    *lengths.lock().unwrap()
}

#[test]
fn redis_drops_a_blocked_client_whose_machine_lost_power_before_it_is_handed_a_job() {
    assert_eq!(RedisConfig::default().client_keepalive(), Some(redis_default()), "Redis 7.0's tcp-keepalive 300");
    let with_keepalive = queue_after_a_dead_blocked_worker(RedisConfig::default());
    assert_eq!(with_keepalive, (1, 0), "the dead client was dropped at 600 s: the job waits in `jobs`");

    let without = queue_after_a_dead_blocked_worker(RedisConfig { tcp_keepalive_secs: 0, ..RedisConfig::default() });
    assert_eq!(without, (0, 1), "tcp-keepalive 0: the half-open client is handed the job, stranded in processing");
}
