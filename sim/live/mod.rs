//! Live mode, `obsim serve <part>`: the simulation's part code (`crate::parts`) on the
//! machine's sockets and clock, so real clients (Fluent Bit, fluent-logger, OTel SDKs,
//! redis-cli) can talk to it.
//!
//! Why the same code: a part is written against `world::TcpStream`/`TcpListener`, its
//! host's `Clock` and `world::spawn`; `world::net::live` switches those to `tokio::net` and
//! real time while a [`LiveNet`] is installed on the thread. This module is that runtime:
//! a tokio current-thread runtime with a `LocalSet` (as turmoil runs a host's software), one
//! live host per part (named after the part), the listeners bound before the parts start,
//! Ctrl-C / SIGTERM turned into each host's SIGTERM, and a summary of what was stored
//! (ARCHITECTURE.md §14). Nothing in the simulation uses this module.
//!
//! The stdout contract (tests and the interop helper parse it; keep it stable):
//! `obsim serve: <part> <protocol> listening on <ip:port>` per listener, then
//! `obsim serve: ready`, and on stop `obsim serve: stopped; stored ...`.

pub mod cli;
mod plan;

pub use cli::ServeArgs;
pub use plan::{HostPlan, PartPlan, Plan, PlannedListener};

use std::future::Future;
use std::io::Write;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::{JoinHandle, LocalSet};

use crate::ledger::Ledger;
use crate::parts::dash0::{Dash0Control, Dash0Store};
use crate::parts::log_chunk::LogChunk;
use crate::parts::{PartCtx, aggregator, dash0, redis, shipper};
use crate::vocab::pipeline::Peers;
use crate::vocab::{EventKind, Part};
use crate::world::net::LiveNet;
use crate::world::net::live::with_live;
use crate::world::{EVENTS_KEPT_LIMIT_DEFAULT, EventLog, HostCtx, Seed};

/// How long the parts may take to take their bound sockets before start-up is declared
/// failed (they do it in their first poll; a part that fails first says why).
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// How often start-up looks whether every part has taken its socket.
const READY_POLL_INTERVAL: Duration = Duration::from_millis(5);

/// A host's software, as the live runtime runs it.
type Software = Pin<Box<dyn Future<Output = Result<(), String>>>>;

/// Runs `obsim serve` to the end: prints the stdout contract to `out`, returns the summary
/// line's text on a clean stop, or what failed (a bad flag or config, a taken port, a part
/// that stopped on its own).
pub fn serve(args: &ServeArgs, out: &mut dyn Write) -> Result<(), String> {
    let plan = Plan::from_args(args)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|error| format!("obsim serve: starting the runtime: {error}"))?;
    let live = Arc::new(LiveNet::new());
    let local = LocalSet::new();
    with_live(Arc::clone(&live), || local.block_on(&runtime, run(plan, live, out)))
}

/// One running live host.
struct RunningHost {
    name: &'static str,
    part: Part,
    sigterm: watch::Sender<bool>,
    task: JoinHandle<Result<(), String>>,
}

/// What the hosts share, read for the summary.
struct Books {
    ledger: Ledger,
    dash0_store: Dash0Store,
    events: EventLog,
}

/// The live run: bind, start, wait for a signal, stop in order, summarise.
async fn run(plan: Plan, live: Arc<LiveNet>, out: &mut dyn Write) -> Result<(), String> {
    for listener in &plan.listeners {
        let bound = live
            .listen(listener.host, listener.port, listener.addr, &listener.names)
            .map_err(|error| format!("obsim serve: {error}"))?;
        say(out, &format!("{} {} listening on {bound}", listener.part, listener.protocol))?;
    }
    for (host, port, addr) in &plan.resolves {
        live.resolve_to(host, *port, *addr);
    }
    let books = Books {
        ledger: Ledger::live(),
        dash0_store: Dash0Store::new(),
        events: EventLog::new(EVENTS_KEPT_LIMIT_DEFAULT),
    };
    let dash0_control = plan.dash0_control()?;
    let (epoch_unix_nanos, seed) = machine_start();
    let mut hosts = Vec::new();
    for host in &plan.hosts {
        let (ctx, sigterm) = HostCtx::live(host.name, Seed(seed), epoch_unix_nanos, books.events.clone());
        let ctx = PartCtx { host: ctx, ledger: books.ledger.clone(), peers: Arc::new(Peers::of_pipeline()) };
        let software = software(host, ctx, &books, &dash0_control);
        let task = tokio::task::spawn_local(crate::world::net::scoped(Some(Arc::from(host.name)), software));
        hosts.push(RunningHost { name: host.name, part: host.part(), sigterm, task });
    }
    wait_ready(&live, &mut hosts).await?;
    if let Some(fail_for) = plan.dash0_fail_for() {
        let control = dash0_control.clone();
        drop(tokio::task::spawn_local(async move {
            tokio::time::sleep(fail_for).await;
            // Clearing a script never breaks its rules.
            let _ = control.set_errors(None);
        }));
    }
    let mut signals = StopSignals::register()?;
    say(out, "ready")?;
    let ended = wait_stop(&mut signals, &mut hosts).await;
    stop(hosts, plan.grace).await;
    if let Some(path) = &plan.events {
        let mut file = std::fs::File::create(path)
            .map_err(|error| format!("obsim serve: writing the event log {}: {error}", path.display()))?;
        books
            .events
            .write_text(&mut file)
            .map_err(|error| format!("obsim serve: writing the event log {}: {error}", path.display()))?;
    }
    if let Some(failure) = ended {
        return Err(failure);
    }
    say(out, &format!("stopped; stored {}", summary(&plan, &books)))
}

/// The machine's Unix time now (the live hosts' clocks start there) and a seed drawn from
/// it (the handshake nonces must not repeat across live runs).
fn machine_start() -> (u64, u64) {
    #[allow(clippy::disallowed_methods)] // determinism: ok, live mode stamps with the machine's time
    let now = std::time::SystemTime::now(); // determinism: ok, live mode stamps with the machine's time
    let nanos = now.duration_since(std::time::UNIX_EPOCH).map_or(0, |since| since.as_nanos());
    let nanos = u64::try_from(nanos).unwrap_or(u64::MAX);
    (nanos, nanos)
}

/// Writes one line of the stdout contract and flushes it.
fn say(out: &mut dyn Write, text: &str) -> Result<(), String> {
    writeln!(out, "obsim serve: {text}")
        .and_then(|()| out.flush())
        .map_err(|error| format!("obsim serve: writing to stdout: {error}"))
}

/// The software of one planned host.
fn software(host: &HostPlan, ctx: PartCtx, books: &Books, dash0_control: &Dash0Control) -> Software {
    let name = host.name;
    let events_ctx = ctx.host.clone();
    let part: Pin<Box<dyn Future<Output = turmoil::Result>>> = match &host.software {
        PartPlan::Redis(config) => Box::pin(redis::run(ctx, config.clone(), LogChunk::record_ids)),
        PartPlan::Aggregator(config) => Box::pin(aggregator::run(ctx, config.clone())),
        PartPlan::Shipper(config) => Box::pin(shipper::run(ctx, config.clone())),
        PartPlan::Dash0(config) => {
            Box::pin(dash0::run(ctx, config.clone(), dash0_control.clone(), books.dash0_store.clone()))
        }
    };
    Box::pin(async move {
        events_ctx.record(EventKind::HostStart, "incarnation 0 (live)".to_string());
        part.await.map_err(|error| format!("obsim serve: {name} stopped: {error}"))
    })
}

/// Waits until every part took its bound socket; fails with the reason of a part that
/// stopped first, or after [`READY_TIMEOUT`].
async fn wait_ready(live: &LiveNet, hosts: &mut [RunningHost]) -> Result<(), String> {
    let taken = async {
        while live.waiting_listeners_count() > 0 {
            if let Some(host) = hosts.iter_mut().find(|host| host.task.is_finished()) {
                return Err(ended_reason(host).await);
            }
            tokio::time::sleep(READY_POLL_INTERVAL).await;
        }
        Ok(())
    };
    tokio::time::timeout(READY_TIMEOUT, taken).await.unwrap_or_else(|_| {
        Err(format!(
            "obsim serve: {} listener(s) not taken by their part within {READY_TIMEOUT:?}",
            live.waiting_listeners_count()
        ))
    })
}

/// Why a host's software ended on its own.
async fn ended_reason(host: &mut RunningHost) -> String {
    match (&mut host.task).await {
        Ok(Err(error)) => error,
        Ok(Ok(())) => format!("obsim serve: {} stopped on its own", host.name),
        Err(error) => format!("obsim serve: {} panicked: {error}", host.name),
    }
}

/// Waits for Ctrl-C or SIGTERM (`None`), or for a part to stop on its own (why).
async fn wait_stop(signals: &mut StopSignals, hosts: &mut [RunningHost]) -> Option<String> {
    let any_ended = async {
        loop {
            if let Some(host) = hosts.iter_mut().find(|host| host.task.is_finished()) {
                return ended_reason(host).await;
            }
            tokio::time::sleep(READY_POLL_INTERVAL * 20).await;
        }
    };
    tokio::select! {
        biased;
        () = signals.received() => None,
        reason = any_ended => Some(reason),
    }
}

/// The process's stop signals, Ctrl-C (SIGINT) and SIGTERM, registered before `ready` is
/// printed (a signal after it must stop the parts, never kill the process outright).
struct StopSignals {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl StopSignals {
    /// Takes over SIGINT and SIGTERM.
    fn register() -> Result<StopSignals, String> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let taken = |kind: SignalKind| signal(kind).map_err(|error| format!("obsim serve: signals: {error}"));
            Ok(StopSignals { interrupt: taken(SignalKind::interrupt())?, terminate: taken(SignalKind::terminate())? })
        }
        #[cfg(not(unix))]
        Ok(StopSignals {})
    }

    /// Resolves at the first of them.
    async fn received(&mut self) {
        #[cfg(unix)]
        tokio::select! {
            biased;
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// Stops the hosts upstream first (the aggregator flushes into Redis before Redis saves
/// and exits): each part that shuts down on SIGTERM gets it and `grace` to finish; the
/// others (the shipper, Dash0: their models ignore SIGTERM) are ended at once, as the
/// SIGKILL after a draining time ends them.
async fn stop(mut hosts: Vec<RunningHost>, grace: Duration) {
    hosts.sort_by_key(|host| stop_rank(host.part));
    for host in hosts {
        if host.task.is_finished() {
            continue;
        }
        if graceful(host.part) {
            host.sigterm.send_replace(true);
            let abort = host.task.abort_handle();
            if tokio::time::timeout(grace, host.task).await.is_err() {
                eprintln!("obsim serve: {} did not stop within {grace:?} of SIGTERM: killed", host.name);
                abort.abort();
            }
        } else {
            host.task.abort();
        }
    }
}

/// The order hosts are stopped in: upstream first.
fn stop_rank(part: Part) -> u8 {
    match part {
        Part::Aggregator => 0,
        Part::Shipper => 1,
        Part::Redis => 2,
        _ => 3,
    }
}

/// Whether the part's model shuts down on SIGTERM (Fluentd's flush, Redis's save).
fn graceful(part: Part) -> bool {
    matches!(part, Part::Aggregator | Part::Redis)
}

/// The summary's counts: log records in Redis's lists (the ledger's custody: values that
/// carry obsim log records), and what Dash0 stored; for the aggregator alone, what is
/// left in its buffer.
fn summary(plan: &Plan, books: &Books) -> String {
    let held = |part: Part| -> u64 {
        books.ledger.occupancy().iter().filter(|(custodian, _)| custodian.part == part).map(|(_, o)| o.held_count).sum()
    };
    let mut pieces = Vec::new();
    let parts: Vec<Part> = plan.hosts.iter().map(HostPlan::part).collect();
    if parts.contains(&Part::Redis) {
        pieces.push(format!("{} records in redis lists", held(Part::Redis)));
    } else if parts.contains(&Part::Aggregator) {
        pieces.push(format!("{} records left in the aggregator's buffer", held(Part::Aggregator)));
    }
    if parts.contains(&Part::Dash0) {
        let counts = books.dash0_store.counts();
        pieces.push(format!(
            "{} logs, {} spans, {} metric points in dash0",
            counts.logs.records_stored, counts.traces.records_stored, counts.metrics.records_stored
        ));
    }
    pieces.join(", ")
}
