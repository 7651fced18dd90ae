//! obsim's network gives connections the kernel's TCP semantics over turmoil (FIDELITY.md
//! "Network / TCP"): a link drop shorter than the retransmission budget is a stall that
//! catches up with nothing lost; a longer one fails the sender with `TimedOut` at the
//! budget and leaves the receiver half-open until it writes and meets a reset; a connect
//! across a dead link retries its SYN on Linux's schedule.
//!
//! Each test is one client writing 100-byte records to one server, with the link cut
//! between steps, and asserts what both applications saw and when.

use std::io::ErrorKind;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use obsim::world::{TcpConfig, TcpListener, TcpStream, WorldBuilder, true_elapsed_now};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const PORT: u16 = 7000;
const RECORD_BYTES: usize = 100;

/// What the two applications saw.
#[derive(Debug, Default, Clone)]
struct Seen {
    /// Bytes the server read.
    delivered_bytes: usize,
    /// Bytes the client's writes accepted.
    written_bytes: usize,
    /// The client's first error and when (true ms).
    client_error: Option<(ErrorKind, u128)>,
    /// How the server's read ended (EOF is `None` kind) and when.
    server_end: Option<(Option<ErrorKind>, u128)>,
    /// True ms at which the server read its last byte.
    last_delivery_ms: u128,
    /// The longest wait between two reads that returned bytes (ms).
    longest_read_gap_ms: u128,
    /// When the client's connect returned, and how.
    connected: Option<(Result<(), ErrorKind>, u128)>,
}

fn now_ms() -> u128 {
    true_elapsed_now().as_millis()
}

/// The schedule of one test.
struct Plan {
    records: usize,
    interval: Duration,
    /// When the client starts connecting.
    connect_at: Duration,
    /// Link cut (from, to) in true time.
    cut: (Duration, Duration),
    /// The server writes one byte at this time (to meet a reset on a forgotten connection).
    server_writes_at: Option<Duration>,
    /// With `Some(rate)`, the cut loses this fraction of segments instead of all of them.
    loss: Option<f64>,
    /// Instead of cutting the link, crash the server at the cut's start and restart it at
    /// its end.
    crash_server: bool,
    /// Instead of cutting the link, stall it (packets held, delivered at the end).
    stall: bool,
    tcp: TcpConfig,
    run_for: Duration,
}

fn run(plan: Plan) -> Seen {
    run_world(plan).0
}

/// Runs `plan`; what the applications saw and the run's event-log hash.
fn run_world(plan: Plan) -> (Seen, obsim::world::EventLogHash) {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let mut builder = WorldBuilder::new(11);
    builder.duration(plan.run_for + Duration::from_secs(1)).tcp(plan.tcp);
    let mut world = builder.build();
    let server_seen = Arc::clone(&seen);
    let server_writes_at = plan.server_writes_at;
    world.host("server", move |_ctx| server(Arc::clone(&server_seen), server_writes_at));
    let client_seen = Arc::clone(&seen);
    let (records, interval, connect_at) = (plan.records, plan.interval, plan.connect_at);
    world.host("client", move |_ctx| client(Arc::clone(&client_seen), records, interval, connect_at));
    let (cut_from, cut_to) = plan.cut;
    world.run_for(cut_from).unwrap();
    let sim_stall = |world: &mut obsim::world::World<'_>, held: bool| {
        world.net().set_held("client", "server", held);
        if held {
            world.sim_hold("client", "server");
        } else {
            world.sim_release("client", "server");
        }
    };
    match (plan.crash_server, plan.loss) {
        _ if plan.stall => sim_stall(&mut world, true),
        (true, _) => world.kill("server"),
        (false, None) => world.partition("client", "server"),
        (false, Some(rate)) => world.net().set_loss("client", "server", rate),
    }
    world.run_for(cut_to).unwrap();
    match (plan.crash_server, plan.loss) {
        _ if plan.stall => sim_stall(&mut world, false),
        (true, _) => world.restart("server"),
        (false, None) => world.repair("client", "server"),
        (false, Some(_)) => world.net().set_loss("client", "server", 0.0),
    }
    let outcome = world.run_for(plan.run_for).unwrap();
    (seen.lock().unwrap().clone(), outcome.hash)
}

/// The server: reads and counts until the connection ends; writes one byte at
/// `writes_at` if given.
async fn server(seen: Arc<Mutex<Seen>>, server_writes_at: Option<Duration>) -> turmoil::Result {
    let listener = TcpListener::bind(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), PORT)).await?;
    let (mut stream, _) = listener.accept().await?;
    let mut buffer = vec![0u8; 4096];
    let mut wrote = false;
    loop {
        let read = match server_writes_at {
            Some(at) if !wrote => {
                let wait = at.saturating_sub(true_elapsed_now());
                match tokio::time::timeout(wait, stream.read(&mut buffer)).await {
                    Ok(read) => read,
                    Err(_) => {
                        wrote = true;
                        let _ = stream.write_all(b"x").await;
                        continue;
                    }
                }
            }
            _ => stream.read(&mut buffer).await,
        };
        let mut seen = seen.lock().unwrap();
        match read {
            Ok(0) => {
                seen.server_end = Some((None, now_ms()));
                break;
            }
            Ok(n) => {
                if seen.delivered_bytes > 0 {
                    seen.longest_read_gap_ms = seen.longest_read_gap_ms.max(now_ms() - seen.last_delivery_ms);
                }
                seen.delivered_bytes += n;
                seen.last_delivery_ms = now_ms();
            }
            Err(error) => {
                seen.server_end = Some((Some(error.kind()), now_ms()));
                break;
            }
        }
    }
    std::future::pending::<()>().await;
    Ok(())
}

/// The client: connects at `connect_at`, then writes `records` records `interval` apart.
async fn client(seen: Arc<Mutex<Seen>>, records: usize, interval: Duration, connect_at: Duration) -> turmoil::Result {
    tokio::time::sleep(connect_at).await;
    let connected = TcpStream::connect(("server", PORT)).await;
    let mut stream = match connected {
        Ok(stream) => {
            seen.lock().unwrap().connected = Some((Ok(()), now_ms()));
            stream
        }
        Err(error) => {
            seen.lock().unwrap().connected = Some((Err(error.kind()), now_ms()));
            std::future::pending::<()>().await;
            unreachable!()
        }
    };
    for _ in 0..records {
        match stream.write_all(&[7u8; RECORD_BYTES]).await {
            Ok(()) => seen.lock().unwrap().written_bytes += RECORD_BYTES,
            Err(error) => {
                seen.lock().unwrap().client_error = Some((error.kind(), now_ms()));
                break;
            }
        }
        tokio::time::sleep(interval).await;
    }
    std::future::pending::<()>().await;
    Ok(())
}

/// The common plan: a record every 100 ms from the start, the link cut from 10 s to 40 s,
/// Linux's defaults, observed for 120 s; each test changes what it is about.
fn plan(records: usize) -> Plan {
    Plan {
        records,
        interval: Duration::from_millis(100),
        connect_at: Duration::ZERO,
        cut: (secs(10), secs(40)),
        server_writes_at: None,
        loss: None,
        crash_server: false,
        stall: false,
        tcp: TcpConfig::default(),
        run_for: secs(120),
    }
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// The case: a 30 s drop with no application ack. turmoil alone lost every byte
/// written during the drop and left the connection dead; real TCP stalls and catches up.
#[test]
fn a_drop_shorter_than_the_budget_is_a_stall_with_nothing_lost() {
    let seen = run(plan(600));
    assert_eq!(seen.client_error, None, "{seen:?}");
    assert_eq!(seen.written_bytes, 600 * RECORD_BYTES, "{seen:?}");
    assert_eq!(seen.delivered_bytes, seen.written_bytes, "every byte written during the drop arrives: {seen:?}");
    assert_eq!(seen.server_end, None, "the server never saw the connection end: {seen:?}");
    assert!(seen.longest_read_gap_ms >= 30_000, "the drop stalled the reader (it was a stall, not a no-op): {seen:?}");
}

/// The bytes held during a drop arrive at the first retransmission after the heal (the
/// RTO doubles from 200 ms: the first byte held at ~10 s is retried at 10 + 25.4 = 35.4 s
/// and 10 + 51 = 61 s), not at the heal itself.
#[test]
fn held_bytes_arrive_at_the_first_retransmission_after_the_heal() {
    let seen = run(plan(150));
    // 150 records end at 15 s: all of them wait for the retry at ~61 s.
    assert_eq!(seen.delivered_bytes, 150 * RECORD_BYTES, "{seen:?}");
    assert!((60_900..=61_300).contains(&seen.last_delivery_ms), "delivered at the 61 s retry: {seen:?}");
}

/// A drop longer than the connection's user timeout fails the sender with `TimedOut` at
/// the timeout, counted from the first unacknowledged byte; the receiver sees nothing.
#[test]
fn a_drop_longer_than_the_user_timeout_fails_the_sender_and_leaves_the_receiver_half_open() {
    let tcp = TcpConfig { user_timeout: secs(5), ..TcpConfig::default() };
    let seen = run(Plan { tcp, run_for: secs(90), ..plan(600) });
    let (kind, at_ms) = seen.client_error.expect("the client's write fails");
    assert_eq!(kind, ErrorKind::TimedOut, "{seen:?}");
    // The first record written into the drop at ~10.0–10.1 s; the budget ends 5 s later.
    // The application learns it at its next write (records are 100 ms apart).
    assert!((15_000..=15_300).contains(&at_ms), "ETIMEDOUT ≈ 15 s: {seen:?}");
    assert!(seen.delivered_bytes <= 101 * RECORD_BYTES, "nothing written into the drop arrives: {seen:?}");
    assert_eq!(seen.server_end, None, "the receiver is half-open: no EOF, no error: {seen:?}");
}

/// The half-open receiver learns of the dead connection when it writes after the heal: the
/// peer's kernel answers with a reset.
#[test]
fn a_half_open_receiver_that_writes_after_the_heal_is_reset() {
    let tcp = TcpConfig { user_timeout: secs(5), ..TcpConfig::default() };
    let seen = run(Plan { server_writes_at: Some(secs(50)), tcp, run_for: secs(90), ..plan(600) });
    let (kind, at_ms) = seen.server_end.expect("the server's connection ends");
    assert_eq!(kind, Some(ErrorKind::ConnectionReset), "{seen:?}");
    assert!((50_000..=50_100).contains(&at_ms), "reset when it writes at 50 s: {seen:?}");
}

/// A connect across a dead link retries its SYN at 1, 2, 4, 8 … s: a heal at 10 s lets the
/// attempt at 15 s (7 + 8 after a start at 0) through.
#[test]
fn a_connect_across_a_drop_succeeds_at_the_next_syn_retry_after_the_heal() {
    let seen = run(Plan { connect_at: secs(1), cut: (Duration::ZERO, secs(10)), run_for: secs(60), ..plan(10) });
    let (result, at_ms) = seen.connected.expect("connect returned");
    assert_eq!(result, Ok(()), "{seen:?}");
    // Started at 1 s: attempts at 1, 2, 4, 8, 16 s; the first after the 10 s heal is 16 s.
    assert!((16_000..=16_100).contains(&at_ms), "connected at the 16 s attempt: {seen:?}");
    assert_eq!(seen.delivered_bytes, 10 * RECORD_BYTES);
}

/// A connect across a link that never heals fails after the SYN retries: 127 s.
#[test]
fn a_connect_across_a_dead_link_fails_after_127_seconds() {
    let seen = run(Plan { connect_at: secs(1), cut: (Duration::ZERO, secs(200)), run_for: secs(210), ..plan(10) });
    let (result, at_ms) = seen.connected.expect("connect returned");
    assert_eq!(result, Err(ErrorKind::TimedOut), "{seen:?}");
    assert!((128_000..=128_100).contains(&at_ms), "fails 127 s after the first SYN at 1 s: {seen:?}");
}

/// Packet loss is not data loss: a lost segment is retransmitted at the next RTO (200 ms,
/// doubling while retries are lost too), so 30 % loss for 20 s delays bytes and loses none.
/// turmoil's own loss process partitioned the link and lost the bytes for good.
#[test]
fn packet_loss_delays_bytes_and_loses_none() {
    let seen = run(Plan { cut: (secs(10), secs(30)), loss: Some(0.3), ..plan(400) });
    assert_eq!(seen.client_error, None, "{seen:?}");
    assert_eq!(seen.delivered_bytes, 400 * RECORD_BYTES, "every byte arrives: {seen:?}");
    // Records come 100 ms apart; a lost segment waits at least one 200 ms RTO, and at 30 %
    // two or three losses in a row (0.6 s, 1.4 s) happen within 20 s.
    assert!(seen.longest_read_gap_ms >= 600, "some bytes waited for retransmissions: {seen:?}");
}

/// The server's software dies (turmoil closes its sockets, as a killed process's kernel
/// does): the client's next write meets a connection the server's kernel no longer knows
/// and fails with `ConnectionReset`. turmoil alone accepted the write and dropped the bytes.
#[test]
fn a_write_to_a_peer_whose_software_died_is_reset() {
    let seen = run(Plan { cut: (secs(10), secs(20)), crash_server: true, run_for: secs(40), ..plan(300) });
    let (kind, at_ms) = seen.client_error.expect("the client's write fails");
    assert_eq!(kind, ErrorKind::ConnectionReset, "{seen:?}");
    assert!((10_000..=10_200).contains(&at_ms), "at its first write after the crash at 10 s: {seen:?}");
}

/// The same plan replays the same kernel behaviour: retransmissions, a timeout, random
/// segment loss and the events they record are part of the run's identity.
#[test]
fn the_same_plan_replays_the_same_tcp_behaviour() {
    let lossy = || Plan { cut: (secs(10), secs(30)), loss: Some(0.3), ..plan(400) };
    let timing_out = || Plan { tcp: TcpConfig { user_timeout: secs(5), ..TcpConfig::default() }, ..plan(600) };
    for make in [&lossy as &dyn Fn() -> Plan, &timing_out] {
        let (first_seen, first_hash) = run_world(make());
        let (second_seen, second_hash) = run_world(make());
        assert_eq!(first_hash, second_hash, "{first_seen:?}");
        assert_eq!(format!("{first_seen:?}"), format!("{second_seen:?}"));
    }
}

/// A stall holds packets instead of dropping them: for the sender it looks like a drop (no
/// acknowledgement, the budget runs), but at its end what the network held arrives at once,
/// so the waiting bytes go at the release (40 s), not at the next RTO (61 s).
#[test]
fn a_stall_delivers_at_its_end_and_times_out_past_the_budget() {
    let seen = run(Plan { stall: true, ..plan(150) });
    assert_eq!((seen.client_error, seen.delivered_bytes), (None, 150 * RECORD_BYTES), "{seen:?}");
    assert!((40_000..=40_300).contains(&seen.last_delivery_ms), "delivered at the release: {seen:?}");
    let tcp = TcpConfig { user_timeout: secs(5), ..TcpConfig::default() };
    let seen = run(Plan { stall: true, tcp, run_for: secs(90), ..plan(600) });
    assert_eq!(seen.client_error.map(|(kind, _)| kind), Some(ErrorKind::TimedOut), "{seen:?}");
}
