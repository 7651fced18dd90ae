//! Argument parsing with Redis 7.0's rules and error texts (`string2ll`,
//! `getTimeoutFromObjectOrReply`, `streamGenericParseIDOrReply`).

use crate::proto::resp::{Reply, errors};

use super::stream::StreamId;

/// Redis's `string2ll` (no `+`, no leading zeros, no blanks).
pub fn parse_i64(arg: &[u8]) -> Option<i64> {
    crate::proto::resp::frame::string_to_i64(arg)
}

/// `getLongLongFromObjectOrReply`.
pub fn i64_or_reply(arg: &[u8]) -> Result<i64, Reply> {
    parse_i64(arg).ok_or_else(|| errors::error(errors::NOT_AN_INTEGER))
}

/// `getPositiveLongFromObjectOrReply`.
pub fn positive_or_reply(arg: &[u8]) -> Result<i64, Reply> {
    let value = i64_or_reply(arg)?;
    if value < 0 {
        return Err(errors::error("ERR value is out of range, must be positive"));
    }
    Ok(value)
}

/// A blocking timeout in float seconds (BLMOVE): milliseconds, 0 = forever.
pub fn timeout_secs_or_reply(arg: &[u8]) -> Result<u64, Reply> {
    let text = std::str::from_utf8(arg).ok();
    let seconds = text
        .filter(|t| !t.is_empty() && !t.starts_with(|c: char| c.is_ascii_whitespace()))
        .and_then(|t| t.parse::<f64>().ok())
        .filter(|s| s.is_finite())
        .ok_or_else(|| errors::error(errors::TIMEOUT_NOT_FLOAT))?;
    let millis = (seconds * 1000.0) as i64;
    if millis < 0 {
        return Err(errors::error(errors::TIMEOUT_NEGATIVE));
    }
    Ok(millis as u64)
}

/// A blocking timeout in integer milliseconds (XREADGROUP BLOCK), 0 = forever.
pub fn timeout_millis_or_reply(arg: &[u8]) -> Result<u64, Reply> {
    let millis = parse_i64(arg).ok_or_else(|| errors::error("ERR timeout is not an integer or out of range"))?;
    if millis < 0 {
        return Err(errors::error(errors::TIMEOUT_NEGATIVE));
    }
    Ok(millis as u64)
}

/// Redis's `string2ull`: `string2ll` when non-negative, else C `strtoull` over the whole
/// text (which also takes leading zeros and a `+`).
fn parse_u64(text: &[u8]) -> Option<u64> {
    if let Some(value) = parse_i64(text) {
        return u64::try_from(value).ok();
    }
    let trimmed = text.strip_prefix(b"+").unwrap_or(text);
    if trimmed.is_empty() || !trimmed.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(trimmed).ok()?.parse::<u64>().ok()
}

/// A parsed stream id and whether its sequence was given (`ms-*` and plain `ms` in XADD
/// leave it to the server).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParsedId {
    pub id: StreamId,
    pub seq_given: bool,
}

/// `streamGenericParseIDOrReply`: `ms`, `ms-seq`, `ms-*` (only where `allow_star_seq`),
/// and unless `strict`, `-` and `+`. A missing sequence becomes `missing_seq`.
pub fn stream_id(arg: &[u8], missing_seq: u64, strict: bool, allow_star_seq: bool) -> Result<ParsedId, Reply> {
    let invalid = || errors::error(errors::INVALID_STREAM_ID);
    if arg.len() > 127 {
        return Err(invalid());
    }
    if arg == b"-" || arg == b"+" {
        if strict {
            return Err(invalid());
        }
        let id = if arg == b"-" { StreamId::MIN } else { StreamId::MAX };
        return Ok(ParsedId { id, seq_given: true });
    }
    // C string semantics: the text ends at a NUL.
    let arg = &arg[..arg.iter().position(|&b| b == 0).unwrap_or(arg.len())];
    let (ms_text, seq_text) = match arg.iter().position(|&b| b == b'-') {
        Some(dash) => (&arg[..dash], Some(&arg[dash + 1..])),
        None => (arg, None),
    };
    let ms = parse_u64(ms_text).ok_or_else(invalid)?;
    match seq_text {
        Some(b"*") if allow_star_seq => Ok(ParsedId { id: StreamId { ms, seq: 0 }, seq_given: false }),
        Some(seq) => {
            let seq = parse_u64(seq).ok_or_else(invalid)?;
            Ok(ParsedId { id: StreamId { ms, seq }, seq_given: true })
        }
        None => Ok(ParsedId { id: StreamId { ms, seq: missing_seq }, seq_given: true }),
    }
}

/// `streamParseIntervalIDOrReply` plus the `(` exclusive form resolved with incr/decr, as
/// XRANGE, XPENDING and XAUTOCLAIM do. `end` selects decrement and `missing_seq` MAX.
pub fn interval_id(arg: &[u8], end: bool) -> Result<StreamId, Reply> {
    let missing_seq = if end { u64::MAX } else { 0 };
    if arg.len() > 1 && arg[0] == b'(' {
        let id = stream_id(&arg[1..], missing_seq, true, false)?.id;
        let moved = if end { id.decr() } else { id.incr() };
        return moved.ok_or_else(|| {
            errors::error(if end {
                "ERR invalid end ID for the interval"
            } else {
                "ERR invalid start ID for the interval"
            })
        });
    }
    Ok(stream_id(arg, missing_seq, false, false)?.id)
}
