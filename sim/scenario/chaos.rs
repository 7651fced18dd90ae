//! A scenario's `[chaos]` table: which random faults a sweep may throw at this config, and
//! what must still hold under them.
//!
//! A `[chaos]` table is the author's claim that this config survives every fault of
//! `kinds`, within the ranges below, without losing a record outside `allow_loss`. A file
//! without one is still swept, with a table derived from its own config
//! (`crate::chaos::derive`: only the kinds the config survives without loss, the causes
//! its `[expect]` accepts); `skip = "reason"` opts a file out of sweeps, saying why.
//!
//! The ranges are what a correct pipeline must survive: retryable Dash0 statuses only
//! (429, 502, 503, 504), clock skews of minutes (inside Dash0's timestamp window), faults of
//! at most `fault_for_max`. Loss-by-design faults (hours of skew, a 400) belong in
//! hand-written scenarios that assert their cause.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::units::duration_text;

/// Most faults one drawn schedule may hold: keeps a run, and its shrinking, short.
pub(crate) const CHAOS_FAULTS_LIMIT: u32 = 32;

/// The fault kinds a sweep may draw, as `[[fault]]` spells them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChaosKind {
    LinkDrop,
    LinkStall,
    Latency,
    PacketLoss,
    Restart,
    Crash,
    Dash0Errors,
    Dash0Slow,
    Dash0RateLimit,
    ClockSkew,
    ClockStep,
    Backpressure,
    Kill,
    PowerLoss,
}

impl ChaosKind {
    /// Every kind, in declaration order.
    pub const ALL: [ChaosKind; 14] = [
        ChaosKind::LinkDrop,
        ChaosKind::LinkStall,
        ChaosKind::Latency,
        ChaosKind::PacketLoss,
        ChaosKind::Restart,
        ChaosKind::Crash,
        ChaosKind::Dash0Errors,
        ChaosKind::Dash0Slow,
        ChaosKind::Dash0RateLimit,
        ChaosKind::ClockSkew,
        ChaosKind::ClockStep,
        ChaosKind::Backpressure,
        ChaosKind::Kill,
        ChaosKind::PowerLoss,
    ];

    /// As `[[fault]] kind` spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            ChaosKind::LinkDrop => "link_drop",
            ChaosKind::LinkStall => "link_stall",
            ChaosKind::Latency => "latency",
            ChaosKind::PacketLoss => "packet_loss",
            ChaosKind::Restart => "restart",
            ChaosKind::Crash => "crash",
            ChaosKind::Dash0Errors => "dash0_errors",
            ChaosKind::Dash0Slow => "dash0_slow",
            ChaosKind::Dash0RateLimit => "dash0_rate_limit",
            ChaosKind::ClockSkew => "clock_skew",
            ChaosKind::ClockStep => "clock_step",
            ChaosKind::Backpressure => "backpressure",
            ChaosKind::Kill => "kill",
            ChaosKind::PowerLoss => "power_loss",
        }
    }
}

/// `[chaos]`: how a sweep perturbs this scenario and judges it.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ChaosConfig {
    /// Fault kinds the sweep may draw (swarm testing: each seed switches a random subset
    /// of these on). Default: every kind.
    pub kinds: Vec<ChaosKind>,
    /// Most faults in one drawn schedule (at least one is always drawn). Default 4.
    #[schemars(range(min = 1, max = CHAOS_FAULTS_LIMIT))]
    pub faults_max: u32,
    /// Longest a drawn fault lasts (`for`, or `down_for` of a restart). Default 2m.
    #[serde(with = "duration_text")]
    pub fault_for_max: Duration,
    /// The drain of a chaos run, faults healed. Absent (the default): derived from each
    /// drawn schedule (`crate::chaos::drain`: the parts' longest backoff and timeouts after
    /// the last fault ends, plus the backlog the faults built), between `drain_min` and
    /// `drain_max`. Given, it wins.
    #[schemars(with = "Option<crate::units::duration_text>")]
    #[serde(with = "super::option_duration", skip_serializing_if = "Option::is_none")]
    pub drain: Option<Duration>,
    /// Shortest derived drain (a floor under the estimate). Default 2m.
    #[serde(with = "duration_text")]
    pub drain_min: Duration,
    /// Longest derived drain (a cap on the estimate). Default 30m.
    #[serde(with = "duration_text")]
    pub drain_max: Duration,
    /// Opts this file out of sweeps: the reason (not empty), listed by `obsim chaos`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skip: Option<String>,
    /// Loss causes acceptable under the sweep (any number of records); a name that is not a
    /// loss cause is refused at load. Default none.
    pub allow_loss: Vec<crate::vocab::LossCause>,
    /// Duplicated / delivered records allowed: at-least-once hops redeliver after a crash
    /// or a lost acknowledgement. Default 0.05.
    #[schemars(range(min = 0.0, max = 1.0))]
    pub max_duplicate_ratio: f64,
    /// Accepted jobs that may stay unfinished after the drain. Default 0.
    pub max_jobs_unfinished: u64,
}

impl Default for ChaosConfig {
    fn default() -> Self {
        ChaosConfig {
            kinds: ChaosKind::ALL.to_vec(),
            faults_max: 4,
            fault_for_max: Duration::from_secs(120),
            drain: None,
            drain_min: Duration::from_secs(2 * 60),
            drain_max: Duration::from_secs(30 * 60),
            skip: None,
            allow_loss: Vec::new(),
            max_duplicate_ratio: 0.05,
            max_jobs_unfinished: 0,
        }
    }
}

impl ChaosConfig {
    /// Rules serde cannot express; the message names the key.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.kinds.is_empty() {
            return Err(("kinds", "a sweep needs at least one fault kind".into()));
        }
        if self.faults_max == 0 || self.faults_max > CHAOS_FAULTS_LIMIT {
            return Err(("faults_max", format!("{} must be 1..={CHAOS_FAULTS_LIMIT}", self.faults_max)));
        }
        if self.fault_for_max < Duration::from_secs(1) {
            return Err(("fault_for_max", "must be at least 1s".into()));
        }
        if !(0.0..=1.0).contains(&self.max_duplicate_ratio) {
            return Err(("max_duplicate_ratio", format!("{} must be between 0 and 1", self.max_duplicate_ratio)));
        }
        if self.drain_min > self.drain_max {
            return Err(("drain_min", "must not exceed drain_max".into()));
        }
        if self.skip.as_ref().is_some_and(|reason| reason.trim().is_empty()) {
            return Err(("skip", "opting out of sweeps needs a reason: skip = \"why this file is not swept\"".into()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_is_spelt_as_the_fault_table_spells_it() {
        for kind in ChaosKind::ALL {
            let text = toml::to_string(&ChaosConfig { kinds: vec![kind], ..ChaosConfig::default() }).unwrap();
            assert!(text.contains(&format!("\"{}\"", kind.as_str())), "{text}");
        }
    }

    #[test]
    fn defaults_and_unknown_keys() {
        let config: ChaosConfig = toml::from_str("faults_max = 2").unwrap();
        assert_eq!(config.faults_max, 2);
        assert_eq!(config.kinds.len(), ChaosKind::ALL.len());
        assert!(toml::from_str::<ChaosConfig>("fault_max = 2").is_err());
        assert_eq!(ChaosConfig { faults_max: 0, ..ChaosConfig::default() }.validate().unwrap_err().0, "faults_max");
        assert_eq!(config.drain, None, "derived unless given");
    }

    #[test]
    fn an_opt_out_needs_a_reason() {
        let config: ChaosConfig = toml::from_str("skip = \"  \"").unwrap();
        assert_eq!(config.validate().unwrap_err().0, "skip");
        let config: ChaosConfig = toml::from_str("skip = \"its truth is the fault it states\"").unwrap();
        assert!(config.validate().is_ok());
        let config: ChaosConfig = toml::from_str("drain_min = \"5m\"\ndrain_max = \"1m\"").unwrap();
        assert_eq!(config.validate().unwrap_err().0, "drain_min");
    }
}
