//! Decoded event frames (the four carrier modes of Forward protocol v1) and their `parse`
//! pass. Records stay raw msgpack: each entry's record is a `Bytes` slice of the frame (or
//! of the one inflated buffer), so decoding a batch allocates the entry list and nothing
//! per record.

use std::io::Read;

use bytes::Bytes;
use flate2::read::MultiGzDecoder;
use rmp::Marker;
use serde::de::DeserializeOwned;

use super::error::ForwardError;
use super::event_time::{EventTime, TimeForm, WireTime};
use super::limits::Limits;
use super::reader::{Reader, is_map, type_name, wrong_type};

/// Which of the spec's carrier modes a frame used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Mode {
    /// `[tag, time, record, option?]`: one event.
    Message,
    /// `[tag, [[time, record], ...], option?]`.
    Forward,
    /// `[tag, bin-or-str of concatenated [time, record], option?]`.
    PackedForward,
    /// PackedForward whose stream is gzip (option `compressed: "gzip"`).
    CompressedPackedForward,
}

impl Mode {
    /// The spec's name for the mode, for messages and reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::Message => "Message",
            Self::Forward => "Forward",
            Self::PackedForward => "PackedForward",
            Self::CompressedPackedForward => "CompressedPackedForward",
        }
    }
}

/// The `compressed` option's values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Compression {
    /// The stream is gzip (one or more members).
    Gzip,
    /// The stream is plain msgpack (explicitly saying so is allowed).
    Text,
}

impl Compression {
    /// The wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Gzip => "gzip",
            Self::Text => "text",
        }
    }
}

/// The option map. Unknown keys are skipped on decode (the spec allows extension) and never
/// written on encode.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// Number of events carried; checked against the entries on decode.
    pub size: Option<u64>,
    /// Chunk id; when present the server must answer `{"ack": chunk}`.
    pub chunk: Option<String>,
    /// How a PackedForward stream is compressed.
    pub compressed: Option<Compression>,
}

impl Options {
    /// True when no option is set (encoders then omit the map).
    pub fn is_empty(&self) -> bool {
        self.size.is_none() && self.chunk.is_none() && self.compressed.is_none()
    }
}

/// One event: its time and its record, kept as the raw msgpack map.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The event's time (saturated into an EventTime's range; see `time_saturated`).
    pub time: EventTime,
    /// The msgpack type the time arrived as: the aggregator judges the event by it as
    /// Fluentd's `invalid_event?` does.
    pub time_form: TimeForm,
    /// The time on the wire lay outside an EventTime's range; `time` is the nearest end.
    pub time_saturated: bool,
    /// The record: one whole msgpack map, a slice of the received bytes.
    pub record: Bytes,
}

impl Entry {
    /// An entry whose time was decoded as `wire`.
    fn from_wire(wire: WireTime, record: Bytes) -> Entry {
        Entry { time: wire.time, time_form: wire.form, time_saturated: wire.saturated, record }
    }

    /// An entry with an EventTime (what obsim's own encoders write).
    pub fn with_event_time(time: EventTime, record: Bytes) -> Entry {
        Entry { time, time_form: TimeForm::EventTime, time_saturated: false, record }
    }

    /// Deserializes the record into any type (a struct, a `BTreeMap`, ...).
    pub fn deserialize_record<T: DeserializeOwned>(&self) -> Result<T, ForwardError> {
        rmp_serde::from_slice(&self.record).map_err(|error| ForwardError::Deserialize { reason: error.to_string() })
    }
}

/// A decoded event frame, whatever its mode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventFrame {
    /// The tag shared by every entry.
    pub tag: String,
    /// The carrier mode it arrived in.
    pub mode: Mode,
    /// The events, in wire order.
    pub entries: Vec<Entry>,
    /// The options (empty if the frame had none).
    pub options: Options,
}

impl EventFrame {
    /// The chunk id to acknowledge, if the client asked for an ack.
    pub fn ack_chunk(&self) -> Option<&str> {
        self.options.chunk.as_deref()
    }
}

/// Parses one complete frame (as found by `check_value`) as an event frame in any mode.
///
/// Checks the spec's rules: element counts per mode, tag is str, time is EventTime or a
/// number, records are maps, PackedForward streams are bin or str of whole `[time, record]`
/// arrays, `size` is kept as the hint it is, `compressed` is "gzip" or "text" (ignored outside PackedForward), and
/// nothing trails the frame. Limits bound entries and inflation.
pub fn parse_event_frame(frame: &Bytes, limits: &Limits) -> Result<EventFrame, ForwardError> {
    let mut reader = Reader::new(frame);
    let elements = reader.read_array_len("Forward frame")?;
    if !(2..=4).contains(&elements) {
        return Err(ForwardError::WrongLength { what: "Forward frame", expected: "2 to 4", got: elements.into() });
    }
    let tag = reader.read_str("tag")?.to_owned();
    let second = reader.peek_marker("the element after the tag")?;
    let mut entries = Vec::new();
    let (mode, options) = match second {
        Marker::FixArray(_) | Marker::Array16 | Marker::Array32 => {
            expect_elements(elements, Mode::Forward)?;
            read_forward_entries(&mut reader, frame, limits, &mut entries)?;
            let options = ignore_compressed(read_options_if(&mut reader, elements == 3)?);
            (Mode::Forward, options)
        }
        Marker::FixStr(_)
        | Marker::Str8
        | Marker::Str16
        | Marker::Str32
        | Marker::Bin8
        | Marker::Bin16
        | Marker::Bin32 => {
            expect_elements(elements, Mode::PackedForward)?;
            let stream = reader.read_str_or_bin("PackedForward entries")?;
            let stream = frame.slice_ref(stream);
            let options = read_options_if(&mut reader, elements == 3)?;
            if options.compressed == Some(Compression::Gzip) {
                let inflated = inflate(&stream, limits.decompressed_bytes_limit)?;
                read_packed_entries(&inflated, limits, &mut entries)?;
                (Mode::CompressedPackedForward, options)
            } else {
                read_packed_entries(&stream, limits, &mut entries)?;
                (Mode::PackedForward, options)
            }
        }
        marker if is_time(marker) => {
            expect_elements(elements, Mode::Message)?;
            let time_wire = EventTime::decode(&mut reader)?;
            let record = read_record(&mut reader, frame)?;
            entries.reserve_exact(1);
            entries.push(Entry::from_wire(time_wire, record));
            let options = ignore_compressed(read_options_if(&mut reader, elements == 4)?);
            (Mode::Message, options)
        }
        other => {
            return Err(ForwardError::WrongType {
                what: "the element after the tag",
                expected: "EventTime or int (Message), array (Forward), bin or str (PackedForward)",
                got: type_name(other),
            });
        }
    };
    reader.expect_end("Forward frame")?;
    // `size` is a hint, never checked against the entries: Fluentd passes it to its event
    // stream as a count hint only, and clients send other numbers (FIDELITY.md, Aggregator).
    let frame = EventFrame { tag, mode, entries, options };
    assert_within_limits(&frame, limits);
    Ok(frame)
}

/// What one decoded entry costs in memory, whatever its wire size.
pub const ENTRY_BYTES: usize = std::mem::size_of::<Entry>();

/// The most entries a frame may carry under `limits`: the count limit, or fewer when
/// their memory would exceed `entries_bytes_limit`.
fn entries_limit(limits: &Limits) -> usize {
    limits.entries_count_limit.min(limits.entries_bytes_limit / ENTRY_BYTES)
}

/// The error for more entries than [`entries_limit`]: the limit that binds.
fn too_many(limits: &Limits) -> ForwardError {
    if limits.entries_count_limit <= limits.entries_bytes_limit / ENTRY_BYTES {
        ForwardError::TooManyEntries { entries_count_limit: limits.entries_count_limit as u64 }
    } else {
        ForwardError::EntriesTooLarge { entries_bytes_limit: limits.entries_bytes_limit as u64 }
    }
}

/// The parser's postcondition: a frame it hands out carries at most `entries_count_limit`
/// entries, and its entry table (its capacity, not only its length) takes at most
/// `entries_bytes_limit` (the readers refuse more before allocating them). O(1).
fn assert_within_limits(frame: &EventFrame, limits: &Limits) {
    assert!(
        frame.entries.len() <= limits.entries_count_limit,
        "forward parser: {} entries over the limit {}",
        frame.entries.len(),
        limits.entries_count_limit
    );
    assert!(
        frame.entries.capacity() * ENTRY_BYTES <= limits.entries_bytes_limit.max(ENTRY_BYTES),
        "forward parser: an entry table of {} entries over entries_bytes_limit {}",
        frame.entries.capacity(),
        limits.entries_bytes_limit
    );
}

/// Markers a Message's time may start with.
fn is_time(marker: Marker) -> bool {
    matches!(type_name(marker), "ext" | "int" | "float")
}

/// The mode's frame has its required elements plus, optionally, an option map.
fn expect_elements(elements: u32, mode: Mode) -> Result<(), ForwardError> {
    let (required, what, expected) = match mode {
        Mode::Message => (3, "Message frame", "3 or 4"),
        Mode::Forward => (2, "Forward frame", "2 or 3"),
        Mode::PackedForward | Mode::CompressedPackedForward => (2, "PackedForward frame", "2 or 3"),
    };
    if elements == required || elements == required + 1 {
        return Ok(());
    }
    Err(ForwardError::WrongLength { what, expected, got: elements.into() })
}

/// `compressed` outside PackedForward is ignored, as Fluentd's `on_message` reads it only for
/// a packed stream (FIDELITY.md, Aggregator): the frame keeps no option it did not act on.
fn ignore_compressed(options: Options) -> Options {
    Options { compressed: None, ..options }
}

/// Reads one record: a whole msgpack map, returned as a slice of `source`.
fn read_record(reader: &mut Reader<'_>, source: &Bytes) -> Result<Bytes, ForwardError> {
    let marker = reader.peek_marker("record")?;
    if !is_map(marker) {
        return Err(wrong_type("record", "map", marker));
    }
    let range = reader.skip_value("record")?;
    Ok(source.slice(range))
}

/// Reads one `[time, record]` entry.
fn read_entry(reader: &mut Reader<'_>, source: &Bytes, what: &'static str) -> Result<Entry, ForwardError> {
    let elements = reader.read_array_len(what)?;
    if elements != 2 {
        return Err(ForwardError::WrongLength { what, expected: "2 ([time, record])", got: elements.into() });
    }
    let time_wire = EventTime::decode(reader)?;
    let record = read_record(reader, source)?;
    Ok(Entry::from_wire(time_wire, record))
}

/// Reads Forward mode's array of entries.
fn read_forward_entries(
    reader: &mut Reader<'_>,
    frame: &Bytes,
    limits: &Limits,
    entries: &mut Vec<Entry>,
) -> Result<(), ForwardError> {
    let count = reader.read_array_len("Forward entries")? as usize;
    if count > limits.entries_count_limit {
        return Err(ForwardError::TooManyEntries { entries_count_limit: limits.entries_count_limit as u64 });
    }
    if count > entries_limit(limits) {
        return Err(too_many(limits));
    }
    // Every entry takes at least one byte, so the frame's length also bounds the count.
    entries.reserve_exact(count.min(reader.remaining_bytes()));
    for _ in 0..count {
        entries.push(read_entry(reader, frame, "Forward entry")?);
    }
    Ok(())
}

/// Reads a PackedForward stream: concatenated `[time, record]` arrays, up to its end.
fn read_packed_entries(stream: &Bytes, limits: &Limits, entries: &mut Vec<Entry>) -> Result<(), ForwardError> {
    let mut reader = Reader::new(stream);
    let entries_limit = entries_limit(limits);
    // Bounded: each entry consumes at least one byte of the stream.
    while reader.remaining_bytes() > 0 {
        if entries.len() >= entries_limit {
            return Err(too_many(limits));
        }
        if entries.len() == entries.capacity() {
            // Doubling, but never past the limit: the table's capacity is what it costs.
            let target = entries.capacity().saturating_mul(2).max(16).min(entries_limit);
            entries.reserve_exact(target - entries.len());
        }
        entries.push(read_entry(&mut reader, stream, "PackedForward entry")?);
    }
    Ok(())
}

/// Reads the option map if the frame has one.
fn read_options_if(reader: &mut Reader<'_>, present: bool) -> Result<Options, ForwardError> {
    if present { read_options(reader) } else { Ok(Options::default()) }
}

/// Reads the option map: `size`, `chunk`, `compressed`; unknown keys are skipped.
pub(crate) fn read_options(reader: &mut Reader<'_>) -> Result<Options, ForwardError> {
    let pairs = reader.read_map_len("option")?;
    let mut options = Options::default();
    // Bounded: each pair consumes at least two bytes of a frame already checked.
    for _ in 0..pairs {
        let key = reader.read_str("option key")?;
        match key {
            "size" => options.size = Some(reader.read_uint("option size")?),
            "chunk" => {
                let chunk = reader.read_str_or_bin("option chunk")?;
                let chunk =
                    std::str::from_utf8(chunk).map_err(|_| ForwardError::InvalidUtf8 { what: "option chunk" })?;
                options.chunk = Some(chunk.to_owned());
            }
            "compressed" => {
                options.compressed = Some(match reader.read_str("option compressed")? {
                    "gzip" => Compression::Gzip,
                    "text" => Compression::Text,
                    other => {
                        return Err(ForwardError::UnknownCompression { got: other.to_owned() });
                    }
                });
            }
            _ => {
                reader.skip_value("option value")?;
            }
        }
    }
    Ok(options)
}

/// Bytes inflated per step: the buffer grows by doubling, but never past the limit plus
/// one byte, so a bomb costs at most `decompressed_bytes_limit + 1` bytes of buffer.
pub(crate) const INFLATE_STEP_BYTES: usize = 64 << 10;

/// Inflates gzip data (any number of concatenated members), refusing to produce more than
/// `decompressed_bytes_limit` bytes: a gzip bomb stops at the limit, not at memory's end.
pub fn inflate(gzip: &[u8], decompressed_bytes_limit: usize) -> Result<Bytes, ForwardError> {
    let mut inflated = Vec::new();
    inflate_into(gzip, decompressed_bytes_limit, &mut inflated)?;
    Ok(Bytes::from(inflated))
}

/// [`inflate`] into `inflated` (empty on entry), in steps of [`INFLATE_STEP_BYTES`]: the
/// buffer's capacity never exceeds `decompressed_bytes_limit + 1`, checked as the bytes are
/// produced. (Reading to the end under a `take(limit + 1)` let the buffer double to twice
/// the limit before the check.)
fn inflate_into(gzip: &[u8], decompressed_bytes_limit: usize, inflated: &mut Vec<u8>) -> Result<(), ForwardError> {
    assert!(inflated.is_empty());
    if gzip.is_empty() {
        return Ok(());
    }
    let too_large = ForwardError::DecompressedTooLarge { decompressed_bytes_limit: decompressed_bytes_limit as u64 };
    let capacity_limit = decompressed_bytes_limit.saturating_add(1);
    let mut decoder = MultiGzDecoder::new(gzip);
    // Bounded: every pass but the last adds at least one byte, and the bytes are bounded
    // by the limit check.
    loop {
        let produced = inflated.len();
        let want = produced.saturating_add(INFLATE_STEP_BYTES).min(capacity_limit);
        if want > inflated.capacity() {
            let target = inflated.capacity().saturating_mul(2).clamp(want, capacity_limit);
            inflated.reserve_exact(target - produced);
        }
        inflated.resize(want, 0);
        let read = decoder.read(&mut inflated[produced..]);
        let read = read.map_err(|error| ForwardError::Gzip { reason: error.to_string() })?;
        inflated.truncate(produced + read);
        debug_assert!(inflated.capacity() <= capacity_limit);
        if inflated.len() > decompressed_bytes_limit {
            return Err(too_large);
        }
        if read == 0 {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::proto::forward::encode::{EntryBatch, encode_forward, gzip};
    use crate::proto::forward::limits::ENTRIES_BYTES_LIMIT_DEFAULT;
    use crate::proto::forward::write::{write_array_len, write_bin, write_map_len, write_str, write_uint};

    fn record(message: &str) -> BTreeMap<String, String> {
        BTreeMap::from([("message".to_owned(), message.to_owned())])
    }

    fn time(seconds: u32) -> EventTime {
        EventTime { seconds, nanoseconds: 7 }
    }

    fn batch(count: u32) -> EntryBatch {
        let mut batch = EntryBatch::new();
        for index in 0..count {
            batch.push(time(index), &record(&format!("line {index}"))).unwrap();
        }
        batch
    }

    /// A frame with more entries than the limit it was parsed under breaks the postcondition.
    #[test]
    #[should_panic(expected = "forward parser: 2 entries over the limit 1")]
    fn a_frame_over_its_entries_limit_breaks_the_postcondition() {
        let entry = Entry::with_event_time(time(1), Bytes::from_static(&[0x80]));
        let frame = EventFrame {
            tag: "t".to_owned(),
            mode: Mode::Forward,
            entries: vec![entry.clone(), entry],
            options: Options::default(),
        };
        let limits = Limits { entries_count_limit: 1, ..Limits::default() };
        assert_within_limits(&frame, &limits);
    }

    fn parse(bytes: Vec<u8>) -> Result<EventFrame, ForwardError> {
        parse_event_frame(&Bytes::from(bytes), &Limits::default())
    }

    /// `[tag, stream-as-bin, options]` by hand.
    fn packed_frame(stream: &[u8], options: &[(&str, &str)]) -> Vec<u8> {
        let mut out = Vec::new();
        write_array_len(&mut out, if options.is_empty() { 2 } else { 3 });
        write_str(&mut out, "app.log");
        write_bin(&mut out, stream);
        if !options.is_empty() {
            write_map_len(&mut out, options.len());
            for (key, value) in options {
                write_str(&mut out, key);
                write_str(&mut out, value);
            }
        }
        out
    }

    /// Fluentd takes `size` as a hint: a frame whose `size` is not its entry count (npm
    /// fluent-logger sends the entries' byte length) is stored whole.
    #[test]
    fn a_size_that_is_not_the_entry_count_is_a_hint_and_the_frame_is_kept() {
        let mut out = Vec::new();
        write_array_len(&mut out, 3);
        write_str(&mut out, "app.log");
        write_array_len(&mut out, 2);
        out.extend_from_slice(batch(2).entries_bytes());
        write_map_len(&mut out, 1);
        write_str(&mut out, "size");
        write_uint(&mut out, 3);
        let frame = parse(out).expect("a size other than the entry count is only a hint");
        assert_eq!(frame.entries.len(), 2);
        assert_eq!(frame.options.size, Some(3));
    }

    #[test]
    fn unknown_option_keys_are_skipped() {
        let mut out = Vec::new();
        write_array_len(&mut out, 3);
        write_str(&mut out, "app.log");
        write_array_len(&mut out, 1);
        out.extend_from_slice(batch(1).entries_bytes());
        write_map_len(&mut out, 2);
        write_str(&mut out, "fluent_signal");
        write_array_len(&mut out, 2);
        write_uint(&mut out, 1);
        write_uint(&mut out, 2);
        write_str(&mut out, "chunk");
        write_str(&mut out, "abc");
        let frame = parse(out).unwrap();
        assert_eq!(frame.mode, Mode::Forward);
        assert_eq!(frame.ack_chunk(), Some("abc"));
        assert_eq!(frame.entries.len(), 1);
    }

    #[test]
    fn packed_forward_entries_of_the_wrong_type_name_the_rule() {
        let mut out = Vec::new();
        write_array_len(&mut out, 2);
        write_str(&mut out, "app.log");
        out.push(0xc0);
        assert_eq!(
            parse(out).unwrap_err().to_string(),
            "the element after the tag must be EventTime or int (Message), array (Forward), bin or str \
             (PackedForward), got nil"
        );
        // A str stream holding a map instead of [time, record] arrays.
        let mut stream = Vec::new();
        write_map_len(&mut stream, 0);
        assert_eq!(
            parse(packed_frame(&stream, &[])).unwrap_err().to_string(),
            "PackedForward entry must be array, got map"
        );
    }

    #[test]
    fn records_must_be_maps() {
        let mut out = Vec::new();
        write_array_len(&mut out, 3);
        write_str(&mut out, "app.log");
        time(1).encode(&mut out);
        write_str(&mut out, "not a map");
        assert_eq!(parse(out).unwrap_err().to_string(), "record must be map, got str");
    }

    #[test]
    fn gzip_outside_packed_forward_is_ignored_and_known_schemes_only() {
        let mut out = Vec::new();
        encode_forward(&mut out, "app.log", &batch(1), &Options::default()).unwrap();
        // Rewrite as a 3-element frame with compressed=gzip.
        out[0] = 0x93;
        write_map_len(&mut out, 1);
        write_str(&mut out, "compressed");
        write_str(&mut out, "gzip");
        let forward = parse(out).expect("Fluentd ignores `compressed` on a Forward frame");
        assert_eq!((forward.mode, forward.entries.len(), forward.options.compressed), (Mode::Forward, 1, None));
        let unknown = packed_frame(batch(1).entries_bytes(), &[("compressed", "zstd")]);
        assert_eq!(parse(unknown), Err(ForwardError::UnknownCompression { got: "zstd".to_owned() }));
        let text = parse(packed_frame(batch(2).entries_bytes(), &[("compressed", "text")])).unwrap();
        assert_eq!((text.mode, text.entries.len()), (Mode::PackedForward, 2));
    }

    #[test]
    fn several_gzip_members_are_one_stream() {
        let entries = batch(3);
        let bytes = entries.entries_bytes();
        let split = bytes.len() / 2;
        let mut members = gzip(&bytes[..split]).unwrap();
        members.extend_from_slice(&gzip(&bytes[split..]).unwrap());
        let frame = parse(packed_frame(&members, &[("compressed", "gzip")])).unwrap();
        assert_eq!(frame.mode, Mode::CompressedPackedForward);
        assert_eq!(frame.entries.len(), 3);
        assert_eq!(frame.entries[2].deserialize_record::<BTreeMap<String, String>>().unwrap(), record("line 2"));
    }

    #[test]
    fn gzip_bomb_stops_at_the_limit() {
        let zeros = vec![0u8; 4 << 20];
        let bomb = gzip(&zeros).unwrap();
        assert!(bomb.len() < 64 << 10, "the bomb is small: {} bytes", bomb.len());
        let limits = Limits { decompressed_bytes_limit: 1 << 20, ..Limits::default() };
        let frame = Bytes::from(packed_frame(&bomb, &[("compressed", "gzip")]));
        assert_eq!(
            parse_event_frame(&frame, &limits),
            Err(ForwardError::DecompressedTooLarge { decompressed_bytes_limit: 1 << 20 })
        );
        assert!(matches!(inflate(b"not gzip at all", 1024), Err(ForwardError::Gzip { .. })));
    }

    /// A gzip bomb costs at most the limit plus one byte of buffer: the old inflater read to
    /// the end under `take(limit + 1)`, and its buffer doubled to twice the limit first.
    #[test]
    fn a_gzip_bomb_never_grows_the_buffer_past_the_limit() {
        let bomb = gzip(&vec![0u8; 4 << 20]).unwrap();
        for limit in [1 << 20, (1 << 20) + 12_345, 100, 0] {
            let mut inflated = Vec::new();
            let refused = inflate_into(&bomb, limit, &mut inflated);
            assert_eq!(refused, Err(ForwardError::DecompressedTooLarge { decompressed_bytes_limit: limit as u64 }));
            assert!(inflated.capacity() <= limit + 1, "limit {limit}: capacity {}", inflated.capacity());
        }
        // Under the limit the bytes come back whole, in a buffer no larger than the limit.
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let mut inflated = Vec::new();
        inflate_into(&gzip(&data).unwrap(), 400_000, &mut inflated).unwrap();
        assert_eq!(inflated, data);
        assert!(inflated.capacity() <= 400_001);
        assert_eq!(inflate(&gzip(&data).unwrap(), data.len()).unwrap(), data);
    }

    /// `[0, {}]` is 3 wire bytes and a 40-byte entry: a 15 KB CompressedPackedForward of 2^20
    /// of them made a 40 MiB entry table. The table's memory is now bounded by
    /// `entries_bytes_limit`, checked before it grows: refused, with the limit named.
    #[test]
    fn the_entry_tables_memory_is_bounded_before_it_grows() {
        let stream = [0x92u8, 0x00, 0x80].repeat(1 << 20);
        let bomb = gzip(&stream).unwrap();
        assert!(bomb.len() < 20 << 10, "{} bytes", bomb.len());
        let frame = Bytes::from(packed_frame(&bomb, &[("compressed", "gzip")]));
        assert_eq!(
            parse_event_frame(&frame, &Limits::default()),
            Err(ForwardError::EntriesTooLarge { entries_bytes_limit: ENTRIES_BYTES_LIMIT_DEFAULT as u64 })
        );
        // The table stops at the limit, never doubling past it.
        let limits = Limits { entries_bytes_limit: 1000 * ENTRY_BYTES, ..Limits::default() };
        let mut entries = Vec::new();
        let refused = read_packed_entries(&Bytes::from(stream), &limits, &mut entries);
        assert_eq!(refused, Err(ForwardError::EntriesTooLarge { entries_bytes_limit: 1000 * ENTRY_BYTES as u64 }));
        assert_eq!((entries.len(), entries.capacity()), (1000, 1000));
        // Forward mode's declared count is checked against it before reserving.
        let mut forward = Vec::new();
        encode_forward(&mut forward, "t", &batch(1001), &Options::default()).unwrap();
        assert_eq!(
            parse_event_frame(&Bytes::from(forward), &limits),
            Err(ForwardError::EntriesTooLarge { entries_bytes_limit: 1000 * ENTRY_BYTES as u64 })
        );
        let frame = parse_event_frame(&Bytes::from(packed_frame(batch(1000).entries_bytes(), &[])), &limits).unwrap();
        assert_eq!(frame.entries.len(), 1000);
    }

    #[test]
    fn entries_count_limit_bounds_both_forward_and_packed() {
        let limits = Limits { entries_count_limit: 2, ..Limits::default() };
        let mut forward = Vec::new();
        encode_forward(&mut forward, "t", &batch(3), &Options::default()).unwrap();
        let expected = Err(ForwardError::TooManyEntries { entries_count_limit: 2 });
        assert_eq!(parse_event_frame(&Bytes::from(forward), &limits), expected);
        let packed = Bytes::from(packed_frame(batch(3).entries_bytes(), &[]));
        assert_eq!(parse_event_frame(&packed, &limits), expected);
    }

    #[test]
    fn trailing_bytes_and_truncated_streams_are_errors() {
        let mut out = Vec::new();
        encode_forward(&mut out, "t", &batch(1), &Options::default()).unwrap();
        out.push(0x01);
        assert_eq!(parse(out), Err(ForwardError::TrailingBytes { what: "Forward frame", count: 1 }));
        let entries = batch(2);
        let cut = &entries.entries_bytes()[..entries.entries_bytes().len() - 1];
        assert!(matches!(parse(packed_frame(cut, &[])), Err(ForwardError::Truncated { .. })));
    }

    #[test]
    fn message_lengths_are_checked_per_mode() {
        let mut out = Vec::new();
        write_array_len(&mut out, 2);
        write_str(&mut out, "t");
        time(1).encode(&mut out);
        assert_eq!(parse(out).unwrap_err().to_string(), "Message frame must have 3 or 4 elements, got 2");
        let mut out = Vec::new();
        write_array_len(&mut out, 5);
        assert_eq!(parse(out).unwrap_err().to_string(), "Forward frame must have 2 to 4 elements, got 5");
    }
}
