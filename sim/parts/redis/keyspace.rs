//! One numbered database: keys to values, with the memory estimate kept in step.
//!
//! Why every change goes through here: `used_memory` must equal the sum of the estimates
//! of what is stored, and the only way to keep that true cheaply is to adjust it where
//! values change. Empty lists and hashes are deleted here, as Redis deletes them.

use std::collections::BTreeMap;

use bytes::Bytes;

use super::memory::key_bytes;
use super::value::Value;

/// A database (`SELECT n`).
#[derive(Clone, Debug, Default)]
pub(crate) struct Keyspace {
    map: BTreeMap<Bytes, Value>,
    bytes: u64,
}

impl Keyspace {
    pub fn get(&self, key: &[u8]) -> Option<&Value> {
        self.map.get(key)
    }

    pub fn contains(&self, key: &[u8]) -> bool {
        self.map.contains_key(key)
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Keys and values in key order (a snapshot walks them).
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&Bytes, &Value)> {
        self.map.iter()
    }

    /// Estimated bytes of every key and value here.
    pub(crate) fn memory_bytes(&self) -> u64 {
        self.bytes
    }

    /// Changes the value at `key` through `f`, keeping the memory count; deletes the key
    /// if `f` left an empty list or hash. `None` if the key is absent.
    pub fn update<R>(&mut self, key: &[u8], f: impl FnOnce(&mut Value) -> R) -> Option<R> {
        let value = self.map.get_mut(key)?;
        let before = value.memory_bytes();
        let result = f(value);
        let after = value.memory_bytes();
        self.bytes = self.bytes + after - before;
        if value.is_empty_collection() {
            self.remove(key);
        }
        Some(result)
    }

    /// Stores a new key (the caller checked it is absent).
    pub fn insert(&mut self, key: Bytes, value: Value) {
        self.bytes += key_bytes(key.len()) + value.memory_bytes();
        let old = self.map.insert(key, value);
        assert!(old.is_none(), "insert is for new keys only");
    }

    pub fn remove(&mut self, key: &[u8]) -> Option<Value> {
        let value = self.map.remove(key)?;
        self.bytes -= key_bytes(key.len()) + value.memory_bytes();
        Some(value)
    }

    /// Removes everything (FLUSHALL), returning the values for custody.
    pub fn clear(&mut self) -> Vec<Value> {
        self.bytes = 0;
        std::mem::take(&mut self.map).into_values().collect()
    }

    /// The estimate computed from scratch: tests assert it equals the running count.
    pub(crate) fn recount_bytes(&self) -> u64 {
        self.map.iter().map(|(key, value)| key_bytes(key.len()) + value.memory_bytes()).sum()
    }

    /// The memory book: the running count equals a recount, and an empty database counts
    /// nothing. Debug builds check it after every command (O(keys)); release runs skip it.
    pub(crate) fn assert_books(&self) {
        assert!(!self.map.is_empty() || self.bytes == 0, "redis keyspace: {} bytes counted with no keys", self.bytes);
        if cfg!(debug_assertions) {
            assert_eq!(self.bytes, self.recount_bytes(), "redis keyspace: used memory drifted from its keys");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parts::redis::value::List;

    /// A count that missed a change (a lost decrement) is caught.
    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "used memory drifted from its keys")]
    fn a_memory_count_that_drifts_from_the_keys_is_caught() {
        let mut keyspace = Keyspace::default();
        keyspace.insert(Bytes::from_static(b"q"), Value::List(List::default()));
        keyspace.assert_books();
        keyspace.bytes += 1;
        keyspace.assert_books();
    }

    /// Bytes counted in an empty database is refused in every build.
    #[test]
    #[should_panic(expected = "bytes counted with no keys")]
    fn bytes_in_an_empty_database_are_caught() {
        let keyspace = Keyspace { map: BTreeMap::new(), bytes: 7 };
        keyspace.assert_books();
    }
}
