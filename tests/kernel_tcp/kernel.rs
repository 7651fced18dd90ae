//! The kernel side of the differential: a [`Schedule`] run with real sockets, the client and
//! the server each on a thread that has `setns`-ed into its own network namespace.
//!
//! Why threads and not child processes: a thread's network namespace is its own (setns with
//! CLONE_NEWNET is allowed in a multi-threaded process), so one test process holds both
//! applications and the link driver, and every time is read from one clock. The clock is the
//! machine's: this side measures the real kernel, so it cannot run on simulated time.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::netns::{LinkedNamespaces, SERVER_ADDR, Side};
use super::schedule::{Observed, RECORD_BYTES, Schedule, ServerEnd};

/// The server's port (the Forward protocol's; each namespace has its own ports).
const SERVER_PORT: u16 = 24_224;
/// How long one blocking read or accept poll waits before the loop looks at the clock again:
/// the resolution of the server's times.
const POLL_MS: u64 = 10;

/// How long the client keeps its connection after observation ends, so its close (a FIN)
/// never reaches a server still observing.
const HOLD_AFTER_OBSERVING_MS: u64 = 500;

/// Milliseconds since the run started, on the machine's monotonic clock.
#[derive(Clone, Copy)]
struct Clock {
    /// The run's start.
    start: Instant,
}

impl Clock {
    /// A clock starting now.
    fn start() -> Self {
        Clock { start: Instant::now() } // determinism: ok — measures the real kernel
    }

    /// Milliseconds since the start.
    fn ms(self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).expect("a run lasts less than u64 ms")
    }

    /// Sleeps until `at_ms` (returns at once if it has passed).
    fn sleep_until(self, at_ms: u64) {
        let now_ms = self.ms();
        if at_ms > now_ms {
            std::thread::sleep(Duration::from_millis(at_ms - now_ms));
        }
    }
}

/// What the client application saw.
struct ClientSaw {
    /// When connect returned successfully.
    connected_ms: Option<u64>,
    /// Bytes its writes accepted.
    written_bytes: u64,
    /// Its first error and when.
    error: Option<(ErrorKind, u64)>,
}

/// What the server application saw.
struct ServerSaw {
    /// Bytes read.
    delivered_bytes: u64,
    /// How its connection ended.
    end: ServerEnd,
    /// Longest time between two reads that returned data.
    longest_read_gap_ms: u64,
}

/// Runs `schedule` on the kernel: two namespaces, the server and client threads, and this
/// thread cutting and repairing the link. Fails with a clear message if the namespaces
/// cannot be made.
pub fn run_kernel(schedule: &Schedule) -> Result<Observed, String> {
    schedule.validate()?;
    let link = LinkedNamespaces::create(schedule.tag)?;
    let clock = Clock::start();
    std::thread::scope(|scope| {
        let (ready_tx, ready_rx) = mpsc::channel();
        let server = scope.spawn(|| serve(&link, schedule, clock, ready_tx));
        ready_rx.recv().map_err(|_| "the server thread ended before listening".to_owned())??;
        let client = scope.spawn(|| run_client(&link, schedule, clock));
        let driven = drive_link(&link, schedule, clock);
        let client = client.join().map_err(|_| "the client thread panicked".to_owned())??;
        let server = server.join().map_err(|_| "the server thread panicked".to_owned())??;
        driven?;
        Ok(Observed {
            connected_ms: client.connected_ms,
            written_bytes: client.written_bytes,
            delivered_bytes: server.delivered_bytes,
            error: client.error,
            server: server.end,
            longest_read_gap_ms: server.longest_read_gap_ms,
        })
    })
}

/// Cuts the link at `cut_from_ms` and repairs it at `cut_until_ms`.
fn drive_link(link: &LinkedNamespaces, schedule: &Schedule, clock: Clock) -> Result<(), String> {
    clock.sleep_until(schedule.cut_from_ms);
    let cut = link.cut();
    clock.sleep_until(schedule.cut_until_ms);
    let repaired = link.repair();
    cut.and(repaired)
}

/// The client application: connect (with the schedule's timeout), set `TCP_USER_TIMEOUT`,
/// write one record per period until the first error, then hold the connection open until
/// observation ends (closing it would send a FIN the server would report).
fn run_client(link: &LinkedNamespaces, schedule: &Schedule, clock: Clock) -> Result<ClientSaw, String> {
    link.enter(Side::Client)?;
    clock.sleep_until(schedule.connect_at_ms);
    let server = SocketAddr::from((SERVER_ADDR, SERVER_PORT));
    let mut stream = match TcpStream::connect_timeout(&server, Duration::from_millis(schedule.connect_timeout_ms)) {
        Ok(stream) => stream,
        Err(error) => {
            return Ok(ClientSaw { connected_ms: None, written_bytes: 0, error: Some((error.kind(), clock.ms())) });
        }
    };
    let connected_ms = Some(clock.ms());
    rustix::net::sockopt::set_tcp_user_timeout(&stream, schedule.user_timeout_ms)
        .map_err(|error| format!("set TCP_USER_TIMEOUT: {error}"))?;
    let record = [b'r'; RECORD_BYTES];
    let (mut written_bytes, mut error) = (0, None);
    for index in 0..schedule.records() {
        clock.sleep_until(schedule.due_ms(index));
        match stream.write_all(&record) {
            Ok(()) => written_bytes += RECORD_BYTES as u64,
            Err(failure) => {
                error = Some((failure.kind(), clock.ms()));
                break;
            }
        }
    }
    clock.sleep_until(schedule.observe_until_ms + HOLD_AFTER_OBSERVING_MS);
    Ok(ClientSaw { connected_ms, written_bytes, error })
}

/// The server application: listen (telling `ready` once it does), accept one connection and
/// read it until observation ends, it ends, or the schedule makes the server forget it.
fn serve(
    link: &LinkedNamespaces,
    schedule: &Schedule,
    clock: Clock,
    ready: mpsc::Sender<Result<(), String>>,
) -> Result<ServerSaw, String> {
    let listener = link
        .enter(Side::Server)
        .and_then(|()| TcpListener::bind((SERVER_ADDR, SERVER_PORT)).map_err(|error| format!("bind: {error}")))
        .and_then(|listener| {
            listener.set_nonblocking(true).map_err(|error| format!("listener: {error}"))?;
            Ok(listener)
        });
    let outcome = listener.as_ref().map(|_| ()).map_err(Clone::clone);
    ready.send(outcome).map_err(|_| "the test thread stopped waiting".to_owned())?;
    let listener = listener?;
    let Some(stream) = accept_until(&listener, schedule.observe_until_ms, clock)? else {
        clock.sleep_until(schedule.observe_until_ms);
        return Ok(ServerSaw { delivered_bytes: 0, end: ServerEnd::NeverAccepted, longest_read_gap_ms: 0 });
    };
    let saw = read_until(stream, schedule, clock)?;
    // The listener stays open until observation ends: a restarted server listens again.
    clock.sleep_until(schedule.observe_until_ms);
    drop(listener);
    Ok(saw)
}

/// Polls `listener` for one connection until `until_ms`.
fn accept_until(listener: &TcpListener, until_ms: u64, clock: Clock) -> Result<Option<TcpStream>, String> {
    while clock.ms() < until_ms {
        match listener.accept() {
            Ok((stream, _)) => return Ok(Some(stream)),
            Err(error) if error.kind() == ErrorKind::WouldBlock => std::thread::sleep(Duration::from_millis(POLL_MS)),
            Err(error) => return Err(format!("accept: {error}")),
        }
    }
    Ok(None)
}

/// Reads `stream` until observation ends, EOF, an error, or `server_forgets_at_ms` (then the
/// connection is closed abortively: SO_LINGER 0 sends an RST, which the cut drops).
fn read_until(mut stream: TcpStream, schedule: &Schedule, clock: Clock) -> Result<ServerSaw, String> {
    stream.set_nonblocking(false).map_err(|error| format!("stream: {error}"))?;
    stream.set_read_timeout(Some(Duration::from_millis(POLL_MS))).map_err(|error| format!("stream: {error}"))?;
    let stop_ms = schedule.server_forgets_at_ms.unwrap_or(schedule.observe_until_ms).min(schedule.observe_until_ms);
    let mut saw = ServerSaw { delivered_bytes: 0, end: ServerEnd::Open, longest_read_gap_ms: 0 };
    let mut last_read_ms = None;
    let mut buffer = [0_u8; 4096];
    while clock.ms() < stop_ms {
        match stream.read(&mut buffer) {
            Ok(0) => {
                saw.end = ServerEnd::Eof { at_ms: clock.ms() };
                return Ok(saw);
            }
            Ok(read) => {
                let now_ms = clock.ms();
                if let Some(last_ms) = last_read_ms {
                    saw.longest_read_gap_ms = saw.longest_read_gap_ms.max(now_ms - last_ms);
                }
                last_read_ms = Some(now_ms);
                saw.delivered_bytes += read as u64;
            }
            Err(error) if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(error) => {
                saw.end = ServerEnd::Error { kind: error.kind(), at_ms: clock.ms() };
                return Ok(saw);
            }
        }
    }
    if schedule.server_forgets_at_ms.is_some_and(|at_ms| at_ms < schedule.observe_until_ms) {
        rustix::net::sockopt::set_socket_linger(&stream, Some(Duration::ZERO))
            .map_err(|error| format!("SO_LINGER: {error}"))?;
        drop(stream);
        saw.end = ServerEnd::ClosedByServer;
    }
    Ok(saw)
}
