//! The determinism probe: a small world that exercises everything a run depends on
//! (turmoil's network latency, TCP, per-host random streams, skewed clocks, the event log)
//! and nothing of the pipeline.
//!
//! Why: before any part exists the world itself must be proven deterministic, and later it
//! is the floor against which pipeline runs are measured (`obsim probe`). A hub host echoes
//! what node hosts send; each node sends at seeded random intervals with a seeded clock
//! skew and records every round trip stamped with its own clock, so any nondeterminism in
//! scheduling, latency, randomness or clocks changes the hash.

use std::time::Duration;

use rand::Rng;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use turmoil::net::{TcpListener, TcpStream};

use super::{EventLog, HostCtx, RunOutcome, WorldBuilder, WorldError};
use crate::vocab::EventKind;

/// The port the probe's hub listens on.
const HUB_PORT: u16 = 9000;

/// Upper bound on messages one node sends, whatever the duration: every loop has a limit.
const NODE_MESSAGES_LIMIT: u64 = 100_000;

/// What to probe.
#[derive(Clone, Copy, Debug)]
pub struct ProbeConfig {
    /// The seed of the world.
    pub seed: u64,
    /// Node hosts besides the hub.
    pub nodes_count: u32,
    /// True time the probe runs.
    pub duration: Duration,
    /// Largest clock skew drawn per node, either way, in milliseconds.
    pub skew_ms_max: u64,
}

impl Default for ProbeConfig {
    fn default() -> Self {
        ProbeConfig { seed: 1, nodes_count: 4, duration: Duration::from_secs(30), skew_ms_max: 120_000 }
    }
}

/// Runs the probe world and returns its outcome (hash, events, time reached).
pub fn run(config: ProbeConfig) -> Result<RunOutcome, WorldError> {
    run_with_log(config).map(|(outcome, _)| outcome)
}

/// Runs the probe world and returns its outcome and event log.
pub fn run_with_log(config: ProbeConfig) -> Result<(RunOutcome, EventLog), WorldError> {
    assert!(config.nodes_count > 0, "the probe needs at least one node");
    let mut world = WorldBuilder::new(config.seed).duration(config.duration).build();
    world.host("hub", hub);
    let mut skew_rng = world.seed().stream("probe/skew");
    for index in 0..config.nodes_count {
        let name = format!("node-{index}");
        let clock = world.host(&name, node);
        let skew_ms = skew_rng.random_range(0..=2 * config.skew_ms_max) as i64 - config.skew_ms_max as i64;
        clock.set_offset(Duration::ZERO, skew_ms * 1_000_000);
        clock.set_drift_ppm(Duration::ZERO, skew_rng.random_range(-200.0..200.0));
    }
    world.record(EventKind::ProbeStart, format!("{} nodes", config.nodes_count));
    let outcome = world.run_for(config.duration)?;
    Ok((outcome, world.events().clone()))
}

/// The hub: accepts nodes and echoes each 8-byte message after a seeded think time.
async fn hub(ctx: HostCtx) -> turmoil::Result {
    let listener = TcpListener::bind(("0.0.0.0", HUB_PORT)).await?;
    let mut connections_count = 0u64;
    loop {
        let (mut stream, peer) = listener.accept().await?;
        connections_count += 1;
        let mut think_rng = ctx.rng(&format!("think/{connections_count}"));
        let ctx = ctx.clone();
        ctx.record(EventKind::ProbeAccept, format!("{peer}"));
        crate::world::spawn(async move {
            let mut message = [0u8; 8];
            while stream.read_exact(&mut message).await.is_ok() {
                tokio::time::sleep(Duration::from_millis(think_rng.random_range(0..50))).await;
                if stream.write_all(&message).await.is_err() {
                    break;
                }
            }
        });
    }
}

/// A node: connects to the hub and sends numbered messages at seeded intervals, recording
/// each round trip with its own (skewed) clock.
async fn node(ctx: HostCtx) -> turmoil::Result {
    let mut rng = ctx.rng("send");
    let mut stream = TcpStream::connect(("hub", HUB_PORT)).await?;
    for seq in 0..NODE_MESSAGES_LIMIT {
        tokio::time::sleep(Duration::from_millis(rng.random_range(10..1_000))).await;
        let sent_host_nanos = ctx.clock().now_unix_nanos();
        stream.write_all(&seq.to_be_bytes()).await?;
        let mut echo = [0u8; 8];
        stream.read_exact(&mut echo).await?;
        assert_eq!(u64::from_be_bytes(echo), seq, "the hub echoes in order over one TCP stream");
        // Signed: a clock step between the two reads may make the difference negative.
        let round_trip_nanos = i128::from(ctx.clock().now_unix_nanos()) - i128::from(sent_host_nanos);
        ctx.record(EventKind::ProbeEcho, format!("seq {seq} sent {sent_host_nanos} rtt {round_trip_nanos}ns"));
    }
    Ok(())
}
