//! The reliable-queue pattern on Redis lists, as Redis's own documentation describes it
//! ("Pattern: Reliable queue", LMOVE): a value moves atomically from the buffer to a
//! processing list, is worked on, and is removed from the processing list (LREM) only once
//! its work is done. A consumer that dies in between leaves the value in the processing
//! list, and the next incarnation moves it back.
//!
//! Every function here is one Redis round trip (or one pipeline) over any
//! [`redis::aio::ConnectionLike`], so golden tests drive them with redis-test's
//! `MockRedisConnection` and the byte-exact command sequence is pinned.

use std::time::Duration;

use bytes::Bytes;
use redis::aio::ConnectionLike;
use redis::{RedisResult, Value};

/// The most values one recovery moves back: a processing list longer than this is not
/// ours (a shipper keeps at most one batch plus its look-ahead there).
pub(crate) const RECOVER_VALUES_MAX: usize = 1_000_000;

/// The list names the queue works on.
#[derive(Clone, Debug)]
pub struct QueueKeys {
    pub buffer: String,
    pub processing: String,
    pub(crate) dead_letter: String,
}

/// Bytes of a bulk reply, none for nil; any other reply is a protocol surprise.
fn bulk(value: Value) -> RedisResult<Option<Bytes>> {
    match value {
        Value::Nil => Ok(None),
        Value::BulkString(bytes) => Ok(Some(Bytes::from(bytes))),
        other => Err(redis::RedisError::from((
            redis::ErrorKind::Client,
            "LMOVE/BLMOVE answered neither a bulk string nor nil",
            format!("{other:?}"),
        ))),
    }
}

/// Restart recovery: moves every value left in the processing list back to the head of the
/// buffer, preserving order (`LMOVE processing buffer RIGHT LEFT` until nil). Returns how
/// many values moved. Values already delivered before a crash are delivered again:
/// at-least-once, never loss.
pub async fn recover<C: ConnectionLike>(conn: &mut C, keys: &QueueKeys) -> RedisResult<usize> {
    for moved in 0..RECOVER_VALUES_MAX {
        let value: Value = redis::cmd("LMOVE")
            .arg(&keys.processing)
            .arg(&keys.buffer)
            .arg("RIGHT")
            .arg("LEFT")
            .query_async(conn)
            .await?;
        if bulk(value)?.is_none() {
            return Ok(moved);
        }
    }
    Err(redis::RedisError::from((
        redis::ErrorKind::Client,
        "processing list longer than RECOVER_VALUES_MAX: is another shipper using it?",
    )))
}

/// Blocks up to `timeout` for the next buffered value and moves it to the processing list
/// (`BLMOVE buffer processing LEFT RIGHT timeout`). None when the buffer stayed empty.
pub(crate) async fn take_blocking<C: ConnectionLike>(
    conn: &mut C,
    keys: &QueueKeys,
    timeout: Duration,
) -> RedisResult<Option<Bytes>> {
    let value: Value = redis::cmd("BLMOVE")
        .arg(&keys.buffer)
        .arg(&keys.processing)
        .arg("LEFT")
        .arg("RIGHT")
        .arg(crate::parts::redis_client::timeout_arg(timeout))
        .query_async(conn)
        .await?;
    bulk(value)
}

/// Moves up to `count` more values without blocking, in one pipeline of LMOVEs; stops at
/// the first nil (the buffer ran dry).
pub(crate) async fn take_more<C: ConnectionLike>(
    conn: &mut C,
    keys: &QueueKeys,
    count: usize,
) -> RedisResult<Vec<Bytes>> {
    assert!(count > 0, "take_more of nothing is a wasted round trip");
    let mut pipeline = redis::pipe();
    for _ in 0..count {
        pipeline.cmd("LMOVE").arg(&keys.buffer).arg(&keys.processing).arg("LEFT").arg("RIGHT");
    }
    let values: Vec<Value> = pipeline.query_async(conn).await?;
    let mut taken = Vec::with_capacity(values.len());
    for value in values {
        match bulk(value)? {
            Some(bytes) => taken.push(bytes),
            None => break,
        }
    }
    Ok(taken)
}

/// Whether Redis refused a command because it is at `maxmemory` under `noeviction`
/// ("-OOM command not allowed when used memory > 'maxmemory'.").
pub(crate) fn is_oom(error: &redis::RedisError) -> bool {
    error.code() == Some("OOM")
}

/// Reads up to `count` values from the head of `list` without moving them
/// (`LRANGE list 0 count-1`). LRANGE is a read, so Redis answers it at `maxmemory`, where
/// LMOVE and BLMOVE (both `denyoom`) are refused: see `Shipper::next_batch`.
pub async fn peek<C: ConnectionLike>(conn: &mut C, list: &str, count: usize) -> RedisResult<Vec<Bytes>> {
    assert!(count > 0, "peek of nothing is a wasted round trip");
    let values: Vec<Value> = redis::cmd("LRANGE").arg(list).arg(0).arg(count - 1).query_async(conn).await?;
    let mut peeked = Vec::with_capacity(values.len());
    for value in values {
        match bulk(value)? {
            Some(bytes) => peeked.push(bytes),
            None => {
                return Err(redis::RedisError::from((redis::ErrorKind::Client, "LRANGE answered a nil element")));
            }
        }
    }
    assert!(peeked.len() <= count, "LRANGE answered more than asked");
    Ok(peeked)
}

/// Acknowledges values: `LREM list 1 value` for each, in one pipeline, on the list that
/// holds them (the processing list, or the buffer itself for values read in place).
/// Returns how many were found (a value already gone, e.g. after Redis lost it, counts 0).
/// LREM only frees memory, so it is not `denyoom`: it works at `maxmemory`.
pub async fn ack<C: ConnectionLike>(conn: &mut C, list: &str, values: &[Bytes]) -> RedisResult<i64> {
    if values.is_empty() {
        return Ok(0);
    }
    let mut pipeline = redis::pipe();
    for value in values {
        pipeline.cmd("LREM").arg(list).arg(1).arg(value.as_ref());
    }
    let removed: Vec<i64> = pipeline.query_async(conn).await?;
    Ok(removed.iter().sum())
}

/// Parks a value that is not a log chunk in the dead-letter list, then removes it from the
/// processing list (RPUSH before LREM: a crash in between leaves a copy, never nothing).
pub(crate) async fn dead_letter<C: ConnectionLike>(conn: &mut C, keys: &QueueKeys, value: &Bytes) -> RedisResult<()> {
    let mut pipeline = redis::pipe();
    pipeline.cmd("RPUSH").arg(&keys.dead_letter).arg(value.as_ref()).ignore();
    pipeline.cmd("LREM").arg(&keys.processing).arg(1).arg(value.as_ref()).ignore();
    let () = pipeline.query_async(conn).await?;
    Ok(())
}

/// Gives a batch whose retries expired back to the tail of the buffer: the processing list
/// holds this shipper's values in take order, so LMOVE LEFT → RIGHT `count` times moves
/// exactly the oldest ones (the batch; look-ahead values were given back before).
pub(crate) async fn give_back<C: ConnectionLike>(conn: &mut C, keys: &QueueKeys, count: usize) -> RedisResult<usize> {
    if count == 0 {
        return Ok(0);
    }
    let mut pipeline = redis::pipe();
    for _ in 0..count {
        pipeline.cmd("LMOVE").arg(&keys.processing).arg(&keys.buffer).arg("LEFT").arg("RIGHT");
    }
    let values: Vec<Value> = pipeline.query_async(conn).await?;
    let mut moved = 0;
    for value in values {
        if bulk(value)?.is_some() {
            moved += 1;
        }
    }
    Ok(moved)
}
