//! Overlapping faults compose: the effective state of a target is computed from every fault
//! in force on it (README "How overlapping faults compose"), never by undoing one fault's
//! change when it ends. Unit level: `compose` over timelines of every pair of kinds that can
//! touch one target, nested and overlapping. End to end: a short link drop nested in a long
//! one no longer repairs the link early; a clock left 10 minutes ahead through the drain;
//! Dash0 errors scoped to one signal and protocol; a slow Dash0 that stores before answering
//! makes clients retry and holds duplicates.

mod scenario_support;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use obsim::check::CheckName;
use obsim::check::Verdict;
use obsim::faults::{
    ClockBend, Contribution, FaultSpec, InForce, LinkState, Outage, Phase, State, Target, compose, contribute,
};
use obsim::pipeline::Pipeline;
use obsim::scenario::Scenario;
use obsim::vocab::EventKind;

fn secs(value: u64) -> Duration {
    Duration::from_secs(value)
}

/// A fault of a timeline: scheduled at `at`, ending at `end`, contributing `what`.
struct Timed {
    at: u64,
    end: u64,
    what: Contribution,
}

/// The composed state of `target` at each second in `moments` under `faults`.
fn states_at(target: &Target, faults: &[Timed], moments: &[u64]) -> Vec<State> {
    moments
        .iter()
        .map(|&now| {
            let in_force: Vec<InForce<'_>> = faults
                .iter()
                .enumerate()
                .filter(|(_, fault)| fault.at <= now && now < fault.end)
                .map(|(index, fault)| InForce {
                    order: (secs(fault.at), index),
                    started: secs(fault.at),
                    contribution: &fault.what,
                })
                .collect();
            compose(target, &in_force, secs(now), 1_000.0)
        })
        .collect()
}

fn link() -> Target {
    Target::Link { a: "openai-1".into(), b: "railway-aggregator".into() }
}

fn link_state(down_ab: bool, down_ba: bool, held: bool, latency_ms: Option<(u64, u64)>, loss_rate: f64) -> State {
    State::Link(LinkState {
        down_ab,
        down_ba,
        held,
        latency: latency_ms.map(|(min, max)| (Duration::from_millis(min), Duration::from_millis(max))),
        loss_rate,
    })
}

const MOMENTS: [u64; 7] = [5, 15, 25, 35, 45, 55, 65];

/// Two windows on one target: nested (10..60 holds 20..30) and overlapping (10..40, 30..60);
/// the state at 5, 15, 25, 35, 45, 55, 65.
fn nested_and_overlapping(first: Contribution, second: Contribution) -> [Vec<State>; 2] {
    let target = match (&first, &second) {
        (Contribution::HostDown(_), _) => Target::Host("railway-redis".into()),
        (Contribution::Skew { .. } | Contribution::Step { .. }, _) => Target::Clock("openai-1".into()),
        (Contribution::Limit(_), _) => Target::AggregatorBuffer,
        (Contribution::Factor(_), _) => Target::JobRate,
        (Contribution::Slow(_), _) => Target::Dash0Slow,
        (Contribution::RateLimit(_), _) => Target::Dash0RateLimit,
        (Contribution::Errors(_), _) => Target::Dash0Errors,
        _ => link(),
    };
    let nested = [Timed { at: 10, end: 60, what: first.clone() }, Timed { at: 20, end: 30, what: second.clone() }];
    let overlapping = [Timed { at: 10, end: 40, what: first }, Timed { at: 30, end: 60, what: second }];
    [states_at(&target, &nested, &MOMENTS), states_at(&target, &overlapping, &MOMENTS)]
}

#[test]
fn two_drops_on_a_link_keep_it_down_while_either_holds() {
    let drop = Contribution::Drop { ab: true, ba: true };
    let [nested, overlapping] = nested_and_overlapping(drop.clone(), drop);
    let up = link_state(false, false, false, None, 0.0);
    let down = link_state(true, true, false, None, 0.0);
    assert_eq!(nested, [&up, &down, &down, &down, &down, &down, &up].map(Clone::clone));
    assert_eq!(overlapping, [&up, &down, &down, &down, &down, &down, &up].map(Clone::clone));
}

#[test]
fn a_oneway_drop_counts_for_its_own_direction_only() {
    let [nested, overlapping] =
        nested_and_overlapping(Contribution::Drop { ab: true, ba: false }, Contribution::Drop { ab: false, ba: true });
    let ab = link_state(true, false, false, None, 0.0);
    let both = link_state(true, true, false, None, 0.0);
    let ba = link_state(false, true, false, None, 0.0);
    let up = link_state(false, false, false, None, 0.0);
    assert_eq!(nested, vec![up.clone(), ab.clone(), both.clone(), ab.clone(), ab.clone(), ab.clone(), up.clone()]);
    assert_eq!(overlapping, vec![up.clone(), ab.clone(), ab.clone(), both, ba.clone(), ba, up]);
}

#[test]
fn stalls_hold_while_any_holds_and_a_drop_beats_a_stall() {
    let [nested, _] = nested_and_overlapping(Contribution::Stall, Contribution::Stall);
    let held = link_state(false, false, true, None, 0.0);
    let up = link_state(false, false, false, None, 0.0);
    assert_eq!(
        nested,
        vec![up.clone(), held.clone(), held.clone(), held.clone(), held.clone(), held.clone(), up.clone()]
    );
    let [nested, overlapping] = nested_and_overlapping(Contribution::Stall, Contribution::Drop { ab: true, ba: true });
    let down_held = link_state(true, true, true, None, 0.0);
    assert_eq!(
        nested,
        vec![up.clone(), held.clone(), down_held.clone(), held.clone(), held.clone(), held.clone(), up.clone()]
    );
    let down = link_state(true, true, false, None, 0.0);
    assert_eq!(overlapping, vec![up.clone(), held.clone(), held, down_held, down.clone(), down, up]);
}

#[test]
fn latencies_take_the_largest_bounds_and_losses_compose_as_independent_processes() {
    let latency =
        |min: u64, max: u64| Contribution::Latency { min: Duration::from_millis(min), max: Duration::from_millis(max) };
    let [nested, overlapping] = nested_and_overlapping(latency(200, 300), latency(100, 900));
    let up = link_state(false, false, false, None, 0.0);
    let outer = link_state(false, false, false, Some((200, 300)), 0.0);
    let both = link_state(false, false, false, Some((200, 900)), 0.0);
    let inner = link_state(false, false, false, Some((100, 900)), 0.0);
    assert_eq!(
        nested,
        vec![up.clone(), outer.clone(), both.clone(), outer.clone(), outer.clone(), outer.clone(), up.clone()]
    );
    assert_eq!(overlapping, vec![up.clone(), outer.clone(), outer, both, inner.clone(), inner, up.clone()]);

    let [nested, _] = nested_and_overlapping(Contribution::Loss(0.5), Contribution::Loss(0.2));
    assert_eq!(nested[2], link_state(false, false, false, None, 0.6), "1 - 0.5 * 0.8");
    assert_eq!(nested[3], link_state(false, false, false, None, 0.5), "the inner loss leaves with its fault");
    // A drop while packet loss holds: down; the loss comes back when the drop ends.
    let [nested, _] = nested_and_overlapping(Contribution::Loss(0.5), Contribution::Drop { ab: true, ba: true });
    assert_eq!(nested[2], link_state(true, true, false, None, 0.5));
    assert_eq!(nested[3], link_state(false, false, false, None, 0.5));
    // Latency and a drop on one link: each keeps its own part.
    let [_, overlapping] = nested_and_overlapping(latency(50, 50), Contribution::Drop { ab: true, ba: true });
    assert_eq!(overlapping[3], link_state(true, true, false, Some((50, 50)), 0.0));
    assert_eq!(overlapping[4], link_state(true, true, false, None, 0.0), "the latency ended, the drop holds");
}

#[test]
fn a_host_is_down_while_any_restart_or_crash_holds_it() {
    let killed = Contribution::HostDown(Outage::Killed);
    let [nested, overlapping] = nested_and_overlapping(killed.clone(), killed);
    let states = |downs: [bool; 7]| downs.map(|down| State::Down(down.then_some(Outage::Killed))).to_vec();
    assert_eq!(nested, states([false, true, true, true, true, true, false]));
    assert_eq!(overlapping, states([false, true, true, true, true, true, false]));
}

#[test]
fn a_host_held_by_several_outages_is_down_the_way_that_loses_most() {
    let terminated = |secs: u64| Outage::Terminated { draining: Duration::from_secs(secs) };
    // A power loss nested in a restart: the power is off while it holds, the restart's
    // SIGTERM state is what is left around it.
    let [nested, overlapping] =
        nested_and_overlapping(Contribution::HostDown(terminated(5)), Contribution::HostDown(Outage::PoweredOff));
    let down = |outage: Option<Outage>| State::Down(outage);
    assert_eq!(nested[1], down(Some(terminated(5))));
    assert_eq!(nested[2], down(Some(Outage::PoweredOff)), "a power loss during a restart still takes the power");
    assert_eq!(nested[3], down(Some(terminated(5))), "power back, the software still down until the restart ends");
    assert_eq!(nested[6], down(None));
    assert_eq!(overlapping[3], down(Some(Outage::PoweredOff)));
    // Two restarts: the shorter draining kills first.
    let [nested, _] =
        nested_and_overlapping(Contribution::HostDown(terminated(30)), Contribution::HostDown(terminated(2)));
    assert_eq!(nested[2], down(Some(terminated(2))));
    // A kill during a restart's draining ends it at once.
    let [nested, _] =
        nested_and_overlapping(Contribution::HostDown(terminated(30)), Contribution::HostDown(Outage::Killed));
    assert_eq!(nested[2], down(Some(Outage::Killed)));
}

#[test]
fn clock_offsets_and_drifts_add_and_each_skew_takes_only_its_own_drift_away() {
    let minute = 60_000_000_000i64;
    let skew = |offset_nanos: i64, drift_ppm: f64| Contribution::Skew { offset_nanos, drift_ppm };
    let [nested, overlapping] = nested_and_overlapping(skew(10 * minute, 0.0), skew(-minute, 1000.0));
    let bend = |offset_nanos: i64, drift_ppm: f64| State::Clock(Some(ClockBend { offset_nanos, drift_ppm }));
    // Nested: the inner skew (from 20 s, 1 ms/s fast) adds -1 min + 5 ms at 25 s.
    assert_eq!(nested[1], bend(10 * minute, 0.0));
    assert_eq!(nested[2], bend(9 * minute + 5_000_000, 1000.0));
    assert_eq!(nested[3], bend(10 * minute, 0.0), "the inner skew's offset and accumulated drift leave with it");
    assert_eq!(nested[6], State::Clock(None));
    // Overlapping: at 45 s only the second is in force, 15 s into its drift.
    assert_eq!(overlapping[3], bend(9 * minute + 5_000_000, 1000.0));
    assert_eq!(overlapping[4], bend(-minute + 15_000_000, 1000.0));
    // Steps add to skews and to each other.
    let [nested, _] = nested_and_overlapping(Contribution::Step { step_nanos: 2 * minute }, skew(minute, 0.0));
    assert_eq!(nested[2], bend(3 * minute, 0.0));
    let [nested, _] = nested_and_overlapping(
        Contribution::Step { step_nanos: 2 * minute },
        Contribution::Step { step_nanos: -minute },
    );
    assert_eq!(nested[2], bend(minute, 0.0));
}

#[test]
fn limits_take_the_smallest_factors_multiply_dash0_takes_the_worst() {
    let [nested, overlapping] = nested_and_overlapping(Contribution::Limit(500), Contribution::Limit(800));
    assert_eq!(nested[2], State::Limit(Some(500)));
    assert_eq!(overlapping[4], State::Limit(Some(800)), "the smaller ended, the larger holds");
    assert_eq!(nested[6], State::Limit(None));
    let [nested, _] = nested_and_overlapping(Contribution::Factor(2.0), Contribution::Factor(3.0));
    assert_eq!(nested.iter().map(|s| s.to_string()).collect::<Vec<_>>(), ["x1", "x2", "x6", "x2", "x2", "x2", "x1"]);
    let [nested, _] = nested_and_overlapping(Contribution::RateLimit(100), Contribution::RateLimit(20));
    assert_eq!(nested[2], State::RateLimit(Some(20)));
    assert_eq!(nested[3], State::RateLimit(Some(100)));
    let slow = |ms: u64, stores_before_delay: bool| {
        Contribution::Slow(obsim::parts::dash0::Slowness { delay: Duration::from_millis(ms), stores_before_delay })
    };
    let [nested, _] = nested_and_overlapping(slow(5_000, false), slow(1_000, true));
    assert_eq!(
        nested[2],
        State::Slow(Some(obsim::parts::dash0::Slowness {
            delay: Duration::from_millis(5_000),
            stores_before_delay: true
        }))
    );
    assert_eq!(
        nested[3],
        State::Slow(Some(obsim::parts::dash0::Slowness {
            delay: Duration::from_millis(5_000),
            stores_before_delay: false
        }))
    );
}

#[test]
fn overlapping_dash0_errors_all_apply_in_schedule_order() {
    let errors = |status: u16| {
        Contribution::Errors(obsim::parts::dash0::ErrorScript {
            errors: obsim::parts::dash0::ScriptedErrors { status, rate: 1.0, retry_after: None },
            scope: Default::default(),
        })
    };
    let [nested, overlapping] = nested_and_overlapping(errors(503), errors(502));
    let statuses = |state: &State| match state {
        State::Errors(scripts) => scripts.iter().map(|s| s.errors.status).collect::<Vec<_>>(),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        nested.iter().map(statuses).collect::<Vec<_>>(),
        [vec![], vec![503], vec![503, 502], vec![503], vec![503], vec![503], vec![]]
    );
    assert_eq!(
        overlapping.iter().map(statuses).collect::<Vec<_>>(),
        [vec![], vec![503], vec![503], vec![503, 502], vec![502], vec![502], vec![]]
    );
}

#[test]
fn a_fault_resolves_to_one_contribution_per_link_and_host() {
    let hosts_of = |selector: &str| -> Vec<String> {
        match selector {
            "machines" => vec!["openai-1".into(), "comfyui-1".into()],
            "railway" => vec!["railway-aggregator".into(), "railway-redis".into()],
            other => vec![other.to_string()],
        }
    };
    let fault: FaultSpec = toml::from_str(
        "kind = \"link_drop\"\nat = \"1s\"\nfor = \"1s\"\nfrom = \"railway-aggregator\"\nto = \"openai-1\"\noneway = true\n",
    )
    .unwrap();
    // railway-aggregator > openai-1 by name, so the direction is b -> a.
    assert_eq!(contribute(&fault, &hosts_of), vec![(link(), Contribution::Drop { ab: false, ba: true })]);
    let fault: FaultSpec =
        toml::from_str("kind = \"link_stall\"\nat = \"1s\"\nfor = \"1s\"\nfrom = \"machines\"\nto = \"railway\"\n")
            .unwrap();
    assert_eq!(contribute(&fault, &hosts_of).len(), 4);
}

// ---------------------------------------------------------------------------------------
// End to end.

/// The shared header (scenario_support::openai_header): 1 OpenAI machine of 4 workers, reliable agents.
fn one_openai() -> String {
    scenario_support::openai_header("compose", 5, "2m", "3m", 1, 4)
}

fn run(base: &str, extra: &str) -> (Pipeline, Verdict) {
    let scenario = Scenario::parse(Path::new("compose.toml"), &format!("{base}{extra}")).unwrap();
    let mut pipeline = Pipeline::build(Arc::new(scenario), 5);
    pipeline.run().unwrap();
    let verdict = Verdict::judge(&pipeline, pipeline.world.outcome());
    (pipeline, verdict)
}

/// Seconds at which events of `kind` happened on `host`.
fn seconds_of(pipeline: &Pipeline, kind: EventKind, host: &str) -> Vec<u64> {
    let events = pipeline.world.events().kept();
    events.iter().filter(|e| e.kind == kind && &*e.host == host).map(|e| e.true_nanos / 1_000_000_000).collect()
}

/// The issue's repro: a 5 s drop nested in a 90 s drop on the same link. Before, the inner
/// drop's end repaired the link at 45 s and the agent was acked at ~91 s while the event log
/// said the link was down until 2 m.
#[test]
fn a_short_drop_nested_in_a_long_one_does_not_repair_the_link_early() {
    let (pipeline, verdict) = run(
        &one_openai(),
        r#"
[[fault]]
kind = "link_drop"
at = "30s"
for = "90s"
from = "openai-1"
to = "railway-aggregator"
[[fault]]
kind = "link_drop"
at = "40s"
for = "5s"
from = "openai-1"
to = "railway-aggregator"
[expect]
# A chunk whose ack timed out in the drop is resent on a new connection after it, and TCP
# still delivers the first copy: at-least-once, as with a real kernel.
max_duplicate_ratio = 0.02
"#,
    );
    let acks = seconds_of(&pipeline, EventKind::AgentAck, "openai-1");
    assert!(acks.iter().any(|s| *s < 30), "acked before the drop: {acks:?}");
    let during: Vec<&u64> = acks.iter().filter(|s| (31..120).contains(*s)).collect();
    assert!(during.is_empty(), "no ack while the outer drop holds the link down (30 s..2 m): {during:?}");
    assert!(acks.iter().any(|s| *s >= 120), "acked again after the link came back: {acks:?}");
    let composed: Vec<String> = pipeline
        .world
        .events()
        .kept()
        .iter()
        .filter(|e| e.kind == EventKind::FaultCompose)
        .map(|e| format!("{} {}", e.true_nanos / 1_000_000_000, e.detail))
        .collect();
    assert_eq!(
        composed,
        [
            "40 link openai-1 <-> railway-aggregator: down both ways (1 other fault(s) in force)",
            "45 link openai-1 <-> railway-aggregator: down both ways (1 other fault(s) in force)",
        ],
        "the event log says the link stays down when the inner drop ends"
    );
    assert!(verdict.passed(), "{}", verdict.render());
}

/// A latency nested in another on the same link: when the inner one ends the outer one's
/// latency is back (before, the world's default was restored).
#[test]
fn a_nested_latency_leaves_the_outer_latency_in_force() {
    let scenario = Scenario::parse(
        Path::new("compose.toml"),
        &format!(
            "{}{}",
            one_openai(),
            r#"
[[fault]]
kind = "latency"
at = "10s"
for = "60s"
from = "openai-1"
to = "railway-aggregator"
latency = "800ms"
[[fault]]
kind = "latency"
at = "20s"
for = "10s"
from = "openai-1"
to = "railway-aggregator"
latency = "100ms"
jitter = "1s"
"#
        ),
    )
    .unwrap();
    let scenario = Arc::new(scenario);
    let mut pipeline = Pipeline::build(Arc::clone(&scenario), 5);
    obsim::pipeline::apply_fault(&mut pipeline, &scenario.faults, 0, Phase::Start);
    obsim::pipeline::apply_fault(&mut pipeline, &scenario.faults, 1, Phase::Start);
    let both = link_state(false, false, false, Some((800, 1_100)), 0.0);
    assert_eq!(pipeline.injector.applied(&link()), both);
    obsim::pipeline::apply_fault(&mut pipeline, &scenario.faults, 1, Phase::End);
    assert_eq!(pipeline.injector.applied(&link()), link_state(false, false, false, Some((800, 800)), 0.0));
    obsim::pipeline::apply_fault(&mut pipeline, &scenario.faults, 0, Phase::End);
    assert_eq!(pipeline.injector.applied(&link()), link_state(false, false, false, None, 0.0));
}

/// A skew nested in a step on one clock: offsets add, and the skew's end leaves the step
/// (before, a skew's start discarded the step and its end reset the clock to true time).
#[test]
fn a_skew_nested_in_a_step_leaves_the_step_when_it_ends() {
    let scenario = Scenario::parse(
        Path::new("compose.toml"),
        &format!(
            "{}{}",
            one_openai(),
            r#"
[[fault]]
kind = "clock_step"
at = "10s"
target = "openai-1"
step = "2m"
[[fault]]
kind = "clock_skew"
at = "20s"
for = "10s"
target = "openai-1"
offset = "1m"
behind = true
"#
        ),
    )
    .unwrap();
    let scenario = Arc::new(scenario);
    let mut pipeline = Pipeline::build(Arc::clone(&scenario), 5);
    let skew = |p: &Pipeline| p.world.clock("openai-1").unwrap().skew_nanos_at(p.world.elapsed());
    obsim::pipeline::apply_fault(&mut pipeline, &scenario.faults, 0, Phase::Start);
    obsim::pipeline::apply_fault(&mut pipeline, &scenario.faults, 1, Phase::Start);
    assert_eq!(skew(&pipeline), 60_000_000_000, "+2 m - 1 m");
    obsim::pipeline::apply_fault(&mut pipeline, &scenario.faults, 1, Phase::End);
    assert_eq!(skew(&pipeline), 120_000_000_000, "the step stays");
}

/// `heal = "never"`: a clock stepped 10 minutes ahead stays ahead through the drain. The
/// pipeline still delivers everything (Dash0 accepts timestamps up to 3 days ahead, and
/// obsim measures latency with true time, so a host clock ahead changes neither), and the
/// event log says the fault was not healed.
#[test]
fn a_clock_never_healed_stays_ahead_through_the_drain() {
    let (pipeline, verdict) = run(
        &one_openai(),
        "[[fault]]\nkind = \"clock_skew\"\nat = \"30s\"\ntarget = \"openai-1\"\noffset = \"10m\"\nheal = \"never\"\n",
    );
    let ahead = pipeline.world.clock("openai-1").unwrap().skew_nanos_at(pipeline.world.elapsed());
    assert_eq!(ahead, 600_000_000_000, "still 10 minutes ahead at the end of the drain");
    let events = pipeline.world.events().kept();
    assert!(!events.iter().any(|e| e.kind == EventKind::FaultEnd), "never healed");
    let drain = events.iter().find(|e| e.kind == EventKind::DrainStart).unwrap();
    assert!(drain.detail.starts_with("faults healed except fault[0]"), "{}", drain.detail);
    assert_eq!(verdict.accounting.outcomes.len(), 0, "nothing lost: {}", verdict.render());
    assert!(verdict.passed(), "{}", verdict.render());
    // Reports say so: the window runs to the end of the run and is not "healed by the drain".
    let window = &verdict.fault_windows[0];
    assert!(window.never_healed && !window.ends_at_heal, "{window:?}");
    assert_eq!(window.end, Duration::from_secs(5 * 60), "{window:?}");

    // `heal = "never"` with `for` means nothing: refused at load, naming the key.
    let error = Scenario::parse(
        Path::new("compose.toml"),
        &format!(
            "{}[[fault]]\nkind = \"clock_skew\"\nat = \"30s\"\nfor = \"10s\"\ntarget = \"openai-1\"\noffset = \"10m\"\nheal = \"never\"\n",
            one_openai()
        ),
    )
    .unwrap_err()
    .to_string();
    assert!(error.contains("heal") && error.contains("without `for`"), "{error}");
}

/// Dash0 errors scoped to logs over HTTP: the shipper (logs, HTTP) retries; the collectors'
/// gRPC exports (spans, metrics) are untouched: no refusal over gRPC, no collector retry.
#[test]
fn dash0_errors_scoped_to_logs_over_http_leave_grpc_untouched() {
    let (pipeline, verdict) = run(
        &one_openai(),
        "[[fault]]\nkind = \"dash0_errors\"\nat = \"30s\"\nfor = \"30s\"\nstatus = 503\nsignal = \"logs\"\nprotocol = \"http\"\n",
    );
    let events = pipeline.world.events().kept();
    let refused: Vec<&str> =
        events.iter().filter(|e| e.kind == EventKind::Dash0Refused).map(|e| e.detail.as_str()).collect();
    assert!(!refused.is_empty(), "the scoped errors refused something");
    assert!(refused.iter().all(|d| d.starts_with("http logs status 503")), "{refused:?}");
    assert!(!seconds_of(&pipeline, EventKind::ShipperRetry, "railway-shipper").is_empty(), "the shipper retried");
    let collector_trouble: Vec<EventKind> =
        events.iter().filter(|e| e.kind == EventKind::CollectorRetry).map(|e| e.kind).collect();
    assert!(collector_trouble.is_empty(), "no collector retried: {collector_trouble:?}");
    assert!(verdict.passed(), "{}", verdict.render());
    // Unscoped, the same window also refuses the collectors' gRPC exports.
    let (pipeline, _) =
        run(&one_openai(), "[[fault]]\nkind = \"dash0_errors\"\nat = \"30s\"\nfor = \"30s\"\nstatus = 503\n");
    let events = pipeline.world.events().kept();
    assert!(
        events.iter().any(|e| e.kind == EventKind::Dash0Refused && e.detail.starts_with("grpc")),
        "unscoped errors hit gRPC too"
    );
}

/// Whether two faults act on one target at one moment: the same link pair (as written),
/// the same host selector, Dash0, or the same buffer, with overlapping windows.
fn overlap_on_one_target(x: &FaultSpec, y: &FaultSpec, duration: Duration) -> bool {
    use obsim::faults::FaultScope;
    let same_target = match (x.header().scope, y.header().scope) {
        (FaultScope::Link { from: a, to: b, .. }, FaultScope::Link { from: c, to: d, .. }) => (a, b) == (c, d),
        (FaultScope::Hosts(a), FaultScope::Hosts(b)) => a == b,
        (FaultScope::Dash0, FaultScope::Dash0) => true,
        _ => false,
    };
    let end = |f: &FaultSpec| f.end().unwrap_or(duration);
    same_target && x.at() < end(y) && y.at() < end(x)
}

/// Chaos sweeps draw overlapping faults on one target in a share of cases, and the same
/// seed still draws the same schedule.
#[test]
fn chaos_schedules_overlap_faults_on_one_target_in_a_share_of_seeds() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/baseline.toml");
    let base = Scenario::load(&path).unwrap();
    let chaos = base.chaos.clone().expect("baseline takes part in sweeps");
    let seeds = 200u64;
    let mut overlapping = 0;
    for seed in 0..seeds {
        let faults = obsim::chaos::strategy::draw(&base, &chaos, seed);
        assert_eq!(obsim::chaos::strategy::draw(&base, &chaos, seed), faults, "seed {seed} draws the same schedule");
        for fault in &faults {
            assert!(fault.end().unwrap_or(fault.at()) <= base.duration, "seed {seed}: {fault:?}");
        }
        let any =
            (0..faults.len()).any(|i| (0..i).any(|j| overlap_on_one_target(&faults[i], &faults[j], base.duration)));
        overlapping += u64::from(any);
    }
    assert!(overlapping * 10 >= seeds, "at least a tenth of {seeds} schedules overlap on one target: {overlapping}");
}

/// Records Dash0 stored more than once, per signal (by its name in the accounting).
fn duplicated(verdict: &Verdict) -> Vec<(String, u64)> {
    verdict.accounting.totals.iter().map(|(signal, totals)| (format!("{signal:?}"), totals.duplicated)).collect()
}

/// A slow Dash0 that stores before it answers, slower than the shipper's 10 s request
/// timeout: the shipper gives up, retries a batch Dash0 already holds, and Dash0 holds it
/// twice (the duplicates check counts them; `max_duplicate_ratio` decides). Storing after
/// the delay (the default), the same fault stores nothing the shipper gave up on: no
/// duplicates.
#[test]
fn a_slow_dash0_that_stores_before_answering_makes_duplicates() {
    let slow = "[[fault]]\nkind = \"dash0_slow\"\nat = \"30s\"\nfor = \"20s\"\ndelay = \"15s\"\n";
    let (pipeline, verdict) = run(&one_openai(), &format!("{slow}stores = \"before_delay\"\n"));
    let twice: u64 = duplicated(&verdict).iter().map(|(_, count)| count).sum();
    assert!(twice > 0, "retried batches stored twice: {}", verdict.render());
    let check = verdict.checks().iter().find(|c| c.name == CheckName::Duplicates).unwrap();
    assert!(!check.passed, "no duplicates allowed by default: {}", check.detail);
    let logs = verdict.accounting.totals.iter().find(|(signal, _)| format!("{signal:?}") == "Log").map(|(_, t)| t);
    assert!(
        logs.is_some_and(|totals| !totals.duplicate_examples.is_empty()),
        "the duplicates are named: {:?}",
        duplicated(&verdict)
    );
    assert!(!seconds_of(&pipeline, EventKind::ShipperRetry, "railway-shipper").is_empty(), "the shipper retried");

    let (_, verdict) = run(&one_openai(), slow);
    assert_eq!(duplicated(&verdict).iter().map(|(_, count)| count).sum::<u64>(), 0, "{}", verdict.render());
}
