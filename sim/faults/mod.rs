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
//! faults compose") and only the difference is applied, so the end of one fault never
//! undoes another that still holds.
//!
//! How each target reaches the world: links through turmoil (partition, hold/release,
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
//! it acts on something new, then `compose::fold` and `enact`), `describe`, and the chaos
//! strategy if sweeps should draw it.

mod compose;
mod spec;

pub use compose::{ClockBend, Contribution, InForce, LinkState, State, Target, compose, contribute, healthy};
pub use spec::{
    AGENT_MEM_BUF_TARGET_DEFAULT, BackpressureWhat, Dash0Protocol, Dash0Signal, FaultEnd, FaultHeader, FaultScope,
    FaultSpec, Heal, SlowStores, resolve,
};

use std::collections::BTreeMap;
use std::time::Duration;

use crate::parts::dash0::ScriptedErrors;
use crate::pipeline::Pipeline;

/// Most faults one scenario may schedule: every loop has a bound.
pub const FAULTS_LIMIT: usize = 1_000;

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
    pub phase: Phase,
}

/// The actions of `faults`, in time order; faults with no end of their own (crash, clock
/// step, a skew without `for`) end at `heal_at`, when the drain begins, unless they are
/// never healed (`heal = "never"`: no end action at all).
pub fn plan(faults: &[FaultSpec], heal_at: Duration) -> Vec<Action> {
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

/// Hosts a selector names in this pipeline (validated at load, so it names at least one).
fn hosts_of(pipeline: &Pipeline, selector: &str) -> Vec<String> {
    let hosts: Vec<String> = pipeline.world.host_names().map(|name| name.to_string()).collect();
    let machines: Vec<String> =
        pipeline.scenario.machine_hosts().into_iter().map(|(id, _)| id.as_str().to_string()).collect();
    resolve(selector, &hosts, &machines).unwrap_or_default()
}

/// The faults in force and the state last applied to each target they touch.
///
/// Why: the world is changed only by the difference between a target's old and new
/// effective state, computed from every fault in force (`compose`), so a fault's end never
/// undoes what another fault still asks for.
#[derive(Debug, Default)]
pub struct Injector {
    /// Per fault in force (by schedule index): its schedule order, true start, and what it
    /// contributes to each target, in the order its hosts resolve.
    in_force: BTreeMap<usize, FaultInForce>,
    /// The state last applied per target; absent means healthy.
    applied: BTreeMap<Target, State>,
}

/// One fault in force.
#[derive(Debug)]
struct FaultInForce {
    order: (Duration, usize),
    started: Duration,
    contributions: Vec<(Target, Contribution)>,
}

impl Injector {
    /// Whether fault `index` is in force now (for tests and the drain's event).
    pub fn in_force(&self, index: usize) -> bool {
        self.in_force.contains_key(&index)
    }

    /// The state last applied to `target` (healthy if none).
    pub fn applied(&self, target: &Target) -> State {
        self.applied.get(target).cloned().unwrap_or_else(|| healthy(target))
    }

    /// The faults in force on `target`.
    fn on(&self, target: &Target) -> Vec<InForce<'_>> {
        let mut found = Vec::new();
        for fault in self.in_force.values() {
            for (touched, contribution) in &fault.contributions {
                if touched == target {
                    found.push(InForce { order: fault.order, started: fault.started, contribution });
                }
            }
        }
        found
    }
}

/// Applies one phase of fault `index` of `faults` to the pipeline and records it: the
/// effective state of every target the fault touches is recomputed from all faults in
/// force, and only the difference reaches the world. Where other faults also hold the
/// target, the event log records its effective state (`fault.compose`), so it never claims
/// a link is up while another fault holds it down.
pub fn apply(pipeline: &mut Pipeline, faults: &[FaultSpec], index: usize, phase: Phase) {
    let fault = &faults[index];
    let now = pipeline.world.elapsed();
    let event = match phase {
        Phase::Start => "fault.start",
        Phase::End => "fault.end",
    };
    pipeline.world.record(event, format!("{} {}", fault.kind(), describe(fault)));
    let mut injector = std::mem::take(&mut pipeline.injector);
    let touched: Vec<Target> = match phase {
        Phase::Start => {
            let contributions = contribute(fault, &|selector| hosts_of(pipeline, selector));
            let touched = contributions.iter().map(|(target, _)| target.clone()).collect();
            let entry = FaultInForce { order: (fault.at(), index), started: now, contributions };
            assert!(injector.in_force.insert(index, entry).is_none(), "fault[{index}] started twice");
            touched
        }
        Phase::End => {
            let Some(ended) = injector.in_force.remove(&index) else {
                unreachable!("fault[{index}] ended without having started");
            };
            ended.contributions.into_iter().map(|(target, _)| target).collect()
        }
    };
    let factor_max = crate::parts::app::control::RATE_FACTOR_MAX;
    for target in touched {
        let in_force = injector.on(&target);
        let new = compose(&target, &in_force, now, factor_max);
        let others = in_force.len() - usize::from(phase == Phase::Start);
        let old = injector.applied(&target);
        enact(pipeline, &target, &old, &new, now);
        if others > 0 {
            pipeline.world.record("fault.compose", format!("{target}: {new} ({others} other fault(s) in force)"));
        }
        if new == healthy(&target) {
            injector.applied.remove(&target);
        } else {
            injector.applied.insert(target, new);
        }
    }
    pipeline.injector = injector;
}

/// Changes the world from `old` to `new` for one target, touching only what differs.
fn enact(pipeline: &mut Pipeline, target: &Target, old: &State, new: &State, now: Duration) {
    match (target, old, new) {
        (Target::Link { a, b }, State::Link(old), State::Link(new)) => enact_link(pipeline, a, b, old, new),
        (Target::Host(host), State::Down(was), State::Down(down)) => match (was, down) {
            (false, true) => pipeline.crash(host),
            (true, false) => pipeline.world.restart(host),
            _ => {}
        },
        // A clock is re-bent whenever its faults change: a skew's bend moves with time.
        (Target::Clock(host), _, State::Clock(bend)) => {
            let Some(clock) = pipeline.world.clock(host) else { return };
            match bend {
                None => clock.reset(now),
                Some(bend) => clock.bend(now, bend.offset_nanos, bend.drift_ppm),
            }
        }
        _ if old == new => {}
        (Target::Dash0Errors, _, State::Errors(scripts)) => {
            pipeline.dash0_control.set_error_scripts(scripts.clone()).expect("validated at load");
        }
        (Target::Dash0Slow, _, State::Slow(slow)) => pipeline.dash0_control.set_slowness(*slow),
        (Target::Dash0RateLimit, _, State::RateLimit(limit)) => {
            pipeline.dash0_control.set_rate_limit(*limit).expect("validated at load");
        }
        (Target::RedisMaxmemory, _, State::Limit(bytes)) => pipeline.redis_control.set_maxmemory_bytes(*bytes),
        (Target::AggregatorBuffer, _, State::Limit(bytes)) => pipeline.aggregator_control.set_total_bytes_limit(*bytes),
        (Target::AgentMemBuf(host), _, State::Limit(bytes)) => {
            pipeline.agent_control.set_mem_buf_bytes_limit(host, *bytes)
        }
        (Target::JobRate, _, State::Factor(factor)) => {
            pipeline.workload_control.set_rate_factor(*factor).expect("factors capped at RATE_FACTOR_MAX");
        }
        (target, old, new) => unreachable!("{target}: no transition from {old:?} to {new:?}"),
    }
}

/// One direction of a link as turmoil sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Way {
    Open,
    Held,
    Down,
}

/// Both directions (a → b, b → a) of a link: a drop beats a stall.
fn ways(link: &LinkState) -> (Way, Way) {
    let way = |down: bool| match (down, link.held) {
        (true, _) => Way::Down,
        (false, true) => Way::Held,
        (false, false) => Way::Open,
    };
    (way(link.down_ab), way(link.down_ba))
}

/// Moves the link a ↔ b from `old` to `new` with turmoil's operations. Turmoil's `hold`
/// and `release`/`repair` act on both directions, so a mixed state is reached by holding
/// (or opening) both and then partitioning the direction that is down.
fn enact_link(pipeline: &mut Pipeline, a: &str, b: &str, old: &LinkState, new: &LinkState) {
    let default_latency = pipeline.world.message_latency();
    let sim = pipeline.world.sim_mut();
    let (old_ways, new_ways) = (ways(old), ways(new));
    if old_ways != new_ways {
        let has_held = |ways: (Way, Way)| ways.0 == Way::Held || ways.1 == Way::Held;
        if new_ways == (Way::Down, Way::Down) {
            sim.partition(a, b);
        } else if has_held(new_ways) {
            sim.hold(a, b);
            if new_ways.0 == Way::Down {
                sim.partition_oneway(a, b);
            }
            if new_ways.1 == Way::Down {
                sim.partition_oneway(b, a);
            }
        } else {
            let mut from = old_ways;
            if has_held(from) {
                sim.release(a, b);
                from = (Way::Open, Way::Open);
            }
            if from == (Way::Down, Way::Down) && new_ways == (Way::Open, Way::Open) {
                sim.repair(a, b);
            } else {
                for (was, now, x, y) in [(from.0, new_ways.0, a, b), (from.1, new_ways.1, b, a)] {
                    match (was, now) {
                        (Way::Down, Way::Open) => sim.repair_oneway(x, y),
                        (Way::Open, Way::Down) => sim.partition_oneway(x, y),
                        _ => {}
                    }
                }
            }
        }
    }
    if old.latency != new.latency {
        let (min, max) = new.latency.unwrap_or(default_latency);
        sim.set_link_latency(a, b, min);
        sim.set_link_max_message_latency(a, b, max);
    }
    if old.turmoil_loss_rate() != new.turmoil_loss_rate() {
        sim.set_link_fail_rate(a, b, new.turmoil_loss_rate());
    }
}

/// Whether the Dash0 behaviour a fault asks for is one Dash0Control accepts.
pub fn check_dash0(fault: &FaultSpec) -> Result<(), String> {
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
fn describe(fault: &FaultSpec) -> String {
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
        FaultSpec::Restart { target, down_for, .. } => {
            format!("{target} down for {}", crate::units::format_duration(*down_for))
        }
        FaultSpec::Crash { target, .. } => target.clone(),
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
