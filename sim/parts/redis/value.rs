//! The values a key can hold (lists and hashes), each keeping its own memory count so
//! that `used_memory` is updated in O(1) per change.

use std::collections::{BTreeMap, VecDeque};

use bytes::Bytes;

use super::memory::*;

/// A key's value. Strings and streams are not modelled (the pipeline uses neither).
#[derive(Clone, Debug)]
pub enum Value {
    List(List),
    Hash(Hash),
}

impl Value {
    /// TYPE's answer.
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            Value::List(_) => "list",
            Value::Hash(_) => "hash",
        }
    }

    /// Estimated bytes of the value (not its key), see [`super::memory`].
    pub(crate) fn memory_bytes(&self) -> u64 {
        match self {
            Value::List(list) => list.memory_bytes(),
            Value::Hash(hash) => hash.memory_bytes(),
        }
    }

    /// Whether Redis deletes the key now: empty lists and hashes vanish.
    pub(crate) fn is_empty_collection(&self) -> bool {
        match self {
            Value::List(list) => list.is_empty(),
            Value::Hash(hash) => hash.is_empty(),
        }
    }
}

/// A list (Redis's quicklist), head at the front.
#[derive(Clone, Debug, Default)]
pub struct List {
    items: VecDeque<Bytes>,
    items_bytes: u64,
}

fn element_bytes(item: &[u8]) -> u64 {
    LIST_ELEMENT_OVERHEAD_BYTES + item.len() as u64
}

impl List {
    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub(crate) fn memory_bytes(&self) -> u64 {
        LIST_OVERHEAD_BYTES + self.items_bytes
    }

    pub fn push(&mut self, item: Bytes, left: bool) {
        self.items_bytes += element_bytes(&item);
        if left {
            self.items.push_front(item);
        } else {
            self.items.push_back(item);
        }
    }

    pub fn pop(&mut self, left: bool) -> Option<Bytes> {
        let item = if left { self.items.pop_front() } else { self.items.pop_back() }?;
        self.items_bytes -= element_bytes(&item);
        Some(item)
    }

    pub fn get(&self, index: usize) -> Option<&Bytes> {
        self.items.get(index)
    }

    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &Bytes> + ExactSizeIterator {
        self.items.iter()
    }

    /// LREM: removes up to `count` (0 = all) elements equal to `item`, from the head
    /// (`from_head`) or the tail; returns the removed elements.
    pub(crate) fn remove_equal(&mut self, item: &[u8], count: usize, from_head: bool) -> Vec<Bytes> {
        let mut removed = Vec::new();
        let limit = if count == 0 { usize::MAX } else { count };
        if from_head {
            let mut index = 0;
            while index < self.items.len() && removed.len() < limit {
                if self.items[index] == item {
                    removed.push(self.items.remove(index).expect("index < len"));
                } else {
                    index += 1;
                }
            }
        } else {
            let mut index = self.items.len();
            while index > 0 && removed.len() < limit {
                index -= 1;
                if self.items[index] == item {
                    removed.push(self.items.remove(index).expect("index < len"));
                }
            }
        }
        for value in &removed {
            self.items_bytes -= element_bytes(value);
        }
        removed
    }

    /// Every element, for DEL and FLUSHALL custody.
    pub(crate) fn into_items(self) -> VecDeque<Bytes> {
        self.items
    }
}

/// A hash. Field order is insertion order, as Redis's listpack encoding (hashes up to
/// `hash-max-listpack-entries` 128 fields of ≤ 64 bytes) returns it; large real hashes use
/// a dict whose order is arbitrary, which the model does not copy.
#[derive(Clone, Debug, Default)]
pub struct Hash {
    /// field → (insertion sequence, value)
    fields: BTreeMap<Bytes, (u64, Bytes)>,
    next_seq: u64,
    fields_bytes: u64,
}

fn field_bytes(field: &[u8], value: &[u8]) -> u64 {
    HASH_FIELD_OVERHEAD_BYTES + field.len() as u64 + value.len() as u64
}

impl Hash {
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    pub(crate) fn memory_bytes(&self) -> u64 {
        HASH_OVERHEAD_BYTES + self.fields_bytes
    }

    pub fn get(&self, field: &[u8]) -> Option<&Bytes> {
        self.fields.get(field).map(|(_, value)| value)
    }

    /// Sets `field`; true if it is new. An updated field keeps its place.
    pub fn set(&mut self, field: Bytes, value: Bytes) -> bool {
        match self.fields.get_mut(&field) {
            Some((_, old)) => {
                self.fields_bytes -= field_bytes(&field, old);
                self.fields_bytes += field_bytes(&field, &value);
                *old = value;
                false
            }
            None => {
                self.fields_bytes += field_bytes(&field, &value);
                self.fields.insert(field, (self.next_seq, value));
                self.next_seq += 1;
                true
            }
        }
    }

    pub fn remove(&mut self, field: &[u8]) -> bool {
        match self.fields.remove(field) {
            Some((_, value)) => {
                self.fields_bytes -= field_bytes(field, &value);
                true
            }
            None => false,
        }
    }

    /// Fields and values in insertion order (HGETALL).
    pub fn entries(&self) -> Vec<(&Bytes, &Bytes)> {
        let mut entries: Vec<(u64, &Bytes, &Bytes)> =
            self.fields.iter().map(|(field, (seq, value))| (*seq, field, value)).collect();
        entries.sort_unstable_by_key(|entry| entry.0);
        entries.into_iter().map(|(_, field, value)| (field, value)).collect()
    }
}
