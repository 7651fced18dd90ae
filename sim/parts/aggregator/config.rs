//! The `[aggregator]` section: Fluentd's in_forward, in_http, record enrichment, routing,
//! `<buffer>` (buf_memory) and retry parameters, with Fluentd v1's defaults (docs "Buffer Section",
//! "Output Plugins → retry parameters", "in_forward").

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// `overflow_action`: what the buffer does when `total_limit_size` is reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OverflowAction {
    /// Fluentd's default: the emit raises `BufferOverflowError`; in_forward sends no ack
    /// (the agent retries), in_http answers an error status.
    ThrowException,
    /// The input waits until there is room (backpressure: in_forward stops reading).
    Block,
    /// The oldest chunk is discarded to make room (cause `aggregator_overflow`).
    DropOldestChunk,
}

/// `<buffer> @type`: where chunks live (Fluentd 1.19 `lib/fluent/plugin/buf_memory.rb`,
/// `buf_file.rb`; FIDELITY.md "Aggregator — Fluentd").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum BufferType {
    /// buf_memory (Fluentd's default): chunks die with the process.
    Memory,
    /// buf_file: every write goes to the chunk's file with `write(2)` and no fsync, so a
    /// killed process keeps its chunks (the kernel has them) and a power loss loses them;
    /// a restarted Fluentd resumes them.
    File,
}

/// Fluentd on Railway.
#[derive(Clone, Debug, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct AggregatorConfig {
    /// in_forward `<security> shared_key`; `None` turns the handshake off.
    pub shared_key: Option<String>,
    /// in_forward `<security> self_hostname`. Fluentd requires it with security; default
    /// the host's network name.
    pub self_hostname: Option<String>,
    /// Enrichment: `deployment.environment` written on every chunk.
    pub environment: String,
    /// Enrichment: `cloud.region` written on every chunk.
    pub region: String,
    /// Routing: the Redis list every tag goes to unless `routes` names another.
    pub redis_key: String,
    /// Routing by tag prefix: `(prefix, key)` pairs, first match wins.
    pub routes: Vec<(String, String)>,
    /// `<buffer> @type`: memory (Fluentd's default) or file. The size defaults below stay
    /// buf_memory's for both: a file buffer scenario sets its own.
    pub buffer_type: BufferType,
    /// `flush_at_shutdown`: on SIGTERM, enqueue every staged chunk and write the queue
    /// before exiting. Fluentd's default depends on the buffer: true for memory, false for
    /// file (`Output#configure`); absent here means that default.
    pub flush_at_shutdown: Option<bool>,
    /// `queued_chunks_limit_size`: the flush timer enqueues no staged chunk while this many
    /// chunks wait in the queue (full chunks are enqueued regardless). Fluentd's default is
    /// `flush_thread_count`, 1.
    #[schemars(range(min = 1, max = 1_000_000))]
    pub queued_chunks_limit_size: usize,
    /// `chunk_full_threshold`: a staged chunk at this fraction of `chunk_limit_size` or
    /// more after a write is enqueued at once. Fluentd's default 0.95.
    #[schemars(range(min = 0.000_001, max = 1.0))]
    pub chunk_full_threshold: f64,
    /// `chunk_limit_size`: 8 MB for buf_memory (Fluentd default; buf_file: 256 MB).
    #[schemars(range(min = 1, max = crate::units::BYTES_SIZE_MAX))]
    pub chunk_bytes_limit: u64,
    /// `total_limit_size`: 512 MB for buf_memory (Fluentd default; buf_file: 64 GB).
    #[schemars(range(min = 1, max = crate::units::BYTES_LIMIT_MAX))]
    pub total_bytes_limit: u64,
    /// `flush_interval`: the pipeline's choice, 1 s (Fluentd's default is 60 s): obsim's
    /// latency budgets are seconds, and the design sets no value. A scenario may set
    /// Fluentd's `"60s"`.
    #[serde(with = "crate::units::duration_text")]
    pub flush_interval: Duration,
    /// `overflow_action`: default throw_exception.
    pub overflow_action: OverflowAction,
    /// `retry_wait`: 1 s.
    #[serde(with = "crate::units::duration_text")]
    pub retry_wait: Duration,
    /// `retry_exponential_backoff_base`: 2.
    #[schemars(range(min = 1.0, max = 100.0))]
    pub retry_exponential_backoff_base: f64,
    /// `retry_randomize`: true (wait × uniform(0.875, 1.125), Fluentd's ±12.5 %).
    pub retry_randomize: bool,
    /// `retry_max_interval`: none by default.
    #[schemars(with = "Option<crate::units::duration_text>")]
    #[serde(with = "optional_duration")]
    pub retry_max_interval: Option<Duration>,
    /// `retry_timeout`: 72 h.
    #[serde(with = "crate::units::duration_text")]
    pub retry_timeout: Duration,
    /// `retry_max_times`: none by default (then `retry_timeout` rules).
    #[schemars(range(min = 0, max = 1_000_000))]
    pub retry_max_times: Option<u32>,
    /// `retry_forever`: false.
    pub retry_forever: bool,
    /// Redis command timeout (the redis crate's response timeout); also the connect
    /// timeout. Fluentd's redis plugins use the client's 5 s default.
    #[serde(with = "crate::units::duration_text")]
    pub redis_timeout: Duration,
    /// Largest Forward frame accepted (Fluentd's in_forward `chunk_size_limit`, unlimited
    /// by default; bounded here by the decoder's 8 MiB).
    #[schemars(range(min = 1, max = crate::units::BYTES_SIZE_MAX))]
    pub frame_bytes_limit: usize,
    /// Largest in_http body (Fluentd's `body_size_limit`: 32 MB).
    #[schemars(range(min = 1, max = crate::units::BYTES_SIZE_MAX))]
    pub http_body_bytes_limit: usize,
    /// How long an in_forward connection may stay silent before it is closed (Fluentd's
    /// `linger_timeout` is for closing; real TCP keepalive notices dead peers: 2 h by
    /// default on Linux). Bounded so partitions do not leak connections: 120 s.
    #[serde(with = "crate::units::duration_text")]
    pub connection_idle_timeout: Duration,
    /// in_forward `skip_invalid_event` (Fluentd 1.19's default true): an event whose time is
    /// neither an Integer nor an EventTime (a float) or whose record is not a map is
    /// skipped, one event at a time, with cause `aggregator_invalid_event`; the frame's
    /// other events are kept and its ack is still sent. With false, a float time is kept as
    /// the number it is (FIDELITY.md, Aggregator).
    pub skip_invalid_event: bool,
    /// Planted bugs (`crate::parts::bugs`): set by the pipeline from the scenario's `[bugs]`, never
    /// a key of this section.
    #[serde(skip)]
    pub bugs: crate::parts::Bugs,
}

impl Default for AggregatorConfig {
    fn default() -> Self {
        AggregatorConfig {
            shared_key: None,
            self_hostname: None,
            environment: "production".into(),
            region: "us-west1".into(),
            redis_key: "logs:buffer".into(),
            routes: Vec::new(),
            buffer_type: BufferType::Memory,
            flush_at_shutdown: None,
            queued_chunks_limit_size: 1,
            chunk_full_threshold: 0.95,
            chunk_bytes_limit: 8 * 1024 * 1024,
            total_bytes_limit: 512 * 1024 * 1024,
            flush_interval: Duration::from_secs(1),
            overflow_action: OverflowAction::ThrowException,
            retry_wait: Duration::from_secs(1),
            retry_exponential_backoff_base: 2.0,
            retry_randomize: true,
            retry_max_interval: None,
            retry_timeout: Duration::from_secs(72 * 3600),
            retry_max_times: None,
            retry_forever: false,
            redis_timeout: Duration::from_secs(5),
            frame_bytes_limit: crate::proto::forward::FRAME_BYTES_LIMIT_DEFAULT,
            http_body_bytes_limit: 32 * 1024 * 1024,
            connection_idle_timeout: Duration::from_secs(120),
            skip_invalid_event: true,
            bugs: crate::parts::Bugs::default(),
        }
    }
}

impl AggregatorConfig {
    /// Refuses settings Fluentd would refuse, naming the key.
    pub fn validate(&self) -> Result<(), String> {
        self.check_rules().map_err(|(key, message)| format!("aggregator.{key}: {message}"))
    }

    /// The rules the run relies on, as `(key, message)`; the numbers' ranges are also in
    /// the scenario schema (checked at load).
    pub(crate) fn check_rules(&self) -> Result<(), (&'static str, String)> {
        for (key, value) in [
            ("chunk_bytes_limit", self.chunk_bytes_limit),
            ("frame_bytes_limit", self.frame_bytes_limit as u64),
            ("http_body_bytes_limit", self.http_body_bytes_limit as u64),
        ] {
            if value == 0 {
                return Err((key, "must be above zero".into()));
            }
        }
        if self.total_bytes_limit < self.chunk_bytes_limit {
            return Err((
                "total_bytes_limit",
                format!("{} must be ≥ chunk_bytes_limit {}", self.total_bytes_limit, self.chunk_bytes_limit),
            ));
        }
        for (key, value) in [
            ("flush_interval", self.flush_interval),
            ("retry_wait", self.retry_wait),
            ("redis_timeout", self.redis_timeout),
            ("connection_idle_timeout", self.connection_idle_timeout),
        ] {
            if value.is_zero() {
                return Err((key, "must be above zero".into()));
            }
        }
        if self.queued_chunks_limit_size == 0 {
            return Err(("queued_chunks_limit_size", "must be above zero".into()));
        }
        if !(self.chunk_full_threshold > 0.0 && self.chunk_full_threshold <= 1.0) {
            return Err((
                "chunk_full_threshold",
                format!("{} must be above 0 and at most 1", self.chunk_full_threshold),
            ));
        }
        if !(self.retry_exponential_backoff_base.is_finite() && self.retry_exponential_backoff_base > 1.0) {
            return Err((
                "retry_exponential_backoff_base",
                format!("{} must be above 1", self.retry_exponential_backoff_base),
            ));
        }
        Ok(())
    }

    /// `flush_at_shutdown` in force: the configured value, else Fluentd's default for the
    /// buffer type (true unless the buffer is persistent).
    pub fn flush_at_shutdown(&self) -> bool {
        self.flush_at_shutdown.unwrap_or(self.buffer_type == BufferType::Memory)
    }

    /// The chunk size at which a staged chunk is full (`chunk_size_full?`).
    pub(crate) fn chunk_full_bytes(&self) -> u64 {
        ((self.chunk_bytes_limit as f64) * self.chunk_full_threshold).ceil() as u64
    }

    /// The Redis list a tag routes to.
    pub(crate) fn route(&self, tag: &str) -> &str {
        self.routes.iter().find(|(prefix, _)| tag.starts_with(prefix.as_str())).map_or(&self.redis_key, |(_, key)| key)
    }
}

/// `Option<Duration>` as text or absent.
mod optional_duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(value: &Option<Duration>, serializer: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(duration) => serializer.serialize_str(&crate::units::format_duration(*duration)),
            None => serializer.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Duration>, D::Error> {
        let text = Option::<String>::deserialize(deserializer)?;
        text.map(|text| crate::units::parse_duration(&text).map_err(serde::de::Error::custom)).transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_fluentds_and_routes_match_by_prefix() {
        let config: AggregatorConfig =
            toml::from_str("overflow_action = \"drop_oldest_chunk\"\nretry_max_interval = \"30s\"\nroutes = [[\"dev.\", \"logs:dev\"]]")
                .unwrap();
        assert_eq!(config.overflow_action, OverflowAction::DropOldestChunk);
        assert_eq!(config.retry_max_interval, Some(Duration::from_secs(30)));
        assert_eq!(config.retry_timeout, Duration::from_secs(259_200));
        assert_eq!((config.chunk_bytes_limit, config.total_bytes_limit), (8 << 20, 512 << 20));
        assert_eq!(config.route("dev.app"), "logs:dev");
        assert_eq!(config.route("machine.comfyui"), "logs:buffer");
        assert!(config.validate().is_ok());
        assert!(toml::from_str::<AggregatorConfig>("overflow = \"block\"").is_err());
    }
}
