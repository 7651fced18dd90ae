//! The shipper's settings: the `[shipper]` section of a scenario.
//!
//! The shipper is EMP's own Railway process (no upstream software to copy), so its defaults
//! follow the conventions of the pieces it talks to: OTLP exporters' retry schedule (the
//! OTel Collector's `retry_on_failure`: 5 s initial, 30 s max interval; here 1 s initial
//! because the buffer, not the shipper, is where data waits), Dash0's documented request
//! limits, and the aggregator's buffer key.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How the shipper drains the Redis buffer into Dash0.
#[derive(Clone, Debug, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ShipperConfig {
    /// The Redis list the aggregator RPUSHes chunks onto: `logs:buffer` (the aggregator's
    /// default; both sides must agree).
    pub buffer_key: String,
    /// The reliable-queue processing list: chunks move here (LMOVE) while in flight and are
    /// LREMed only after Dash0 answered 2xx. One shipper per processing list.
    pub processing_key: String,
    /// Where values that are not log chunks go (RPUSH then LREM): never silently deleted.
    pub dead_letter_key: String,
    /// At most this many chunks in one POST.
    #[schemars(range(min = 1, max = 10_000))]
    pub batch_chunks_max: usize,
    /// At most this many log records in one POST (a single larger chunk is sent alone).
    #[schemars(range(min = 1, max = 1_000_000))]
    pub batch_records_max: usize,
    /// At most this many bytes of chunk values in one POST (estimate of the request size;
    /// a single larger chunk is sent alone). 4 MiB: Dash0's documented request limit for
    /// OTLP/HTTP is larger, and the OTel Collector's default `max_request_body_size` is 20 MiB.
    #[schemars(range(min = 1, max = crate::units::BYTES_SIZE_MAX))]
    pub request_bytes_limit: usize,
    /// How long one POST may take before it counts as failed (and is retried): 10 s, the
    /// OTLP/HTTP exporter's default `timeout`.
    #[serde(with = "crate::units::duration_text")]
    pub request_timeout: Duration,
    /// First backoff interval after a retryable failure: 1 s.
    #[serde(with = "crate::units::duration_text")]
    pub retry_initial: Duration,
    /// Largest backoff interval: 30 s (OTel `retry_on_failure.max_interval`).
    #[serde(with = "crate::units::duration_text")]
    pub retry_max_interval: Duration,
    /// How long one batch is retried before it is given back to the tail of the buffer
    /// (never dropped): 15 min.
    #[serde(with = "crate::units::duration_text")]
    pub retry_max_elapsed: Duration,
    /// BLMOVE's server-side timeout: how long an idle shipper waits before asking again,
    /// which also bounds how long a dead connection goes unnoticed: 1 s.
    #[serde(with = "crate::units::duration_text")]
    pub blmove_timeout: Duration,
    /// Client-side timeout of every Redis round trip (beyond `blmove_timeout` for BLMOVE),
    /// and of connecting: 5 s.
    #[serde(with = "crate::units::duration_text")]
    pub redis_timeout: Duration,
    /// Bearer token sent to Dash0 (`Authorization: Bearer …`).
    pub token: String,
    /// The Dash0 dataset (`Dash0-Dataset` header): `default`, Dash0's default dataset.
    pub dataset: String,
    /// Planted bugs (`crate::parts::bugs`): set by the pipeline from the scenario's `[bugs]`, never
    /// a key of this section.
    #[serde(skip)]
    pub bugs: crate::parts::Bugs,
}

impl Default for ShipperConfig {
    fn default() -> Self {
        ShipperConfig {
            buffer_key: "logs:buffer".to_string(),
            processing_key: "logs:processing".to_string(),
            dead_letter_key: "logs:dead".to_string(),
            batch_chunks_max: 16,
            batch_records_max: 1_000,
            request_bytes_limit: 4 * 1024 * 1024,
            request_timeout: Duration::from_secs(10),
            retry_initial: Duration::from_secs(1),
            retry_max_interval: Duration::from_secs(30),
            retry_max_elapsed: Duration::from_secs(15 * 60),
            blmove_timeout: Duration::from_secs(1),
            redis_timeout: Duration::from_secs(5),
            token: "obsim-token".to_string(),
            dataset: "default".to_string(),
            bugs: crate::parts::Bugs::default(),
        }
    }
}

impl ShipperConfig {
    /// Checks the bounds every loop relies on; the error names the key.
    pub fn validate(&self) -> Result<(), String> {
        self.check_rules().map_err(|(key, message)| format!("[shipper] {key} {message}"))
    }

    /// The rules the run relies on, as `(key, message)`; the numbers' ranges are also in
    /// the scenario schema (checked at load).
    pub(crate) fn check_rules(&self) -> Result<(), (&'static str, String)> {
        let positive = [
            ("batch_chunks_max", self.batch_chunks_max),
            ("batch_records_max", self.batch_records_max),
            ("request_bytes_limit", self.request_bytes_limit),
        ];
        for (key, value) in positive {
            if value == 0 {
                return Err((key, "must be at least 1".to_string()));
            }
        }
        for (key, value) in [
            ("request_timeout", self.request_timeout),
            ("retry_initial", self.retry_initial),
            ("blmove_timeout", self.blmove_timeout),
            ("redis_timeout", self.redis_timeout),
        ] {
            if value.is_zero() {
                return Err((key, "must be more than zero".to_string()));
            }
        }
        if self.retry_max_interval < self.retry_initial {
            return Err(("retry_max_interval", "must be at least retry_initial".to_string()));
        }
        if self.buffer_key == self.processing_key || self.dead_letter_key == self.buffer_key {
            return Err(("processing_key", "buffer_key, processing_key and dead_letter_key must differ".to_string()));
        }
        Ok(())
    }
}
