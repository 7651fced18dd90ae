//! The same [`Schedule`] on a plain turmoil 0.7.2 simulation, cut with `Sim::partition` and
//! repaired with `Sim::repair` as obsim's fault injection does.
//!
//! Why: it documents what obsim's network does without a TCP model of its own. Turmoil drops
//! a segment sent across a partition and never retransmits it, and the receiver waits for the
//! missing sequence number forever: later segments are never delivered, and no error reaches
//! either application. `TCP_USER_TIMEOUT` has no counterpart.

use std::io::ErrorKind;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use turmoil::net::{TcpListener, TcpStream};

use super::schedule::{Observed, RECORD_BYTES, Schedule, ServerEnd};

/// The server's port.
const SERVER_PORT: u16 = 24_224;

/// How long the client keeps its connection after observation ends, so its close (a FIN)
/// never reaches a server still observing.
const HOLD_AFTER_OBSERVING_MS: u64 = 500;

/// Simulated milliseconds since the simulation started.
fn now_ms() -> u64 {
    let elapsed = turmoil::sim_elapsed().expect("called inside the simulation");
    u64::try_from(elapsed.as_millis()).expect("a run lasts less than u64 ms")
}

/// Sleeps (simulated time) until `at_ms`.
async fn sleep_until(at_ms: u64) {
    let now_ms = now_ms();
    if at_ms > now_ms {
        tokio::time::sleep(Duration::from_millis(at_ms - now_ms)).await;
    }
}

/// Runs `schedule` on turmoil with 1 ms ticks, a fixed 1 ms latency (a veth pair's is
/// microseconds) and obsim's TCP capacity (64 KiB).
pub fn run_turmoil(schedule: &Schedule) -> Result<Observed, String> {
    schedule.validate()?;
    let observed = Arc::new(Mutex::new(Observed {
        connected_ms: None,
        written_bytes: 0,
        delivered_bytes: 0,
        error: None,
        server: ServerEnd::NeverAccepted,
        longest_read_gap_ms: 0,
    }));
    let mut sim = turmoil::Builder::new()
        .simulation_duration(Duration::from_millis(schedule.observe_until_ms + 1_000))
        .tick_duration(Duration::from_millis(1))
        .min_message_latency(Duration::from_millis(1))
        .max_message_latency(Duration::from_millis(1))
        .tcp_capacity(65_536)
        .rng_seed(1)
        .build();
    let (server_view, client_view, plan) = (Arc::clone(&observed), Arc::clone(&observed), *schedule);
    sim.host("server", move || serve(plan, Arc::clone(&server_view)));
    sim.client("client", async move {
        run_client(plan, client_view).await;
        Ok(())
    });
    let (mut cut, mut repaired) = (false, false);
    loop {
        let elapsed_ms = u64::try_from(sim.elapsed().as_millis()).expect("short run");
        if !cut && elapsed_ms >= schedule.cut_from_ms {
            sim.partition("client", "server");
            cut = true;
        }
        if !repaired && elapsed_ms >= schedule.cut_until_ms {
            sim.repair("client", "server");
            repaired = true;
        }
        if sim.step().map_err(|error| format!("turmoil: {error}"))? {
            break;
        }
    }
    let observed = *observed.lock().expect("no host panicked");
    Ok(observed)
}

/// The client application, as in the kernel run (no `TCP_USER_TIMEOUT`: turmoil has none).
async fn run_client(schedule: Schedule, observed: Arc<Mutex<Observed>>) {
    sleep_until(schedule.connect_at_ms).await;
    let connect = TcpStream::connect(("server", SERVER_PORT));
    let connected = tokio::time::timeout(Duration::from_millis(schedule.connect_timeout_ms), connect).await;
    let mut stream = match connected.unwrap_or_else(|_| Err(ErrorKind::TimedOut.into())) {
        Ok(stream) => stream,
        Err(error) => {
            observed.lock().expect("lock").error = Some((error.kind(), now_ms()));
            return;
        }
    };
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
    sleep_until(schedule.observe_until_ms + HOLD_AFTER_OBSERVING_MS).await;
}

/// The server application, as in the kernel run; the simulation ends when the client does.
async fn serve(schedule: Schedule, observed: Arc<Mutex<Observed>>) -> turmoil::Result {
    let listener = TcpListener::bind(("0.0.0.0", SERVER_PORT)).await?;
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
                return Ok(());
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
                return Ok(());
            }
        }
    }
    if schedule.server_forgets_at_ms.is_some_and(|at_ms| at_ms < schedule.observe_until_ms) {
        drop(stream);
        observed.lock().expect("lock").server = ServerEnd::ClosedByServer;
    }
    std::future::pending().await
}
