//! A host is lost in three ways, and each looks different from outside (FIDELITY.md
//! "Hosts"): a SIGKILLed process's kernel closes its connections at once and keeps every
//! write it made; a host without power says nothing (its peers retransmit into silence and
//! are reset only when it is back) and loses what it never synced; a Railway restart sends
//! SIGTERM and gives the software its draining time before the SIGKILL.
//!
//! Each test is a client writing 100-byte records to a server, or a host writing to its
//! disk, with one loss between steps, and asserts what the applications saw and when.

use std::io::ErrorKind;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use obsim::vocab::EventKind;
use obsim::world::{HostLoss, TcpListener, TcpStream, World, WorldBuilder, true_elapsed_now};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const PORT: u16 = 7100;

fn secs(value: u64) -> Duration {
    Duration::from_secs(value)
}

fn now_ms() -> u128 {
    true_elapsed_now().as_millis()
}

/// What the client saw: its first error (kind, true ms), and when its connect returned.
#[derive(Clone, Debug, Default)]
struct ClientSaw {
    error: Option<(ErrorKind, u128)>,
    connected: Option<(Result<(), ErrorKind>, u128)>,
}

/// A server that accepts and reads until the connection ends, for ever.
async fn server() -> turmoil::Result {
    let listener = TcpListener::bind(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), PORT)).await?;
    loop {
        let (mut stream, _) = listener.accept().await?;
        drop(obsim::world::spawn(async move {
            let mut buffer = vec![0u8; 4096];
            while matches!(stream.read(&mut buffer).await, Ok(n) if n > 0) {}
        }));
    }
}

/// A client that connects at `connect_at` and writes a record every 100 ms until an error.
async fn client(saw: Arc<Mutex<ClientSaw>>, connect_at: Duration) -> turmoil::Result {
    tokio::time::sleep(connect_at).await;
    let connected = TcpStream::connect(("server", PORT)).await;
    saw.lock().unwrap().connected = Some((connected.as_ref().map(|_| ()).map_err(|e| e.kind()), now_ms()));
    let Ok(mut stream) = connected else { return Ok(()) };
    for _ in 0..100_000 {
        if let Err(error) = stream.write_all(&[7u8; 100]).await {
            saw.lock().unwrap().error = Some((error.kind(), now_ms()));
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// A world with the server and a client connecting at `connect_at`.
fn world_with(connect_at: Duration, run_secs: u64) -> (World<'static>, Arc<Mutex<ClientSaw>>) {
    let mut world = WorldBuilder::new(5).duration(secs(run_secs)).build();
    world.host("server", |_ctx| server());
    let saw = Arc::new(Mutex::new(ClientSaw::default()));
    let client_saw = Arc::clone(&saw);
    world.host("client", move |_ctx| client(Arc::clone(&client_saw), connect_at));
    (world, saw)
}

/// Loses the server at 2 s in `how`, brings it back at 12 s, runs to 40 s.
fn lose_server_while_connected(how: HostLoss) -> ClientSaw {
    let (mut world, saw) = world_with(Duration::ZERO, 41);
    world.run_for(secs(2)).unwrap();
    match how {
        HostLoss::Process => world.kill("server"),
        HostLoss::Power => world.power_loss("server"),
    }
    world.run_for(secs(12)).unwrap();
    world.restart("server");
    world.run_for(secs(40)).unwrap();
    saw.lock().unwrap().clone()
}

#[test]
fn a_killed_server_is_seen_at_once_and_a_powered_off_one_only_when_it_is_back() {
    let killed = lose_server_while_connected(HostLoss::Process);
    let (kind, at_ms) = killed.error.expect("the client sees the killed server");
    assert_eq!(kind, ErrorKind::ConnectionReset, "{killed:?}");
    assert!((2_000..=2_300).contains(&at_ms), "the kernel closed the connection at the kill (2 s): {killed:?}");

    let powered_off = lose_server_while_connected(HostLoss::Power);
    let (kind, at_ms) = powered_off.error.expect("the client is reset once the server is back");
    assert_eq!(kind, ErrorKind::ConnectionReset, "{powered_off:?}");
    assert!(
        (12_000..=14_000).contains(&at_ms),
        "silence while the power is off (writes wait in the send buffer), a reset at the first retransmission \
         after the server is back at 12 s: {powered_off:?}"
    );
}

/// The client connects at 3 s while the server is lost from 1 s to 20 s.
fn connect_while_lost(how: HostLoss) -> ClientSaw {
    let (mut world, saw) = world_with(secs(3), 60);
    world.run_for(secs(1)).unwrap();
    match how {
        HostLoss::Process => world.kill("server"),
        HostLoss::Power => world.power_loss("server"),
    }
    world.run_for(secs(20)).unwrap();
    world.restart("server");
    world.run_for(secs(59)).unwrap();
    saw.lock().unwrap().clone()
}

#[test]
fn a_connect_to_a_killed_server_is_refused_and_to_a_powered_off_one_retries_its_syn() {
    let killed = connect_while_lost(HostLoss::Process);
    let (result, at_ms) = killed.connected.expect("connect returned");
    assert_eq!(result, Err(ErrorKind::ConnectionRefused), "a live kernel answers RST: {killed:?}");
    assert!((3_000..=3_200).contains(&at_ms), "{killed:?}");

    let powered_off = connect_while_lost(HostLoss::Power);
    let (result, at_ms) = powered_off.connected.expect("connect returned");
    assert_eq!(result, Ok(()), "nobody answers, the SYN is retried until the host is back: {powered_off:?}");
    // SYNs at 3, 4, 6, 10, 18, 34 s: the server is back at 20 s, the SYN at 34 s connects.
    assert!((34_000..=34_200).contains(&at_ms), "{powered_off:?}");
}

/// A host that writes `synced` and syncs it, then `unsynced`, to its disk at start; what
/// its disk holds after it is lost `how` and started again.
fn disk_after(how: HostLoss) -> Vec<u8> {
    let mut world = WorldBuilder::new(3).duration(secs(10)).build();
    world.host("writer", |ctx| async move {
        if ctx.incarnation() == 0 {
            ctx.disk().append("log", b"synced;").unwrap();
            ctx.disk().sync("log");
            ctx.disk().append("log", b"unsynced;").unwrap();
        }
        std::future::pending::<()>().await;
        Ok(())
    });
    world.run_for(secs(1)).unwrap();
    match how {
        HostLoss::Process => world.kill("writer"),
        HostLoss::Power => world.power_loss("writer"),
    }
    world.run_for(secs(2)).unwrap();
    world.restart("writer");
    world.run_for(secs(3)).unwrap();
    world.disk("writer").unwrap().read("log").unwrap_or_default()
}

#[test]
fn a_kill_keeps_every_write_and_a_power_loss_only_the_synced_ones() {
    assert_eq!(disk_after(HostLoss::Process), b"synced;unsynced;", "the page cache outlives the process");
    assert_eq!(disk_after(HostLoss::Power), b"synced;", "fsync is what survives the power");
}

/// A host whose software, on SIGTERM, records `shutdown.begin`, works `shutdown_secs`, then
/// records `shutdown.done` and exits. Terminated at 1 s with `draining`; the events of its
/// shutdown and of the world, as (kind, detail, true ms).
fn terminate(draining: Duration, shutdown_secs: u64) -> Vec<(EventKind, String, u128)> {
    let mut world = WorldBuilder::new(9).duration(secs(30)).build();
    world.host("railway-aggregator", move |ctx| async move {
        ctx.sigterm().received().await;
        ctx.record(EventKind::Test, "shutdown.begin".into());
        tokio::time::sleep(secs(shutdown_secs)).await;
        ctx.record(EventKind::Test, "shutdown.done".into());
        Ok(())
    });
    world.run_for(secs(1)).unwrap();
    world.terminate("railway-aggregator", draining);
    world.run_for(secs(20)).unwrap();
    world
        .events()
        .kept()
        .into_iter()
        .filter(|event| matches!(event.kind, EventKind::Test | EventKind::HostTerminate | EventKind::HostKill))
        .map(|event| (event.kind, event.detail, u128::from(event.true_nanos / 1_000_000)))
        .collect()
}

#[test]
fn sigterm_gives_the_software_its_draining_time_then_sigkill_ends_it() {
    let kinds = |events: &[(EventKind, String, u128)]| -> Vec<(String, u128)> {
        events
            .iter()
            .map(|(kind, detail, ms)| (if *kind == EventKind::Test { detail.clone() } else { kind.to_string() }, *ms))
            .collect()
    };
    // Railway's default: SIGKILL right after SIGTERM; the shutdown never runs.
    let at_once = terminate(Duration::ZERO, 2);
    assert_eq!(
        kinds(&at_once),
        [("host.terminate".to_string(), 1_000), ("host.kill".to_string(), 1_000)],
        "{at_once:?}"
    );
    // 3 s of draining, a 5 s shutdown: begun, cut short by the SIGKILL at 4 s.
    let cut_short = terminate(secs(3), 5);
    let cut_short = kinds(&cut_short);
    assert_eq!(cut_short[0], ("host.terminate".to_string(), 1_000));
    assert!(cut_short.contains(&("shutdown.begin".to_string(), 1_000)), "{cut_short:?}");
    assert!(cut_short.contains(&("host.kill".to_string(), 4_000)), "{cut_short:?}");
    assert!(!cut_short.iter().any(|(what, _)| what == "shutdown.done"), "killed before it finished: {cut_short:?}");
    // 10 s of draining, a 2 s shutdown: done at 3 s, the software exited before the SIGKILL.
    let finished = kinds(&terminate(secs(10), 2));
    assert!(finished.contains(&("shutdown.done".to_string(), 3_000)), "{finished:?}");
}

/// A server whose connections live in spawned tasks and whose root returns on SIGTERM.
async fn server_that_exits_on_sigterm(ctx: obsim::world::HostCtx) -> turmoil::Result {
    let listener = TcpListener::bind(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), PORT)).await?;
    drop(obsim::world::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            drop(obsim::world::spawn(async move {
                let mut buffer = vec![0u8; 4096];
                while matches!(stream.read(&mut buffer).await, Ok(n) if n > 0) {}
            }));
        }
    }));
    ctx.sigterm().received().await;
    Ok(())
}

#[test]
fn a_process_that_exits_on_sigterm_closes_the_connections_its_tasks_held() {
    let mut world = WorldBuilder::new(5).duration(secs(30)).build();
    world.host("server", server_that_exits_on_sigterm);
    let saw = Arc::new(Mutex::new(ClientSaw::default()));
    let client_saw = Arc::clone(&saw);
    world.host("client", move |_ctx| client(Arc::clone(&client_saw), Duration::ZERO));
    world.run_for(secs(2)).unwrap();
    world.terminate("server", secs(20));
    world.run_for(secs(29)).unwrap();
    let saw = saw.lock().unwrap().clone();
    let (kind, at_ms) = saw.error.expect("the exit closed the server's end");
    assert_eq!(kind, ErrorKind::ConnectionReset, "{saw:?}");
    assert!((2_000..=2_300).contains(&at_ms), "at the exit (2 s), not at the SIGKILL (22 s) or never: {saw:?}");
}
