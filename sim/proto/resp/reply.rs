//! Replies: every RESP2 type, its encoder, and the client's decoder for it.
//!
//! Why both directions: the server model encodes replies; tests, the differential test
//! against a real `redis-server`, and any client-side model decode them. The decoder is
//! split like the request decoder into an allocation-free [`check_reply`] and a
//! [`parse_reply`] that runs on a whole frame.

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};

use super::command::put_decimal;
use super::frame::string_to_i64;

/// One RESP2 reply. Why `Null` and `NullArray` are distinct: RESP2 has two nulls on the
/// wire, `$-1` (a missing bulk: GET, HGET, LMOVE on an empty list) and `*-1` (a missing
/// array: BLMOVE/BLPOP timing out, EXEC aborted by WATCH), and real clients see
/// the difference byte for byte.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// `+text\r\n`: a status (`OK`, `PONG`, `QUEUED`). No `\r` or `\n` inside.
    Simple(Bytes),
    /// `-CODE text\r\n`: an error; the first word is the code (`ERR`, `WRONGTYPE`, `OOM`,
    /// `NOGROUP`, ...). No `\r` or `\n` inside. See [`super::errors`] for Redis's texts.
    Error(Bytes),
    /// `:n\r\n`.
    Integer(i64),
    /// `$len\r\nbytes\r\n`: binary-safe.
    Bulk(Bytes),
    /// `$-1\r\n`: the null bulk string.
    Null,
    /// `*-1\r\n`: the null array.
    NullArray,
    /// `*n\r\n` then n replies.
    Array(Vec<Reply>),
}

impl Reply {
    /// `+OK`.
    pub fn ok() -> Reply {
        Reply::Simple(Bytes::from_static(b"OK"))
    }

    /// `+PONG`, PING's reply.
    pub fn pong() -> Reply {
        Reply::Simple(Bytes::from_static(b"PONG"))
    }

    /// `+QUEUED`, the reply to each command inside MULTI.
    pub fn queued() -> Reply {
        Reply::Simple(Bytes::from_static(b"QUEUED"))
    }

    /// A status reply. Panics if `text` holds `\r` or `\n` (it would break framing).
    pub(crate) fn simple(text: impl Into<Bytes>) -> Reply {
        let text = text.into();
        assert!(!text.iter().any(|&b| b == b'\r' || b == b'\n'), "simple string holds CR/LF");
        Reply::Simple(text)
    }

    /// An error reply, `text` starting with its code (`"ERR syntax error"`). Panics if the
    /// text is empty or holds `\r` or `\n`; use [`super::errors`] to sanitise user bytes.
    pub fn error(text: impl Into<Bytes>) -> Reply {
        let text = text.into();
        assert!(!text.is_empty(), "an error reply has a code");
        assert!(!text.iter().any(|&b| b == b'\r' || b == b'\n'), "error text holds CR/LF");
        Reply::Error(text)
    }

    /// An integer reply.
    pub fn integer(value: i64) -> Reply {
        Reply::Integer(value)
    }

    /// A bulk string reply.
    pub fn bulk(bytes: impl Into<Bytes>) -> Reply {
        Reply::Bulk(bytes.into())
    }

    /// A bulk reply, or `$-1` for `None` (HGET, LMOVE, LPOP).
    pub fn bulk_or_null(bytes: Option<Bytes>) -> Reply {
        bytes.map_or(Reply::Null, Reply::Bulk)
    }

    /// An array of bulks (LRANGE, HGETALL).
    pub fn bulks<I: IntoIterator<Item = Bytes>>(items: I) -> Reply {
        Reply::Array(items.into_iter().map(Reply::Bulk).collect())
    }

    /// The exact number of bytes [`Reply::encode`] writes, so a batch can reserve once.
    pub fn encoded_bytes(&self) -> usize {
        fn decimal_bytes(value: i64) -> usize {
            let mut magnitude = value.unsigned_abs();
            let mut digits = 1;
            while magnitude >= 10 {
                magnitude /= 10;
                digits += 1;
            }
            digits + usize::from(value < 0)
        }
        match self {
            Reply::Simple(text) | Reply::Error(text) => 1 + text.len() + 2,
            Reply::Integer(value) => 1 + decimal_bytes(*value) + 2,
            Reply::Bulk(bytes) => 1 + decimal_bytes(bytes.len() as i64) + 2 + bytes.len() + 2,
            Reply::Null | Reply::NullArray => 5,
            Reply::Array(items) => {
                1 + decimal_bytes(items.len() as i64) + 2 + items.iter().map(Reply::encoded_bytes).sum::<usize>()
            }
        }
    }

    /// Appends this reply's RESP2 bytes to `out`.
    pub fn encode(&self, out: &mut BytesMut) {
        out.reserve(self.encoded_bytes());
        self.encode_reserved(out);
    }

    fn encode_reserved(&self, out: &mut BytesMut) {
        match self {
            Reply::Simple(text) => {
                debug_assert!(!text.iter().any(|&b| b == b'\r' || b == b'\n'));
                out.put_u8(b'+');
                out.put_slice(text);
                out.put_slice(b"\r\n");
            }
            Reply::Error(text) => {
                debug_assert!(!text.iter().any(|&b| b == b'\r' || b == b'\n'));
                out.put_u8(b'-');
                out.put_slice(text);
                out.put_slice(b"\r\n");
            }
            Reply::Integer(value) => {
                out.put_u8(b':');
                put_decimal(out, *value);
                out.put_slice(b"\r\n");
            }
            Reply::Bulk(bytes) => {
                out.put_u8(b'$');
                put_decimal(out, bytes.len() as i64);
                out.put_slice(b"\r\n");
                out.put_slice(bytes);
                out.put_slice(b"\r\n");
            }
            Reply::Null => out.put_slice(b"$-1\r\n"),
            Reply::NullArray => out.put_slice(b"*-1\r\n"),
            Reply::Array(items) => {
                out.put_u8(b'*');
                put_decimal(out, items.len() as i64);
                out.put_slice(b"\r\n");
                for item in items {
                    item.encode_reserved(out);
                }
            }
        }
    }

    /// Appends many replies to one buffer (one write per pipeline), reserving once.
    pub fn encode_all<'a, I>(replies: I, out: &mut BytesMut)
    where
        I: IntoIterator<Item = &'a Reply>,
        I::IntoIter: Clone,
    {
        let replies = replies.into_iter();
        out.reserve(replies.clone().map(Reply::encoded_bytes).sum());
        for reply in replies {
            reply.encode_reserved(out);
        }
    }

    /// This reply's bytes in a fresh buffer (tests, golden files).
    pub fn to_bytes(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(self.encoded_bytes());
        self.encode_reserved(&mut out);
        debug_assert_eq!(out.len(), self.encoded_bytes());
        out.freeze()
    }
}

/// Why a byte stream is not a RESP2 reply: which rule broke.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReplyError {
    /// The first byte is not one of `+ - : $ *` (RESP3 types included: RESP2 only here).
    UnknownType {
        /// The byte found.
        byte: u8,
    },
    /// A line's `\r` is not followed by `\n`, or a bulk's payload not by `\r\n`.
    ExpectedCrlf {
        /// Offset of the offending byte.
        at_bytes: usize,
    },
    /// An integer reply or a `$`/`*` length is not a decimal i64.
    InvalidInteger,
    /// A bulk length is below -1 or above the bulk bound.
    InvalidBulkLength,
    /// An array count is below -1 or above the count bound.
    InvalidArrayLength,
    /// Arrays nest deeper than [`REPLY_DEPTH_LIMIT`].
    TooDeep,
    /// A `+` or `-` line holds a bare `\n`: [`Reply::Simple`] and [`Reply::Error`] texts
    /// hold no `\r` or `\n`, so such a reply could not be encoded again.
    LineHoldsNewline {
        /// Offset of the `\n`.
        at_bytes: usize,
    },
    /// A `-` line is empty: an error reply starts with its code (`ERR`, `WRONGTYPE`, ...).
    ErrorWithoutCode,
}

impl fmt::Display for ReplyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReplyError::UnknownType { byte } => {
                write!(f, "RESP2 reply: unknown type byte 0x{byte:02x}")
            }
            ReplyError::ExpectedCrlf { at_bytes } => {
                write!(f, "RESP2 reply: expected CRLF at byte {at_bytes}")
            }
            ReplyError::InvalidInteger => write!(f, "RESP2 reply: integer is not a decimal i64"),
            ReplyError::InvalidBulkLength => write!(f, "RESP2 reply: invalid bulk length"),
            ReplyError::InvalidArrayLength => write!(f, "RESP2 reply: invalid array length"),
            ReplyError::TooDeep => write!(f, "RESP2 reply: arrays nested deeper than {REPLY_DEPTH_LIMIT}"),
            ReplyError::LineHoldsNewline { at_bytes } => {
                write!(f, "RESP2 reply: a status or error line holds a bare LF at byte {at_bytes}")
            }
            ReplyError::ErrorWithoutCode => write!(f, "RESP2 reply: an error reply has no code"),
        }
    }
}

impl std::error::Error for ReplyError {}

/// Deepest array nesting the reply decoder accepts (the `redis` crate accepts 100). Why a
/// bound: a hostile or corrupt stream of `*1\r\n*1\r\n...` must not grow the stack.
pub(crate) const REPLY_DEPTH_LIMIT: usize = 100;

/// Largest bulk reply the decoder accepts: Redis's `proto-max-bulk-len` default.
pub(crate) const REPLY_BULK_BYTES_LIMIT: u64 = 512 * 1024 * 1024;

/// What the front of a reply buffer holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReplyCheck {
    /// Not a whole reply yet.
    Incomplete,
    /// A whole reply of `frame_bytes` bytes is at the front.
    Complete {
        /// Length of the reply on the wire.
        frame_bytes: usize,
    },
    /// Not RESP2.
    Error(ReplyError),
}

/// Reads one `\r\n`-terminated line starting at `start`: `Ok(None)` if incomplete, else
/// (line without CRLF, position after CRLF).
fn reply_line(buf: &[u8], start: usize) -> Result<Option<(&[u8], usize)>, ReplyError> {
    let Some(offset) = buf[start..].iter().position(|&b| b == b'\r') else {
        return Ok(None);
    };
    let cr = start + offset;
    match buf.get(cr + 1) {
        None => Ok(None),
        Some(b'\n') => Ok(Some((&buf[start..cr], cr + 2))),
        Some(_) => Err(ReplyError::ExpectedCrlf { at_bytes: cr + 1 }),
    }
}

/// The header of one value at `position`: `Ok(None)` if incomplete.
enum Header<'a> {
    Line { kind: u8, line: &'a [u8] },
    Integer(i64),
    Bulk { bulk_bytes: Option<usize> },
    Array { count: Option<usize> },
}

fn reply_header(buf: &[u8], position: usize) -> Result<Option<(Header<'_>, usize)>, ReplyError> {
    let Some(&kind) = buf.get(position) else {
        return Ok(None);
    };
    if !matches!(kind, b'+' | b'-' | b':' | b'$' | b'*') {
        return Err(ReplyError::UnknownType { byte: kind });
    }
    let Some((line, next)) = reply_line(buf, position + 1)? else {
        return Ok(None);
    };
    let header = match kind {
        b'+' | b'-' => {
            check_line_text(kind, line, position + 1)?;
            Header::Line { kind, line }
        }
        b':' => Header::Integer(string_to_i64(line).ok_or(ReplyError::InvalidInteger)?),
        b'$' => match string_to_i64(line).ok_or(ReplyError::InvalidInteger)? {
            -1 => Header::Bulk { bulk_bytes: None },
            len if len >= 0 && (len as u64) <= REPLY_BULK_BYTES_LIMIT => {
                Header::Bulk { bulk_bytes: Some(len as usize) }
            }
            _ => return Err(ReplyError::InvalidBulkLength),
        },
        _ => match string_to_i64(line).ok_or(ReplyError::InvalidInteger)? {
            -1 => Header::Array { count: None },
            count if (0..=i64::from(i32::MAX)).contains(&count) => Header::Array { count: Some(count as usize) },
            _ => return Err(ReplyError::InvalidArrayLength),
        },
    };
    Ok(Some((header, next)))
}

/// The rules of a status or error text, starting at offset `start`: no `\n` (the line
/// already ends at the first `\r`), and an error is not empty. Why here: a parsed reply
/// must satisfy its type's rules, as [`Reply::simple`] and [`Reply::error`] assert.
fn check_line_text(kind: u8, line: &[u8], start: usize) -> Result<(), ReplyError> {
    if let Some(offset) = line.iter().position(|&b| b == b'\n') {
        return Err(ReplyError::LineHoldsNewline { at_bytes: start + offset });
    }
    if kind == b'-' && line.is_empty() {
        return Err(ReplyError::ErrorWithoutCode);
    }
    debug_assert!(!line.contains(&b'\r'));
    Ok(())
}

/// Checks whether `buf` starts with a whole RESP2 reply, without allocating: it walks the
/// values keeping only a count of values still owed per nesting level (a fixed array).
pub fn check_reply(buf: &[u8]) -> ReplyCheck {
    // owed[d] = values still to read at depth d.
    let mut owed = [0usize; REPLY_DEPTH_LIMIT + 1];
    let mut depth = 0usize;
    owed[0] = 1;
    let mut position = 0usize;
    loop {
        while owed[depth] == 0 {
            if depth == 0 {
                return ReplyCheck::Complete { frame_bytes: position };
            }
            depth -= 1;
        }
        owed[depth] -= 1;
        let (header, next) = match reply_header(buf, position) {
            Ok(Some(found)) => found,
            Ok(None) => return ReplyCheck::Incomplete,
            Err(error) => return ReplyCheck::Error(error),
        };
        position = next;
        match header {
            Header::Line { .. }
            | Header::Integer(_)
            | Header::Bulk { bulk_bytes: None }
            | Header::Array { count: None } => {}
            Header::Bulk { bulk_bytes: Some(bulk_bytes) } => {
                if buf.len() - position < bulk_bytes + 2 {
                    return ReplyCheck::Incomplete;
                }
                if &buf[position + bulk_bytes..position + bulk_bytes + 2] != b"\r\n" {
                    return ReplyCheck::Error(ReplyError::ExpectedCrlf { at_bytes: position + bulk_bytes });
                }
                position += bulk_bytes + 2;
            }
            Header::Array { count: Some(count) } => {
                if count > 0 {
                    if depth == REPLY_DEPTH_LIMIT {
                        return ReplyCheck::Error(ReplyError::TooDeep);
                    }
                    depth += 1;
                    owed[depth] = count;
                }
            }
        }
    }
}

/// Parses a frame [`check_reply`] found Complete, starting at `position`; bulks are slices
/// of `frame`.
fn parse_checked_reply(frame: &Bytes, position: &mut usize, depth: usize) -> Reply {
    assert!(depth <= REPLY_DEPTH_LIMIT);
    let (header, next) =
        reply_header(frame, *position).ok().flatten().expect("a checked reply frame has whole headers");
    let start_of_line = *position + 1;
    *position = next;
    match header {
        Header::Line { kind, line } => {
            let text = frame.slice(start_of_line..start_of_line + line.len());
            if kind == b'+' { Reply::Simple(text) } else { Reply::Error(text) }
        }
        Header::Integer(value) => Reply::Integer(value),
        Header::Bulk { bulk_bytes: None } => Reply::Null,
        Header::Array { count: None } => Reply::NullArray,
        Header::Bulk { bulk_bytes: Some(bulk_bytes) } => {
            let bytes = frame.slice(*position..*position + bulk_bytes);
            *position += bulk_bytes + 2;
            Reply::Bulk(bytes)
        }
        Header::Array { count: Some(count) } => {
            let mut items = Vec::with_capacity(count.min(1024));
            for _ in 0..count {
                items.push(parse_checked_reply(frame, position, depth + 1));
            }
            Reply::Array(items)
        }
    }
}

/// Takes one reply off the front of `buf`: `Ok(Some)` the reply (its bytes removed),
/// `Ok(None)` wait for more, `Err` the stream is not RESP2 (nothing is consumed).
pub fn parse_reply(buf: &mut BytesMut) -> Result<Option<Reply>, ReplyError> {
    match check_reply(buf) {
        ReplyCheck::Incomplete => Ok(None),
        ReplyCheck::Error(error) => Err(error),
        ReplyCheck::Complete { frame_bytes } => {
            let frame = buf.split_to(frame_bytes).freeze();
            let mut position = 0;
            let reply = parse_checked_reply(&frame, &mut position, 0);
            assert_eq!(position, frame_bytes, "a checked reply is consumed exactly");
            Ok(Some(reply))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_every_type() {
        let reply = Reply::Array(vec![
            Reply::ok(),
            Reply::error("ERR syntax error"),
            Reply::Integer(-42),
            Reply::bulk(&b"a\r\n\0b"[..]),
            Reply::Null,
            Reply::NullArray,
            Reply::Array(vec![]),
        ]);
        let bytes = reply.to_bytes();
        assert_eq!(
            &bytes[..],
            &b"*7\r\n+OK\r\n-ERR syntax error\r\n:-42\r\n$5\r\na\r\n\0b\r\n$-1\r\n*-1\r\n*0\r\n"[..]
        );
        assert_eq!(bytes.len(), reply.encoded_bytes());
        let mut buf = BytesMut::from(&bytes[..]);
        assert_eq!(parse_reply(&mut buf), Ok(Some(reply)));
        assert!(buf.is_empty());
    }

    #[test]
    fn integer_extremes() {
        for value in [0, 9, 10, -1, i64::MAX, i64::MIN] {
            let bytes = Reply::Integer(value).to_bytes();
            assert_eq!(bytes, Bytes::from(format!(":{value}\r\n")));
            assert_eq!(parse_reply(&mut BytesMut::from(&bytes[..])), Ok(Some(Reply::Integer(value))));
        }
    }

    #[test]
    fn rejects_and_waits() {
        assert_eq!(check_reply(b"*2\r\n:1\r\n"), ReplyCheck::Incomplete);
        assert_eq!(check_reply(b"$3\r\nab"), ReplyCheck::Incomplete);
        assert_eq!(check_reply(b"%1\r\n"), ReplyCheck::Error(ReplyError::UnknownType { byte: b'%' }));
        assert_eq!(check_reply(b"$-2\r\n"), ReplyCheck::Error(ReplyError::InvalidBulkLength));
        assert_eq!(check_reply(b"$1\r\nabc"), ReplyCheck::Error(ReplyError::ExpectedCrlf { at_bytes: 5 }));
        assert_eq!(check_reply(b"+OK\rx"), ReplyCheck::Error(ReplyError::ExpectedCrlf { at_bytes: 4 }));
        let deep = b"*1\r\n".repeat(REPLY_DEPTH_LIMIT + 1);
        assert_eq!(check_reply(&deep), ReplyCheck::Error(ReplyError::TooDeep));
    }

    /// A status or error line is refused when it breaks its type's rule (the old check took
    /// `+\n\r\n` as a status holding a LF, and encoding it again tripped an assert).
    #[test]
    fn a_line_that_breaks_its_types_rule_is_refused() {
        assert_eq!(check_reply(b"+\n\r\n"), ReplyCheck::Error(ReplyError::LineHoldsNewline { at_bytes: 1 }));
        assert_eq!(check_reply(b"-ERR a\nb\r\n"), ReplyCheck::Error(ReplyError::LineHoldsNewline { at_bytes: 6 }));
        assert_eq!(check_reply(b"*1\r\n+O\nK\r\n"), ReplyCheck::Error(ReplyError::LineHoldsNewline { at_bytes: 6 }));
        assert_eq!(check_reply(b"-\r\n"), ReplyCheck::Error(ReplyError::ErrorWithoutCode));
        assert_eq!(
            parse_reply(&mut BytesMut::from(&b"+\n\r\n"[..])),
            Err(ReplyError::LineHoldsNewline { at_bytes: 1 })
        );
        // Every reply the parser hands out encodes back to the bytes it came from.
        for wire in [&b"+\r\n"[..], b"+OK\r\n", b"-ERR x\r\n", b"*2\r\n+a\r\n-E\r\n"] {
            let reply = parse_reply(&mut BytesMut::from(wire)).unwrap().unwrap();
            assert_eq!(&reply.to_bytes()[..], wire);
        }
    }
}
