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

use super::batch::{self, Batch, TakenChunk};
use super::config::ShipperConfig;
use super::export::{ExportOutcome, Exporter};
use super::queue::{self, QueueKeys};
use crate::ledger::{Custodian, Durability, Part};
use crate::parts::PartCtx;
use crate::parts::log_chunk::LogChunk;
use crate::world::true_elapsed_now;

/// Most attempts for one batch, whatever the delays: a bound on the retry loop.
pub const ATTEMPTS_MAX: u32 = 100_000;

/// The shortest wait between attempts (a `Retry-After: 0` must not spin).
pub const RETRY_DELAY_MIN: Duration = Duration::from_millis(10);

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
        }
    }

    /// The exporter, for tests that script it.
    pub fn exporter_mut(&mut self) -> &mut E {
        &mut self.exporter
    }

    /// Gives back whatever look-ahead this process holds and moves every value of the
    /// processing list back to the buffer's head. Run on every (re)connection before taking.
    pub async fn recover<C: ConnectionLike>(&mut self, conn: &mut C) -> RedisResult<usize> {
        let moved = queue::recover(conn, &self.keys).await?;
        // Only after the move succeeded: the look-ahead chunks are back in the buffer.
        let ids: Vec<_> =
            self.pending.drain(..).flat_map(|taken| taken.chunk.records.into_iter().map(|r| r.id)).collect();
        self.ctx.ledger.release(&self.custodian, &ids);
        if moved > 0 {
            self.ctx.host.record("shipper.recover", format!("{moved} values moved back to {}", self.keys.buffer));
        }
        Ok(moved)
    }

    /// Decodes a value taken into the processing list and takes custody of its records; a
    /// value that is not a chunk goes to the dead-letter list.
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
                    "shipper.dead_letter",
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
    pub async fn next_batch<C: ConnectionLike>(&mut self, conn: &mut C) -> RedisResult<Option<Batch>> {
        let chunks_max = self.config.batch_chunks_max;
        if self.pending.is_empty() {
            match queue::take_blocking(conn, &self.keys, self.config.blmove_timeout).await? {
                Some(value) => self.accept(conn, value).await?,
                None => return Ok(None),
            }
        }
        if !self.pending.is_empty() && self.pending.len() < chunks_max {
            let more = queue::take_more(conn, &self.keys, chunks_max - self.pending.len()).await?;
            for value in more {
                self.accept(conn, value).await?;
            }
        }
        assert!(self.pending.len() <= chunks_max, "look-ahead exceeds batch_chunks_max");
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
        if chunks.is_empty() {
            return Ok(None);
        }
        Ok(Some(batch::build(chunks)))
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
                        "shipper.retry",
                        format!("attempt {attempt}: {reason}; next in {}ms", delay.as_millis()),
                    );
                    tokio::time::sleep(delay).await;
                }
            }
        }
        Verdict::Expired { attempts: ATTEMPTS_MAX, last_reason: "ATTEMPTS_MAX reached".to_string() }
    }

    /// Makes the verdict true in Redis and in the ledger (see the module docs).
    pub async fn settle<C: ConnectionLike>(
        &mut self,
        conn: &mut C,
        batch: &Batch,
        verdict: &Verdict,
    ) -> RedisResult<()> {
        let (chunks, records) = (batch.values.len(), batch.ids.len());
        match verdict {
            Verdict::Delivered { status, attempts } => {
                queue::ack(conn, &self.keys, &batch.values).await?;
                self.ctx.ledger.release(&self.custodian, &batch.ids);
                self.ctx.host.record(
                    "shipper.delivered",
                    format!("{chunks} chunks, {records} records, http {status} after {attempts} attempts"),
                );
            }
            Verdict::Rejected { status, attempts } => {
                queue::ack(conn, &self.keys, &batch.values).await?;
                let cause = if (400..500).contains(status) { "shipper_rejected_4xx" } else { "shipper_rejected_5xx" };
                self.ctx.ledger.drop_records(&self.custodian, cause, &batch.ids);
                self.ctx.host.record(
                    "shipper.rejected",
                    format!("{chunks} chunks, {records} records, http {status} after {attempts} attempts: {cause}"),
                );
            }
            Verdict::Expired { attempts, last_reason } => {
                queue::give_back(conn, &self.keys, batch.values.len()).await?;
                self.ctx.ledger.release(&self.custodian, &batch.ids);
                self.ctx.host.record(
                    "shipper.retry_expired",
                    format!(
                        "{chunks} chunks, {records} records back to {} after {attempts} attempts: {last_reason}",
                        self.keys.buffer
                    ),
                );
            }
        }
        Ok(())
    }

    /// Drives the shipper for the rest of the incarnation: connect (with backoff), settle
    /// what an earlier connection left unsettled, recover, then take → export → settle.
    /// Any Redis error drops the connection and starts over from connecting.
    pub async fn run_with<C, F, Fut>(&mut self, mut connect: F) -> turmoil::Result
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
                    self.ctx
                        .host
                        .record("shipper.redis_down", format!("connect: {error}; retry in {}ms", delay.as_millis()));
                    tokio::time::sleep(delay).await;
                    continue;
                }
            };
            let error = self.serve(&mut conn, &mut unsettled).await;
            failures += 1;
            let delay = self.backoff(failures.min(5));
            self.ctx.host.record("shipper.redis_down", format!("{error}; reconnect in {}ms", delay.as_millis()));
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
                // Planted bug (`crate::bugs`): LREM before Dash0 has answered.
                if let Err(error) = queue::ack(conn, &self.keys, &batch.values).await {
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
