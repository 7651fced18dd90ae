//! The fault schedule: `[[fault]]` errors name file, line and key; each fault is in the event
//! log when it starts and ends; faults change what the checkers see.

mod scenario_support;

use std::path::Path;
use std::sync::Arc;

use obsim::check::CheckName;
use obsim::check::Verdict;
use obsim::ledger::{Custodian, Outcome};
use obsim::pipeline::Pipeline;
use obsim::scenario::Scenario;
use obsim::vocab::{EventKind, LossCause, Part};

/// The shared header (scenario_support::openai_header): 2 OpenAI machines of 2 workers, reliable agents.
fn base() -> String {
    scenario_support::openai_header("faults", 9, "2m", "2m", 2, 2)
}

fn parse(faults: &str) -> Result<Scenario, String> {
    Scenario::parse(Path::new("faults.toml"), &format!("{}{faults}", base())).map_err(|error| error.to_string())
}

#[test]
fn an_unknown_kind_field_or_host_is_refused_with_its_line_and_key() {
    let error = parse("[[fault]]\nat = \"30s\"\nkind = \"link_flap\"\n").unwrap_err();
    assert!(
        error.starts_with("faults.toml:13:1: key `fault[0].kind`") && error.contains("unknown variant `link_flap`"),
        "{error}"
    );

    let error = parse("[[fault]]\nat = \"30s\"\nkind = \"crash\"\ntarget = \"api\"\ndown = \"5s\"\n").unwrap_err();
    assert!(error.contains("unknown field `down`"), "{error}");

    let error = parse("[[fault]]\nat = \"30s\"\nkind = \"crash\"\ntarget = \"api\"\n[[fault]]\nat = \"30s\"\nkind = \"restart\"\ntarget = \"machine:comfyui-*\"\ndown_for = \"5s\"\n").unwrap_err();
    assert!(error.starts_with("faults.toml:18:1: key `fault[1].target`") && error.contains("names no host"), "{error}");

    let error = parse("[[fault]]\nat = \"1m\"\nkind = \"dash0_slow\"\ndelay = \"1s\"\nfor = \"2m\"\n").unwrap_err();
    assert!(error.contains("key `fault[0].at`") && error.contains("ends at 3m, after duration 2m"), "{error}");

    let error = parse("[[fault]]\nat = \"1m\"\nkind = \"dash0_errors\"\nstatus = 200\nfor = \"10s\"\n").unwrap_err();
    assert!(error.contains("key `fault[0].status`"), "{error}");
}

#[test]
fn each_fault_starts_and_ends_in_the_event_log_and_is_healed_before_the_drain() {
    let scenario = parse(
        "[[fault]]\nat = \"20s\"\nkind = \"link_drop\"\nfor = \"15s\"\nfrom = \"machines\"\nto = \"railway\"\n\
         [[fault]]\nat = \"40s\"\nkind = \"crash\"\ntarget = \"railway-shipper\"\n\
         [[fault]]\nat = \"50s\"\nkind = \"dash0_errors\"\nstatus = 503\nretry_after = \"2s\"\nfor = \"20s\"\n",
    )
    .unwrap();
    let mut pipeline = Pipeline::build(Arc::new(scenario), 9);
    pipeline.run().unwrap();
    let faults: Vec<(u64, String)> = pipeline
        .world
        .events()
        .kept()
        .into_iter()
        .filter(|event| {
            matches!(
                event.kind,
                EventKind::FaultStart | EventKind::FaultEnd | EventKind::FaultCompose | EventKind::DrainStart
            )
        })
        .map(|event| (event.true_nanos / 1_000_000_000, format!("{} {}", event.kind, event.detail)))
        .collect();
    let expected: Vec<(u64, String)> = vec![
        (20, "fault.start link_drop machines <-> railway".into()),
        (35, "fault.end link_drop machines <-> railway".into()),
        (40, "fault.start crash railway-shipper".into()),
        (50, "fault.start dash0_errors status 503 rate 1 retry_after Some(\"2s\")".into()),
        (70, "fault.end dash0_errors status 503 rate 1 retry_after Some(\"2s\")".into()),
        (120, "fault.end crash railway-shipper".into()),
        (120, "drain.start faults healed; draining for 2m".into()),
    ];
    assert_eq!(faults, expected);
    let verdict = obsim::check::Verdict::judge(&pipeline, pipeline.world.outcome());
    assert!(verdict.passed(), "the healed pipeline delivers everything: {}", verdict.render());
}

#[test]
fn a_clock_hours_behind_makes_dash0_refuse_exactly_that_machines_records() {
    let scenario = parse(
        "[[fault]]\nat = \"30s\"\nkind = \"clock_skew\"\nfor = \"30s\"\ntarget = \"openai-2\"\noffset = \"7h\"\nbehind = true\n",
    )
    .unwrap();
    let verdict = Verdict::run(Arc::new(scenario), 9).unwrap();
    let delivery = verdict.checks().iter().find(|check| check.name == CheckName::Delivery).unwrap();
    assert!(!delivery.passed, "loss without an allowed cause fails: {}", verdict.render());
    let causes: Vec<&Outcome> = verdict.accounting.outcomes.keys().map(|(_, outcome)| outcome).collect();
    let dash0 = Custodian { part: Part::Dash0, host: Arc::from("dash0") };
    let refused = Outcome::Lost { cause: LossCause::Dash0TimestampRange, custodian: dash0 };
    assert_eq!(causes, vec![&refused; causes.len()]);
    assert!(!causes.is_empty());
}

#[test]
fn a_latency_fault_delays_delivery_and_a_clock_step_loses_nothing() {
    let calm = Verdict::run(Arc::new(parse("").unwrap()), 9).unwrap();
    let slow = parse("[[fault]]\nat = \"20s\"\nkind = \"latency\"\nfor = \"60s\"\nfrom = \"machines\"\nto = \"railway\"\nlatency = \"1s\"\njitter = \"500ms\"\n").unwrap();
    let slow = Verdict::run(Arc::new(slow), 9).unwrap();
    assert!(slow.passed(), "{}", slow.render());
    assert!(
        slow.log_latency.max_micros > calm.log_latency.max_micros + 1_000_000,
        "1 s per packet must show in the worst latency: calm {} µs, slow {} µs",
        calm.log_latency.max_micros,
        slow.log_latency.max_micros
    );

    let stepped =
        parse("[[fault]]\nat = \"30s\"\nkind = \"clock_step\"\ntarget = \"openai-1\"\nstep = \"2m\"\nbehind = true\n")
            .unwrap();
    let stepped = Arc::new(stepped);
    let mut probe = Pipeline::build(Arc::clone(&stepped), 9);
    obsim::pipeline::apply_fault(&mut probe, &stepped.faults, 0, obsim::faults::Phase::Start);
    let skew = probe.world.clock("openai-1").unwrap().skew_nanos_at(probe.world.elapsed());
    assert_eq!(skew, -120_000_000_000, "the clock stepped 2 minutes back");
    let mut pipeline = Pipeline::build(stepped, 9);
    pipeline.run().unwrap();
    assert!(
        pipeline
            .world
            .events()
            .kept()
            .iter()
            .any(|event| event.kind == EventKind::FaultStart && event.detail == "clock_step openai-1 step -2m")
    );
    let verdict = obsim::check::Verdict::judge(&pipeline, pipeline.world.outcome());
    assert!(verdict.passed(), "{}", verdict.render());
    assert_eq!(
        pipeline.world.clock("openai-1").unwrap().skew_nanos_at(pipeline.world.elapsed()),
        0,
        "healed for the drain"
    );
}
