//! The agent: Fluent Bit on a machine (and on the API host), tailing the app's logs and
//! shipping them with `out_forward` to the aggregator.
//!
//! Files, one concept each:
//! - [`config`]: the `[agent]` section with Fluent Bit's defaults (`Retry_Limit`, storage,
//!   scheduler, forward settings).
//! - [`store`]: chunks — the open one, the sealed ones waiting, their files on disk; where
//!   custody changes hands (take, durable, ack, drop).
//! - [`backoff`]: the scheduler's retry wait, `uniform(base, min(cap, base·2^n)) + 1 s`.
//! - [`forward_client`]: the connection to the aggregator (connect, handshake, send, ack).
//! - [`upstream`]: keeping that connection between chunks like Fluent Bit's upstream
//!   (keepalive, idle timeout, a connection the server closed is never reused).
//! - [`control`]: the harness's handle — a runtime `mem_buf_limit` per host (faults) and the
//!   buffer gauges (the `bounds` check).
//!
//! Two tasks share the store: the input (takes records from the app's pipe unless paused,
//! seals the open chunk every `Flush`), and the output (sends due chunks one at a time over
//! one connection, reconnecting after any failure, scheduling retries).

pub mod backoff;
pub mod config;
pub mod control;
pub(crate) mod forward_client;
pub mod store;
pub mod upstream;

pub use config::{AgentConfig, RetryLimit, StorageSync, StorageType};
pub use control::AgentControl;

use std::sync::{Arc, Mutex};

use tokio::sync::Notify;
use tokio::time::Instant;

use crate::parts::{PartCtx, RecordPipe};
use crate::proto::forward::ClientAuth;
use crate::record::LogRecord;
use crate::vocab::{EventKind, Part};

use forward_client::{ConnectSettings, ForwardConnection};
use store::{Next, Store};
use upstream::Upstream;

/// State shared by the input and output tasks.
struct Shared {
    store: Mutex<Store>,
    /// Wakes the output: a chunk was sealed.
    sealed: Notify,
    /// Wakes the input: buffer room was freed.
    room: Notify,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Runs Fluent Bit for one incarnation of its host: the app pushes `LogRecord`s into
/// `logs`; they are shipped with tag `tag` (or `config.tag`) to the aggregator's in_forward,
/// at the address `ctx`'s peers give for it.
pub async fn run(ctx: PartCtx, config: AgentConfig, logs: RecordPipe<LogRecord>, tag: String) -> turmoil::Result {
    run_with_control(ctx, config, logs, tag, AgentControl::new()).await
}

/// `run`, with `control` able to override this host's `mem_buf_limit` while Fluent Bit runs
/// (faults) and receiving the buffer's gauges.
pub async fn run_with_control(
    ctx: PartCtx,
    config: AgentConfig,
    logs: RecordPipe<LogRecord>,
    tag: String,
    control: AgentControl,
) -> turmoil::Result {
    config.validate()?;
    let tag = config.tag.clone().unwrap_or(tag);
    let mut store = Store::new(ctx.clone(), config.clone(), tag.clone(), control);
    store.load();
    ctx.host.record(
        EventKind::AgentStart,
        format!(
            "tag {tag} storage {:?} retry_limit {:?} loaded {}",
            config.storage,
            config.retry_limit,
            store.sealed_count()
        ),
    );
    let shared = Arc::new(Shared { store: Mutex::new(store), sealed: Notify::new(), room: Notify::new() });
    let output = crate::world::spawn(output(ctx.clone(), config.clone(), Arc::clone(&shared)));
    input(ctx, config, logs, shared).await;
    output.abort();
    Ok(())
}

/// The input and the flush timer: takes records while the buffer has room, seals the open
/// chunk every `Flush`. Paused (buffer at `mem_buf_limit`), it leaves the records in the
/// app's pipe — the tail input keeps its file offset — and looks again when a chunk leaves
/// or at the next flush (which also notices a changed limit).
async fn input(ctx: PartCtx, config: AgentConfig, logs: RecordPipe<LogRecord>, shared: Arc<Shared>) {
    let mut flush = tokio::time::interval(config.flush_interval);
    flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut paused = false;
    loop {
        let now_paused = {
            let mut store = shared.lock();
            store.refresh_mem_buf_limit();
            store.input_paused()
        };
        if now_paused != paused {
            paused = now_paused;
            let bytes = shared.lock().buffered_bytes();
            ctx.host.record(
                if paused { EventKind::AgentPause } else { EventKind::AgentResume },
                format!("buffered {bytes} bytes"),
            );
        }
        tokio::select! {
            biased;
            _ = flush.tick() => {
                let mut store = shared.lock();
                let before = store.sealed_count();
                store.seal_open();
                if store.sealed_count() > before {
                    shared.sealed.notify_one();
                }
            }
            _ = logs.readable(), if !paused => {
                let mut store = shared.lock();
                // The limit may have shrunk while the input waited: Fluent Bit checks the
                // pause before each append.
                store.refresh_mem_buf_limit();
                if store.input_paused() {
                    continue;
                }
                let records = logs.take(config.take_records_max);
                let before = store.sealed_count();
                store.append(records);
                if store.sealed_count() != before {
                    shared.sealed.notify_one();
                }
            }
            _ = shared.room.notified(), if paused => {}
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

/// Nothing to send now: waits for a chunk to be sealed or for `due` (the next retry), and
/// closes the kept-alive connection if its idle timeout or the server's close comes first.
async fn wait_for_work(upstream: &mut Upstream, shared: &Shared, due: Option<Instant>) {
    let idle_close = match due {
        None => tokio::select! {
            biased;
            reason = upstream.idle_close_due() => Some(reason),
            _ = shared.sealed.notified() => None,
        },
        Some(due) => tokio::select! {
            biased;
            reason = upstream.idle_close_due() => Some(reason),
            _ = tokio::time::sleep_until(due) => None,
            _ = shared.sealed.notified() => None,
        },
    };
    if let Some(reason) = idle_close {
        upstream.close(&reason);
    }
}

/// The output: sends due chunks in order over one connection, reconnecting after failures;
/// between chunks the connection is kept alive and watched ([`Upstream`]).
async fn output(ctx: PartCtx, config: AgentConfig, shared: Arc<Shared>) {
    let mut retry_rng = ctx.host.rng("agent/retry");
    let mut handshake_rng = ctx.host.rng("agent/handshake");
    let auth = client_auth(&ctx, &config);
    let aggregator = ctx.peer(Part::Agent, Part::Aggregator).clone();
    let settings = ConnectSettings {
        host: &aggregator.host,
        port: aggregator.port,
        connect_timeout: config.connect_timeout,
        io_timeout: config.io_timeout,
        auth: auth.as_ref(),
    };
    let mut upstream = Upstream::new(ctx.clone(), &config);
    loop {
        let next = shared.lock().next(Instant::now()); // determinism: ok (tokio time, simulated by turmoil)
        let (seq, chunk_id, frame, records, attempt) = match next {
            Next::Idle => {
                wait_for_work(&mut upstream, &shared, None).await;
                continue;
            }
            Next::WaitUntil(due) => {
                wait_for_work(&mut upstream, &shared, Some(due)).await;
                continue;
            }
            Next::Send { seq, chunk_id, frame, records, attempt } => (seq, chunk_id, frame, records, attempt),
        };
        ctx.host.record(EventKind::AgentAttempt, format!("chunk {seq} attempt {attempt} records {records}"));
        let result = async {
            let now = Instant::now(); // determinism: ok (tokio time, simulated by turmoil)
            if !upstream.ready_for_chunk(now) {
                let connected = ForwardConnection::connect(&settings, &mut handshake_rng).await?;
                ctx.host.record(EventKind::AgentConnect, format!("{}:{}", settings.host, settings.port));
                upstream.connected(connected, Instant::now()); // determinism: ok (tokio time, simulated by turmoil)
            }
            let open = upstream.connection_mut().expect("ready or connected above");
            open.send(&frame, &chunk_id, config.require_ack).await
        }
        .await;
        match result {
            Ok(()) => {
                upstream.handed_back(Instant::now()); // determinism: ok (tokio time, simulated by turmoil)
                shared.lock().delivered(seq, config.require_ack);
                ctx.host.record(
                    if config.require_ack { EventKind::AgentAck } else { EventKind::AgentSent },
                    format!("chunk {seq} records {records}"),
                );
                shared.room.notify_one();
            }
            Err(error) => {
                upstream.failed();
                let now = Instant::now(); // determinism: ok (tokio time, simulated by turmoil)
                let retried = shared.lock().failed(seq, error.give_up_cause(), now, &mut retry_rng);
                match retried {
                    Some(wait) => ctx.host.record(
                        EventKind::AgentRetry,
                        format!("chunk {seq} attempt {attempt} failed ({error}); retry in {}s", wait.as_secs()),
                    ),
                    None => ctx
                        .host
                        .record(EventKind::AgentGiveUp, format!("chunk {seq} attempt {attempt} failed ({error})")),
                }
                shared.room.notify_one();
            }
        }
    }
}
