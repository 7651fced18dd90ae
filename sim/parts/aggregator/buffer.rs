//! Fluentd's `<buffer>` (buf_memory, chunk key `tag`): records are written into the staged
//! chunk of their tag; a staged chunk is enqueued when it reaches `chunk_limit_size` or at
//! `flush_interval`; the output writes the queue's head. `total_limit_size` bounds staged
//! plus queued bytes the way Fluentd's `Buffer#write` does: a write is refused with
//! `BufferOverflowError` unless the buffer is `storable?` (`total_limit_size > stage_size +
//! queue_size`), and an admitted write is then taken whole — so the buffer can pass its
//! limit by one write (one Forward frame or in_http body), never more, and takes nothing
//! while at or over it. `overflow_action` says what a refused write does next.
//!
//! The limit in force is the configured one unless the harness's [`AggregatorControl`]
//! overrides it (the `backpressure` fault); every change of level is reported to the
//! buffer's gauge (`buffer_bytes`, judged by the `bounds` check).
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

use crate::gauges::{Bound, GaugeHandle, GaugeSpec, Unit};
use crate::vocab::{EventKind, LossCause, Part};

use super::config::{AggregatorConfig, OverflowAction};
use super::control::AggregatorControl;
use super::retry::RetryState;

/// The gauge's name: staged + queued bytes, against `total_limit_size`.
pub(crate) const GAUGE_BUFFER: &str = "buffer_bytes";

/// A chunk in the queue.
pub(crate) struct QueuedChunk {
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
pub(crate) enum NextWrite {
    /// RPUSH `value` to `key`.
    Write { seq: u64, key: String, value: Vec<u8>, records: usize, retry: Option<RetryState> },
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
pub(crate) struct Overflow {
    pub buffered_bytes: u64,
    pub(crate) incoming_bytes: u64,
    pub total_bytes_limit: u64,
}

impl std::fmt::Display for Overflow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "buffer space has too many data: {} bytes buffered, total_limit_size {} ({} bytes incoming refused)",
            self.buffered_bytes, self.total_bytes_limit, self.incoming_bytes
        )
    }
}

/// The buffer of one aggregator.
pub(crate) struct Buffer {
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
    /// The runtime override of `total_limit_size`.
    control: AggregatorControl,
    /// The limit last applied (an override, or the config's), to record each change once.
    applied_limit_bytes: u64,
    gauge: GaugeHandle,
}

impl Buffer {
    /// An empty buffer.
    pub fn new(
        host: HostCtx,
        ledger: Ledger,
        custodian: Custodian,
        config: Arc<AggregatorConfig>,
        control: AggregatorControl,
    ) -> Buffer {
        let limit = control.total_bytes_limit().unwrap_or(config.total_bytes_limit);
        let gauge = control.gauge(host.name(), GAUGE_BUFFER, Buffer::gauge_spec(&config, limit));
        if limit != config.total_bytes_limit {
            host.record(EventKind::AggregatorTotalLimit, format!("{limit} bytes (buffered 0)"));
        }
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
            control,
            applied_limit_bytes: limit,
            gauge,
        }
    }

    /// What the `bounds` check holds Fluentd's buffer to: refuse while not `storable?`
    /// (level ≥ limit), and one admitted write — at most the largest Forward frame or
    /// in_http body the inputs accept — past the limit.
    fn gauge_spec(config: &AggregatorConfig, limit: u64) -> GaugeSpec {
        let write_bytes_limit = config.frame_bytes_limit.max(config.http_body_bytes_limit) as u64;
        GaugeSpec {
            part: Part::Aggregator,
            limit_name: "total_limit_size",
            unit: Unit::Bytes,
            bound: Bound::Admission { admits_at_limit: false, overshoot_limit: Some(write_bytes_limit) },
            limit,
        }
    }

    /// The `total_limit_size` in force: the control's override, else the config's. A change
    /// is recorded (event `aggregator.total_limit`) and reported to the gauge once.
    pub fn total_bytes_limit(&mut self) -> u64 {
        let limit = self.control.total_bytes_limit().unwrap_or(self.config.total_bytes_limit);
        if limit != self.applied_limit_bytes {
            self.applied_limit_bytes = limit;
            self.host.record(EventKind::AggregatorTotalLimit, format!("{limit} bytes (buffered {})", self.bytes));
            self.gauge.level(self.bytes, limit);
        }
        limit
    }

    /// Fluentd's `storable?`: `total_limit_size > stage_size + queue_size`.
    fn storable(&self, limit: u64) -> bool {
        limit > self.bytes
    }

    /// Reports the level after something left the buffer.
    fn report_level(&mut self) {
        assert_buffer_bytes(self.bytes, &self.staged, &self.queue);
        let limit = self.total_bytes_limit();
        self.gauge.level(self.bytes, limit);
    }

    /// Chunks queued.
    pub(crate) fn queued_count(&self) -> usize {
        self.queue.len()
    }

    /// Writes `records` (of `bytes` encoded bytes) under `tag`. On success custody is taken.
    /// While the buffer is not `storable?`: `drop_oldest_chunk` discards the oldest queued
    /// chunk not being written (cause `aggregator_overflow`) and writes if that made it
    /// storable (Fluentd's `write_guard`: one `dequeue_chunk` + `purge_chunk`, then `raise
    /// unless storable?`, then `retry`); otherwise the overflow goes back to the input,
    /// which refuses (throw_exception) or waits for room (block).
    pub fn write(&mut self, tag: &str, records: Vec<LogRecord>, bytes: u64) -> Result<(), (Overflow, Vec<LogRecord>)> {
        if records.is_empty() {
            return Ok(());
        }
        let limit = self.total_bytes_limit();
        // Planted bug `aggregator_ignores_buffer_limit` (`crate::parts::bugs`): no `storable?`.
        let enforced = !self.config.bugs.aggregator_ignores_buffer_limit;
        if enforced && !self.storable(limit) && self.config.overflow_action == OverflowAction::DropOldestChunk {
            self.drop_oldest_chunk();
        }
        if enforced && !self.storable(limit) {
            let overflow = Overflow { buffered_bytes: self.bytes, incoming_bytes: bytes, total_bytes_limit: limit };
            return Err((overflow, records));
        }
        let ids: Vec<RecordId> = records.iter().map(|record| record.id).collect();
        self.ledger.hold(&self.custodian, &ids, Durability::Volatile);
        let before = self.bytes;
        self.bytes += bytes;
        self.gauge.admit(before, self.bytes, limit);
        let staged = self.staged.entry(tag.to_string()).or_insert_with(|| Staged { records: Vec::new(), bytes: 0 });
        staged.records.extend(records);
        staged.bytes += bytes;
        if staged.bytes >= self.config.chunk_bytes_limit {
            self.enqueue(tag);
        }
        assert_buffer_bytes(self.bytes, &self.staged, &self.queue);
        Ok(())
    }

    /// `drop_oldest_chunk`: the oldest queued chunk that is not being written is discarded
    /// (Fluentd's `dequeue_chunk` takes the queue's head; the chunk being written has left
    /// the queue). Nothing queued: nothing dropped ("no queued chunks to be dropped").
    fn drop_oldest_chunk(&mut self) {
        let Some(index) = self.queue.iter().position(|chunk| !chunk.in_flight) else {
            self.host.record(
                EventKind::AggregatorDropNone,
                "no queued chunks to be dropped for drop_oldest_chunk".to_string(),
            );
            return;
        };
        let chunk = self.queue.remove(index).expect("index from position");
        self.bytes -= chunk.bytes;
        self.ledger.drop_records(&self.custodian, LossCause::AggregatorOverflow, &chunk.ids());
        self.host.record(
            EventKind::AggregatorDrop,
            format!("chunk {} tag {} records {} cause aggregator_overflow", chunk.seq, chunk.tag, chunk.records.len()),
        );
        self.report_level();
    }

    /// Moves every staged chunk to the queue (the flush interval fired).
    pub(crate) fn enqueue_all(&mut self) {
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
    pub(crate) fn next_write(&mut self, now: Instant) -> NextWrite {
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
            // Planted bug (`crate::parts::bugs`): the first record never reaches Redis, yet the
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
            self.report_level();
        }
    }

    /// The chunk `seq` is given up with `cause`.
    pub(crate) fn give_up(&mut self, seq: u64, cause: LossCause) {
        if let Some(index) = self.queue.iter().position(|chunk| chunk.seq == seq) {
            let chunk = self.queue.remove(index).expect("index from position");
            self.bytes -= chunk.bytes;
            self.ledger.drop_records(&self.custodian, cause, &chunk.ids());
            self.host.record(
                EventKind::AggregatorDrop,
                format!("chunk {} tag {} records {} cause {cause}", chunk.seq, chunk.tag, chunk.records.len()),
            );
            self.report_level();
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

/// The buffer's byte book: `bytes` (Fluentd's `stage_size + queue_size`) is kept up to date
/// at every change in O(1) and must equal the bytes of every staged and queued chunk.
/// Checked against a recount in debug builds (O(chunks)) after writes and removals.
fn assert_buffer_bytes(bytes: u64, staged: &BTreeMap<String, Staged>, queue: &VecDeque<QueuedChunk>) {
    if cfg!(debug_assertions) {
        let recount = staged.values().map(|staged| staged.bytes).sum::<u64>()
            + queue.iter().map(|chunk| chunk.bytes).sum::<u64>();
        assert_eq!(bytes, recount, "aggregator buffer: bytes drifted from its staged and queued chunks");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A byte count that does not match the chunks (a lost decrement) is caught.
    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "bytes drifted from its staged and queued chunks")]
    fn a_byte_count_that_drifts_from_the_chunks_is_caught() {
        let staged = BTreeMap::from([("app".to_string(), Staged { records: Vec::new(), bytes: 40 })]);
        assert_buffer_bytes(40, &staged, &VecDeque::new());
        assert_buffer_bytes(41, &staged, &VecDeque::new());
    }
}
