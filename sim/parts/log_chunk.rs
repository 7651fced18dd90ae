//! The unit of the Redis log buffer: one msgpack value per Fluentd buffer chunk.
//!
//! Why a chunk per value and not a record per value: every hop batches (ARCHITECTURE.md §7). The
//! aggregator RPUSHes one value per flushed chunk, the shipper LMOVEs one value and POSTs
//! its records as one OTLP request, and the reliable-queue pattern's LREM removes exactly
//! that value after a 2xx. The aggregator's enrichment (environment, region) is written
//! once per chunk and becomes the OTLP resource attributes.

use serde::{Deserialize, Serialize};

use crate::record::{LogRecord, RecordId};

/// Largest chunk value accepted from Redis: matches Fluentd's default chunk_limit_size of
/// 8 MiB (buf_memory), with room for msgpack framing.
pub(crate) const CHUNK_BYTES_LIMIT: usize = 9 * 1024 * 1024;

/// One buffered chunk of enriched log records.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LogChunk {
    /// The Fluentd tag the records were routed by (e.g. `machine.comfyui`).
    pub tag: String,
    /// Enrichment: `deployment.environment`.
    pub environment: String,
    /// Enrichment: `cloud.region`.
    pub region: String,
    /// The records, in arrival order.
    pub records: Vec<LogRecord>,
}

/// Why bytes from the buffer are not a chunk.
#[derive(Debug)]
pub enum ChunkError {
    TooLarge { bytes: usize },
    Msgpack(rmp_serde::decode::Error),
}

impl std::fmt::Display for ChunkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChunkError::TooLarge { bytes } => {
                write!(f, "log chunk of {bytes} bytes exceeds CHUNK_BYTES_LIMIT {CHUNK_BYTES_LIMIT}")
            }
            ChunkError::Msgpack(error) => write!(f, "log chunk is not a msgpack chunk map: {error}"),
        }
    }
}

impl std::error::Error for ChunkError {}

impl LogChunk {
    /// The chunk as the msgpack map stored in Redis.
    pub fn encode(&self) -> Vec<u8> {
        rmp_serde::to_vec_named(self).expect("a LogChunk always serializes to msgpack")
    }

    /// Reads a chunk back, refusing oversized values before decoding them.
    pub fn decode(bytes: &[u8]) -> Result<LogChunk, ChunkError> {
        if bytes.len() > CHUNK_BYTES_LIMIT {
            return Err(ChunkError::TooLarge { bytes: bytes.len() });
        }
        rmp_serde::from_slice(bytes).map_err(ChunkError::Msgpack)
    }

    /// The ids of the records in an encoded chunk, or none if the bytes are not a chunk
    /// (job-queue values share the Redis server): what the Redis model reports custody of.
    pub fn record_ids(bytes: &[u8]) -> Vec<RecordId> {
        match LogChunk::decode(bytes) {
            Ok(chunk) => chunk.records.iter().map(|record| record.id).collect(),
            Err(_) => Vec::new(),
        }
    }
}
