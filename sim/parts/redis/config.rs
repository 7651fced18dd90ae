//! `[redis]`: the Redis server's configuration, with Redis 7.0's built-in defaults (what the
//! official image runs with no config file; FIDELITY.md "Redis").

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How the server persists writes: `save` and `appendonly` / `appendfsync` folded into one
/// choice, because these four combinations are what decide the loss when a host goes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Persistence {
    /// `appendonly no` with save points (Redis 7.0's default: `save 3600 1 300 100 60 10000`):
    /// a save point that fires takes a snapshot of the dataset (`dump.rdb`), which a restart
    /// loads; writes since the last snapshot are lost with the process, and values consumed
    /// since then come back.
    #[default]
    Rdb,
    /// `save ""` and `appendonly no`: nothing is persisted; a restart starts empty.
    None,
    /// `appendonly yes` + `appendfsync everysec` (the appendfsync default): every write is
    /// written to the AOF before its reply and fsynced once a second, so a killed process
    /// loses nothing acknowledged and a power loss at most the last second.
    AofEverysec,
    /// `appendonly yes` + `appendfsync always`: every write is fsynced before its reply.
    AofAlways,
}

/// One `save <seconds> <changes>` point: snapshot once `changes` writes happened and more
/// than `after_secs` seconds passed since the last snapshot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SavePoint {
    /// `<seconds>`: at least 1, as `save` requires.
    #[schemars(range(min = 1, max = 31_536_000))]
    pub after_secs: u64,
    /// `<changes>`: at least 0 (0 saves every `after_secs` even with nothing changed).
    #[schemars(range(min = 0, max = 1_000_000_000))]
    pub changes: u64,
}

/// Redis 7.0's built-in save points (`initServerConfig`): 1 change in an hour, 100 in five
/// minutes, 10000 in a minute.
pub const SAVE_POINTS_DEFAULT: [SavePoint; 3] = [
    SavePoint { after_secs: 3600, changes: 1 },
    SavePoint { after_secs: 300, changes: 100 },
    SavePoint { after_secs: 60, changes: 10_000 },
];

/// At most this many save points (Redis takes any number; a scenario needs a few).
pub const SAVE_POINTS_LIMIT: usize = 16;

/// The Redis model's configuration. Every default is Redis 7.0's.
#[derive(Clone, Debug, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RedisConfig {
    /// `maxmemory` in bytes; 0 = no limit (redis.conf default on 64-bit). With the only
    /// supported policy, `noeviction` (the default), write commands flagged `denyoom` are
    /// refused with `OOM command not allowed…` while used memory exceeds it.
    #[schemars(range(min = 0, max = crate::units::BYTES_LIMIT_MAX))]
    pub maxmemory_bytes: u64,
    /// `save` / `appendonly` / `appendfsync`; default `rdb` (save points on, `appendonly no`).
    pub persistence: Persistence,
    /// `save`, under `persistence = "rdb"` only; absent = Redis's default points
    /// (3600 s/1, 300 s/100, 60 s/10000). An empty list is refused: that is `persistence = "none"`.
    #[schemars(length(max = 16))]
    pub save_points: Option<Vec<SavePoint>>,
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
    /// `tcp-keepalive`: seconds a client connection may be idle before Redis's kernel
    /// probes it (`SO_KEEPALIVE` with idle = this, interval = a third, 3 probes, as Redis's
    /// `anetKeepAlive` sets them), so a client that died silently is dropped after twice
    /// this; 0 = off. Default 300 (Redis 7.0).
    #[schemars(range(min = 0, max = 31_536_000))]
    pub tcp_keepalive_secs: u64,
}

impl Default for RedisConfig {
    fn default() -> Self {
        RedisConfig {
            maxmemory_bytes: 0,
            persistence: Persistence::Rdb,
            save_points: None,
            requirepass: None,
            databases: 16,
            client_idle_timeout_secs: 0,
            maxclients: 10_000,
            tcp_keepalive_secs: 300,
        }
    }
}

impl RedisConfig {
    /// The keepalive Redis sets on every client socket (`anetKeepAlive`: idle = the
    /// setting, interval = a third of it but at least 1 s, 3 probes), or none when 0.
    pub fn client_keepalive(&self) -> Option<crate::world::Keepalive> {
        let idle_secs = self.tcp_keepalive_secs;
        (idle_secs > 0).then(|| {
            crate::world::Keepalive::new(Duration::from_secs(idle_secs), Duration::from_secs((idle_secs / 3).max(1)), 3)
        })
    }

    /// The save points in force: the configured or default ones under `rdb`, none otherwise
    /// (`save ""`; under AOF the model keeps no snapshots, FIDELITY.md "Redis").
    pub fn save_points_in_force(&self) -> &[SavePoint] {
        match (self.persistence, &self.save_points) {
            (Persistence::Rdb, Some(points)) => points,
            (Persistence::Rdb, None) => &SAVE_POINTS_DEFAULT,
            _ => &[],
        }
    }

    /// The rules between keys, checked at load: the key and what is wrong.
    pub(crate) fn check_rules(&self) -> Result<(), (&'static str, String)> {
        match (&self.save_points, self.persistence) {
            (Some(points), Persistence::Rdb) if points.is_empty() => Err((
                "save_points",
                "is empty: no save point is `save \"\"`, which is persistence = \"none\"".to_string(),
            )),
            (Some(points), _) if points.len() > SAVE_POINTS_LIMIT => {
                Err(("save_points", format!("has {} points, at most {SAVE_POINTS_LIMIT}", points.len())))
            }
            (Some(_), persistence) if persistence != Persistence::Rdb => Err((
                "save_points",
                format!("applies to persistence = \"rdb\" only, not {}", persistence_name(persistence)),
            )),
            _ => Ok(()),
        }
    }
}

/// `persistence`'s spelling in a scenario file.
fn persistence_name(persistence: Persistence) -> &'static str {
    match persistence {
        Persistence::Rdb => "\"rdb\"",
        Persistence::None => "\"none\"",
        Persistence::AofEverysec => "\"aof_everysec\"",
        Persistence::AofAlways => "\"aof_always\"",
    }
}
