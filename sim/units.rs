//! Human units in configuration and on the command line: durations like `45s`, `2m`,
//! `1h30m`, `250ms`.
//!
//! Why one parser: scenario files, CLI flags and failure files all spell durations; one
//! grammar means one set of error messages and no disagreement between them.

use std::fmt;
use std::time::Duration;

/// Why a duration did not parse; the text names the rule broken.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DurationError {
    /// The text as given.
    pub input: String,
    /// Which rule it broke.
    pub reason: &'static str,
}

impl fmt::Display for DurationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid duration {:?}: {} (write e.g. 45s, 2m, 1h30m, 250ms)", self.input, self.reason)
    }
}

impl std::error::Error for DurationError {}

/// Largest size of one thing held in memory at once (a chunk, a frame, a request): 1 GiB.
pub(crate) const BYTES_SIZE_MAX: u64 = 1 << 30;

/// Largest byte limit of a buffer (a limit, not an allocation): 1 TiB.
pub(crate) const BYTES_LIMIT_MAX: u64 = 1 << 40;

/// The longest duration a scenario may write: a year (8784h). Every timer, offset and
/// timeout of a run stays far inside what tokio's clock and the host clocks' nanosecond
/// arithmetic hold.
pub const DURATION_MAX: Duration = Duration::from_secs(366 * 24 * 3600);

/// Parses `1h30m`, `45s`, `250ms`, `2m`: one or more (integer, unit) pairs, units h, m, s,
/// ms, each at most once and largest first. A bare number is refused: a unit is required.
/// At most [`DURATION_MAX`].
pub fn parse_duration(input: &str) -> Result<Duration, DurationError> {
    let duration = parse_duration_unbounded(input)?;
    if duration > DURATION_MAX {
        return Err(DurationError {
            input: input.to_string(),
            reason: "it is longer than 8784h (a year), the longest a scenario may write",
        });
    }
    Ok(duration)
}

/// `parse_duration` without the upper bound.
fn parse_duration_unbounded(input: &str) -> Result<Duration, DurationError> {
    let fail = |reason| Err(DurationError { input: input.to_string(), reason });
    let text = input.trim();
    if text.is_empty() {
        return fail("it is empty");
    }
    let mut rest = text;
    let mut total = Duration::ZERO;
    // Rank of the last unit: units must come largest first and at most once each.
    let mut last_rank = u8::MAX;
    // Bounded: each pass consumes at least one digit and one unit letter.
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return fail("expected a number before each unit");
        }
        let Ok(value) = rest[..digits].parse::<u64>() else { return fail("the number is too large") };
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let (rank, unit_nanos) = match &rest[..unit_len] {
            "h" => (3, 3_600_000_000_000u64),
            "m" => (2, 60_000_000_000),
            "s" => (1, 1_000_000_000),
            "ms" => (0, 1_000_000),
            "" => return fail("a unit (h, m, s, ms) is required after each number"),
            _ => return fail("unknown unit; use h, m, s or ms"),
        };
        if rank >= last_rank {
            return fail("units must appear largest first, each at most once");
        }
        last_rank = rank;
        rest = &rest[unit_len..];
        let Some(nanos) = value.checked_mul(unit_nanos) else { return fail("the duration is too large") };
        total = match total.checked_add(Duration::from_nanos(nanos)) {
            Some(sum) => sum,
            None => return fail("the duration is too large"),
        };
    }
    Ok(total)
}

/// Formats a duration in the same grammar `parse_duration` reads (`1h30m`, `250ms`, `0s`),
/// so a failure file written by obsim reads back to the same value.
pub fn format_duration(duration: Duration) -> String {
    let mut millis = duration.as_millis();
    if millis == 0 {
        return "0s".to_string();
    }
    let mut text = String::new();
    for (unit, unit_millis) in [("h", 3_600_000u128), ("m", 60_000), ("s", 1_000), ("ms", 1)] {
        if millis >= unit_millis {
            text.push_str(&format!("{}{unit}", millis / unit_millis));
            millis %= unit_millis;
        }
    }
    text
}

/// A rate budget as scenarios write it: `"500/s"` (records per second).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rate {
    pub per_second: f64,
}

impl std::str::FromStr for Rate {
    type Err = String;

    fn from_str(text: &str) -> Result<Rate, String> {
        let Some(number) = text.trim().strip_suffix("/s") else {
            return Err(format!("invalid rate {text:?}: write records per second as \"500/s\""));
        };
        match number.trim().parse::<f64>() {
            Ok(per_second) if per_second.is_finite() && per_second >= 0.0 => Ok(Rate { per_second }),
            _ => Err(format!("invalid rate {text:?}: {number:?} is not a number ≥ 0")),
        }
    }
}

impl std::fmt::Display for Rate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/s", self.per_second)
    }
}

impl serde::Serialize for Rate {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_string())
    }
}

impl<'de> serde::Deserialize<'de> for Rate {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Rate, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Serde support for durations written as text (`"45s"`): use with
/// `#[serde(with = "crate::units::duration_text")]` on a `Duration` field, so every config
/// reads durations the one way and names the rule broken.
///
/// Why a type and not a module: serde calls `duration_text::serialize`/`deserialize`, which
/// associated functions satisfy as well as a module's, and schemars reads the same `with`
/// path as the type whose JSON Schema the field gets (`crate::scenario::schema` gives it
/// the string pattern `parse_duration` accepts). So a new duration field needs only the one
/// serde attribute to be read, written and described correctly.
#[allow(non_camel_case_types)]
pub(crate) struct duration_text;

impl duration_text {
    /// Writes the duration as `parse_duration` reads it.
    pub(crate) fn serialize<S: serde::Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&format_duration(*duration))
    }

    /// Reads `"45s"`, `"2m"`, `"1h30m"`, `"250ms"`.
    pub(crate) fn deserialize<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        let text = <String as serde::Deserialize>::deserialize(deserializer)?;
        parse_duration(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_and_refuse_other_units() {
        assert_eq!("500/s".parse::<Rate>().unwrap().per_second, 500.0);
        assert_eq!(" 2.5 /s".parse::<Rate>().unwrap().per_second, 2.5);
        assert!("500/m".parse::<Rate>().unwrap_err().contains("\"500/s\""));
        assert!("-1/s".parse::<Rate>().is_err());
    }

    #[test]
    fn reads_the_forms_scenarios_use() {
        assert_eq!(parse_duration("45s"), Ok(Duration::from_secs(45)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1m5s250ms"), Ok(Duration::from_millis(65_250)));
    }

    #[test]
    fn refuses_what_it_cannot_read_with_the_rule() {
        for (input, reason) in [
            ("", "it is empty"),
            ("45", "a unit (h, m, s, ms) is required after each number"),
            ("5d", "unknown unit; use h, m, s or ms"),
            ("30s2m", "units must appear largest first, each at most once"),
            ("1m1m", "units must appear largest first, each at most once"),
            ("m", "expected a number before each unit"),
            ("99999999999999999999s", "the number is too large"),
            ("8785h", "it is longer than 8784h (a year), the longest a scenario may write"),
            ("-5s", "expected a number before each unit"),
        ] {
            assert_eq!(parse_duration(input).unwrap_err().reason, reason, "input {input:?}");
        }
    }

    #[test]
    fn format_reads_back() {
        for millis in [0u64, 1, 999, 1_000, 61_001, 5_400_000, 3_723_004] {
            let duration = Duration::from_millis(millis);
            assert_eq!(parse_duration(&format_duration(duration)), Ok(duration), "{millis} ms");
        }
        assert_eq!(format_duration(Duration::from_secs(5400)), "1h30m");
    }
}
