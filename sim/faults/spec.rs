//! `[[fault]]` tables as scenario authors write them, and the host selectors they name.
//!
//! Why a tagged enum with `deny_unknown_fields`: each kind has its own fields; a misspelt
//! field or kind is refused by serde with its line, never silently ignored.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::units::duration_text;

/// One scheduled fault.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, schemars::JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum FaultSpec {
    /// Partition `from` and `to` (both ways, or `oneway` from → to): packets are dropped and
    /// TCP connections through the link die for good.
    LinkDrop {
        #[serde(with = "duration_text")]
        at: Duration,
        #[serde(rename = "for", with = "duration_text")]
        lasting: Duration,
        from: String,
        to: String,
        /// Drop only packets from `from` to `to` (else both ways).
        #[serde(default)]
        oneway: bool,
    },
    /// Hold packets between `from` and `to`, then release them all at the end.
    LinkStall {
        #[serde(with = "duration_text")]
        at: Duration,
        #[serde(rename = "for", with = "duration_text")]
        lasting: Duration,
        from: String,
        to: String,
    },
    /// Delay every packet between `from` and `to` by `latency`, plus up to `jitter` more.
    Latency {
        #[serde(with = "duration_text")]
        at: Duration,
        #[serde(rename = "for", with = "duration_text")]
        lasting: Duration,
        from: String,
        to: String,
        /// Delay added to every packet, e.g. "200ms".
        #[serde(with = "duration_text")]
        latency: Duration,
        /// Up to this much more delay, drawn per packet (default none).
        #[serde(default, with = "duration_text")]
        jitter: Duration,
    },
    /// Drop a fraction of the packets between `from` and `to`.
    PacketLoss {
        #[serde(with = "duration_text")]
        at: Duration,
        #[serde(rename = "for", with = "duration_text")]
        lasting: Duration,
        from: String,
        to: String,
        /// Fraction of packets dropped, 0 to 1.
        #[schemars(range(min = 0.0, max = 1.0))]
        rate: f64,
    },
    /// Crash `target` and start it again after `down_for`.
    Restart {
        #[serde(with = "duration_text")]
        at: Duration,
        target: String,
        /// How long the target stays down before it starts again.
        #[serde(with = "duration_text")]
        down_for: Duration,
    },
    /// Crash `target`; it stays down until the faults are healed for the drain.
    Crash {
        #[serde(with = "duration_text")]
        at: Duration,
        target: String,
    },
    /// Dash0 answers `rate` of requests with `status` (and `Retry-After`).
    Dash0Errors {
        #[serde(with = "duration_text")]
        at: Duration,
        #[serde(rename = "for", with = "duration_text")]
        lasting: Duration,
        /// HTTP status answered (a 4xx or 5xx; gRPC requests get the matching code).
        #[schemars(range(min = 400, max = 599))]
        status: u16,
        /// Fraction of requests answered with `status`, 0 to 1 (default all).
        #[schemars(range(min = 0.0, max = 1.0))]
        #[serde(default = "rate_all")]
        rate: f64,
        /// `Retry-After` sent with the error (default none).
        #[schemars(with = "Option<crate::units::duration_text>")]
        #[serde(default, with = "option_duration_text", skip_serializing_if = "Option::is_none")]
        retry_after: Option<Duration>,
    },
    /// Dash0 delays every answer.
    Dash0Slow {
        #[serde(with = "duration_text")]
        at: Duration,
        #[serde(rename = "for", with = "duration_text")]
        lasting: Duration,
        /// Delay before each answer.
        #[serde(with = "duration_text")]
        delay: Duration,
    },
    /// Dash0 admits at most `records_per_second` (429 beyond).
    Dash0RateLimit {
        #[serde(with = "duration_text")]
        at: Duration,
        #[serde(rename = "for", with = "duration_text")]
        lasting: Duration,
        /// Records admitted per second; beyond it requests get 429.
        #[schemars(range(min = 1))]
        records_per_second: u64,
    },
    /// Jump `target`'s clock by `step` at once (an NTP step, a VM resume); it stays stepped
    /// until the faults are healed for the drain.
    ClockStep {
        #[serde(with = "duration_text")]
        at: Duration,
        target: String,
        /// How far the clock jumps.
        #[serde(with = "duration_text")]
        step: Duration,
        /// The step goes back in time (else forward).
        #[serde(default)]
        behind: bool,
    },
    /// Bend `target`'s clock: an `offset` (signed, e.g. "-7h" is written `offset = "7h"`,
    /// `behind = true`), a `drift_ppm`, or both, for a while.
    ClockSkew {
        #[serde(with = "duration_text")]
        at: Duration,
        #[serde(rename = "for", with = "duration_text")]
        lasting: Duration,
        target: String,
        /// How far the clock is off true time (default none).
        #[serde(default, with = "duration_text")]
        offset: Duration,
        /// The offset puts the clock behind true time (else ahead).
        #[serde(default)]
        behind: bool,
        /// Clock rate error in parts per million (default none).
        #[serde(default)]
        drift_ppm: f64,
    },
    /// Squeeze the pipeline for a while: `what = "redis_maxmemory"` shrinks Redis's
    /// `maxmemory` to `bytes` (as `CONFIG SET maxmemory` would; noeviction refuses writes
    /// above it); `what = "jobs_per_second"` multiplies the client's job rate by `factor`
    /// (a load burst). Each `what` takes its own field and refuses the other's.
    Backpressure {
        #[serde(with = "duration_text")]
        at: Duration,
        #[serde(rename = "for", with = "duration_text")]
        lasting: Duration,
        /// What is squeezed.
        what: BackpressureWhat,
        /// `redis_maxmemory`: the shrunk `maxmemory`, bytes.
        #[schemars(range(min = 1))]
        #[serde(default, skip_serializing_if = "Option::is_none")]
        bytes: Option<u64>,
        /// `jobs_per_second`: the job-rate multiplier, above 0 and at most 1000.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        factor: Option<f64>,
    },
}

/// What a `backpressure` fault squeezes.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum BackpressureWhat {
    /// Redis `maxmemory` (field `bytes`).
    RedisMaxmemory,
    /// The client's `jobs_per_second` (field `factor`).
    JobsPerSecond,
}

impl BackpressureWhat {
    /// As scenarios spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            BackpressureWhat::RedisMaxmemory => "redis_maxmemory",
            BackpressureWhat::JobsPerSecond => "jobs_per_second",
        }
    }
}

fn rate_all() -> f64 {
    1.0
}

/// `Option<Duration>` as optional duration text.
mod option_duration_text {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &Option<Duration>, serializer: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(duration) => serializer.serialize_str(&crate::units::format_duration(*duration)),
            None => serializer.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Duration>, D::Error> {
        let text = String::deserialize(deserializer)?;
        crate::units::parse_duration(&text).map(Some).map_err(serde::de::Error::custom)
    }
}

impl FaultSpec {
    /// The kind as scenarios spell it.
    pub fn kind(&self) -> &'static str {
        match self {
            FaultSpec::LinkDrop { .. } => "link_drop",
            FaultSpec::LinkStall { .. } => "link_stall",
            FaultSpec::Latency { .. } => "latency",
            FaultSpec::ClockStep { .. } => "clock_step",
            FaultSpec::PacketLoss { .. } => "packet_loss",
            FaultSpec::Restart { .. } => "restart",
            FaultSpec::Crash { .. } => "crash",
            FaultSpec::Dash0Errors { .. } => "dash0_errors",
            FaultSpec::Dash0Slow { .. } => "dash0_slow",
            FaultSpec::Dash0RateLimit { .. } => "dash0_rate_limit",
            FaultSpec::ClockSkew { .. } => "clock_skew",
            FaultSpec::Backpressure { .. } => "backpressure",
        }
    }

    /// When the fault starts.
    pub fn at(&self) -> Duration {
        match self {
            FaultSpec::LinkDrop { at, .. }
            | FaultSpec::LinkStall { at, .. }
            | FaultSpec::Latency { at, .. }
            | FaultSpec::ClockStep { at, .. }
            | FaultSpec::PacketLoss { at, .. }
            | FaultSpec::Restart { at, .. }
            | FaultSpec::Crash { at, .. }
            | FaultSpec::Dash0Errors { at, .. }
            | FaultSpec::Dash0Slow { at, .. }
            | FaultSpec::Dash0RateLimit { at, .. }
            | FaultSpec::ClockSkew { at, .. }
            | FaultSpec::Backpressure { at, .. } => *at,
        }
    }

    /// When the fault ends, if it ends by itself (a crash lasts until the drain heals it).
    pub fn end(&self) -> Option<Duration> {
        match self {
            FaultSpec::LinkDrop { at, lasting, .. }
            | FaultSpec::LinkStall { at, lasting, .. }
            | FaultSpec::Latency { at, lasting, .. }
            | FaultSpec::PacketLoss { at, lasting, .. }
            | FaultSpec::Dash0Errors { at, lasting, .. }
            | FaultSpec::Dash0Slow { at, lasting, .. }
            | FaultSpec::Dash0RateLimit { at, lasting, .. }
            | FaultSpec::ClockSkew { at, lasting, .. }
            | FaultSpec::Backpressure { at, lasting, .. } => Some(*at + *lasting),
            FaultSpec::Restart { at, down_for, .. } => Some(*at + *down_for),
            FaultSpec::Crash { .. } | FaultSpec::ClockStep { .. } => None,
        }
    }

    /// Every host selector the fault names, with the key it is under.
    pub fn selectors(&self) -> Vec<(&'static str, &str)> {
        match self {
            FaultSpec::LinkDrop { from, to, .. }
            | FaultSpec::LinkStall { from, to, .. }
            | FaultSpec::Latency { from, to, .. }
            | FaultSpec::PacketLoss { from, to, .. } => {
                vec![("from", from), ("to", to)]
            }
            FaultSpec::Restart { target, .. }
            | FaultSpec::Crash { target, .. }
            | FaultSpec::ClockSkew { target, .. }
            | FaultSpec::ClockStep { target, .. } => {
                vec![("target", target)]
            }
            FaultSpec::Dash0Errors { .. }
            | FaultSpec::Dash0Slow { .. }
            | FaultSpec::Dash0RateLimit { .. }
            | FaultSpec::Backpressure { .. } => Vec::new(),
        }
    }
}

impl FaultSpec {
    /// A `backpressure` fault names the field its `what` needs, with a usable value, and
    /// not the other's: `Err((key, message))` names the offending key.
    pub fn check_backpressure(&self) -> Result<(), (&'static str, String)> {
        let FaultSpec::Backpressure { what, bytes, factor, .. } = self else { return Ok(()) };
        match (what, bytes, factor) {
            (BackpressureWhat::RedisMaxmemory, Some(bytes), None) => {
                if *bytes == 0 {
                    return Err(("bytes", "redis_maxmemory bytes must be above 0 (0 would lift the limit)".into()));
                }
                Ok(())
            }
            (BackpressureWhat::JobsPerSecond, None, Some(factor)) => {
                let limit = crate::parts::app::control::RATE_FACTOR_MAX;
                if !(factor.is_finite() && *factor > 0.0 && *factor <= limit) {
                    return Err(("factor", format!("jobs_per_second factor {factor} must be above 0 and at most {limit}")));
                }
                Ok(())
            }
            (BackpressureWhat::RedisMaxmemory, _, Some(_)) => {
                Err(("factor", "what = \"redis_maxmemory\" takes `bytes`, not `factor`".into()))
            }
            (BackpressureWhat::JobsPerSecond, Some(_), _) => {
                Err(("bytes", "what = \"jobs_per_second\" takes `factor`, not `bytes`".into()))
            }
            (BackpressureWhat::RedisMaxmemory, None, None) => {
                Err(("what", "what = \"redis_maxmemory\" needs `bytes` (the shrunk maxmemory)".into()))
            }
            (BackpressureWhat::JobsPerSecond, None, None) => {
                Err(("what", "what = \"jobs_per_second\" needs `factor` (the rate multiplier)".into()))
            }
        }
    }
}

/// Resolves a host selector against the run's hosts (in their order):
/// `railway` (aggregator, redis, shipper), `machines` (every machine), `machine:<glob>` (a
/// trailing `*` matches any suffix: `machine:comfyui-*`), `devs`, or one host's name
/// (`api`, `dash0`, `dev-1`, `comfyui-3`, `railway-redis`). `None` if it names no host.
pub fn resolve(selector: &str, hosts: &[String], machines: &[String]) -> Option<Vec<String>> {
    let resolved: Vec<String> = match selector {
        "railway" => [crate::parts::hosts::AGGREGATOR, crate::parts::hosts::REDIS, crate::parts::hosts::SHIPPER]
            .iter()
            .map(|host| host.to_string())
            .collect(),
        "machines" => machines.to_vec(),
        "devs" => hosts.iter().filter(|host| host.starts_with("dev-")).cloned().collect(),
        _ => match selector.strip_prefix("machine:") {
            Some(pattern) => match pattern.strip_suffix('*') {
                Some(prefix) => machines.iter().filter(|host| host.starts_with(prefix)).cloned().collect(),
                None => machines.iter().filter(|host| *host == pattern).cloned().collect(),
            },
            None => hosts.iter().filter(|host| *host == selector).cloned().collect(),
        },
    };
    if resolved.is_empty() { None } else { Some(resolved) }
}
