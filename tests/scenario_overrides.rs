//! `[[override]]` end to end: a host's parts run with its merged config, and the truths that
//! need a fleet that is not uniform hold.
//!
//! - one rogue machine with a wrong `shared_key` loses its own records with `auth_rejected`
//!   at its agent, while every other machine delivers everything;
//! - one group on memory storage loses what its agents buffered when the machines crash
//!   (`agent_crash_unpersisted`), while the group on filesystem storage (synced) loses
//!   nothing at its agents.
//!
//! Without overrides (the old code) neither fleet can be written: `[agent]` is one section
//! for every host, and an `[[override]]` table was an unknown key.

use std::path::Path;
use std::sync::Arc;

use obsim::check::Verdict;
use obsim::ledger::Outcome;
use obsim::scenario::Scenario;
use obsim::vocab::{LossCause, Part, Signal};

/// Every undelivered log outcome of a run: (outcome, count).
fn undelivered_logs(scenario: &str) -> Vec<(Outcome, u64)> {
    let scenario = Arc::new(Scenario::parse(Path::new("override.toml"), scenario).expect("the scenario loads"));
    let verdict = Verdict::run(Arc::clone(&scenario), scenario.seed).expect("the run completes");
    let delivered = verdict.accounting.totals[&Signal::Log].delivered;
    assert!(delivered > 0, "the run delivered logs at all:\n{}", verdict.render());
    verdict.accounting.undelivered(Signal::Log).map(|(outcome, tally)| (outcome.clone(), tally.count)).collect()
}

#[test]
fn a_rogue_machine_with_a_wrong_shared_key_loses_only_its_own_records() {
    let undelivered = undelivered_logs(
        r#"
name = "rogue-shared-key"
seed = 4
duration = "1m"
drain = "1m"
[topology]
machines = [{ type = "openai", count = 3, workers = 2 }]
[workload]
jobs_per_second = 1.0
logs_per_job = 10
[agent]
shared_key = "railway-secret"
storage = "filesystem"
require_ack = true
[aggregator]
shared_key = "railway-secret"
[[override]]
hosts = "openai-2"
agent = { shared_key = "wrong" }
"#,
    );
    let rejected: u64 = undelivered
        .iter()
        .filter(|(outcome, _)| matches!(outcome, Outcome::Lost { cause: LossCause::AuthRejected, custodian } if custodian.part == Part::Agent && &*custodian.host == "openai-2"))
        .map(|(_, count)| count)
        .sum();
    assert!(rejected > 0, "openai-2's records are lost with auth_rejected at its agent: {undelivered:?}");
    let others: Vec<&(Outcome, u64)> = undelivered
        .iter()
        .filter(|(outcome, _)| !matches!(outcome, Outcome::Lost { custodian, .. } | Outcome::InFlight(custodian) if &*custodian.host == "openai-2"))
        .collect();
    assert!(others.is_empty(), "every other host delivers everything: {others:?}");
}

#[test]
fn a_group_on_memory_storage_loses_its_buffer_on_a_crash_and_the_filesystem_group_does_not() {
    let undelivered = undelivered_logs(
        r#"
name = "memory-group-crash"
seed = 5
duration = "2m"
drain = "2m"
[topology]
machines = [{ type = "openai", count = 2, workers = 2 }, { type = "comfyui", count = 2, workers = 2 }]
[workload]
jobs_per_second = 1.0
logs_per_job = 10
[app.comfyui]
service_time_min = "1s"
service_time_max = "3s"
[agent]
storage = "filesystem"
storage_sync = "full"
retry_limit = "no_limits"
require_ack = true
[[override]]
hosts = "machine:comfyui-*"
agent = { storage = "memory" }
# The machines cannot reach Railway for a while, so their agents hold what they read…
[[fault]]
kind = "link_drop"
at = "20s"
for = "40s"
from = "machines"
to = "railway"
# …when every machine crashes; the drain starts them again.
[[fault]]
kind = "crash"
at = "50s"
target = "machines"
"#,
    );
    let agent_crash = |host_prefix: &str| -> u64 {
        undelivered
            .iter()
            .filter(|(outcome, _)| matches!(outcome, Outcome::Lost { cause: LossCause::AgentCrashUnpersisted, custodian } if custodian.part == Part::Agent && custodian.host.starts_with(host_prefix)))
            .map(|(_, count)| count)
            .sum()
    };
    assert!(agent_crash("comfyui-") > 0, "the memory group's agents lose what they buffered: {undelivered:?}");
    assert_eq!(agent_crash("openai-"), 0, "the filesystem group's agents lose nothing: {undelivered:?}");
    let agent_losses_at_openai: Vec<&(Outcome, u64)> = undelivered
        .iter()
        .filter(|(outcome, _)| matches!(outcome, Outcome::Lost { custodian, .. } if custodian.part == Part::Agent && custodian.host.starts_with("openai-")))
        .collect();
    assert!(agent_losses_at_openai.is_empty(), "no loss at the filesystem group's agents: {agent_losses_at_openai:?}");
}
