//! The fault schedule: `[[fault]]` tables turned into timed actions against the world, each
//! recorded in the event log when it starts and ends, all healed before the drain unless
//! they say `heal = "never"`.
//!
//! Why a plan of actions: the injector runs between turmoil steps, outside every host, so a
//! schedule is just a sorted list of (time, fault, start|end). Sorting is stable and ties
//! end faults before starting new ones, so the same file gives the same run.
//!
//! Why an `Injector` that composes: faults on one target overlap (chaos sweeps draw them on
//! purpose). At every action the effective state of each target the changed fault touches
//! is recomputed from every fault in force (`compose.rs`, rules in README "How overlapping
//! faults compose") and only the difference is applied by the pipeline's injector, so the end of one fault never
//! undoes another that still holds.
//!
//! This module is data and pure rules: the schedule (`plan`), the composition of faults in
//! force (`compose.rs`). The pipeline applies them (`crate::pipeline::inject`).
//!
//! How each target reaches the world (`crate::pipeline::inject`): links through turmoil (partition, hold/release,
//! latency, fail rate), hosts through `Pipeline::crash` / `World::restart`, clocks through
//! each host's `Clock`, Dash0 through `Dash0Control`, and `backpressure` through shared
//! knobs the pipeline wires into its parts: `RedisControl` (a runtime `maxmemory`, as
//! `CONFIG SET` would set it), `AggregatorControl` (a runtime `total_limit_size`),
//! `AgentControl` (a runtime `mem_buf_limit` per host) and `WorkloadControl` (a multiplier
//! on the client's job rate). Each part reads its knob where it admits data, records the
//! change in the event log when it applies it, and reports the limit in force to its gauge.
//! At `duration` every fault still in force ends (except `heal = "never"`); then the drain
//! runs.
//!
//! Adding a kind touches: its variant in `spec.rs`, its arm in `FaultSpec::header` and
//! `FaultSpec::kind`, its arm in `compose::contribute` (and a `Contribution`/`Target` only if
//! it acts on something new, then `compose::fold` and `pipeline::inject::enact`), `describe`, and the chaos
//! strategy if sweeps should draw it.

mod compose;
mod spec;
mod window;

pub use compose::{ClockBend, Contribution, InForce, LinkState, Outage, State, Target, compose, contribute, healthy};
pub use spec::{
    AGENT_MEM_BUF_TARGET_DEFAULT, BackpressureWhat, Dash0Protocol, Dash0Signal, FaultEnd, FaultHeader, FaultScope,
    FaultSpec, Heal, SlowStores, resolve,
};
pub use window::FaultWindow;

use std::time::Duration;

use crate::parts::dash0::ScriptedErrors;

/// Most faults one scenario may schedule: every loop has a bound.
pub(crate) const FAULTS_LIMIT: usize = 1_000;

/// Whether an action starts or ends its fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    /// Ends sort first: a fault ending when another starts is over before the next begins.
    End,
    Start,
}

/// One timed action of the plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Action {
    pub at: Duration,
    pub fault_index: usize,
    pub(crate) phase: Phase,
}

/// The actions of `faults`, in time order; faults with no end of their own (crash, clock
/// step, a skew without `for`) end at `heal_at`, when the drain begins, unless they are
/// never healed (`heal = "never"`: no end action at all).
pub(crate) fn plan(faults: &[FaultSpec], heal_at: Duration) -> Vec<Action> {
    assert!(faults.len() <= FAULTS_LIMIT, "{} faults exceed FAULTS_LIMIT {FAULTS_LIMIT}", faults.len());
    let mut actions = Vec::with_capacity(faults.len() * 2);
    for (fault_index, fault) in faults.iter().enumerate() {
        actions.push(Action { at: fault.at(), fault_index, phase: Phase::Start });
        let end = match fault.header().end {
            FaultEnd::At(end) => Some(end.min(heal_at)),
            FaultEnd::WhenHealed(Heal::AtDrain) => Some(heal_at),
            FaultEnd::WhenHealed(Heal::Never) => None,
        };
        if let Some(at) = end {
            actions.push(Action { at, fault_index, phase: Phase::End });
        }
    }
    actions.sort_by_key(|action| (action.at, action.phase, action.fault_index));
    actions
}

/// Whether the Dash0 behaviour a fault asks for is one Dash0Control accepts.
pub(crate) fn check_dash0(fault: &FaultSpec) -> Result<(), String> {
    let control = crate::parts::dash0::Dash0Control::new();
    let result = match fault {
        FaultSpec::Dash0Errors { status, rate, retry_after, .. } => {
            control.set_errors(Some(ScriptedErrors { status: *status, rate: *rate, retry_after: *retry_after }))
        }
        FaultSpec::Dash0RateLimit { records_per_second, .. } => control.set_rate_limit(Some(*records_per_second)),
        _ => Ok(()),
    };
    result.map_err(|error| error.0)
}

/// The fault's parameters for the event log.
pub(crate) fn describe(fault: &FaultSpec) -> String {
    match fault {
        FaultSpec::LinkDrop { from, to, oneway, .. } => format!("{from} {} {to}", if *oneway { "->" } else { "<->" }),
        FaultSpec::LinkStall { from, to, .. } => format!("{from} <-> {to}"),
        FaultSpec::Latency { from, to, latency, jitter, .. } => format!(
            "{from} <-> {to} latency {} jitter {}",
            crate::units::format_duration(*latency),
            crate::units::format_duration(*jitter)
        ),
        FaultSpec::ClockStep { target, step, behind, heal, .. } => format!(
            "{target} step {}{}{}",
            if *behind { "-" } else { "+" },
            crate::units::format_duration(*step),
            if *heal == Heal::Never { " never healed" } else { "" }
        ),
        FaultSpec::PacketLoss { from, to, rate, .. } => format!("{from} <-> {to} rate {rate}"),
        FaultSpec::Restart { target, down_for, draining, .. } => format!(
            "{target} SIGTERM, SIGKILL after {}, up after {}",
            crate::units::format_duration(*draining),
            crate::units::format_duration(*down_for)
        ),
        FaultSpec::Kill { target, down_for, .. } => {
            format!("{target} SIGKILL, up after {}", crate::units::format_duration(*down_for))
        }
        FaultSpec::PowerLoss { target, down_for, .. } => {
            format!("{target} power off for {}", crate::units::format_duration(*down_for))
        }
        FaultSpec::Crash { target, .. } => target.clone(),
        FaultSpec::TlsCertExpired { .. } | FaultSpec::TlsWrongCa { .. } | FaultSpec::TlsHostnameMismatch { .. } => {
            describe_tls(fault)
        }
        FaultSpec::Dash0Errors { status, rate, retry_after, signal, protocol, .. } => {
            let mut text =
                format!("status {status} rate {rate} retry_after {:?}", retry_after.map(crate::units::format_duration));
            if let Some(signal) = signal {
                text.push_str(&format!(" signal {}", signal.as_str()));
            }
            if let Some(protocol) = protocol {
                text.push_str(&format!(" protocol {}", protocol.as_str()));
            }
            text
        }
        FaultSpec::Dash0Slow { delay, stores, .. } => format!(
            "delay {}{}",
            crate::units::format_duration(*delay),
            if *stores == SlowStores::BeforeDelay { " storing before the delay" } else { "" }
        ),
        FaultSpec::Dash0RateLimit { records_per_second, .. } => format!("{records_per_second}/s"),
        FaultSpec::ClockSkew { target, offset, behind, drift_ppm, heal, .. } => format!(
            "{target} offset {}{} drift {drift_ppm}ppm{}",
            if *behind { "-" } else { "+" },
            crate::units::format_duration(*offset),
            if *heal == Heal::Never { " never healed" } else { "" }
        ),
        FaultSpec::Backpressure { what, bytes, factor, target, .. } => {
            let on = match (what, target) {
                (_, Some(target)) => format!(" on {target}"),
                (BackpressureWhat::AgentMemBuf, None) => format!(" on {AGENT_MEM_BUF_TARGET_DEFAULT}"),
                _ => String::new(),
            };
            match (bytes, factor) {
                (Some(bytes), _) => format!("{} {bytes} bytes{on}", what.as_str()),
                (None, Some(factor)) => format!("{} x{factor}{on}", what.as_str()),
                (None, None) => format!("{}{on}", what.as_str()),
            }
        }
    }
}

/// What a `tls_*` fault serves, for the event log.
fn describe_tls(fault: &FaultSpec) -> String {
    match fault {
        FaultSpec::TlsCertExpired { at, lasting } => format!(
            "aggregator certificate expires at {}, renewed after {}",
            crate::units::format_duration(*at),
            crate::units::format_duration(*lasting)
        ),
        FaultSpec::TlsWrongCa { lasting, .. } => {
            format!("aggregator certificate from another CA for {}", crate::units::format_duration(*lasting))
        }
        FaultSpec::TlsHostnameMismatch { lasting, .. } => format!(
            "aggregator certificate for {} for {}",
            crate::world::tls::WRONG_NAME,
            crate::units::format_duration(*lasting)
        ),
        other => unreachable!("{} swaps no certificate", other.kind()),
    }
}

/// A fault as one line: kind, window, parameters.
pub(crate) fn describe_line(fault: &FaultSpec) -> String {
    let text = toml::to_string(fault).unwrap_or_default();
    let fields: Vec<String> =
        text.lines().filter(|line| !line.starts_with("kind")).map(|line| line.replace(" = ", "=")).collect();
    format!("{} {}", fault.kind(), fields.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts() -> (Vec<String>, Vec<String>) {
        let machines: Vec<String> = ["comfyui-1", "comfyui-2", "openai-1"].map(String::from).to_vec();
        let mut hosts: Vec<String> =
            ["dash0", "railway-redis", "railway-aggregator", "railway-shipper", "api"].map(String::from).to_vec();
        hosts.extend(machines.clone());
        hosts.push("dev-1".into());
        (hosts, machines)
    }

    #[test]
    fn selectors_resolve_groups_globs_and_names() {
        let (hosts, machines) = hosts();
        assert_eq!(
            resolve("railway", &hosts, &machines).unwrap(),
            ["railway-aggregator", "railway-redis", "railway-shipper"]
        );
        assert_eq!(resolve("machine:comfyui-*", &hosts, &machines).unwrap(), ["comfyui-1", "comfyui-2"]);
        assert_eq!(resolve("machines", &hosts, &machines).unwrap().len(), 3);
        assert_eq!(resolve("dev-1", &hosts, &machines).unwrap(), ["dev-1"]);
        assert_eq!(resolve("machine:simulation-*", &hosts, &machines), None);
        assert_eq!(resolve("railway-postgres", &hosts, &machines), None);
    }

    #[test]
    fn the_plan_is_time_ordered_and_ends_before_starts_at_a_tie() {
        let faults = vec![
            FaultSpec::Crash { at: Duration::from_secs(30), target: "api".into() },
            FaultSpec::Dash0Slow {
                at: Duration::from_secs(10),
                lasting: Duration::from_secs(20),
                delay: Duration::from_secs(1),
                stores: SlowStores::AfterDelay,
            },
        ];
        let plan = plan(&faults, Duration::from_secs(60));
        let shape: Vec<(u64, usize, Phase)> = plan.iter().map(|a| (a.at.as_secs(), a.fault_index, a.phase)).collect();
        assert_eq!(shape, vec![(10, 1, Phase::Start), (30, 1, Phase::End), (30, 0, Phase::Start), (60, 0, Phase::End)]);
    }
}
