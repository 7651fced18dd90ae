//! The agent's upstream connection behaves like Fluent Bit's (`flb_upstream`, FIDELITY.md
//! Agent): kept between chunks (`net.keepalive`), closed by the agent after
//! `net.keepalive_idle_timeout` idle, never used for a chunk once the server closed it,
//! closed after `net.keepalive_max_recycle` uses; and after a long link drop the agent
//! reconnects at its next scheduled retry, with no attempt failing on a stale connection.

mod aggregator_support;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use aggregator_support::{FakeRedis, emit_logs, events, outcomes, part_ctx};
use obsim::check::Verdict;
use obsim::ledger::{Ledger, Outcome};
use obsim::parts::RecordPipe;
use obsim::parts::agent::{self, AgentConfig, RetryLimit};
use obsim::parts::aggregator::{self, AggregatorConfig};
use obsim::pipeline::Pipeline;
use obsim::scenario::Scenario;
use obsim::vocab::hosts;
use obsim::vocab::{EventKind, Signal};
use obsim::world::{World, WorldBuilder};

const MACHINE: &str = "comfyui-1";

/// Batches of records the machine's app writes, `every` apart.
fn add_machine(world: &mut World<'_>, ledger: &Ledger, config: AgentConfig, batches: u64, every: Duration) {
    let ledger = ledger.clone();
    world.host(MACHINE, move |host| {
        let ctx = part_ctx(host, &ledger);
        let config = config.clone();
        async move {
            let pipe = RecordPipe::new(100_000);
            if ctx.host.incarnation() == 0 {
                tokio::spawn(emit_logs(ctx.clone(), pipe.clone(), "comfyui-1/worker-0", batches, 10, every));
            }
            agent::run(ctx, config, pipe, "machine.comfyui".into()).await
        }
    });
}

fn add_railway(world: &mut World<'_>, ledger: &Ledger, config: AggregatorConfig) -> FakeRedis {
    let redis = FakeRedis::new(ledger);
    let serve = redis.clone();
    world.host(hosts::REDIS, move |_| serve.clone().serve());
    let ledger = ledger.clone();
    world.host(hosts::AGGREGATOR, move |host| aggregator::run(part_ctx(host, &ledger), config.clone()));
    redis
}

/// An agent that gives up at the first failure: any attempt on a dead connection loses.
fn strict_agent() -> AgentConfig {
    AgentConfig {
        require_ack: true,
        retry_limit: RetryLimit::NoRetries,
        io_timeout: Duration::from_secs(5),
        ..AgentConfig::default()
    }
}

/// `(true seconds, detail)` of the agent's keepalive closes.
fn keepalive_closes(world: &World<'_>) -> Vec<(f64, String)> {
    events(world.events(), EventKind::AgentKeepaliveClose)
}

#[test]
fn a_connection_the_aggregator_closed_while_idle_is_never_used_for_a_chunk() {
    // The aggregator drops connections silent for 20 s; the agent would keep its own for
    // 5 minutes. Batches come a minute apart, so every batch finds its connection closed
    // by the server: the agent must have noticed and must connect afresh.
    let mut world = WorldBuilder::new(4).duration(Duration::from_secs(600)).build();
    let ledger = Ledger::new();
    let redis = add_railway(
        &mut world,
        &ledger,
        AggregatorConfig { connection_idle_timeout: Duration::from_secs(20), ..AggregatorConfig::default() },
    );
    let config = AgentConfig { keepalive_idle_timeout: Duration::from_secs(300), ..strict_agent() };
    add_machine(&mut world, &ledger, config, 5, Duration::from_secs(60));
    world.run_for(Duration::from_secs(400)).unwrap();

    assert_eq!(redis.pushed_ids().len(), 50, "{:?}", outcomes(&ledger));
    assert!(
        events(world.events(), EventKind::AgentGiveUp).is_empty()
            && events(world.events(), EventKind::AgentRetry).is_empty()
    );
    let closes = keepalive_closes(&world);
    assert_eq!(closes.len(), 5, "one close noticed per idle gap: {closes:?}");
    assert!(closes.iter().all(|(_, reason)| reason == "closed by the server"), "{closes:?}");
    assert_eq!(events(world.events(), EventKind::AgentConnect).len(), 5);
}

#[test]
fn the_agent_closes_a_connection_idle_for_keepalive_idle_timeout_and_reuses_a_busy_one() {
    let mut world = WorldBuilder::new(5).duration(Duration::from_secs(600)).build();
    let ledger = Ledger::new();
    let redis = add_railway(&mut world, &ledger, AggregatorConfig::default());
    // Three batches a second apart (one connection: one worker, so one pool), then after
    // 100 s three more.
    add_machine(&mut world, &ledger, AgentConfig { workers: 1, ..strict_agent() }, 3, Duration::from_secs(1));
    world.run_for(Duration::from_secs(100)).unwrap();
    let first_closes = keepalive_closes(&world);
    assert_eq!(first_closes.len(), 1, "{first_closes:?}");
    let (closed_at, reason) = &first_closes[0];
    assert_eq!(reason, "idle for 30s (keepalive_idle_timeout)");
    let last_ack = events(world.events(), EventKind::AgentAck).last().unwrap().0;
    assert!((closed_at - last_ack - 30.0).abs() < 0.001, "closed at {closed_at}, last ack {last_ack}");
    assert_eq!(events(world.events(), EventKind::AgentConnect).len(), 1, "one connection served the three chunks");
    // The server never saw the connection go idle long enough to close it itself.
    assert!(events(world.events(), EventKind::AggregatorIdleClose).is_empty());
    assert_eq!(redis.pushed_ids().len(), 30);
}

#[test]
fn without_keepalive_every_chunk_gets_its_own_connection_and_max_recycle_bounds_reuse() {
    let connects = |config: AgentConfig| {
        let mut world = WorldBuilder::new(6).duration(Duration::from_secs(120)).build();
        let ledger = Ledger::new();
        let redis = add_railway(&mut world, &ledger, AggregatorConfig::default());
        add_machine(&mut world, &ledger, config, 7, Duration::from_secs(1));
        world.run_for(Duration::from_secs(20)).unwrap();
        assert_eq!(redis.pushed_ids().len(), 70);
        (events(world.events(), EventKind::AgentConnect).len(), events(world.events(), EventKind::AgentAck).len())
    };
    let (connected, acked) = connects(AgentConfig { keepalive: false, ..strict_agent() });
    assert_eq!(connected, acked, "one connection per chunk");
    // Recycled at most twice: each connection serves three chunks.
    let (connected, acked) = connects(AgentConfig { keepalive_max_recycle: 2, ..strict_agent() });
    assert_eq!(connected, acked.div_ceil(3), "{acked} chunks");
    let (connected, _) = connects(AgentConfig { workers: 1, ..strict_agent() });
    assert_eq!(connected, 1, "keepalive reuses one connection");
    // out_forward's 2 workers each keep their own connection; chunks alternate between them.
    let (connected, _) = connects(strict_agent());
    assert_eq!(connected, 2, "one connection per worker");
}

/// One OpenAI machine, one job every 200 s (connections idle longer than the aggregator's
/// 2-minute idle close), an agent that never retries, nothing injected.
const SPARSE_JOBS: &str = r#"
name = "sparse-jobs"
seed = 3
duration = "15m"
drain = "2m"
[topology]
machines = [{ type = "openai", count = 1, workers = 4 }]
[workload]
jobs_per_second = 0.005
logs_per_job = 20
[agent]
retry_limit = "no_retries"
require_ack = true
[expect]
correlation = "skip"
"#;

fn run(text: &str, seed: u64) -> (Pipeline, Verdict) {
    let scenario = Arc::new(Scenario::parse(Path::new("agent-connections.toml"), text).unwrap());
    let mut pipeline = Pipeline::build(scenario, seed);
    let outcome = pipeline.run().unwrap();
    let verdict = Verdict::judge(&pipeline, outcome);
    (pipeline, verdict)
}

#[test]
fn sparse_jobs_with_no_retries_lose_nothing_when_nothing_is_injected() {
    for seed in [1, 3] {
        let (pipeline, verdict) = run(SPARSE_JOBS, seed);
        let report = verdict.render();
        assert!(verdict.passed(), "seed {seed}:\n{report}");
        assert_eq!(verdict.accounting.undelivered(Signal::Log).count(), 0, "seed {seed}:\n{report}");
        assert!(events(pipeline.world.events(), EventKind::AgentGiveUp).is_empty(), "seed {seed}");
        assert!(!events(pipeline.world.events(), EventKind::AgentKeepaliveClose).is_empty(), "seed {seed}");
    }
}

/// One OpenAI machine cut off from Railway for 10 minutes; agents that never give up.
const LONG_DROP: &str = r#"
name = "long-drop"
seed = 1
duration = "15m"
drain = "45m"
[topology]
machines = [{ type = "openai", count = 1, workers = 4 }]
[workload]
jobs_per_second = 0.2
logs_per_job = 20
[agent]
storage = "filesystem"
retry_limit = "no_limits"
require_ack = true
[[fault]]
at = "2m"
kind = "link_drop"
for = "10m"
from = "openai-1"
to = "railway"
[expect]
correlation = "skip"
"#;

/// After the drop heals, the agent's next attempt of each chunk goes through: no attempt
/// fails later than one io timeout after the heal (only one begun before it can), nothing
/// is left in the agent, and the worst latency is what Fluent Bit's scheduler gives — the
/// chunk's last retry wait before the heal can reach `min(cap, base·2^n) + 1` seconds for
/// its n-th retry and is not cut short by the link coming back, so the bound is the drop
/// (+ a flush and a send of slack) + io timeout + that wait (n read from the run's own
/// retries). Before the fix the attempt after that wait went into a connection the
/// aggregator had closed as idle, failed, and waited again (up to the 2000 s cap).
#[test]
fn after_a_ten_minute_drop_the_agent_reconnects_at_its_next_retry_and_latency_stays_within_the_backoff() {
    for seed in [1, 4] {
        let (pipeline, verdict) = run(LONG_DROP, seed);
        let report = verdict.render();
        let heal_secs = 12.0 * 60.0;
        let io_timeout_secs = AgentConfig::default().io_timeout.as_secs_f64();
        let retries = events(pipeline.world.events(), EventKind::AgentRetry);
        let late: Vec<_> = retries.iter().filter(|(at, _)| *at > heal_secs + io_timeout_secs).collect();
        assert!(late.is_empty(), "seed {seed}: attempts failed after the heal: {late:?}\n{report}");
        assert!(verdict.passed(), "seed {seed}:\n{report}");
        assert!(
            !verdict.accounting.undelivered(Signal::Log).any(|(outcome, _)| matches!(outcome, Outcome::InFlight(_))),
            "seed {seed}:\n{report}"
        );
        // The most retries any chunk had before the heal bounds its next wait.
        let most_retries = retries
            .iter()
            .filter(|(at, _)| *at <= heal_secs + io_timeout_secs)
            .filter_map(|(_, detail)| detail.split(" attempt ").nth(1)?.split_whitespace().next()?.parse::<u32>().ok())
            .max()
            .unwrap_or(0);
        let config = AgentConfig::default();
        let wait_bound_secs =
            agent::backoff::upper_bound_secs(config.scheduler_base_secs, config.scheduler_cap_secs, most_retries) + 1;
        // Records held back were emitted at most a flush and a send before the drop began.
        let (drop_secs, slack_secs) = (10.0 * 60.0, 10.0);
        let bound_secs = drop_secs + slack_secs + io_timeout_secs + wait_bound_secs as f64;
        let max_secs = verdict.log_latency.max_micros as f64 / 1e6;
        assert!(
            max_secs <= bound_secs,
            "seed {seed}: log latency max {max_secs}s over the backoff bound {bound_secs}s ({most_retries} retries)\n{report}"
        );
    }
}
