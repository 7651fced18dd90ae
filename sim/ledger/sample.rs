//! A bounded, deterministic sample of per-record latency, and where the records that never
//! arrived were emitted: the data of the report's Jepsen-style latency scatter (README
//! "Reports").
//!
//! Why a sample and not every record: a run delivers millions of records; the scatter needs
//! the shape (a steady band, an outage's ramp, the records still missing), not every dot, and
//! `result.json` must stay small enough to keep one per run of a sweep. Why by emit time: a
//! record held back by an outage shows *where* it was emitted, so the outage is a ramp of
//! rising latency over its window instead of a blank followed by a spike at its end.
//!
//! How it stays bounded without randomness: deliveries come per batch (a run of consecutive
//! records with one emit time, see `Ledger::deliver`). The sample keeps every `stride`-th
//! batch; when [`SAMPLE_POINTS_LIMIT`] points are kept it drops every other one and doubles
//! the stride, so the kept batches are always those whose number is a multiple of the stride.
//! The same run keeps the same points; memory is one preallocated `Vec`, the hot path pushes
//! at most one point per batch and never allocates.
//!
//! Undelivered records (lost with a cause, lost silently, in flight at the end) are counted
//! once, when the ledger accounts, into bins of emit time per outcome ([`EmitMarks`]): each
//! bin keeps its earliest emit time and its count, and bins double in width when there are
//! more than [`UNDELIVERED_MARKS_LIMIT`].

use std::collections::BTreeMap;

use crate::vocab::LossCause;

/// Most delivered batches one signal's sample keeps. 400 points draw the shape of a run and
/// keep `result.json` within some tens of kilobytes per signal (a point is three numbers).
pub const SAMPLE_POINTS_LIMIT: usize = 400;

/// Most emit-time bins one undelivered outcome keeps (a bin is two numbers).
pub const UNDELIVERED_MARKS_LIMIT: usize = 200;

/// The first width of an undelivered outcome's emit-time bins: 100 ms, below what a plot of
/// a run's minutes can tell apart.
const FIRST_BIN_NANOS: u64 = 100_000_000;

/// One kept delivered batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SamplePoint {
    /// True time the batch's records were emitted.
    pub emit_nanos: u64,
    /// Emit → Dash0 latency of its first deliveries.
    pub latency_micros: u64,
    /// Records of the batch first delivered then.
    pub count: u64,
}

/// One signal's sample of delivered batches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LatencySample {
    /// Kept batches in delivery order: batch k is kept iff k is a multiple of `stride`.
    pub points: Vec<SamplePoint>,
    /// Every `stride`-th batch is kept; a power of two.
    pub stride: u64,
    /// Batches with a first delivery seen so far (kept or not).
    pub batches_count: u64,
    /// The latest true time a first delivery happened (0 when none did).
    pub last_delivery_nanos: u64,
}

impl Default for LatencySample {
    fn default() -> Self {
        LatencySample { points: Vec::new(), stride: 1, batches_count: 0, last_delivery_nanos: 0 }
    }
}

impl LatencySample {
    /// `count` records emitted at `emit_nanos` were first delivered at `delivered_nanos`,
    /// `latency_micros` later. Hot path: no allocation but the first call's.
    pub(crate) fn record(&mut self, emit_nanos: u64, delivered_nanos: u64, latency_micros: u64, count: u64) {
        self.last_delivery_nanos = self.last_delivery_nanos.max(delivered_nanos);
        let batch = self.batches_count;
        self.batches_count += 1;
        if !batch.is_multiple_of(self.stride) {
            return;
        }
        if self.points.len() == SAMPLE_POINTS_LIMIT {
            self.halve();
            if !batch.is_multiple_of(self.stride) {
                return;
            }
        }
        if self.points.capacity() == 0 {
            self.points.reserve_exact(SAMPLE_POINTS_LIMIT);
        }
        self.points.push(SamplePoint { emit_nanos, latency_micros, count });
        assert!(self.points.len() <= SAMPLE_POINTS_LIMIT, "latency sample: more than {SAMPLE_POINTS_LIMIT} points");
    }

    /// Keeps every other point and doubles the stride: the kept batches stay exactly the
    /// multiples of the stride.
    fn halve(&mut self) {
        let mut position = 0usize;
        self.points.retain(|_| {
            let keep = position.is_multiple_of(2);
            position += 1;
            keep
        });
        self.stride = self.stride.checked_mul(2).expect("a stride below 2^64 batches");
    }
}

/// What became of records that never reached Dash0, as the scatter's top band shows them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Undelivered {
    /// Still held by a part at the end.
    InFlight,
    /// Dropped with this cause.
    Lost(LossCause),
    /// No part recorded a cause (a harness bug).
    LostSilently,
}

impl Undelivered {
    /// Its name in `result.json`: `in_flight`, the loss cause, or `lost_silently`.
    pub fn name(self) -> &'static str {
        match self {
            Undelivered::InFlight => "in_flight",
            Undelivered::Lost(cause) => cause.as_str(),
            Undelivered::LostSilently => "lost_silently",
        }
    }
}

/// When one outcome's undelivered records were emitted, in bins of emit time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EmitMarks {
    /// The bins' width; doubles when there are more than [`UNDELIVERED_MARKS_LIMIT`] bins.
    pub bin_nanos: u64,
    /// Bin index → (earliest emit time in it, records).
    bins: BTreeMap<u64, (u64, u64)>,
    /// Records added, all bins together.
    pub count: u64,
}

impl Default for EmitMarks {
    fn default() -> Self {
        EmitMarks { bin_nanos: FIRST_BIN_NANOS, bins: BTreeMap::new(), count: 0 }
    }
}

impl EmitMarks {
    /// `count` records emitted at `emit_nanos` met this outcome.
    pub(crate) fn add(&mut self, emit_nanos: u64, count: u64) {
        if count == 0 {
            return;
        }
        self.count += count;
        let bin = self.bins.entry(emit_nanos / self.bin_nanos).or_insert((emit_nanos, 0));
        bin.0 = bin.0.min(emit_nanos);
        bin.1 += count;
        // Bounded: each pass halves the bins' count (bins are never empty).
        while self.bins.len() > UNDELIVERED_MARKS_LIMIT {
            self.coarsen();
        }
    }

    /// Doubles the bins' width, merging neighbours.
    fn coarsen(&mut self) {
        self.bin_nanos = self.bin_nanos.checked_mul(2).expect("a bin narrower than 2^64 ns");
        let mut merged: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
        for (&index, &(first, count)) in &self.bins {
            let bin = merged.entry(index / 2).or_insert((first, 0));
            bin.0 = bin.0.min(first);
            bin.1 += count;
        }
        self.bins = merged;
    }

    /// The bins in emit-time order: (earliest emit time, records).
    pub fn marks(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.bins.values().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sample_keeps_every_strideth_batch_within_its_limit() {
        let mut sample = LatencySample::default();
        for batch in 0..10_000u64 {
            sample.record(batch * 1_000, batch * 1_000 + 5, batch, 1 + batch % 3);
        }
        assert!(sample.points.len() <= SAMPLE_POINTS_LIMIT && sample.points.len() > SAMPLE_POINTS_LIMIT / 2);
        assert!(sample.stride.is_power_of_two());
        assert_eq!(sample.batches_count, 10_000);
        assert_eq!(sample.last_delivery_nanos, 9_999_005);
        for (position, point) in sample.points.iter().enumerate() {
            // latency_micros was set to the batch number: batch k is the position × stride.
            assert_eq!(point.latency_micros, position as u64 * sample.stride, "{point:?}");
        }
        assert_eq!(sample.points.capacity(), SAMPLE_POINTS_LIMIT, "one allocation, never grown");
    }

    #[test]
    fn a_small_run_keeps_every_batch() {
        let mut sample = LatencySample::default();
        for batch in 0..10u64 {
            sample.record(batch, batch, 7, 2);
        }
        assert_eq!((sample.points.len(), sample.stride), (10, 1));
    }

    #[test]
    fn undelivered_marks_coarsen_and_keep_every_record() {
        let mut marks = EmitMarks::default();
        for second in 0..1_000u64 {
            marks.add(second * 1_000_000_000 + 7, 3);
        }
        marks.add(5, 0);
        assert!(marks.marks().count() <= UNDELIVERED_MARKS_LIMIT);
        assert_eq!(marks.marks().map(|(_, count)| count).sum::<u64>(), 3_000);
        assert_eq!(marks.count, 3_000);
        assert_eq!(marks.marks().next(), Some((7, marks.marks().next().unwrap().1)), "earliest emit time kept");
        assert!(marks.bin_nanos > FIRST_BIN_NANOS);
    }
}
