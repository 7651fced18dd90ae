//! Fluentd's `<buffer>` (chunk key `tag`; buf_memory, or buf_file with `buffer_type =
//! "file"`), as Fluentd 1.19 `lib/fluent/plugin/buffer.rb` and `output.rb` run it
//! (FIDELITY.md "Aggregator — Fluentd"):
//!
//! - `write`: refused with `BufferOverflowError` unless `storable?` (`total_limit_size >
//!   stage_size + queue_size`); an admitted write is taken whole — so the buffer can pass its
//!   limit by one write, never more. `overflow_action` says what a refused write does next.
//! - `write_once`: a write that would take the tag's staged chunk past `chunk_limit_size`
//!   enqueues that chunk first and goes into a new one; a write larger than a chunk is cut
//!   into chunk-sized pieces (`write_step_by_step`), all but the last enqueued at once; a
//!   staged chunk at `chunk_full_threshold` (95 %) or more is enqueued.
//! - the flush timer (`enqueue_thread_run` → `enqueue_all`) enqueues staged chunks in the
//!   order they were created, but none while `queued_chunks_limit_size` chunks wait in the
//!   queue: while the output fails, the staged chunks grow and only full ones are queued.
//! - one retry state for the output (`@retry`), not per chunk: a success ends it; when it
//!   hits its limit, `clear_queue!` drops every queued chunk (staged ones stay).
//!
//! The limit in force is the configured one unless the harness's [`AggregatorControl`]
//! overrides it (the `backpressure` fault); every change of level is reported to the
//! buffer's gauge (`buffer_bytes`, judged by the `bounds` check).
//!
//! Custody: an accepted write is held — volatile for buf_memory (dies with the process),
//! `Written` for buf_file (no fsync: survives a kill, not a power loss). The output releases a
//! chunk once Redis has it, or drops it with a cause.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use tokio::time::Instant;

use crate::ledger::{Custodian, Durability, Ledger};
use crate::parts::log_chunk::LogChunk;
use crate::record::{LogRecord, RecordId};
use crate::world::HostCtx;

use crate::gauges::{Bound, GaugeHandle, GaugeSpec, Unit};
use crate::vocab::{EventKind, LossCause, Part};

use super::buffer_file::{self, FileState};
use super::config::{AggregatorConfig, BufferType, OverflowAction};
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
    /// The output is writing it (Fluentd's dequeued chunk): not in the queue's count, not
    /// to be dropped for room meanwhile.
    pub in_flight: bool,
    /// Its file (buf_file).
    file: Option<String>,
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
    Write { seq: u64, key: String, value: Vec<u8>, records: usize },
    /// The output waits for its retry.
    WaitUntil(Instant),
    /// The queue is empty.
    Idle,
}

/// A staged chunk still accepting records.
struct Staged {
    records: Vec<LogRecord>,
    bytes: u64,
    /// Its unique id: creation order (the stage's order) and file name.
    id: u64,
    /// Its file holds every write so far (buf_file; false after a failed write).
    on_file: bool,
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
    /// The next chunk's unique id.
    next_chunk_id: u64,
    /// The output's retry state while its writes fail (Fluentd's `@retry`).
    retry: Option<RetryState>,
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
            next_chunk_id: 0,
            retry: None,
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

    /// Chunks queued, the one being written included.
    pub(crate) fn queued_count(&self) -> usize {
        self.queue.len()
    }

    /// Fluentd's `queue_full?`: the queue (without the chunk being written, which Fluentd
    /// has dequeued) holds `queued_chunks_limit_size` chunks or more.
    fn queue_full(&self) -> bool {
        self.queue.iter().filter(|chunk| !chunk.in_flight).count() >= self.config.queued_chunks_limit_size
    }

    /// Whether the output is writing a chunk now.
    pub(crate) fn writing(&self) -> bool {
        self.queue.iter().any(|chunk| chunk.in_flight)
    }

    /// Whether the output is retrying (Fluentd's `@retry` is set).
    pub(crate) fn retrying(&self) -> bool {
        self.retry.is_some()
    }

    /// The output's retry state, if its writes fail.
    pub(crate) fn retry_state(&self) -> Option<RetryState> {
        self.retry.clone()
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
        let before = self.bytes;
        self.bytes += bytes;
        self.gauge.admit(before, self.bytes, limit);
        self.stage(tag, records, bytes);
        assert_buffer_bytes(self.bytes, &self.staged, &self.queue);
        Ok(())
    }

    /// `write_once` / `write_step_by_step`: the write goes into the tag's staged chunk,
    /// which is enqueued first if the write would take it past `chunk_limit_size`; a write
    /// larger than a chunk is cut into chunk-sized pieces (by its mean record size), each
    /// but the last enqueued as it fills.
    fn stage(&mut self, tag: &str, mut records: Vec<LogRecord>, bytes: u64) {
        let limit = self.config.chunk_bytes_limit;
        if self.staged.get(tag).is_some_and(|staged| staged.bytes > 0 && staged.bytes + bytes > limit) {
            self.enqueue(tag);
        }
        if bytes <= limit {
            self.append_piece(tag, records, bytes);
            return;
        }
        let per_record_bytes = (bytes / records.len() as u64).max(1);
        let per_piece = usize::try_from((limit / per_record_bytes).max(1)).unwrap_or(usize::MAX);
        let mut left_bytes = bytes;
        // Bounded: each pass takes at least one record.
        while !records.is_empty() {
            let rest = records.split_off(per_piece.min(records.len()));
            let piece_bytes = if rest.is_empty() { left_bytes } else { per_record_bytes * records.len() as u64 };
            left_bytes -= piece_bytes;
            let last = rest.is_empty();
            self.append_piece(tag, std::mem::replace(&mut records, rest), piece_bytes);
            if !last {
                self.enqueue(tag);
            }
        }
    }

    /// Appends one piece to the tag's staged chunk (created if absent), takes custody, and
    /// enqueues the chunk once it is full (`chunk_size_full?`).
    fn append_piece(&mut self, tag: &str, records: Vec<LogRecord>, bytes: u64) {
        let file = self.config.buffer_type == BufferType::File;
        if !self.staged.contains_key(tag) {
            let id = self.next_chunk_id;
            self.next_chunk_id += 1;
            self.staged.insert(tag.to_string(), Staged { records: Vec::new(), bytes: 0, id, on_file: file });
        }
        let staged = self.staged.get_mut(tag).expect("inserted above");
        let mut durability = Durability::Volatile;
        if staged.on_file {
            let path = buffer_file::chunk_path(staged.id, FileState::Staged);
            match self.host.disk().append(&path, &buffer_file::encode_frame(tag, &records, bytes)) {
                // No fsync (FileChunk writes with `sync = true`, Ruby's buffering only).
                Ok(()) => durability = Durability::Written,
                Err(full) => {
                    // The chunk goes on in memory only; its partial file must not be
                    // resumed later (its records would be written twice).
                    staged.on_file = false;
                    self.host.disk().remove(&path);
                    let held: Vec<RecordId> = staged.records.iter().map(|record| record.id).collect();
                    self.ledger.hold(&self.custodian, &held, Durability::Volatile);
                    self.host.record(EventKind::AggregatorBufferFile, format!("chunk stays in memory: {full}"));
                }
            }
        }
        let ids: Vec<RecordId> = records.iter().map(|record| record.id).collect();
        staged.records.extend(records);
        staged.bytes += bytes;
        let full = staged.bytes >= self.config.chunk_full_bytes();
        self.ledger.hold(&self.custodian, &ids, durability);
        if full {
            self.enqueue(tag);
        }
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
        self.drop_at(index, LossCause::AggregatorOverflow);
    }

    /// Removes queued chunk `index` and drops its records with `cause`.
    fn drop_at(&mut self, index: usize, cause: LossCause) {
        let chunk = self.queue.remove(index).expect("a queued chunk's index");
        self.bytes -= chunk.bytes;
        if let Some(path) = &chunk.file {
            self.host.disk().remove(path);
        }
        self.ledger.drop_records(&self.custodian, cause, &chunk.ids());
        self.host.record(
            EventKind::AggregatorDrop,
            format!("chunk {} tag {} records {} cause {cause}", chunk.seq, chunk.tag, chunk.records.len()),
        );
        self.report_level();
    }

    /// The flush timer's `enqueue_all`: staged chunks join the queue in creation order,
    /// stopping while the queue is full (`queued_chunks_limit_size`) unless `force`d
    /// (`flush_at_shutdown`).
    pub(crate) fn enqueue_all(&mut self, force: bool) {
        let mut order: Vec<(u64, String)> = self.staged.iter().map(|(tag, staged)| (staged.id, tag.clone())).collect();
        order.sort_unstable();
        for (_, tag) in order {
            if !force && self.queue_full() {
                return;
            }
            self.enqueue(&tag);
        }
    }

    /// `enqueue_chunk`: the tag's staged chunk joins the queue (its file renamed `.q`).
    fn enqueue(&mut self, tag: &str) {
        let Some(staged) = self.staged.remove(tag) else {
            return;
        };
        let mut file = None;
        if staged.on_file {
            match buffer_file::enqueue_file(self.host.disk(), staged.id) {
                Ok(path) => file = Some(path),
                Err(full) => {
                    let ids: Vec<RecordId> = staged.records.iter().map(|record| record.id).collect();
                    self.ledger.hold(&self.custodian, &ids, Durability::Volatile);
                    self.host.record(EventKind::AggregatorBufferFile, format!("queued chunk stays in memory: {full}"));
                }
            }
        }
        self.push_queued(tag.to_string(), staged.records, staged.bytes, file);
    }

    /// Appends a chunk to the queue under the next sequence number.
    fn push_queued(&mut self, tag: String, records: Vec<LogRecord>, bytes: u64, file: Option<String>) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.queue.push_back(QueuedChunk { seq, tag, records, bytes, in_flight: false, file });
    }

    /// What the output should do next: write the head of the queue (marked in flight,
    /// encoded as the Redis value with its enrichment), wait for the retry time, or idle.
    pub(crate) fn next_write(&mut self, now: Instant) -> NextWrite {
        if self.queue.is_empty() {
            return NextWrite::Idle;
        }
        if let Some(retry) = &self.retry
            && retry.next > now
        {
            return NextWrite::WaitUntil(retry.next);
        }
        let chunk = self.queue.front_mut().expect("not empty");
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
        }
    }

    /// The chunk `seq` is written: it leaves the buffer and its custody ends here; the
    /// retry state ends (`commit_write`).
    pub fn written(&mut self, seq: u64) {
        self.retry = None;
        if let Some(index) = self.queue.iter().position(|chunk| chunk.seq == seq) {
            let chunk = self.queue.remove(index).expect("index from position");
            self.bytes -= chunk.bytes;
            if let Some(path) = &chunk.file {
                self.host.disk().remove(path);
            }
            self.ledger.release(&self.custodian, &chunk.ids());
            self.report_level();
        }
    }

    /// The chunk `seq` failed and is back at the queue's head (`takeback_chunk`); `retry`
    /// is the output's new retry state.
    pub fn failed(&mut self, seq: u64, retry: RetryState) {
        if let Some(chunk) = self.queue.iter_mut().find(|chunk| chunk.seq == seq) {
            chunk.in_flight = false;
        }
        self.retry = Some(retry);
    }

    /// `handle_limit_reached` → `clear_queue!`: the retries are spent; every queued chunk
    /// (the failed one is back in the queue) is dropped with `cause`, and the retry state
    /// ends. Staged chunks stay. Returns the records dropped.
    pub(crate) fn clear_queue(&mut self, cause: LossCause) -> usize {
        self.retry = None;
        let mut dropped = 0;
        // Bounded: each pass removes one chunk.
        while !self.queue.is_empty() {
            dropped += self.queue[0].records.len();
            self.drop_at(0, cause);
        }
        dropped
    }

    /// `buf_file#resume`: loads the chunk files an earlier process left — `.q` files into
    /// the queue, `.b` files back into the stage (into the queue if full or if the tag is
    /// already staged) — in id order, holding their records `Written` again. Files that do
    /// not decode are recorded and removed.
    pub(crate) fn resume(&mut self) {
        if self.config.buffer_type != BufferType::File {
            return;
        }
        let disk = self.host.disk().clone();
        let mut files: Vec<(u64, FileState, String)> = disk
            .paths(buffer_file::BUFFER_DIR)
            .into_iter()
            .filter_map(|path| buffer_file::parse_path(&path).map(|(id, state)| (id, state, path)))
            .collect();
        files.sort_unstable_by_key(|(id, _, _)| *id);
        for (id, state, path) in files {
            self.next_chunk_id = self.next_chunk_id.max(id + 1);
            let content = buffer_file::decode_file(&disk.read(&path).unwrap_or_default());
            if content.records.is_empty() {
                self.host.record(EventKind::AggregatorBufferFile, format!("{path}: no readable records, removed"));
                disk.remove(&path);
                continue;
            }
            self.resume_chunk(id, state, path, content);
        }
        self.report_level();
    }

    /// Puts one resumed chunk back where its file says.
    fn resume_chunk(&mut self, id: u64, state: FileState, path: String, content: buffer_file::FileContent) {
        let ids: Vec<RecordId> = content.records.iter().map(|record| record.id).collect();
        self.ledger.hold(&self.custodian, &ids, Durability::Written);
        self.bytes += content.bytes;
        self.host.record(
            EventKind::AggregatorResume,
            format!(
                "{path} tag {} records {} bytes {}{}",
                content.tag,
                ids.len(),
                content.bytes,
                if content.torn { " (torn tail ignored)" } else { "" }
            ),
        );
        if content.torn {
            // What follows must not land behind the torn frame.
            let clean = buffer_file::encode_frame(&content.tag, &content.records, content.bytes);
            if let Err(full) = self.host.disk().replace(&path, &clean) {
                self.host.record(EventKind::AggregatorBufferFile, full.to_string());
            }
        }
        let full = content.bytes >= self.config.chunk_full_bytes();
        if state == FileState::Staged && !full && !self.staged.contains_key(&content.tag) {
            let staged = Staged { records: content.records, bytes: content.bytes, id, on_file: true };
            self.staged.insert(content.tag, staged);
            return;
        }
        let file = match state {
            FileState::Queued => Some(path),
            FileState::Staged => buffer_file::enqueue_file(self.host.disk(), id).ok(),
        };
        self.push_queued(content.tag, content.records, content.bytes, file);
    }

    /// The process exits (after its shutdown): what is only in memory is gone with it
    /// (cause `aggregator_crash_unpersisted`); chunks on file stay `Written` for the next
    /// start. Returns the records lost and the records left on file.
    pub(crate) fn exit(&mut self) -> (usize, usize) {
        let mut lost: Vec<RecordId> = Vec::new();
        let mut kept = 0;
        for staged in self.staged.values() {
            if staged.on_file {
                kept += staged.records.len();
            } else {
                lost.extend(staged.records.iter().map(|record| record.id));
            }
        }
        for chunk in &self.queue {
            if chunk.file.is_some() {
                kept += chunk.records.len();
            } else {
                lost.extend(chunk.ids());
            }
        }
        if !lost.is_empty() {
            self.ledger.drop_records(&self.custodian, LossCause::AggregatorCrashUnpersisted, &lost);
        }
        (lost.len(), kept)
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
        let staged =
            BTreeMap::from([("app".to_string(), Staged { records: Vec::new(), bytes: 40, id: 0, on_file: false })]);
        assert_buffer_bytes(40, &staged, &VecDeque::new());
        assert_buffer_bytes(41, &staged, &VecDeque::new());
    }
}
