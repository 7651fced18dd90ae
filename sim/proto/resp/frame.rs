//! The streaming request decoder: bytes from a client socket in, [`Command`]s out.
//!
//! Why it is shaped this way (after tokio's mini-redis): bytes arrive split at any boundary
//! and several requests may share one read (pipelining). [`check_request`] answers cheaply,
//! without allocating, whether the front of the buffer holds a whole request; only then is
//! the frame split off (`BytesMut::split_to`, no copy) and parsed, its arguments becoming
//! `Bytes` slices of it.
//!
//! Acceptance follows Redis 7.0's `processInputBuffer` / `processMultibulkBuffer` /
//! `processInlineBuffer` rule for rule, because the model must accept, refuse and wait on
//! exactly what a real server does:
//! - the first byte decides the framing: `*` is multibulk, anything else inline;
//! - header lines (`*N`, `$N`) end at the first `\r` and the byte after it is skipped
//!   unchecked; a bulk's two trailing bytes are skipped unchecked too (Redis does not verify
//!   they are `\r\n`);
//! - numbers follow Redis's `string2ll` (no `+`, no leading zeros, no blanks, < 21 bytes);
//! - like Redis's `strchr`, the search for a line end stops at a NUL byte, so a header or
//!   inline line holding a NUL waits until the 64 KiB bound refuses it;
//! - `*N` with `N <= 0` and blank inline lines are empty requests, skipped without a reply;
//! - a protocol error is final: Redis replies with the error (if it has one) and closes the
//!   connection, so [`ProtocolError::must_close`] is always true and a [`Decoder`] that has
//!   failed keeps failing.
//!
//! Not modelled: the replication-master client's exemptions.

use std::fmt;

use bytes::{Bytes, BytesMut};

use super::command::{Command, Framing};
use super::limits::RequestLimits;
use super::reply::Reply;

/// A protocol violation: which RESP rule broke. Every variant means the connection must be
/// closed after sending [`ProtocolError::reply`] (if any), as Redis does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProtocolError {
    /// An inline request grew past the inline bound without a `\n`.
    TooBigInlineRequest,
    /// An inline request has a quote that is not closed, or a closing quote followed by
    /// something other than a blank.
    UnbalancedQuotes,
    /// A `*N` header grew past the inline bound without a `\r`.
    TooBigMultibulkCountString,
    /// The `*N` count is not a number or exceeds the multibulk count limit.
    InvalidMultibulkLength,
    /// The `*N` count exceeds the unauthenticated limit while authentication is required.
    UnauthenticatedMultibulkLength,
    /// A `$N` header grew past the inline bound without a `\r`.
    TooBigBulkCountString,
    /// An element of a multibulk request does not start with `$`.
    ExpectedDollar {
        /// The byte found instead.
        got: u8,
    },
    /// The `$N` length is not a number, negative, or above `proto-max-bulk-len`.
    InvalidBulkLength,
    /// The `$N` length exceeds the unauthenticated limit while authentication is required.
    UnauthenticatedBulkLength,
    /// More unprocessed bytes than `client-query-buffer-limit`: Redis closes silently.
    QueryBufferLimit {
        /// How many bytes were buffered.
        buffered_bytes: usize,
    },
}

impl ProtocolError {
    /// The error reply Redis 7.0 sends before closing, byte for byte; `None` when it closes
    /// without one (query buffer limit).
    pub fn reply(&self) -> Option<Reply> {
        let text: Vec<u8> = match self {
            ProtocolError::TooBigInlineRequest => b"ERR Protocol error: too big inline request".to_vec(),
            ProtocolError::UnbalancedQuotes => b"ERR Protocol error: unbalanced quotes in request".to_vec(),
            ProtocolError::TooBigMultibulkCountString => b"ERR Protocol error: too big mbulk count string".to_vec(),
            ProtocolError::InvalidMultibulkLength => b"ERR Protocol error: invalid multibulk length".to_vec(),
            ProtocolError::UnauthenticatedMultibulkLength => {
                b"ERR Protocol error: unauthenticated multibulk length".to_vec()
            }
            ProtocolError::TooBigBulkCountString => b"ERR Protocol error: too big bulk count string".to_vec(),
            ProtocolError::ExpectedDollar { got } => {
                // Redis formats with "%c" through vsnprintf + strlen (a NUL truncates the text
                // there) and then maps '\r' and '\n' to spaces.
                let mut text = b"ERR Protocol error: expected '$', got '".to_vec();
                match got {
                    0 => {}
                    b'\r' | b'\n' => text.extend_from_slice(b" '"),
                    other => text.extend_from_slice(&[*other, b'\'']),
                }
                text
            }
            ProtocolError::InvalidBulkLength => b"ERR Protocol error: invalid bulk length".to_vec(),
            ProtocolError::UnauthenticatedBulkLength => b"ERR Protocol error: unauthenticated bulk length".to_vec(),
            ProtocolError::QueryBufferLimit { .. } => return None,
        };
        Some(Reply::Error(Bytes::from(text)))
    }

    /// Always true: after any protocol error Redis sets `CLIENT_CLOSE_AFTER_REPLY` and stops
    /// reading. Why a method: so callers write `if err.must_close()` and the rule is stated
    /// in one place.
    pub fn must_close(&self) -> bool {
        true
    }
}

impl fmt::Display for ProtocolError {
    /// The Redis reply text, or a description when Redis sends none.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.reply() {
            Some(Reply::Error(text)) => {
                write!(f, "{} (connection must close)", String::from_utf8_lossy(&text))
            }
            _ => match self {
                ProtocolError::QueryBufferLimit { buffered_bytes } => write!(
                    f,
                    "query buffer of {buffered_bytes} bytes exceeds client-query-buffer-limit (connection closes without reply)"
                ),
                _ => write!(f, "{self:?}"),
            },
        }
    }
}

impl std::error::Error for ProtocolError {}

/// What the front of a request buffer holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Check {
    /// Not a whole request yet: read more. (An empty buffer is Incomplete.)
    Incomplete,
    /// A whole request of `frame_bytes` bytes is at the front. It may be an empty request
    /// (`*0\r\n`, a blank line), which the [`Decoder`] consumes silently.
    Complete {
        /// Length of the request on the wire.
        frame_bytes: usize,
    },
    /// The request breaks the protocol; the connection must close.
    Error(ProtocolError),
}

/// Checks whether `buf` starts with a whole request, without allocating. `auth_required`
/// is true while the server requires a password the client has not given (Redis's
/// `authRequired`), which tightens the bounds. Scans from the front; a [`Decoder`] uses
/// [`check_request_resume`] instead, so that a request arriving in many reads is scanned once.
pub fn check_request(buf: &[u8], limits: &RequestLimits, auth_required: bool) -> Check {
    check_request_resume(buf, limits, auth_required, &mut CheckProgress::default())
}

/// How far the check got through the request at the front of the buffer, so that the next
/// check continues there: the cost of a request fed in small reads is linear in its bytes,
/// not quadratic (Redis keeps the same state per client: `multibulklen`, `bulklen`,
/// `qb_pos`). Valid while the buffer only grows at its end.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CheckProgress {
    /// Offset of the first byte not yet accepted: the next header line, or the payload of
    /// the bulk whose header was accepted.
    position: usize,
    /// Bulks still owed; `None` until the `*N` line is accepted.
    remaining_count: Option<i64>,
    /// The pending bulk's length, once its `$N` line is accepted.
    bulk_bytes: Option<u64>,
    /// Where the search for the current line's end continues: no terminator before it.
    searched_to: usize,
    /// The current line's search met a NUL: like Redis's `strchr` it never ends (until the
    /// inline bound refuses it).
    blocked: bool,
    /// Bytes examined so far (the evidence that the cost is linear).
    scanned_bytes: u64,
}

impl CheckProgress {
    /// Bytes examined by every check with this progress.
    pub fn scanned_bytes(&self) -> u64 {
        self.scanned_bytes
    }

    /// Progress for the next request, keeping the scan count.
    fn restart(&mut self) {
        *self = CheckProgress { scanned_bytes: self.scanned_bytes, ..CheckProgress::default() };
    }

    /// A line was accepted; the next one starts at `next`.
    fn next_line(&mut self, next: usize) {
        assert!(next >= self.position);
        self.position = next;
        self.searched_to = next;
        self.blocked = false;
    }

    /// The current line's first `needle`, searching on from where the last search stopped
    /// like C's `strchr`: a NUL byte ends the search for good.
    fn find_line_end(&mut self, buf: &[u8], needle: u8) -> Option<usize> {
        debug_assert!(needle != 0);
        if self.blocked {
            return None;
        }
        let from = self.searched_to.max(self.position);
        let rest = buf.get(from..)?;
        let Some(offset) = rest.iter().position(|&b| b == needle || b == 0) else {
            self.scanned_bytes += rest.len() as u64;
            self.searched_to = buf.len();
            return None;
        };
        self.scanned_bytes += offset as u64 + 1;
        let at = from + offset;
        if buf[at] == needle {
            self.searched_to = at;
            return Some(at);
        }
        self.blocked = true;
        None
    }
}

/// [`check_request`] continuing from `progress`, which must come from earlier checks of the
/// same buffer (grown only at its end) and be restarted once a request is taken off it.
pub fn check_request_resume(
    buf: &[u8],
    limits: &RequestLimits,
    auth_required: bool,
    progress: &mut CheckProgress,
) -> Check {
    assert!(progress.position <= buf.len(), "check progress beyond the buffer: was it consumed?");
    let checked = match buf.first() {
        None => Ok(false),
        Some(b'*') => check_multibulk(buf, limits, auth_required, progress),
        Some(_) => check_inline(buf, limits, progress),
    };
    match checked {
        Ok(true) => Check::Complete { frame_bytes: progress.position },
        Ok(false) => Check::Incomplete,
        Err(error) => Check::Error(error),
    }
}

/// Position of the first `needle` in `buf[from..]`, searching like C's `strchr`: a NUL byte
/// ends the search (Redis's query buffer is a C string to `strchr`).
fn find_c(buf: &[u8], from: usize, needle: u8) -> Option<usize> {
    debug_assert!(needle != 0);
    let offset = buf.get(from..)?.iter().position(|&b| b == needle || b == 0)?;
    (buf[from + offset] == needle).then_some(from + offset)
}

/// Redis's `string2ll`: strict decimal, optional `-`, no leading zeros, fewer than 21
/// bytes, in range of i64.
pub(crate) fn string_to_i64(digits: &[u8]) -> Option<i64> {
    const LONG_STR_SIZE: usize = 21;
    if digits.is_empty() || digits.len() >= LONG_STR_SIZE {
        return None;
    }
    if digits == b"0" {
        return Some(0);
    }
    let (negative, magnitude) = match digits.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, digits),
    };
    match magnitude.first() {
        Some(b'1'..=b'9') => {}
        _ => return None,
    }
    let mut value: u64 = 0;
    for &digit in magnitude {
        if !digit.is_ascii_digit() {
            return None;
        }
        value = value.checked_mul(10)?.checked_add(u64::from(digit - b'0'))?;
    }
    if negative {
        if value > i64::MAX as u64 + 1 {
            return None;
        }
        Some((value as i64).wrapping_neg())
    } else {
        i64::try_from(value).ok()
    }
}

/// The multibulk rules, from `progress` on: `Ok(true)` when the whole request is in (it
/// ends at `progress.position`), `Ok(false)` to wait for more bytes.
fn check_multibulk(
    buf: &[u8],
    limits: &RequestLimits,
    auth_required: bool,
    progress: &mut CheckProgress,
) -> Result<bool, ProtocolError> {
    assert_eq!(buf[0], b'*');
    if progress.remaining_count.is_none() {
        let Some(count) = multibulk_count(buf, limits, auth_required, progress)? else {
            return Ok(false);
        };
        progress.remaining_count = Some(count.max(0));
    }
    // Bounded: each pass accepts one bulk, and the count was bounded by its header.
    while let Some(remaining_count @ 1..) = progress.remaining_count {
        let bulk_bytes = match progress.bulk_bytes {
            Some(bulk_bytes) => bulk_bytes,
            None => match bulk_length(buf, limits, auth_required, progress)? {
                Some(bulk_bytes) => bulk_bytes,
                None => return Ok(false),
            },
        };
        progress.bulk_bytes = Some(bulk_bytes);
        // The payload and its two trailing bytes (skipped unchecked, as Redis does).
        let available_bytes = (buf.len() - progress.position) as u64;
        if available_bytes < bulk_bytes + 2 {
            return Ok(false);
        }
        progress.next_line(progress.position + bulk_bytes as usize + 2);
        progress.bulk_bytes = None;
        progress.remaining_count = Some(remaining_count - 1);
    }
    assert!(progress.position <= buf.len());
    Ok(true)
}

/// The `*N` line: the count once the line (and the byte after its `\r`) is in.
fn multibulk_count(
    buf: &[u8],
    limits: &RequestLimits,
    auth_required: bool,
    progress: &mut CheckProgress,
) -> Result<Option<i64>, ProtocolError> {
    assert_eq!(progress.position, 0);
    let Some(count_cr) = progress.find_line_end(buf, b'\r') else {
        if buf.len() > limits.inline_bytes_limit {
            return Err(ProtocolError::TooBigMultibulkCountString);
        }
        return Ok(None);
    };
    // Redis wants one byte after the '\r' (taken to be '\n', never checked).
    if count_cr + 2 > buf.len() {
        return Ok(None);
    }
    let count = match string_to_i64(&buf[1..count_cr]) {
        Some(count) if count <= limits.multibulk_count_limit => count,
        _ => return Err(ProtocolError::InvalidMultibulkLength),
    };
    if auth_required && count > limits.unauthenticated_multibulk_count_limit {
        return Err(ProtocolError::UnauthenticatedMultibulkLength);
    }
    progress.next_line(count_cr + 2);
    Ok(Some(count))
}

/// A `$N` line at `progress.position`: the bulk's length once the line is in.
fn bulk_length(
    buf: &[u8],
    limits: &RequestLimits,
    auth_required: bool,
    progress: &mut CheckProgress,
) -> Result<Option<u64>, ProtocolError> {
    let position = progress.position;
    let Some(cr) = progress.find_line_end(buf, b'\r') else {
        if buf.len() - position > limits.inline_bytes_limit {
            return Err(ProtocolError::TooBigBulkCountString);
        }
        return Ok(None);
    };
    if cr + 2 > buf.len() {
        return Ok(None);
    }
    if buf[position] != b'$' {
        return Err(ProtocolError::ExpectedDollar { got: buf[position] });
    }
    let bulk_bytes = match string_to_i64(&buf[position + 1..cr]) {
        Some(len) if len >= 0 && (len as u64) <= limits.bulk_bytes_limit => len as u64,
        _ => return Err(ProtocolError::InvalidBulkLength),
    };
    if auth_required && bulk_bytes > limits.unauthenticated_bulk_bytes_limit {
        return Err(ProtocolError::UnauthenticatedBulkLength);
    }
    progress.next_line(cr + 2);
    Ok(Some(bulk_bytes))
}

/// The inline rules: `Ok(true)` once the line and its `\n` are in (the request ends at
/// `progress.position`).
fn check_inline(buf: &[u8], limits: &RequestLimits, progress: &mut CheckProgress) -> Result<bool, ProtocolError> {
    assert_ne!(buf[0], b'*');
    let Some(newline) = progress.find_line_end(buf, b'\n') else {
        if buf.len() > limits.inline_bytes_limit {
            return Err(ProtocolError::TooBigInlineRequest);
        }
        return Ok(false);
    };
    split_inline(inline_line(buf, newline), None)?;
    progress.next_line(newline + 1);
    Ok(true)
}

/// The inline line before its `\n`, without a `\r` just before it.
fn inline_line(buf: &[u8], newline: usize) -> &[u8] {
    let mut end = newline;
    if end > 0 && buf[end - 1] == b'\r' {
        end -= 1;
    }
    &buf[..end]
}

/// C's `isspace` in the C locale.
fn is_c_space(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

fn hex_value(byte: u8) -> Option<u8> {
    (byte as char).to_digit(16).map(|v| v as u8)
}

/// The byte at `index`, NUL past the end (the C string's terminator).
fn byte_at(line: &[u8], index: usize) -> u8 {
    line.get(index).copied().unwrap_or(0)
}

/// `sdssplitargs` inside `"..."` at `*p`: the byte to append (escapes `\xHH \n \r \t \b
/// \a \<any>` decoded, `*p` left on their last byte) and whether the closing quote ended
/// the argument; a closing quote not followed by a blank or the end, or no closing quote,
/// is an error.
fn double_quoted(line: &[u8], p: &mut usize) -> Result<(Option<u8>, bool), ProtocolError> {
    let at = |index: usize| byte_at(line, index);
    let byte = at(*p);
    if byte == b'\\' && at(*p + 1) == b'x' && hex_value(at(*p + 2)).is_some() && hex_value(at(*p + 3)).is_some() {
        let high = hex_value(at(*p + 2)).unwrap_or(0);
        let low = hex_value(at(*p + 3)).unwrap_or(0);
        *p += 3;
        return Ok((Some(high * 16 + low), false));
    }
    if byte == b'\\' && at(*p + 1) != 0 {
        *p += 1;
        let escaped = match at(*p) {
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'b' => 0x08,
            b'a' => 0x07,
            other => other,
        };
        return Ok((Some(escaped), false));
    }
    match byte {
        b'"' if at(*p + 1) != 0 && !is_c_space(at(*p + 1)) => Err(ProtocolError::UnbalancedQuotes),
        b'"' => Ok((None, true)),
        0 => Err(ProtocolError::UnbalancedQuotes),
        _ => Ok((Some(byte), false)),
    }
}

/// `sdssplitargs` inside `'...'` at `*p`: as [`double_quoted`], with `\'` the only escape.
fn single_quoted(line: &[u8], p: &mut usize) -> Result<(Option<u8>, bool), ProtocolError> {
    let at = |index: usize| byte_at(line, index);
    let byte = at(*p);
    if byte == b'\\' && at(*p + 1) == b'\'' {
        *p += 1;
        return Ok((Some(b'\''), false));
    }
    match byte {
        b'\'' if at(*p + 1) != 0 && !is_c_space(at(*p + 1)) => Err(ProtocolError::UnbalancedQuotes),
        b'\'' => Ok((None, true)),
        0 => Err(ProtocolError::UnbalancedQuotes),
        _ => Ok((Some(byte), false)),
    }
}

/// Redis's `sdssplitargs`, exactly: blanks separate arguments; `"..."` takes the escapes
/// `\n \r \t \b \a \xHH \<any>`; `'...'` takes `\'`; a quote may open mid-argument
/// (`ab"c d"` is `abc d`); a closing quote must be followed by a blank or the end.
/// With `out = None` it only validates, allocating nothing. Arguments without quotes are
/// zero-copy slices of `line_bytes`; quoted ones are built (inline requests are rare).
/// Returns the number of arguments.
fn split_inline(line: &[u8], mut out: Option<(&Bytes, &mut Vec<Bytes>)>) -> Result<usize, ProtocolError> {
    // Bytes past the end read as NUL, like the C string's terminator. The line holds no NUL
    // (the newline search stops at one), so NUL means the end.
    let at = |index: usize| byte_at(line, index);
    debug_assert!(!line.contains(&0));
    let mut count = 0usize;
    let mut p = 0usize;
    loop {
        while at(p) != 0 && is_c_space(at(p)) {
            p += 1;
        }
        if at(p) == 0 {
            return Ok(count);
        }
        let start = p;
        let mut plain_end = p;
        let mut built: Option<Vec<u8>> = None;
        let (mut in_double, mut in_single, mut done) = (false, false, false);
        while !done {
            let byte = at(p);
            let mut push: Option<u8> = None;
            if in_double {
                (push, done) = double_quoted(line, &mut p)?;
            } else if in_single {
                (push, done) = single_quoted(line, &mut p)?;
            } else {
                match byte {
                    b' ' | b'\n' | b'\r' | b'\t' | 0 => done = true,
                    b'"' | b'\'' => {
                        if byte == b'"' {
                            in_double = true;
                        } else {
                            in_single = true;
                        }
                        if out.is_some() && built.is_none() {
                            built = Some(line[start..plain_end].to_vec());
                        }
                    }
                    _ => push = Some(byte),
                }
            }
            if let Some(byte) = push {
                match built.as_mut() {
                    Some(bytes) => bytes.push(byte),
                    // Unquoted so far: the argument is still a contiguous slice.
                    None => plain_end = p + 1,
                }
            }
            if at(p) != 0 {
                p += 1;
            }
        }
        count += 1;
        if let Some((line_bytes, args)) = out.as_mut() {
            args.push(match built {
                Some(bytes) => Bytes::from(bytes),
                None => line_bytes.slice(start..plain_end),
            });
        }
    }
}

/// Parses a frame [`check_request`] found Complete. `None` for an empty request.
fn parse_checked(frame: Bytes) -> Option<Command> {
    match frame.first() {
        Some(b'*') => parse_multibulk(frame),
        Some(_) => parse_inline(frame),
        None => unreachable!("a complete frame has at least one byte"),
    }
}

fn parse_multibulk(frame: Bytes) -> Option<Command> {
    let count_cr = find_c(&frame, 0, b'\r').expect("checked frame has its count line");
    let count = string_to_i64(&frame[1..count_cr]).expect("checked frame has a valid count");
    if count <= 0 {
        assert_eq!(frame.len(), count_cr + 2);
        return None;
    }
    // Never trust a declared count for allocation; Redis also caps its initial argv at 1024.
    let mut argv = Vec::with_capacity((count as usize).min(1024));
    let mut position = count_cr + 2;
    for _ in 0..count {
        let cr = find_c(&frame, position, b'\r').expect("checked frame has each bulk header");
        assert_eq!(frame[position], b'$');
        let bulk_bytes = string_to_i64(&frame[position + 1..cr]).expect("checked bulk length") as usize;
        position = cr + 2;
        argv.push(frame.slice(position..position + bulk_bytes));
        position += bulk_bytes + 2;
    }
    assert_eq!(position, frame.len(), "a checked frame ends after its last bulk");
    Some(Command::new(argv, Framing::Multibulk))
}

fn parse_inline(frame: Bytes) -> Option<Command> {
    let newline = frame.len() - 1;
    assert_eq!(frame[newline], b'\n');
    let line_len = inline_line(&frame, newline).len();
    let line_bytes = frame.slice(..line_len);
    let mut argv = Vec::new();
    split_inline(&line_bytes, Some((&line_bytes, &mut argv))).expect("checked inline request splits");
    if argv.is_empty() {
        return None;
    }
    Some(Command::new(argv, Framing::Inline))
}

/// The decoder's postcondition: a command it hands out respects the bounds it was given
/// (`check_request` refused anything beyond them before a byte was allocated). Multibulk:
/// at most the multibulk count and each argument at most the bulk length (the tighter
/// unauthenticated ones while AUTH is required); inline: at most the inline size. O(argc).
fn assert_within_limits(command: &Command, limits: &RequestLimits, auth_required: bool) {
    match command.framing() {
        Framing::Multibulk => {
            let (count_limit, bulk_limit) = if auth_required {
                (limits.unauthenticated_multibulk_count_limit, limits.unauthenticated_bulk_bytes_limit)
            } else {
                (limits.multibulk_count_limit, limits.bulk_bytes_limit)
            };
            assert!(
                command.argc() as i64 <= count_limit,
                "resp decoder: {} arguments over the multibulk limit {count_limit}",
                command.argc()
            );
            let longest = command.argv().iter().map(Bytes::len).max().unwrap_or(0) as u64;
            assert!(longest <= bulk_limit, "resp decoder: a {longest}-byte argument over the bulk limit {bulk_limit}");
        }
        Framing::Inline => {
            let bytes: usize = command.argv().iter().map(Bytes::len).sum();
            assert!(
                bytes <= limits.inline_bytes_limit,
                "resp decoder: {bytes} inline bytes over the limit {}",
                limits.inline_bytes_limit
            );
        }
    }
}

/// The per-connection request decoder. Why stateful: it remembers the authentication state
/// that tightens the bounds, and that a protocol error has closed the connection.
#[derive(Clone, Debug)]
pub struct Decoder {
    limits: RequestLimits,
    auth_required: bool,
    failed: Option<ProtocolError>,
    /// How far the check got through the request at the front of the buffer.
    progress: CheckProgress,
}

impl Decoder {
    /// A decoder with `limits` (use `RequestLimits::default()` for Redis's defaults).
    pub fn new(limits: RequestLimits) -> Decoder {
        Decoder { limits, auth_required: false, failed: None, progress: CheckProgress::default() }
    }

    /// Bytes the request checks examined so far: linear in the bytes fed, however they
    /// were split into reads.
    pub fn scanned_bytes(&self) -> u64 {
        self.progress.scanned_bytes()
    }

    /// Tells the decoder whether the server still requires this client to authenticate
    /// (`requirepass` set and no successful AUTH yet), which tightens the bounds.
    pub fn set_auth_required(&mut self, auth_required: bool) {
        if auth_required != self.auth_required {
            // The bounds changed: check the pending request again under the new ones.
            self.progress.restart();
        }
        self.auth_required = auth_required;
    }

    /// The bounds in force.
    pub fn limits(&self) -> &RequestLimits {
        &self.limits
    }

    /// The protocol error that ended this connection, if any.
    pub fn failed(&self) -> Option<&ProtocolError> {
        self.failed.as_ref()
    }

    /// Checks the query buffer bound after a read. Why separate: Redis checks it on every
    /// read, also while the client is blocked (BLMOVE) and its requests are not decoded.
    pub(crate) fn check_query_buffer(&mut self, buffered_bytes: usize) -> Result<(), ProtocolError> {
        if buffered_bytes > self.limits.query_buffer_bytes_limit {
            let error = ProtocolError::QueryBufferLimit { buffered_bytes };
            self.failed = Some(error.clone());
            return Err(error);
        }
        Ok(())
    }

    /// Takes the next request off the front of `buf`: `Ok(Some)` a command (its bytes
    /// removed from `buf`), `Ok(None)` wait for more bytes, `Err` the connection must close
    /// (send `err.reply()` first, if any). Empty requests are consumed silently. Once it has
    /// failed, it returns the same error forever.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Command>, ProtocolError> {
        if let Some(error) = &self.failed {
            return Err(error.clone());
        }
        self.check_query_buffer(buf.len())?;
        if self.progress.position > buf.len() {
            // The caller consumed bytes the progress covered: start the request over.
            self.progress.restart();
        }
        loop {
            match check_request_resume(buf, &self.limits, self.auth_required, &mut self.progress) {
                Check::Incomplete => return Ok(None),
                Check::Error(error) => {
                    self.failed = Some(error.clone());
                    return Err(error);
                }
                Check::Complete { frame_bytes } => {
                    assert!(frame_bytes > 0 && frame_bytes <= buf.len());
                    let frame = buf.split_to(frame_bytes).freeze();
                    self.progress.restart();
                    if let Some(command) = parse_checked(frame) {
                        assert_within_limits(&command, &self.limits, self.auth_required);
                        return Ok(Some(command));
                    }
                }
            }
        }
    }

    /// Decodes every whole request in `buf` into `out` (a pipeline). On error, `out` holds
    /// the commands before the bad one: Redis executes and answers those, then sends the
    /// error and closes.
    pub fn decode_all(&mut self, buf: &mut BytesMut, out: &mut Vec<Command>) -> Result<(), ProtocolError> {
        while let Some(command) = self.decode(buf)? {
            out.push(command);
        }
        Ok(())
    }
}

impl Default for Decoder {
    /// A decoder with Redis's default bounds and no authentication required.
    fn default() -> Self {
        Decoder::new(RequestLimits::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A command beyond the bounds it was decoded under breaks the decoder's postcondition.
    #[test]
    #[should_panic(expected = "arguments over the multibulk limit 10")]
    fn a_command_over_the_unauthenticated_count_breaks_the_postcondition() {
        let argv = (0..11).map(|_| Bytes::from_static(b"x")).collect();
        let command = Command::new(argv, Framing::Multibulk);
        assert_within_limits(&command, &RequestLimits::default(), false);
        assert_within_limits(&command, &RequestLimits::default(), true);
    }

    /// An inline request longer than the inline bound breaks the postcondition.
    #[test]
    #[should_panic(expected = "inline bytes over the limit 4")]
    fn an_inline_command_over_its_bound_breaks_the_postcondition() {
        let limits = RequestLimits { inline_bytes_limit: 4, ..RequestLimits::default() };
        let command = Command::new(vec![Bytes::from_static(b"PING"), Bytes::from_static(b"x")], Framing::Inline);
        assert_within_limits(&command, &limits, false);
    }

    fn decode_one(bytes: &[u8]) -> Result<Option<Command>, ProtocolError> {
        Decoder::default().decode(&mut BytesMut::from(bytes))
    }

    fn argv(command: &Command) -> Vec<&[u8]> {
        command.argv().iter().map(|a| a.as_ref()).collect()
    }

    #[test]
    fn string_to_i64_matches_redis_string2ll() {
        assert_eq!(string_to_i64(b"0"), Some(0));
        assert_eq!(string_to_i64(b"-1"), Some(-1));
        assert_eq!(string_to_i64(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(string_to_i64(b"-9223372036854775808"), Some(i64::MIN));
        for bad in [&b""[..], b"-", b"-0", b"01", b"+1", b" 1", b"1 ", b"9223372036854775808", b"1a"] {
            assert_eq!(string_to_i64(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn multibulk_and_inline() {
        let command = decode_one(b"*2\r\n$4\r\nLLEN\r\n$4\r\njobs\r\n").unwrap().unwrap();
        assert_eq!(argv(&command), vec![&b"LLEN"[..], b"jobs"]);
        assert_eq!(command.framing(), Framing::Multibulk);
        let command = decode_one(b"PING\r\n").unwrap().unwrap();
        assert_eq!(argv(&command), vec![&b"PING"[..]]);
        assert_eq!(command.framing(), Framing::Inline);
        let command = decode_one(b"  SET a   b\n").unwrap().unwrap();
        assert_eq!(argv(&command), vec![&b"SET"[..], b"a", b"b"]);
    }

    #[test]
    fn inline_quotes_follow_sdssplitargs() {
        let command = decode_one(b"SET \"a b\\x41\\n\" 'it\\'s' ab\"c d\"\r\n").unwrap().unwrap();
        assert_eq!(argv(&command), vec![&b"SET"[..], b"a bA\n", b"it's", b"abc d"]);
        assert_eq!(decode_one(b"SET \"a\r\n"), Err(ProtocolError::UnbalancedQuotes));
        assert_eq!(decode_one(b"SET \"a\"b\r\n"), Err(ProtocolError::UnbalancedQuotes));
        assert_eq!(decode_one(b"SET 'a'b\r\n"), Err(ProtocolError::UnbalancedQuotes));
    }

    #[test]
    fn empty_requests_are_skipped() {
        let mut buf = BytesMut::from(&b"*0\r\n*-1\r\n\r\n   \r\n\n*1\r\n$4\r\nPING\r\n"[..]);
        let command = Decoder::default().decode(&mut buf).unwrap().unwrap();
        assert!(command.is("ping"));
        assert!(buf.is_empty());
    }

    #[test]
    fn header_errors_use_redis_texts() {
        let text = |e: ProtocolError| match e.reply() {
            Some(Reply::Error(t)) => String::from_utf8(t.to_vec()).unwrap(),
            other => panic!("{other:?}"),
        };
        assert_eq!(text(decode_one(b"*x\r\n").unwrap_err()), "ERR Protocol error: invalid multibulk length");
        assert_eq!(text(decode_one(b"*2147483648\r\n").unwrap_err()), "ERR Protocol error: invalid multibulk length");
        assert_eq!(decode_one(b"*2147483647\r\n"), Ok(None));
        assert_eq!(text(decode_one(b"*1\r\nfoo\r\n").unwrap_err()), "ERR Protocol error: expected '$', got 'f'");
        assert_eq!(text(decode_one(b"*1\r\n\r\n").unwrap_err()), "ERR Protocol error: expected '$', got ' '");
        assert_eq!(text(decode_one(b"*1\r\n$-1\r\n").unwrap_err()), "ERR Protocol error: invalid bulk length");
        assert_eq!(text(decode_one(b"*1\r\n$536870913\r\n").unwrap_err()), "ERR Protocol error: invalid bulk length");
        assert_eq!(decode_one(b"*1\r\n$536870912\r\n"), Ok(None));
        assert!(decode_one(b"*1\r\n$3\r\nabc").unwrap().is_none());
    }

    #[test]
    fn unauthenticated_bounds() {
        let mut decoder = Decoder::default();
        decoder.set_auth_required(true);
        assert_eq!(
            decoder.clone().decode(&mut BytesMut::from(&b"*11\r\n"[..])),
            Err(ProtocolError::UnauthenticatedMultibulkLength)
        );
        assert_eq!(
            decoder.decode(&mut BytesMut::from(&b"*1\r\n$16385\r\n"[..])),
            Err(ProtocolError::UnauthenticatedBulkLength)
        );
    }

    #[test]
    fn long_lines_without_terminator_are_refused() {
        let long = vec![b'a'; RequestLimits::REDIS_INLINE_BYTES_LIMIT];
        assert_eq!(decode_one(&long), Ok(None));
        let longer = vec![b'a'; RequestLimits::REDIS_INLINE_BYTES_LIMIT + 1];
        assert_eq!(decode_one(&longer), Err(ProtocolError::TooBigInlineRequest));
        let mut count = b"*".to_vec();
        count.extend(vec![b'1'; RequestLimits::REDIS_INLINE_BYTES_LIMIT]);
        assert_eq!(decode_one(&count), Err(ProtocolError::TooBigMultibulkCountString));
        let mut bulk = b"*1\r\n$".to_vec();
        bulk.extend(vec![b'1'; RequestLimits::REDIS_INLINE_BYTES_LIMIT]);
        assert_eq!(decode_one(&bulk), Err(ProtocolError::TooBigBulkCountString));
        // A NUL stops Redis's strchr: the line never completes.
        assert_eq!(decode_one(b"PI\0NG\r\n"), Ok(None));
    }

    #[test]
    fn failed_decoder_stays_failed() {
        let mut decoder = Decoder::default();
        let mut buf = BytesMut::from(&b"*1\r\n$4\r\nPING\r\n*z\r\n*1\r\n$4\r\nPING\r\n"[..]);
        let mut out = Vec::new();
        assert_eq!(decoder.decode_all(&mut buf, &mut out), Err(ProtocolError::InvalidMultibulkLength));
        assert_eq!(out.len(), 1);
        assert!(decoder.decode(&mut BytesMut::from(&b"PING\r\n"[..])).is_err());
    }

    /// Feeds `wire` to a fresh decoder `read_bytes` at a time, as socket reads would.
    fn feed_in_reads(wire: &[u8], read_bytes: usize) -> (Decoder, Vec<Command>, Result<(), ProtocolError>) {
        let mut decoder = Decoder::default();
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for read in wire.chunks(read_bytes) {
            buf.extend_from_slice(read);
            if let Err(error) = decoder.decode_all(&mut buf, &mut out) {
                return (decoder, out, Err(error));
            }
        }
        (decoder, out, Ok(()))
    }

    /// One 10 MB multibulk request fed in 16 KiB reads is scanned about once, not once per
    /// read (the old check rescanned every header from the front on each read: about 640
    /// reads × 5 MB on average).
    #[test]
    fn a_large_request_in_small_reads_is_scanned_once() {
        const ARGS: usize = 1_000_000;
        let mut wire = format!("*{ARGS}\r\n").into_bytes();
        for _ in 0..ARGS {
            wire.extend_from_slice(b"$4\r\nabcd\r\n");
        }
        let (decoder, commands, result) = feed_in_reads(&wire, 16 << 10);
        assert_eq!(result, Ok(()));
        assert_eq!(commands.len(), 1);
        assert_eq!(commands[0].argc(), ARGS);
        assert!(
            decoder.scanned_bytes() <= 2 * wire.len() as u64,
            "{} bytes scanned for a {}-byte request",
            decoder.scanned_bytes(),
            wire.len()
        );
        // A line with no end yet, fed one byte at a time, is scanned once too.
        let (decoder, commands, result) = feed_in_reads(&vec![b'a'; 60 << 10], 1);
        assert_eq!((commands.len(), result), (0, Ok(())));
        assert!(decoder.scanned_bytes() <= 60 << 10);
    }

    /// Resuming gives the same answer as checking from the front, at every split: the
    /// requests, the error and where it stopped.
    #[test]
    fn resumed_checks_agree_with_a_whole_check() {
        let wires: [&[u8]; 9] = [
            b"*2\r\n$4\r\nLLEN\r\n$4\r\njobs\r\nPING\r\n*0\r\n*1\r\n$3\r\nabc\r\n",
            b"*1\r\nfoo\r\n",
            b"*1\r\n$-1\r\n",
            b"*2\r\n$1\r\nab\r\n\0\r\n",
            b"SET \"a b\" c\r\nSET \"a\r\n",
            b"PI\0NG\r\nPING\r\n",
            b"*x\r\n",
            b"  \r\n\n*-3\r\n*1\r\n$0\r\n\r\n",
            b"*3\r\n$1\r\na\r\n$2\r\nbc\r\n$3\r\n",
        ];
        for wire in wires {
            let (_, whole, whole_result) = feed_in_reads(wire, wire.len());
            for read_bytes in 1..wire.len() {
                let (_, split, split_result) = feed_in_reads(wire, read_bytes);
                assert_eq!((&split, &split_result), (&whole, &whole_result), "{wire:?} in {read_bytes}-byte reads");
            }
        }
    }

    #[test]
    fn query_buffer_limit_closes_without_reply() {
        let limits = RequestLimits { query_buffer_bytes_limit: 8, ..RequestLimits::default() };
        let error = Decoder::new(limits).decode(&mut BytesMut::from(&b"*1\r\n$4\r\nPI"[..])).unwrap_err();
        assert_eq!(error, ProtocolError::QueryBufferLimit { buffered_bytes: 10 });
        assert!(error.reply().is_none() && error.must_close());
    }
}
