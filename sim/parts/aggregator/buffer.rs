//! Fluentd's `<buffer>` (buf_memory, chunk key `tag`): records are written into the staged
//! chunk of their tag; a staged chunk is enqueued when it reaches `chunk_limit_size` or at
//! `flush_interval`; the output writes the queue's head. `total_limit_size` bounds staged
//! plus queued bytes, and `overflow_action` says what a write does when it would pass it.
//!
//! Custody: a write that is accepted is held (volatile: buf_memory dies with the process);
//! the output releases a chunk once Redis has it, or drops it with a cause.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use tokio::time::Instant;

use crate::ledger::{Custodian, Durability, Ledger};
use crate::parts::log_chunk::LogChunk;
use crate::record::{LogRecord, RecordId};
use crate::world::HostCtx;

use super::config::{AggregatorConfig, OverflowAction};
use super::retry::RetryState;

/// A chunk in the queue.
pub struct QueuedChunk {
    pub seq: u64,
    pub tag: String,
    pub records: Vec<LogRecord>,
    pub bytes: u64,
    /// Set while it fails: its retry schedule.
    pub retry: Option<RetryState>,
    /// The output is writing it: not to be dropped for room meanwhile.
    pub in_flight: bool,
}

impl QueuedChunk {
    /// The ids it holds.
    pub fn ids(&self) -> Vec<RecordId> {
        self.records.iter().map(|record| record.id).collect()
    }
}

/// What the output does next.
pub enum NextWrite {
    /// RPUSH `value` to `key`.
    Write {
        seq: u64,
        key: String,
        value: Vec<u8>,
        records: usize,
        retry: Option<RetryState>,
    },
    /// The head waits for its retry.
    WaitUntil(Instant),
    /// The queue is empty.
    Idle,
}

/// A staged chunk still accepting records.
struct Staged {
    records: Vec<LogRecord>,
    bytes: u64,
}

/// Why a write was not buffered.
#[derive(Debug, PartialEq, Eq)]
pub struct Overflow {
    pub buffered_bytes: u64,
    pub incoming_bytes: u64,
    pub total_bytes_limit: u64,
}

impl std::fmt::Display for Overflow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "buffer space has too many data: {} bytes buffered + {} incoming > total_limit_size {}",
            self.buffered_bytes, self.incoming_bytes, self.total_bytes_limit
        )
    }
}

/// The buffer of one aggregator.
pub struct Buffer {
    host: HostCtx,
    ledger: Ledger,
    custodian: Custodian,
    config: Arc<AggregatorConfig>,
    staged: BTreeMap<String, Staged>,
    queue: VecDeque<QueuedChunk>,
    bytes: u64,
    next_seq: u64,
    /// Planted bug `silent_record_loss` has struck (it strikes once).
    silent_loss_struck: bool,
}

impl Buffer {
    /// An empty buffer.
    pub fn new(
        host: HostCtx,
        ledger: Ledger,
        custodian: Custodian,
        config: Arc<AggregatorConfig>,
    ) -> Buffer {
        Buffer {
            host,
            ledger,
            custodian,
            config,
            staged: BTreeMap::new(),
            queue: VecDeque::new(),
            bytes: 0,
            next_seq: 0,
            silent_loss_struck: false,
        }
    }

    /// Bytes staged and queued.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Chunks queued.
    pub fn queued_count(&self) -> usize {
        self.queue.len()
    }

    /// Writes `records` (of `bytes` encoded bytes) under `tag`. On success custody is taken.
    /// On overflow: `drop_oldest_chunk` discards queued chunks (cause `aggregator_overflow`)
    /// until the write fits; the other actions return the overflow to the input, which either
    /// refuses (throw_exception) or waits for room (block).
    pub fn write(
        &mut self,
        tag: &str,
        records: Vec<LogRecord>,
        bytes: u64,
    ) -> Result<(), (Overflow, Vec<LogRecord>)> {
        if records.is_empty() {
            return Ok(());
        }
        let limit = self.config.total_bytes_limit;
        if self.bytes + bytes > limit
            && self.config.overflow_action == OverflowAction::DropOldestChunk
        {
            // Bounded: each pass removes one chunk.
            while self.bytes + bytes > limit {
                let Some(index) = self.queue.iter().position(|chunk| !chunk.in_flight) else {
                    break;
                };
                let chunk = self.queue.remove(index).expect("index from position");
                self.bytes -= chunk.bytes;
                self.ledger
                    .drop_records(&self.custodian, "aggregator_overflow", &chunk.ids());
                self.host.record(
                    "aggregator.drop",
                    format!(
                        "chunk {} tag {} records {} cause aggregator_overflow",
                        chunk.seq,
                        chunk.tag,
                        chunk.records.len()
                    ),
                );
            }
        }
        if self.bytes + bytes > limit {
            let overflow = Overflow {
                buffered_bytes: self.bytes,
                incoming_bytes: bytes,
                total_bytes_limit: limit,
            };
            return Err((overflow, records));
        }
        let ids: Vec<RecordId> = records.iter().map(|record| record.id).collect();
        self.ledger
            .hold(&self.custodian, &ids, Durability::Volatile);
        self.bytes += bytes;
        let staged = self
            .staged
            .entry(tag.to_string())
            .or_insert_with(|| Staged {
                records: Vec::new(),
                bytes: 0,
            });
        staged.records.extend(records);
        staged.bytes += bytes;
        if staged.bytes >= self.config.chunk_bytes_limit {
            self.enqueue(tag);
        }
        Ok(())
    }

    /// Moves every staged chunk to the queue (the flush interval fired).
    pub fn enqueue_all(&mut self) {
        let tags: Vec<String> = self.staged.keys().cloned().collect();
        for tag in tags {
            self.enqueue(&tag);
        }
    }

    fn enqueue(&mut self, tag: &str) {
        let Some(staged) = self.staged.remove(tag) else {
            return;
        };
        let seq = self.next_seq;
        self.next_seq += 1;
        self.queue.push_back(QueuedChunk {
            seq,
            tag: tag.to_string(),
            records: staged.records,
            bytes: staged.bytes,
            retry: None,
            in_flight: false,
        });
    }

    /// What the output should do next: write the head of the queue (marked in flight,
    /// encoded as the Redis value with its enrichment), wait for its retry time, or idle.
    pub fn next_write(&mut self, now: Instant) -> NextWrite {
        let Some(chunk) = self.queue.front_mut() else {
            return NextWrite::Idle;
        };
        if let Some(retry) = &chunk.retry
            && retry.next > now
        {
            return NextWrite::WaitUntil(retry.next);
        }
        chunk.in_flight = true;
        let mut records = chunk.records.clone();
        if self.config.bugs.silent_record_loss && !self.silent_loss_struck && records.len() >= 2 {
            // Planted bug (`crate::bugs`): the first record never reaches Redis, yet the
            // whole chunk is released once written. No cause is recorded.
            self.silent_loss_struck = true;
            records.remove(0);
        }
        let value = LogChunk {
            tag: chunk.tag.clone(),
            environment: self.config.environment.clone(),
            region: self.config.region.clone(),
            records,
        }
        .encode();
        NextWrite::Write {
            seq: chunk.seq,
            key: self.config.route(&chunk.tag).to_string(),
            value,
            records: chunk.records.len(),
            retry: chunk.retry.clone(),
        }
    }

    /// The chunk `seq` is written: it leaves the buffer and its custody ends here.
    pub fn written(&mut self, seq: u64) {
        if let Some(index) = self.queue.iter().position(|chunk| chunk.seq == seq) {
            let chunk = self.queue.remove(index).expect("index from position");
            self.bytes -= chunk.bytes;
            self.ledger.release(&self.custodian, &chunk.ids());
        }
    }

    /// The chunk `seq` is given up with `cause`.
    pub fn give_up(&mut self, seq: u64, cause: &'static str) {
        if let Some(index) = self.queue.iter().position(|chunk| chunk.seq == seq) {
            let chunk = self.queue.remove(index).expect("index from position");
            self.bytes -= chunk.bytes;
            self.ledger
                .drop_records(&self.custodian, cause, &chunk.ids());
            self.host.record(
                "aggregator.drop",
                format!(
                    "chunk {} tag {} records {} cause {cause}",
                    chunk.seq,
                    chunk.tag,
                    chunk.records.len()
                ),
            );
        }
    }

    /// The chunk `seq` failed; `retry` is its schedule.
    pub fn failed(&mut self, seq: u64, retry: RetryState) {
        if let Some(chunk) = self.queue.iter_mut().find(|chunk| chunk.seq == seq) {
            chunk.in_flight = false;
            chunk.retry = Some(retry);
        }
    }
}
