//! Every way a Forward frame can break a protocol rule, named so that a rejected frame says
//! which rule it broke (the aggregator logs the reason and the ledger attributes the loss).

use std::fmt;

/// A Forward protocol v1 violation, a limit hit, or a handshake refusal.
///
/// Why an enum rather than strings: tests and parts match on the rule that broke (a
/// `FrameTooLarge` closes the connection, a `HandshakeRejected` becomes `auth_rejected` in
/// the ledger), while `Display` gives the human sentence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ForwardError {
    /// The bytes end before the msgpack value does (only from `parse_*` on a partial frame;
    /// the streaming decoder answers "incomplete" instead).
    Truncated {
        /// What was being read when the bytes ran out.
        what: &'static str,
    },
    /// A frame's declared size already exceeds the configured limit (found from headers,
    /// before the frame was buffered or allocated).
    FrameTooLarge {
        /// Lower bound of the frame's size, from the headers read so far.
        frame_bytes_at_least: u64,
        /// The configured limit.
        frame_bytes_limit: u64,
    },
    /// Bytes the buffer holds exceed the decoder's bound (the caller fed without draining).
    BufferFull {
        /// Bytes that would have been buffered.
        buffered_bytes: u64,
        /// The configured limit.
        buffered_bytes_limit: u64,
    },
    /// Byte 0xc1 is never used by msgpack.
    ReservedMarker,
    /// A value had the wrong msgpack type.
    WrongType {
        /// The protocol element, e.g. "PackedForward entries".
        what: &'static str,
        /// What the spec allows there.
        expected: &'static str,
        /// The msgpack type found.
        got: &'static str,
    },
    /// An array had a length the spec does not allow.
    WrongLength {
        /// The protocol element.
        what: &'static str,
        /// What the spec allows.
        expected: &'static str,
        /// The length found.
        got: u64,
    },
    /// A string that must be UTF-8 was not.
    InvalidUtf8 {
        /// The protocol element.
        what: &'static str,
    },
    /// An ext value used as time had a type other than 0.
    EventTimeExtType {
        /// The ext type found.
        ext_type: i8,
    },
    /// An ext type 0 value did not carry 8 bytes.
    EventTimeLength {
        /// The payload length found.
        got: u32,
    },
    /// EventTime nanoseconds must be below one second.
    EventTimeNanoseconds {
        /// The nanoseconds found.
        nanoseconds: u32,
    },
    /// More entries than `entries_count_limit`.
    TooManyEntries {
        /// The configured limit.
        entries_count_limit: u64,
    },
    /// The entries would take more memory than `entries_bytes_limit` ([`super::ENTRY_BYTES`]
    /// each), found before the entry table grows past it.
    EntriesTooLarge {
        /// The configured limit.
        entries_bytes_limit: u64,
    },
    /// A gzip stream inflates beyond `decompressed_bytes_limit` (gzip bomb guard).
    DecompressedTooLarge {
        /// The configured limit.
        decompressed_bytes_limit: u64,
    },
    /// The gzip data is corrupt.
    Gzip {
        /// The decoder's message.
        reason: String,
    },
    /// `compressed` named a scheme other than "gzip" or "text".
    UnknownCompression {
        /// The value found.
        got: String,
    },
    /// Bytes left over after the value that should have ended the frame or stream.
    TrailingBytes {
        /// The protocol element.
        what: &'static str,
        /// Bytes left over.
        count: u64,
    },
    /// A handshake message had the wrong leading word.
    UnexpectedMessage {
        /// What the receiver expected, e.g. "HELO".
        expected: &'static str,
        /// What it found.
        got: String,
    },
    /// The handshake failed: wrong shared key, wrong user, or a refusal from the peer.
    HandshakeRejected {
        /// The reason, as sent in PONG or found by the client.
        reason: String,
    },
    /// Encoding failed (a record that is not a map, options inconsistent with the batch,
    /// or a serializer error).
    Encode {
        /// What went wrong.
        reason: String,
    },
    /// A record could not be deserialized into the requested type.
    Deserialize {
        /// The deserializer's message.
        reason: String,
    },
    /// The decoder saw an error earlier; the connection must be closed.
    DecoderPoisoned,
}

impl fmt::Display for ForwardError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated { what } => write!(f, "bytes end inside {what}"),
            Self::FrameTooLarge { frame_bytes_at_least, frame_bytes_limit } => {
                write!(f, "frame of {frame_bytes_at_least} bytes exceeds frame_bytes_limit {frame_bytes_limit}")
            }
            Self::BufferFull { buffered_bytes, buffered_bytes_limit } => {
                write!(f, "buffer of {buffered_bytes} bytes exceeds buffered_bytes_limit {buffered_bytes_limit}")
            }
            Self::ReservedMarker => write!(f, "msgpack byte 0xc1 is reserved and never used"),
            Self::WrongType { what, expected, got } => {
                write!(f, "{what} must be {expected}, got {got}")
            }
            Self::WrongLength { what, expected, got } => {
                write!(f, "{what} must have {expected} elements, got {got}")
            }
            Self::InvalidUtf8 { what } => write!(f, "{what} must be valid UTF-8"),
            Self::EventTimeExtType { ext_type } => {
                write!(f, "EventTime must be ext type 0, got ext type {ext_type}")
            }
            Self::EventTimeLength { got } => {
                write!(f, "EventTime ext type 0 must have 8 bytes, got {got}")
            }
            Self::EventTimeNanoseconds { nanoseconds } => {
                write!(f, "EventTime nanoseconds must be below 1000000000, got {nanoseconds}")
            }
            Self::TooManyEntries { entries_count_limit } => {
                write!(f, "entries exceed entries_count_limit {entries_count_limit}")
            }
            Self::EntriesTooLarge { entries_bytes_limit } => {
                write!(
                    f,
                    "entries of {} bytes each exceed entries_bytes_limit {entries_bytes_limit}",
                    super::ENTRY_BYTES
                )
            }
            Self::DecompressedTooLarge { decompressed_bytes_limit } => {
                write!(f, "gzip data inflates beyond decompressed_bytes_limit {decompressed_bytes_limit}")
            }
            Self::Gzip { reason } => write!(f, "CompressedPackedForward gzip data: {reason}"),
            Self::UnknownCompression { got } => {
                write!(f, "option compressed must be \"gzip\" or \"text\", got {got:?}")
            }
            Self::TrailingBytes { what, count } => {
                write!(f, "{count} bytes left over after {what}")
            }
            Self::UnexpectedMessage { expected, got } => {
                write!(f, "expected a {expected} message, got {got:?}")
            }
            Self::HandshakeRejected { reason } => write!(f, "handshake rejected: {reason}"),
            Self::Encode { reason } => write!(f, "cannot encode: {reason}"),
            Self::Deserialize { reason } => write!(f, "cannot deserialize record: {reason}"),
            Self::DecoderPoisoned => {
                write!(f, "decoder failed earlier; the connection must be closed")
            }
        }
    }
}

impl std::error::Error for ForwardError {}
