//! The budget and liveness checks of the verdict: throughput per 10 s window
//! (`min_throughput`), peak occupancy per hop (`max_occupancy`), liveness after the drain,
//! and Dash0's metric totals against the jobs that ran. Each passes on the baseline and
//! fails on a scenario built to break it, saying what, where, and how to replay it.

mod scenario_support;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use obsim::check::CheckName;
use obsim::check::metrics;
use obsim::check::{Check, Verdict};
use obsim::ledger::{Custodian, Outcome};
use obsim::record::{Attributes, MetricPoint, MetricValue, Number, Resource, Temporality};
use obsim::scenario::Scenario;
use obsim::units::Rate;
use obsim::vocab::{LossCause, Part, Signal};

/// Two OpenAI machines and a dev host, one job a second for a minute.
const SMALL: &str = r#"
name = "budgets"
seed = 9
duration = "1m"
drain = "1m"
[topology]
machines = [{ type = "openai", count = 2, workers = 2 }]
dev_hosts = 1
[workload]
jobs_per_second = 1.0
logs_per_job = 10
[agent]
storage = "filesystem"
retry_limit = "no_limits"
require_ack = true
"#;

fn run(text: &str) -> Verdict {
    scenario_support::judge("budgets.toml", text, None)
}

fn check(verdict: &Verdict, name: CheckName) -> &Check {
    verdict.check(name).unwrap_or_else(|| panic!("no {name} check:\n{}", verdict.render()))
}

/// Only `name` failed, and the report carries the seed and the replay command.
fn assert_only_failure(verdict: &Verdict, name: CheckName, needles: &[&str]) {
    let report = verdict.render();
    for check in verdict.checks() {
        assert_eq!(check.passed, check.name != name, "{}: {report}", check.name);
    }
    for needle in needles {
        assert!(check(verdict, name).detail.contains(needle), "`{needle}` missing:\n{report}");
    }
    assert!(report.contains("replay: cargo run --release -- run scenarios/budgets.toml --seed 9"), "{report}");
}

#[test]
fn the_baseline_passes_every_budget_liveness_and_metrics_check() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/baseline.toml");
    let mut scenario = Scenario::load(&path).unwrap();
    scenario.expect.min_throughput = Some(Rate { per_second: 5.0 });
    scenario.expect.max_occupancy =
        BTreeMap::from([(Part::Aggregator, 10_000), (Part::Shipper, 10_000), (Part::Agent, 1_000)]);
    let seed = scenario.seed;
    let verdict = Verdict::run(Arc::new(scenario), seed).unwrap();
    let report = verdict.render();
    assert!(verdict.passed(), "{report}");
    for name in
        [CheckName::Delivery, CheckName::Liveness, CheckName::Throughput, CheckName::Occupancy, CheckName::Metrics]
    {
        assert!(check(&verdict, name).passed, "{name}: {report}");
    }
    let (_, slowest) = verdict.log_throughput.min_window().unwrap();
    assert!(slowest >= 5.0, "{report}");
    assert!(verdict.metric_totals["jobs_submitted_total"].total > 100.0, "{report}");
    let aggregator_peak = verdict.occupancy.iter().find(|(c, _)| c.part == Part::Aggregator).unwrap().1.peak_count;
    assert!(aggregator_peak > 0 && aggregator_peak < 10_000, "{report}");
    assert!(verdict.occupancy.values().all(|occupancy| occupancy.held_count == 0), "all handed on: {report}");
}

#[test]
fn a_throughput_budget_above_the_workload_fails_naming_the_slowest_window() {
    let verdict = run(&format!("{SMALL}[expect]\nmin_throughput = \"500/s\"\n"));
    assert_only_failure(
        &verdict,
        CheckName::Throughput,
        &["slowest 10s window of load [", "logs/s at dash0 vs budget 500/s"],
    );
    let passing = run(&format!("{SMALL}[expect]\nmin_throughput = \"5/s\"\n"));
    assert!(passing.passed(), "{}", passing.render());
}

#[test]
fn a_bad_rate_is_refused_naming_the_key() {
    let error =
        Scenario::parse(Path::new("budgets.toml"), &format!("{SMALL}[expect]\nmin_throughput = \"500 per second\"\n"))
            .unwrap_err()
            .to_string();
    assert!(error.contains("min_throughput") && error.contains("\"500/s\""), "{error}");
}

#[test]
fn a_drain_too_short_fails_liveness_naming_the_custodians() {
    let verdict = run(&SMALL.replace("drain = \"1m\"", "drain = \"1s\""));
    let liveness = check(&verdict, CheckName::Liveness);
    let report = verdict.render();
    assert!(!liveness.passed, "{report}");
    assert!(liveness.detail.contains("records still in flight after the 1s drain"), "{report}");
    assert!(liveness.detail.contains("held by ") && liveness.detail.contains("@"), "{report}");
    assert!(check(&verdict, CheckName::Delivery).passed, "in flight is not lost: {report}");
}

#[test]
fn a_hop_buffering_past_max_occupancy_fails_naming_it() {
    let verdict = run(&format!("{SMALL}[expect]\nmax_occupancy = {{ aggregator = 3, shipper = 100000 }}\n"));
    assert_only_failure(
        &verdict,
        CheckName::Occupancy,
        &["aggregator@railway-aggregator held", "records at its peak, limit 3"],
    );
    let error =
        Scenario::parse(Path::new("budgets.toml"), &format!("{SMALL}[expect]\nmax_occupancy = {{ fluentd = 3 }}\n"))
            .unwrap_err()
            .to_string();
    assert!(error.contains("fluentd"), "{error}");
}

fn counter(temporality: Temporality, value: i64, start: u64, time: u64) -> MetricPoint {
    MetricPoint {
        name: "jobs_completed_total".into(),
        unit: "{job}".into(),
        start_time_unix_nano: start,
        time_unix_nano: time,
        attributes: Attributes::new(),
        value: MetricValue::Sum { temporality, monotonic: true, value: Number::Int(value) },
    }
}

#[test]
fn cumulative_counters_count_by_largest_value_and_a_retried_delta_batch_double_counts() {
    let machine = Resource::new("emp-machine").with_machine_id("openai-1");
    let restarted = Resource::new("emp-machine").with_machine_id("openai-2");
    // Cumulative: retried (duplicate) points and out-of-order arrival do not matter; a
    // restart starts a new series whose last value adds.
    let cumulative = [
        (&machine, counter(Temporality::Cumulative, 3, 1, 10)),
        (&machine, counter(Temporality::Cumulative, 7, 1, 30)),
        (&machine, counter(Temporality::Cumulative, 5, 1, 20)),
        (&machine, counter(Temporality::Cumulative, 7, 1, 30)),
        (&restarted, counter(Temporality::Cumulative, 4, 1, 10)),
        (&restarted, counter(Temporality::Cumulative, 2, 50, 60)),
    ];
    let totals = metrics::totals(cumulative.iter().map(|(r, p)| (*r, p)));
    assert_eq!(totals["jobs_completed_total"].total, 13.0);
    assert!(metrics::disagreements(&totals, &[("jobs_completed_total", 13, "jobs ran")]).is_empty());

    // Delta: the same batch stored twice (a retry after a lost response) counts twice.
    let batch = [counter(Temporality::Delta, 4, 0, 10), counter(Temporality::Delta, 6, 10, 20)];
    let retried: Vec<(&Resource, &MetricPoint)> =
        batch.iter().chain(batch[1..].iter()).map(|p| (&machine, p)).collect();
    let totals = metrics::totals(retried);
    let disagreements = metrics::disagreements(
        &totals,
        &[("jobs_completed_total", 10, "jobs ran"), ("jobs_submitted_total", 10, "jobs were accepted")],
    );
    let messages: Vec<String> = disagreements.iter().map(ToString::to_string).collect();
    assert_eq!(
        messages,
        vec![
            "jobs_completed_total totals 16 in Dash0, but 10 jobs ran (delta: 3 points summed; a delta stored twice counts twice)".to_string(),
            "jobs_submitted_total: no point stored in Dash0, but 10 jobs were accepted".to_string(),
        ]
    );
}

#[test]
fn metrics_that_never_reach_dash0_fail_the_metrics_check() {
    // The collectors' endpoint points nowhere: spans and metrics never arrive; the metrics
    // check says which totals are missing.
    let verdict = run(&format!(
        "{SMALL}[collector]\nendpoint_port = 9\n[expect]\ncorrelation = \"skip\"\nlost = 100000\nallow_loss = [\"collector_retry_expired\"]\n"
    ));
    let metrics = check(&verdict, CheckName::Metrics);
    assert!(!metrics.passed, "{}", verdict.render());
    assert!(metrics.detail.contains("no point stored in Dash0"), "{}", verdict.render());
}

/// A Railway aggregator restart loses what its memory buffer held (and dev hosts' POSTs
/// while it is down): the delivery check accepts exactly the causes the scenario lists, up
/// to `lost` records when given, and any other cause fails whatever `lost` says.
#[test]
fn delivery_accepts_only_the_listed_causes_and_at_most_lost_records() {
    let restart = r#"
[[fault]]
kind = "restart"
at = "30s"
target = "railway-aggregator"
down_for = "5s"
"#;
    let with =
        |expect: &str| run(&format!("{SMALL}{restart}[expect]\ncorrelation = \"skip\"\nmetrics = \"skip\"\n{expect}"));
    let causes = r#"allow_loss = ["aggregator_crash_unpersisted", "app_dev_http_failed"]"#;

    let accepted = with(causes);
    let delivery = check(&accepted, CheckName::Delivery);
    assert!(delivery.passed, "{}", accepted.render());
    let lost: u64 = accepted
        .accounting
        .outcomes
        .iter()
        .filter(|((_, o), _)| matches!(o, Outcome::Lost { .. } | Outcome::LostSilently))
        .map(|(_, t)| t.count)
        .sum();
    assert!(lost > 0, "the restart must lose something for this test to mean anything:\n{}", accepted.render());

    let over = with(&format!("{causes}\nlost = {}", lost - 1));
    assert!(!check(&over, CheckName::Delivery).passed, "{}", over.render());
    assert!(check(&over, CheckName::Delivery).detail.contains(&format!("(allowed {})", lost - 1)), "{}", over.render());

    let other_cause = with("allow_loss = [\"redis_oom\"]\nlost = 1000000");
    let detail = &check(&other_cause, CheckName::Delivery).detail;
    assert!(!check(&other_cause, CheckName::Delivery).passed, "{}", other_cause.render());
    assert!(detail.contains("without an accepted cause"), "{detail}");
    let aggregator = Custodian { part: Part::Aggregator, host: Arc::from("railway-aggregator") };
    let crash = Outcome::Lost { cause: LossCause::AggregatorCrashUnpersisted, custodian: aggregator };
    assert!(other_cause.accounting.undelivered(Signal::Log).any(|(outcome, _)| *outcome == crash), "{detail}");
}

/// A 20 s partition between the machines and Railway holds the machines' logs back until
/// Fluent Bit's backoff comes round: the recovery is measured per fault, a generous budget
/// passes, and a budget of 1 s fails naming the fault, its kind and its window.
#[test]
fn recovery_after_a_partition_is_measured_and_a_tight_budget_fails_naming_the_fault() {
    let partition = r#"
[[fault]]
kind = "link_drop"
at = "20s"
for = "20s"
from = "machines"
to = "railway"
"#;
    let with = |budget: &str| run(&format!("{SMALL}{partition}[expect]\nmax_recovery = \"{budget}\"\n"));
    let generous = with("5m");
    let recovery = &generous.recoveries[0];
    assert_eq!((recovery.fault_index, recovery.kind), (0, "link_drop"));
    assert_eq!((recovery.start.as_secs(), recovery.end.as_secs()), (20, 40));
    let logs = recovery.logs.expect("logs emitted during the partition arrived");
    assert!(logs > std::time::Duration::from_secs(1) && logs < std::time::Duration::from_secs(120), "{logs:?}");
    assert!(check(&generous, CheckName::Recovery).passed, "{}", generous.render());
    assert!(generous.render().contains("recovery fault[0] link_drop 20s..40s: logs "), "{}", generous.render());

    let tight = with("1s");
    assert_only_failure(
        &tight,
        CheckName::Recovery,
        &["fault[0] link_drop over 20s..40s", "logs caught up", "than 1s"],
    );
}
