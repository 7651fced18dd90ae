//! The deterministic `used_memory` estimate that `maxmemory` is checked against.
//!
//! Why an estimate and not jemalloc's count: a run must replay byte for byte, so memory is
//! a pure function of the dataset. The constants approximate Redis 7.0's real costs
//! (dictEntry + robj + sds per key, listpack entry headers per element);
//! byte lengths of keys, fields and values count fully.
//! `used_memory = BASELINE_BYTES + Σ key_bytes(key, value)`.

/// An empty Redis 7.0.15 (Debian, jemalloc) reports `used_memory:914592` in `INFO memory`.
pub const BASELINE_BYTES: u64 = 914_592;
/// Per key: dictEntry (24) + key sds (~8 + len) + robj (16) + allocator rounding.
pub(crate) const KEY_OVERHEAD_BYTES: u64 = 64;
/// Per list: the quicklist and its first node.
pub(crate) const LIST_OVERHEAD_BYTES: u64 = 96;
/// Per list element: listpack entry header and back-length.
pub(crate) const LIST_ELEMENT_OVERHEAD_BYTES: u64 = 12;
/// Per hash: the listpack or dict header.
pub(crate) const HASH_OVERHEAD_BYTES: u64 = 64;
/// Per hash field: two listpack entries (field, value).
pub(crate) const HASH_FIELD_OVERHEAD_BYTES: u64 = 24;

/// What a key of `key_len` bytes costs besides its value.
pub(crate) fn key_bytes(key_len: usize) -> u64 {
    KEY_OVERHEAD_BYTES + key_len as u64
}

/// `bytes` as INFO's `*_human` fields print it (`893.16K`), Redis's `bytesToHuman`.
pub(crate) fn human(bytes: u64) -> String {
    let b = bytes as f64;
    if bytes < 1024 {
        format!("{bytes}B")
    } else if bytes < 1024 * 1024 {
        format!("{:.2}K", b / 1024.0)
    } else if bytes < 1024 * 1024 * 1024 {
        format!("{:.2}M", b / (1024.0 * 1024.0))
    } else {
        format!("{:.2}G", b / (1024.0 * 1024.0 * 1024.0))
    }
}
