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
//! - [`output`]: out_forward's flushes — every due chunk at once, each on its own
//!   connection of one of the `workers`' pools.
//! - [`upstream`]: one worker's connections, kept between chunks like Fluent Bit's upstream
//!   (keepalive, idle timeout, a connection the server closed is never reused).
//! - [`control`]: the harness's handle — a runtime `mem_buf_limit` per host (faults) and the
//!   buffer gauges (the `bounds` check).
//!
//! Tasks share the store: the input (takes records from the app's pipe unless paused, seals
//! the open chunk every `Flush`), the output's dispatcher and one task per flush in flight
//! (sending, scheduling retries). On SIGTERM the input stops and the agent keeps flushing
//! for up to `Grace` seconds, then exits ([`shutdown`]).

pub mod backoff;
pub mod config;
pub mod control;
pub(crate) mod forward_client;
pub(crate) mod output;
pub mod store;
pub mod upstream;

pub use config::{AgentConfig, RetryLimit, StorageSync, StorageType};
pub use control::AgentControl;

use std::sync::{Arc, Mutex};

use tokio::sync::Notify;
use tokio::time::Instant;

pub use output::FLUSHES_IN_FLIGHT_MAX;

use crate::parts::{PartCtx, RecordPipe};
use crate::record::LogRecord;
use crate::vocab::EventKind;

use output::Flushing;
use store::Store;

/// State shared by the input and output tasks.
pub(crate) struct Shared {
    store: Mutex<Store>,
    /// Wakes the output: a chunk was sealed.
    pub(crate) sealed: Notify,
    /// Wakes the input: buffer room was freed.
    pub(crate) room: Notify,
}

impl Shared {
    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, Store> {
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
    if let Some(warning) = config.retry_limit.warning() {
        ctx.host.record(EventKind::AgentConfigWarning, warning);
    }
    let shared = Arc::new(Shared { store: Mutex::new(store), sealed: Notify::new(), room: Notify::new() });
    let flushing = Arc::new(Flushing::new(&ctx, &config)?);
    let output = crate::world::spawn(output::run(Arc::clone(&shared), Arc::clone(&flushing)));
    tokio::select! {
        biased;
        () = ctx.host.sigterm().received() => {}
        () = input(ctx.clone(), config.clone(), logs, Arc::clone(&shared)) => {}
    }
    shutdown(&ctx, &config, &shared).await;
    output.abort();
    flushing.stop();
    let lost = shared.lock().exit();
    let left = shared.lock().pending_count();
    ctx.host.record(EventKind::AgentExit, format!("chunks left {left} records lost {lost}"));
    Ok(())
}

/// SIGTERM (Fluent Bit 5.1 `src/flb_engine.c`, `FLB_ENGINE_STOP` then `FLB_ENGINE_SHUTDOWN`;
/// FIDELITY.md, Agent: Grace): the input has stopped; retries waiting are due now; every
/// second the grace counter rises and, while chunks are pending and it is below `Grace`,
/// pending data is flushed (the open chunk sealed); at the first tick with nothing pending,
/// or when the counter reaches `Grace`, the agent exits. `Grace` -1: until nothing is pending.
async fn shutdown(ctx: &PartCtx, config: &AgentConfig, shared: &Shared) {
    let pending = shared.lock().pending_count();
    ctx.host.record(EventKind::AgentShutdown, format!("grace {}s, chunks pending {pending}", config.grace_secs));
    let now = Instant::now(); // determinism: ok (tokio time, simulated by turmoil)
    shared.lock().retry_all_now(now);
    shared.sealed.notify_one();
    let mut grace_count: i64 = 0;
    // Bounded by `Grace` (or by the SIGKILL that ends the draining time, for -1).
    loop {
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        grace_count += 1;
        let pending = shared.lock().pending_count();
        if pending == 0 || (config.grace_secs >= 0 && grace_count >= i64::from(config.grace_secs)) {
            return;
        }
        shared.lock().seal_open();
        shared.sealed.notify_one();
    }
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
