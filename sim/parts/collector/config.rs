//! The collector's settings: the batch processor, the OTLP exporter's sending queue, retry
//! and timeout, and where Dash0 is. `Default` is the OpenTelemetry Collector's own defaults
//! (`batchprocessor`, `exporterhelper`, `otlpexporter`, `configgrpc`).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::vocab::pipeline::Address;

/// Most items or requests a count setting may name (batch sizes, queue size): a million.
pub(crate) const COUNT_MAX: usize = 1_000_000;

/// The OTel Collector on a machine, as configured for Dash0.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct CollectorConfig {
    /// batch processor `send_batch_size`: a batch is sent once it holds this many items.
    /// Default 8192.
    #[schemars(range(min = 1, max = COUNT_MAX))]
    pub send_batch_size: usize,
    /// batch processor `send_batch_max_size`: largest batch; 0 = unbounded (default), so a
    /// batch sent for size holds everything pending.
    #[schemars(range(min = 0, max = COUNT_MAX))]
    pub send_batch_max_size: usize,
    /// batch processor `timeout`: a non-empty batch is sent at the latest this long after
    /// its first item. Default 200 ms.
    #[serde(with = "crate::units::duration_text")]
    pub batch_timeout: Duration,
    /// exporterhelper `sending_queue.queue_size`, in requests (batches). Default 1000; a
    /// batch arriving at a full queue is dropped (`collector_queue_full`).
    #[schemars(range(min = 1, max = COUNT_MAX))]
    pub queue_size: usize,
    /// exporterhelper `sending_queue.num_consumers`: exports in flight at once. Default 10.
    #[schemars(range(min = 1, max = 1_000))]
    pub num_consumers: usize,
    /// `retry_on_failure.enabled`. Default true; when false a failed export is dropped at once.
    pub retry_enabled: bool,
    /// `retry_on_failure.initial_interval`. Default 5 s.
    #[serde(with = "crate::units::duration_text")]
    pub retry_initial_interval: Duration,
    /// `retry_on_failure.randomization_factor`: each wait is drawn from interval·(1 ± f).
    /// Default 0.5.
    #[schemars(range(min = 0.0, max = 0.999999))]
    pub retry_randomization_factor: f64,
    /// `retry_on_failure.multiplier`. Default 1.5.
    #[schemars(range(min = 1.0, max = 100.0))]
    pub retry_multiplier: f64,
    /// `retry_on_failure.max_interval`: the interval stops growing here (the randomized wait
    /// may still reach max_interval·(1 + f)). Default 30 s.
    #[serde(with = "crate::units::duration_text")]
    pub retry_max_interval: Duration,
    /// `retry_on_failure.max_elapsed_time`: a batch still failing after this long is
    /// dropped (`collector_retry_expired`). Default 300 s.
    #[serde(with = "crate::units::duration_text")]
    pub retry_max_elapsed_time: Duration,
    /// exporterhelper `timeout`: each export attempt's deadline. Default 5 s.
    #[serde(with = "crate::units::duration_text")]
    pub export_timeout: Duration,
    /// configgrpc `keepalive.time`: an HTTP/2 PING after this long without frames, also
    /// while idle; `"0s"` sends none. The pipeline's choice, not the collector's default: the
    /// OTLP exporter leaves `keepalive` unset (no PINGs; grpc-go reads a time of 0 the same
    /// way), and a connection cut silently then shows only as calls timing out. obsim sets
    /// gRPC's usual client value of 10 s (configgrpc's `NewDefaultKeepaliveClientConfig`)
    /// because a turmoil partition leaves a connection silently dead (ARCHITECTURE.md §8);
    /// a scenario sets `"0s"` to run the collector's own default.
    #[serde(with = "crate::units::duration_text")]
    pub keepalive_interval: Duration,
    /// configgrpc `keepalive.timeout`: the connection is closed when a PING is not answered
    /// within this. 10 s (configgrpc's default when keepalive is set).
    #[serde(with = "crate::units::duration_text")]
    pub keepalive_timeout: Duration,
    /// grpc-go's minimum connect timeout: each dial of Dash0 gets at least this (longer
    /// once the reconnect backoff is longer). 20 s.
    #[serde(with = "crate::units::duration_text")]
    pub connect_timeout: Duration,
    /// `Authorization: Bearer <token>` for Dash0.
    pub token: String,
    /// `Dash0-Dataset` header; Dash0 writes to `default` without it.
    pub dataset: String,
    /// The exporter's endpoint host, overriding the pipeline's next hop (Dash0's host, which
    /// the wiring gives the collector); unset, that next hop.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint_host: Option<String>,
    /// The exporter's endpoint port, overriding the next hop's (Dash0's OTLP/gRPC port,
    /// 4317); unset, that next hop's.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65_535))]
    pub endpoint_port: Option<u16>,
    /// Planted bugs (`crate::parts::bugs`): set by the pipeline from the scenario's `[bugs]`, never
    /// a key of this section.
    #[serde(skip)]
    pub bugs: crate::parts::Bugs,
}

impl Default for CollectorConfig {
    fn default() -> Self {
        CollectorConfig {
            send_batch_size: 8192,
            send_batch_max_size: 0,
            batch_timeout: Duration::from_millis(200),
            queue_size: 1000,
            num_consumers: 10,
            retry_enabled: true,
            retry_initial_interval: Duration::from_secs(5),
            retry_randomization_factor: 0.5,
            retry_multiplier: 1.5,
            retry_max_interval: Duration::from_secs(30),
            retry_max_elapsed_time: Duration::from_secs(300),
            export_timeout: Duration::from_secs(5),
            keepalive_interval: Duration::from_secs(10),
            keepalive_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(20),
            token: "obsim-token".to_string(),
            dataset: "default".to_string(),
            endpoint_host: None,
            endpoint_port: None,
            bugs: crate::parts::Bugs::default(),
        }
    }
}

impl CollectorConfig {
    /// Checks the settings; the error names the field and the rule.
    pub fn check(&self) -> Result<(), String> {
        self.check_rules().map_err(|(key, message)| format!("collector.{key} {message}"))
    }

    /// The rules the run relies on, as `(key, message)`; the numbers' ranges are also in
    /// the scenario schema (checked at load).
    pub(crate) fn check_rules(&self) -> Result<(), (&'static str, String)> {
        let positive = [
            ("send_batch_size", self.send_batch_size),
            ("queue_size", self.queue_size),
            ("num_consumers", self.num_consumers),
        ];
        for (field, value) in positive {
            if value == 0 {
                return Err((field, "must be at least 1".to_string()));
            }
        }
        if self.send_batch_max_size != 0 && self.send_batch_max_size < self.send_batch_size {
            return Err(("send_batch_max_size", "must be 0 (unbounded) or at least send_batch_size".to_string()));
        }
        if !(0.0..1.0).contains(&self.retry_randomization_factor) {
            return Err(("retry_randomization_factor", "must be within 0.0..1.0".to_string()));
        }
        if !(self.retry_multiplier >= 1.0 && self.retry_multiplier.is_finite()) {
            return Err(("retry_multiplier", "must be a finite number of at least 1".to_string()));
        }
        let durations = [
            ("batch_timeout", self.batch_timeout),
            ("retry_initial_interval", self.retry_initial_interval),
            ("retry_max_interval", self.retry_max_interval),
            ("export_timeout", self.export_timeout),
            ("keepalive_timeout", self.keepalive_timeout),
            ("connect_timeout", self.connect_timeout),
        ];
        for (field, value) in durations {
            if value.is_zero() {
                return Err((field, "must be longer than 0s".to_string()));
            }
        }
        if self.token.is_empty() {
            return Err(("token", "must not be empty".to_string()));
        }
        if self.endpoint_port == Some(0) {
            return Err(("endpoint_port", "must be at least 1".to_string()));
        }
        Ok(())
    }

    /// Where the exporter sends: `next_hop` (the wiring's Dash0), with `endpoint_host` and
    /// `endpoint_port` overriding its parts when set. Call after [`Self::check`].
    pub fn endpoint(&self, next_hop: &Address) -> Address {
        let host = self.endpoint_host.as_deref().unwrap_or(&next_hop.host);
        Address::new(host, self.endpoint_port.unwrap_or(next_hop.port))
    }

    /// The largest batch the processor sends (`None` = unbounded).
    pub(crate) fn batch_items_max(&self) -> Option<usize> {
        (self.send_batch_max_size != 0).then_some(self.send_batch_max_size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_collectors_and_check() {
        let config = CollectorConfig::default();
        assert_eq!((config.send_batch_size, config.queue_size, config.num_consumers), (8192, 1000, 10));
        assert_eq!(config.retry_max_elapsed_time, Duration::from_secs(300));
        assert!(config.check().is_ok());
    }

    #[test]
    fn reads_toml_and_names_bad_values() {
        let config: CollectorConfig = toml::from_str("queue_size = 2\nretry_max_elapsed_time = \"20s\"").unwrap();
        assert_eq!(config.queue_size, 2);
        assert_eq!(config.retry_max_elapsed_time, Duration::from_secs(20));
        let config = CollectorConfig { num_consumers: 0, ..CollectorConfig::default() };
        assert_eq!(config.check().unwrap_err(), "collector.num_consumers must be at least 1");
        assert!(toml::from_str::<CollectorConfig>("queue = 2").is_err());
        let config = CollectorConfig { endpoint_port: Some(0), ..CollectorConfig::default() };
        assert_eq!(config.check().unwrap_err(), "collector.endpoint_port must be at least 1");
    }

    /// The collector's OTLP exporter sets no keepalive; obsim's 10 s is the pipeline's
    /// choice, and `"0s"` turns it off.
    #[test]
    fn keepalive_is_the_pipelines_choice_and_0s_turns_it_off() {
        assert_eq!(CollectorConfig::default().keepalive_interval, Duration::from_secs(10));
        let config: CollectorConfig = toml::from_str("keepalive_interval = \"0s\"").unwrap();
        assert!(config.check().is_ok(), "0s (no PINGs) is the collector's own default");
        assert!(config.keepalive_interval.is_zero());
    }
}
