//! The stream type: entries by id, consumer groups with their pending entries lists (PEL).
//!
//! Why its own file: streams carry the most state (ids, groups, consumers, PEL) and the
//! invariants tying them together — every group PEL entry is in exactly its consumer's PEL
//! — are easiest to keep in one place.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;

use bytes::Bytes;

use super::memory::*;

/// A stream entry id `ms-seq`, ordered as Redis orders them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StreamId {
    pub ms: u64,
    pub seq: u64,
}

impl StreamId {
    pub const MIN: StreamId = StreamId { ms: 0, seq: 0 };
    pub const MAX: StreamId = StreamId { ms: u64::MAX, seq: u64::MAX };

    /// The next id (`streamIncrID`), `None` past the last possible id.
    pub fn incr(self) -> Option<StreamId> {
        if self.seq == u64::MAX {
            if self.ms == u64::MAX {
                return None;
            }
            return Some(StreamId { ms: self.ms + 1, seq: 0 });
        }
        Some(StreamId { ms: self.ms, seq: self.seq + 1 })
    }

    /// The previous id (`streamDecrID`), `None` before 0-0.
    pub fn decr(self) -> Option<StreamId> {
        if self.seq == 0 {
            if self.ms == 0 {
                return None;
            }
            return Some(StreamId { ms: self.ms - 1, seq: u64::MAX });
        }
        Some(StreamId { ms: self.ms, seq: self.seq - 1 })
    }

    /// The id as Redis prints it.
    pub fn to_bytes(self) -> Bytes {
        Bytes::from(self.to_string())
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

/// A pending entry: delivered to `consumer`, not yet acknowledged.
#[derive(Clone, Debug)]
pub struct Nack {
    pub consumer: Bytes,
    pub delivery_time_ms: u64,
    pub delivery_count: u64,
}

/// A consumer of a group: its own PEL (ids only; the group holds the NACKs).
#[derive(Clone, Debug, Default)]
pub struct Consumer {
    pub seen_time_ms: u64,
    pub pel: BTreeSet<StreamId>,
}

/// A consumer group.
#[derive(Clone, Debug, Default)]
pub struct Group {
    pub last_id: StreamId,
    pub pel: BTreeMap<StreamId, Nack>,
    pub consumers: BTreeMap<Bytes, Consumer>,
}

impl Group {
    /// The consumer named `name`, created if absent; returns whether it was created.
    pub fn consumer(&mut self, name: &Bytes, now_ms: u64) -> (&mut Consumer, bool) {
        let created = !self.consumers.contains_key(name);
        let consumer = self.consumers.entry(name.clone()).or_default();
        consumer.seen_time_ms = now_ms;
        (consumer, created)
    }

    /// Records `id` as delivered to `consumer` now, moving it from another consumer's PEL
    /// if it was pending there.
    pub fn deliver(&mut self, id: StreamId, consumer: &Bytes, now_ms: u64) {
        if let Some(previous) = self.pel.get(&id).map(|nack| nack.consumer.clone())
            && let Some(old) = self.consumers.get_mut(&previous)
        {
            old.pel.remove(&id);
        }
        self.pel.insert(id, Nack { consumer: consumer.clone(), delivery_time_ms: now_ms, delivery_count: 1 });
        self.consumers.get_mut(consumer).expect("the consumer exists before delivery").pel.insert(id);
    }

    /// Acknowledges `id`: true if it was pending.
    pub fn ack(&mut self, id: StreamId) -> bool {
        match self.pel.remove(&id) {
            Some(nack) => {
                if let Some(consumer) = self.consumers.get_mut(&nack.consumer) {
                    consumer.pel.remove(&id);
                }
                true
            }
            None => false,
        }
    }

    fn memory_bytes(&self, name: &[u8]) -> u64 {
        GROUP_OVERHEAD_BYTES
            + name.len() as u64
            + self.pel.len() as u64 * NACK_BYTES
            + self.consumers.keys().map(|c| CONSUMER_OVERHEAD_BYTES + c.len() as u64).sum::<u64>()
    }
}

/// Redis's `stream-node-max-entries` default: entries per radix-tree node.
pub const NODE_ENTRIES_LIMIT: u64 = 100;
/// Redis's `stream-node-max-bytes` default: listpack bytes per node.
pub const NODE_BYTES_LIMIT: u64 = 4096;

/// A radix-tree node as approximate trimming (`MAXLEN ~`) sees it: Redis only ever
/// removes whole nodes, so the model keeps where each node starts.
#[derive(Clone, Debug)]
struct Node {
    first: StreamId,
    appended_count: u64,
    bytes: u64,
}

/// A stream.
#[derive(Clone, Debug, Default)]
pub struct Stream {
    /// id → flat field, value, field, value…
    pub entries: BTreeMap<StreamId, Vec<Bytes>>,
    pub last_id: StreamId,
    pub groups: BTreeMap<Bytes, Group>,
    nodes: VecDeque<Node>,
    entries_bytes: u64,
}

fn entry_bytes(items: &[Bytes]) -> u64 {
    STREAM_ENTRY_OVERHEAD_BYTES + items.iter().map(|item| STREAM_ITEM_OVERHEAD_BYTES + item.len() as u64).sum::<u64>()
}

/// What an entry adds to its node's listpack: a few header bytes plus each value with its
/// length prefix (fields equal to the node's master entry are stored once, as Redis does).
fn node_entry_bytes(items: &[Bytes]) -> u64 {
    4 + items.iter().skip(1).step_by(2).map(|value| value.len() as u64 + 2).sum::<u64>()
}

impl Stream {
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Estimated bytes, see [`super::memory`]. Groups are few, so they are summed here.
    pub fn memory_bytes(&self) -> u64 {
        STREAM_OVERHEAD_BYTES
            + self.entries_bytes
            + self.groups.iter().map(|(name, group)| group.memory_bytes(name)).sum::<u64>()
    }

    /// Appends an entry whose id the caller checked is above `last_id`.
    pub fn append(&mut self, id: StreamId, items: Vec<Bytes>) {
        assert!(id > self.last_id, "stream ids grow: {id} after {}", self.last_id);
        let bytes = entry_bytes(&items);
        let listpack_bytes = node_entry_bytes(&items);
        let new_node = match self.nodes.back() {
            Some(node) => node.appended_count >= NODE_ENTRIES_LIMIT || node.bytes + listpack_bytes >= NODE_BYTES_LIMIT,
            None => true,
        };
        if new_node {
            self.nodes.push_back(Node { first: id, appended_count: 0, bytes: 0 });
        }
        let node = self.nodes.back_mut().expect("a node was just ensured");
        node.appended_count += 1;
        node.bytes += listpack_bytes;
        self.entries_bytes += bytes;
        self.entries.insert(id, items);
        self.last_id = id;
    }

    /// Deletes one entry; returns its items.
    pub fn delete(&mut self, id: StreamId) -> Option<Vec<Bytes>> {
        let items = self.entries.remove(&id)?;
        self.entries_bytes -= entry_bytes(&items);
        self.drop_empty_nodes();
        Some(items)
    }

    fn drop_empty_nodes(&mut self) {
        // A node whose entries are all gone is freed (Redis removes it from the rax); the
        // tail node stays, as Redis keeps appending to it.
        while self.nodes.len() > 1 {
            let (first, end) = (self.nodes[0].first, self.nodes[1].first);
            if self.entries.range(first..end).next().is_some() {
                break;
            }
            self.nodes.pop_front();
        }
    }

    /// Trims to `maxlen` entries (exact) or by whole nodes (`approx`), removing at most
    /// `limit` entries when `limit > 0`; returns the removed entries' items.
    pub fn trim_maxlen(&mut self, maxlen: u64, approx: bool, limit: u64) -> Vec<Vec<Bytes>> {
        self.trim(approx, limit, |stream, _id| stream.entries.len() as u64 > maxlen, Some(maxlen))
    }

    /// Trims every entry below `minid`.
    pub fn trim_minid(&mut self, minid: StreamId, approx: bool, limit: u64) -> Vec<Vec<Bytes>> {
        self.trim(approx, limit, |_, id| id < minid, None)
    }

    fn trim(
        &mut self,
        approx: bool,
        limit: u64,
        should_remove: impl Fn(&Stream, StreamId) -> bool,
        maxlen: Option<u64>,
    ) -> Vec<Vec<Bytes>> {
        let mut removed = Vec::new();
        if !approx {
            // Exact: entry by entry from the head.
            while let Some((&id, _)) = self.entries.iter().next() {
                if !should_remove(self, id) || (limit > 0 && removed.len() as u64 >= limit) {
                    break;
                }
                removed.push(self.delete(id).expect("the first entry exists"));
            }
            return removed;
        }
        // Approximate: whole nodes only, as Redis trims.
        loop {
            let Some(node) = self.nodes.front() else { break };
            let end = self.nodes.get(1).map(|next| next.first);
            let ids: Vec<StreamId> = match end {
                Some(end) => self.entries.range(node.first..end).map(|(id, _)| *id).collect(),
                None => self.entries.range(node.first..).map(|(id, _)| *id).collect(),
            };
            let fits = match maxlen {
                Some(maxlen) => self.entries.len() as u64 - ids.len() as u64 >= maxlen,
                None => ids.last().is_some_and(|&last| should_remove(self, last)),
            };
            if !fits || (limit > 0 && removed.len() as u64 + ids.len() as u64 > limit) || ids.is_empty() {
                break;
            }
            for id in ids {
                let items = self.entries.remove(&id).expect("listed id exists");
                self.entries_bytes -= entry_bytes(&items);
                removed.push(items);
            }
            self.nodes.pop_front();
        }
        removed
    }
}
