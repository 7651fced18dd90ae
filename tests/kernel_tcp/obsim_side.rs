//! The same [`Schedule`] on obsim's network (`obsim::world::net`): a world with a client and
//! a server host, the link cut with `World::partition` and healed with `World::repair`, the
//! client's `TCP_USER_TIMEOUT` set after connect as in the kernel run.
//!
//! Why: obsim's TCP model is held to the kernel's observations by
//! [`super::schedule::expected_obsim_agreement`].

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use obsim::world::{TcpListener, TcpStream, WorldBuilder};

use super::schedule::{Observed, Schedule, ServerEnd};
use super::sim_app::{SERVER_PORT, connect, nothing_observed, read_records, server_forgets, write_records};

/// Runs `schedule` on obsim's network with a 1 ms tick.
pub fn run_obsim(schedule: &Schedule) -> Result<Observed, String> {
    schedule.validate()?;
    let observed = nothing_observed();
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
    if let Some(mut stream) = connect(&schedule, &observed, TcpStream::connect(("server", SERVER_PORT))).await {
        stream.set_user_timeout(Duration::from_millis(u64::from(schedule.user_timeout_ms)));
        write_records(&schedule, &observed, &mut stream).await;
        // The connection stays open (a drop would close it) while observation lasts.
        let _open = stream;
        return std::future::pending().await;
    }
    std::future::pending().await
}

/// The server application, as in the kernel run.
async fn serve(schedule: Schedule, observed: Arc<Mutex<Observed>>) -> turmoil::Result {
    let listener = TcpListener::bind(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), SERVER_PORT)).await?;
    let (mut stream, _) = listener.accept().await?;
    let ended = read_records(&schedule, &observed, &mut stream).await;
    if !ended && server_forgets(&schedule) {
        // An abortive close during the cut: the RST is lost, the state is gone.
        stream.abort();
        observed.lock().expect("lock").server = ServerEnd::ClosedByServer;
        return std::future::pending().await;
    }
    // The connection stays open while observation lasts.
    let _open = stream;
    std::future::pending().await
}
