//! `[redis]`: the Redis server's configuration, with redis.conf's real defaults.

use serde::{Deserialize, Serialize};

/// How the server persists writes: redis.conf's `appendonly` and `appendfsync` folded into
/// one choice, because only three combinations matter for loss on crash.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Persistence {
    /// `appendonly no` (redis.conf default; RDB snapshots are not modelled): a crash loses
    /// everything.
    None,
    /// `appendonly yes` + `appendfsync everysec` (the appendfsync default): the AOF is
    /// fsynced once a second, so a crash loses at most the last second of writes.
    AofEverysec,
    /// `appendonly yes` + `appendfsync always`: every write is fsynced before its reply.
    AofAlways,
}

/// The Redis model's configuration. Every default is redis.conf's (Redis 7.0).
#[derive(Clone, Debug, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RedisConfig {
    /// `maxmemory` in bytes; 0 = no limit (redis.conf default on 64-bit). With the only
    /// supported policy, `noeviction` (the default), write commands flagged `denyoom` are
    /// refused with `OOM command not allowed…` while used memory exceeds it.
    #[schemars(range(min = 0, max = crate::units::BYTES_LIMIT_MAX))]
    pub maxmemory_bytes: u64,
    /// `appendonly` / `appendfsync`; default `none` (`appendonly no`).
    pub persistence: Persistence,
    /// `requirepass`; default none (the default user has `nopass`).
    pub requirepass: Option<String>,
    /// `databases`; default 16 (1 to 1024: Redis takes any positive count; the model keeps
    /// one keyspace per database).
    #[schemars(range(min = 1, max = 1_024))]
    pub databases: u32,
    /// `timeout`: close a client idle this many seconds; 0 = never (the default).
    #[schemars(range(min = 0, max = 31_536_000))]
    pub client_idle_timeout_secs: u64,
    /// `maxclients`; default 10000. Connections beyond it get
    /// `-ERR max number of clients reached` and are closed, as Redis does.
    #[schemars(range(min = 1, max = 1_000_000))]
    pub maxclients: u32,
}

impl Default for RedisConfig {
    fn default() -> Self {
        RedisConfig {
            maxmemory_bytes: 0,
            persistence: Persistence::None,
            requirepass: None,
            databases: 16,
            client_idle_timeout_secs: 0,
            maxclients: 10_000,
        }
    }
}
