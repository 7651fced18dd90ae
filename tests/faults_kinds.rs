//! Fault kinds against a small pipeline, each with the effect the checkers must see: a
//! partition makes the agents retry and (filesystem + no_limits + require_ack) loses nothing;
//! Dash0 5xx makes the shipper retry and loses nothing; a Redis restart without persistence
//! loses exactly what Redis held, with cause `redis_crash_unpersisted` and no other.

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
    scenario_support::openai_header("kinds", 11, "2m", "3m", 2, 2)
}

fn run(extra: &str) -> (Pipeline, Verdict) {
    let scenario = Scenario::parse(Path::new("kinds.toml"), &format!("{}{extra}", base())).unwrap();
    let mut pipeline = Pipeline::build(Arc::new(scenario), 11);
    pipeline.run().unwrap();
    let verdict = Verdict::judge(&pipeline, pipeline.world.outcome());
    (pipeline, verdict)
}

/// Seconds at which events of `kind` happened on hosts starting with `host_prefix`.
fn seconds_of(pipeline: &Pipeline, kind: EventKind, host_prefix: &str) -> Vec<u64> {
    pipeline
        .world
        .events()
        .kept()
        .into_iter()
        .filter(|event| event.kind == kind && event.host.starts_with(host_prefix))
        .map(|event| event.true_nanos / 1_000_000_000)
        .collect()
}

/// Every cause under which records ended up not delivered, once each.
/// The distinct outcomes of the run's undelivered records, either signal.
fn causes(verdict: &Verdict) -> Vec<Outcome> {
    let causes: std::collections::BTreeSet<Outcome> =
        verdict.accounting.outcomes.keys().map(|(_, outcome)| outcome.clone()).collect();
    causes.into_iter().collect()
}

#[test]
fn a_partition_between_machines_and_railway_stalls_the_agents_and_loses_nothing() {
    // One job may stay unfinished: a worker's BLMOVE sent into the partition waits in its
    // send buffer, the worker times out and reconnects, and the kernel still delivers the
    // old BLMOVE after the heal, so Redis moves a job into an active list nobody reads (the
    // reliable-queue hazard tests/app_lifecycle.rs pins; a finding for the pipeline).
    let (pipeline, verdict) = run(
        "[[fault]]\nat = \"30s\"\nkind = \"link_drop\"\nfor = \"30s\"\nfrom = \"machines\"\nto = \"railway\"\n[expect]\nmax_jobs_unfinished = 1\n",
    );
    // TCP holds what the agents wrote into the partition and delivers it after the heal; the
    // agents' acks stop while the link is down and resume after it.
    let acks = seconds_of(&pipeline, EventKind::AgentAck, "openai-");
    assert!(acks.iter().any(|second| *second < 30), "acked before the partition: {acks:?}");
    assert!(!acks.iter().any(|second| (31..60).contains(second)), "no ack while the link is down: {acks:?}");
    assert!(acks.iter().any(|second| *second >= 60), "acked again after the heal: {acks:?}");
    let retries = seconds_of(&pipeline, EventKind::AgentRetry, "openai-");
    assert!(retries.iter().all(|second| *second >= 30), "no retry before the partition: {retries:?}");
    assert!(seconds_of(&pipeline, EventKind::AgentRetry, "api").is_empty(), "the API's agent is not cut off");
    assert!(verdict.passed(), "{}", verdict.render());
    assert_eq!(causes(&verdict), Vec::<Outcome>::new(), "nothing lost");
}

#[test]
fn dash0_errors_make_the_shipper_retry_and_lose_nothing() {
    let (pipeline, verdict) =
        run("[[fault]]\nat = \"30s\"\nkind = \"dash0_errors\"\nstatus = 503\nretry_after = \"3s\"\nfor = \"30s\"\n");
    let retries = seconds_of(&pipeline, EventKind::ShipperRetry, "railway-shipper");
    assert!(!retries.is_empty(), "the shipper retried");
    assert!(retries.iter().all(|second| (30..=60).contains(second)), "retries only while Dash0 failed: {retries:?}");
    assert!(verdict.passed(), "{}", verdict.render());
    assert_eq!(causes(&verdict), Vec::<Outcome>::new(), "nothing lost");
}

#[test]
fn a_redis_restart_without_persistence_loses_what_redis_held_and_nothing_else() {
    // Dash0 refuses for a while so that the log buffer in Redis is full when it restarts.
    let (_, verdict) = run("[[fault]]\nat = \"20s\"\nkind = \"dash0_errors\"\nstatus = 503\nfor = \"40s\"\n\
         [[fault]]\nat = \"40s\"\nkind = \"restart\"\ntarget = \"railway-redis\"\ndown_for = \"5s\"\n");
    let lost: u64 = verdict.accounting.outcomes.values().map(|tally| tally.count).sum();
    assert!(lost > 0, "Redis held logs when it restarted: {}", verdict.render());
    let redis = Custodian { part: Part::Redis, host: Arc::from("railway-redis") };
    assert_eq!(causes(&verdict), vec![Outcome::Lost { cause: LossCause::RedisCrashUnpersisted, custodian: redis }]);
    let delivery = verdict.check(CheckName::Delivery).unwrap();
    assert!(!delivery.passed, "the loss is not allowed by this scenario: {}", delivery.detail);
}

/// Two restart faults overlapping on one host (as a chaos sweep draws them): the host goes
/// down once, at the first start, and comes back once, when the last ends. Restarting it
/// at the first end while the second still held it down killed the new incarnation without
/// the ledger hearing of a crash, and what it held looked in flight for ever (liveness).
#[test]
fn overlapping_restarts_of_one_host_crash_it_once_and_restart_it_once() {
    let (pipeline, verdict) = run(r#"
[[fault]]
kind = "restart"
at = "40s"
target = "railway"
down_for = "7s"
[[fault]]
kind = "restart"
at = "43s"
target = "railway-aggregator"
down_for = "12s"
[expect]
allow_loss = ["aggregator_crash_unpersisted", "redis_crash_unpersisted", "shipper_crash_unpersisted"]
"#);
    let events = pipeline.world.events().kept();
    let on_aggregator = |kind: EventKind| {
        events
            .iter()
            .filter(|e| e.kind == kind && e.detail == "railway-aggregator")
            .map(|e| e.true_nanos / 1_000_000_000)
            .collect::<Vec<_>>()
    };
    // A restart is SIGTERM then (draining 0 s, Railway's default) SIGKILL at once.
    assert_eq!(on_aggregator(EventKind::HostKill), vec![40], "down once, at the first start");
    assert_eq!(on_aggregator(EventKind::HostRestart), vec![55], "up once, when the last fault ends");
    for name in [CheckName::Liveness, CheckName::Delivery] {
        let check = verdict.check(name).unwrap();
        assert!(check.passed, "{}", verdict.render());
    }
}
