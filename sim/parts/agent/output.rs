//! The output: out_forward's flushes, as Fluent Bit's engine runs them.
//!
//! Why concurrent: Fluent Bit creates a task for every chunk ready at a flush and starts
//! every task at once (`src/flb_engine_dispatch.c` `tasks_start`: out_forward sets neither
//! `FLB_OUTPUT_NO_MULTIPLEX` nor `FLB_OUTPUT_SYNCHRONOUS`); each task's flush is a coroutine
//! dealt round robin to one of the plugin's workers (`src/flb_output_thread.c`
//! `flb_output_thread_pool_flush`, out_forward's `.workers = 2`) and takes a connection of
//! that worker's pool for itself (`flb_upstream_conn_get`), all I/O async. So a backlog is
//! sent all at once, one connection per chunk, not one chunk after another
//! (FIDELITY.md, Agent: workers).
//!
//! The dispatcher ([`run`]) starts a flush task for every due chunk (at most
//! [`FLUSHES_IN_FLIGHT_MAX`]) and, between flushes, closes idle connections. A flush
//! ([`flush`]) sends one chunk and books the outcome in the store.

use std::sync::{Arc, Mutex};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::parts::PartCtx;
use crate::proto::forward::ClientAuth;
use crate::vocab::{EventKind, Part};

use super::Shared;
use super::config::AgentConfig;
use super::forward_client::{ClientTls, ConnectSettings, ForwardConnection, SendError};
use super::store::{Next, Send};
use super::upstream::{NoConnection, Open, Upstream};

/// Flushes in flight at once, at most: Fluent Bit's task map starts with 2048 task ids
/// (`FLB_CONFIG_DEFAULT_TASK_MAP_SIZE`); a chunk that gets none waits for the next flush.
pub const FLUSHES_IN_FLIGHT_MAX: usize = 2048;

/// What the dispatcher and its flush tasks share.
pub(crate) struct Flushing {
    ctx: PartCtx,
    config: AgentConfig,
    auth: Option<ClientAuth>,
    /// `Some` with `tls` on: the client config (the run CA, the host's clock) and vhost.
    tls: Option<ClientTls>,
    host: String,
    port: u16,
    /// One connection pool per worker (one when `workers` is 0).
    pools: Mutex<Vec<Upstream>>,
    retry_rng: Mutex<ChaCha8Rng>,
    handshake_rng: Mutex<ChaCha8Rng>,
    /// Wakes the dispatcher: a flush finished.
    done: Notify,
    /// The flush tasks started and not yet reaped, to abort them when the agent exits.
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl Flushing {
    /// The output's shared state for `ctx`'s agent; `Err` names what the TLS settings could
    /// not make.
    pub(crate) fn new(ctx: &PartCtx, config: &AgentConfig) -> Result<Flushing, String> {
        let aggregator = ctx.peer(Part::Agent, Part::Aggregator).clone();
        let pools = (0..config.workers.max(1)).map(|_| Upstream::new(ctx.clone(), config)).collect();
        Ok(Flushing {
            ctx: ctx.clone(),
            config: config.clone(),
            auth: client_auth(ctx, config),
            tls: client_tls(ctx, config, &aggregator.host)?,
            host: aggregator.host.to_string(),
            port: aggregator.port,
            pools: Mutex::new(pools),
            retry_rng: Mutex::new(ctx.host.rng("agent/retry")),
            handshake_rng: Mutex::new(ctx.host.rng("agent/handshake")),
            done: Notify::new(),
            tasks: Mutex::new(Vec::new()),
        })
    }

    fn pools(&self) -> std::sync::MutexGuard<'_, Vec<Upstream>> {
        self.pools.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Aborts every flush in flight and closes every connection (the agent exits).
    pub(crate) fn stop(&self) {
        let tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|poisoned| poisoned.into_inner()));
        for task in tasks {
            task.abort();
        }
        for pool in self.pools().iter_mut() {
            pool.close_all("the agent exits");
        }
    }
}

/// The Forward handshake's credentials, when a shared key is configured (Fluent Bit's
/// `Shared_Key`, `Self_Hostname` defaulting to the host's name).
fn client_auth(ctx: &PartCtx, config: &AgentConfig) -> Option<ClientAuth> {
    config.shared_key.as_ref().map(|shared_key| ClientAuth {
        hostname: config.self_hostname.clone().unwrap_or_else(|| ctx.host.name().to_string()),
        shared_key: shared_key.clone(),
        username: String::new(),
        password: String::new(),
    })
}

/// With `tls` on, the client side of Forward over TLS: trusts the run's CA (derived from the
/// run's seed as the aggregator derives it, for the name it is dialled by), judges time by
/// this host's clock, verifies as `tls_verify` / `tls_verify_hostname` say.
fn client_tls(ctx: &PartCtx, config: &AgentConfig, aggregator_host: &str) -> Result<Option<ClientTls>, String> {
    if !config.tls {
        return Ok(None);
    }
    let clock = ctx.host.clock().clone();
    let pki = crate::world::tls::Pki::new(ctx.host.run_seed(), clock.epoch_unix_secs(), aggregator_host)
        .map_err(|error| format!("agent.tls: {error}"))?;
    let verification =
        crate::world::tls::Verification { chain: config.tls_verify, hostname: config.tls_verify_hostname };
    let client = crate::world::tls::client_config(clock, pki.ca_der(), verification)
        .map_err(|error| format!("agent.tls: {error}"))?;
    let vhost = config.tls_vhost.clone().unwrap_or_else(|| aggregator_host.to_string());
    Ok(Some(ClientTls { config: client, vhost }))
}

/// The dispatcher: starts a flush for every due chunk, round robin over the workers, then
/// waits for a sealed chunk, a finished flush, the next retry or an idle connection's end.
pub(crate) async fn run(shared: Arc<Shared>, flushing: Arc<Flushing>) {
    let workers = flushing.config.workers.max(1) as usize;
    let mut next_worker = 0usize;
    loop {
        reap(&flushing);
        let now = Instant::now(); // determinism: ok (tokio time, simulated by turmoil)
        let mut due = None;
        // Bounded: each pass starts one flush, at most FLUSHES_IN_FLIGHT_MAX in flight.
        while flushing.tasks.lock().map_or(0, |tasks| tasks.len()) < FLUSHES_IN_FLIGHT_MAX {
            match shared.lock().next(now) {
                Next::Send(send) => {
                    let task =
                        crate::world::spawn(flush(Arc::clone(&shared), Arc::clone(&flushing), send, next_worker));
                    flushing.tasks.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).push(task);
                    next_worker = (next_worker + 1) % workers;
                }
                Next::WaitUntil(at) => {
                    due = Some(at);
                    break;
                }
                Next::Idle => break,
            }
        }
        wait_for_work(&shared, &flushing, due).await;
    }
}

/// Forgets the flush tasks that have finished.
fn reap(flushing: &Flushing) {
    flushing.tasks.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).retain(|task| !task.is_finished());
}

/// Nothing more to start now: waits for a sealed chunk, a finished flush or `due` (the next
/// retry), and meanwhile closes available connections the server closed or that stayed
/// idle for `keepalive_idle_timeout`.
async fn wait_for_work(shared: &Shared, flushing: &Flushing, due: Option<Instant>) {
    // Bounded: every pass either returns or closes at least one connection.
    loop {
        let idle_deadline = flushing.pools().iter().filter_map(Upstream::idle_deadline).min();
        let closed_by_peer = std::future::poll_fn(|context| {
            let mut pools = flushing.pools();
            let mut ready = false;
            for pool in pools.iter_mut() {
                ready |= pool.poll_closed_by_peer(context).is_ready();
            }
            if ready { std::task::Poll::Ready(()) } else { std::task::Poll::Pending }
        });
        tokio::select! {
            biased;
            () = closed_by_peer => continue,
            () = sleep_until_some(idle_deadline) => {
                let now = Instant::now(); // determinism: ok (tokio time, simulated by turmoil)
                for pool in flushing.pools().iter_mut() {
                    pool.close_idle(now);
                }
                continue;
            }
            () = sleep_until_some(due) => return,
            () = shared.sealed.notified() => return,
            () = flushing.done.notified() => return,
        }
    }
}

/// Sleeps until `at`, or for ever without one.
async fn sleep_until_some(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// One flush: takes a connection of `worker`'s pool (or makes one), sends the chunk and
/// books the outcome — delivered, retried later, or given up.
async fn flush(shared: Arc<Shared>, flushing: Arc<Flushing>, send: Send, worker: usize) {
    let ctx = &flushing.ctx;
    ctx.host.record(
        EventKind::AgentAttempt,
        format!("chunk {} attempt {} records {}", send.seq, send.attempt, send.records),
    );
    let mut open = None;
    let result = attempt(&flushing, &send, worker, &mut open).await;
    let now = Instant::now(); // determinism: ok (tokio time, simulated by turmoil)
    match result {
        Ok(()) => {
            let open = open.expect("a chunk sent went through a connection");
            flushing.pools()[worker].handed_back(open, now);
            shared.lock().delivered(send.seq, flushing.config.require_ack);
            ctx.host.record(
                if flushing.config.require_ack { EventKind::AgentAck } else { EventKind::AgentSent },
                format!("chunk {} records {}", send.seq, send.records),
            );
        }
        Err(error) => {
            flushing.pools()[worker].failed(open);
            let retried = {
                let mut rng = flushing.retry_rng.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                shared.lock().failed(send.seq, error.give_up_cause(), now, &mut rng)
            };
            record_failure(ctx, &send, &error, retried);
        }
    }
    shared.room.notify_one();
    flushing.done.notify_one();
}

/// Takes or makes the connection (left in `open`) and sends the chunk on it.
async fn attempt(flushing: &Flushing, send: &Send, worker: usize, open: &mut Option<Open>) -> Result<(), SendError> {
    let now = Instant::now(); // determinism: ok (tokio time, simulated by turmoil)
    let taken = flushing.pools()[worker].take(now);
    let connection = match taken {
        Ok(taken) => open.insert(taken),
        Err(NoConnection::Limit(limit)) => {
            return Err(SendError::Connect(format!("net.max_worker_connections {limit} reached")));
        }
        Err(NoConnection::Connect) => {
            let settings = ConnectSettings {
                host: &flushing.host,
                port: flushing.port,
                connect_timeout: flushing.config.connect_timeout,
                io_timeout: flushing.config.io_timeout,
                auth: flushing.auth.as_ref(),
                tls: flushing.tls.as_ref(),
            };
            // Each connection draws its handshake's nonces from a stream seeded by the
            // agent's, in the order flushes connect.
            let seed: [u8; 32] =
                flushing.handshake_rng.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).random();
            let mut rng = ChaCha8Rng::from_seed(seed);
            let connected = ForwardConnection::connect(&settings, &mut rng).await.inspect_err(|error| {
                if let SendError::Tls(reason) = error {
                    flushing.ctx.host.record(EventKind::AgentTlsHandshakeFailed, reason.clone());
                }
            })?;
            flushing.ctx.host.record(EventKind::AgentConnect, format!("{}:{}", flushing.host, flushing.port));
            let now = Instant::now(); // determinism: ok (tokio time, simulated by turmoil)
            open.insert(flushing.pools()[worker].connected(connected, now))
        }
    };
    connection.connection.send(&send.frame, &send.chunk_id, flushing.config.require_ack).await
}

/// Records a failed attempt: the retry and its wait, or the give-up.
fn record_failure(ctx: &PartCtx, send: &Send, error: &SendError, retried: Option<std::time::Duration>) {
    let (seq, attempt) = (send.seq, send.attempt);
    match retried {
        Some(wait) => ctx.host.record(
            EventKind::AgentRetry,
            format!("chunk {seq} attempt {attempt} failed ({error}); retry in {}s", wait.as_secs()),
        ),
        None => ctx.host.record(EventKind::AgentGiveUp, format!("chunk {seq} attempt {attempt} failed ({error})")),
    }
}
