//! The fault injector: the pipeline's side of the fault schedule. Between turmoil steps it
//! starts and ends faults (`crate::faults::plan`), recomputes the effective state of every
//! target a changed fault touches from all faults in force (`crate::faults::compose`), and
//! changes the world by the difference only, so the end of one fault never undoes another
//! that still holds.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::faults::{
    Contribution, FaultSpec, InForce, LinkState, Outage, Phase, State, Target, compose, contribute, describe, healthy,
    resolve,
};

use super::Pipeline;
use crate::vocab::EventKind;

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
    /// Fault phases applied so far: `in_force` holds `started_count - ended_count` faults.
    started_count: u64,
    ended_count: u64,
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

    /// The injector's books, checked after every phase (O(targets × faults in force), and
    /// phases are few): as many faults in force as started and not ended; a target is in
    /// `applied` only with a state that is not healthy (absent means healthy, so healthy
    /// must be absent) and only while some fault in force touches it.
    fn assert_books(&self) {
        assert!(
            self.ended_count <= self.started_count,
            "injector: {} faults ended but {} started",
            self.ended_count,
            self.started_count
        );
        assert_eq!(
            self.in_force.len() as u64,
            self.started_count - self.ended_count,
            "injector: faults in force must be those started and not ended"
        );
        for (target, state) in &self.applied {
            assert!(*state != healthy(target), "injector: {target} is recorded as applied while healthy");
            assert!(
                !self.on(target).is_empty(),
                "injector: {target} is recorded as applied with no fault in force on it"
            );
        }
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
        Phase::Start => EventKind::FaultStart,
        Phase::End => EventKind::FaultEnd,
    };
    pipeline.world.record(event, format!("{} {}", fault.kind(), describe(fault)));
    let mut injector = std::mem::take(&mut pipeline.injector);
    let touched: Vec<Target> = match phase {
        Phase::Start => {
            let contributions = contribute(fault, &|selector| hosts_of(pipeline, selector));
            let touched = contributions.iter().map(|(target, _)| target.clone()).collect();
            let entry = FaultInForce { order: (fault.at(), index), started: now, contributions };
            assert!(injector.in_force.insert(index, entry).is_none(), "fault[{index}] started twice");
            injector.started_count += 1;
            touched
        }
        Phase::End => {
            let Some(ended) = injector.in_force.remove(&index) else {
                unreachable!("fault[{index}] ended without having started");
            };
            injector.ended_count += 1;
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
            pipeline
                .world
                .record(EventKind::FaultCompose, format!("{target}: {new} ({others} other fault(s) in force)"));
        }
        if new == healthy(&target) {
            injector.applied.remove(&target);
        } else {
            injector.applied.insert(target, new);
        }
    }
    injector.assert_books();
    pipeline.injector = injector;
}

/// Changes the world from `old` to `new` for one target, touching only what differs.
fn enact(pipeline: &mut Pipeline, target: &Target, old: &State, new: &State, now: Duration) {
    match (target, old, new) {
        (Target::Link { a, b }, State::Link(old), State::Link(new)) => enact_link(pipeline, a, b, old, new),
        (Target::Host(host), State::Down(was), State::Down(down)) => enact_outage(pipeline, host, *was, *down),
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
        (Target::AggregatorCert, _, State::Cert(choice)) => {
            pipeline.aggregator_control.set_served_cert(choice.unwrap_or_default());
        }
        (Target::JobRate, _, State::Factor(factor)) => {
            pipeline.workload_control.set_rate_factor(*factor).expect("factors capped at RATE_FACTOR_MAX");
        }
        (target, old, new) => unreachable!("{target}: no transition from {old:?} to {new:?}"),
    }
}

/// Moves `host` from outage `was` to `now` (`None`: up). A host goes down the way its
/// strongest fault says (FIDELITY.md "Hosts"); a stronger fault while down does what it
/// adds (a power loss still takes unsynced writes); power comes back when the power loss
/// ends even if a kill keeps the software down; the software starts when no fault holds it.
fn enact_outage(pipeline: &mut Pipeline, host: &str, was: Option<Outage>, now: Option<Outage>) {
    let world = &mut pipeline.world;
    match (was, now) {
        (Some(_), None) => world.restart(host),
        (Some(Outage::PoweredOff), Some(Outage::PoweredOff)) | (Some(_), Some(Outage::Terminated { .. })) => {}
        (Some(Outage::PoweredOff), Some(Outage::Killed)) => world.net().set_power(host, true),
        (_, Some(Outage::PoweredOff)) => world.power_loss(host),
        (Some(Outage::Killed), Some(Outage::Killed)) => {}
        (_, Some(Outage::Killed)) => world.kill(host),
        (None, Some(Outage::Terminated { draining })) => world.terminate(host, draining),
        (None, None) => {}
    }
}

/// Moves the link a ↔ b from `old` to `new`. Drops, stalls and loss are the network's
/// link state (`crate::world::net`: connections wait, retransmit and time out as real TCP
/// does); a stall also holds in turmoil what was in flight, and latency is turmoil's.
fn enact_link(pipeline: &mut Pipeline, a: &str, b: &str, old: &LinkState, new: &LinkState) {
    if (old.down_ab, old.down_ba) != (new.down_ab, new.down_ba) {
        pipeline.world.net().set_link(a, b, new.down_ab, new.down_ba);
    }
    if old.loss_rate != new.loss_rate {
        pipeline.world.net().set_loss(a, b, new.loss_rate);
    }
    if old.held != new.held {
        pipeline.world.net().set_held(a, b, new.held);
    }
    let default_latency = pipeline.world.message_latency();
    let sim = pipeline.world.sim_mut();
    if old.held != new.held {
        if new.held {
            sim.hold(a, b);
        } else {
            sim.release(a, b);
        }
    }
    if old.latency != new.latency {
        let (min, max) = new.latency.unwrap_or(default_latency);
        sim.set_link_latency(a, b, min);
        sim.set_link_max_message_latency(a, b, max);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A healthy state kept in `applied` (it should have been removed) is caught.
    #[test]
    #[should_panic(expected = "is recorded as applied while healthy")]
    fn a_healthy_target_kept_as_applied_is_caught() {
        let mut injector = Injector::default();
        injector.applied.insert(Target::RedisMaxmemory, State::Limit(None));
        injector.assert_books();
    }

    /// A target left applied after every fault on it ended is caught.
    #[test]
    #[should_panic(expected = "is recorded as applied with no fault in force on it")]
    fn a_target_applied_with_no_fault_in_force_is_caught() {
        let mut injector = Injector::default();
        injector.applied.insert(Target::RedisMaxmemory, State::Limit(Some(1_000)));
        injector.assert_books();
    }

    /// Counters that disagree with the faults in force are caught.
    #[test]
    #[should_panic(expected = "faults in force must be those started and not ended")]
    fn counters_that_disagree_with_the_faults_in_force_are_caught() {
        let injector = Injector { started_count: 2, ended_count: 1, ..Injector::default() };
        injector.assert_books();
    }
}
