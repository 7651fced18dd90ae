//! The aggregator: Fluentd on Railway. Agents forward chunks to it, dev hosts POST JSON, it
//! enriches (environment, region), routes by tag, buffers, and writes every flushed chunk to
//! the Redis log buffer.
//!
//! Where is what:
//! - [`config`]: the `[aggregator]` section with Fluentd's defaults.
//! - [`in_forward`]: :24225, the shared-key handshake, and the ack (only after buffering).
//! - [`in_http`]: :24224, JSON from dev hosts.
//! - [`buffer`]: staged and queued chunks, `total_limit_size`, `overflow_action`,
//!   `queued_chunks_limit_size`, the output's retry state, custody.
//! - [`buffer_file`]: buf_file's chunk files (written, never fsynced; resumed at start).
//! - [`control`]: the harness's handle — a runtime `total_limit_size` (faults) and the
//!   buffer's gauge (the `bounds` check).
//! - [`retry`]: Fluentd's retry state: first retry after exactly `retry_wait`, then
//!   exponential backoff with ±12.5 % randomisation.
//! - [`redis_out`]: `RPUSH` through the real `redis` client over turmoil TCP.
//!
//! Tasks: the two listeners (one task per connection), the flush timer (Fluentd's enqueue
//! thread: enqueues staged chunks every `flush_interval` while the queue has room), and the
//! output (one flush thread, Fluentd's `flush_thread_count 1`: writes the queue's head,
//! retrying until written or the retry limit clears the queue). On SIGTERM the inputs close,
//! the output runs `flush_at_shutdown`, and the process exits (FIDELITY.md "Aggregator —
//! Fluentd").

pub mod buffer;
pub mod buffer_file;
pub mod config;
pub mod control;
pub mod fluent_event;
pub mod in_forward;
pub mod in_http;
pub mod redis_out;
pub mod retry;

pub use config::{AggregatorConfig, BufferType, OverflowAction};
pub use control::AggregatorControl;

use std::collections::BTreeMap;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use crate::parts::PartCtx;
use crate::record::{LogRecord, SourceId};
use crate::vocab::{EventKind, Part, Signal};

use buffer::{Buffer, NextWrite, Overflow};
use config::OverflowAction as Action;
use redis_out::WriteError;
use retry::RetryState;

/// What the listeners and the output share.
pub struct Shared {
    pub ctx: PartCtx,
    pub config: Arc<AggregatorConfig>,
    buffer: Mutex<Buffer>,
    /// Wakes the output: a chunk was queued.
    queued: Notify,
    /// Wakes blocked writers: room was freed.
    room: Notify,
    /// The shutdown stops the flush thread (it ends between writes).
    stop_output: AtomicBool,
    /// The ledger source of each client host whose records are not obsim's own (a logging
    /// library speaking Forward), registered on its first record (`fluent_event.rs`).
    foreign_sources: Mutex<BTreeMap<String, SourceId>>,
}

/// How often a blocked write looks again whether the buffer is `storable?` even without
/// a chunk leaving (Fluentd's `overflow_action block` loop: `sleep 1` until storable): a
/// restored `total_limit_size` frees a blocked input although nothing was flushed.
pub(crate) const BLOCK_POLL_INTERVAL: Duration = Duration::from_secs(1);

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Buffer> {
        self.buffer.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Ids for `count` records from `peer` that are not obsim's own: the next seqs of the
    /// peer's ledger source, emitted now (the ledger's accounts stay whole for them too).
    pub(crate) fn foreign_ids(&self, peer: &str, count: u64) -> (SourceId, u64) {
        let mut sources = self.foreign_sources.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let source = *sources
            .entry(peer.to_owned())
            .or_insert_with(|| self.ctx.ledger.register_source(&format!("{peer}/forward-client"), Signal::Log));
        let first = self.ctx.ledger.emit(source, count, crate::world::true_elapsed_now().as_nanos() as u64);
        (source, first)
    }

    /// Writes records into the buffer under `overflow_action`; `Ok` means they are held and
    /// may be acknowledged. `block` waits for room (the caller stops reading its input).
    pub(crate) async fn buffer_records(&self, tag: &str, records: Vec<LogRecord>, bytes: u64) -> Result<(), Overflow> {
        let mut records = records;
        let mut blocked = false;
        // Bounded by the output and the clock: each pass follows a chunk leaving the buffer
        // or one BLOCK_POLL_INTERVAL, and ends once the buffer is storable.
        loop {
            let mut room = pin!(self.room.notified());
            room.as_mut().enable();
            let result = {
                let mut buffer = self.lock();
                let queued_before = buffer.queued_count();
                let result = buffer.write(tag, records, bytes);
                if buffer.queued_count() > queued_before {
                    self.queued.notify_one();
                }
                result
            };
            match result {
                Ok(()) => {
                    if blocked {
                        self.ctx.host.record(EventKind::AggregatorUnblock, format!("tag {tag}"));
                    }
                    return Ok(());
                }
                // Fluentd's block loop breaks on shutdown ("breaking block behavior to
                // shutdown Fluentd"): the write is refused.
                Err((overflow, back))
                    if self.config.overflow_action == Action::Block && !self.ctx.host.sigterm().is_received() =>
                {
                    if !blocked {
                        self.ctx.host.record(EventKind::AggregatorBlock, format!("tag {tag}: {overflow}"));
                        blocked = true;
                    }
                    records = back;
                    // Either a chunk left, or Fluentd's one-second look again.
                    let _ = tokio::time::timeout(BLOCK_POLL_INTERVAL, room).await;
                }
                Err((overflow, _)) => return Err(overflow),
            }
        }
    }
}

/// Runs Fluentd for one incarnation of its host.
pub async fn run(ctx: PartCtx, config: AggregatorConfig) -> turmoil::Result {
    run_with_control(ctx, config, AggregatorControl::new()).await
}

/// Fluentd's `flush_thread_burst_interval` (1 s): how long `submit_flush_all` sleeps between
/// waking the flush thread while `flush_at_shutdown` drains the queue.
pub(crate) const FLUSH_THREAD_BURST_INTERVAL: Duration = Duration::from_secs(1);

/// `run`, with `control` able to override `total_limit_size` while Fluentd runs (faults)
/// and receiving the buffer's gauge. On SIGTERM it shuts down as Fluentd does (inputs
/// first, then the output's `flush_at_shutdown`) and exits.
pub async fn run_with_control(ctx: PartCtx, config: AggregatorConfig, control: AggregatorControl) -> turmoil::Result {
    config.validate()?;
    let config = Arc::new(config);
    let mut buffer = Buffer::new(
        ctx.host.clone(),
        ctx.ledger.clone(),
        ctx.custodian(Part::Aggregator),
        Arc::clone(&config),
        control,
    );
    buffer.resume();
    let file = if config.buffer_type == BufferType::File { " buffer file" } else { "" };
    ctx.host.record(
        EventKind::AggregatorStart,
        format!(
            "overflow_action {:?} total_limit {} key {}{file}",
            config.overflow_action, config.total_bytes_limit, config.redis_key
        ),
    );
    let resumed = buffer.queued_count() > 0;
    let shared = Arc::new(Shared {
        ctx,
        config,
        buffer: Mutex::new(buffer),
        queued: Notify::new(),
        room: Notify::new(),
        foreign_sources: Mutex::new(BTreeMap::new()),
        stop_output: AtomicBool::new(false),
    });
    let timer = crate::world::spawn(flush_timer(Arc::clone(&shared)));
    let output = crate::world::spawn(output(Arc::clone(&shared)));
    if resumed {
        shared.queued.notify_one();
    }
    let http_shared = Arc::clone(&shared);
    let http = crate::world::spawn(async move {
        if let Err(error) = in_http::serve(Arc::clone(&http_shared)).await {
            http_shared.ctx.host.record(EventKind::AggregatorHttpDown, error.to_string());
        }
    });
    let sigterm = shared.ctx.host.sigterm().clone();
    let forward = tokio::select! {
        biased;
        () = sigterm.received() => None,
        result = in_forward::serve(Arc::clone(&shared)) => Some(result),
    };
    http.abort();
    if let Some(result) = forward {
        return result;
    }
    timer.abort();
    shutdown(&shared).await;
    stop_output(&shared, output).await;
    let (lost, kept) = shared.lock().exit();
    shared.ctx.host.record(EventKind::AggregatorExit, format!("records lost from memory {lost}, left on file {kept}"));
    Ok(())
}

/// Fluentd's shutdown after the inputs have stopped (`before_shutdown` → `force_flush`):
/// with `flush_at_shutdown`, every staged chunk is enqueued (past `queued_chunks_limit_size`)
/// and the flush thread is woken every `flush_thread_burst_interval` while the queue holds
/// chunks and the output is not retrying (`submit_flush_all`: a failure ends the flush).
async fn shutdown(shared: &Arc<Shared>) {
    let flush = shared.config.flush_at_shutdown();
    let queued = {
        let mut buffer = shared.lock();
        if flush {
            buffer.enqueue_all(true);
        }
        buffer.queued_count()
    };
    shared.ctx.host.record(
        EventKind::AggregatorShutdown,
        format!("SIGTERM: inputs closed; flush_at_shutdown {flush}, {queued} chunks queued"),
    );
    if !flush {
        return;
    }
    // Bounded by the queue (each chunk is written or the retry ends it) and by the SIGKILL
    // that ends the draining time.
    loop {
        let (retrying, queued) = {
            let buffer = shared.lock();
            (buffer.retrying(), buffer.queued_count())
        };
        if retrying || queued == 0 {
            return;
        }
        shared.queued.notify_one();
        tokio::time::sleep(FLUSH_THREAD_BURST_INTERVAL).await;
    }
}

/// `after_shutdown`: the flush thread stops; a write in progress completes first (the
/// thread is joined), one waiting for its retry or for work is simply ended.
async fn stop_output(shared: &Arc<Shared>, output: tokio::task::JoinHandle<()>) {
    shared.stop_output.store(true, Ordering::SeqCst);
    if shared.lock().writing() {
        // Bounded by `redis_timeout`: the write in progress ends within it.
        let _ = output.await;
    } else {
        output.abort();
    }
}

/// Fluentd's enqueue thread: every `flush_interval`, staged chunks join the queue (as many
/// as `queued_chunks_limit_size` lets in).
async fn flush_timer(shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(shared.config.flush_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let mut buffer = shared.lock();
        let before = buffer.queued_count();
        buffer.enqueue_all(false);
        if buffer.queued_count() > before {
            shared.queued.notify_one();
        }
    }
}

/// The flush thread: writes the queue's head to Redis, retrying with Fluentd's backoff;
/// ends between writes once the shutdown stops it.
async fn output(shared: Arc<Shared>) {
    let config = Arc::clone(&shared.config);
    let host = shared.ctx.host.clone();
    let mut rng = host.rng("aggregator/retry");
    let mut connection: Option<crate::parts::redis_client::RedisConn> = None;
    let redis = shared.ctx.peer(Part::Aggregator, Part::Redis).clone();
    // Bounded by the queue and the clock: each pass writes a chunk or waits.
    while !shared.stop_output.load(Ordering::SeqCst) {
        let next = shared.lock().next_write(Instant::now()); // determinism: ok (tokio time, simulated by turmoil)
        let (seq, key, value, records) = match next {
            NextWrite::Idle => {
                shared.queued.notified().await;
                continue;
            }
            NextWrite::WaitUntil(due) => {
                tokio::time::sleep_until(due).await;
                continue;
            }
            NextWrite::Write { seq, key, value, records } => (seq, key, value, records),
        };
        let result: Result<i64, WriteError> = async {
            if connection.is_none() {
                connection = Some(redis_out::connect(&redis, config.redis_timeout).await?);
                host.record(EventKind::AggregatorRedisConnect, String::new());
            }
            let open = connection.as_mut().expect("connected above");
            redis_out::push_chunk(open, &key, &value, config.redis_timeout).await
        }
        .await;
        match result {
            Ok(length) => {
                shared.lock().written(seq);
                host.record(
                    EventKind::AggregatorFlush,
                    format!("chunk {seq} records {records} bytes {} -> {key} (len {length})", value.len()),
                );
                shared.room.notify_waiters();
            }
            Err(error) => {
                if error.breaks_connection() {
                    connection = None;
                }
                write_failed(&shared, seq, &error, &mut rng);
            }
        }
    }
}

/// `update_retry_state` after a failed write of chunk `seq`: the output's retry state is
/// created or stepped; at its limit every queued chunk is dropped (`clear_queue!`) with the
/// error's cause.
fn write_failed(shared: &Shared, seq: u64, error: &WriteError, rng: &mut impl rand::Rng) {
    let host = &shared.ctx.host;
    let now = Instant::now(); // determinism: ok (tokio time, simulated by turmoil)
    let mut buffer = shared.lock();
    let state = RetryState::after_failure(buffer.retry_state(), &shared.config, now, rng);
    if state.limit(&shared.config) {
        let cause = error.give_up_cause();
        host.record(
            EventKind::AggregatorRetryLimit,
            format!("chunk {seq} failure {} ({error}): dropping every queued chunk, cause {cause}", state.steps + 1),
        );
        buffer.clear_queue(cause);
        drop(buffer);
        shared.room.notify_waiters();
        return;
    }
    host.record(
        EventKind::AggregatorRetry,
        format!("chunk {seq} failure {} ({error}); next in {}ms", state.steps + 1, (state.next - now).as_millis()),
    );
    buffer.failed(seq, state);
}
