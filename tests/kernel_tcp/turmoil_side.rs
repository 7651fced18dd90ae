//! The same [`Schedule`] on a plain turmoil 0.7.2 simulation, cut with `Sim::partition` and
//! repaired with `Sim::repair` as obsim's fault injection does.
//!
//! Why: it documents what obsim's network does without a TCP model of its own. Turmoil drops
//! a segment sent across a partition and never retransmits it, and the receiver waits for the
//! missing sequence number forever: later segments are never delivered, and no error reaches
//! either application. `TCP_USER_TIMEOUT` has no counterpart.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use turmoil::net::{TcpListener, TcpStream};

use super::schedule::{Observed, Schedule, ServerEnd};
use super::sim_app::{
    SERVER_PORT, connect, nothing_observed, read_records, server_forgets, sleep_until, write_records,
};

/// How long the client keeps its connection after observation ends, so its close (a FIN)
/// never reaches a server still observing.
const HOLD_AFTER_OBSERVING_MS: u64 = 500;

/// Runs `schedule` on turmoil with 1 ms ticks, a fixed 1 ms latency (a veth pair's is
/// microseconds) and obsim's TCP capacity (64 KiB).
pub fn run_turmoil(schedule: &Schedule) -> Result<Observed, String> {
    schedule.validate()?;
    let observed = nothing_observed();
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
    if let Some(mut stream) = connect(&schedule, &observed, TcpStream::connect(("server", SERVER_PORT))).await {
        write_records(&schedule, &observed, &mut stream).await;
        sleep_until(schedule.observe_until_ms + HOLD_AFTER_OBSERVING_MS).await;
    }
}

/// The server application, as in the kernel run; the simulation ends when the client does.
async fn serve(schedule: Schedule, observed: Arc<Mutex<Observed>>) -> turmoil::Result {
    let listener = TcpListener::bind(("0.0.0.0", SERVER_PORT)).await?;
    let (mut stream, _) = listener.accept().await?;
    if read_records(&schedule, &observed, &mut stream).await {
        return Ok(());
    }
    if server_forgets(&schedule) {
        drop(stream);
        observed.lock().expect("lock").server = ServerEnd::ClosedByServer;
    }
    std::future::pending().await
}
