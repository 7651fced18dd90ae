//! Argument parsing with Redis 7.0's rules and error texts (`string2ll`,
//! `getTimeoutFromObjectOrReply`).

use crate::proto::resp::{Reply, errors};

/// Redis's `string2ll` (no `+`, no leading zeros, no blanks).
pub(crate) fn parse_i64(arg: &[u8]) -> Option<i64> {
    crate::proto::resp::frame::string_to_i64(arg)
}

/// `getLongLongFromObjectOrReply`.
pub(crate) fn i64_or_reply(arg: &[u8]) -> Result<i64, Reply> {
    parse_i64(arg).ok_or_else(|| errors::error(errors::NOT_AN_INTEGER))
}

/// `getPositiveLongFromObjectOrReply`.
pub(crate) fn positive_or_reply(arg: &[u8]) -> Result<i64, Reply> {
    let value = i64_or_reply(arg)?;
    if value < 0 {
        return Err(errors::error("ERR value is out of range, must be positive"));
    }
    Ok(value)
}

/// A blocking timeout in float seconds (BLMOVE): milliseconds, 0 = forever.
pub(crate) fn timeout_secs_or_reply(arg: &[u8]) -> Result<u64, Reply> {
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
