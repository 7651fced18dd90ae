//! The fault schedule: `[[fault]]` tables turned into timed actions against the world, each
//! recorded in the event log when it starts and ends, all healed before the drain.
//!
//! Why a plan of actions: the injector runs between turmoil steps, outside every host, so a
//! schedule is just a sorted list of (time, fault, start|end). Sorting is stable and ties
//! end faults before starting new ones, so the same file gives the same run.
//!
//! How each kind reaches the world: links through turmoil (partition, hold/release, latency,
//! fail rate), hosts through `Pipeline::crash` / `World::restart`, clocks through each
//! host's `Clock`, Dash0 through `Dash0Control`, and `backpressure` through shared knobs
//! the pipeline wires into its parts: `RedisControl` (a runtime `maxmemory`, as
//! `CONFIG SET` would set it), `AggregatorControl` (a runtime `total_limit_size`),
//! `AgentControl` (a runtime `mem_buf_limit` per host) and `WorkloadControl` (a multiplier
//! on the client's job rate). Each part reads its knob where it admits data, records the
//! change in the event log when it applies it, and reports the limit in force to its gauge.
//! At `duration` every fault still active ends: links repaired, holds released, crashed
//! hosts restarted, clocks straightened (skew and steps are properties of the host, healed
//! like the rest), Dash0 healthy, limits and the job rate restored; then the drain runs.

mod spec;

pub use spec::{AGENT_MEM_BUF_TARGET_DEFAULT, BackpressureWhat, FaultSpec, resolve};

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

/// The actions of `faults`, in time order; faults with no end of their own (crash) end at
/// `heal_at`, when the drain begins.
pub fn plan(faults: &[FaultSpec], heal_at: Duration) -> Vec<Action> {
    assert!(faults.len() <= FAULTS_LIMIT, "{} faults exceed FAULTS_LIMIT {FAULTS_LIMIT}", faults.len());
    let mut actions = Vec::with_capacity(faults.len() * 2);
    for (fault_index, fault) in faults.iter().enumerate() {
        actions.push(Action { at: fault.at(), fault_index, phase: Phase::Start });
        actions.push(Action { at: fault.end().unwrap_or(heal_at).min(heal_at), fault_index, phase: Phase::End });
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

/// Applies one phase of `fault` to the pipeline and records it.
pub fn apply(pipeline: &mut Pipeline, fault: &FaultSpec, phase: Phase) {
    let now = pipeline.world.elapsed();
    let kind = fault.kind();
    let event = match phase {
        Phase::Start => "fault.start",
        Phase::End => "fault.end",
    };
    pipeline.world.record(event, format!("{kind} {}", describe(fault)));
    match fault {
        FaultSpec::LinkDrop { from, to, oneway, .. } => {
            for (a, b) in pairs(&hosts_of(pipeline, from), &hosts_of(pipeline, to)) {
                let sim = pipeline.world.sim_mut();
                match (phase, oneway) {
                    (Phase::Start, false) => sim.partition(a.as_str(), b.as_str()),
                    (Phase::End, false) => sim.repair(a.as_str(), b.as_str()),
                    (Phase::Start, true) => sim.partition_oneway(a.as_str(), b.as_str()),
                    (Phase::End, true) => sim.repair_oneway(a.as_str(), b.as_str()),
                }
            }
        }
        FaultSpec::LinkStall { from, to, .. } => {
            for (a, b) in pairs(&hosts_of(pipeline, from), &hosts_of(pipeline, to)) {
                let sim = pipeline.world.sim_mut();
                match phase {
                    Phase::Start => sim.hold(a.as_str(), b.as_str()),
                    Phase::End => sim.release(a.as_str(), b.as_str()),
                }
            }
        }
        FaultSpec::Latency { from, to, latency, jitter, .. } => {
            let (min, max) = match phase {
                Phase::Start => (*latency, *latency + *jitter),
                Phase::End => pipeline.world.message_latency(),
            };
            for (a, b) in pairs(&hosts_of(pipeline, from), &hosts_of(pipeline, to)) {
                let sim = pipeline.world.sim_mut();
                sim.set_link_latency(a.as_str(), b.as_str(), min);
                sim.set_link_max_message_latency(a.as_str(), b.as_str(), max);
            }
        }
        FaultSpec::ClockStep { target, step, behind, .. } => {
            let step_nanos = i64::try_from(step.as_nanos()).unwrap_or(i64::MAX);
            for host in hosts_of(pipeline, target) {
                let Some(clock) = pipeline.world.clock(&host) else { continue };
                match phase {
                    Phase::Start => clock.step(if *behind { -step_nanos } else { step_nanos }),
                    Phase::End => clock.reset(now),
                }
            }
        }
        FaultSpec::PacketLoss { from, to, rate, .. } => {
            let rate = if phase == Phase::Start { *rate } else { 0.0 };
            for (a, b) in pairs(&hosts_of(pipeline, from), &hosts_of(pipeline, to)) {
                pipeline.world.sim_mut().set_link_fail_rate(a.as_str(), b.as_str(), rate);
            }
        }
        FaultSpec::Restart { target, .. } | FaultSpec::Crash { target, .. } => {
            for host in hosts_of(pipeline, target) {
                match phase {
                    Phase::Start => pipeline.take_down(&host),
                    Phase::End => pipeline.bring_up(&host),
                }
            }
        }
        FaultSpec::Dash0Errors { status, rate, retry_after, .. } => {
            let errors = (phase == Phase::Start).then_some(ScriptedErrors {
                status: *status,
                rate: *rate,
                retry_after: *retry_after,
            });
            pipeline.dash0_control.set_errors(errors).expect("validated at load");
        }
        FaultSpec::Dash0Slow { delay, .. } => {
            pipeline.dash0_control.set_slow((phase == Phase::Start).then_some(*delay));
        }
        FaultSpec::Dash0RateLimit { records_per_second, .. } => {
            let limit = (phase == Phase::Start).then_some(*records_per_second);
            pipeline.dash0_control.set_rate_limit(limit).expect("validated at load");
        }
        FaultSpec::ClockSkew { target, offset, behind, drift_ppm, .. } => {
            let offset_nanos = i64::try_from(offset.as_nanos()).unwrap_or(i64::MAX);
            let offset_nanos = if *behind { -offset_nanos } else { offset_nanos };
            for host in hosts_of(pipeline, target) {
                let Some(clock) = pipeline.world.clock(&host) else { continue };
                match phase {
                    Phase::Start => {
                        clock.set_offset(now, offset_nanos);
                        clock.set_drift_ppm(now, *drift_ppm);
                    }
                    Phase::End => clock.reset(now),
                }
            }
        }
        FaultSpec::Backpressure { what: BackpressureWhat::RedisMaxmemory, bytes, .. } => {
            pipeline.redis_control.set_maxmemory_bytes(if phase == Phase::Start { *bytes } else { None });
        }
        FaultSpec::Backpressure { what: BackpressureWhat::AggregatorBuffer, bytes, .. } => {
            pipeline.aggregator_control.set_total_bytes_limit(if phase == Phase::Start { *bytes } else { None });
        }
        FaultSpec::Backpressure { what: BackpressureWhat::AgentMemBuf, bytes, target, .. } => {
            let selector = target.as_deref().unwrap_or(AGENT_MEM_BUF_TARGET_DEFAULT);
            for host in hosts_of(pipeline, selector) {
                pipeline.agent_control.set_mem_buf_bytes_limit(&host, if phase == Phase::Start { *bytes } else { None });
            }
        }
        FaultSpec::Backpressure { what: BackpressureWhat::JobsPerSecond, factor, .. } => {
            let factor = if phase == Phase::Start { factor.expect("validated at load") } else { 1.0 };
            pipeline.workload_control.set_rate_factor(factor).expect("validated at load");
        }
    }
}

/// Whether the Dash0 behaviour a fault asks for is one Dash0Control accepts.
pub fn check_dash0(fault: &FaultSpec) -> Result<(), String> {
    let control = crate::parts::dash0::Dash0Control::new();
    let result = match fault {
        FaultSpec::Dash0Errors { status, rate, retry_after, .. } => control
            .set_errors(Some(ScriptedErrors { status: *status, rate: *rate, retry_after: *retry_after })),
        FaultSpec::Dash0RateLimit { records_per_second, .. } => control.set_rate_limit(Some(*records_per_second)),
        _ => Ok(()),
    };
    result.map_err(|error| error.0)
}

/// Every (a, b) with a in `from`, b in `to`, a ≠ b, in order.
fn pairs(from: &[String], to: &[String]) -> Vec<(String, String)> {
    from.iter().flat_map(|a| to.iter().filter(move |b| *b != a).map(move |b| (a.clone(), b.clone()))).collect()
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
        FaultSpec::ClockStep { target, step, behind, .. } => {
            format!("{target} step {}{}", if *behind { "-" } else { "+" }, crate::units::format_duration(*step))
        }
        FaultSpec::PacketLoss { from, to, rate, .. } => format!("{from} <-> {to} rate {rate}"),
        FaultSpec::Restart { target, down_for, .. } => format!("{target} down for {}", crate::units::format_duration(*down_for)),
        FaultSpec::Crash { target, .. } => target.clone(),
        FaultSpec::Dash0Errors { status, rate, retry_after, .. } => {
            format!("status {status} rate {rate} retry_after {:?}", retry_after.map(crate::units::format_duration))
        }
        FaultSpec::Dash0Slow { delay, .. } => format!("delay {}", crate::units::format_duration(*delay)),
        FaultSpec::Dash0RateLimit { records_per_second, .. } => format!("{records_per_second}/s"),
        FaultSpec::ClockSkew { target, offset, behind, drift_ppm, .. } => format!(
            "{target} offset {}{} drift {drift_ppm}ppm",
            if *behind { "-" } else { "+" },
            crate::units::format_duration(*offset)
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
        assert_eq!(resolve("railway", &hosts, &machines).unwrap(), ["railway-aggregator", "railway-redis", "railway-shipper"]);
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
            FaultSpec::Dash0Slow { at: Duration::from_secs(10), lasting: Duration::from_secs(20), delay: Duration::from_secs(1) },
        ];
        let plan = plan(&faults, Duration::from_secs(60));
        let shape: Vec<(u64, usize, Phase)> = plan.iter().map(|a| (a.at.as_secs(), a.fault_index, a.phase)).collect();
        assert_eq!(shape, vec![(10, 1, Phase::Start), (30, 1, Phase::End), (30, 0, Phase::Start), (60, 0, Phase::End)]);
    }
}
