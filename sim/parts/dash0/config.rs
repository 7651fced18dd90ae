//! Dash0's ingest settings: the credentials it accepts, the timestamp window it stores, and
//! how large a request may be.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How the mock Dash0 ingest judges requests. `Default` mirrors what Dash0 documents.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Dash0Config {
    /// The auth token every request must carry as `Authorization: Bearer <token>` (Dash0
    /// "Settings > Auth Tokens"; a missing or different token is HTTP 401 / gRPC
    /// UNAUTHENTICATED). The simulation's own token: `obsim-token`.
    pub token: String,
    /// The one dataset this token may write. A request names its dataset with the
    /// `Dash0-Dataset` header; without the header it writes to Dash0's `default` dataset.
    /// Naming any other dataset is refused with HTTP 403 / gRPC PERMISSION_DENIED, as Dash0
    /// answers a token restricted to a dataset. Default `default`.
    pub dataset: String,
    /// Records stamped further in the past than this (against Dash0's own clock) are
    /// refused per record with `partial_success`: Dash0 documents 6 h.
    #[serde(with = "crate::units::duration_text")]
    pub(crate) timestamp_past_limit: Duration,
    /// Records stamped further in the future than this are refused likewise: Dash0
    /// documents 3 days.
    #[serde(with = "crate::units::duration_text")]
    pub(crate) timestamp_future_limit: Duration,
    /// Largest request body accepted (HTTP 413 / gRPC RESOURCE_EXHAUSTED beyond it). Dash0
    /// does not publish its bound; 20 MiB is the OpenTelemetry Collector's OTLP receiver
    /// default (`confighttp` `max_request_body_size`), which fits the shipper's largest
    /// requests (a Fluentd chunk of at most 8 MiB).
    #[schemars(range(min = 1, max = crate::units::BYTES_SIZE_MAX))]
    pub(crate) request_bytes_limit: usize,
    /// A request body may decode to at most this many times its own bytes; beyond it the
    /// body is refused (HTTP 400) before it is decoded. obsim's own bound (its memory, not
    /// Dash0's rule): obsim's requests decode to about 10 × their size. README "Wire
    /// decoders' limits".
    #[schemars(range(min = 1, max = 10_000))]
    pub(crate) decoded_expansion_limit: usize,
    /// A request body may hold at most this many repeated elements (records, attributes,
    /// points, ...); beyond it the body is refused (HTTP 400) before it is decoded.
    #[schemars(range(min = 1, max = 1_000_000_000))]
    pub(crate) decoded_elements_limit: usize,
    /// Open OTLP/HTTP connections served at once; further connections are closed at once
    /// (bounded like every resource in obsim; far above what the simulated fleet opens).
    #[schemars(range(min = 1, max = 100_000))]
    pub(crate) http_connections_limit: usize,
    /// Live mode only (`obsim serve dash0` without `--token`): any bearer token, or none, is
    /// accepted. Never a key of this section: the simulation always checks the token.
    #[serde(skip)]
    pub accept_any_token: bool,
    /// Planted bugs (`crate::parts::bugs`): set by the pipeline from the scenario's `[bugs]`, never
    /// a key of this section.
    #[serde(skip)]
    pub bugs: crate::parts::Bugs,
}

impl Default for Dash0Config {
    fn default() -> Self {
        Dash0Config {
            token: "obsim-token".to_string(),
            dataset: DATASET_DEFAULT.to_string(),
            timestamp_past_limit: Duration::from_secs(6 * 3600),
            timestamp_future_limit: Duration::from_secs(72 * 3600),
            request_bytes_limit: 20 * 1024 * 1024,
            decoded_expansion_limit: crate::proto::otlp::DECODED_EXPANSION_LIMIT_DEFAULT,
            decoded_elements_limit: crate::proto::otlp::DECODED_ELEMENTS_LIMIT_DEFAULT,
            http_connections_limit: 4096,
            accept_any_token: false,
            bugs: crate::parts::Bugs::default(),
        }
    }
}

/// The dataset a request without a `Dash0-Dataset` header writes to.
pub const DATASET_DEFAULT: &str = "default";

impl Dash0Config {
    /// The bounds on decoding one request body.
    pub(crate) fn decode_limits(&self) -> crate::proto::otlp::DecodeLimits {
        crate::proto::otlp::DecodeLimits {
            expansion_limit: self.decoded_expansion_limit,
            elements_limit: self.decoded_elements_limit,
        }
    }

    /// Checks the settings; the error names the field and the rule.
    pub fn check(&self) -> Result<(), String> {
        self.check_rules().map_err(|(key, message)| format!("dash0.{key} {message}"))
    }

    /// The rules the run relies on, as `(key, message)`; the numbers' ranges are also in
    /// the scenario schema (checked at load).
    pub(crate) fn check_rules(&self) -> Result<(), (&'static str, String)> {
        if self.token.is_empty() {
            return Err(("token", "must not be empty".to_string()));
        }
        if self.dataset.is_empty() {
            return Err(("dataset", "must not be empty".to_string()));
        }
        if self.request_bytes_limit == 0 {
            return Err(("request_bytes_limit", "must be at least 1".to_string()));
        }
        if self.decoded_expansion_limit == 0 {
            return Err(("decoded_expansion_limit", "must be at least 1".to_string()));
        }
        if self.decoded_elements_limit == 0 {
            return Err(("decoded_elements_limit", "must be at least 1".to_string()));
        }
        if self.http_connections_limit == 0 {
            return Err(("http_connections_limit", "must be at least 1".to_string()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_dash0s_documented_limits() {
        let config = Dash0Config::default();
        assert_eq!(config.timestamp_past_limit, Duration::from_secs(21_600));
        assert_eq!(config.timestamp_future_limit, Duration::from_secs(259_200));
        assert!(config.check().is_ok());
    }

    #[test]
    fn reads_from_toml_and_refuses_unknown_keys() {
        let config: Dash0Config = toml::from_str("token = \"t\"\ntimestamp_past_limit = \"1h\"").unwrap();
        assert_eq!(config.token, "t");
        assert_eq!(config.timestamp_past_limit, Duration::from_secs(3600));
        assert_eq!(config.dataset, "default");
        let error = toml::from_str::<Dash0Config>("tokn = \"t\"").unwrap_err().to_string();
        assert!(error.contains("unknown field `tokn`"), "{error}");
    }
}
