//! Request bounds: how much a client may declare or buffer before the server refuses.
//!
//! Why: a declared length is untrusted input. Real Redis refuses oversized declarations as
//! soon as the header line is complete, before reading or allocating the payload; the model
//! must refuse the same inputs with the same texts, and never allocate what a header merely
//! claims.

/// The bounds a [`crate::proto::resp::Decoder`] enforces, named after the Redis 7.0 config
/// keys or `server.h` constants they copy. [`RequestLimits::default`] gives Redis's defaults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequestLimits {
    /// `proto-max-bulk-len`: the largest bulk argument a client may declare (default 512 MB).
    /// Above it: `ERR Protocol error: invalid bulk length`.
    pub bulk_bytes_limit: u64,
    /// The largest multibulk count (`*N`): Redis 7.0 refuses `N > INT_MAX` with
    /// `ERR Protocol error: invalid multibulk length`. There is no smaller default limit
    /// for authenticated clients (the 1024*1024 figure is not Redis 7.0 behaviour).
    pub multibulk_count_limit: i64,
    /// `PROTO_INLINE_MAX_SIZE` (64 KiB): the longest inline request, and also the longest
    /// `*N` / `$N` header line, Redis will wait for without seeing its `\r` / `\n`.
    pub(crate) inline_bytes_limit: usize,
    /// `client-query-buffer-limit` (default 1 GB): more unprocessed bytes than this and
    /// Redis closes the connection *without* a reply.
    pub(crate) query_buffer_bytes_limit: usize,
    /// While authentication is required but not done, Redis 7.0 refuses a multibulk count
    /// above 10 (`ERR Protocol error: unauthenticated multibulk length`).
    pub(crate) unauthenticated_multibulk_count_limit: i64,
    /// While authentication is required but not done, Redis 7.0 refuses a bulk above
    /// 16384 bytes (`ERR Protocol error: unauthenticated bulk length`).
    pub(crate) unauthenticated_bulk_bytes_limit: u64,
}

impl RequestLimits {
    /// Redis 7.0's `proto-max-bulk-len` default: 512 MB.
    pub(crate) const REDIS_BULK_BYTES_LIMIT: u64 = 512 * 1024 * 1024;
    /// Redis's `INT_MAX` bound on a multibulk count.
    pub(crate) const REDIS_MULTIBULK_COUNT_LIMIT: i64 = i32::MAX as i64;
    /// Redis's `PROTO_INLINE_MAX_SIZE`: 64 KiB.
    pub(crate) const REDIS_INLINE_BYTES_LIMIT: usize = 64 * 1024;
    /// Redis 7.0's `client-query-buffer-limit` default: 1 GB.
    pub(crate) const REDIS_QUERY_BUFFER_BYTES_LIMIT: usize = 1024 * 1024 * 1024;
}

impl Default for RequestLimits {
    /// The defaults of a stock `redis-server` 7.0, so that the model refuses what it refuses.
    fn default() -> Self {
        RequestLimits {
            bulk_bytes_limit: Self::REDIS_BULK_BYTES_LIMIT,
            multibulk_count_limit: Self::REDIS_MULTIBULK_COUNT_LIMIT,
            inline_bytes_limit: Self::REDIS_INLINE_BYTES_LIMIT,
            query_buffer_bytes_limit: Self::REDIS_QUERY_BUFFER_BYTES_LIMIT,
            unauthenticated_multibulk_count_limit: 10,
            unauthenticated_bulk_bytes_limit: 16384,
        }
    }
}
