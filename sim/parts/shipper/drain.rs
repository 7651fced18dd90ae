//! The shipper's loop, step by step: recover, take a batch, export it (with retries),
//! settle it (LREM and ledger), and the reconnecting driver around them.
//!
//! Custody: the shipper holds a chunk's records (volatile) from the moment it decoded the
//! chunk until it settled it; Redis keeps its own custody until the LREM. So a shipper
//! crash loses nothing that Redis does not also lose: the processing list is moved back on
//! the next start.
//!
//! Outcomes of a batch:
//! - 2xx: LREM each value, release. (partial_success rejections are Dash0's to account.)
//!   At `maxmemory` the values are read in place instead of moved (BLMOVE is refused
//!   there, see `Shipper::next_batch`), and LREMed from the list that holds them.
//! - 429/502/503/504, connection errors, timeouts: retried, honouring `Retry-After`, else
//!   exponential backoff with jitter; if retrying would pass `retry_max_elapsed`, the batch
//!   is given back to the tail of the buffer (LMOVE processing → buffer) and released: it is
//!   retried later, never dropped. A reliable queue must not lose what it could still send.
//! - any other status: not retried; LREM and `drop_records` with `shipper_rejected_4xx`
//!   (`shipper_rejected_5xx` for 500/501/505…): the data is lost with its cause.

use std::collections::VecDeque;
use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use redis::RedisResult;
use redis::aio::ConnectionLike;

use super::batch::{self, Batch, TakenChunk, TakenFrom};
use super::config::ShipperConfig;
use super::export::{ExportOutcome, Exporter};
use super::queue::{self, QueueKeys};
use crate::ledger::{Custodian, Durability};
use crate::parts::PartCtx;
use crate::parts::log_chunk::LogChunk;
use crate::vocab::{EventKind, LossCause, Part};
use crate::world::true_elapsed_now;

/// Most attempts for one batch, whatever the delays: a bound on the retry loop.
pub(crate) const ATTEMPTS_MAX: u32 = 100_000;

/// The shortest wait between attempts (a `Retry-After: 0` must not spin).
pub(crate) const RETRY_DELAY_MIN: Duration = Duration::from_millis(10);

/// How a batch's export ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Dash0 answered 2xx.
    Delivered { status: u16, attempts: u32 },
    /// Dash0 refused it for good.
    Rejected { status: u16, attempts: u32 },
    /// Retries ran past `retry_max_elapsed`: give it back to the buffer.
    Expired { attempts: u32, last_reason: String },
}

/// The shipper's state within one incarnation.
pub struct Shipper<E: Exporter> {
    ctx: PartCtx,
    config: ShipperConfig,
    keys: QueueKeys,
    custodian: Custodian,
    exporter: E,
    rng: ChaCha8Rng,
    /// Chunks moved to the processing list and decoded but not yet in a batch (look-ahead),
    /// oldest first. Bounded by `batch_chunks_max`.
    pending: VecDeque<TakenChunk>,
    /// Values this shipper could not move out of the processing list (Redis refused at
    /// `maxmemory`): read and shipped in place before anything new is taken.
    processing_leftover: bool,
}

impl<E: Exporter> Shipper<E> {
    /// A shipper for this incarnation; nothing happens until it is driven.
    pub fn new(ctx: PartCtx, config: ShipperConfig, exporter: E) -> Self {
        let keys = QueueKeys {
            buffer: config.buffer_key.clone(),
            processing: config.processing_key.clone(),
            dead_letter: config.dead_letter_key.clone(),
        };
        Shipper {
            custodian: ctx.custodian(Part::Shipper),
            rng: ctx.host.rng("shipper/retry"),
            ctx,
            config,
            keys,
            exporter,
            pending: VecDeque::new(),
            processing_leftover: false,
        }
    }

    /// Gives back whatever look-ahead this process holds and moves every value of the
    /// processing list back to the buffer's head. Run on every (re)connection before taking.
    /// At `maxmemory` Redis refuses the move (LMOVE is `denyoom`); the values then stay in
    /// the processing list and are read and shipped in place first (see `next_batch`).
    pub async fn recover<C: ConnectionLike>(&mut self, conn: &mut C) -> RedisResult<usize> {
        let moved = match queue::recover(conn, &self.keys).await {
            Ok(moved) => moved,
            Err(error) if queue::is_oom(&error) => {
                self.processing_leftover = true;
                self.ctx
                    .host
                    .record(EventKind::ShipperRecoverOom, format!("{} left in place: {error}", self.keys.processing));
                0
            }
            Err(error) => return Err(error),
        };
        // Only after the move succeeded (or was refused as a whole): the look-ahead chunks
        // are back in Redis's lists, in Redis's custody.
        let ids: Vec<_> =
            self.pending.drain(..).flat_map(|taken| taken.chunk.records.into_iter().map(|r| r.id)).collect();
        self.ctx.ledger.release(&self.custodian, &ids);
        if moved > 0 {
            self.ctx
                .host
                .record(EventKind::ShipperRecover, format!("{moved} values moved back to {}", self.keys.buffer));
        }
        Ok(moved)
    }

    /// Decodes a value taken from Redis and takes custody of its records; a value that is
    /// not a chunk goes to the dead-letter list (only values this shipper moved: a value read
    /// in place is dead-lettered once it can be moved, after memory is freed).
    async fn accept<C: ConnectionLike>(&mut self, conn: &mut C, value: Bytes) -> RedisResult<()> {
        match LogChunk::decode(&value) {
            Ok(chunk) => {
                let ids: Vec<_> = chunk.records.iter().map(|r| r.id).collect();
                self.ctx.ledger.hold(&self.custodian, &ids, Durability::Volatile);
                self.pending.push_back(TakenChunk { value, chunk });
                Ok(())
            }
            Err(error) => {
                queue::dead_letter(conn, &self.keys, &value).await?;
                self.ctx.host.record(
                    EventKind::ShipperDeadLetter,
                    format!("{} bytes to {}: {error}", value.len(), self.keys.dead_letter),
                );
                Ok(())
            }
        }
    }

    /// Takes the next batch: blocks (up to `blmove_timeout`) for one chunk when none is
    /// pending, looks ahead with pipelined LMOVEs, then cuts a batch within
    /// `batch_chunks_max` / `batch_records_max` / `request_bytes_limit`. None when the
    /// buffer stayed empty.
    ///
    /// At `maxmemory` under `noeviction` Redis refuses BLMOVE and LMOVE (both `denyoom`),
    /// and the reliable queue would deadlock: Redis frees memory only when the shipper
    /// drains, and the shipper drains only by moving. So on OOM the shipper reads the
    /// values in place instead (LRANGE, a read) and, once Dash0 took them, removes them
    /// with LREM (which frees memory and is allowed): values left in the processing list
    /// first, then the buffer's head. At-least-once still holds: a crash before the LREM
    /// leaves the values where they were, and they are shipped again.
    pub async fn next_batch<C: ConnectionLike>(&mut self, conn: &mut C) -> RedisResult<Option<Batch>> {
        let chunks_max = self.config.batch_chunks_max;
        if self.pending.is_empty() && self.processing_leftover {
            // Nothing of this shipper is out, so everything in the processing list is left over.
            let peeked = queue::peek(conn, &self.keys.processing, chunks_max).await?;
            if !peeked.is_empty() {
                return Ok(self.read_in_place(peeked, TakenFrom::ReadInProcessing));
            }
            self.processing_leftover = false;
        }
        if self.pending.is_empty() {
            match queue::take_blocking(conn, &self.keys, self.config.blmove_timeout).await {
                Ok(Some(value)) => self.accept(conn, value).await?,
                Ok(None) => return Ok(None),
                Err(error) if queue::is_oom(&error) => {
                    let peeked = queue::peek(conn, &self.keys.buffer, chunks_max).await?;
                    return Ok(self.read_in_place(peeked, TakenFrom::ReadInBuffer));
                }
                Err(error) => return Err(error),
            }
        }
        if !self.pending.is_empty() && self.pending.len() < chunks_max {
            match queue::take_more(conn, &self.keys, chunks_max - self.pending.len()).await {
                Ok(more) => {
                    for value in more {
                        self.accept(conn, value).await?;
                    }
                }
                // Some LMOVEs of the pipeline may have run before the refusal: their values
                // are in the processing list unknown to us; read them once this batch is out.
                Err(error) if queue::is_oom(&error) => self.processing_leftover = true,
                Err(error) => return Err(error),
            }
        }
        assert!(self.pending.len() <= chunks_max, "look-ahead exceeds batch_chunks_max");
        let chunks = self.cut_batch();
        if chunks.is_empty() {
            return Ok(None);
        }
        Ok(Some(batch::build(chunks, TakenFrom::Moved)))
    }

    /// Takes the chunks of the next batch off the front of `pending`, within the batch
    /// bounds (a batch has at least one chunk, whatever its size).
    fn cut_batch(&mut self) -> Vec<TakenChunk> {
        let chunks_max = self.config.batch_chunks_max;
        let mut chunks = Vec::new();
        let (mut records, mut bytes) = (0usize, 0usize);
        while let Some(front) = self.pending.front() {
            let fits = chunks.len() < chunks_max
                && records + front.chunk.records.len() <= self.config.batch_records_max
                && bytes + front.value.len() <= self.config.request_bytes_limit;
            if !chunks.is_empty() && !fits {
                break;
            }
            let taken = self.pending.pop_front().expect("front exists");
            records += taken.chunk.records.len();
            bytes += taken.value.len();
            chunks.push(taken);
        }
        chunks
    }

    /// A batch of values read in place (at `maxmemory`): decodes them, holds what fits one
    /// batch and leaves the rest to Redis. A value that is not a chunk stops the batch
    /// before it; it is dead-lettered once values can be moved again.
    fn read_in_place(&mut self, peeked: Vec<Bytes>, taken_from: TakenFrom) -> Option<Batch> {
        assert!(self.pending.is_empty(), "values read in place never mix with moved ones");
        for value in peeked {
            let Ok(chunk) = LogChunk::decode(&value) else { break };
            self.pending.push_back(TakenChunk { value, chunk });
        }
        let chunks = self.cut_batch();
        // What did not fit stays in Redis's custody, unheld by us.
        self.pending.clear();
        if chunks.is_empty() {
            return None;
        }
        let ids: Vec<_> = chunks.iter().flat_map(|taken| taken.chunk.records.iter().map(|r| r.id)).collect();
        self.ctx.ledger.hold(&self.custodian, &ids, Durability::Volatile);
        self.ctx.host.record(
            EventKind::ShipperReadInPlace,
            format!("{} chunks of {} at maxmemory ({taken_from:?})", chunks.len(), ids.len()),
        );
        Some(batch::build(chunks, taken_from))
    }

    /// Exponential backoff with jitter: min(max_interval, initial·2^attempt) scaled by a
    /// uniform factor in [0.5, 1.5), capped at max_interval.
    fn backoff(&mut self, attempt: u32) -> Duration {
        let exponent = attempt.min(20);
        let base = self.config.retry_initial.saturating_mul(1u32 << exponent).min(self.config.retry_max_interval);
        let factor: f64 = self.rng.random_range(0.5..1.5);
        base.mul_f64(factor).min(self.config.retry_max_interval)
    }

    /// POSTs the batch until it is delivered, refused, or its retries expire.
    pub async fn export(&mut self, batch: &Batch) -> Verdict {
        let started = true_elapsed_now();
        for attempt in 1..=ATTEMPTS_MAX {
            match self.exporter.export(batch.body.clone()).await {
                ExportOutcome::Delivered { status } => return Verdict::Delivered { status, attempts: attempt },
                ExportOutcome::Rejected { status } => return Verdict::Rejected { status, attempts: attempt },
                ExportOutcome::Retryable { reason, retry_after } => {
                    let delay = retry_after.unwrap_or_else(|| self.backoff(attempt - 1)).max(RETRY_DELAY_MIN);
                    let elapsed = true_elapsed_now().saturating_sub(started);
                    if elapsed + delay > self.config.retry_max_elapsed {
                        return Verdict::Expired { attempts: attempt, last_reason: reason };
                    }
                    self.ctx.host.record(
                        EventKind::ShipperRetry,
                        format!("attempt {attempt}: {reason}; next in {}ms", delay.as_millis()),
                    );
                    tokio::time::sleep(delay).await;
                }
            }
        }
        Verdict::Expired { attempts: ATTEMPTS_MAX, last_reason: "ATTEMPTS_MAX reached".to_string() }
    }

    /// The Redis list that holds `batch`'s values while it is out.
    fn list_holding(&self, batch: &Batch) -> &str {
        match batch.taken_from {
            TakenFrom::Moved | TakenFrom::ReadInProcessing => &self.keys.processing,
            TakenFrom::ReadInBuffer => &self.keys.buffer,
        }
    }

    /// Makes the verdict true in Redis and in the ledger (see the module docs).
    pub async fn settle<C: ConnectionLike>(
        &mut self,
        conn: &mut C,
        batch: &Batch,
        verdict: &Verdict,
    ) -> RedisResult<()> {
        let (chunks, records) = (batch.values.len(), batch.ids.len());
        let list = self.list_holding(batch);
        match verdict {
            Verdict::Delivered { status, attempts } => {
                queue::ack(conn, list, &batch.values).await?;
                self.ctx.ledger.release(&self.custodian, &batch.ids);
                self.ctx.host.record(
                    EventKind::ShipperDelivered,
                    format!("{chunks} chunks, {records} records, http {status} after {attempts} attempts"),
                );
            }
            Verdict::Rejected { status, attempts } => {
                queue::ack(conn, list, &batch.values).await?;
                let cause = if (400..500).contains(status) {
                    LossCause::ShipperRejected4xx
                } else {
                    LossCause::ShipperRejected5xx
                };
                self.ctx.ledger.drop_records(&self.custodian, cause, &batch.ids);
                self.ctx.host.record(
                    EventKind::ShipperRejected,
                    format!("{chunks} chunks, {records} records, http {status} after {attempts} attempts: {cause}"),
                );
            }
            Verdict::Expired { attempts, last_reason } => {
                match batch.taken_from {
                    TakenFrom::Moved => match queue::give_back(conn, &self.keys, batch.values.len()).await {
                        Ok(_) => {}
                        // Left in the processing list: read in place before anything new.
                        Err(error) if queue::is_oom(&error) => self.processing_leftover = true,
                        Err(error) => return Err(error),
                    },
                    TakenFrom::ReadInProcessing => self.processing_leftover = true,
                    TakenFrom::ReadInBuffer => {}
                }
                self.ctx.ledger.release(&self.custodian, &batch.ids);
                self.ctx.host.record(
                    EventKind::ShipperRetryExpired,
                    format!(
                        "{chunks} chunks, {records} records back to Redis after {attempts} attempts: {last_reason}"
                    ),
                );
            }
        }
        Ok(())
    }

    /// Drives the shipper for the rest of the incarnation: connect (with backoff), settle
    /// what an earlier connection left unsettled, recover, then take → export → settle.
    /// Any Redis error drops the connection and starts over from connecting.
    pub(crate) async fn run_with<C, F, Fut>(&mut self, mut connect: F) -> turmoil::Result
    where
        C: ConnectionLike,
        F: FnMut() -> Fut,
        Fut: Future<Output = RedisResult<C>>,
    {
        let mut unsettled: Option<(Batch, Verdict)> = None;
        let mut failures = 0u32;
        // Bounded by the simulation's duration: every pass either makes progress or sleeps.
        loop {
            let mut conn = match connect().await {
                Ok(conn) => conn,
                Err(error) => {
                    failures += 1;
                    let delay = self.backoff(failures.min(5));
                    self.ctx.host.record(
                        EventKind::ShipperRedisDown,
                        format!("connect: {error}; retry in {}ms", delay.as_millis()),
                    );
                    tokio::time::sleep(delay).await;
                    continue;
                }
            };
            let error = self.serve(&mut conn, &mut unsettled).await;
            failures += 1;
            let delay = self.backoff(failures.min(5));
            self.ctx.host.record(EventKind::ShipperRedisDown, format!("{error}; reconnect in {}ms", delay.as_millis()));
            drop(conn);
            tokio::time::sleep(delay).await;
        }
    }

    /// Works on one connection until it fails; returns the error.
    async fn serve<C: ConnectionLike>(
        &mut self,
        conn: &mut C,
        unsettled: &mut Option<(Batch, Verdict)>,
    ) -> redis::RedisError {
        if let Some((batch, verdict)) = unsettled.as_ref() {
            if let Err(error) = self.settle(conn, batch, verdict).await {
                return error;
            }
            *unsettled = None;
        }
        if let Err(error) = self.recover(conn).await {
            return error;
        }
        loop {
            let batch = match self.next_batch(conn).await {
                Ok(Some(batch)) => batch,
                Ok(None) => continue,
                Err(error) => return error,
            };
            if self.config.bugs.shipper_delete_before_2xx {
                // Planted bug (`crate::parts::bugs`): LREM before Dash0 has answered.
                if let Err(error) = queue::ack(conn, self.list_holding(&batch), &batch.values).await {
                    return error;
                }
            }
            let verdict = self.export(&batch).await;
            if let Err(error) = self.settle(conn, &batch, &verdict).await {
                *unsettled = Some((batch, verdict));
                return error;
            }
        }
    }
}
