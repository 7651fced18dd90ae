//! The `[agent]` section: Fluent Bit's service, storage and `out_forward` settings, with
//! Fluent Bit's own defaults (v3/v4 documentation: "Configuring Fluent Bit → Service",
//! "Buffering & Storage", "Scheduling and Retries", "Outputs → Forward").

use std::fmt;
use std::time::Duration;

use crate::units::{BYTES_LIMIT_MAX, BYTES_SIZE_MAX};
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Fluent Bit's `Retry_Limit`: how many times a failed chunk is retried before it is
/// discarded. Read as Fluent Bit 5.1 reads it (`src/flb_output.c`, `flb_output_set_property`;
/// FIDELITY.md, Agent: Retry_Limit): `no_limits`, `false` or `off` (any case) retry for ever,
/// `no_retries` never retries, anything else goes through C's `atoi` and a result ≤ 0 is
/// warned about and replaced by the default 1.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RetryLimit {
    /// `N`: at most N retries after the first attempt (N ≥ 1).
    Retries(u32),
    /// `no_limits`, `false` or `off`: retry forever.
    NoLimits,
    /// `no_retries`: the first failure discards the chunk.
    NoRetries,
    /// A value whose `atoi` is ≤ 0 (`0`, `-3`, `"often"`, `true`): Fluent Bit logs
    /// `[config] invalid retry_limit. set default.` and uses 1. Keeps the text as written.
    Defaulted(String),
}

/// The largest number C's `atoi` returns without overflow (Fluent Bit's `int retry_limit`).
const RETRY_LIMIT_MAX: i64 = i32::MAX as i64;

impl RetryLimit {
    /// Whether a chunk that has failed `failures` times (≥ 1) may be tried again.
    pub(crate) fn allows_retry(&self, failures: u32) -> bool {
        match self {
            RetryLimit::Retries(limit) => failures <= *limit,
            RetryLimit::Defaulted(_) => failures <= 1,
            RetryLimit::NoLimits => true,
            RetryLimit::NoRetries => false,
        }
    }

    /// The warning Fluent Bit logs at start for this value, if any.
    pub(crate) fn warning(&self) -> Option<String> {
        match self {
            RetryLimit::Defaulted(text) => {
                Some(format!("retry_limit {text:?}: invalid retry_limit. set default. (retries 1)"))
            }
            _ => None,
        }
    }

    /// Reads the text of a `Retry_Limit` value as Fluent Bit does.
    fn from_text(text: &str) -> Result<RetryLimit, String> {
        let lower = text.to_ascii_lowercase();
        match lower.as_str() {
            "no_limits" | "false" | "off" => return Ok(RetryLimit::NoLimits),
            "no_retries" => return Ok(RetryLimit::NoRetries),
            _ => {}
        }
        let number = c_atoi(text).ok_or_else(|| {
            format!("retry_limit {text:?} overflows Fluent Bit's int (atoi); the largest is {RETRY_LIMIT_MAX}")
        })?;
        Ok(RetryLimit::from_number(number, text))
    }

    /// A number already read: ≤ 0 is Fluent Bit's warned default.
    fn from_number(number: i64, text: &str) -> RetryLimit {
        assert!(number <= RETRY_LIMIT_MAX, "checked by the caller");
        match u32::try_from(number) {
            Ok(limit) if limit >= 1 => RetryLimit::Retries(limit),
            _ => RetryLimit::Defaulted(text.to_string()),
        }
    }
}

/// C's `atoi` on `text`: leading whitespace, an optional sign, then digits up to the first
/// other byte (none: 0). `None` when the digits overflow an `int` (undefined in C: refused).
fn c_atoi(text: &str) -> Option<i64> {
    let trimmed = text.trim_start();
    let (negative, digits) = match trimmed.as_bytes().first() {
        Some(b'-') => (true, &trimmed[1..]),
        Some(b'+') => (false, &trimmed[1..]),
        _ => (false, trimmed),
    };
    let mut value: i64 = 0;
    // Bounded: one pass over the text's bytes.
    for byte in digits.bytes().take_while(u8::is_ascii_digit) {
        value = value * 10 + i64::from(byte - b'0');
        if value > RETRY_LIMIT_MAX + 1 {
            return None;
        }
    }
    let value = if negative { -value } else { value };
    (-RETRY_LIMIT_MAX - 1..=RETRY_LIMIT_MAX).contains(&value).then_some(value)
}

impl Serialize for RetryLimit {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            RetryLimit::Retries(limit) => serializer.serialize_u32(*limit),
            RetryLimit::NoLimits => serializer.serialize_str("no_limits"),
            RetryLimit::NoRetries => serializer.serialize_str("no_retries"),
            RetryLimit::Defaulted(text) => serializer.serialize_str(text),
        }
    }
}

impl<'de> Deserialize<'de> for RetryLimit {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct RetryLimitVisitor;
        impl Visitor<'_> for RetryLimitVisitor {
            type Value = RetryLimit;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("retry_limit: an integer, \"no_limits\", \"off\", false or \"no_retries\"")
            }
            fn visit_u64<E: de::Error>(self, value: u64) -> Result<RetryLimit, E> {
                match i64::try_from(value) {
                    Ok(number) if number <= RETRY_LIMIT_MAX => Ok(RetryLimit::from_number(number, &value.to_string())),
                    _ => Err(E::custom(format!(
                        "retry_limit {value} overflows Fluent Bit's int (atoi); the largest is {RETRY_LIMIT_MAX}"
                    ))),
                }
            }
            fn visit_i64<E: de::Error>(self, value: i64) -> Result<RetryLimit, E> {
                if value < -RETRY_LIMIT_MAX - 1 {
                    return Err(E::custom(format!("retry_limit {value} overflows Fluent Bit's int (atoi)")));
                }
                match u64::try_from(value) {
                    Ok(value) => self.visit_u64(value),
                    Err(_) => Ok(RetryLimit::Defaulted(value.to_string())),
                }
            }
            fn visit_bool<E: de::Error>(self, value: bool) -> Result<RetryLimit, E> {
                // Fluent Bit reads the text: "false" retries for ever; atoi("true") is 0.
                RetryLimit::from_text(if value { "true" } else { "false" }).map_err(E::custom)
            }
            fn visit_str<E: de::Error>(self, value: &str) -> Result<RetryLimit, E> {
                RetryLimit::from_text(value).map_err(E::custom)
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

/// `storage.sync`: how chunk files are synced. chunkio writes every record into the chunk
/// file's mmap (the page cache: a SIGKILL keeps it) and syncs only when the chunk is locked
/// for its flush (`cio_chunk_lock` → `cio_file_sync` → `msync`); FIDELITY.md, Agent:
/// storage.sync.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum StorageSync {
    /// Fluent Bit's default: the lock's sync is `msync(MS_ASYNC)`, which waits for nothing, so
    /// chunk files are never known to be on disk: a power loss may take any of them (obsim
    /// takes all: it does not model the kernel's own writeback).
    Normal,
    /// The lock's sync is `msync(MS_SYNC)`: a chunk is on disk once sealed for its flush; the
    /// open chunk's records are still only in the page cache.
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
    /// **The pipeline's choice, not Fluent Bit's default**: Fluent Bit has no limit unless
    /// set; the pipeline's configuration uses 50 MB, the default here. A scenario gets Fluent
    /// Bit's "no limit" with the largest value, 1 TiB.
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
    /// out_forward `tls`: Forward over TLS to the aggregator. Default off (Fluent Bit's);
    /// `[aggregator] tls` must say the same (FIDELITY.md "Forward over TLS").
    pub tls: bool,
    /// `tls.verify`: check the aggregator's certificate chain against the run's CA and its
    /// validity at this host's clock. Default on (Fluent Bit's).
    pub tls_verify: bool,
    /// `tls.verify_hostname`: also check that the certificate is for `tls_vhost`. Default
    /// off (Fluent Bit 5.1's: a certificate for another name is accepted unless this is on).
    pub tls_verify_hostname: bool,
    /// `tls.vhost`: the name sent as SNI and verified with `tls_verify_hostname`. Default the
    /// host the agent dials (Fluent Bit uses the upstream's host when unset).
    pub tls_vhost: Option<String>,
    /// `net.io_timeout`: how long a write, or the wait for an ack, a HELO or a PONG, may take
    /// before the connection is treated as dead. **The pipeline's choice, not Fluent Bit's
    /// default**: the pipeline sets 60 s, the default here; Fluent Bit's default is `0s` =
    /// no timeout, which a scenario may set: the agent then waits as long as the kernel does
    /// — for ever on a half-open connection with nothing left to retransmit (a known cause of
    /// stuck agents; FIDELITY.md, Agent: net.io_timeout).
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
    /// out_forward `Workers`: threads the flushes are dealt to, round robin; each keeps its
    /// own connections. Default 2 (out_forward's plugin default). Every due chunk is flushed
    /// at once on a connection of its own, whatever the count (FIDELITY.md, Agent: workers);
    /// with `max_worker_connections` the count bounds the connections. 0: flushes run in
    /// the engine's thread, with one pool.
    #[schemars(range(max = 64))]
    pub workers: u32,
    /// `net.max_worker_connections`: connections (busy and available) one worker may hold;
    /// a flush that finds its worker at the limit fails and is retried. Default 0 = no limit.
    #[schemars(range(max = 1_000_000))]
    pub max_worker_connections: u32,
    /// `[SERVICE] Grace`: seconds Fluent Bit keeps flushing after SIGTERM before it exits
    /// (it exits sooner once nothing is pending). Default 5; -1 = until everything is
    /// flushed (only the SIGKILL that ends the draining time stops it).
    #[schemars(range(min = -1, max = 86_400))]
    pub grace_secs: i32,
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
            tls: false,
            tls_verify: true,
            tls_verify_hostname: false,
            tls_vhost: None,
            io_timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(10),
            keepalive: true,
            keepalive_idle_timeout: Duration::from_secs(30),
            keepalive_max_recycle: 2000,
            workers: 2,
            max_worker_connections: 0,
            grace_secs: 5,
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
        // `io_timeout` 0 is Fluent Bit's default: no timeout.
        for (key, value) in [("flush_interval", self.flush_interval), ("connect_timeout", self.connect_timeout)] {
            if value.is_zero() {
                return Err((key, "must be above zero".into()));
            }
        }
        if self.grace_secs < -1 {
            return Err(("grace_secs", format!("{} must be -1 (no limit) or ≥ 0", self.grace_secs)));
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
        if let Some(vhost) = &self.tls_vhost
            && rustls::pki_types::ServerName::try_from(vhost.as_str()).is_err()
        {
            return Err(("tls_vhost", format!("{vhost:?} is not a DNS name or IP address (it is sent as SNI)")));
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
        assert_eq!(read("retry_limit = \"3\"").unwrap(), RetryLimit::Retries(3));
        assert_eq!(read("retry_limit = \"no_limits\"").unwrap(), RetryLimit::NoLimits);
        assert_eq!(read("retry_limit = false").unwrap(), RetryLimit::NoLimits);
        assert_eq!(read("retry_limit = \"False\"").unwrap(), RetryLimit::NoLimits);
        assert_eq!(read("retry_limit = \"no_retries\"").unwrap(), RetryLimit::NoRetries);
        assert!(read("retry_limit = 3000000000").unwrap_err().to_string().contains("overflows"));
    }

    /// Fluent Bit 5.1 `flb_output.c`: `off` and any case retry for ever; a value whose
    /// `atoi` is ≤ 0 is warned about and becomes 1 (the old reader refused all of these).
    #[test]
    fn retry_limit_accepts_what_fluent_bit_accepts_with_its_meaning() {
        #[derive(Deserialize)]
        struct Section {
            retry_limit: RetryLimit,
        }
        let read = |text: &str| toml::from_str::<Section>(text).map(|s| s.retry_limit).unwrap();
        assert_eq!(read("retry_limit = \"off\""), RetryLimit::NoLimits);
        assert_eq!(read("retry_limit = \"OFF\""), RetryLimit::NoLimits);
        assert_eq!(read("retry_limit = \"No_Limits\""), RetryLimit::NoLimits);
        assert_eq!(read("retry_limit = \"NO_RETRIES\""), RetryLimit::NoRetries);
        assert_eq!(read("retry_limit = \" 7 tries\""), RetryLimit::Retries(7), "atoi stops at the first non-digit");
        for (text, written) in [("0", "0"), ("-2", "-2"), ("\"often\"", "often"), ("true", "true"), ("\"0\"", "0")] {
            let limit = read(&format!("retry_limit = {text}"));
            assert_eq!(limit, RetryLimit::Defaulted(written.into()), "{text}");
            assert!(limit.allows_retry(1) && !limit.allows_retry(2), "{text} behaves as 1");
            assert!(limit.warning().unwrap().contains("invalid retry_limit. set default."), "{text}");
        }
        assert_eq!(RetryLimit::Retries(4).warning(), None);
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
