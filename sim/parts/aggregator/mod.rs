//! The aggregator: Fluentd on Railway. Agents forward chunks to it, dev hosts POST JSON, it
//! enriches (environment, region), routes by tag, buffers, and writes every flushed chunk to
//! the Redis log buffer.
//!
//! Where is what:
//! - [`config`]: the `[aggregator]` section with Fluentd's defaults.
//! - [`in_forward`]: :24225, the shared-key handshake, and the ack (only after buffering).
//! - [`in_http`]: :24224, JSON from dev hosts.
//! - [`buffer`]: staged and queued chunks, `total_limit_size`, `overflow_action`, custody.
//! - [`control`]: the harness's handle — a runtime `total_limit_size` (faults) and the
//!   buffer's gauge (the `bounds` check).
//! - [`retry`]: Fluentd's exponential backoff with ±12.5 % randomisation.
//! - [`redis_out`]: `RPUSH` through the real `redis` client over turmoil TCP.
//!
//! Tasks: the two listeners (one task per connection), the flush timer (enqueues staged
//! chunks every `flush_interval`), and the output (one flush thread, Fluentd's
//! `flush_thread_count 1`: writes the queue's head, retrying it until written or given up).

pub mod buffer;
pub mod config;
pub mod control;
pub mod in_forward;
pub mod in_http;
pub mod redis_out;
pub mod retry;

pub use config::{AggregatorConfig, OverflowAction};
pub use control::AggregatorControl;

use std::pin::pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use crate::parts::PartCtx;
use crate::record::LogRecord;
use crate::vocab::{EventKind, Part};

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
}

/// How often a blocked write looks again whether the buffer is `storable?` even without
/// a chunk leaving (Fluentd's `overflow_action block` loop: `sleep 1` until storable): a
/// restored `total_limit_size` frees a blocked input although nothing was flushed.
pub(crate) const BLOCK_POLL_INTERVAL: Duration = Duration::from_secs(1);

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Buffer> {
        self.buffer.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
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
                Err((overflow, back)) if self.config.overflow_action == Action::Block => {
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

/// `run`, with `control` able to override `total_limit_size` while Fluentd runs (faults)
/// and receiving the buffer's gauge.
pub async fn run_with_control(ctx: PartCtx, config: AggregatorConfig, control: AggregatorControl) -> turmoil::Result {
    config.validate()?;
    let config = Arc::new(config);
    let buffer = Buffer::new(
        ctx.host.clone(),
        ctx.ledger.clone(),
        ctx.custodian(Part::Aggregator),
        Arc::clone(&config),
        control,
    );
    ctx.host.record(
        EventKind::AggregatorStart,
        format!(
            "overflow_action {:?} total_limit {} key {}",
            config.overflow_action, config.total_bytes_limit, config.redis_key
        ),
    );
    let shared =
        Arc::new(Shared { ctx, config, buffer: Mutex::new(buffer), queued: Notify::new(), room: Notify::new() });
    crate::world::spawn(flush_timer(Arc::clone(&shared)));
    crate::world::spawn(output(Arc::clone(&shared)));
    let http_shared = Arc::clone(&shared);
    let http = crate::world::spawn(async move {
        if let Err(error) = in_http::serve(Arc::clone(&http_shared)).await {
            http_shared.ctx.host.record(EventKind::AggregatorHttpDown, error.to_string());
        }
    });
    let forward = in_forward::serve(shared).await;
    http.abort();
    forward
}

/// Every `flush_interval`, staged chunks join the queue.
async fn flush_timer(shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(shared.config.flush_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let mut buffer = shared.lock();
        let before = buffer.queued_count();
        buffer.enqueue_all();
        if buffer.queued_count() > before {
            shared.queued.notify_one();
        }
    }
}

/// The flush thread: writes the queue's head to Redis, retrying with Fluentd's backoff.
async fn output(shared: Arc<Shared>) {
    let config = Arc::clone(&shared.config);
    let host = shared.ctx.host.clone();
    let mut rng = host.rng("aggregator/retry");
    let mut connection: Option<crate::parts::redis_client::RedisConn> = None;
    let redis = shared.ctx.peer(Part::Aggregator, Part::Redis).clone();
    loop {
        let next = shared.lock().next_write(Instant::now()); // determinism: ok (tokio time, simulated by turmoil)
        let (seq, key, value, records, retry) = match next {
            NextWrite::Idle => {
                shared.queued.notified().await;
                continue;
            }
            NextWrite::WaitUntil(due) => {
                tokio::time::sleep_until(due).await;
                continue;
            }
            NextWrite::Write { seq, key, value, records, retry } => (seq, key, value, records, retry),
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
                let now = Instant::now(); // determinism: ok (tokio time, simulated by turmoil)
                match RetryState::after_failure(retry, &config, now, &mut rng) {
                    Some(state) => {
                        host.record(
                            EventKind::AggregatorRetry,
                            format!(
                                "chunk {seq} failure {} ({error}); next in {}ms",
                                state.steps,
                                (state.next - now).as_millis()
                            ),
                        );
                        shared.lock().failed(seq, state);
                    }
                    None => {
                        shared.lock().give_up(seq, error.give_up_cause());
                        shared.room.notify_waiters();
                    }
                }
            }
        }
    }
}
