//! The cheap pass of the streaming decoder: is there one whole msgpack value at the front of
//! the buffer, and how long is it? Walks the msgpack structure with `rmp`'s markers, counting
//! lengths, without allocating and without recursion, and refuses a value whose declared
//! size already exceeds the limit before its bytes arrive (mini-redis's `check` then `parse`).

use rmp::Marker;

use super::error::ForwardError;

/// What the buffer holds at its front.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Check {
    /// Not yet one whole value: read more bytes and check again.
    Incomplete,
    /// One whole value of this many bytes is at the front of the buffer.
    Complete {
        /// Length of the value in bytes.
        frame_bytes: usize,
    },
}

/// Where a walk stopped for lack of bytes, so the next walk resumes there instead of
/// re-reading the frame from its start (a large Forward frame arriving in many TCP segments
/// is walked once in total, not once per segment).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CheckState {
    /// Offset of the next item to walk, always an item boundary.
    position_bytes: u64,
    /// Values still to walk from there, including the one at `position_bytes`.
    pending_values: u64,
}

impl Default for CheckState {
    fn default() -> Self {
        Self { position_bytes: 0, pending_values: 1 }
    }
}

/// Finds the length of the msgpack value at the front of `buf`, refusing it as soon as its
/// headers prove it longer than `value_bytes_limit`.
///
/// Why a pending-values counter instead of a stack: every array or map only adds to the
/// number of values still to walk, so nesting depth costs nothing, and since every value
/// takes at least one byte, `position + pending` is a lower bound on the total size. A map
/// header declaring 2^32 entries is refused immediately, as is a bin32 declaring 4 GiB.
pub fn check_value(buf: &[u8], value_bytes_limit: usize) -> Result<Check, ForwardError> {
    check_value_resume(buf, value_bytes_limit, &mut CheckState::default())
}

/// `check_value` resuming from `state`, which must come from earlier calls on the same
/// buffer (only ever appended to) with the same limit. On `Incomplete` the state records
/// where to resume; on `Complete` or an error it is reset for the next value.
pub fn check_value_resume(buf: &[u8], value_bytes_limit: usize, state: &mut CheckState) -> Result<Check, ForwardError> {
    let limit = value_bytes_limit as u64;
    let CheckState { mut position_bytes, mut pending_values } = *state;
    *state = CheckState::default();
    assert!(pending_values >= 1);
    // Bounded: every iteration consumes at least one byte and position never passes limit.
    let iterations_limit = limit.saturating_add(1);
    for _ in 0..iterations_limit {
        let at_least = position_bytes + pending_values;
        if at_least > limit {
            return Err(too_large(at_least, limit));
        }
        let Some(&byte) = buf.get(position_bytes as usize) else {
            *state = CheckState { position_bytes, pending_values };
            return Ok(Check::Incomplete);
        };
        let header_at = position_bytes as usize + 1;
        let Some(item) = item_shape(Marker::from_u8(byte), buf, header_at)? else {
            *state = CheckState { position_bytes, pending_values };
            return Ok(Check::Incomplete);
        };
        let end = position_bytes + item.header_bytes + item.payload_bytes;
        let pending_after = pending_values - 1 + item.child_values;
        let at_least = end + pending_after;
        if at_least > limit {
            return Err(too_large(at_least, limit));
        }
        if end > buf.len() as u64 {
            *state = CheckState { position_bytes, pending_values };
            return Ok(Check::Incomplete);
        }
        position_bytes = end;
        pending_values = pending_after;
        if pending_values == 0 {
            assert!(position_bytes >= 1 && position_bytes <= limit);
            return Ok(Check::Complete { frame_bytes: position_bytes as usize });
        }
    }
    unreachable!("check_value_resume walked more values than the limit has bytes")
}

fn too_large(at_least: u64, limit: u64) -> ForwardError {
    ForwardError::FrameTooLarge { frame_bytes_at_least: at_least, frame_bytes_limit: limit }
}

/// The layout of one msgpack item: its header, its inline payload, and how many values
/// follow it as its children.
struct ItemShape {
    header_bytes: u64,
    payload_bytes: u64,
    child_values: u64,
}

/// Reads a big-endian length field of `width_bytes` at `at`; `None` if not all there yet.
fn length_field(buf: &[u8], at: usize, width_bytes: usize) -> Option<u64> {
    let field = buf.get(at..at.checked_add(width_bytes)?)?;
    Some(field.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
}

/// The shape of the item with `marker`, whose length fields (if any) start at `at`.
/// `Ok(None)` when the length field has not fully arrived.
fn item_shape(marker: Marker, buf: &[u8], at: usize) -> Result<Option<ItemShape>, ForwardError> {
    let fixed = |payload_bytes: u64| ItemShape { header_bytes: 1, payload_bytes, child_values: 0 };
    let shape = match marker {
        Marker::FixPos(_) | Marker::FixNeg(_) | Marker::Null | Marker::False | Marker::True => fixed(0),
        Marker::U8 | Marker::I8 => fixed(1),
        Marker::U16 | Marker::I16 => fixed(2),
        Marker::U32 | Marker::I32 | Marker::F32 => fixed(4),
        Marker::U64 | Marker::I64 | Marker::F64 => fixed(8),
        Marker::FixStr(n) => fixed(u64::from(n)),
        // Fixed ext: marker, type byte, payload.
        Marker::FixExt1 => ItemShape { header_bytes: 2, payload_bytes: 1, child_values: 0 },
        Marker::FixExt2 => ItemShape { header_bytes: 2, payload_bytes: 2, child_values: 0 },
        Marker::FixExt4 => ItemShape { header_bytes: 2, payload_bytes: 4, child_values: 0 },
        Marker::FixExt8 => ItemShape { header_bytes: 2, payload_bytes: 8, child_values: 0 },
        Marker::FixExt16 => ItemShape { header_bytes: 2, payload_bytes: 16, child_values: 0 },
        Marker::FixArray(n) => ItemShape { header_bytes: 1, payload_bytes: 0, child_values: u64::from(n) },
        Marker::FixMap(n) => ItemShape { header_bytes: 1, payload_bytes: 0, child_values: 2 * u64::from(n) },
        Marker::Reserved => return Err(ForwardError::ReservedMarker),
        sized => {
            // (length field width, extra header bytes after it, kind)
            let (width_bytes, extra_header_bytes, children_per_unit, is_container) = match sized {
                Marker::Bin8 | Marker::Str8 => (1, 0, 0, false),
                Marker::Bin16 | Marker::Str16 => (2, 0, 0, false),
                Marker::Bin32 | Marker::Str32 => (4, 0, 0, false),
                Marker::Ext8 => (1, 1, 0, false),
                Marker::Ext16 => (2, 1, 0, false),
                Marker::Ext32 => (4, 1, 0, false),
                Marker::Array16 => (2, 0, 1, true),
                Marker::Array32 => (4, 0, 1, true),
                Marker::Map16 => (2, 0, 2, true),
                Marker::Map32 => (4, 0, 2, true),
                _ => unreachable!("every other marker is handled above"),
            };
            let Some(length) = length_field(buf, at, width_bytes) else {
                return Ok(None);
            };
            let header_bytes = 1 + width_bytes as u64 + extra_header_bytes;
            if is_container {
                ItemShape { header_bytes, payload_bytes: 0, child_values: length * children_per_unit }
            } else {
                ItemShape { header_bytes, payload_bytes: length, child_values: 0 }
            }
        }
    };
    Ok(Some(shape))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalars_and_containers_have_their_encoded_length() {
        let value = rmp_serde::to_vec_named(&(
            1u8,
            "ab",
            vec![1u32, 70000],
            [(String::from("k"), 2.5f64)].into_iter().collect::<std::collections::BTreeMap<_, _>>(),
        ))
        .unwrap();
        let mut buf = value.clone();
        buf.extend_from_slice(&[0x01, 0x02]);
        assert_eq!(check_value(&buf, 1024), Ok(Check::Complete { frame_bytes: value.len() }));
        for cut in 0..value.len() {
            assert_eq!(check_value(&value[..cut], 1024), Ok(Check::Incomplete), "cut at {cut}");
        }
    }

    #[test]
    fn bin32_declaring_four_gib_is_refused_from_its_header() {
        let buf = [0xc6, 0xff, 0xff, 0xff, 0xff, 0x00];
        assert_eq!(
            check_value(&buf, 8 << 20),
            Err(ForwardError::FrameTooLarge { frame_bytes_at_least: 5 + 0xffff_ffff, frame_bytes_limit: 8 << 20 })
        );
    }

    #[test]
    fn map32_declaring_many_pairs_is_refused_from_its_header() {
        let buf = [0xdf, 0x10, 0x00, 0x00, 0x00];
        let error = check_value(&buf, 1 << 20).unwrap_err();
        assert_eq!(error.to_string(), "frame of 536870917 bytes exceeds frame_bytes_limit 1048576");
    }

    #[test]
    fn resuming_gives_the_same_answer_as_starting_over() {
        let value = rmp_serde::to_vec_named(&vec![vec!["x".repeat(40); 3]; 4]).unwrap();
        let mut state = CheckState::default();
        for end in 0..value.len() {
            assert_eq!(check_value_resume(&value[..end], 4096, &mut state), Ok(Check::Incomplete));
        }
        let complete = Ok(Check::Complete { frame_bytes: value.len() });
        assert_eq!(check_value_resume(&value, 4096, &mut state), complete);
        assert_eq!(state, CheckState::default());
    }

    #[test]
    fn reserved_marker_is_an_error() {
        assert_eq!(check_value(&[0x91, 0xc1], 16), Err(ForwardError::ReservedMarker));
    }

    #[test]
    fn deep_nesting_needs_no_stack() {
        let depth = 100_000;
        let mut buf = vec![0x91; depth];
        buf.push(0xc0);
        assert_eq!(check_value(&buf, 1 << 20), Ok(Check::Complete { frame_bytes: depth + 1 }));
    }
}
