//! The W3C `traceparent` header value (`00-{trace_id}-{parent_id}-{flags}`).
//!
//! The API stores it in the Redis job hash when it opens a job's trace, and the worker that
//! picks the job up parses it back to parent its `job.executing` span; a malformed value
//! there is a correlation bug the checkers must see, so parsing names the W3C rule broken.

use std::fmt;
use std::str::FromStr;

use super::ids::{IdError, SpanId, TraceId, hex_value};

/// A parsed `traceparent`: the trace, the parent span and the trace flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceParent {
    /// The trace the child joins.
    pub trace_id: TraceId,
    /// The span that becomes the child's parent.
    pub parent_id: SpanId,
    /// Trace flags; bit 0 is `sampled`.
    pub flags: u8,
}

/// Why a `traceparent` value was refused; each variant is one rule of W3C Trace Context §3.2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraceParentError {
    /// Shorter than the 55 characters of version 00.
    TooShort {
        /// Length found.
        len: usize,
    },
    /// Version 00 must be exactly 55 characters.
    WrongLengthForVersion00 {
        /// Length found.
        len: usize,
    },
    /// The version field is not two lowercase hex digits.
    InvalidVersion,
    /// Version `ff` is forbidden.
    ForbiddenVersion,
    /// A `-` is required at this index (2, 35, 52, and 55 for longer future versions).
    MissingDelimiter {
        /// Byte index where `-` was required.
        index: usize,
    },
    /// The trace-id field broke an id rule (hex, length, all zero).
    TraceId(IdError),
    /// The parent-id field broke an id rule (hex, length, all zero).
    ParentId(IdError),
    /// The flags field is not two lowercase hex digits.
    InvalidFlags,
}

impl fmt::Display for TraceParentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooShort { len } => write!(f, "traceparent: {len} characters, need at least 55"),
            Self::WrongLengthForVersion00 { len } => {
                write!(f, "traceparent: version 00 must be exactly 55 characters, found {len}")
            }
            Self::InvalidVersion => f.write_str("traceparent: version is not 2 lowercase hex digits"),
            Self::ForbiddenVersion => f.write_str("traceparent: version ff is forbidden"),
            Self::MissingDelimiter { index } => write!(f, "traceparent: expected '-' at {index}"),
            Self::TraceId(e) => write!(f, "traceparent: {e}"),
            Self::ParentId(e) => write!(f, "traceparent: parent-{e}"),
            Self::InvalidFlags => f.write_str("traceparent: trace-flags are not 2 lowercase hex digits"),
        }
    }
}

impl std::error::Error for TraceParentError {}

impl TraceParent {
    /// The `sampled` trace flag.
    pub(crate) const FLAG_SAMPLED: u8 = 0x01;
    /// Length of a version-00 traceparent.
    pub const LEN: usize = 55;

    /// A traceparent for a child of `parent_id` in `trace_id`.
    pub fn new(trace_id: TraceId, parent_id: SpanId, sampled: bool) -> Self {
        let flags = if sampled { Self::FLAG_SAMPLED } else { 0 };
        Self { trace_id, parent_id, flags }
    }

    /// Whether the sampled flag is set.
    #[cfg(test)]
    pub(crate) fn sampled(&self) -> bool {
        self.flags & Self::FLAG_SAMPLED != 0
    }

    /// Parses a header value; see [`TraceParentError`] for the rules. Future versions (> 00)
    /// are accepted as W3C requires: the first 55 characters are read as version 00 and the
    /// rest must start with `-`. The version itself is not kept: we always write 00.
    pub fn parse(text: &str) -> Result<Self, TraceParentError> {
        let bytes = text.as_bytes();
        if bytes.len() < Self::LEN {
            return Err(TraceParentError::TooShort { len: bytes.len() });
        }
        let version = match (hex_value(bytes[0]), hex_value(bytes[1])) {
            (Some(hi), Some(lo)) => (hi << 4) | lo,
            _ => return Err(TraceParentError::InvalidVersion),
        };
        if version == 0xff {
            return Err(TraceParentError::ForbiddenVersion);
        }
        if version == 0 && bytes.len() != Self::LEN {
            return Err(TraceParentError::WrongLengthForVersion00 { len: bytes.len() });
        }
        for index in [2, 35, 52] {
            if bytes[index] != b'-' {
                return Err(TraceParentError::MissingDelimiter { index });
            }
        }
        if bytes.len() > Self::LEN && bytes[Self::LEN] != b'-' {
            return Err(TraceParentError::MissingDelimiter { index: Self::LEN });
        }
        let trace_id = TraceId::parse_at(&bytes[3..35], 3).map_err(TraceParentError::TraceId)?;
        let parent_id = SpanId::parse_at(&bytes[36..52], 36).map_err(TraceParentError::ParentId)?;
        let flags = match (hex_value(bytes[53]), hex_value(bytes[54])) {
            (Some(hi), Some(lo)) => (hi << 4) | lo,
            _ => return Err(TraceParentError::InvalidFlags),
        };
        Ok(Self { trace_id, parent_id, flags })
    }
}

impl fmt::Display for TraceParent {
    /// Always version 00: `00-{32 hex}-{16 hex}-{2 hex}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "00-{}-{}-{:02x}", self.trace_id, self.parent_id, self.flags)
    }
}

impl FromStr for TraceParent {
    type Err = TraceParentError;

    fn from_str(text: &str) -> Result<Self, TraceParentError> {
        Self::parse(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn parses_the_w3c_example() {
        let tp = TraceParent::parse(GOOD).unwrap();
        assert!(tp.sampled());
        assert_eq!(tp.trace_id.to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(tp.to_string(), GOOD);
    }

    #[test]
    fn each_rule_is_named() {
        use TraceParentError::*;
        assert_eq!(TraceParent::parse("00-abc"), Err(TooShort { len: 6 }));
        assert_eq!(TraceParent::parse(&format!("{GOOD}-x")), Err(WrongLengthForVersion00 { len: 57 }));
        assert_eq!(TraceParent::parse(&GOOD.replacen("00", "ff", 1)), Err(ForbiddenVersion));
        assert_eq!(TraceParent::parse(&GOOD.replacen("00", "0G", 1)), Err(InvalidVersion));
        assert_eq!(TraceParent::parse(&GOOD.replacen('-', "_", 1)), Err(MissingDelimiter { index: 2 }));
        assert!(matches!(
            TraceParent::parse("00-00000000000000000000000000000000-00f067aa0ba902b7-01"),
            Err(TraceId(IdError::AllZero { .. }))
        ));
        assert!(matches!(
            TraceParent::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01"),
            Err(ParentId(IdError::AllZero { .. }))
        ));
        assert!(matches!(
            TraceParent::parse("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"),
            Err(TraceId(IdError::NotLowercaseHex { index: 4, .. }))
        ));
        assert_eq!(TraceParent::parse(&GOOD.replace("-01", "-zz")), Err(InvalidFlags));
        // A future version may carry more fields after a '-'.
        assert!(TraceParent::parse(&format!("01{}-extra", &GOOD[2..])).is_ok());
        assert_eq!(TraceParent::parse(&format!("01{}xextra", &GOOD[2..])), Err(MissingDelimiter { index: 55 }));
    }
}
