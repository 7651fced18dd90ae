//! The `[agent]` section: Fluent Bit's service, storage and `out_forward` settings, with
//! Fluent Bit's own defaults (v3/v4 documentation: "Configuring Fluent Bit → Service",
//! "Buffering & Storage", "Scheduling and Retries", "Outputs → Forward").

use std::fmt;
use std::time::Duration;

use crate::units::{BYTES_LIMIT_MAX, BYTES_SIZE_MAX};
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Fluent Bit's `Retry_Limit`: how many times a failed chunk is retried before it is
/// discarded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetryLimit {
    /// `N`: at most N retries after the first attempt (N ≥ 1).
    Retries(u32),
    /// `no_limits` or `False`: retry forever.
    NoLimits,
    /// `no_retries`: the first failure discards the chunk.
    NoRetries,
}

impl RetryLimit {
    /// Whether a chunk that has failed `failures` times (≥ 1) may be tried again.
    pub(crate) fn allows_retry(self, failures: u32) -> bool {
        match self {
            RetryLimit::Retries(limit) => failures <= limit,
            RetryLimit::NoLimits => true,
            RetryLimit::NoRetries => false,
        }
    }
}

impl Serialize for RetryLimit {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            RetryLimit::Retries(limit) => serializer.serialize_u32(*limit),
            RetryLimit::NoLimits => serializer.serialize_str("no_limits"),
            RetryLimit::NoRetries => serializer.serialize_str("no_retries"),
        }
    }
}

impl<'de> Deserialize<'de> for RetryLimit {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct RetryLimitVisitor;
        impl Visitor<'_> for RetryLimitVisitor {
            type Value = RetryLimit;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("retry_limit: an integer ≥ 1, \"no_limits\", false or \"no_retries\"")
            }
            fn visit_u64<E: de::Error>(self, value: u64) -> Result<RetryLimit, E> {
                match u32::try_from(value) {
                    Ok(limit) if limit >= 1 => Ok(RetryLimit::Retries(limit)),
                    _ => {
                        Err(E::custom(format!("retry_limit {value} must be between 1 and 2^32-1 (Fluent Bit: N >= 1)")))
                    }
                }
            }
            fn visit_i64<E: de::Error>(self, value: i64) -> Result<RetryLimit, E> {
                match u64::try_from(value) {
                    Ok(value) => self.visit_u64(value),
                    Err(_) => Err(E::custom(format!("retry_limit {value} must be ≥ 1"))),
                }
            }
            fn visit_bool<E: de::Error>(self, value: bool) -> Result<RetryLimit, E> {
                if value {
                    Err(E::custom("retry_limit true is not a Fluent Bit value; write a number or \"no_limits\""))
                } else {
                    Ok(RetryLimit::NoLimits)
                }
            }
            fn visit_str<E: de::Error>(self, value: &str) -> Result<RetryLimit, E> {
                match value {
                    "no_limits" | "false" | "False" => Ok(RetryLimit::NoLimits),
                    "no_retries" => Ok(RetryLimit::NoRetries),
                    other => match other.parse::<u64>() {
                        Ok(number) => self.visit_u64(number),
                        Err(_) => Err(E::custom(format!(
                            "retry_limit {other:?} is not a number, \"no_limits\", \"false\" or \"no_retries\""
                        ))),
                    },
                }
            }
        }
        deserializer.deserialize_any(RetryLimitVisitor)
    }
}

/// `storage.type` of the input: where chunks live.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum StorageType {
    /// Chunks in memory only; the input pauses at `mem_buf_limit`; a crash loses them.
    Memory,
    /// Chunks in files on the host's disk; they survive a restart once synced.
    Filesystem,
}

/// `storage.sync`: when chunk files are fsynced.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum StorageSync {
    /// Fluent Bit's default: data reaches the file as it arrives but is only synced when the
    /// chunk is finalised for the flush (chunkio syncs on lock/close); a crash loses the
    /// open chunk's records.
    Normal,
    /// Every write is synced before it is acknowledged to the input: nothing taken is lost.
    Full,
}

/// Longest retry wait bound: a week (Fluent Bit's default cap is 2000 s).
pub(crate) const SCHEDULER_SECS_MAX: u64 = 7 * 24 * 3600;

/// Fluent Bit on one host.
#[derive(Clone, Debug, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct AgentConfig {
    /// `[SERVICE] Flush`: seconds between flushes of the buffered chunks. Default 1 s
    /// (Fluent Bit ≥ 1.9; older releases 5 s).
    #[serde(with = "crate::units::duration_text")]
    pub flush_interval: Duration,
    /// Target size of one chunk: Fluent Bit's chunks are about 2 MB (`FLB_INPUT_CHUNK_FS_MAX_SIZE`
    /// 2048000 bytes); a chunk is sealed when it reaches it or at the next flush.
    #[schemars(range(min = 1, max = BYTES_SIZE_MAX))]
    pub chunk_bytes_target: usize,
    /// `storage.type`: memory (Fluent Bit's default) or filesystem.
    pub storage: StorageType,
    /// `storage.sync`: normal (default) or full.
    pub storage_sync: StorageSync,
    /// `Mem_Buf_Limit` (memory storage): the input pauses while buffered chunk bytes reach it.
    /// Fluent Bit has no limit unless set; every production guide sets one, and the
    /// pipeline's configuration uses 50 MB, which is the default here.
    #[schemars(range(min = 1, max = BYTES_LIMIT_MAX))]
    pub mem_buf_bytes_limit: u64,
    /// `storage.total_limit_size` of the output (filesystem storage): oldest chunks are
    /// discarded beyond it (cause `agent_storage_limit`). Fluent Bit default: unlimited
    /// (`None`).
    #[schemars(range(min = 1, max = BYTES_LIMIT_MAX))]
    pub storage_total_bytes_limit: Option<u64>,
    /// Records taken from the app's pipe per read: bounds one append (Fluent Bit's tail
    /// reads `Buffer_Chunk_Size` 32 KB at a time; records here are ~400 bytes).
    #[schemars(range(min = 1, max = 1_000_000))]
    pub take_records_max: usize,
    /// `Retry_Limit`: default 1 (Fluent Bit ≥ 1.9 docs: "N must be >= 1 (default: 1)").
    pub retry_limit: RetryLimit,
    /// `scheduler.base`: lower bound of each retry wait, seconds. Default 5.
    #[schemars(range(min = 1, max = SCHEDULER_SECS_MAX))]
    pub scheduler_base_secs: u64,
    /// `scheduler.cap`: upper bound of each retry wait, seconds. Default 2000.
    #[schemars(range(min = 1, max = SCHEDULER_SECS_MAX))]
    pub scheduler_cap_secs: u64,
    /// out_forward `Tag` override; `None` keeps the input's tag.
    pub tag: Option<String>,
    /// out_forward `Shared_Key`: enables the HELO/PING/PONG handshake. Default none.
    pub shared_key: Option<String>,
    /// out_forward `Self_Hostname`; `None` uses the host's name (Fluent Bit's default is
    /// "localhost"; the host name makes the server's logs useful).
    pub self_hostname: Option<String>,
    /// out_forward `Require_ack_response`: default false (a successful write is delivery).
    pub require_ack: bool,
    /// How long to wait for an ack, a HELO or a PONG before treating the connection as dead.
    /// Fluent Bit reads under `net.io_timeout`, whose default is 0 s = wait forever (a known
    /// cause of stuck agents; real TCP eventually notices a dead peer, turmoil never does).
    /// The pipeline sets 60 s, the default here.
    #[serde(with = "crate::units::duration_text")]
    pub io_timeout: Duration,
    /// `net.connect_timeout`: default 10 s.
    #[serde(with = "crate::units::duration_text")]
    pub connect_timeout: Duration,
    /// `net.keepalive`: default true — a connection is kept after a chunk and reused for
    /// the next one; false closes it after every chunk.
    pub keepalive: bool,
    /// `net.keepalive_idle_timeout`: an unused keepalive connection is closed by the agent
    /// after this long. Default 30 s. At least 1 s.
    #[serde(with = "crate::units::duration_text")]
    pub keepalive_idle_timeout: Duration,
    /// `net.keepalive_max_recycle`: a keepalive connection is closed once it has been
    /// handed back this many times (0: never). Default 2000. At most 1000000.
    #[schemars(range(max = 1_000_000))]
    pub keepalive_max_recycle: u32,
    /// Planted bugs (`crate::parts::bugs`): set by the pipeline from the scenario's `[bugs]`, never
    /// a key of this section.
    #[serde(skip)]
    pub bugs: crate::parts::Bugs,
}

impl Default for AgentConfig {
    fn default() -> Self {
        AgentConfig {
            flush_interval: Duration::from_secs(1),
            chunk_bytes_target: 2_048_000,
            storage: StorageType::Memory,
            storage_sync: StorageSync::Normal,
            mem_buf_bytes_limit: 50 * 1024 * 1024,
            storage_total_bytes_limit: None,
            take_records_max: 1024,
            retry_limit: RetryLimit::Retries(1),
            scheduler_base_secs: 5,
            scheduler_cap_secs: 2000,
            tag: None,
            shared_key: None,
            self_hostname: None,
            require_ack: false,
            io_timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(10),
            keepalive: true,
            keepalive_idle_timeout: Duration::from_secs(30),
            keepalive_max_recycle: 2000,
            bugs: crate::parts::Bugs::default(),
        }
    }
}

impl AgentConfig {
    /// Refuses settings Fluent Bit would refuse, naming the key.
    pub fn validate(&self) -> Result<(), String> {
        self.check_rules().map_err(|(key, message)| format!("agent.{key}: {message}"))
    }

    /// The rules the run relies on, as `(key, message)`; the numbers' ranges are also in
    /// the scenario schema (checked at load).
    pub(crate) fn check_rules(&self) -> Result<(), (&'static str, String)> {
        for (key, value) in [
            ("flush_interval", self.flush_interval),
            ("io_timeout", self.io_timeout),
            ("connect_timeout", self.connect_timeout),
        ] {
            if value.is_zero() {
                return Err((key, "must be above zero (turmoil never breaks a dead connection)".into()));
            }
        }
        for (key, value) in [
            ("chunk_bytes_target", self.chunk_bytes_target as u64),
            ("take_records_max", self.take_records_max as u64),
            ("mem_buf_bytes_limit", self.mem_buf_bytes_limit),
            ("storage_total_bytes_limit", self.storage_total_bytes_limit.unwrap_or(1)),
            ("scheduler_base_secs", self.scheduler_base_secs),
        ] {
            if value == 0 {
                return Err((key, "must be above zero".into()));
            }
        }
        if self.scheduler_cap_secs < self.scheduler_base_secs {
            return Err((
                "scheduler_cap_secs",
                format!("{} must be ≥ scheduler_base_secs {}", self.scheduler_cap_secs, self.scheduler_base_secs),
            ));
        }
        if self.keepalive_idle_timeout < Duration::from_secs(1) {
            return Err((
                "keepalive_idle_timeout",
                format!(
                    "{:?} must be at least 1s (Fluent Bit counts it in whole seconds)",
                    self.keepalive_idle_timeout
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_limit_reads_every_fluent_bit_spelling() {
        #[derive(Deserialize)]
        struct Section {
            retry_limit: RetryLimit,
        }
        let read = |text: &str| toml::from_str::<Section>(text).map(|s| s.retry_limit);
        assert_eq!(read("retry_limit = 3").unwrap(), RetryLimit::Retries(3));
        assert_eq!(read("retry_limit = \"no_limits\"").unwrap(), RetryLimit::NoLimits);
        assert_eq!(read("retry_limit = false").unwrap(), RetryLimit::NoLimits);
        assert_eq!(read("retry_limit = \"no_retries\"").unwrap(), RetryLimit::NoRetries);
        assert!(read("retry_limit = 0").unwrap_err().to_string().contains("N >= 1"));
        assert!(read("retry_limit = \"often\"").unwrap_err().to_string().contains("\"often\""));
    }

    #[test]
    fn defaults_are_fluent_bits_and_unknown_keys_are_refused() {
        let config: AgentConfig = toml::from_str("storage = \"filesystem\"\nrequire_ack = true").unwrap();
        assert_eq!(config.retry_limit, RetryLimit::Retries(1));
        assert_eq!((config.scheduler_base_secs, config.scheduler_cap_secs), (5, 2000));
        assert_eq!(config.flush_interval, Duration::from_secs(1));
        assert_eq!(
            (config.keepalive, config.keepalive_idle_timeout, config.keepalive_max_recycle),
            (true, Duration::from_secs(30), 2000)
        );
        assert_eq!(config.storage, StorageType::Filesystem);
        assert!(config.validate().is_ok());
        assert!(toml::from_str::<AgentConfig>("retry_limt = 1").is_err());
        assert!(RetryLimit::Retries(1).allows_retry(1) && !RetryLimit::Retries(1).allows_retry(2));
        assert!(!RetryLimit::NoRetries.allows_retry(1));
    }
}
