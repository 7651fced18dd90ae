//! Msgpack writers for the protocol's own structure (arrays, strings, options), on `rmp`'s
//! encoders over a `Vec<u8>`. Writing to a vector cannot fail, so these return nothing; a
//! length beyond u32 (msgpack's maximum) is a caller bug and asserted.

/// Msgpack's largest length for a str, bin, array or map.
pub(crate) const MSGPACK_LENGTH_LIMIT: usize = u32::MAX as usize;

fn length(len: usize) -> u32 {
    assert!(len <= MSGPACK_LENGTH_LIMIT, "msgpack lengths are at most u32::MAX");
    len as u32
}

/// Writes an array header.
pub(crate) fn write_array_len(out: &mut Vec<u8>, len: usize) {
    rmp::encode::write_array_len(out, length(len)).expect("writing to a Vec cannot fail");
}

/// Writes a map header.
pub(crate) fn write_map_len(out: &mut Vec<u8>, len: usize) {
    rmp::encode::write_map_len(out, length(len)).expect("writing to a Vec cannot fail");
}

/// Writes a str.
pub(crate) fn write_str(out: &mut Vec<u8>, value: &str) {
    rmp::encode::write_str_len(out, length(value.len())).expect("writing to a Vec cannot fail");
    out.extend_from_slice(value.as_bytes());
}

/// Writes a bin header; the caller appends exactly `len` bytes.
pub(crate) fn write_bin_len(out: &mut Vec<u8>, len: usize) {
    rmp::encode::write_bin_len(out, length(len)).expect("writing to a Vec cannot fail");
}

/// Writes a bin.
pub(crate) fn write_bin(out: &mut Vec<u8>, value: &[u8]) {
    write_bin_len(out, value.len());
    out.extend_from_slice(value);
}

/// Writes an unsigned integer in its smallest form.
pub(crate) fn write_uint(out: &mut Vec<u8>, value: u64) {
    rmp::encode::write_uint(out, value).expect("writing to a Vec cannot fail");
}

/// Writes a bool.
pub(crate) fn write_bool(out: &mut Vec<u8>, value: bool) {
    rmp::encode::write_bool(out, value).expect("writing to a Vec cannot fail");
}
