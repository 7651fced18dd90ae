//! Random fault schedules, drawn by proptest strategies from a seed (swarm testing).
//!
//! Why swarm: a schedule that mixes every kind at once hides the interactions that only
//! appear when a few kinds act alone (a long partition with nothing else going on lets
//! Fluent Bit's backoff grow). So each seed first switches a random subset of the allowed
//! kinds on, then draws up to `faults_max` faults from that subset only.
//!
//! Why proptest strategies: they compose (a window, a target, a status) into one value and
//! say what each parameter's range is in one place. Generation is deterministic: the
//! strategy runs on a ChaCha `TestRng` seeded from SHA-256 of the scenario's name and the
//! seed, so the same (scenario, seed) always draws the same schedule, on any machine.
//!
//! Every parameter is drawn in whole seconds (or whole milliseconds for latencies), so the
//! schedule reads cleanly when written out as `[[fault]]` tables.

use std::time::Duration;

use proptest::prelude::*;
use proptest::sample::{Select, select, subsequence};
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use sha2::{Digest, Sha256};

use crate::faults::{BackpressureWhat, FaultSpec, Heal, SlowStores};
use crate::scenario::Scenario;
use crate::scenario::chaos::{ChaosConfig, ChaosKind};
use crate::vocab::hosts;

/// The shortest load phase a sweep can draw faults into: one fault needs a second to start
/// and a second to last.
pub(crate) const DURATION_MIN: Duration = Duration::from_secs(2);

/// Percent of drawn faults (after the first) that are moved onto the target of an earlier
/// fault, starting inside its window: overlapping faults on one target are where fault
/// composition goes wrong, and independent draws rarely make them.
pub(crate) const OVERLAP_PERCENT: u32 = 30;

/// Largest drawn `latency`, milliseconds.
pub(crate) const LATENCY_MS_MAX: u64 = 2_000;

/// Largest drawn `jitter`, milliseconds.
pub(crate) const JITTER_MS_MAX: u64 = 1_000;

/// Largest drawn job-rate backpressure factor.
pub(crate) const JOB_RATE_FACTOR_MAX: f64 = 5.0;

/// Dash0 statuses a correct pipeline must retry (RFC 9110 / OTLP: retryable).
const RETRYABLE_STATUSES: [u16; 4] = [429, 502, 503, 504];

/// What a drawn fault may name, from the scenario's topology.
#[derive(Clone, Debug)]
struct Targets {
    /// Link endpoints `(from, to)`.
    links: Vec<(String, String)>,
    /// Hosts or groups to restart, crash or bend the clock of.
    hosts: Vec<String>,
}

impl Targets {
    fn of(scenario: &Scenario) -> Targets {
        let machines: Vec<String> =
            scenario.machine_hosts().into_iter().map(|(id, _)| id.as_str().to_string()).collect();
        let first = machines.first().cloned().expect("a validated scenario has a machine");
        let last = machines.last().cloned().expect("a validated scenario has a machine");
        let pair = |a: &str, b: &str| (a.to_string(), b.to_string());
        let mut links = vec![
            pair("machines", "railway"),
            pair(&first, "railway"),
            pair(hosts::API, "railway"),
            pair(hosts::AGGREGATOR, hosts::REDIS),
            pair(hosts::REDIS, hosts::SHIPPER),
            pair(hosts::SHIPPER, hosts::DASH0),
            pair("machines", hosts::DASH0),
            pair(hosts::API, hosts::DASH0),
        ];
        if scenario.topology.dev_hosts > 0 {
            links.push(pair("devs", "railway"));
        }
        let mut hosts_list: Vec<String> =
            [hosts::AGGREGATOR, hosts::REDIS, hosts::SHIPPER, "railway", hosts::DASH0, hosts::API]
                .map(String::from)
                .to_vec();
        hosts_list.push(first);
        if last != hosts_list[hosts_list.len() - 1] {
            hosts_list.push(last);
        }
        Targets { links, hosts: hosts_list }
    }
}

/// A fault window inside a load phase of `duration_secs`: `(at, for)` in seconds, the fault
/// ending by the end of the load phase and lasting at most `for_max_secs`.
fn window(duration_secs: u64, for_max_secs: u64) -> impl Strategy<Value = (u64, u64)> + Clone {
    assert!(duration_secs >= DURATION_MIN.as_secs(), "load phase too short for a fault");
    (0..duration_secs - 1).prop_flat_map(move |at| (Just(at), 1..=for_max_secs.min(duration_secs - at)))
}

fn secs(value: u64) -> Duration {
    Duration::from_secs(value)
}

/// One fault of `kind`, with its parameters. Each family of kinds draws in its own step;
/// the strategies (and so the draws for a seed) are those of one match over every kind.
fn fault(kind: ChaosKind, targets: &Targets, duration_secs: u64, for_max_secs: u64) -> BoxedStrategy<FaultSpec> {
    let window = window(duration_secs, for_max_secs);
    match kind {
        ChaosKind::LinkDrop | ChaosKind::LinkStall | ChaosKind::Latency | ChaosKind::PacketLoss => {
            link_fault(kind, window, select(targets.links.clone()))
        }
        ChaosKind::Restart
        | ChaosKind::Kill
        | ChaosKind::PowerLoss
        | ChaosKind::Crash
        | ChaosKind::ClockSkew
        | ChaosKind::ClockStep => host_fault(kind, window, select(targets.hosts.clone()), duration_secs),
        ChaosKind::Dash0Errors | ChaosKind::Dash0Slow | ChaosKind::Dash0RateLimit => dash0_fault(kind, window),
        ChaosKind::Backpressure => backpressure_fault(window),
    }
}

/// A window strategy, as [`window`] returns it.
trait Window: Strategy<Value = (u64, u64)> + Clone + 'static {}
impl<W: Strategy<Value = (u64, u64)> + Clone + 'static> Window for W {}

/// A fault on a link between two hosts.
fn link_fault(kind: ChaosKind, window: impl Window, link: Select<(String, String)>) -> BoxedStrategy<FaultSpec> {
    match kind {
        ChaosKind::LinkDrop => (window, link, any::<bool>())
            .prop_map(|((at, lasting), (from, to), oneway)| FaultSpec::LinkDrop {
                at: secs(at),
                lasting: secs(lasting),
                from,
                to,
                oneway,
            })
            .boxed(),
        ChaosKind::LinkStall => (window, link)
            .prop_map(|((at, lasting), (from, to))| FaultSpec::LinkStall {
                at: secs(at),
                lasting: secs(lasting),
                from,
                to,
            })
            .boxed(),
        ChaosKind::Latency => (window, link, 10u64..=LATENCY_MS_MAX, 0u64..=JITTER_MS_MAX)
            .prop_map(|((at, lasting), (from, to), latency_ms, jitter_ms)| FaultSpec::Latency {
                at: secs(at),
                lasting: secs(lasting),
                from,
                to,
                latency: Duration::from_millis(latency_ms),
                jitter: Duration::from_millis(jitter_ms),
            })
            .boxed(),
        ChaosKind::PacketLoss => (window, link, 1u32..=20)
            .prop_map(|((at, lasting), (from, to), percent)| FaultSpec::PacketLoss {
                at: secs(at),
                lasting: secs(lasting),
                from,
                to,
                rate: f64::from(percent) / 100.0,
            })
            .boxed(),
        other => unreachable!("{other:?} is not a link fault"),
    }
}

/// A fault on one host: taken down, or its clock bent.
fn host_fault(
    kind: ChaosKind,
    window: impl Window,
    host: Select<String>,
    duration_secs: u64,
) -> BoxedStrategy<FaultSpec> {
    match kind {
        ChaosKind::Restart => (window, host)
            .prop_map(|((at, down_for), target)| FaultSpec::Restart {
                at: secs(at),
                target,
                down_for: secs(down_for),
                draining: Duration::ZERO,
            })
            .boxed(),
        ChaosKind::Kill => (window, host)
            .prop_map(|((at, down_for), target)| FaultSpec::Kill { at: secs(at), target, down_for: secs(down_for) })
            .boxed(),
        ChaosKind::PowerLoss => (window, host)
            .prop_map(|((at, down_for), target)| FaultSpec::PowerLoss {
                at: secs(at),
                target,
                down_for: secs(down_for),
            })
            .boxed(),
        ChaosKind::Crash => {
            (0..duration_secs - 1, host).prop_map(|(at, target)| FaultSpec::Crash { at: secs(at), target }).boxed()
        }
        ChaosKind::ClockSkew => (window, host, 0u64..=600, any::<bool>(), 0u32..=500)
            .prop_map(|((at, lasting), target, offset, behind, drift_ppm)| FaultSpec::ClockSkew {
                at: secs(at),
                lasting: Some(secs(lasting)),
                target,
                offset: secs(offset),
                behind,
                drift_ppm: f64::from(drift_ppm),
                heal: Heal::AtDrain,
            })
            .boxed(),
        ChaosKind::ClockStep => (0..duration_secs - 1, host, 1u64..=300, any::<bool>())
            .prop_map(|(at, target, step, behind)| FaultSpec::ClockStep {
                at: secs(at),
                target,
                step: secs(step),
                behind,
                heal: Heal::AtDrain,
            })
            .boxed(),
        other => unreachable!("{other:?} is not a host fault"),
    }
}

/// A fault of the Dash0 mock: errors, slowness, a rate limit.
fn dash0_fault(kind: ChaosKind, window: impl Window) -> BoxedStrategy<FaultSpec> {
    match kind {
        ChaosKind::Dash0Errors => {
            (window, select(RETRYABLE_STATUSES.to_vec()), 10u32..=100, proptest::option::of(1u64..=30))
                .prop_map(|((at, lasting), status, percent, retry_after)| FaultSpec::Dash0Errors {
                    at: secs(at),
                    lasting: secs(lasting),
                    status,
                    rate: f64::from(percent) / 100.0,
                    // Over gRPC a 429 is RESOURCE_EXHAUSTED, which OTLP clients retry only
                    // with RetryInfo: a Dash0 that throttles without it loses spans by
                    // design (a hand-written scenario's truth, not a survivable fault).
                    retry_after: if status == 429 {
                        Some(secs(retry_after.unwrap_or(1)))
                    } else {
                        retry_after.map(secs)
                    },
                    signal: None,
                    protocol: None,
                })
                .boxed()
        }
        ChaosKind::Dash0Slow => (window, 100u64..=10_000)
            .prop_map(|((at, lasting), delay_ms)| FaultSpec::Dash0Slow {
                at: secs(at),
                lasting: secs(lasting),
                delay: Duration::from_millis(delay_ms),
                stores: SlowStores::AfterDelay,
            })
            .boxed(),
        ChaosKind::Dash0RateLimit => (window, 5u64..=200)
            .prop_map(|((at, lasting), records_per_second)| FaultSpec::Dash0RateLimit {
                at: secs(at),
                lasting: secs(lasting),
                records_per_second,
            })
            .boxed(),
        other => unreachable!("{other:?} is not a Dash0 fault"),
    }
}

/// Backpressure: more jobs, or a smaller aggregator buffer or Redis memory.
fn backpressure_fault(window: impl Window) -> BoxedStrategy<FaultSpec> {
    prop_oneof![
        (window.clone(), 2u32..=JOB_RATE_FACTOR_MAX as u32).prop_map(|((at, lasting), factor)| {
            FaultSpec::Backpressure {
                at: secs(at),
                lasting: secs(lasting),
                what: BackpressureWhat::JobsPerSecond,
                bytes: None,
                factor: Some(f64::from(factor)),
                target: None,
            }
        }),
        (window.clone(), 2u64..=20).prop_map(|((at, lasting), ten_kb)| FaultSpec::Backpressure {
            at: secs(at),
            lasting: secs(lasting),
            what: BackpressureWhat::AggregatorBuffer,
            bytes: Some(ten_kb * 10_000),
            factor: None,
            target: None,
        }),
        (window, 8u64..=40).prop_map(|((at, lasting), hundred_kb)| FaultSpec::Backpressure {
            at: secs(at),
            lasting: secs(lasting),
            what: BackpressureWhat::RedisMaxmemory,
            bytes: Some(hundred_kb * 100_000),
            factor: None,
            target: None,
        }),
    ]
    .boxed()
}

/// The strategy of a whole schedule for `scenario` under `chaos`: a non-empty subset of the
/// kinds (swarm), then 1..=`faults_max` faults drawn from it, in time order.
pub fn schedule(scenario: &Scenario, chaos: &ChaosConfig) -> BoxedStrategy<Vec<FaultSpec>> {
    let targets = Targets::of(scenario);
    let duration_secs = scenario.duration.as_secs().max(DURATION_MIN.as_secs());
    let for_max_secs = chaos.fault_for_max.as_secs().max(1);
    let faults_max = chaos.faults_max.max(1) as usize;
    let mut kinds = chaos.kinds.clone();
    kinds.sort();
    kinds.dedup();
    let kinds_count = kinds.len();
    assert!(kinds_count > 0, "a validated [chaos] has kinds");
    subsequence(kinds, 1..=kinds_count)
        .prop_flat_map(move |enabled| {
            let targets = targets.clone();
            let one = select(enabled).prop_flat_map(move |kind| fault(kind, &targets, duration_secs, for_max_secs));
            let overlap = (0u32..100, any::<proptest::sample::Index>(), any::<u32>());
            (proptest::collection::vec(one, 1..=faults_max), proptest::collection::vec(overlap, faults_max))
        })
        .prop_map(move |(mut faults, overlaps)| {
            for (index, (roll, earlier, offset)) in overlaps.into_iter().enumerate().take(faults.len()).skip(1) {
                if roll < OVERLAP_PERCENT {
                    let earlier = faults[earlier.index(index)].clone();
                    overlap_onto(&mut faults[index], &earlier, offset, duration_secs);
                }
            }
            faults.sort_by_key(|fault| (fault.at(), fault.end()));
            faults
        })
        .boxed()
}

/// Moves `fault` onto `earlier`'s target (when both act on the same kind of target: links,
/// hosts, Dash0, the same buffer) and starts it `offset` (modulo) into `earlier`'s window,
/// keeping it inside the load phase of `duration_secs`.
fn overlap_onto(fault: &mut FaultSpec, earlier: &FaultSpec, offset: u32, duration_secs: u64) {
    use crate::faults::FaultScope;
    let scope = earlier.header().scope;
    let (from, to, target) = match scope {
        FaultScope::Link { from, to, .. } => (Some(from.to_string()), Some(to.to_string()), None),
        FaultScope::Hosts(target) => (None, None, Some(target.to_string())),
        FaultScope::Dash0 | FaultScope::Pipeline { .. } => (None, None, None),
    };
    let same_kind_of_target = match (fault.header().scope, scope) {
        (FaultScope::Link { .. }, FaultScope::Link { .. }) | (FaultScope::Hosts(_), FaultScope::Hosts(_)) => true,
        (FaultScope::Dash0, FaultScope::Dash0) => true,
        (FaultScope::Pipeline { .. }, FaultScope::Pipeline { .. }) => matches!(
            (&*fault, earlier),
            (FaultSpec::Backpressure { what: a, .. }, FaultSpec::Backpressure { what: b, .. }) if a == b
        ),
        _ => false,
    };
    if !same_kind_of_target {
        return;
    }
    match fault {
        FaultSpec::LinkDrop { from: f, to: t, .. }
        | FaultSpec::LinkStall { from: f, to: t, .. }
        | FaultSpec::Latency { from: f, to: t, .. }
        | FaultSpec::PacketLoss { from: f, to: t, .. } => {
            *f = from.expect("a link scope");
            *t = to.expect("a link scope");
        }
        FaultSpec::Restart { target: own, .. }
        | FaultSpec::Kill { target: own, .. }
        | FaultSpec::PowerLoss { target: own, .. }
        | FaultSpec::Crash { target: own, .. }
        | FaultSpec::ClockSkew { target: own, .. }
        | FaultSpec::ClockStep { target: own, .. } => *own = target.expect("a host scope"),
        FaultSpec::Dash0Errors { .. }
        | FaultSpec::Dash0Slow { .. }
        | FaultSpec::Dash0RateLimit { .. }
        | FaultSpec::Backpressure { .. }
        | FaultSpec::TlsCertExpired { .. }
        | FaultSpec::TlsWrongCa { .. }
        | FaultSpec::TlsHostnameMismatch { .. } => {}
    }
    let start = earlier.at().as_secs();
    let end = earlier.end().map_or(duration_secs, |end| end.as_secs()).min(duration_secs);
    let span = end.saturating_sub(start).max(1);
    let at = (start + u64::from(offset) % span).min(duration_secs - DURATION_MIN.as_secs());
    set_window(fault, at, duration_secs);
}

/// Starts `fault` at `at` seconds, shortening it if it would end after `duration_secs`.
fn set_window(fault: &mut FaultSpec, at_secs: u64, duration_secs: u64) {
    let room = secs(duration_secs - at_secs);
    let (at, lasting) = fault.window_mut();
    *at = secs(at_secs);
    if let Some(lasting) = lasting {
        *lasting = (*lasting).min(room).max(secs(1));
    }
}

/// The schedule drawn for (`scenario`, `seed`): the same inputs draw the same faults.
pub fn draw(scenario: &Scenario, chaos: &ChaosConfig, seed: u64) -> Vec<FaultSpec> {
    let mut hasher = Sha256::new();
    hasher.update(b"obsim chaos schedule\0");
    hasher.update(scenario.name.as_bytes());
    hasher.update([0]);
    hasher.update(seed.to_le_bytes());
    let key: [u8; 32] = hasher.finalize().into();
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &key);
    let mut runner = TestRunner::new_with_rng(Config { failure_persistence: None, ..Config::default() }, rng);
    let tree = schedule(scenario, chaos).new_tree(&mut runner).expect("the schedule strategy never rejects");
    tree.current()
}
