//! A cursor over one complete msgpack frame for the `parse` pass: reads the Forward
//! protocol's outer structure (arrays, strings, options) with `rmp` markers and returns
//! borrowed slices, so records stay raw bytes and nothing is copied. Every read is bounds
//! checked and answers with the protocol element it was reading, never a panic.

use std::ops::Range;

use rmp::Marker;

use super::check::{Check, check_value};
use super::error::ForwardError;

/// The msgpack type of a marker, for error messages ("got map").
pub(crate) fn type_name(marker: Marker) -> &'static str {
    match marker {
        Marker::Null => "nil",
        Marker::True | Marker::False => "bool",
        Marker::FixPos(_)
        | Marker::FixNeg(_)
        | Marker::U8
        | Marker::U16
        | Marker::U32
        | Marker::U64
        | Marker::I8
        | Marker::I16
        | Marker::I32
        | Marker::I64 => "int",
        Marker::F32 | Marker::F64 => "float",
        Marker::FixStr(_) | Marker::Str8 | Marker::Str16 | Marker::Str32 => "str",
        Marker::Bin8 | Marker::Bin16 | Marker::Bin32 => "bin",
        Marker::FixArray(_) | Marker::Array16 | Marker::Array32 => "array",
        Marker::FixMap(_) | Marker::Map16 | Marker::Map32 => "map",
        Marker::FixExt1
        | Marker::FixExt2
        | Marker::FixExt4
        | Marker::FixExt8
        | Marker::FixExt16
        | Marker::Ext8
        | Marker::Ext16
        | Marker::Ext32 => "ext",
        Marker::Reserved => "reserved byte 0xc1",
    }
}

/// True for the markers of a msgpack map (what every record must be).
pub(crate) fn is_map(marker: Marker) -> bool {
    matches!(marker, Marker::FixMap(_) | Marker::Map16 | Marker::Map32)
}

/// A bounds-checked read position in one frame.
#[derive(Clone, Debug)]
pub struct Reader<'a> {
    bytes: &'a [u8],
    position: usize,
}

impl<'a> Reader<'a> {
    /// Starts reading at the front of `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, position: 0 }
    }

    /// Offset of the next byte to read.
    pub fn position(&self) -> usize {
        self.position
    }

    /// Bytes not yet read.
    pub(crate) fn remaining_bytes(&self) -> usize {
        self.bytes.len() - self.position
    }

    /// Fails with `TrailingBytes` unless every byte was read: a frame is exactly one value.
    pub(crate) fn expect_end(&self, what: &'static str) -> Result<(), ForwardError> {
        match self.remaining_bytes() {
            0 => Ok(()),
            count => Err(ForwardError::TrailingBytes { what, count: count as u64 }),
        }
    }

    /// The next marker, without consuming it.
    pub(crate) fn peek_marker(&self, what: &'static str) -> Result<Marker, ForwardError> {
        let byte = *self.bytes.get(self.position).ok_or(ForwardError::Truncated { what })?;
        Ok(Marker::from_u8(byte))
    }

    /// Consumes `count` bytes.
    pub fn take(&mut self, count: usize, what: &'static str) -> Result<&'a [u8], ForwardError> {
        if count > self.remaining_bytes() {
            return Err(ForwardError::Truncated { what });
        }
        let slice = &self.bytes[self.position..self.position + count];
        self.position += count;
        Ok(slice)
    }

    /// Consumes the next marker.
    pub(crate) fn read_marker(&mut self, what: &'static str) -> Result<Marker, ForwardError> {
        let marker = self.peek_marker(what)?;
        self.position += 1;
        Ok(marker)
    }

    /// Consumes a big-endian unsigned field of `width_bytes` (at most 8).
    pub(crate) fn read_be(&mut self, width_bytes: usize, what: &'static str) -> Result<u64, ForwardError> {
        assert!(width_bytes <= 8);
        let field = self.take(width_bytes, what)?;
        Ok(field.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
    }

    /// Consumes an array header and returns its element count.
    pub(crate) fn read_array_len(&mut self, what: &'static str) -> Result<u32, ForwardError> {
        let marker = self.read_marker(what)?;
        match marker {
            Marker::FixArray(n) => Ok(u32::from(n)),
            Marker::Array16 => Ok(self.read_be(2, what)? as u32),
            Marker::Array32 => Ok(self.read_be(4, what)? as u32),
            other => Err(wrong_type(what, "array", other)),
        }
    }

    /// Consumes a map header and returns its pair count.
    pub(crate) fn read_map_len(&mut self, what: &'static str) -> Result<u32, ForwardError> {
        let marker = self.read_marker(what)?;
        match marker {
            Marker::FixMap(n) => Ok(u32::from(n)),
            Marker::Map16 => Ok(self.read_be(2, what)? as u32),
            Marker::Map32 => Ok(self.read_be(4, what)? as u32),
            other => Err(wrong_type(what, "map", other)),
        }
    }

    /// Consumes a str or bin and returns its raw bytes (the spec allows either for nonces,
    /// salts and PackedForward streams).
    pub(crate) fn read_str_or_bin(&mut self, what: &'static str) -> Result<&'a [u8], ForwardError> {
        let marker = self.read_marker(what)?;
        let length = match marker {
            Marker::FixStr(n) => u64::from(n),
            Marker::Str8 | Marker::Bin8 => self.read_be(1, what)?,
            Marker::Str16 | Marker::Bin16 => self.read_be(2, what)?,
            Marker::Str32 | Marker::Bin32 => self.read_be(4, what)?,
            other => return Err(wrong_type(what, "bin or str", other)),
        };
        self.take(length as usize, what)
    }

    /// Consumes a str and checks it is UTF-8.
    pub(crate) fn read_str(&mut self, what: &'static str) -> Result<&'a str, ForwardError> {
        let marker = self.peek_marker(what)?;
        if !matches!(marker, Marker::FixStr(_) | Marker::Str8 | Marker::Str16 | Marker::Str32) {
            return Err(wrong_type(what, "str", marker));
        }
        let bytes = self.read_str_or_bin(what)?;
        std::str::from_utf8(bytes).map_err(|_| ForwardError::InvalidUtf8 { what })
    }

    /// Consumes a bool.
    pub(crate) fn read_bool(&mut self, what: &'static str) -> Result<bool, ForwardError> {
        match self.read_marker(what)? {
            Marker::True => Ok(true),
            Marker::False => Ok(false),
            other => Err(wrong_type(what, "bool", other)),
        }
    }

    /// Consumes a non-negative integer in any msgpack int encoding.
    pub(crate) fn read_uint(&mut self, what: &'static str) -> Result<u64, ForwardError> {
        let marker = self.read_marker(what)?;
        let value = self.read_int_after(marker, what)?;
        u64::try_from(value).map_err(|_| ForwardError::WrongType {
            what,
            expected: "a non-negative int",
            got: "negative int",
        })
    }

    /// Reads the rest of an integer whose `marker` was already consumed; any msgpack int
    /// encoding, signed or not (i128 holds them all).
    pub(crate) fn read_int_after(&mut self, marker: Marker, what: &'static str) -> Result<i128, ForwardError> {
        let signed = |raw: u64, width_bytes: u32| {
            let shift = 64 - 8 * width_bytes;
            i128::from(((raw << shift) as i64) >> shift)
        };
        match marker {
            Marker::FixPos(n) => Ok(i128::from(n)),
            Marker::FixNeg(n) => Ok(i128::from(n)),
            Marker::U8 => Ok(i128::from(self.read_be(1, what)?)),
            Marker::U16 => Ok(i128::from(self.read_be(2, what)?)),
            Marker::U32 => Ok(i128::from(self.read_be(4, what)?)),
            Marker::U64 => Ok(i128::from(self.read_be(8, what)?)),
            Marker::I8 => Ok(signed(self.read_be(1, what)?, 1)),
            Marker::I16 => Ok(signed(self.read_be(2, what)?, 2)),
            Marker::I32 => Ok(signed(self.read_be(4, what)?, 4)),
            Marker::I64 => Ok(signed(self.read_be(8, what)?, 8)),
            other => Err(wrong_type(what, "int", other)),
        }
    }

    /// Consumes one whole value of any type and returns its byte range in the frame.
    pub(crate) fn skip_value(&mut self, what: &'static str) -> Result<Range<usize>, ForwardError> {
        let rest = &self.bytes[self.position..];
        match check_value(rest, rest.len()) {
            Ok(Check::Complete { frame_bytes }) => {
                let start = self.position;
                self.position += frame_bytes;
                Ok(start..self.position)
            }
            // Within a complete frame, "needs more bytes" and "longer than what is left"
            // both mean the value is cut short.
            Ok(Check::Incomplete) | Err(ForwardError::FrameTooLarge { .. }) => Err(ForwardError::Truncated { what }),
            Err(other) => Err(other),
        }
    }
}

/// The error for a value of the wrong msgpack type.
pub(crate) fn wrong_type(what: &'static str, expected: &'static str, got: Marker) -> ForwardError {
    ForwardError::WrongType { what, expected, got: type_name(got) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_signed_ints_as_uint_when_non_negative() {
        let mut bytes = Vec::new();
        rmp::encode::write_sint(&mut bytes, 300).unwrap();
        // Force an i16 encoding by hand: 0xd1 0x01 0x2c = 300.
        let forced = [0xd1, 0x01, 0x2c];
        assert_eq!(Reader::new(&forced).read_uint("n"), Ok(300));
        assert_eq!(Reader::new(&bytes).read_uint("n"), Ok(300));
        let negative = [0xd0, 0xff];
        assert_eq!(
            Reader::new(&negative).read_uint("n").unwrap_err().to_string(),
            "n must be a non-negative int, got negative int"
        );
    }

    #[test]
    fn reading_past_the_end_is_truncated_not_a_panic() {
        let mut reader = Reader::new(&[0xdb, 0x00, 0x00, 0x10, 0x00, b'a']);
        assert_eq!(reader.read_str("tag"), Err(ForwardError::Truncated { what: "tag" }));
        let mut reader = Reader::new(&[0x92, 0x01]);
        assert_eq!(reader.skip_value("record"), Err(ForwardError::Truncated { what: "record" }));
    }

    #[test]
    fn wrong_type_names_both_sides() {
        let mut reader = Reader::new(&[0x80]);
        assert_eq!(
            reader.read_str_or_bin("PackedForward entries").unwrap_err().to_string(),
            "PackedForward entries must be bin or str, got map"
        );
    }
}
