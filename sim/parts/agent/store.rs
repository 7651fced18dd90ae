//! The agent's chunk store: the open chunk records are appended to, the sealed chunks
//! waiting to be sent (each encoded once as a PackedForward frame, kept for retries), and,
//! with filesystem storage, their files on the host's disk.
//!
//! Custody (ARCHITECTURE.md §4) is reported here, where it changes: taking records from the app,
//! a chunk becoming durable (its file synced), an ack, a drop.
//!
//! Buffer levels are reported here too, where they change: memory storage to the
//! `mem_buf_bytes` gauge (against `mem_buf_limit`, or the harness's runtime override from
//! [`AgentControl`]), filesystem storage with `storage.total_limit_size` to `storage_bytes`.
//!
//! Filesystem layout: one file per chunk, `agent/chunks/<seq:012>`, holding the chunk's
//! entries (`[time, record]` msgpack arrays back to back, the PackedForward stream). The
//! file is written as records arrive (chunkio's mmap: in the page cache, `Written`); when
//! the chunk is sealed for the flush, `storage.sync full` syncs it (`Durable`) and `normal`
//! does not (FIDELITY.md, Agent: storage.sync).

use std::collections::VecDeque;
use std::sync::Arc;

use base64::Engine;
use bytes::Bytes;
use rand::RngCore;
use rand_chacha::ChaCha8Rng;
use tokio::time::Instant;

use crate::ledger::{Custodian, Durability};
use crate::parts::PartCtx;
use crate::proto::forward::{EntryBatch, EventTime, Limits, Options, encode_packed_forward, parse_event_frame};
use crate::record::{LogRecord, RecordId};
use crate::vocab::{EventKind, LossCause, Part};

use crate::gauges::{Bound, GaugeHandle, GaugeSpec, Unit};

use super::config::{AgentConfig, StorageSync, StorageType};
use super::control::AgentControl;

/// The memory buffer's gauge: entry bytes of every chunk, against `mem_buf_limit`.
pub(crate) const GAUGE_MEM_BUF: &str = "mem_buf_bytes";
/// The filesystem buffer's gauge: entry bytes of every chunk, against `storage.total_limit_size`.
pub(crate) const GAUGE_STORAGE: &str = "storage_bytes";

/// Where chunk files live on the host's disk.
pub(crate) const CHUNKS_DIR: &str = "agent/chunks/";

/// The chunk being filled.
struct OpenChunk {
    seq: u64,
    batch: EntryBatch,
    ids: Vec<RecordId>,
    /// Entry bytes already written to the chunk file.
    written_bytes: usize,
}

/// A sealed chunk: its frame is final and is what every attempt sends.
pub(crate) struct Chunk {
    pub seq: u64,
    pub(crate) chunk_id: String,
    pub ids: Arc<Vec<RecordId>>,
    pub frame: Bytes,
    /// Entry bytes: what counts against the buffer limits.
    pub(crate) entries_bytes: usize,
    /// Failed attempts so far.
    pub failures: u32,
    /// Not to be sent before this instant (retry schedule).
    pub(crate) due: Instant,
    /// An attempt is under way: not to be dropped for room meanwhile.
    pub in_flight: bool,
}

/// A chunk to send now, marked in flight.
pub(crate) struct Send {
    pub seq: u64,
    pub chunk_id: String,
    pub frame: Bytes,
    pub records: usize,
    pub attempt: u32,
}

/// What the output should do next.
pub(crate) enum Next {
    /// Send this chunk now.
    Send(Send),
    /// Nothing is due before this instant.
    WaitUntil(Instant),
    /// Nothing to send.
    Idle,
}

/// The store of one agent.
pub(crate) struct Store {
    ctx: PartCtx,
    custodian: Custodian,
    app: Custodian,
    config: AgentConfig,
    tag: String,
    open: Option<OpenChunk>,
    sealed: VecDeque<Chunk>,
    /// Entry bytes of the open chunk plus every sealed one.
    buffered_bytes: u64,
    next_seq: u64,
    chunk_id_rng: ChaCha8Rng,
    /// The runtime `mem_buf_limit` override.
    control: AgentControl,
    /// The `mem_buf_limit` last applied, to record each change once.
    applied_mem_buf_bytes_limit: u64,
    mem_gauge: GaugeHandle,
    storage_gauge: GaugeHandle,
}

impl Store {
    /// An empty store; call [`Store::load`] for filesystem storage. `control` may override
    /// `mem_buf_limit` and receives the buffer's gauges.
    pub fn new(ctx: PartCtx, config: AgentConfig, tag: String, control: AgentControl) -> Store {
        let custodian = ctx.custodian(Part::Agent);
        let app = ctx.custodian(Part::App);
        let chunk_id_rng = ctx.host.rng("agent/chunk");
        let host = ctx.host.name().to_string();
        let mem_buf_bytes_limit = control.mem_buf_bytes_limit(&host).unwrap_or(config.mem_buf_bytes_limit);
        let mem_gauge = match config.storage {
            StorageType::Memory => control.gauge(
                &host,
                GAUGE_MEM_BUF,
                GaugeSpec {
                    part: Part::Agent,
                    limit_name: "mem_buf_limit",
                    unit: Unit::Bytes,
                    // The input pauses once the buffer reaches the limit; the append that
                    // crossed it is kept whole (Fluent Bit's docs: 700 KB + 500 KB under a
                    // 1 MB limit is allowed, then paused). One append here is one take of
                    // at most `take_records_max` records from the log pipe.
                    bound: Bound::Admission { admits_at_limit: false, overshoot_limit: None },
                    limit: mem_buf_bytes_limit,
                },
            ),
            StorageType::Filesystem => GaugeHandle::inert(),
        };
        let storage_gauge = match (config.storage, config.storage_total_bytes_limit) {
            (StorageType::Filesystem, Some(limit)) => control.gauge(
                &host,
                GAUGE_STORAGE,
                GaugeSpec {
                    part: Part::Agent,
                    limit_name: "storage.total_limit_size",
                    unit: Unit::Bytes,
                    bound: Bound::Discards,
                    limit,
                },
            ),
            _ => GaugeHandle::inert(),
        };
        if mem_buf_bytes_limit != config.mem_buf_bytes_limit {
            ctx.host.record(EventKind::AgentMemBufLimit, format!("{mem_buf_bytes_limit} bytes (buffered 0)"));
        }
        Store {
            ctx,
            custodian,
            app,
            config,
            tag,
            open: None,
            sealed: VecDeque::new(),
            buffered_bytes: 0,
            next_seq: 0,
            chunk_id_rng,
            control,
            applied_mem_buf_bytes_limit: mem_buf_bytes_limit,
            mem_gauge,
            storage_gauge,
        }
    }

    /// The `mem_buf_limit` in force: the control's override for this host, else the config's.
    pub fn mem_buf_bytes_limit(&self) -> u64 {
        self.control.mem_buf_bytes_limit(self.ctx.host.name()).unwrap_or(self.config.mem_buf_bytes_limit)
    }

    /// Applies a changed `mem_buf_limit` override: recorded (event `agent.mem_buf_limit`) and
    /// reported to the gauge once. Memory storage only (Fluent Bit ignores `mem_buf_limit`
    /// for filesystem storage).
    pub(crate) fn refresh_mem_buf_limit(&mut self) {
        if self.config.storage != StorageType::Memory {
            return;
        }
        let limit = self.mem_buf_bytes_limit();
        if limit != self.applied_mem_buf_bytes_limit {
            self.applied_mem_buf_bytes_limit = limit;
            self.ctx
                .host
                .record(EventKind::AgentMemBufLimit, format!("{limit} bytes (buffered {})", self.buffered_bytes));
            self.mem_gauge.level(self.buffered_bytes, limit);
        }
    }

    /// Reports the level after chunks left the buffer.
    fn report_level(&self) {
        assert_buffered_bytes(self.buffered_bytes, self.open.as_ref(), &self.sealed);
        match self.config.storage {
            StorageType::Memory => self.mem_gauge.level(self.buffered_bytes, self.mem_buf_bytes_limit()),
            StorageType::Filesystem => {
                if let Some(limit) = self.config.storage_total_bytes_limit {
                    self.storage_gauge.level(self.buffered_bytes, limit);
                }
            }
        }
    }

    /// Reports an append that took the level from `before` to the current level.
    fn report_append(&self, before: u64) {
        assert_buffered_bytes(self.buffered_bytes, self.open.as_ref(), &self.sealed);
        match self.config.storage {
            StorageType::Memory => self.mem_gauge.admit(before, self.buffered_bytes, self.mem_buf_bytes_limit()),
            StorageType::Filesystem => {
                let Some(limit) = self.config.storage_total_bytes_limit else { return };
                let discardable = if self.buffered_bytes > limit {
                    self.sealed.iter().filter(|chunk| !chunk.in_flight).map(|chunk| chunk.entries_bytes as u64).sum()
                } else {
                    0
                };
                self.storage_gauge.admit_discarding(before, self.buffered_bytes, limit, discardable);
            }
        }
    }

    /// Entry bytes buffered (open + sealed chunks).
    pub fn buffered_bytes(&self) -> u64 {
        self.buffered_bytes
    }

    /// Sealed chunks waiting.
    pub(crate) fn sealed_count(&self) -> usize {
        self.sealed.len()
    }

    /// Memory storage pauses the input at `mem_buf_limit` (Fluent Bit: "the input is paused
    /// when the buffered data reaches the limit; it resumes when data is flushed"), the limit
    /// in force being the control's override if there is one.
    pub(crate) fn input_paused(&self) -> bool {
        self.config.storage == StorageType::Memory && self.buffered_bytes >= self.mem_buf_bytes_limit()
    }

    fn filesystem(&self) -> bool {
        self.config.storage == StorageType::Filesystem
    }

    fn path(seq: u64) -> String {
        format!("{CHUNKS_DIR}{seq:012}")
    }

    /// Loads the chunks a previous incarnation left on disk (filesystem storage). They are
    /// sealed at once and sent first; their records are `Written` (a power loss may still
    /// take an unsynced file), `Durable` once `storage.sync full` syncs them.
    pub fn load(&mut self) {
        if !self.filesystem() {
            return;
        }
        let disk = self.ctx.host.disk().clone();
        for path in disk.paths(CHUNKS_DIR) {
            let seq = path[CHUNKS_DIR.len()..].parse::<u64>().ok();
            let Some(bytes) = disk.read(&path) else {
                continue;
            };
            match (seq, decode_entries(&self.tag, &bytes)) {
                (Some(seq), Ok((batch, ids))) => {
                    self.next_seq = self.next_seq.max(seq + 1);
                    // In the page cache at least (a kill kept it); `full` syncs it now.
                    self.ctx.ledger.hold(&self.custodian, &ids, Durability::Written);
                    self.sync_if_full(seq, &ids);
                    self.ctx.host.record(
                        EventKind::AgentLoad,
                        format!("chunk {seq} records {} bytes {}", ids.len(), bytes.len()),
                    );
                    self.buffered_bytes += batch.entries_bytes().len() as u64;
                    let chunk = self.seal_batch(seq, batch, ids);
                    self.sealed.push_back(chunk);
                }
                (_, Err(reason)) => {
                    // A file that does not decode holds nothing the ledger could name; say so.
                    self.ctx.host.record(EventKind::AgentLoadCorrupt, format!("{path}: {reason}"));
                    disk.remove(&path);
                }
                (None, Ok(_)) => {
                    self.ctx.host.record(EventKind::AgentLoadCorrupt, format!("{path}: not a chunk file name"));
                    disk.remove(&path);
                }
            }
        }
        self.report_level();
    }

    /// Takes `records` from the app into the open chunk: custody moves from the app to the
    /// agent — `Written` once the chunk file holds them (filesystem storage: the file is
    /// mmapped, so a write is in the kernel's page cache), `Volatile` in memory storage or
    /// when the disk is full. With `storage.total_limit_size`, room is made first by
    /// evicting the oldest chunks, and the records are refused when there is none
    /// ([`Store::make_room`]). Seals the chunk at its size target.
    pub fn append(&mut self, records: Vec<LogRecord>) {
        if records.is_empty() {
            return;
        }
        let before_append_bytes = self.buffered_bytes;
        let seq = self.open_chunk();
        let open = self.open.as_mut().expect("opened above");
        let (before_bytes, before_count, before_ids) =
            (open.batch.entries_bytes().len(), open.batch.len(), open.ids.len());
        let mut refused: Vec<RecordId> = Vec::new();
        for record in &records {
            let time = EventTime::from_unix_nanoseconds(record.time_unix_nano).unwrap_or_default();
            match open.batch.push(time, record) {
                Ok(()) => open.ids.push(record.id),
                Err(_) => refused.push(record.id),
            }
        }
        let grown_bytes = (open.batch.entries_bytes().len() - before_bytes) as u64;
        let all: Vec<RecordId> = records.iter().map(|record| record.id).collect();
        self.ctx.ledger.release(&self.app, &all);
        if !refused.is_empty() {
            // A record that cannot be encoded as a msgpack map is dropped by Fluent Bit's
            // parser too; name it.
            self.ctx.ledger.drop_records(&self.custodian, LossCause::AgentUnencodable, &refused);
        }
        self.buffered_bytes += grown_bytes;
        if !self.make_room(seq, grown_bytes) {
            let open = self.open.as_mut().expect("open");
            open.batch.truncate(before_count, before_bytes);
            let taken = open.ids.split_off(before_ids);
            self.buffered_bytes -= grown_bytes;
            self.refuse(seq, &taken, grown_bytes);
            self.report_append(before_append_bytes);
            return;
        }
        let taken = self.open.as_ref().expect("open").ids[before_ids..].to_vec();
        let durability = self.write_open(seq);
        self.ctx.ledger.hold(&self.custodian, &taken, durability);
        if self.open.as_ref().is_some_and(|open| open.batch.entries_bytes().len() >= self.config.chunk_bytes_target) {
            self.seal_open();
        }
        self.report_append(before_append_bytes);
    }

    /// The open chunk's seq, opening a new chunk if there is none.
    fn open_chunk(&mut self) -> u64 {
        if let Some(open) = &self.open {
            return open.seq;
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.open =
            Some(OpenChunk { seq, batch: EntryBatch::with_capacity(64 * 1024), ids: Vec::new(), written_bytes: 0 });
        seq
    }

    /// Writes what the open chunk holds beyond its file to the file (filesystem storage) and
    /// says how durable its records now are: `Written` (in the page cache: a kill keeps it,
    /// a power loss does not — chunkio writes into an mmap and syncs only when the chunk is
    /// locked, FIDELITY.md Agent: storage.sync), `Volatile` in memory or on a full disk.
    fn write_open(&mut self, seq: u64) -> Durability {
        if !self.filesystem() {
            return Durability::Volatile;
        }
        let open = self.open.as_mut().expect("open");
        let path = Self::path(seq);
        let delta = &open.batch.entries_bytes()[open.written_bytes..];
        match self.ctx.host.disk().append(&path, delta) {
            Ok(()) => {
                open.written_bytes = open.batch.entries_bytes().len();
                Durability::Written
            }
            Err(full) => {
                // The chunk stays in memory only (Fluent Bit keeps a chunk "up" in memory
                // when its file cannot grow); a crash loses it.
                self.ctx.host.record(EventKind::AgentDiskFull, full.to_string());
                Durability::Volatile
            }
        }
    }

    /// `storage.total_limit_size` before `incoming_bytes` of new data go into chunk `seq`
    /// (filesystem storage): if they would take the buffer past the limit, the oldest chunks
    /// not being sent are evicted until `incoming_bytes` are freed (cause
    /// `agent_storage_limit`); `false` when even that cannot free enough — the data is then
    /// refused, and what was evicted stays evicted. Fluent Bit 5.1 `src/flb_input_chunk.c`
    /// `flb_input_chunk_place_new_chunk` → `flb_input_chunk_find_space_new_data` →
    /// `flb_input_chunk_release_space` (FIDELITY.md, Agent: storage.total_limit_size).
    /// `buffered_bytes` already counts the incoming bytes (they sit in the open chunk).
    fn make_room(&mut self, seq: u64, incoming_bytes: u64) -> bool {
        let Some(limit) = self.config.storage_total_bytes_limit else { return true };
        if !self.filesystem() || self.buffered_bytes <= limit {
            return true;
        }
        let mut released_bytes = 0u64;
        // Bounded: each pass removes one chunk or ends.
        while released_bytes < incoming_bytes {
            let Some(index) = self.sealed.iter().position(|chunk| !chunk.in_flight && chunk.seq != seq) else {
                break;
            };
            let chunk = self.sealed.remove(index).expect("index from position");
            released_bytes += chunk.entries_bytes as u64;
            self.discard(chunk, LossCause::AgentStorageLimit);
        }
        released_bytes >= incoming_bytes
    }

    /// New data for chunk `seq` found no room under `storage.total_limit_size`: Fluent Bit
    /// returns no chunk to write into (`input_chunk_get`), the records are lost with cause
    /// `agent_storage_limit`, and a chunk created for them is destroyed.
    fn refuse(&mut self, seq: u64, ids: &[RecordId], bytes: u64) {
        if self.open.as_ref().is_some_and(|open| open.seq == seq && open.ids.is_empty()) {
            self.open = None;
            self.ctx.host.disk().remove(&Self::path(seq));
        }
        self.ctx.ledger.drop_records(&self.custodian, LossCause::AgentStorageLimit, ids);
        self.ctx.host.record(
            EventKind::AgentRefused,
            format!("chunk {seq} records {} bytes {bytes}: no room under storage.total_limit_size", ids.len()),
        );
    }

    /// Seals the open chunk (the flush timer fired or it reached its size): Fluent Bit locks
    /// it for the flush (`cio_chunk_lock`), which syncs its file — `msync(MS_SYNC)` with
    /// `storage.sync full` (the records are now `Durable`), `MS_ASYNC` with `normal`, which
    /// waits for nothing (they stay `Written`).
    pub(crate) fn seal_open(&mut self) {
        let Some(open) = self.open.take() else { return };
        if open.ids.is_empty() {
            return;
        }
        let OpenChunk { seq, batch, ids, written_bytes } = open;
        if self.filesystem() && written_bytes == batch.entries_bytes().len() {
            self.sync_if_full(seq, &ids);
        }
        let chunk = self.seal_batch(seq, batch, ids);
        self.ctx.host.record(
            EventKind::AgentFlush,
            format!("chunk {seq} id {} records {} bytes {}", chunk.chunk_id, chunk.ids.len(), chunk.entries_bytes),
        );
        self.sealed.push_back(chunk);
    }

    /// With `storage.sync full`, syncs chunk `seq`'s file: its records become `Durable`.
    fn sync_if_full(&self, seq: u64, ids: &[RecordId]) {
        if self.config.storage_sync == StorageSync::Full {
            self.ctx.host.disk().sync(&Self::path(seq));
            self.ctx.ledger.hold(&self.custodian, ids, Durability::Durable);
        }
    }

    /// Encodes a batch once into its PackedForward frame. With `Require_ack_response` the
    /// frame carries options `size` and `chunk` (the ack token); without it, out_forward
    /// sends no options at all (`send_options` off), so the server has nothing to ack
    /// (FIDELITY.md, Agent: require_ack).
    fn seal_batch(&mut self, seq: u64, batch: EntryBatch, ids: Vec<RecordId>) -> Chunk {
        let mut id_bytes = [0u8; 16];
        self.chunk_id_rng.fill_bytes(&mut id_bytes);
        let chunk_id = base64::engine::general_purpose::STANDARD.encode(id_bytes);
        let options = if self.config.require_ack {
            Options { size: Some(batch.len() as u64), chunk: Some(chunk_id.clone()), compressed: None }
        } else {
            Options { size: None, chunk: None, compressed: None }
        };
        let mut frame = Vec::with_capacity(batch.entries_bytes().len() + self.tag.len() + 64);
        encode_packed_forward(&mut frame, &self.tag, &batch, &options).expect("a sealed batch always frames");
        Chunk {
            seq,
            chunk_id,
            ids: Arc::new(ids),
            frame: Bytes::from(frame),
            entries_bytes: batch.entries_bytes().len(),
            failures: 0,
            due: Instant::now(), // determinism: ok (tokio time, simulated by turmoil)
            in_flight: false,
        }
    }

    /// Drops a chunk that is no longer in `sealed` for `cause`: its records, its file.
    fn discard(&mut self, chunk: Chunk, cause: LossCause) {
        self.buffered_bytes -= chunk.entries_bytes as u64;
        self.report_level();
        self.ctx.ledger.drop_records(&self.custodian, cause, &chunk.ids);
        if self.filesystem() {
            self.ctx.host.disk().remove(&Self::path(chunk.seq));
        }
        self.ctx.host.record(
            EventKind::AgentDrop,
            format!("chunk {} records {} cause {cause} after {} failures", chunk.seq, chunk.ids.len(), chunk.failures),
        );
    }

    /// The oldest due chunk to send, or when the next one falls due.
    pub fn next(&mut self, now: Instant) -> Next {
        let mut earliest: Option<Instant> = None;
        for chunk in self.sealed.iter_mut() {
            if chunk.in_flight {
                continue;
            }
            if chunk.due <= now {
                chunk.in_flight = true;
                return Next::Send(Send {
                    seq: chunk.seq,
                    chunk_id: chunk.chunk_id.clone(),
                    frame: chunk.frame.clone(),
                    records: chunk.ids.len(),
                    attempt: chunk.failures + 1,
                });
            }
            earliest = Some(earliest.map_or(chunk.due, |e| e.min(chunk.due)));
        }
        earliest.map_or(Next::Idle, Next::WaitUntil)
    }

    /// SIGTERM: every chunk waiting for its retry is due now (Fluent Bit 5.1
    /// `src/flb_engine.c` `flb_engine_reschedule_retries`, on `FLB_ENGINE_STOP`).
    pub(crate) fn retry_all_now(&mut self, now: Instant) {
        for chunk in self.sealed.iter_mut().filter(|chunk| !chunk.in_flight) {
            chunk.due = chunk.due.min(now);
        }
    }

    /// Chunks not yet delivered or dropped — sealed (waiting, retrying or in flight) and the
    /// open one if it holds records: what Fluent Bit's shutdown counts as pending.
    pub(crate) fn pending_count(&self) -> usize {
        self.sealed.len() + usize::from(self.open.as_ref().is_some_and(|open| !open.ids.is_empty()))
    }

    /// The agent exits after SIGTERM: chunks in memory are gone with the process (cause
    /// `agent_grace_expired`); chunk files stay on disk for the next start. Returns the
    /// records lost.
    pub(crate) fn exit(&mut self) -> usize {
        if self.filesystem() {
            return 0;
        }
        let mut ids: Vec<RecordId> = self.open.take().map(|open| open.ids).unwrap_or_default();
        for chunk in self.sealed.drain(..) {
            ids.extend(chunk.ids.iter().copied());
        }
        self.buffered_bytes = 0;
        self.report_level();
        self.ctx.ledger.drop_records(&self.custodian, LossCause::AgentGraceExpired, &ids);
        ids.len()
    }

    /// The chunk is done: the next hop acked it, or — acks off — it was written to the
    /// socket, which out_forward counts as delivered (FIDELITY.md, Agent: require_ack).
    /// Custody ends here; an unacked write is recorded as such, so records the next hop
    /// never took are lost with cause [`LossCause::AgentUnackedWrite`] at this agent, not silently.
    pub fn delivered(&mut self, seq: u64, acked: bool) {
        let Some(index) = self.sealed.iter().position(|chunk| chunk.seq == seq) else {
            return;
        };
        let chunk = self.sealed.remove(index).expect("index from position");
        self.buffered_bytes -= chunk.entries_bytes as u64;
        self.report_level();
        if acked {
            self.ctx.ledger.release(&self.custodian, &chunk.ids);
        } else {
            self.ctx.ledger.release_unacked(&self.custodian, LossCause::AgentUnackedWrite, &chunk.ids);
        }
        if self.filesystem() {
            self.ctx.host.disk().remove(&Self::path(chunk.seq));
        }
    }

    /// An attempt failed. Schedules the retry by Fluent Bit's backoff, or discards the chunk
    /// when `Retry_Limit` is spent (cause `give_up_cause`). Returns the wait, if retried.
    pub fn failed(
        &mut self,
        seq: u64,
        give_up_cause: LossCause,
        now: Instant,
        rng: &mut ChaCha8Rng,
    ) -> Option<std::time::Duration> {
        let index = self.sealed.iter().position(|chunk| chunk.seq == seq)?;
        let chunk = &mut self.sealed[index];
        chunk.in_flight = false;
        chunk.failures += 1;
        // Planted bug `agent_no_retry` (`crate::parts::bugs`): give up at the first failure.
        if self.config.retry_limit.allows_retry(chunk.failures) && !self.config.bugs.agent_no_retry {
            let wait = super::backoff::retry_wait(
                self.config.scheduler_base_secs,
                self.config.scheduler_cap_secs,
                chunk.failures,
                rng,
            );
            chunk.due = now + wait;
            return Some(wait);
        }
        let chunk = self.sealed.remove(index).expect("index from position");
        self.discard(chunk, give_up_cause);
        None
    }
}

/// The store's byte book: `buffered_bytes` is kept up to date at every change (O(1)), and
/// must equal the entry bytes of the open chunk plus every sealed one. Checked against a
/// recount in debug builds (O(chunks), so release runs stay fast) wherever a gauge is told.
fn assert_buffered_bytes(buffered_bytes: u64, open: Option<&OpenChunk>, sealed: &VecDeque<Chunk>) {
    if cfg!(debug_assertions) {
        let open_bytes = open.map_or(0, |open| open.batch.entries_bytes().len() as u64);
        let recount = open_bytes + sealed.iter().map(|chunk| chunk.entries_bytes as u64).sum::<u64>();
        assert_eq!(buffered_bytes, recount, "agent store: buffered_bytes drifted from its chunks' entry bytes");
    }
}

/// Reads a chunk file's entries back into a batch and the record ids it holds.
fn decode_entries(tag: &str, entries: &[u8]) -> Result<(EntryBatch, Vec<RecordId>), String> {
    let mut frame = Vec::with_capacity(entries.len() + tag.len() + 16);
    rmp::encode::write_array_len(&mut frame, 2).map_err(|e| e.to_string())?;
    rmp::encode::write_str(&mut frame, tag).map_err(|e| e.to_string())?;
    rmp::encode::write_bin(&mut frame, entries).map_err(|e| e.to_string())?;
    let limits = Limits::with_frame_bytes_limit(frame.len().max(1));
    let frame = parse_event_frame(&Bytes::from(frame), &limits).map_err(|e| e.to_string())?;
    let mut batch = EntryBatch::with_capacity(entries.len());
    let mut ids = Vec::with_capacity(frame.entries.len());
    for entry in &frame.entries {
        let record: LogRecord = entry.deserialize_record().map_err(|e| e.to_string())?;
        batch.push_raw(entry.time, &entry.record).map_err(|e| e.to_string())?;
        ids.push(record.id);
    }
    Ok((batch, ids))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A byte count that does not match the chunks (a lost decrement) is caught.
    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "buffered_bytes drifted from its chunks' entry bytes")]
    fn a_byte_count_that_drifts_from_the_chunks_is_caught() {
        let open = OpenChunk { seq: 0, batch: EntryBatch::with_capacity(0), ids: Vec::new(), written_bytes: 0 };
        assert_buffered_bytes(0, Some(&open), &VecDeque::new());
        assert_buffered_bytes(5, Some(&open), &VecDeque::new());
    }
}
