//! The bounds a Forward receiver enforces, so that no peer can make it allocate or loop
//! without limit: frame size, entries per frame and their memory, inflated size, buffered
//! bytes. README "Wire decoders' limits" lists them.

/// Default `frame_bytes_limit`: 8 MiB, above Fluent Bit's largest chunk (about 2 MiB by
/// default) with room for base64 overhead, below anything a simulated host should buffer.
pub const FRAME_BYTES_LIMIT_DEFAULT: usize = 8 << 20;
/// Default `entries_count_limit`: records in one frame.
pub const ENTRIES_COUNT_LIMIT_DEFAULT: usize = 1 << 20;
/// Default `decompressed_bytes_limit`: a CompressedPackedForward stream after inflation.
pub const DECOMPRESSED_BYTES_LIMIT_DEFAULT: usize = 64 << 20;
/// Default `entries_bytes_limit`: the entry table of one frame (16 MiB is 419,430 entries of
/// 40 bytes; a Fluent Bit chunk of about 2 MiB carries far fewer).
pub const ENTRIES_BYTES_LIMIT_DEFAULT: usize = 16 << 20;
/// Default room for bytes fed beyond one frame before the caller drains frames.
pub(crate) const FEED_BYTES_SLACK_DEFAULT: usize = 1 << 20;

/// Receiver limits. Every one is checked before the memory it guards is allocated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest msgpack frame accepted; larger ones are refused from their headers.
    pub frame_bytes_limit: usize,
    /// Most entries one frame may carry.
    pub(crate) entries_count_limit: usize,
    /// Most bytes one frame's entry table may take (each entry costs its in-memory size,
    /// however few wire bytes it had: 3 bytes of `[0, {}]` become a 40-byte entry).
    pub(crate) entries_bytes_limit: usize,
    /// Largest inflated CompressedPackedForward stream (gzip bomb guard).
    pub(crate) decompressed_bytes_limit: usize,
    /// Most bytes the streaming decoder holds; feeding beyond it is refused. Draining
    /// frames after every feed keeps the buffer below one frame plus one feed.
    pub(crate) buffered_bytes_limit: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self::with_frame_bytes_limit(FRAME_BYTES_LIMIT_DEFAULT)
    }
}

impl Limits {
    /// Defaults, with the given frame limit and a buffer bound derived from it.
    pub fn with_frame_bytes_limit(frame_bytes_limit: usize) -> Self {
        assert!(frame_bytes_limit > 0);
        Self {
            frame_bytes_limit,
            entries_count_limit: ENTRIES_COUNT_LIMIT_DEFAULT,
            entries_bytes_limit: ENTRIES_BYTES_LIMIT_DEFAULT,
            decompressed_bytes_limit: DECOMPRESSED_BYTES_LIMIT_DEFAULT,
            buffered_bytes_limit: frame_bytes_limit + FEED_BYTES_SLACK_DEFAULT,
        }
    }
}
