//! The same [`Schedule`] on obsim's network (`obsim::world::net`): a world with a client and
//! a server host, the link cut with `World::partition` and healed with `World::repair`, the
//! client's `TCP_USER_TIMEOUT` set after connect as in the kernel run.
//!
//! Why: obsim's TCP model is held to the kernel's observations by
//! [`super::schedule::expected_obsim_agreement`].

use std::io::ErrorKind;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use obsim::world::{TcpListener, TcpStream, WorldBuilder, true_elapsed_now};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::schedule::{Observed, RECORD_BYTES, Schedule, ServerEnd};

/// The server's port.
const SERVER_PORT: u16 = 24_224;

/// Simulated milliseconds since the world started.
fn now_ms() -> u64 {
    u64::try_from(true_elapsed_now().as_millis()).expect("a run lasts less than u64 ms")
}

/// Sleeps (simulated time) until `at_ms`.
async fn sleep_until(at_ms: u64) {
    let now_ms = now_ms();
    if at_ms > now_ms {
        tokio::time::sleep(Duration::from_millis(at_ms - now_ms)).await;
    }
}

/// Runs `schedule` on obsim's network with a 1 ms tick.
pub fn run_obsim(schedule: &Schedule) -> Result<Observed, String> {
    schedule.validate()?;
    let observed = Arc::new(Mutex::new(Observed {
        connected_ms: None,
        written_bytes: 0,
        delivered_bytes: 0,
        error: None,
        server: ServerEnd::NeverAccepted,
        longest_read_gap_ms: 0,
    }));
    let mut builder = WorldBuilder::new(1);
    builder.tick(Duration::from_millis(1)).duration(Duration::from_millis(schedule.observe_until_ms + 1_000));
    let mut world = builder.build();
    let (server_view, client_view, plan) = (Arc::clone(&observed), Arc::clone(&observed), *schedule);
    world.host("server", move |_ctx| serve(plan, Arc::clone(&server_view)));
    world.host("client", move |_ctx| run_client(plan, Arc::clone(&client_view)));
    let at = |ms: u64| Duration::from_millis(ms);
    world.run_for(at(schedule.cut_from_ms)).map_err(|error| error.to_string())?;
    world.partition("client", "server");
    world.run_for(at(schedule.cut_until_ms)).map_err(|error| error.to_string())?;
    world.repair("client", "server");
    world.run_for(at(schedule.observe_until_ms)).map_err(|error| error.to_string())?;
    let observed = *observed.lock().expect("no host panicked");
    Ok(observed)
}

/// The client application, as in the kernel run.
async fn run_client(schedule: Schedule, observed: Arc<Mutex<Observed>>) -> turmoil::Result {
    sleep_until(schedule.connect_at_ms).await;
    let connect = TcpStream::connect(("server", SERVER_PORT));
    let connected = tokio::time::timeout(Duration::from_millis(schedule.connect_timeout_ms), connect).await;
    let mut stream = match connected.unwrap_or_else(|_| Err(ErrorKind::TimedOut.into())) {
        Ok(stream) => stream,
        Err(error) => {
            observed.lock().expect("lock").error = Some((error.kind(), now_ms()));
            return std::future::pending().await;
        }
    };
    stream.set_user_timeout(Duration::from_millis(u64::from(schedule.user_timeout_ms)));
    observed.lock().expect("lock").connected_ms = Some(now_ms());
    let record = [b'r'; RECORD_BYTES];
    for index in 0..schedule.records() {
        sleep_until(schedule.due_ms(index)).await;
        if let Err(error) = stream.write_all(&record).await {
            observed.lock().expect("lock").error = Some((error.kind(), now_ms()));
            break;
        }
        observed.lock().expect("lock").written_bytes += RECORD_BYTES as u64;
    }
    std::future::pending().await
}

/// The server application, as in the kernel run.
async fn serve(schedule: Schedule, observed: Arc<Mutex<Observed>>) -> turmoil::Result {
    let listener = TcpListener::bind(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), SERVER_PORT)).await?;
    let (mut stream, _) = listener.accept().await?;
    observed.lock().expect("lock").server = ServerEnd::Open;
    let stop_ms = schedule.server_forgets_at_ms.unwrap_or(schedule.observe_until_ms).min(schedule.observe_until_ms);
    let (mut last_read_ms, mut buffer) = (None, [0_u8; 4096]);
    while now_ms() < stop_ms {
        let wait = Duration::from_millis(stop_ms - now_ms());
        let Ok(read) = tokio::time::timeout(wait, stream.read(&mut buffer)).await else { break };
        let mut seen = observed.lock().expect("lock");
        match read {
            Ok(0) => {
                seen.server = ServerEnd::Eof { at_ms: now_ms() };
                break;
            }
            Ok(read) => {
                if let Some(last_ms) = last_read_ms {
                    seen.longest_read_gap_ms = seen.longest_read_gap_ms.max(now_ms() - last_ms);
                }
                last_read_ms = Some(now_ms());
                seen.delivered_bytes += read as u64;
            }
            Err(error) => {
                seen.server = ServerEnd::Error { kind: error.kind(), at_ms: now_ms() };
                break;
            }
        }
    }
    if matches!(observed.lock().expect("lock").server, ServerEnd::Eof { .. } | ServerEnd::Error { .. }) {
        return std::future::pending().await;
    }
    if schedule.server_forgets_at_ms.is_some_and(|at_ms| at_ms < schedule.observe_until_ms) {
        // An abortive close during the cut: the RST is lost, the state is gone.
        stream.abort();
        observed.lock().expect("lock").server = ServerEnd::ClosedByServer;
    }
    std::future::pending().await
}
