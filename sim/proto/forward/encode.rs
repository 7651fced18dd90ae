//! Encoders for what an agent sends: Message, Forward, PackedForward and
//! CompressedPackedForward frames with options `size`, `chunk`, `compressed`. Entries are
//! encoded once into one `EntryBatch` buffer; the same bytes then become a Forward array
//! (array header + entries) or a PackedForward stream (bin header + entries), so a batch is
//! never re-encoded per mode or per retry.

use std::io::Write;

use flate2::GzBuilder;
use serde::Serialize;

use super::check::{Check, check_value};
use super::error::ForwardError;
use super::event_time::EventTime;
use super::frame::{Compression, Options};
use super::reader::{is_map, type_name};
use super::write::{MSGPACK_LENGTH_LIMIT, write_array_len, write_bin_len, write_map_len, write_str, write_uint};

/// Gzip header OS byte "unknown": fixed so the bytes do not depend on the build platform.
const GZIP_OPERATING_SYSTEM_UNKNOWN: u8 = 255;

/// Entries `[time, record]` encoded back to back in one buffer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EntryBatch {
    entries_bytes: Vec<u8>,
    entries_count: usize,
}

impl EntryBatch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty batch whose buffer starts with room for `bytes_capacity` bytes.
    pub fn with_capacity(bytes_capacity: usize) -> Self {
        Self { entries_bytes: Vec::with_capacity(bytes_capacity), entries_count: 0 }
    }

    /// Appends one entry, serializing `record` with named fields (structs become maps, as
    /// the spec requires of records). On error the batch is left as it was.
    pub fn push<T: Serialize + ?Sized>(&mut self, time: EventTime, record: &T) -> Result<(), ForwardError> {
        let start_bytes = self.entries_bytes.len();
        write_array_len(&mut self.entries_bytes, 2);
        time.encode(&mut self.entries_bytes);
        let record_at = self.entries_bytes.len();
        let written = rmp_serde::encode::write_named(&mut self.entries_bytes, record)
            .map_err(|error| ForwardError::Encode { reason: error.to_string() })
            .and_then(|()| expect_map_at(&self.entries_bytes, record_at));
        if let Err(error) = written {
            self.entries_bytes.truncate(start_bytes);
            return Err(error);
        }
        self.entries_count += 1;
        Ok(())
    }

    /// Appends one entry whose record is already msgpack (a relay forwarding what it
    /// received); the bytes must be exactly one map.
    pub(crate) fn push_raw(&mut self, time: EventTime, record: &[u8]) -> Result<(), ForwardError> {
        expect_one_map(record)?;
        write_array_len(&mut self.entries_bytes, 2);
        time.encode(&mut self.entries_bytes);
        self.entries_bytes.extend_from_slice(record);
        self.entries_count += 1;
        Ok(())
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries_count
    }

    /// True when no entry was pushed.
    pub fn is_empty(&self) -> bool {
        self.entries_count == 0
    }

    /// The concatenated entries: exactly a PackedForward stream.
    pub(crate) fn entries_bytes(&self) -> &[u8] {
        &self.entries_bytes
    }

    /// Drops every entry appended since the batch held `entries_count` entries in
    /// `entries_bytes` bytes: for a caller that must refuse what it just appended (the
    /// agent when `storage.total_limit_size` leaves no room for it).
    pub(crate) fn truncate(&mut self, entries_count: usize, entries_bytes: usize) {
        assert!(
            entries_count <= self.entries_count && entries_bytes <= self.entries_bytes.len(),
            "EntryBatch::truncate grows the batch ({entries_count} entries, {entries_bytes} bytes)"
        );
        self.entries_bytes.truncate(entries_bytes);
        self.entries_count = entries_count;
    }

    /// Empties the batch, keeping its buffer for reuse.
    pub fn clear(&mut self) {
        self.entries_bytes.clear();
        self.entries_count = 0;
    }
}

/// Fails unless the value starting at `at` is a map (serde may produce any type).
fn expect_map_at(bytes: &[u8], at: usize) -> Result<(), ForwardError> {
    let marker = rmp::Marker::from_u8(
        *bytes.get(at).ok_or(ForwardError::Encode { reason: "serializer wrote nothing for the record".to_owned() })?,
    );
    if is_map(marker) {
        Ok(())
    } else {
        Err(ForwardError::Encode { reason: format!("record must be a map, got {}", type_name(marker)) })
    }
}

/// Fails unless `record` is exactly one whole msgpack map.
fn expect_one_map(record: &[u8]) -> Result<(), ForwardError> {
    expect_map_at(record, 0)?;
    match check_value(record, record.len()) {
        Ok(Check::Complete { frame_bytes }) if frame_bytes == record.len() => Ok(()),
        Ok(Check::Complete { frame_bytes }) => Err(ForwardError::Encode {
            reason: format!("record has {} bytes after its map", record.len() - frame_bytes),
        }),
        Ok(Check::Incomplete) | Err(_) => {
            Err(ForwardError::Encode { reason: "record is not a whole msgpack map".to_owned() })
        }
    }
}

/// Checks options against what is being sent: `size` must equal the entries, and gzip
/// belongs only to CompressedPackedForward.
fn check_options(options: &Options, entries_count: usize, gzip: bool) -> Result<(), ForwardError> {
    if let Some(size) = options.size
        && size != entries_count as u64
    {
        return Err(ForwardError::Encode { reason: format!("option size={size} but {entries_count} entries") });
    }
    match (options.compressed, gzip) {
        (Some(Compression::Gzip), false) => Err(ForwardError::Encode {
            reason: "option compressed=gzip needs encode_compressed_packed_forward".to_owned(),
        }),
        (Some(Compression::Text), true) => {
            Err(ForwardError::Encode { reason: "option compressed=text contradicts gzip encoding".to_owned() })
        }
        _ => Ok(()),
    }
}

/// Writes the option map in a fixed key order (size, chunk, compressed).
fn write_options(out: &mut Vec<u8>, options: &Options) {
    let pairs = usize::from(options.size.is_some())
        + usize::from(options.chunk.is_some())
        + usize::from(options.compressed.is_some());
    write_map_len(out, pairs);
    if let Some(size) = options.size {
        write_str(out, "size");
        write_uint(out, size);
    }
    if let Some(chunk) = &options.chunk {
        write_str(out, "chunk");
        write_str(out, chunk);
    }
    if let Some(compressed) = options.compressed {
        write_str(out, "compressed");
        write_str(out, compressed.as_str());
    }
}

/// Appends a Message frame `[tag, time, record]`, or `[tag, time, record, option]` when
/// options are set.
pub fn encode_message<T: Serialize + ?Sized>(
    out: &mut Vec<u8>,
    tag: &str,
    time: EventTime,
    record: &T,
    options: &Options,
) -> Result<(), ForwardError> {
    check_options(options, 1, false)?;
    let start_bytes = out.len();
    write_array_len(out, if options.is_empty() { 3 } else { 4 });
    write_str(out, tag);
    time.encode(out);
    let record_at = out.len();
    let written = rmp_serde::encode::write_named(out, record)
        .map_err(|error| ForwardError::Encode { reason: error.to_string() })
        .and_then(|()| expect_map_at(out, record_at));
    if let Err(error) = written {
        out.truncate(start_bytes);
        return Err(error);
    }
    if !options.is_empty() {
        write_options(out, options);
    }
    Ok(())
}

/// Appends a Message frame whose record is already msgpack (exactly one map): what a relay
/// re-sending a received Message writes, and the fuzzing round trip's Message encoder.
pub(crate) fn encode_message_raw(
    out: &mut Vec<u8>,
    tag: &str,
    time: EventTime,
    record: &[u8],
    options: &Options,
) -> Result<(), ForwardError> {
    check_options(options, 1, false)?;
    expect_one_map(record)?;
    write_array_len(out, if options.is_empty() { 3 } else { 4 });
    write_str(out, tag);
    time.encode(out);
    out.extend_from_slice(record);
    if !options.is_empty() {
        write_options(out, options);
    }
    Ok(())
}

/// Appends a Forward frame `[tag, [[time, record], ...], option?]`.
pub fn encode_forward(out: &mut Vec<u8>, tag: &str, batch: &EntryBatch, options: &Options) -> Result<(), ForwardError> {
    check_options(options, batch.len(), false)?;
    if batch.len() > MSGPACK_LENGTH_LIMIT {
        return Err(ForwardError::Encode { reason: "more entries than a msgpack array holds".to_owned() });
    }
    write_array_len(out, if options.is_empty() { 2 } else { 3 });
    write_str(out, tag);
    write_array_len(out, batch.len());
    out.extend_from_slice(batch.entries_bytes());
    if !options.is_empty() {
        write_options(out, options);
    }
    Ok(())
}

/// Appends a PackedForward frame `[tag, bin(entries), option?]` (bin, as Fluent Bit sends).
pub fn encode_packed_forward(
    out: &mut Vec<u8>,
    tag: &str,
    batch: &EntryBatch,
    options: &Options,
) -> Result<(), ForwardError> {
    check_options(options, batch.len(), false)?;
    write_stream_frame(out, tag, batch.entries_bytes(), options)
}

/// Appends a CompressedPackedForward frame: the entries gzip'ed (one member, mtime 0,
/// fixed OS byte, so the bytes are deterministic) with option `compressed: "gzip"` (added if
/// the caller left it unset).
pub fn encode_compressed_packed_forward(
    out: &mut Vec<u8>,
    tag: &str,
    batch: &EntryBatch,
    options: &Options,
) -> Result<(), ForwardError> {
    check_options(options, batch.len(), true)?;
    let gzip = gzip(batch.entries_bytes())?;
    let options = Options { compressed: Some(Compression::Gzip), ..options.clone() };
    write_stream_frame(out, tag, &gzip, &options)
}

/// Writes `[tag, bin(stream), option?]`.
fn write_stream_frame(out: &mut Vec<u8>, tag: &str, stream: &[u8], options: &Options) -> Result<(), ForwardError> {
    if stream.len() > MSGPACK_LENGTH_LIMIT {
        return Err(ForwardError::Encode { reason: "stream longer than a msgpack bin holds".to_owned() });
    }
    write_array_len(out, if options.is_empty() { 2 } else { 3 });
    write_str(out, tag);
    write_bin_len(out, stream.len());
    out.extend_from_slice(stream);
    if !options.is_empty() {
        write_options(out, options);
    }
    Ok(())
}

/// Gzips `data` as one member with a fixed header.
pub fn gzip(data: &[u8]) -> Result<Vec<u8>, ForwardError> {
    let mut encoder = GzBuilder::new()
        .mtime(0)
        .operating_system(GZIP_OPERATING_SYSTEM_UNKNOWN)
        .write(Vec::with_capacity(data.len() / 2 + 64), flate2::Compression::fast());
    encoder.write_all(data).map_err(|error| ForwardError::Encode { reason: error.to_string() })?;
    encoder.finish().map_err(|error| ForwardError::Encode { reason: error.to_string() })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use bytes::Bytes;
    use serde::Deserialize;

    use super::*;
    use crate::proto::forward::frame::{Mode, parse_event_frame};
    use crate::proto::forward::limits::Limits;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct LogLine {
        message: String,
        job_id: String,
        #[serde(with = "serde_bytes")]
        payload: Vec<u8>,
    }

    fn line(index: u32) -> LogLine {
        LogLine { message: format!("step {index}"), job_id: "job-1".to_owned(), payload: vec![1, 2, 3] }
    }

    #[test]
    fn structs_become_maps_and_bytes_become_bin() {
        let mut batch = EntryBatch::new();
        batch.push(EventTime { seconds: 1, nanoseconds: 2 }, &line(0)).unwrap();
        let bytes = batch.entries_bytes();
        // [fixarray 2][fixext8 time: 10 bytes][fixmap 3 ...]
        assert_eq!(bytes[0], 0x92);
        assert_eq!(bytes[11], 0x83);
        let bin_at = bytes.windows(5).position(|w| w == [0xc4, 0x03, 1, 2, 3]);
        assert!(bin_at.is_some(), "payload is msgpack bin");
    }

    #[test]
    fn non_map_records_are_refused_and_leave_the_batch_untouched() {
        let mut batch = EntryBatch::new();
        batch.push(EventTime::default(), &line(0)).unwrap();
        let before = batch.clone();
        let error = batch.push(EventTime::default(), &("a", 1)).unwrap_err();
        assert_eq!(error, ForwardError::Encode { reason: "record must be a map, got array".to_owned() });
        assert_eq!(batch, before);
        assert!(batch.push_raw(EventTime::default(), &[0x81, 0xa1, b'k']).is_err());
        assert!(batch.push_raw(EventTime::default(), &[0x80, 0x80]).is_err());
        assert_eq!(batch, before);
        let mut out = Vec::new();
        assert!(encode_message(&mut out, "t", EventTime::default(), &7u8, &Options::default()).is_err());
        assert!(out.is_empty());
    }

    #[test]
    fn one_batch_frames_in_every_mode_and_decodes_back() {
        let mut batch = EntryBatch::with_capacity(1024);
        for index in 0..3 {
            batch.push(EventTime { seconds: 100 + index, nanoseconds: index }, &line(index)).unwrap();
        }
        let mut raw = EntryBatch::new();
        let record = rmp_serde::to_vec_named(&line(9)).unwrap();
        raw.push_raw(EventTime { seconds: 9, nanoseconds: 9 }, &record).unwrap();
        assert_eq!(raw.len(), 1);
        let options = Options { size: Some(3), chunk: Some("Y2h1bmstaWQ=".to_owned()), compressed: None };
        type Encoder = fn(&mut Vec<u8>, &str, &EntryBatch, &Options) -> Result<(), ForwardError>;
        let encoders: [(Encoder, Mode); 3] = [
            (encode_forward, Mode::Forward),
            (encode_packed_forward, Mode::PackedForward),
            (encode_compressed_packed_forward, Mode::CompressedPackedForward),
        ];
        for (encoder, mode) in encoders {
            let mut out = Vec::new();
            encoder(&mut out, "app.log", &batch, &options).unwrap();
            let frame = parse_event_frame(&Bytes::from(out), &Limits::default()).unwrap();
            assert_eq!(frame.mode, mode);
            assert_eq!(frame.tag, "app.log");
            assert_eq!(frame.options.size, Some(3));
            assert_eq!(frame.ack_chunk(), Some("Y2h1bmstaWQ="));
            let lines: Vec<LogLine> = frame.entries.iter().map(|e| e.deserialize_record().unwrap()).collect();
            assert_eq!(lines, vec![line(0), line(1), line(2)]);
            assert_eq!(frame.entries[2].time, EventTime { seconds: 102, nanoseconds: 2 });
        }
    }

    #[test]
    fn options_inconsistent_with_the_batch_are_refused() {
        let mut batch = EntryBatch::new();
        batch.push(EventTime::default(), &BTreeMap::from([("k", "v")])).unwrap();
        let mut out = Vec::new();
        let wrong_size = Options { size: Some(2), ..Options::default() };
        assert!(encode_forward(&mut out, "t", &batch, &wrong_size).is_err());
        let gzip_option = Options { compressed: Some(Compression::Gzip), ..Options::default() };
        assert!(encode_packed_forward(&mut out, "t", &batch, &gzip_option).is_err());
        let text_option = Options { compressed: Some(Compression::Text), ..Options::default() };
        assert!(encode_compressed_packed_forward(&mut out, "t", &batch, &text_option).is_err());
        assert!(out.is_empty());
        batch.clear();
        assert!(batch.is_empty() && batch.entries_bytes().is_empty());
    }

    #[test]
    fn gzip_bytes_are_deterministic() {
        let data = b"the same input gives the same bytes".repeat(10);
        assert_eq!(gzip(&data).unwrap(), gzip(&data).unwrap());
        let member = gzip(&data).unwrap();
        assert_eq!(member[..4], [0x1f, 0x8b, 0x08, 0x00]);
        assert_eq!(member[4..8], [0, 0, 0, 0], "mtime is zero");
        assert_eq!(member[9], GZIP_OPERATING_SYSTEM_UNKNOWN);
    }
}
