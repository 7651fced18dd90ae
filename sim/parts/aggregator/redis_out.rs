//! The output to the Redis log buffer: the real `redis` crate client over a turmoil TCP
//! stream, one `RPUSH <key> <LogChunk>` per flushed chunk.
//!
//! [`push_chunk`] is generic over `redis::aio::ConnectionLike`, so the command sequence is
//! pinned against redis-test's `MockRedisConnection`; [`connect`] uses the parts' one Redis
//! client, [`RedisConn`].

use std::time::Duration;

use redis::RedisError;
use redis::aio::ConnectionLike;

use crate::parts::redis_client::RedisConn;
use crate::vocab::LossCause;
use crate::vocab::pipeline::Address;

/// Why a write failed, as far as the drop cause is concerned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WriteError {
    /// Redis answered `-OOM command not allowed when used memory > 'maxmemory'`.
    OutOfMemory(String),
    /// Any other server error.
    Server(String),
    /// Connect failure, broken connection or timeout: the connection must be rebuilt.
    Connection(String),
}

impl WriteError {
    /// Classifies a client error.
    pub(crate) fn from_redis(error: &RedisError) -> WriteError {
        if error.code() == Some("OOM") {
            WriteError::OutOfMemory(error.to_string())
        } else if error.is_io_error() || error.is_timeout() || error.is_connection_dropped() {
            WriteError::Connection(error.to_string())
        } else {
            WriteError::Server(error.to_string())
        }
    }

    /// The drop cause when the retries run out after this error.
    pub fn give_up_cause(&self) -> LossCause {
        match self {
            WriteError::OutOfMemory(_) => LossCause::RedisOom,
            WriteError::Server(_) | WriteError::Connection(_) => LossCause::AggregatorRetryExpired,
        }
    }

    /// Whether the connection must be rebuilt before the next attempt.
    pub(crate) fn breaks_connection(&self) -> bool {
        matches!(self, WriteError::Connection(_))
    }
}

impl std::fmt::Display for WriteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WriteError::OutOfMemory(text) => write!(f, "redis out of memory: {text}"),
            WriteError::Server(text) => write!(f, "redis error: {text}"),
            WriteError::Connection(text) => write!(f, "redis connection: {text}"),
        }
    }
}

/// `RPUSH key value` under `timeout`; returns the list's new length.
pub async fn push_chunk<C: ConnectionLike + Send>(
    connection: &mut C,
    key: &str,
    value: &[u8],
    timeout: Duration,
) -> Result<i64, WriteError> {
    let mut command = redis::cmd("RPUSH");
    command.arg(key).arg(value);
    let push = command.query_async::<i64>(connection);
    match tokio::time::timeout(timeout, push).await {
        Ok(Ok(length)) => Ok(length),
        Ok(Err(error)) => Err(WriteError::from_redis(&error)),
        Err(_) => Err(WriteError::Connection(format!("no reply within {timeout:?}"))),
    }
}

/// Connects to Redis at `address` (the aggregator's peer, from the wiring) and completes the client's handshake, all under
/// `timeout`, through the parts' one Redis client ([`RedisConn`]: its driver task ends with
/// the connection, so a reconnect leaves no task reading a dead socket).
pub async fn connect(address: &Address, timeout: Duration) -> Result<RedisConn, WriteError> {
    RedisConn::connect(address, timeout, timeout).await.map_err(|error| WriteError::from_redis(&error))
}
