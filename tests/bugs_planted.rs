//! Planted bugs (`[bugs]`, `obsim::parts::Bugs`): for each one, a small scenario fails the checker
//! that exists for it, with a message naming the broken part and the command that replays
//! the run; the same scenario without the bug passes. Faults are applied by stepping the
//! pipeline's world by hand (`at` → action), so these tests need no fault schedule.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use obsim::check::CheckName;
use obsim::check::Verdict;
use obsim::ledger::{Custodian, Outcome};
use obsim::parts::dash0::ScriptedErrors;
use obsim::pipeline::Pipeline;
use obsim::scenario::Scenario;
use obsim::vocab::{LossCause, Part, Signal, hosts};
use obsim::world::TcpConfig;

/// Two OpenAI machines, one job a second for a minute, agents that never give up.
const SMALL: &str = r#"
name = "planted"
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
require_ack = true
"#;

/// Something done to the running pipeline at a true time.
type Action = Box<dyn FnOnce(&mut Pipeline)>;

/// Runs `toml` (with `bug`, if any, switched on under `[bugs]`) and applies `actions` at
/// their times; returns the judged run.
fn run(toml: &str, bug: Option<&str>, actions: Vec<(u64, Action)>) -> Verdict {
    let text = match bug {
        Some(bug) => format!("{toml}\n[bugs]\n{bug} = true\n"),
        None => toml.to_string(),
    };
    let scenario = Arc::new(Scenario::parse(Path::new("planted.toml"), &text).unwrap());
    let seed = scenario.seed;
    let mut pipeline = Pipeline::build(scenario, seed);
    for (at_secs, action) in actions {
        pipeline.world.run_for(Duration::from_secs(at_secs)).unwrap();
        action(&mut pipeline);
    }
    let outcome = pipeline.run().unwrap();
    Verdict::judge(&pipeline, outcome)
}

/// The check named `name`.
fn check(verdict: &Verdict, name: CheckName) -> &obsim::check::Check {
    verdict.check(name).unwrap_or_else(|| panic!("no {name} check:\n{}", verdict.render()))
}

/// The buggy run fails `name` with every one of `needles` in its detail, names the seed and
/// the replay command; the correct run passes everything.
fn assert_caught(correct: &Verdict, buggy: &Verdict, name: CheckName, needles: &[&str]) {
    assert!(correct.passed(), "without the bug the scenario passes:\n{}", correct.render());
    let failed = check(buggy, name);
    let report = buggy.render();
    assert!(!failed.passed, "the {name} check catches the bug:\n{report}");
    for needle in needles {
        assert!(failed.detail.contains(needle), "`{needle}` missing from the {name} check:\n{report}");
    }
    assert!(
        report.contains("seed 5")
            && report.contains("replay: cargo run --release -- run scenarios/planted.toml --seed 5"),
        "{report}"
    );
    assert!(report.contains("verdict FAIL"), "{report}");
}

fn partition(a: &'static str, b: &'static str) -> Action {
    Box::new(move |pipeline: &mut Pipeline| pipeline.world.partition(a, b))
}

fn repair(a: &'static str, b: &'static str) -> Action {
    Box::new(move |pipeline: &mut Pipeline| pipeline.world.repair(a, b))
}

fn dash0_errors(status: u16) -> Action {
    Box::new(move |pipeline: &mut Pipeline| {
        let errors = ScriptedErrors { status, rate: 1.0, retry_after: None };
        pipeline.dash0_control.set_errors(Some(errors)).unwrap();
    })
}

fn dash0_heal() -> Action {
    Box::new(|pipeline: &mut Pipeline| pipeline.dash0_control.heal())
}

#[test]
fn aggregator_ack_before_buffer_loses_what_the_full_buffer_refused() {
    // Redis is cut off for 30 s; the aggregator's small buffer fills and refuses writes.
    // Correct: no ack, the agents retry. Buggy: acked, refused, gone.
    // TCP delivers an RPUSH that timed out in the cut once it heals, while Fluentd retried the
    // chunk: a few records stored twice are the truth of the correct run (at-least-once).
    let toml = format!(
        "{SMALL}[aggregator]\nchunk_bytes_limit = 5000\ntotal_bytes_limit = 20000\n[expect]\nmax_duplicate_ratio = 0.02\n"
    );
    let actions = || -> Vec<(u64, Action)> {
        vec![(10, partition(hosts::AGGREGATOR, hosts::REDIS)), (40, repair(hosts::AGGREGATOR, hosts::REDIS))]
    };
    let correct = run(&toml, None, actions());
    let buggy = run(&toml, Some("aggregator_ack_before_buffer"), actions());
    assert_caught(
        &correct,
        &buggy,
        CheckName::Delivery,
        &["lost silently", "last custodian aggregator@railway-aggregator"],
    );
}

#[test]
fn shipper_delete_before_2xx_loses_the_batches_dash0_refused() {
    // Dash0 answers 503 for 40 s; a batch's retries expire after 20 s. Correct: the batch
    // goes back to the buffer. Buggy: it was already LREMed.
    let toml = format!("{SMALL}[shipper]\nretry_max_elapsed = \"20s\"\n");
    let actions = || -> Vec<(u64, Action)> { vec![(20, dash0_errors(503)), (60, dash0_heal())] };
    let correct = run(&toml, None, actions());
    let buggy = run(&toml, Some("shipper_delete_before_2xx"), actions());
    assert_caught(&correct, &buggy, CheckName::Delivery, &["lost silently", "last custodian shipper@railway-shipper"]);
}

#[test]
fn agent_no_retry_loses_chunks_across_a_link_drop_with_agent_retry_limit() {
    // The agent's connections give up after 5 s of unacknowledged data (TCP_USER_TIMEOUT), so
    // the 15 s cut fails the send for real: a kernel never delivers what it gave up on. (With
    // the default 924.6 s budget the cut is only a stall and the chunk arrives late.)
    let actions = || -> Vec<(u64, Action)> {
        vec![
            (
                0,
                Box::new(|pipeline: &mut Pipeline| {
                    let config = TcpConfig { user_timeout: Duration::from_secs(5), ..TcpConfig::default() };
                    pipeline.world.net().set_config(config);
                }) as Action,
            ),
            (20, partition("openai-1", hosts::AGGREGATOR)),
            (35, repair("openai-1", hosts::AGGREGATOR)),
        ]
    };
    let correct = run(SMALL, None, actions());
    let buggy = run(SMALL, Some("agent_no_retry"), actions());
    assert_caught(&correct, &buggy, CheckName::Delivery, &[]);
    let agent = Custodian { part: Part::Agent, host: Arc::from("openai-1") };
    let given_up = Outcome::Lost { cause: LossCause::AgentRetryLimit, custodian: agent };
    assert!(buggy.accounting.undelivered(Signal::Log).any(|(outcome, _)| *outcome == given_up), "{}", buggy.render());
}

#[test]
fn collector_drop_traceparent_breaks_the_one_root_per_trace_rule() {
    let correct = run(SMALL, None, Vec::new());
    let buggy = run(SMALL, Some("collector_drop_traceparent"), Vec::new());
    assert_caught(&correct, &buggy, CheckName::Correlation, &["each job's trace has exactly one root span"]);
    assert!(check(&buggy, CheckName::Delivery).passed, "nothing is lost, only unlinked:\n{}", buggy.render());
}

#[test]
fn api_new_trace_at_the_redis_hop_splits_each_job_over_two_traces() {
    let correct = run(SMALL, None, Vec::new());
    let buggy = run(SMALL, Some("api_new_trace_at_redis_hop"), Vec::new());
    assert_caught(
        &correct,
        &buggy,
        CheckName::Correlation,
        &["all spans of a job share one trace_id", "spans 2 traces"],
    );
}

#[test]
fn dash0_dropping_one_batch_is_a_silent_loss_after_the_shipper() {
    let correct = run(SMALL, None, Vec::new());
    let buggy = run(SMALL, Some("dash0_drop_one_batch"), Vec::new());
    assert_caught(
        &correct,
        &buggy,
        CheckName::Delivery,
        &["lost silently", "last custodian shipper@railway-shipper handed them on, next hop dash0 never held them"],
    );
}

#[test]
fn a_record_lost_without_a_cause_names_the_aggregator() {
    let correct = run(SMALL, None, Vec::new());
    let buggy = run(SMALL, Some("silent_record_loss"), Vec::new());
    assert_caught(
        &correct,
        &buggy,
        CheckName::Delivery,
        &[
            "1 Log records emitted ",
            "lost silently",
            "last custodian aggregator@railway-aggregator handed them on, next hop redis",
        ],
    );
}
