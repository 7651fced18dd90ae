//! Every loss has a cause and names where the record was born as well as where it died:
//! an agent writing without `Require_ack_response` (Fluent Bit's default) loses what the
//! next hop never took with cause `agent_unacked_write` at that agent, which a scenario can
//! accept; a part that really loses records without saying so is still a silent loss
//! (a harness bug, always a failure); a `dash0_timestamp_range` loss is born on the
//! machine whose clock was wrong.

mod scenario_support;

use obsim::check::CheckName;
use obsim::check::Verdict;
use obsim::ledger::Outcome;
use obsim::vocab::{LossCause, Signal};

fn run(text: &str, seed: u64) -> Verdict {
    scenario_support::judge("loss-causes.toml", text, Some(seed))
}

fn check(verdict: &Verdict, name: CheckName) -> &obsim::check::Check {
    verdict.check(name).unwrap_or_else(|| panic!("no {name} check:\n{}", verdict.render()))
}

/// One OpenAI machine, acks off, Fluentd restarted at 1 m for 10 s.
const RESTART_WITHOUT_ACK: &str = r#"
name = "restart-without-ack"
seed = 3
duration = "3m"
drain = "2m"
[topology]
machines = [{ type = "openai", count = 1, workers = 4 }]
[workload]
jobs_per_second = 0.5
logs_per_job = 20
[agent]
storage = "filesystem"
retry_limit = "no_limits"
require_ack = false
[[fault]]
at = "1m"
kind = "restart"
target = "railway-aggregator"
down_for = "10s"
[expect]
allow_loss = ["aggregator_crash_unpersisted", "agent_unacked_write"]
correlation = "skip"
"#;

#[test]
fn without_ack_an_aggregator_restart_loses_only_with_named_causes_a_scenario_can_accept() {
    for seed in [1, 2, 3] {
        let verdict = run(RESTART_WITHOUT_ACK, seed);
        let report = verdict.render();
        assert!(verdict.passed(), "seed {seed}:\n{report}");
        for (outcome, tally) in verdict.accounting.undelivered(Signal::Log) {
            match outcome {
                Outcome::Lost { cause, custodian } => {
                    assert!(
                        [LossCause::AggregatorCrashUnpersisted, LossCause::AgentUnackedWrite].contains(cause),
                        "seed {seed}: {cause} at {custodian}\n{report}"
                    );
                    if *cause == LossCause::AgentUnackedWrite {
                        assert_eq!(custodian.part, obsim::vocab::Part::Agent, "seed {seed}");
                    }
                    assert!(tally.born_counts.keys().all(|host| ["openai-1", "api"].contains(&&**host)), "seed {seed}");
                }
                other => panic!("seed {seed}: {other} ({} records)\n{report}", tally.count),
            }
        }
    }
}

/// Two OpenAI machines, acks off, one job a second for a minute.
const SMALL_WITHOUT_ACK: &str = r#"
name = "small-without-ack"
seed = 5
duration = "1m"
drain = "2m"
[topology]
machines = [{ type = "openai", count = 2, workers = 2 }]
[workload]
jobs_per_second = 1.0
logs_per_job = 10
[agent]
storage = "filesystem"
retry_limit = "no_limits"
require_ack = false
[expect]
allow_loss = ["agent_unacked_write"]
"#;

#[test]
fn a_record_a_part_loses_without_saying_so_is_still_silent_when_the_agent_wrote_it_without_ack() {
    let correct = run(SMALL_WITHOUT_ACK, 5);
    assert!(correct.passed(), "{}", correct.render());
    let buggy = run(&format!("{SMALL_WITHOUT_ACK}\n[bugs]\nsilent_record_loss = true\n"), 5);
    let delivery = check(&buggy, CheckName::Delivery);
    assert!(!delivery.passed, "{}", buggy.render());
    assert!(
        delivery.detail.contains("lost silently")
            && delivery.detail.contains("last custodian aggregator@railway-aggregator handed them on"),
        "{}",
        delivery.detail
    );
    let silent = &buggy.accounting.outcomes[&(Signal::Log, Outcome::LostSilently)];
    assert_eq!(silent.count, 1, "{}", buggy.render());
    assert!(
        !buggy
            .accounting
            .undelivered(Signal::Log)
            .any(|(outcome, _)| matches!(outcome, Outcome::Lost { cause: LossCause::AgentUnackedWrite, .. })),
        "the aggregator held the record, so the agent's unacked write is not its fate:\n{}",
        buggy.render()
    );
}

/// One OpenAI machine's clock 7 hours behind for two minutes: Dash0 refuses its records.
const CLOCK_BEHIND: &str = r#"
name = "clock-behind"
seed = 16
duration = "3m"
drain = "2m"
[topology]
machines = [
  { type = "comfyui", count = 1, workers = 2 },
  { type = "openai", count = 1, workers = 2 },
]
[workload]
jobs_per_second = 0.5
logs_per_job = 10
[agent]
storage = "filesystem"
retry_limit = "no_limits"
require_ack = true
[[fault]]
at = "30s"
kind = "clock_skew"
for = "1m"
target = "openai-1"
offset = "7h"
behind = true
[expect]
correlation = "skip"
"#;

#[test]
fn a_dash0_timestamp_range_loss_is_born_on_the_machine_whose_clock_was_wrong() {
    let verdict = run(CLOCK_BEHIND, 16);
    let result = verdict.result.clone();
    let mut refused = 0;
    for signal in [&result.signals.log, &result.signals.span] {
        for loss in signal.losses.iter().filter(|loss| loss.cause == LossCause::Dash0TimestampRange.as_str()) {
            assert_eq!(loss.born_host.as_deref(), Some("openai-1"), "{loss:?}");
            assert_eq!((loss.part.as_deref(), loss.host.as_deref()), (Some("dash0"), Some("dash0")), "{loss:?}");
            refused += loss.count;
        }
    }
    assert!(refused > 0, "{}", verdict.render());
    // The failure text names both ends too.
    let delivery = check(&verdict, CheckName::Delivery);
    assert!(!delivery.passed);
    assert!(
        delivery.detail.contains("born on openai-1 lost: dash0_timestamp_range at dash0@dash0"),
        "{}",
        delivery.detail
    );
    // result.json carries the field.
    let json = serde_json::to_string(&result).unwrap();
    assert!(json.contains(r#""born_host":"openai-1""#), "{json}");
}
