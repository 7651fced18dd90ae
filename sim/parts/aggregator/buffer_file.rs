//! buf_file's chunk files on the host's disk: what a file buffer keeps across a restart.
//!
//! Fluentd 1.19 `lib/fluent/plugin/buffer/file_chunk.rb` (FIDELITY.md "Aggregator —
//! Fluentd"): a staged chunk is `<path>.b<id>.log`, renamed to `<path>.q<id>.log` when it
//! is enqueued; every write goes to the file through an IO with `sync = true` (Ruby's own
//! buffering off: each write is a `write(2)`) and nothing calls fsync. So a chunk survives a
//! killed process (the kernel's page cache has it) and not a power loss: obsim appends
//! without [`Disk::sync`] and holds the records `Written`. On start, `buf_file#resume` loads
//! `.q` files into the queue and `.b` files back into the stage.
//!
//! Each write appends one frame: `u32` length (big-endian) of what follows, `u64` bytes the
//! buffer counted for the write, then the records as a [`LogChunk`] (tag and records; the
//! enrichment is added when the chunk is written to Redis). A torn or unreadable frame ends
//! the file's content (what came before it is resumed).

use crate::parts::log_chunk::LogChunk;
use crate::record::LogRecord;
use crate::world::{Disk, DiskFull};

/// Where the buffer's files live (Fluentd's `<buffer> path`).
pub(crate) const BUFFER_DIR: &str = "fluentd/buffer.";

/// Frame header: length of the rest, then the write's counted bytes.
const FRAME_HEADER_BYTES: usize = 4 + 8;

/// A chunk file's state, from its name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FileState {
    /// `.b`: staged.
    Staged,
    /// `.q`: queued.
    Queued,
}

/// The path of chunk `id` in `state`.
pub(crate) fn chunk_path(id: u64, state: FileState) -> String {
    let letter = match state {
        FileState::Staged => 'b',
        FileState::Queued => 'q',
    };
    format!("{BUFFER_DIR}{letter}{id:016x}.log")
}

/// The id and state a chunk file's name says, if it is one.
pub(crate) fn parse_path(path: &str) -> Option<(u64, FileState)> {
    let rest = path.strip_prefix(BUFFER_DIR)?.strip_suffix(".log")?;
    let state = match rest.as_bytes().first()? {
        b'b' => FileState::Staged,
        b'q' => FileState::Queued,
        _ => return None,
    };
    u64::from_str_radix(&rest[1..], 16).ok().map(|id| (id, state))
}

/// One write's frame.
pub(crate) fn encode_frame(tag: &str, records: &[LogRecord], bytes: u64) -> Vec<u8> {
    let body =
        LogChunk { tag: tag.to_string(), environment: String::new(), region: String::new(), records: records.to_vec() }
            .encode();
    let mut frame = Vec::with_capacity(FRAME_HEADER_BYTES + body.len());
    frame.extend_from_slice(&((8 + body.len()) as u32).to_be_bytes());
    frame.extend_from_slice(&bytes.to_be_bytes());
    frame.extend_from_slice(&body);
    frame
}

/// What a chunk file holds: its tag, records and counted bytes; `torn` says a tail did not
/// decode (it is ignored).
#[derive(Debug, Default)]
pub(crate) struct FileContent {
    pub tag: String,
    pub records: Vec<LogRecord>,
    pub bytes: u64,
    pub torn: bool,
}

/// Decodes a chunk file's frames.
pub(crate) fn decode_file(data: &[u8]) -> FileContent {
    let mut content = FileContent::default();
    let mut rest = data;
    // Bounded: each pass consumes one whole frame or stops.
    while !rest.is_empty() {
        let Some(frame) = next_frame(rest) else {
            content.torn = true;
            break;
        };
        let (length, counted, chunk) = frame;
        content.tag = chunk.tag;
        content.records.extend(chunk.records);
        content.bytes += counted;
        rest = &rest[4 + length..];
    }
    content
}

/// The first frame of `data`: its length field, counted bytes and records.
fn next_frame(data: &[u8]) -> Option<(usize, u64, LogChunk)> {
    let length = u32::from_be_bytes(data.get(..4)?.try_into().ok()?) as usize;
    let body = data.get(4..4 + length)?;
    let counted = u64::from_be_bytes(body.get(..8)?.try_into().ok()?);
    let chunk = LogChunk::decode(&body[8..]).ok()?;
    Some((length, counted, chunk))
}

/// Renames chunk `id`'s file from staged to queued (`FileChunk#enqueued!`), as the disk
/// knows no rename: its content is written under the new name and the old is removed.
pub(crate) fn enqueue_file(disk: &Disk, id: u64) -> Result<String, DiskFull> {
    let (from, to) = (chunk_path(id, FileState::Staged), chunk_path(id, FileState::Queued));
    let data = disk.read(&from).unwrap_or_default();
    disk.remove(&from);
    disk.append(&to, &data)?;
    Ok(to)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_round_trip_and_foreign_names_are_not_chunks() {
        assert_eq!(chunk_path(26, FileState::Staged), "fluentd/buffer.b000000000000001a.log");
        assert_eq!(parse_path(&chunk_path(26, FileState::Queued)), Some((26, FileState::Queued)));
        assert_eq!(parse_path("fluentd/buffer.x01.log"), None);
        assert_eq!(parse_path("fluentd/other"), None);
    }

    #[test]
    fn a_torn_tail_is_ignored() {
        let mut data = encode_frame("dev.app", &[], 40);
        data.extend_from_slice(&encode_frame("dev.app", &[], 2));
        data.extend_from_slice(&[0, 0, 0, 99, 1]);
        let content = decode_file(&data);
        assert_eq!((content.tag.as_str(), content.bytes, content.torn), ("dev.app", 42, true));
    }
}
