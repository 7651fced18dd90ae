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
    /// Partition `from` and `to` (both ways, or `oneway` from → to): packets are dropped;
    /// connections through the link stall and retransmit, and error only if the cut outlasts
    /// their TCP budget (ARCHITECTURE.md §13).
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
    /// Restart `target` as Railway restarts or redeploys a service: SIGTERM, `draining` for
    /// the parts' own shutdown, then SIGKILL; the host and its disk live on (what a part
    /// wrote survives, synced or not). It starts again `down_for` after the SIGTERM.
    Restart {
        #[serde(with = "duration_text")]
        at: Duration,
        target: String,
        /// How long the target stays down (from the SIGTERM) before it starts again; at
        /// least `draining`.
        #[serde(with = "duration_text")]
        down_for: Duration,
        /// SIGTERM to SIGKILL (`RAILWAY_DEPLOYMENT_DRAINING_SECONDS`; default 0 s, Railway's
        /// default: FIDELITY.md "Hosts").
        #[serde(default, with = "duration_text", skip_serializing_if = "Duration::is_zero")]
        draining: Duration,
    },
    /// SIGKILL `target`'s software (an OOM kill, `kill -9`): no shutdown; the kernel closes
    /// its connections and keeps its writes. It starts again after `down_for`.
    Kill {
        #[serde(with = "duration_text")]
        at: Duration,
        target: String,
        #[serde(with = "duration_text")]
        down_for: Duration,
    },
    /// Cut `target`'s power: memory and every unsynced write are gone, its connections die
    /// without a FIN (peers stay half-open). Power and software come back after `down_for`.
    PowerLoss {
        #[serde(with = "duration_text")]
        at: Duration,
        target: String,
        #[serde(with = "duration_text")]
        down_for: Duration,
    },
    /// `target`'s software crashes (as a SIGKILL) and stays down until the faults are healed
    /// for the drain.
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
        /// Only requests carrying this signal fail (default: every signal).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        signal: Option<Dash0Signal>,
        /// Only requests over this protocol fail (default: both).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        protocol: Option<Dash0Protocol>,
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
        /// When Dash0 stores a request it answers slowly: `"after_delay"` (default: it
        /// looks at the request only after the delay, so a client that gave up first has
        /// nothing stored) or `"before_delay"` (it stores at once and answers after the
        /// delay: a client whose timeout is shorter retries a batch Dash0 already holds, and
        /// Dash0 holds it twice).
        #[serde(default, skip_serializing_if = "SlowStores::is_after_delay")]
        stores: SlowStores,
    },
    /// Dash0 admits at most `records_per_second` (429 beyond).
    Dash0RateLimit {
        #[serde(with = "duration_text")]
        at: Duration,
        #[serde(rename = "for", with = "duration_text")]
        lasting: Duration,
        /// Records admitted per second; beyond it requests get 429. 1 to 10^9.
        #[schemars(range(min = 1, max = 1_000_000_000))]
        records_per_second: u64,
    },
    /// Jump `target`'s clock by `step` at once (an NTP step, a VM resume); it stays stepped
    /// until the faults are healed for the drain (or for good with `heal = "never"`).
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
        /// `"at_drain"` (default): straightened when the drain begins; `"never"`: the clock
        /// stays stepped through the drain and is judged still wrong.
        #[serde(default, skip_serializing_if = "Heal::is_at_drain")]
        heal: Heal,
    },
    /// Bend `target`'s clock: an `offset` (signed, e.g. "-7h" is written `offset = "7h"`,
    /// `behind = true`), a `drift_ppm`, or both, for a while (`for`), or without `for` until
    /// the drain heals it (or for good with `heal = "never"`).
    ClockSkew {
        #[serde(with = "duration_text")]
        at: Duration,
        /// How long the skew lasts; without it, until it is healed (see `heal`).
        #[schemars(with = "Option<crate::units::duration_text>")]
        #[serde(rename = "for", default, with = "option_duration_text", skip_serializing_if = "Option::is_none")]
        lasting: Option<Duration>,
        target: String,
        /// How far the clock is off true time (default none).
        #[serde(default, with = "duration_text")]
        offset: Duration,
        /// The offset puts the clock behind true time (else ahead).
        #[serde(default)]
        behind: bool,
        /// Clock rate error in parts per million (default none), -100000 to 100000 (real
        /// oscillators stay within ±500 ppm; beyond ±10 % the clock would barely be one).
        #[schemars(range(min = -100_000.0, max = 100_000.0))]
        #[serde(default)]
        drift_ppm: f64,
        /// `"at_drain"` (default): a skew without `for` is straightened when the drain
        /// begins; `"never"`: it holds through the drain (takes no `for`).
        #[serde(default, skip_serializing_if = "Heal::is_at_drain")]
        heal: Heal,
    },
    /// Squeeze the pipeline for a while, then restore it:
    /// - `what = "redis_maxmemory"`: Redis's `maxmemory` becomes `bytes` (as `CONFIG SET
    ///   maxmemory` would; noeviction refuses writes above it);
    /// - `what = "aggregator_buffer"`: Fluentd's `total_limit_size` becomes `bytes`; what it
    ///   already buffers stays, new writes meet `overflow_action` while it is not `storable?`;
    /// - `what = "agent_mem_buf"`: the `mem_buf_limit` of the agents on `target` (a host
    ///   selector naming hosts that run an agent: machines and `api`; default `machines`)
    ///   becomes `bytes`; their inputs pause while the buffer is at or over it (memory
    ///   storage only, as in Fluent Bit);
    /// - `what = "jobs_per_second"`: the client's job rate is multiplied by `factor` (a load
    ///   burst).
    ///
    /// Each `what` takes exactly its own fields and refuses the others'.
    Backpressure {
        #[serde(with = "duration_text")]
        at: Duration,
        #[serde(rename = "for", with = "duration_text")]
        lasting: Duration,
        /// What is squeezed.
        what: BackpressureWhat,
        /// `redis_maxmemory`, `aggregator_buffer`, `agent_mem_buf`: the shrunk limit, bytes
        /// (1 to 2^40).
        #[schemars(range(min = 1, max = crate::units::BYTES_LIMIT_MAX))]
        #[serde(default, skip_serializing_if = "Option::is_none")]
        bytes: Option<u64>,
        /// `jobs_per_second`: the job-rate multiplier, above 0 and at most 1000.
        #[schemars(range(min = 0.000001, max = crate::parts::app::control::RATE_FACTOR_MAX))]
        #[serde(default, skip_serializing_if = "Option::is_none")]
        factor: Option<f64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        target: Option<String>,
    },
    /// The aggregator's TLS certificate (`[aggregator] tls`) becomes one whose `not_after` is
    /// `at`: handshakes after that moment fail on every agent whose clock is past it (the
    /// certificate "expired"); at the end a renewed certificate is served. Connections made
    /// before keep going (TLS checks a certificate at the handshake only).
    TlsCertExpired {
        #[serde(with = "duration_text")]
        at: Duration,
        #[serde(rename = "for", with = "duration_text")]
        lasting: Duration,
    },
    /// The aggregator serves a certificate for its name from a CA the agents do not trust
    /// (a redeploy with the wrong bundle), then the right one again.
    TlsWrongCa {
        #[serde(with = "duration_text")]
        at: Duration,
        #[serde(rename = "for", with = "duration_text")]
        lasting: Duration,
    },
    /// The aggregator serves a certificate of the right CA for another name; only agents with
    /// `tls_verify_hostname` (off by default, as in Fluent Bit) refuse it.
    TlsHostnameMismatch {
        #[serde(with = "duration_text")]
        at: Duration,
        #[serde(rename = "for", with = "duration_text")]
        lasting: Duration,
    },
}

/// What a `backpressure` fault squeezes.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum BackpressureWhat {
    /// Redis `maxmemory` (field `bytes`).
    RedisMaxmemory,
    /// The aggregator's (Fluentd's) buffer `total_limit_size` (field `bytes`).
    AggregatorBuffer,
    /// The agents' (Fluent Bit's) `mem_buf_limit` (field `bytes`; `target`, default
    /// `machines`).
    AgentMemBuf,
    /// The client's `jobs_per_second` (field `factor`).
    JobsPerSecond,
}

/// The hosts an `agent_mem_buf` fault squeezes when it names no `target`.
pub const AGENT_MEM_BUF_TARGET_DEFAULT: &str = "machines";

impl BackpressureWhat {
    /// As scenarios spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            BackpressureWhat::RedisMaxmemory => "redis_maxmemory",
            BackpressureWhat::AggregatorBuffer => "aggregator_buffer",
            BackpressureWhat::AgentMemBuf => "agent_mem_buf",
            BackpressureWhat::JobsPerSecond => "jobs_per_second",
        }
    }

    /// Whether it takes `bytes` (else `factor`), and what the bytes are, for messages.
    fn bytes_meaning(self) -> Option<&'static str> {
        match self {
            BackpressureWhat::RedisMaxmemory => Some("the shrunk maxmemory"),
            BackpressureWhat::AggregatorBuffer => Some("the shrunk total_limit_size"),
            BackpressureWhat::AgentMemBuf => Some("the shrunk mem_buf_limit"),
            BackpressureWhat::JobsPerSecond => None,
        }
    }
}

/// Whether a fault that lasts until healed is healed when the drain begins.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Heal {
    /// Healed with every other fault when the drain begins (the default).
    #[default]
    AtDrain,
    /// Never healed: it holds through the drain, and the run is judged with it in force.
    Never,
}

impl Heal {
    /// For `skip_serializing_if`: the default is not written out.
    pub(crate) fn is_at_drain(&self) -> bool {
        *self == Heal::AtDrain
    }
}

/// Which signal a scoped `dash0_errors` fault hits.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq, PartialOrd, Ord, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Dash0Signal {
    /// OTLP logs (the shipper's exports).
    Logs,
    /// OTLP traces (the collectors' span exports).
    Spans,
    /// OTLP metrics (the collectors' metric exports).
    Metrics,
}

impl Dash0Signal {
    /// As scenarios spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Dash0Signal::Logs => "logs",
            Dash0Signal::Spans => "spans",
            Dash0Signal::Metrics => "metrics",
        }
    }
}

/// Which OTLP protocol a scoped `dash0_errors` fault hits.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq, PartialOrd, Ord, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Dash0Protocol {
    /// OTLP/HTTP on :4318 (the shipper's logs).
    Http,
    /// OTLP/gRPC on :4317 (the collectors' spans and metrics).
    Grpc,
}

impl Dash0Protocol {
    /// As scenarios spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Dash0Protocol::Http => "http",
            Dash0Protocol::Grpc => "grpc",
        }
    }
}

/// When a slow Dash0 stores what it answers late.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq, PartialOrd, Ord, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SlowStores {
    /// After the delay, just before answering (a client that gave up has nothing stored).
    #[default]
    AfterDelay,
    /// At once, then answers after the delay (a client that gave up retries a stored batch).
    BeforeDelay,
}

impl SlowStores {
    /// For `skip_serializing_if`: the default is not written out.
    pub(crate) fn is_after_delay(&self) -> bool {
        *self == SlowStores::AfterDelay
    }
}

fn rate_all() -> f64 {
    1.0
}

/// `Option<Duration>` as optional duration text.
mod option_duration_text {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(value: &Option<Duration>, serializer: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(duration) => serializer.serialize_str(&crate::units::format_duration(*duration)),
            None => serializer.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Duration>, D::Error> {
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
            FaultSpec::Kill { .. } => "kill",
            FaultSpec::PowerLoss { .. } => "power_loss",
            FaultSpec::Crash { .. } => "crash",
            FaultSpec::Dash0Errors { .. } => "dash0_errors",
            FaultSpec::Dash0Slow { .. } => "dash0_slow",
            FaultSpec::Dash0RateLimit { .. } => "dash0_rate_limit",
            FaultSpec::ClockSkew { .. } => "clock_skew",
            FaultSpec::Backpressure { .. } => "backpressure",
            FaultSpec::TlsCertExpired { .. } => "tls_cert_expired",
            FaultSpec::TlsWrongCa { .. } => "tls_wrong_ca",
            FaultSpec::TlsHostnameMismatch { .. } => "tls_hostname_mismatch",
        }
    }

    /// The fault's start and, for kinds that last a while, its length, to move or shorten:
    /// chaos strategies and shrinking edit a window through this one place, so a new kind
    /// is one arm here, not one in each of them.
    pub(crate) fn window_mut(&mut self) -> (&mut Duration, Option<&mut Duration>) {
        match self {
            FaultSpec::LinkDrop { at, lasting, .. }
            | FaultSpec::LinkStall { at, lasting, .. }
            | FaultSpec::Latency { at, lasting, .. }
            | FaultSpec::PacketLoss { at, lasting, .. }
            | FaultSpec::Dash0Errors { at, lasting, .. }
            | FaultSpec::Dash0Slow { at, lasting, .. }
            | FaultSpec::Dash0RateLimit { at, lasting, .. }
            | FaultSpec::Backpressure { at, lasting, .. }
            | FaultSpec::TlsCertExpired { at, lasting }
            | FaultSpec::TlsWrongCa { at, lasting }
            | FaultSpec::TlsHostnameMismatch { at, lasting }
            | FaultSpec::Restart { at, down_for: lasting, .. }
            | FaultSpec::Kill { at, down_for: lasting, .. }
            | FaultSpec::PowerLoss { at, down_for: lasting, .. } => (at, Some(lasting)),
            FaultSpec::ClockSkew { at, lasting, .. } => (at, lasting.as_mut()),
            FaultSpec::Crash { at, .. } | FaultSpec::ClockStep { at, .. } => (at, None),
        }
    }

    /// The part every kind shares: when it starts, when it ends, what it acts on. Adding a
    /// kind adds one arm here (and its payload's arm in `compose`); `at`, `end`, `heal` and
    /// `selectors` follow from it.
    pub fn header(&self) -> FaultHeader<'_> {
        let timed = |at: Duration, lasting: Duration| (at, FaultEnd::At(at + lasting));
        let (at, end) = match self {
            FaultSpec::LinkDrop { at, lasting, .. }
            | FaultSpec::LinkStall { at, lasting, .. }
            | FaultSpec::Latency { at, lasting, .. }
            | FaultSpec::PacketLoss { at, lasting, .. }
            | FaultSpec::Dash0Errors { at, lasting, .. }
            | FaultSpec::Dash0Slow { at, lasting, .. }
            | FaultSpec::Dash0RateLimit { at, lasting, .. }
            | FaultSpec::Backpressure { at, lasting, .. }
            | FaultSpec::TlsCertExpired { at, lasting }
            | FaultSpec::TlsWrongCa { at, lasting }
            | FaultSpec::TlsHostnameMismatch { at, lasting } => timed(*at, *lasting),
            FaultSpec::Restart { at, down_for, .. }
            | FaultSpec::Kill { at, down_for, .. }
            | FaultSpec::PowerLoss { at, down_for, .. } => timed(*at, *down_for),
            FaultSpec::ClockSkew { at, lasting: Some(lasting), .. } => timed(*at, *lasting),
            FaultSpec::ClockSkew { at, lasting: None, heal, .. } | FaultSpec::ClockStep { at, heal, .. } => {
                (*at, FaultEnd::WhenHealed(*heal))
            }
            FaultSpec::Crash { at, .. } => (*at, FaultEnd::WhenHealed(Heal::AtDrain)),
        };
        let scope = match self {
            FaultSpec::LinkDrop { from, to, oneway, .. } => FaultScope::Link { from, to, oneway: *oneway },
            FaultSpec::LinkStall { from, to, .. }
            | FaultSpec::Latency { from, to, .. }
            | FaultSpec::PacketLoss { from, to, .. } => FaultScope::Link { from, to, oneway: false },
            FaultSpec::Restart { target, .. }
            | FaultSpec::Kill { target, .. }
            | FaultSpec::PowerLoss { target, .. }
            | FaultSpec::Crash { target, .. }
            | FaultSpec::ClockSkew { target, .. }
            | FaultSpec::ClockStep { target, .. } => FaultScope::Hosts(target),
            FaultSpec::Dash0Errors { .. } | FaultSpec::Dash0Slow { .. } | FaultSpec::Dash0RateLimit { .. } => {
                FaultScope::Dash0
            }
            FaultSpec::Backpressure { target, .. } => FaultScope::Pipeline { target: target.as_deref() },
            FaultSpec::TlsCertExpired { .. } | FaultSpec::TlsWrongCa { .. } | FaultSpec::TlsHostnameMismatch { .. } => {
                FaultScope::Pipeline { target: None }
            }
        };
        FaultHeader { at, end, scope }
    }

    /// When the fault starts.
    pub fn at(&self) -> Duration {
        self.header().at
    }

    /// When the fault ends, if it ends by itself (a crash lasts until the drain heals it).
    pub fn end(&self) -> Option<Duration> {
        match self.header().end {
            FaultEnd::At(end) => Some(end),
            FaultEnd::WhenHealed(_) => None,
        }
    }

    /// Whether the drain heals the fault (if it is still in force then).
    pub fn heal(&self) -> Heal {
        match self.header().end {
            FaultEnd::At(_) => Heal::AtDrain,
            FaultEnd::WhenHealed(heal) => heal,
        }
    }

    /// Every host selector the fault names, with the key it is under.
    pub(crate) fn selectors(&self) -> Vec<(&'static str, &str)> {
        match self.header().scope {
            FaultScope::Link { from, to, .. } => vec![("from", from), ("to", to)],
            FaultScope::Hosts(target) | FaultScope::Pipeline { target: Some(target) } => vec![("target", target)],
            FaultScope::Dash0 | FaultScope::Pipeline { target: None } => Vec::new(),
        }
    }

    /// `heal = "never"` goes with a fault that lasts until healed: a `clock_skew` with
    /// `for` ends by itself, so `heal` would mean nothing. A restart's SIGKILL comes before
    /// its start again. `Err((key, message))`.
    pub(crate) fn check_heal(&self) -> Result<(), (&'static str, String)> {
        match self {
            FaultSpec::Restart { down_for, draining, .. } if draining > down_for => Err((
                "draining",
                format!(
                    "draining {} is longer than down_for {}: the SIGKILL must come before the restart",
                    crate::units::format_duration(*draining),
                    crate::units::format_duration(*down_for)
                ),
            )),
            FaultSpec::ClockSkew { lasting: Some(_), heal: Heal::Never, .. } => Err((
                "heal",
                "heal = \"never\" needs a clock_skew without `for` (one with `for` ends by itself)".into(),
            )),
            _ => Ok(()),
        }
    }
}

/// What every fault has, whatever its kind.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FaultHeader<'a> {
    /// When it starts.
    pub at: Duration,
    /// When it ends.
    pub end: FaultEnd,
    /// What it acts on.
    pub scope: FaultScope<'a>,
}

/// When a fault ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultEnd {
    /// By itself at this time (`at` + `for` / `down_for`).
    At(Duration),
    /// When it is healed: at the drain, or never.
    WhenHealed(Heal),
}

/// What a fault acts on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultScope<'a> {
    /// The links between every host of `from` and every host of `to` (one way if `oneway`).
    Link { from: &'a str, to: &'a str, oneway: bool },
    /// The hosts a selector names (restart, crash, clocks).
    Hosts(&'a str),
    /// Dash0's behaviour.
    Dash0,
    /// A buffer limit or the job rate (`backpressure`; agent limits per `target` host), or
    /// the aggregator's TLS certificate (`tls_*`).
    Pipeline { target: Option<&'a str> },
}

impl FaultSpec {
    /// Whether it acts on the aggregator's TLS certificate (`tls_*` kinds).
    pub fn is_tls(&self) -> bool {
        matches!(
            self,
            FaultSpec::TlsCertExpired { .. } | FaultSpec::TlsWrongCa { .. } | FaultSpec::TlsHostnameMismatch { .. }
        )
    }

    /// A `tls_*` fault needs Forward over TLS: with `[aggregator] tls` off there is no
    /// certificate to swap. `Err((key, message))`.
    pub(crate) fn check_tls(&self, aggregator_tls: bool) -> Result<(), (&'static str, String)> {
        if self.is_tls() && !aggregator_tls {
            return Err((
                "kind",
                format!(
                    "a {} fault swaps the aggregator's TLS certificate, but [aggregator] tls is off (set tls = true in [aggregator] and [agent])",
                    self.kind()
                ),
            ));
        }
        Ok(())
    }

    /// A `backpressure` fault names exactly the fields its `what` takes, with usable values:
    /// `Err((key, message))` names the offending key.
    pub(crate) fn check_backpressure(&self) -> Result<(), (&'static str, String)> {
        let FaultSpec::Backpressure { what, bytes, factor, target, .. } = self else { return Ok(()) };
        let name = what.as_str();
        if target.is_some() && *what != BackpressureWhat::AgentMemBuf {
            return Err((
                "target",
                format!("what = \"{name}\" takes no `target` (only agent_mem_buf does: the hosts whose agents shrink)"),
            ));
        }
        match what.bytes_meaning() {
            Some(meaning) => {
                if factor.is_some() {
                    return Err(("factor", format!("what = \"{name}\" takes `bytes`, not `factor`")));
                }
                match bytes {
                    None => Err(("what", format!("what = \"{name}\" needs `bytes` ({meaning})"))),
                    Some(0) if *what == BackpressureWhat::RedisMaxmemory => {
                        Err(("bytes", "redis_maxmemory bytes must be above 0 (0 would lift the limit)".into()))
                    }
                    Some(0) => {
                        Err(("bytes", format!("{name} bytes must be above 0 (a limit of 0 would refuse everything)")))
                    }
                    Some(_) => Ok(()),
                }
            }
            None => {
                if bytes.is_some() {
                    return Err(("bytes", format!("what = \"{name}\" takes `factor`, not `bytes`")));
                }
                let Some(factor) = factor else {
                    return Err(("what", format!("what = \"{name}\" needs `factor` (the rate multiplier)")));
                };
                let limit = crate::parts::app::control::RATE_FACTOR_MAX;
                if !(factor.is_finite() && *factor > 0.0 && *factor <= limit) {
                    return Err(("factor", format!("{name} factor {factor} must be above 0 and at most {limit}")));
                }
                Ok(())
            }
        }
    }

    /// A `backpressure` fault on agents can act in this topology: its `target` (default
    /// `machines`) names only hosts that run an agent (machines and the API host), and the
    /// agents buffer in memory (Fluent Bit applies `mem_buf_limit` to memory storage only).
    /// `hosts` and `machines` are the run's hosts; `Err((key, message))` names the key.
    pub(crate) fn check_backpressure_targets(
        &self,
        hosts: &[String],
        machines: &[String],
        agent_storage: crate::parts::agent::StorageType,
    ) -> Result<(), (&'static str, String)> {
        let FaultSpec::Backpressure { what: BackpressureWhat::AgentMemBuf, target, .. } = self else { return Ok(()) };
        if agent_storage != crate::parts::agent::StorageType::Memory {
            return Err((
                "what",
                "agent_mem_buf shrinks mem_buf_limit, which Fluent Bit applies to memory storage only; [agent] storage is filesystem".into(),
            ));
        }
        let selector = target.as_deref().unwrap_or(AGENT_MEM_BUF_TARGET_DEFAULT);
        let resolved = resolve(selector, hosts, machines).unwrap_or_default();
        let without_agent: Vec<&String> = resolved
            .iter()
            .filter(|host| host.as_str() != crate::vocab::hosts::API && !machines.contains(host))
            .collect();
        if let Some(host) = without_agent.first() {
            return Err((
                "target",
                format!("{selector:?} names {host}, which runs no agent (agents run on the machines and on api)"),
            ));
        }
        Ok(())
    }
}

/// Resolves a host selector against the run's hosts (in their order):
/// `railway` (aggregator, redis, shipper), `machines` (every machine), `machine:<glob>` (a
/// trailing `*` matches any suffix: `machine:comfyui-*`), `devs`, or one host's name
/// (`api`, `dash0`, `dev-1`, `comfyui-3`, `railway-redis`). `None` if it names no host.
pub fn resolve(selector: &str, hosts: &[String], machines: &[String]) -> Option<Vec<String>> {
    let resolved: Vec<String> = match selector {
        "railway" => [crate::vocab::hosts::AGGREGATOR, crate::vocab::hosts::REDIS, crate::vocab::hosts::SHIPPER]
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
