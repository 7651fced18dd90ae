//! A set of `u64` as disjoint half-open ranges: the compact form of "which sequence numbers
//! of one source" that the delivery ledger keeps.
//!
//! Why ranges: sources emit 0, 1, 2, … and records mostly travel in order, so a million
//! delivered records of one source are one range, not a million entries (ARCHITECTURE.md §4, §7:
//! the ledger is O(sources), not O(records)).

use std::collections::BTreeMap;
use std::ops::Range;

/// Disjoint, non-adjacent half-open ranges, keyed by start.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RangeSet {
    /// start → end (exclusive). Invariant: ranges are non-empty, disjoint and not touching.
    ranges: BTreeMap<u64, u64>,
    /// Number of values in the set.
    len: u64,
}

impl RangeSet {
    /// The empty set.
    pub fn new() -> Self {
        RangeSet::default()
    }

    /// Number of values held.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the set holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of disjoint ranges: the set's memory cost.
    #[cfg(test)]
    pub(crate) fn ranges_count(&self) -> usize {
        self.ranges.len()
    }

    /// The ranges, in order.
    pub fn ranges(&self) -> impl Iterator<Item = Range<u64>> + '_ {
        self.ranges.iter().map(|(&start, &end)| start..end)
    }

    /// Whether `value` is in the set.
    pub fn contains(&self, value: u64) -> bool {
        self.ranges.range(..=value).next_back().is_some_and(|(_, &end)| value < end)
    }

    /// How many values of `range` are in the set.
    pub(crate) fn count_in(&self, range: Range<u64>) -> u64 {
        if range.is_empty() {
            return 0;
        }
        let mut count = 0;
        // Start from the range that may straddle range.start.
        let first = self.ranges.range(..=range.start).next_back().map(|(&s, _)| s).unwrap_or(range.start);
        for (&start, &end) in self.ranges.range(first..range.end) {
            let lo = start.max(range.start);
            let hi = end.min(range.end);
            count += hi.saturating_sub(lo);
        }
        count
    }

    /// Adds every value of `range`; returns how many were not already present.
    pub fn insert(&mut self, range: Range<u64>) -> u64 {
        if range.is_empty() {
            return 0;
        }
        let already = self.count_in(range.clone());
        let mut start = range.start;
        let mut end = range.end;
        // Merge with a range that starts before and touches or overlaps.
        if let Some((&s, &e)) = self.ranges.range(..=start).next_back()
            && e >= start
        {
            start = s;
            end = end.max(e);
        }
        // Absorb every range starting inside [start, end] (touching included).
        let absorbed: Vec<u64> = self.ranges.range(start..=end).map(|(&s, _)| s).collect();
        for s in absorbed {
            let e = self.ranges.remove(&s).expect("key just listed");
            end = end.max(e);
        }
        self.ranges.insert(start, end);
        let added = (range.end - range.start) - already;
        self.len += added;
        self.debug_check();
        added
    }

    /// Removes every value of `range`; returns how many were present.
    pub fn remove(&mut self, range: Range<u64>) -> u64 {
        if range.is_empty() {
            return 0;
        }
        let present = self.count_in(range.clone());
        if present == 0 {
            return 0;
        }
        let first = self.ranges.range(..=range.start).next_back().map(|(&s, _)| s).unwrap_or(range.start);
        let touched: Vec<(u64, u64)> = self.ranges.range(first..range.end).map(|(&s, &e)| (s, e)).collect();
        for (s, e) in touched {
            if e <= range.start {
                continue;
            }
            self.ranges.remove(&s);
            if s < range.start {
                self.ranges.insert(s, range.start);
            }
            if e > range.end {
                self.ranges.insert(range.end, e);
            }
        }
        self.len -= present;
        self.debug_check();
        present
    }

    /// Removes from `self` every value also in `other` and returns those values as a set.
    pub(crate) fn take_intersection(&mut self, other: &RangeSet) -> RangeSet {
        let mut taken = RangeSet::new();
        for range in other.ranges() {
            if self.count_in(range.clone()) == 0 {
                continue;
            }
            let overlapping: Vec<Range<u64>> = self
                .ranges()
                .filter(|mine| mine.start < range.end && range.start < mine.end)
                .map(|mine| mine.start.max(range.start)..mine.end.min(range.end))
                .collect();
            for part in overlapping {
                self.remove(part.clone());
                taken.insert(part);
            }
        }
        taken
    }

    /// Up to `limit` values of the set, smallest first: example ids for failure messages.
    pub fn sample(&self, limit: usize) -> Vec<u64> {
        self.ranges().flatten().take(limit).collect()
    }

    /// Checks the invariants in debug builds (tests run them).
    fn debug_check(&self) {
        if cfg!(debug_assertions) {
            let mut previous_end: Option<u64> = None;
            let mut len = 0;
            for (&start, &end) in &self.ranges {
                assert!(start < end, "empty range {start}..{end}");
                if let Some(previous) = previous_end {
                    assert!(previous < start, "ranges touch or overlap at {start}");
                }
                previous_end = Some(end);
                len += end - start;
            }
            assert_eq!(len, self.len, "cached length disagrees with the ranges");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    #[test]
    fn in_order_inserts_stay_one_range() {
        let mut set = RangeSet::new();
        for seq in 0..10_000 {
            set.insert(seq..seq + 1);
        }
        assert_eq!(set.ranges_count(), 1);
        assert_eq!(set.len(), 10_000);
    }

    #[test]
    fn remove_splits_and_counts() {
        let mut set = RangeSet::new();
        set.insert(0..100);
        assert_eq!(set.remove(10..20), 10);
        assert_eq!(set.ranges().collect::<Vec<_>>(), vec![0..10, 20..100]);
        assert_eq!(set.remove(5..25), 10);
        assert_eq!(set.count_in(0..100), 80);
        assert!(!set.contains(7) && set.contains(4) && set.contains(25));
        assert_eq!(set.sample(3), vec![0, 1, 2]);
    }

    proptest! {
        /// The range set behaves exactly like a set of integers.
        #[test]
        fn behaves_like_a_btree_set(ops in proptest::collection::vec((any::<bool>(), 0u64..200, 0u64..30), 0..80)) {
            let mut set = RangeSet::new();
            let mut model = BTreeSet::new();
            for (insert, start, len) in ops {
                let range = start..start + len;
                if insert {
                    let added = range.clone().filter(|v| model.insert(*v)).count() as u64;
                    prop_assert_eq!(set.insert(range), added);
                } else {
                    let removed = range.clone().filter(|v| model.remove(v)).count() as u64;
                    prop_assert_eq!(set.remove(range), removed);
                }
                prop_assert_eq!(set.len(), model.len() as u64);
            }
            for v in 0..240 {
                prop_assert_eq!(set.contains(v), model.contains(&v));
            }
            prop_assert_eq!(set.count_in(50..150), model.range(50..150).count() as u64);
            let mut other = RangeSet::new();
            other.insert(40..90);
            other.insert(120..130);
            let taken = set.clone().take_intersection(&other);
            prop_assert_eq!(taken.len(), model.iter().filter(|v| (40..90).contains(*v) || (120..130).contains(*v)).count() as u64);
        }
    }
}
