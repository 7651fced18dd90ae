//! The delivery ledger: what the app emitted, who holds each record now, what was dropped
//! and why, and what Dash0 stored, all as compact per-source range sets.
//!
//! Why custody and not only "emitted minus delivered": a loss is only actionable with its
//! cause. Each part reports, per batch, when it takes custody of records (volatile or
//! durable), when it hands them on (the next hop acknowledged), and when it drops them with
//! a reason. A host lost turns what did not survive into `<part>_crash_unpersisted`: a
//! killed process loses its memory, a power loss also what the kernel had not yet synced.
//! A part that hands records on without waiting for the next hop's acknowledgement (Fluent
//! Bit without `Require_ack_response`) releases them as an *unacked write* with a cause: if
//! no later custodian ever holds them, they are lost with that cause at that part — a loss
//! the real component really makes, which a scenario may accept. At the end every emitted
//! record is delivered once, duplicated, lost with its last drop's cause, still held
//! somewhere (in flight), or lost silently — which always fails: it means a part of the
//! harness lost records without saying so (README, "Set-up": how losses are named).
//!
//! Every record also knows where it was born (the host of its source, see
//! [`Ledger::register_source`]), so a loss names that host as well as the custodian where
//! the record died.

mod catch_up;
pub(crate) mod curve;
mod range_set;
pub mod sample;
pub mod timeline;

pub use catch_up::CatchUp;
pub use range_set::RangeSet;
pub use sample::{EmitMarks, LatencySample, Undelivered};

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use std::sync::{Arc, Mutex};

use crate::record::{RecordId, SourceId};
use crate::vocab::pipeline::custody_rank;
use crate::vocab::{LossCause, Part, Signal};
pub use crate::world::HostLoss;
use timeline::{Timeline, TimelineRecorder};

/// Whether a holding survives its process's death or its host's power loss.
///
/// Why three levels: a killed process (SIGKILL, Railway's restart after its draining time)
/// loses its memory, but what it had `write()`n is in the kernel's page cache and reaches
/// the disk anyway; only a power loss takes writes that were never fsynced (FIDELITY.md
/// "Hosts").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// In the process's memory: lost when the process dies.
    Volatile,
    /// Written to the kernel (page cache, not fsynced): survives the process, not a power loss.
    Written,
    /// On (simulated) disk and synced: survives a power loss.
    Durable,
}

/// Who holds what: one custodian is one part on one host.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Custodian {
    pub part: Part,
    pub host: Arc<str>,
}

impl fmt::Display for Custodian {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.part, self.host)
    }
}

/// One source's registration and emitted range.
#[derive(Clone, Debug)]
struct SourceEntry {
    name: String,
    /// The host the source runs on: where its records were born.
    born_host: Arc<str>,
    signal: Signal,
    /// Records 0..emitted_count were emitted (sources number without gaps).
    emitted_count: u64,
    /// (first seq, true emit time) per emission call: the emit time of any record is that
    /// of the last entry whose first seq is ≤ its seq. One entry per call, not per record.
    emit_times: Vec<(u64, u64)>,
}

/// Per-source sets of one kind.
type PerSource = BTreeMap<SourceId, RangeSet>;

#[derive(Default)]
struct Holdings {
    volatile: PerSource,
    written: PerSource,
    durable: PerSource,
    /// Records held now (volatile + written + durable), and the most ever held at once.
    held_count: u64,
    peak_count: u64,
    /// Everything this custodian ever released (handed on): a record neither delivered,
    /// held nor dropped was lost silently after its last custodian released it (ARCHITECTURE.md
    /// §4: "a lost record's cause is its last custodian's"). Ranges stay few: each source's
    /// records pass a custodian mostly in order.
    released: PerSource,
}

impl Holdings {
    /// The records held, counted from the sets: what `held_count` must equal.
    fn recount(&self) -> u64 {
        self.volatile.values().chain(self.written.values()).chain(self.durable.values()).map(RangeSet::len).sum()
    }

    /// Checks the running count against a recount (debug builds: O(sources) per call) and
    /// the peak against the count (always: O(1)).
    fn assert_books(&self) {
        debug_assert_eq!(self.held_count, self.recount(), "ledger: a custodian's held_count drifted from its sets");
        assert!(
            self.held_count <= self.peak_count,
            "ledger: held {} above the peak {}",
            self.held_count,
            self.peak_count
        );
    }

    /// Removes `range` of `source` from both holdings; returns how many were held.
    fn remove(&mut self, source: SourceId, range: Range<u64>) -> u64 {
        let mut removed = 0;
        for sets in [&mut self.volatile, &mut self.written, &mut self.durable] {
            if let Some(set) = sets.get_mut(&source) {
                removed += set.remove(range.clone());
            }
        }
        assert!(removed <= self.held_count, "a custodian cannot release more than it holds");
        self.held_count -= removed;
        removed
    }
}

#[derive(Default)]
struct LedgerInner {
    sources: Vec<SourceEntry>,
    holdings: BTreeMap<Custodian, Holdings>,
    /// Latest drop per record: (cause, custodian) → ids. A record is in at most one set.
    dropped: BTreeMap<(LossCause, Custodian), PerSource>,
    /// Records written on without an acknowledgement and not held by anyone since:
    /// (cause, writer) → ids. A record is in at most one set; a later `hold` or drop of it
    /// anywhere takes it out (it reached a next hop, or its latest fate is that drop).
    unacked: BTreeMap<(LossCause, Custodian), PerSource>,
    delivered: PerSource,
    /// Emit → Dash0 latency of first deliveries, in microseconds, per signal.
    latency: BTreeMap<Signal, hdrhistogram::Histogram<u64>>,
    /// When each second's records arrived, per signal (recovery times).
    catch_up: BTreeMap<Signal, CatchUp>,
    /// A bounded sample of delivered batches per signal, by emit time (the report's scatter).
    latency_sample: BTreeMap<Signal, LatencySample>,
    /// Extra deliveries beyond the first, per record (rare; only duplicates are listed).
    duplicates: BTreeMap<RecordId, u32>,
    /// Latency, deliveries and held records per 10 s window, for reports.
    timeline: TimelineRecorder,
    /// Live mode (`obsim serve`): records of sources this ledger never saw emitted come from
    /// outside (real clients, a test's encoder) and are not accounted at delivery, where a
    /// run's ledger fails its books on them.
    foreign_sources_ignored: bool,
}

/// The shared ledger of one run. Cloning shares it.
#[derive(Clone, Default)]
pub struct Ledger {
    inner: Arc<Mutex<LedgerInner>>,
}

/// Groups ids into per-source runs of consecutive sequence numbers, calling `f` per run:
/// batches mostly hold consecutive records, so this turns N ids into a few ranges.
fn for_each_run(ids: &[RecordId], mut f: impl FnMut(SourceId, Range<u64>)) {
    let mut index = 0;
    while index < ids.len() {
        let first = ids[index];
        let mut end = first.seq + 1;
        index += 1;
        while index < ids.len() && ids[index].source == first.source && ids[index].seq == end {
            end += 1;
            index += 1;
        }
        f(first.source, first.seq..end);
    }
}

impl Ledger {
    /// An empty ledger.
    pub fn new() -> Self {
        Ledger::default()
    }

    /// The ledger of a live run (`obsim serve`): no app emits, so the records the parts
    /// carry are foreign to it; custody is still kept (a summary reads it), deliveries of
    /// foreign records are not accounted.
    pub fn live() -> Self {
        let ledger = Ledger::default();
        ledger.lock().foreign_sources_ignored = true;
        ledger
    }

    /// Registers an emitter; sources are numbered in registration order, which the world
    /// keeps deterministic. Names follow `<host>#<incarnation>/<stream>` (the app's
    /// convention): the part before the first `#` or `/` is the host the records are born
    /// on, which every loss names (a name without either is a host name by itself).
    pub fn register_source(&self, name: &str, signal: Signal) -> SourceId {
        let mut inner = self.lock();
        let id = SourceId(u32::try_from(inner.sources.len()).expect("fewer than 2^32 sources"));
        let born_host = Arc::from(born_host_of(name));
        inner.sources.push(SourceEntry {
            name: name.to_string(),
            born_host,
            signal,
            emitted_count: 0,
            emit_times: Vec::new(),
        });
        id
    }

    /// The host where `source`'s records are born, for messages.
    pub fn born_host(&self, source: SourceId) -> Option<Arc<str>> {
        self.lock().sources.get(source.0 as usize).map(|entry| Arc::clone(&entry.born_host))
    }

    /// The app emitted the next `count` records of `source` at true time `true_nanos`;
    /// returns the first seq. The app then holds them (volatile) until its pipe hands them on.
    pub fn emit(&self, source: SourceId, count: u64, true_nanos: u64) -> u64 {
        let mut inner = self.lock();
        let entry = &mut inner.sources[source.0 as usize];
        let first = entry.emitted_count;
        entry.emitted_count += count;
        if entry.emit_times.last().is_none_or(|&(_, last_nanos)| last_nanos != true_nanos) {
            entry.emit_times.push((first, true_nanos));
        }
        first
    }

    /// How many records `source` has emitted so far.
    pub fn emitted_count(&self, source: SourceId) -> u64 {
        self.lock().sources.get(source.0 as usize).map_or(0, |entry| entry.emitted_count)
    }

    /// True time at which record `id` was emitted, if it was.
    #[cfg(test)]
    pub(crate) fn emitted_true_nanos(&self, id: RecordId) -> Option<u64> {
        let inner = self.lock();
        emit_time(inner.sources.get(id.source.0 as usize)?, id.seq)
    }

    /// `custodian` now holds `ids` with the given durability.
    pub fn hold(&self, custodian: &Custodian, ids: &[RecordId], durability: Durability) {
        let mut guard = self.lock();
        let inner = &mut *guard;
        // Held again: whatever was written to this hop without an ack reached it.
        forget_in(&mut inner.unacked, None, ids);
        let holdings = inner.holdings.entry(custodian.clone()).or_default();
        let before = holdings.held_count;
        for_each_run(ids, |source, range| {
            let Holdings { volatile, written, durable, .. } = &mut *holdings;
            let (add, others) = match durability {
                Durability::Volatile => (volatile, [written, durable]),
                Durability::Written => (written, [volatile, durable]),
                Durability::Durable => (durable, [volatile, written]),
            };
            let moved: u64 =
                others.into_iter().map(|other| other.get_mut(&source).map_or(0, |set| set.remove(range.clone()))).sum();
            let added = add.entry(source).or_default().insert(range);
            holdings.held_count = holdings.held_count + added - moved;
        });
        holdings.peak_count = holdings.peak_count.max(holdings.held_count);
        holdings.assert_books();
        let after = holdings.held_count;
        inner.timeline.held_changed(custodian.part, after.saturating_sub(before), before.saturating_sub(after));
    }

    /// `custodian` handed `ids` on (the next hop acknowledged them) or no longer holds them.
    pub fn release(&self, custodian: &Custodian, ids: &[RecordId]) {
        let mut guard = self.lock();
        let inner = &mut *guard;
        let Some(holdings) = inner.holdings.get_mut(custodian) else { return };
        let mut removed = 0;
        for_each_run(ids, |source, range| {
            let taken = holdings.remove(source, range.clone());
            if taken > 0 {
                holdings.released.entry(source).or_default().insert(range);
            }
            removed += taken;
        });
        holdings.assert_books();
        inner.timeline.held_changed(custodian.part, 0, removed);
    }

    /// `custodian` wrote `ids` on without waiting for an acknowledgement (Fluent Bit's
    /// out_forward without `Require_ack_response`): it no longer holds them, and unless a
    /// later custodian holds them they are lost with `cause` at `custodian` — the loss an ack
    /// would have turned into a retry. Not a silent loss: the writer chose not to know.
    pub(crate) fn release_unacked(&self, custodian: &Custodian, cause: LossCause, ids: &[RecordId]) {
        self.release(custodian, ids);
        let mut guard = self.lock();
        let inner = &mut *guard;
        let key = (cause, custodian.clone());
        // The write is now the latest thing that happened to them: an earlier drop or
        // unacked write elsewhere no longer names their fate.
        forget_in(&mut inner.dropped, None, ids);
        forget_in(&mut inner.unacked, Some(&key), ids);
        let sets = inner.unacked.entry(key).or_default();
        for_each_run(ids, |source, range| {
            sets.entry(source).or_default().insert(range);
        });
    }

    /// `custodian` dropped `ids` for `cause` (e.g. `agent_retry_limit`). It no longer holds
    /// them, and `cause` becomes their latest drop.
    pub fn drop_records(&self, custodian: &Custodian, cause: LossCause, ids: &[RecordId]) {
        let mut guard = self.lock();
        let inner = &mut *guard;
        forget_in(&mut inner.unacked, None, ids);
        if let Some(holdings) = inner.holdings.get_mut(custodian) {
            let mut removed = 0;
            for_each_run(ids, |source, range| {
                removed += holdings.remove(source, range);
            });
            inner.timeline.held_changed(custodian.part, 0, removed);
        }
        let key = (cause, custodian.clone());
        for_each_run(ids, |source, range| {
            for (other_key, sets) in inner.dropped.iter_mut() {
                if *other_key != key
                    && let Some(set) = sets.get_mut(&source)
                {
                    set.remove(range.clone());
                }
            }
            inner.dropped.entry(key.clone()).or_default().entry(source).or_default().insert(range);
        });
    }

    /// `host` lost what did not survive `loss`: memory on a process death, memory and
    /// unsynced writes on a power loss. Each part's lost holdings get its `_crash_unpersisted`
    /// cause; the rest stay held.
    pub fn host_lost(&self, host: &str, loss: HostLoss) {
        let lost: Vec<(Custodian, PerSource)> = {
            let mut guard = self.lock();
            let LedgerInner { holdings, timeline, .. } = &mut *guard;
            holdings
                .iter_mut()
                .filter(|(custodian, _)| &*custodian.host == host)
                .map(|(custodian, holdings)| {
                    let mut lost = std::mem::take(&mut holdings.volatile);
                    if loss == HostLoss::Power {
                        for (source, set) in std::mem::take(&mut holdings.written) {
                            let into = lost.entry(source).or_default();
                            for range in set.ranges() {
                                into.insert(range);
                            }
                        }
                    }
                    let lost_count = lost.values().map(RangeSet::len).sum::<u64>();
                    holdings.held_count -= lost_count;
                    timeline.held_changed(custodian.part, 0, lost_count);
                    (custodian.clone(), lost)
                })
                .collect()
        };
        for (custodian, sets) in lost {
            let ids: Vec<RecordId> = sets
                .iter()
                .flat_map(|(&source, set)| set.ranges().flat_map(move |r| r.map(move |seq| RecordId { source, seq })))
                .collect();
            self.drop_records(&custodian, custodian.part.crash_cause(), &ids);
        }
    }

    /// Dash0 stored `ids` at true time `true_nanos`. A record stored twice is a duplicate;
    /// a first delivery adds its emit → store latency to the signal's histogram and to the
    /// timeline's window of `true_nanos`.
    ///
    /// Hot path (every batch Dash0 stores): no allocation but a new source's first set or a
    /// new timeline window; work per run of consecutive ids and per emission call inside it,
    /// never per record.
    pub fn deliver(&self, ids: &[RecordId], true_nanos: u64) {
        let mut guard = self.lock();
        let LedgerInner {
            sources,
            delivered,
            duplicates,
            latency,
            catch_up,
            latency_sample,
            timeline,
            foreign_sources_ignored,
            ..
        } = &mut *guard;
        for_each_run(ids, |source, range| {
            if *foreign_sources_ignored && sources.get(source.0 as usize).is_none_or(|e| range.end > e.emitted_count) {
                return;
            }
            let entry = &sources[source.0 as usize];
            assert!(range.end <= entry.emitted_count, "delivered {source:?}:{range:?} was never emitted");
            let histogram = latency.entry(entry.signal).or_insert_with(new_latency_histogram);
            let catch_up = catch_up.entry(entry.signal).or_default();
            let sample = latency_sample.entry(entry.signal).or_default();
            let set = delivered.entry(source).or_default();
            // Latency per first delivery: walk the emission calls the run spans (each has one
            // emit time) and count the records of each not delivered before.
            let mut start = range.start;
            let mut index = entry.emit_times.partition_point(|&(first, _)| first <= start);
            assert!(index > 0, "an emitted record has an emit time");
            index -= 1;
            while start < range.end {
                let (_, emitted_nanos) = entry.emit_times[index];
                let segment_end =
                    entry.emit_times.get(index + 1).map_or(entry.emitted_count, |&(first, _)| first).min(range.end);
                index += 1;
                if segment_end <= start {
                    continue; // an emission of 0 records shares its first seq with the next
                }
                let first_deliveries = (segment_end - start) - set.count_in(start..segment_end);
                if first_deliveries > 0 {
                    let latency_micros = (true_nanos.saturating_sub(emitted_nanos) / 1_000).max(1);
                    histogram.saturating_record_n(latency_micros, first_deliveries);
                    timeline.delivered(entry.signal, true_nanos, latency_micros, first_deliveries);
                    catch_up.record(emitted_nanos, true_nanos);
                    sample.record(emitted_nanos, true_nanos, latency_micros, first_deliveries);
                }
                start = segment_end;
            }
            if set.count_in(range.clone()) > 0 {
                // Repeats are rare: only then look at records one by one.
                for seq in range.clone() {
                    if set.contains(seq) {
                        *duplicates.entry(RecordId { source, seq }).or_default() += 1;
                    }
                }
            }
            set.insert(range);
        });
    }

    /// Accounts for every emitted record: the ledger's verdict input. Asserts the ledger's
    /// conservation law on the result ([`Accounting::assert_conserved`]), so every run and
    /// every test that accounts checks it.
    pub fn account(&self) -> Accounting {
        let inner = self.lock();
        let mut accounting = Accounting::default();
        for (index, entry) in inner.sources.iter().enumerate() {
            let source = SourceId(index as u32);
            let missing = account_source(&inner, &mut accounting, source, entry);
            if !missing.is_empty() {
                account_silent_losses(&inner, &mut accounting, source, entry, missing);
            }
        }
        for (id, &extra) in &inner.duplicates {
            let signal = inner.sources[id.source.0 as usize].signal;
            let totals = accounting.totals.entry(signal).or_default();
            totals.duplicated += 1;
            totals.duplicate_deliveries += u64::from(extra);
            if totals.duplicate_examples.len() < EXAMPLES_LIMIT {
                totals.duplicate_examples.push(*id);
            }
        }
        accounting.assert_conserved();
        accounting
    }

    /// Per custodian: the records it holds now and the most it ever held at once.
    pub fn occupancy(&self) -> BTreeMap<Custodian, Occupancy> {
        self.lock()
            .holdings
            .iter()
            .map(|(custodian, holdings)| {
                (custodian.clone(), Occupancy { held_count: holdings.held_count, peak_count: holdings.peak_count })
            })
            .collect()
    }

    /// When `signal`'s records of each emit second first reached Dash0.
    pub fn catch_up(&self, signal: Signal) -> CatchUp {
        self.lock().catch_up.get(&signal).cloned().unwrap_or_default()
    }

    /// The emit → Dash0 latency histogram (microseconds) of `signal`'s first deliveries.
    pub fn latency_micros(&self, signal: Signal) -> hdrhistogram::Histogram<u64> {
        self.lock().latency.get(&signal).cloned().unwrap_or_else(new_latency_histogram)
    }

    /// The bounded sample of `signal`'s delivered batches (`sample`), by emit time.
    pub fn latency_sample(&self, signal: Signal) -> LatencySample {
        self.lock().latency_sample.get(&signal).cloned().unwrap_or_default()
    }

    /// The run's time series so far (latency and deliveries per window, held records per
    /// part), over at least `windows_count` windows.
    pub fn timeline(&self, windows_count: usize) -> Timeline {
        self.lock().timeline.finish(windows_count)
    }

    /// The registered name of a source, for messages.
    pub fn source_name(&self, source: SourceId) -> Option<String> {
        self.lock().sources.get(source.0 as usize).map(|entry| entry.name.clone())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LedgerInner> {
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The host a source's records are born on: its name up to the first `#` or `/`.
fn born_host_of(source_name: &str) -> &str {
    source_name.split(['#', '/']).next().unwrap_or(source_name)
}

/// Takes `ids` out of every set of `map` but `except`'s: their latest fate is elsewhere.
/// Work per run of consecutive ids and per key (a few: one per custodian that drops or
/// writes without ack); nothing when the map is empty.
fn forget_in<K: Ord>(map: &mut BTreeMap<K, PerSource>, except: Option<&K>, ids: &[RecordId]) {
    if map.is_empty() {
        return;
    }
    for_each_run(ids, |source, range| {
        for (key, sets) in map.iter_mut() {
            if except == Some(key) {
                continue;
            }
            if let Some(set) = sets.get_mut(&source) {
                set.remove(range.clone());
            }
        }
    });
}

/// Counts one source's emitted records as delivered, in flight or lost with a cause, and
/// returns those that met none of these fates (lost silently). (A delivery of a record the
/// source never emitted is refused when it is delivered, by [`Ledger::deliver`].)
fn account_source(inner: &LedgerInner, accounting: &mut Accounting, source: SourceId, entry: &SourceEntry) -> RangeSet {
    let totals = accounting.totals.entry(entry.signal).or_default();
    totals.emitted += entry.emitted_count;
    let mut missing = RangeSet::new();
    missing.insert(0..entry.emitted_count);
    if let Some(delivered) = inner.delivered.get(&source) {
        for range in delivered.ranges() {
            totals.delivered += missing.remove(range);
        }
    }
    let held = inner.holdings.iter().flat_map(|(custodian, holdings)| {
        [&holdings.volatile, &holdings.written, &holdings.durable]
            .into_iter()
            .filter_map(move |sets| sets.get(&source).map(|set| (Outcome::InFlight(custodian.clone()), set)))
    });
    let lost = inner.dropped.iter().chain(inner.unacked.iter()).filter_map(|((cause, custodian), sets)| {
        sets.get(&source).map(|set| (Outcome::Lost { cause: *cause, custodian: custodian.clone() }, set))
    });
    for (outcome, set) in held.chain(lost) {
        let taken = missing.take_intersection(set);
        if !taken.is_empty() {
            let marks = accounting.undelivered_marks.entry((entry.signal, outcome.undelivered())).or_default();
            add_emit_marks(marks, entry, &taken);
            accounting.outcomes.entry((entry.signal, outcome)).or_default().add(source, &taken, entry);
        }
    }
    missing
}

/// Counts one source's silent losses, and names for each the last custodian that released
/// it: records flow forward in `Part` order, so the furthest part that released them held
/// them last (`None`: no part ever held them).
fn account_silent_losses(
    inner: &LedgerInner,
    accounting: &mut Accounting,
    source: SourceId,
    entry: &SourceEntry,
    mut missing: RangeSet,
) {
    accounting.outcomes.entry((entry.signal, Outcome::LostSilently)).or_default().add(source, &missing, entry);
    let marks = accounting.undelivered_marks.entry((entry.signal, Undelivered::LostSilently)).or_default();
    add_emit_marks(marks, entry, &missing);
    for (custodian, holdings) in last_custodian_first(&inner.holdings) {
        if missing.is_empty() {
            break;
        }
        if let Some(released) = holdings.released.get(&source) {
            let taken = missing.take_intersection(released);
            if !taken.is_empty() {
                let key = (entry.signal, Some(custodian.clone()));
                accounting.silent_by_last_custodian.entry(key).or_default().add(source, &taken, entry);
            }
        }
    }
    if !missing.is_empty() {
        accounting.silent_by_last_custodian.entry((entry.signal, None)).or_default().add(source, &missing, entry);
    }
}

/// A latency histogram from 1 µs to 1 day at 3 significant digits.
fn new_latency_histogram() -> hdrhistogram::Histogram<u64> {
    hdrhistogram::Histogram::new_with_bounds(1, 86_400_000_000, 3).expect("valid histogram bounds")
}

/// Adds the records of `set` (of `entry`'s source) to `marks` at their emit times: work per
/// range and per emission call inside it, never per record (end of run only).
fn add_emit_marks(marks: &mut EmitMarks, entry: &SourceEntry, set: &RangeSet) {
    for range in set.ranges() {
        let mut start = range.start;
        let mut index = entry.emit_times.partition_point(|&(first, _)| first <= start).saturating_sub(1);
        // Bounded: each turn moves to the next emission call, of which there are finitely many.
        while start < range.end && index < entry.emit_times.len() {
            let (_, emitted_nanos) = entry.emit_times[index];
            let segment_end =
                entry.emit_times.get(index + 1).map_or(entry.emitted_count, |&(first, _)| first).min(range.end);
            index += 1;
            if segment_end > start {
                marks.add(emitted_nanos, segment_end - start);
                start = segment_end;
            }
        }
    }
}

/// The true emit time of `seq` in `entry`.
fn emit_time(entry: &SourceEntry, seq: u64) -> Option<u64> {
    if seq >= entry.emitted_count {
        return None;
    }
    let index = entry.emit_times.partition_point(|&(first, _)| first <= seq);
    entry.emit_times.get(index.checked_sub(1)?).map(|&(_, nanos)| nanos)
}

/// How many example record ids a tally keeps for failure messages.
pub(crate) const EXAMPLES_LIMIT: usize = 5;

/// Where an undelivered record ended up.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Outcome {
    /// Still held by a custodian at the end: in flight (a liveness failure after drain).
    InFlight(Custodian),
    /// Dropped, and this was its latest drop.
    Lost { cause: LossCause, custodian: Custodian },
    /// Neither delivered, held nor dropped: a part lost it without saying so.
    LostSilently,
}

impl Outcome {
    /// Which row of the latency scatter's top band the outcome's records go to.
    pub fn undelivered(&self) -> Undelivered {
        match self {
            Outcome::InFlight(_) => Undelivered::InFlight,
            Outcome::Lost { cause, .. } => Undelivered::Lost(*cause),
            Outcome::LostSilently => Undelivered::LostSilently,
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::InFlight(custodian) => write!(f, "in flight at {custodian}"),
            Outcome::Lost { cause, custodian } => write!(f, "lost: {cause} at {custodian}"),
            Outcome::LostSilently => write!(f, "lost silently (no part recorded a cause)"),
        }
    }
}

/// How many records one custodian holds, now and at its peak.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Occupancy {
    pub held_count: u64,
    pub peak_count: u64,
}

/// How many records met one outcome, with a few examples.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    pub count: u64,
    pub examples: Vec<RecordId>,
    /// When the first and the last of these records were emitted (true nanos since the
    /// start): the time window a failure message names.
    pub(crate) emitted_window_nanos: Option<(u64, u64)>,
    /// How many of them were born on each host (their source's host): with the custodian
    /// of the outcome, a loss names where a record was born and where it died.
    pub born_counts: BTreeMap<Arc<str>, u64>,
}

impl Tally {
    fn add(&mut self, source: SourceId, set: &RangeSet, entry: &SourceEntry) {
        self.count += set.len();
        *self.born_counts.entry(Arc::clone(&entry.born_host)).or_default() += set.len();
        let room = EXAMPLES_LIMIT.saturating_sub(self.examples.len());
        self.examples.extend(set.sample(room).into_iter().map(|seq| RecordId { source, seq }));
        // Emit times grow with seq, so each range's ends bound it: a few lookups per range.
        for range in set.ranges() {
            let (Some(first), Some(last)) = (emit_time(entry, range.start), emit_time(entry, range.end - 1)) else {
                continue;
            };
            let window = self.emitted_window_nanos.get_or_insert((first, last));
            *window = (window.0.min(first), window.1.max(last));
        }
    }
}

/// Totals per signal.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    pub emitted: u64,
    /// Delivered at least once.
    pub delivered: u64,
    /// Records delivered more than once.
    pub duplicated: u64,
    /// Deliveries beyond the first, summed.
    pub(crate) duplicate_deliveries: u64,
    pub duplicate_examples: Vec<RecordId>,
}

/// The ledger's account of a run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Accounting {
    pub totals: BTreeMap<Signal, Totals>,
    pub outcomes: BTreeMap<(Signal, Outcome), Tally>,
    /// The silent losses of `outcomes` split by the last custodian that released them
    /// (`None`: no part ever held them after the app emitted them).
    pub(crate) silent_by_last_custodian: BTreeMap<(Signal, Option<Custodian>), Tally>,
    /// When the undelivered records were emitted, per signal and outcome kind (custodians
    /// together), in bounded bins: the latency scatter's top band.
    pub undelivered_marks: BTreeMap<(Signal, Undelivered), EmitMarks>,
}

impl Accounting {
    /// The ledger's conservation law, per signal: every emitted record is delivered, lost
    /// (with a cause or silently) or in flight — exactly one of them; the silent losses split
    /// by last custodian add up to the silent losses; a record delivered twice was delivered
    /// (duplicates ≤ deliveries); and each tally's born-host counts add up to its count.
    /// Public so that a test can hand it a broken account and see it refused.
    pub(crate) fn assert_conserved(&self) {
        for (signal, totals) in &self.totals {
            let undelivered: u64 = self.undelivered(*signal).map(|(_, tally)| tally.count).sum();
            assert_eq!(
                totals.emitted,
                totals.delivered + undelivered,
                "ledger: {signal:?}: emitted = delivered + lost + lost silently + in flight must hold"
            );
            let silent = self.outcomes.get(&(*signal, Outcome::LostSilently)).map_or(0, |tally| tally.count);
            let silent_split: u64 = self
                .silent_by_last_custodian
                .iter()
                .filter(|((s, _), _)| s == signal)
                .map(|(_, tally)| tally.count)
                .sum();
            assert_eq!(silent, silent_split, "ledger: {signal:?}: silent losses by last custodian must add up");
            assert!(
                totals.duplicated <= totals.delivered,
                "ledger: {signal:?}: {} records duplicated but only {} delivered",
                totals.duplicated,
                totals.delivered
            );
            assert!(
                totals.duplicated <= totals.duplicate_deliveries,
                "ledger: {signal:?}: each duplicated record has at least one extra delivery"
            );
        }
        let mut by_kind: BTreeMap<(Signal, Undelivered), u64> = BTreeMap::new();
        for ((signal, outcome), tally) in &self.outcomes {
            *by_kind.entry((*signal, outcome.undelivered())).or_default() += tally.count;
        }
        let marked: BTreeMap<(Signal, Undelivered), u64> =
            self.undelivered_marks.iter().map(|(key, marks)| (*key, marks.count)).collect();
        assert_eq!(by_kind, marked, "ledger: the undelivered records' emit marks must add up to their outcomes");
        for tally in self.outcomes.values().chain(self.silent_by_last_custodian.values()) {
            assert!(tally.count > 0, "ledger: an outcome is listed only if some record met it");
            assert_eq!(tally.born_counts.values().sum::<u64>(), tally.count, "ledger: born-host counts must add up");
        }
    }

    /// Records of `signal` not delivered, by outcome.
    pub fn undelivered(&self, signal: Signal) -> impl Iterator<Item = (&Outcome, &Tally)> {
        self.outcomes.iter().filter(move |((s, _), _)| *s == signal).map(|((_, outcome), tally)| (outcome, tally))
    }
}

/// Every custodian's holdings, the furthest along the pipeline first: records flow forward in
/// custody order (`vocab::pipeline::PARTS`), so of the custodians that released a record, the
/// first in this order held it last (silent-loss blame). Ties by custodian, for determinism.
fn last_custodian_first(holdings: &BTreeMap<Custodian, Holdings>) -> Vec<(&Custodian, &Holdings)> {
    let mut by_part: Vec<(&Custodian, &Holdings)> = holdings.iter().collect();
    by_part.sort_by(|a, b| custody_rank(b.0.part).cmp(&custody_rank(a.0.part)).then_with(|| a.0.cmp(b.0)));
    by_part
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(source: SourceId, seqs: Range<u64>) -> Vec<RecordId> {
        seqs.map(|seq| RecordId { source, seq }).collect()
    }

    fn custodian(part: Part, host: &str) -> Custodian {
        Custodian { part, host: Arc::from(host) }
    }

    #[test]
    fn every_record_is_delivered_lost_with_cause_in_flight_or_silent() {
        let ledger = Ledger::new();
        let source = ledger.register_source("comfyui-1/worker-0", Signal::Log);
        assert_eq!(ledger.emit(source, 100, 0), 0);
        let agent = custodian(Part::Agent, "comfyui-1");
        let aggregator = custodian(Part::Aggregator, "railway-aggregator");
        ledger.hold(&agent, &ids(source, 0..100), Durability::Volatile);
        // 0..50 reach Dash0 (twice for 0..5); 50..60 overflow at the aggregator;
        // 60..70 die with the agent; 70..80 are still at the aggregator; 80..100 vanish.
        ledger.release(&agent, &ids(source, 0..50));
        ledger.deliver(&ids(source, 0..50), 1_000);
        ledger.deliver(&ids(source, 0..5), 2_000);
        ledger.release(&agent, &ids(source, 50..60));
        ledger.drop_records(&aggregator, LossCause::AggregatorOverflow, &ids(source, 50..60));
        ledger.release(&agent, &ids(source, 70..100));
        ledger.hold(&aggregator, &ids(source, 70..80), Durability::Durable);
        ledger.host_lost("comfyui-1", HostLoss::Power);
        ledger.host_lost("railway-aggregator", HostLoss::Power); // durable holdings survive

        let account = ledger.account();
        let totals = &account.totals[&Signal::Log];
        assert_eq!((totals.emitted, totals.delivered, totals.duplicated, totals.duplicate_deliveries), (100, 50, 5, 5));
        let outcomes: Vec<(String, u64)> =
            account.undelivered(Signal::Log).map(|(outcome, tally)| (outcome.to_string(), tally.count)).collect();
        assert_eq!(
            outcomes,
            vec![
                ("in flight at aggregator@railway-aggregator".to_string(), 10),
                ("lost: agent_crash_unpersisted at agent@comfyui-1".to_string(), 10),
                ("lost: aggregator_overflow at aggregator@railway-aggregator".to_string(), 10),
                ("lost silently (no part recorded a cause)".to_string(), 20),
            ]
        );
        let silent = &account.outcomes[&(Signal::Log, Outcome::LostSilently)];
        assert_eq!(silent.examples, ids(source, 80..85));
    }

    /// A custodian's running count that drifted from its sets is caught at the next change.
    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "held_count drifted from its sets")]
    fn a_held_count_that_drifts_from_the_sets_is_caught() {
        let mut holdings = Holdings::default();
        holdings.volatile.entry(SourceId(0)).or_default().insert(0..5);
        holdings.held_count = 4;
        holdings.peak_count = 5;
        holdings.assert_books();
    }

    /// An account whose outcomes do not add up to what was emitted is refused.
    #[test]
    #[should_panic(expected = "emitted = delivered + lost + lost silently + in flight must hold")]
    fn an_account_that_does_not_add_up_is_refused() {
        let mut account = Accounting::default();
        account.totals.insert(Signal::Log, Totals { emitted: 10, delivered: 7, ..Totals::default() });
        account.assert_conserved();
    }

    /// More records duplicated than delivered is impossible: refused.
    #[test]
    #[should_panic(expected = "3 records duplicated but only 2 delivered")]
    fn more_duplicates_than_deliveries_is_refused() {
        let mut account = Accounting::default();
        let totals = Totals { emitted: 2, delivered: 2, duplicated: 3, duplicate_deliveries: 3, ..Totals::default() };
        account.totals.insert(Signal::Log, totals);
        account.assert_conserved();
    }

    /// Silent losses split by last custodian must add up to the silent losses.
    #[test]
    #[should_panic(expected = "silent losses by last custodian must add up")]
    fn a_silent_split_that_does_not_add_up_is_refused() {
        let mut account = Accounting::default();
        account.totals.insert(Signal::Log, Totals { emitted: 4, ..Totals::default() });
        let tally = Tally { count: 4, born_counts: BTreeMap::from([(Arc::from("h"), 4)]), ..Tally::default() };
        account.outcomes.insert((Signal::Log, Outcome::LostSilently), tally);
        account.assert_conserved();
    }

    #[test]
    fn the_latest_drop_is_the_cause_and_delivery_overrides_drops() {
        let ledger = Ledger::new();
        let source = ledger.register_source("s", Signal::Span);
        ledger.emit(source, 10, 0);
        let aggregator = custodian(Part::Aggregator, "agg");
        let agent = custodian(Part::Agent, "m");
        ledger.drop_records(&aggregator, LossCause::AggregatorOverflow, &ids(source, 0..10));
        ledger.drop_records(&agent, LossCause::AgentRetryLimit, &ids(source, 5..10));
        ledger.deliver(&ids(source, 0..2), 0);
        let account = ledger.account();
        let outcomes: Vec<(String, u64)> =
            account.undelivered(Signal::Span).map(|(outcome, tally)| (outcome.to_string(), tally.count)).collect();
        assert_eq!(
            outcomes,
            vec![
                ("lost: agent_retry_limit at agent@m".to_string(), 5),
                ("lost: aggregator_overflow at aggregator@agg".to_string(), 3),
            ]
        );
    }

    #[test]
    fn a_silent_loss_names_the_last_custodian_that_released_it() {
        let ledger = Ledger::new();
        let source = ledger.register_source("s", Signal::Log);
        ledger.emit(source, 30, 0);
        let agent = custodian(Part::Agent, "m");
        let aggregator = custodian(Part::Aggregator, "agg");
        ledger.hold(&agent, &ids(source, 0..30), Durability::Durable);
        ledger.release(&agent, &ids(source, 0..30));
        ledger.hold(&aggregator, &ids(source, 0..20), Durability::Volatile);
        ledger.release(&aggregator, &ids(source, 0..20));
        ledger.deliver(&ids(source, 0..15), 0);
        // 15..20 vanished after the aggregator, 20..30 after the agent.
        let account = ledger.account();
        let silent: Vec<(Option<Custodian>, u64)> =
            account.silent_by_last_custodian.iter().map(|((_, last), tally)| (last.clone(), tally.count)).collect();
        assert_eq!(silent, vec![(Some(agent.clone()), 10), (Some(aggregator.clone()), 5)]);
        assert_eq!(account.outcomes[&(Signal::Log, Outcome::LostSilently)].count, 15);
    }

    #[test]
    fn an_unacked_write_no_next_hop_took_is_lost_with_its_cause_at_the_writer() {
        let ledger = Ledger::new();
        let source = ledger.register_source("openai-1#0/logs", Signal::Log);
        ledger.emit(source, 40, 0);
        let agent = custodian(Part::Agent, "openai-1");
        let aggregator = custodian(Part::Aggregator, "agg");
        ledger.hold(&agent, &ids(source, 0..40), Durability::Volatile);
        ledger.release_unacked(&agent, LossCause::AgentUnackedWrite, &ids(source, 0..40));
        // 0..10 reach Dash0; 10..20 the aggregator takes and holds; 20..25 it takes, hands on
        // and they vanish (a harness bug: silent); 25..30 it takes and drops; 30..40 never
        // arrive anywhere.
        ledger.hold(&aggregator, &ids(source, 0..30), Durability::Volatile);
        ledger.release(&aggregator, &ids(source, 0..10));
        ledger.deliver(&ids(source, 0..10), 1_000);
        ledger.release(&aggregator, &ids(source, 20..25));
        ledger.drop_records(&aggregator, LossCause::AggregatorOverflow, &ids(source, 25..30));
        let account = ledger.account();
        let outcomes: Vec<(String, u64)> =
            account.undelivered(Signal::Log).map(|(outcome, tally)| (outcome.to_string(), tally.count)).collect();
        assert_eq!(
            outcomes,
            vec![
                ("in flight at aggregator@agg".to_string(), 10),
                ("lost: agent_unacked_write at agent@openai-1".to_string(), 10),
                ("lost: aggregator_overflow at aggregator@agg".to_string(), 5),
                ("lost silently (no part recorded a cause)".to_string(), 5),
            ]
        );
        let silent: Vec<(Option<Custodian>, u64)> =
            account.silent_by_last_custodian.iter().map(|((_, last), tally)| (last.clone(), tally.count)).collect();
        assert_eq!(silent, vec![(Some(aggregator), 5)]);
    }

    #[test]
    fn every_outcome_counts_where_its_records_were_born() {
        let ledger = Ledger::new();
        let a = ledger.register_source("openai-1#0/logs", Signal::Log);
        let b = ledger.register_source("comfyui-2#1/logs", Signal::Log);
        let bare = ledger.register_source("s", Signal::Log);
        assert_eq!(ledger.born_host(b).as_deref(), Some("comfyui-2"));
        assert_eq!(ledger.born_host(bare).as_deref(), Some("s"));
        let dash0 = custodian(Part::Dash0, "dash0");
        for source in [a, b] {
            ledger.emit(source, 10, 0);
        }
        ledger.drop_records(&dash0, LossCause::Dash0TimestampRange, &ids(a, 0..7));
        ledger.drop_records(&dash0, LossCause::Dash0TimestampRange, &ids(b, 0..2));
        let account = ledger.account();
        let tally = &account.outcomes
            [&(Signal::Log, Outcome::Lost { cause: LossCause::Dash0TimestampRange, custodian: dash0.clone() })];
        let born: Vec<(&str, u64)> = tally.born_counts.iter().map(|(host, &count)| (&**host, count)).collect();
        assert_eq!(born, vec![("comfyui-2", 2), ("openai-1", 7)]);
        assert_eq!(tally.count, 9);
    }

    #[test]
    fn a_process_death_keeps_written_holdings_and_a_power_loss_takes_them() {
        let lost = |loss: HostLoss| {
            let ledger = Ledger::new();
            let source = ledger.register_source("s", Signal::Log);
            ledger.emit(source, 30, 0);
            let redis = custodian(Part::Redis, "railway-redis");
            ledger.hold(&redis, &ids(source, 0..10), Durability::Volatile);
            ledger.hold(&redis, &ids(source, 10..20), Durability::Written);
            ledger.hold(&redis, &ids(source, 20..30), Durability::Durable);
            ledger.hold(&redis, &ids(source, 5..15), Durability::Written); // 5..10 written now, not twice
            ledger.host_lost("railway-redis", loss);
            let account = ledger.account();
            let lost = Outcome::Lost { cause: LossCause::RedisCrashUnpersisted, custodian: redis.clone() };
            account.outcomes.get(&(Signal::Log, lost)).map_or(0, |tally| tally.count)
        };
        assert_eq!(lost(HostLoss::Process), 5, "memory only: 0..5");
        assert_eq!(lost(HostLoss::Power), 20, "memory and the unsynced writes: 0..20");
    }

    #[test]
    fn occupancy_tracks_the_peak_held_per_custodian() {
        let ledger = Ledger::new();
        let source = ledger.register_source("s", Signal::Log);
        ledger.emit(source, 100, 0);
        let aggregator = custodian(Part::Aggregator, "agg");
        ledger.hold(&aggregator, &ids(source, 0..40), Durability::Volatile);
        ledger.hold(&aggregator, &ids(source, 20..60), Durability::Durable); // 20 overlap
        ledger.release(&aggregator, &ids(source, 0..50));
        ledger.hold(&aggregator, &ids(source, 60..70), Durability::Volatile);
        ledger.host_lost("agg", HostLoss::Power); // 60..70 volatile lost, 50..60 durable stay
        ledger.drop_records(&aggregator, LossCause::AggregatorOverflow, &ids(source, 55..60));
        let occupancy = ledger.occupancy()[&aggregator];
        assert_eq!(occupancy, Occupancy { held_count: 5, peak_count: 60 });
    }

    #[test]
    fn a_million_in_order_records_stay_a_few_ranges() {
        let ledger = Ledger::new();
        let source = ledger.register_source("big", Signal::Log);
        ledger.emit(source, 1_000_000, 0);
        for start in (0..1_000_000).step_by(1_000) {
            ledger.deliver(&ids(source, start..start + 1_000), 5_000_000);
        }
        let inner = ledger.lock();
        assert_eq!(inner.delivered[&source].ranges_count(), 1);
    }

    #[test]
    fn the_timeline_follows_deliveries_and_what_each_part_holds() {
        let ledger = Ledger::new();
        let source = ledger.register_source("s", Signal::Log);
        ledger.emit(source, 10, 0);
        ledger.emit(source, 0, 500_000_000); // an empty emission shares its first seq with the next
        ledger.emit(source, 10, 1_000_000_000);
        let (agent_m, agent_n) = (custodian(Part::Agent, "m"), custodian(Part::Agent, "n"));
        // Outside a simulated host, holdings change at the latest true time seen (0 here).
        ledger.hold(&agent_m, &ids(source, 0..20), Durability::Durable);
        ledger.hold(&agent_n, &ids(source, 0..5), Durability::Volatile); // the part holds 25
        ledger.release(&agent_m, &ids(source, 0..20)); // 5
        ledger.deliver(&ids(source, 0..20), 12_000_000_000); // 10 after 12 s, 10 after 11 s
        ledger.deliver(&ids(source, 0..5), 13_000_000_000); // duplicates add no latency
        ledger.host_lost("n", HostLoss::Power); // at 13 s: the part holds 0

        let timeline = ledger.timeline(3);
        assert_eq!(timeline.windows_count, 3);
        assert_eq!(timeline.held_peaks[&Part::Agent], vec![25, 5, 0]);
        let window = timeline.log[1];
        assert_eq!(window.delivered_count, 20);
        assert!(window.p50_micros.abs_diff(11_000_000) <= 110_000, "{window:?}");
        assert!(window.max_micros.abs_diff(12_000_000) <= 120_000, "{window:?}");
        assert_eq!((timeline.log[0].delivered_count, timeline.log[2].delivered_count), (0, 0));
        let histogram = ledger.latency_micros(Signal::Log);
        assert_eq!(histogram.len(), 20);
        assert!(histogram.equivalent(histogram.min(), 11_000_000) && histogram.equivalent(histogram.max(), 12_000_000));
    }

    #[test]
    fn the_scatter_sample_keeps_delivered_batches_and_marks_undelivered_ones_at_their_emit_times() {
        let ledger = Ledger::new();
        let source = ledger.register_source("m#0/logs", Signal::Log);
        ledger.emit(source, 10, 1_000_000_000);
        ledger.emit(source, 10, 2_000_000_000);
        ledger.emit(source, 10, 3_000_000_000);
        let agent = custodian(Part::Agent, "m");
        ledger.deliver(&ids(source, 0..12), 4_000_000_000); // two batches: 10 emitted at 1 s, 2 at 2 s
        ledger.deliver(&ids(source, 0..5), 5_000_000_000); // duplicates: no point
        ledger.drop_records(&agent, LossCause::AgentRetryLimit, &ids(source, 12..20));
        ledger.hold(&agent, &ids(source, 20..25), Durability::Volatile);
        let sample = ledger.latency_sample(Signal::Log);
        let points: Vec<(u64, u64, u64)> =
            sample.points.iter().map(|p| (p.emit_nanos, p.latency_micros, p.count)).collect();
        assert_eq!(points, vec![(1_000_000_000, 3_000_000, 10), (2_000_000_000, 2_000_000, 2)]);
        assert_eq!((sample.batches_count, sample.last_delivery_nanos), (2, 4_000_000_000));
        let account = ledger.account();
        let marks = |kind: Undelivered| -> Vec<(u64, u64)> {
            account.undelivered_marks.get(&(Signal::Log, kind)).map_or_else(Vec::new, |m| m.marks().collect())
        };
        assert_eq!(marks(Undelivered::Lost(LossCause::AgentRetryLimit)), vec![(2_000_000_000, 8)]);
        assert_eq!(marks(Undelivered::InFlight), vec![(3_000_000_000, 5)]);
        assert_eq!(marks(Undelivered::LostSilently), vec![(3_000_000_000, 5)], "25..30 vanished");
    }

    #[test]
    fn latency_is_measured_from_true_emit_to_first_delivery() {
        let ledger = Ledger::new();
        let source = ledger.register_source("s", Signal::Log);
        ledger.emit(source, 10, 1_000_000_000);
        ledger.emit(source, 10, 3_000_000_000);
        assert_eq!(ledger.emitted_true_nanos(RecordId { source, seq: 9 }), Some(1_000_000_000));
        assert_eq!(ledger.emitted_true_nanos(RecordId { source, seq: 10 }), Some(3_000_000_000));
        assert_eq!(ledger.emitted_true_nanos(RecordId { source, seq: 20 }), None);
        ledger.deliver(&ids(source, 0..20), 5_000_000_000);
        ledger.deliver(&ids(source, 0..20), 9_000_000_000); // duplicates add no latency
        let histogram = ledger.latency_micros(Signal::Log);
        assert_eq!(histogram.len(), 20);
        assert!(histogram.equivalent(histogram.max(), 4_000_000), "max {}", histogram.max());
        assert!(histogram.equivalent(histogram.min(), 2_000_000), "min {}", histogram.min());
    }
}
