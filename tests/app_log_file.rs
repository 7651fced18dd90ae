//! The app writes its log lines to a file that Fluent Bit tails (FIDELITY.md "App"): the
//! writer never waits and never drops a line; when the agent pauses (its `mem_buf_limit`
//! reached while Railway is unreachable) the file grows and the agent reads on from where it
//! stopped. Lines are lost only when rotation takes ones the agent has not read yet, and
//! then the oldest go first. A killed machine keeps its file (page cache); a power loss
//! takes what was never synced.

mod scenario_support;

use obsim::check::Verdict;
use obsim::vocab::LossCause;
use scenario_support::judge;

/// One OpenAI machine whose agent buffers in memory with a small `mem_buf_limit` while the
/// machines cannot reach Railway for 45 s; `app` is appended as the scenario's `[app]`.
fn paused_agent(app: &str) -> String {
    format!(
        r#"name = "paused-agent"
seed = 51
duration = "3m"
drain = "3m"
[topology]
machines = [{{ type = "openai", count = 1, workers = 4 }}]
[workload]
jobs_per_second = 1.0
logs_per_job = 40
[agent]
storage = "memory"
mem_buf_bytes_limit = 20000
retry_limit = "no_limits"
require_ack = true
[app]
{app}
[[fault]]
at = "1m"
kind = "link_drop"
for = "45s"
from = "machines"
to = "railway"
[expect]
allow_loss = ["app_log_rotated"]
correlation = "skip"
"#
    )
}

/// Log lines lost with `cause`.
fn lost_with(verdict: &Verdict, cause: LossCause) -> u64 {
    verdict.result.signals.log.losses.iter().filter(|loss| loss.cause == cause.as_str()).map(|loss| loss.count).sum()
}

#[test]
fn a_paused_agent_reads_on_from_the_file_and_nothing_is_lost() {
    // The export queues stay small (the SDK's queue); the log file is not one of them.
    let verdict = judge("paused-agent.toml", &paused_agent("log_pipe_records_limit = 100"), None);
    let log = &verdict.result.signals.log;
    assert_eq!(log.lost_count, 0, "{}", verdict.render());
    assert_eq!(log.delivered_count, log.emitted_count, "{}", verdict.render());
    assert!(verdict.passed(), "{}", verdict.render());
}

#[test]
fn rotation_takes_unread_lines_and_names_them() {
    let verdict = judge("paused-agent.toml", &paused_agent("log_file_records_limit = 20"), None);
    let rotated = lost_with(&verdict, LossCause::AppLogRotated);
    assert!(rotated > 0, "a 20-line file cannot hold 45 s of a paused agent's backlog: {}", verdict.render());
    let log = &verdict.result.signals.log;
    assert_eq!(log.lost_count, rotated, "rotation is the only loss: {}", verdict.render());
    assert_eq!(log.lost_silently_count, 0);
    assert!(verdict.passed(), "app_log_rotated is allowed here: {}", verdict.render());
}
