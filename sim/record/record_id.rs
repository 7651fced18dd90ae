//! obsim's delivery identity: every log record and span the app emits is `(source, seq)`,
//! and it travels with the record through every hop (OTLP attributes `obsim.source` /
//! `obsim.seq`, msgpack and JSON fields of the same names) so that the delivery ledger can
//! say of each record: delivered once, duplicated, or lost (ARCHITECTURE.md §4).

use std::fmt;

use serde::{Deserialize, Serialize};

/// An emitter of records (one per app component instance), numbered by the world so that
/// per-source sequence bitmaps stay compact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SourceId(pub u32);

/// The identity of one emitted record: its source and the source's sequence number
/// (0, 1, 2, … without gaps; the ledger relies on that).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RecordId {
    /// Who emitted it.
    pub source: SourceId,
    /// Its number within the source.
    pub seq: u64,
}

impl RecordId {
    /// Largest sequence number: OTLP carries it as a signed 64-bit int attribute.
    pub const MAX_SEQ: u64 = i64::MAX as u64;

    /// The id of record `seq` of `source`.
    pub fn new(source: SourceId, seq: u64) -> Self {
        assert!(seq <= Self::MAX_SEQ, "seq {seq} does not fit an OTLP int attribute");
        Self { source, seq }
    }
}

impl fmt::Display for RecordId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.source.0, self.seq)
    }
}
