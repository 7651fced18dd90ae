//! W3C trace and span identifiers (`TraceId`, 16 bytes; `SpanId`, 8 bytes).
//!
//! Text form is lowercase hex (32 / 16 characters), as in `traceparent`, in the msgpack and
//! JSON log records and in every report. The all-zero id is invalid (W3C Trace Context §3.2.2.3
//! and §3.2.2.4), so neither type can hold it. Ids are drawn from a caller-provided RNG only.

use std::fmt;
use std::str::FromStr;

use rand::RngCore;
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why an id's bytes or text were refused; `id` names the identifier ("trace_id", "span_id"),
/// the variant names the rule broken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdError {
    /// The id had `actual` units (hex characters or bytes, see `unit`) where `expected` are
    /// required.
    WrongLength {
        /// Which identifier.
        id: &'static str,
        /// "hex characters" or "bytes".
        unit: &'static str,
        /// Required length.
        expected: usize,
        /// Length found.
        actual: usize,
    },
    /// The character at byte `index` of the text is not lowercase hex (`0-9a-f`).
    NotLowercaseHex {
        /// Which identifier.
        id: &'static str,
        /// Byte offset of the first bad character.
        index: usize,
    },
    /// Every byte is zero, which W3C Trace Context forbids.
    AllZero {
        /// Which identifier.
        id: &'static str,
    },
}

impl fmt::Display for IdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IdError::WrongLength { id, unit, expected, actual } => {
                write!(f, "{id}: expected {expected} {unit}, found {actual}")
            }
            IdError::NotLowercaseHex { id, index } => {
                write!(f, "{id}: character at {index} is not lowercase hex")
            }
            IdError::AllZero { id } => write!(f, "{id}: all-zero id is invalid (W3C)"),
        }
    }
}

impl std::error::Error for IdError {}

const HEX_DIGITS: &[u8; 16] = b"0123456789abcdef";

/// Writes `bytes` as lowercase hex into `out` (exactly twice as long). Shared by every id
/// type so that all text forms agree.
pub(crate) fn write_hex(bytes: &[u8], out: &mut [u8]) {
    assert_eq!(out.len(), bytes.len() * 2, "hex output buffer must be twice the input");
    for (i, b) in bytes.iter().enumerate() {
        out[2 * i] = HEX_DIGITS[usize::from(b >> 4)];
        out[2 * i + 1] = HEX_DIGITS[usize::from(b & 0x0f)];
    }
}

/// The value of one lowercase hex digit, or `None`: uppercase is refused on purpose so that
/// every id has exactly one text form (parse ∘ display = identity).
pub(crate) fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

/// Parses lowercase hex `text` into `out`; `offset` is added to reported indices so callers
/// parsing a field inside a larger string (traceparent) report positions in the whole string.
pub(crate) fn read_hex(id: &'static str, text: &[u8], out: &mut [u8], offset: usize) -> Result<(), IdError> {
    if text.len() != out.len() * 2 {
        return Err(IdError::WrongLength { id, unit: "hex characters", expected: out.len() * 2, actual: text.len() });
    }
    for (i, slot) in out.iter_mut().enumerate() {
        let hi = hex_value(text[2 * i]).ok_or(IdError::NotLowercaseHex { id, index: offset + 2 * i })?;
        let lo = hex_value(text[2 * i + 1]).ok_or(IdError::NotLowercaseHex { id, index: offset + 2 * i + 1 })?;
        *slot = (hi << 4) | lo;
    }
    Ok(())
}

macro_rules! define_id {
    ($(#[$meta:meta])* $name:ident, $len:expr, $label:expr) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name([u8; $len]);

        impl $name {
            /// Length of the id in bytes.
            pub const LEN_BYTES: usize = $len;
            /// Length of the id's text form in hex characters.
            pub const LEN_HEX: usize = $len * 2;
            /// The id's name in errors and attribute keys.
            pub const NAME: &'static str = $label;

            /// Wraps `bytes`; refuses the all-zero id (W3C).
            pub fn from_bytes(bytes: [u8; $len]) -> Result<Self, IdError> {
                if bytes == [0u8; $len] {
                    return Err(IdError::AllZero { id: $label });
                }
                Ok(Self(bytes))
            }

            /// Wraps a byte slice as found on the wire (OTLP `bytes` fields); refuses a wrong
            /// length or the all-zero id.
            pub fn from_slice(bytes: &[u8]) -> Result<Self, IdError> {
                let array: [u8; $len] = bytes.try_into().map_err(|_| IdError::WrongLength {
                    id: $label,
                    unit: "bytes",
                    expected: $len,
                    actual: bytes.len(),
                })?;
                Self::from_bytes(array)
            }

            /// Draws a fresh, non-zero id from the caller's RNG (never OS randomness: the
            /// simulation's ids must follow from its seed).
            pub fn random(rng: &mut impl RngCore) -> Self {
                loop {
                    let mut bytes = [0u8; $len];
                    rng.fill_bytes(&mut bytes);
                    if let Ok(id) = Self::from_bytes(bytes) {
                        return id;
                    }
                }
            }

            /// The raw bytes (what OTLP carries).
            pub fn to_bytes(self) -> [u8; $len] {
                self.0
            }

            /// The raw bytes, borrowed.
            pub fn as_bytes(&self) -> &[u8; $len] {
                &self.0
            }

            /// The lowercase hex text in a stack buffer: formatting ids allocates nothing.
            pub fn to_hex(&self) -> [u8; $len * 2] {
                let mut out = [0u8; $len * 2];
                write_hex(&self.0, &mut out);
                out
            }

            /// Parses the text form starting at `offset` of a larger string (for error
            /// positions).
            pub(crate) fn parse_at(text: &[u8], offset: usize) -> Result<Self, IdError> {
                let mut bytes = [0u8; $len];
                read_hex($label, text, &mut bytes, offset)?;
                Self::from_bytes(bytes)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let hex = self.to_hex();
                // write_hex only emits ASCII.
                f.write_str(std::str::from_utf8(&hex).expect("hex is ASCII"))
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self)
            }
        }

        impl FromStr for $name {
            type Err = IdError;

            /// Parses exactly the text form Display writes: lowercase hex, fixed length,
            /// not all zero.
            fn from_str(text: &str) -> Result<Self, IdError> {
                Self::parse_at(text.as_bytes(), 0)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let hex = self.to_hex();
                serializer.serialize_str(std::str::from_utf8(&hex).expect("hex is ASCII"))
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct HexVisitor;
                impl Visitor<'_> for HexVisitor {
                    type Value = $name;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        write!(f, "{} lowercase hex characters", $len * 2)
                    }
                    fn visit_str<E: de::Error>(self, text: &str) -> Result<$name, E> {
                        text.parse().map_err(E::custom)
                    }
                }
                deserializer.deserialize_str(HexVisitor)
            }
        }
    };
}

define_id!(
    /// A W3C trace id: 16 non-zero bytes, shared by every span and log of one job.
    TraceId,
    16,
    "trace_id"
);

define_id!(
    /// A W3C span id: 8 non-zero bytes naming one span (and, in a log record, the span the
    /// log was written in).
    SpanId,
    8,
    "span_id"
);

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn display_parse_round_trip() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let trace = TraceId::random(&mut rng);
        let span = SpanId::random(&mut rng);
        let trace_text = trace.to_string();
        assert_eq!(trace_text.len(), 32);
        assert_eq!(trace_text.parse::<TraceId>(), Ok(trace));
        assert_eq!(span.to_string().parse::<SpanId>(), Ok(span));
    }

    #[test]
    fn same_seed_same_ids() {
        let a = TraceId::random(&mut ChaCha8Rng::seed_from_u64(9));
        let b = TraceId::random(&mut ChaCha8Rng::seed_from_u64(9));
        assert_eq!(a, b);
    }

    #[test]
    fn refusals_name_the_rule() {
        assert_eq!(
            "00".parse::<SpanId>(),
            Err(IdError::WrongLength { id: "span_id", unit: "hex characters", expected: 16, actual: 2 })
        );
        assert_eq!("0123456789ABCDEF".parse::<SpanId>(), Err(IdError::NotLowercaseHex { id: "span_id", index: 10 }));
        assert_eq!("0000000000000000".parse::<SpanId>(), Err(IdError::AllZero { id: "span_id" }));
        assert_eq!(
            TraceId::from_slice(&[1; 15]),
            Err(IdError::WrongLength { id: "trace_id", unit: "bytes", expected: 16, actual: 15 })
        );
        // Non-ASCII input must be refused, not panic on a char boundary.
        assert!("é123456789abcde".parse::<SpanId>().is_err());
    }
}
