//! The `backpressure` fault: Redis `maxmemory` shrunk at a moment (through `RedisControl`, as
//! `CONFIG SET maxmemory` would), Fluentd's `total_limit_size` shrunk (`AggregatorControl`),
//! Fluent Bit's `mem_buf_limit` shrunk on chosen hosts (`AgentControl`), and a load burst
//! (through `WorkloadControl`). Each starts and ends in the event log, refuses a malformed
//! table naming its key, and has its effect: OOM on writes while shrunk (surviving a Redis
//! restart), refused or dropped chunks at the aggregator, paused agent inputs, more jobs
//! while bursting — and, where the configuration promises it, no record lost.

mod scenario_support;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, RedisConnectionInfo};

use obsim::check::CheckName;
use obsim::check::Verdict;
use obsim::ledger::{Custodian, Ledger, Outcome};
use obsim::parts::PartCtx;
use obsim::parts::redis::{RedisConfig, RedisControl};
use obsim::pipeline::Pipeline;
use obsim::record::RecordId;
use obsim::scenario::Scenario;
use obsim::vocab::{EventKind, LossCause, Part, Signal, hosts, ports};
use obsim::world::WorldBuilder;

/// The shared header (scenario_support::openai_header): 2 OpenAI machines of 2 workers, reliable agents.
fn base() -> String {
    scenario_support::openai_header("backpressure", 9, "2m", "3m", 2, 2)
}

fn parse(faults: &str) -> Result<Scenario, String> {
    Scenario::parse(Path::new("bp.toml"), &format!("{}{faults}", base())).map_err(|error| error.to_string())
}

/// `fault.*` and `redis.maxmemory` events as (whole seconds, "kind detail").
fn fault_events(pipeline: &Pipeline) -> Vec<(u64, String)> {
    pipeline
        .world
        .events()
        .kept()
        .into_iter()
        .filter(|event| {
            matches!(
                event.kind,
                EventKind::FaultStart | EventKind::FaultEnd | EventKind::FaultCompose | EventKind::RedisMaxmemory
            )
        })
        .map(|event| (event.true_nanos / 1_000_000_000, format!("{} {}", event.kind, event.detail)))
        .collect()
}

#[test]
fn a_backpressure_table_names_the_key_it_lacks_or_must_not_have() {
    let table = |body: &str| parse(&format!("[[fault]]\nat = \"30s\"\nkind = \"backpressure\"\nfor = \"20s\"\n{body}"));
    let error = table("what = \"redis_maxmemory\"\n").unwrap_err();
    assert!(
        error.starts_with("bp.toml:") && error.contains("key `fault[0].what`") && error.contains("needs `bytes`"),
        "{error}"
    );
    let error = table("what = \"jobs_per_second\"\n").unwrap_err();
    assert!(error.contains("key `fault[0].what`") && error.contains("needs `factor`"), "{error}");
    let error = table("what = \"redis_maxmemory\"\nbytes = 900000\nfactor = 2.0\n").unwrap_err();
    assert!(error.contains("key `fault[0].factor`") && error.contains("takes `bytes`, not `factor`"), "{error}");
    let error = table("what = \"jobs_per_second\"\nfactor = 0.0\n").unwrap_err();
    assert!(error.contains("key `fault[0].factor`") && error.contains("out of range: must be ≥ 0.000001"), "{error}");
    let error = table("what = \"redis_maxmemory\"\nbytes = 0\n").unwrap_err();
    assert!(error.contains("key `fault[0].bytes`"), "{error}");
    let error = table("what = \"collector_queue\"\nbytes = 1\n").unwrap_err();
    assert!(error.contains("unknown variant `collector_queue`"), "{error}");
    let error = table("what = \"aggregator_buffer\"\n").unwrap_err();
    assert!(
        error.contains("key `fault[0].what`") && error.contains("needs `bytes` (the shrunk total_limit_size)"),
        "{error}"
    );
    let error = table("what = \"aggregator_buffer\"\nbytes = 0\n").unwrap_err();
    assert!(error.contains("key `fault[0].bytes`") && error.contains("0 is out of range: must be ≥ 1"), "{error}");
    let error = table("what = \"aggregator_buffer\"\nbytes = 5000\nfactor = 2.0\n").unwrap_err();
    assert!(error.contains("key `fault[0].factor`") && error.contains("takes `bytes`, not `factor`"), "{error}");
    let error = table("what = \"aggregator_buffer\"\nbytes = 5000\ntarget = \"machines\"\n").unwrap_err();
    assert!(error.contains("key `fault[0].target`") && error.contains("takes no `target`"), "{error}");
    let error = table("what = \"jobs_per_second\"\nfactor = 2.0\ntarget = \"api\"\n").unwrap_err();
    assert!(error.contains("key `fault[0].target`"), "{error}");
    // base() runs its agents on filesystem storage: mem_buf_limit does not apply there.
    let error = table("what = \"agent_mem_buf\"\nbytes = 5000\n").unwrap_err();
    assert!(error.contains("key `fault[0].what`") && error.contains("memory storage only"), "{error}");
    let memory = |body: &str| {
        let text = format!(
            "{}[[fault]]\nat = \"30s\"\nkind = \"backpressure\"\nfor = \"20s\"\n{body}",
            base().replace("\"filesystem\"", "\"memory\"")
        );
        Scenario::parse(Path::new("bp.toml"), &text).map_err(|error| error.to_string())
    };
    let error = memory("what = \"agent_mem_buf\"\n").unwrap_err();
    assert!(
        error.contains("key `fault[0].what`") && error.contains("needs `bytes` (the shrunk mem_buf_limit)"),
        "{error}"
    );
    let error = memory("what = \"agent_mem_buf\"\nbytes = 0\n").unwrap_err();
    assert!(error.contains("key `fault[0].bytes`"), "{error}");
    let error = memory("what = \"agent_mem_buf\"\nbytes = 5000\ntarget = \"railway\"\n").unwrap_err();
    assert!(error.contains("key `fault[0].target`") && error.contains("runs no agent"), "{error}");
    let error = memory("what = \"agent_mem_buf\"\nbytes = 5000\ntarget = \"machine:comfyui-*\"\n").unwrap_err();
    assert!(error.contains("key `fault[0].target`") && error.contains("names no host"), "{error}");
    assert!(memory("what = \"agent_mem_buf\"\nbytes = 5000\n").is_ok());
    assert!(memory("what = \"agent_mem_buf\"\nbytes = 5000\ntarget = \"api\"\n").is_ok());
    assert!(table("what = \"aggregator_buffer\"\nbytes = 5000\n").is_ok());
    let error = parse(
        "[[fault]]\nat = \"110s\"\nkind = \"backpressure\"\nfor = \"20s\"\nwhat = \"jobs_per_second\"\nfactor = 2.0\n",
    )
    .unwrap_err();
    assert!(error.contains("key `fault[0].at`") && error.contains("ends at 2m10s, after duration 2m"), "{error}");
    assert!(table("what = \"jobs_per_second\"\nfactor = 3.0\n").is_ok());
}

/// Connects the real `redis` client over turmoil TCP, within a second.
async fn connect() -> Result<MultiplexedConnection, Box<dyn std::error::Error>> {
    let stream =
        tokio::time::timeout(Duration::from_secs(1), turmoil::net::TcpStream::connect((hosts::REDIS, ports::REDIS)))
            .await??;
    let config = AsyncConnectionConfig::new().set_response_timeout(Some(Duration::from_secs(1)));
    let (connection, driver) =
        MultiplexedConnection::new_with_config(&RedisConnectionInfo::default(), stream, config).await?;
    tokio::spawn(driver);
    Ok(connection)
}

#[test]
fn a_shrunk_maxmemory_refuses_writes_until_restored_even_across_a_restart() {
    let ledger = Ledger::new();
    let control = RedisControl::new();
    let mut world = WorldBuilder::new(3).duration(Duration::from_secs(30)).build();
    {
        let (ledger, control) = (ledger.clone(), control.clone());
        world.host(hosts::REDIS, move |host| {
            let ctx = PartCtx::new(host, ledger.clone());
            let no_records = |_: &[u8]| Vec::<RecordId>::new();
            obsim::parts::redis::run_with_control(ctx, RedisConfig::default(), no_records, control.clone())
        });
    }
    // One RPUSH every second, on a fresh connection (Redis restarts in between).
    let log: Arc<Mutex<Vec<String>>> = Arc::default();
    let client_log = Arc::clone(&log);
    world.host("railway-aggregator", move |_| {
        let log = Arc::clone(&client_log);
        async move {
            for second in 0..6u64 {
                let at = Duration::from_millis(500 + second * 1000);
                tokio::time::sleep(at.saturating_sub(turmoil::sim_elapsed().unwrap_or_default())).await;
                let outcome = match connect().await {
                    Ok(mut connection) => {
                        let pushed: redis::RedisResult<i64> =
                            redis::cmd("RPUSH").arg("logs").arg("chunk").query_async(&mut connection).await;
                        match pushed {
                            Ok(_) => "ok".to_string(),
                            Err(error) => error.code().unwrap_or("io").to_string(),
                        }
                    }
                    Err(_) => "unreachable".to_string(),
                };
                log.lock().unwrap().push(format!("{}.5s {outcome}", second));
            }
            Ok(())
        }
    });
    world.run_for(Duration::from_secs(2)).unwrap();
    control.set_maxmemory_bytes(Some(1));
    world.run_for(Duration::from_secs(3)).unwrap();
    world.kill(hosts::REDIS);
    world.run_for(Duration::from_millis(3_200)).unwrap();
    world.restart(hosts::REDIS);
    world.run_for(Duration::from_secs(4)).unwrap();
    control.set_maxmemory_bytes(None);
    world.run_for(Duration::from_secs(6)).unwrap();
    assert_eq!(
        *log.lock().unwrap(),
        ["0.5s ok", "1.5s ok", "2.5s OOM", "3.5s OOM", "4.5s ok", "5.5s ok"],
        "refused while shrunk (also by the restarted server), accepted once restored"
    );
    let applied: Vec<String> = world
        .events()
        .kept()
        .into_iter()
        .filter(|event| event.kind == EventKind::RedisMaxmemory)
        .map(|event| event.detail.split(' ').next().unwrap().to_string())
        .collect();
    assert_eq!(applied, ["1", "1", "0"], "applied before the first command, again after the restart, then restored");
}

#[test]
fn a_maxmemory_shrink_holds_logs_back_and_loses_nothing() {
    let scenario = parse(
        "[[fault]]\nat = \"30s\"\nkind = \"backpressure\"\nwhat = \"redis_maxmemory\"\nbytes = 900000\nfor = \"20s\"\n",
    )
    .unwrap();
    let mut pipeline = Pipeline::build(Arc::new(scenario), 9);
    pipeline.run().unwrap();
    let events = fault_events(&pipeline);
    assert_eq!(events.first().unwrap(), &(30, "fault.start backpressure redis_maxmemory 900000 bytes".to_string()));
    assert!(events.contains(&(50, "fault.end backpressure redis_maxmemory 900000 bytes".to_string())), "{events:?}");
    let applied: Vec<&str> = events
        .iter()
        .filter(|(_, e)| e.starts_with("redis.maxmemory"))
        .map(|(_, e)| e.split(' ').nth(1).unwrap())
        .collect();
    assert_eq!(applied, ["900000", "0"], "shrunk, then restored to the configured 0 (no limit)");
    let oom_retries: Vec<u64> = pipeline
        .world
        .events()
        .kept()
        .into_iter()
        .filter(|event| event.kind == EventKind::AggregatorRetry && event.detail.contains("out of memory"))
        .map(|event| event.true_nanos / 1_000_000_000)
        .collect();
    assert!(!oom_retries.is_empty(), "Fluentd's RPUSH met OOM and retried");
    assert!(oom_retries.iter().all(|second| (30..50).contains(second)), "OOM only while shrunk: {oom_retries:?}");
    let verdict = Verdict::judge(&pipeline, pipeline.world.outcome());
    assert!(verdict.passed(), "{}", verdict.render());
    assert!(verdict.accounting.outcomes.is_empty(), "nothing lost: {:?}", verdict.accounting.outcomes);
    assert!(
        verdict.log_latency.max_micros > 10_000_000,
        "logs waited out the shrink: max {} µs",
        verdict.log_latency.max_micros
    );
}

#[test]
fn a_load_burst_multiplies_submissions_for_its_window_and_everything_completes() {
    let calm = Verdict::run(Arc::new(parse("").unwrap()), 9).unwrap();
    let burst = parse(
        "[[fault]]\nat = \"30s\"\nkind = \"backpressure\"\nwhat = \"jobs_per_second\"\nfactor = 3.0\nfor = \"30s\"\n",
    )
    .unwrap();
    let mut pipeline = Pipeline::build(Arc::new(burst), 9);
    pipeline.run().unwrap();
    assert_eq!(
        fault_events(&pipeline),
        [
            (30, "fault.start backpressure jobs_per_second x3".to_string()),
            (60, "fault.end backpressure jobs_per_second x3".to_string()),
        ]
    );
    let burst = Verdict::judge(&pipeline, pipeline.world.outcome());
    assert!(calm.passed() && burst.passed(), "{}\n{}", calm.render(), burst.render());
    // 1 job/s by default; ×3 for 30 s adds about 60 jobs (Poisson: well within ±30).
    let extra = burst.jobs.submitted as i64 - calm.jobs.submitted as i64;
    assert!((30..=90).contains(&extra), "calm {} jobs, burst {} jobs", calm.jobs.submitted, burst.jobs.submitted);
    assert_eq!(burst.jobs.completed, burst.jobs.submitted, "the drain completes the backlog");
    assert_eq!(pipeline.workload_control.rate_factor(), 1.0, "the rate is restored");
}

/// Events of `kind` as (whole seconds, host, detail).
fn events_of(pipeline: &Pipeline, kind: EventKind) -> Vec<(u64, String, String)> {
    pipeline
        .world
        .events()
        .kept()
        .into_iter()
        .filter(|event| event.kind == kind)
        .map(|event| (event.true_nanos / 1_000_000_000, event.host.to_string(), event.detail.clone()))
        .collect()
}

/// The number after `records ` in an event's detail.
fn records_in(detail: &str) -> u64 {
    detail.split("records ").nth(1).and_then(|rest| rest.split_whitespace().next()).unwrap().parse().unwrap()
}

/// The `bounds` check of a verdict.
fn bounds_check(verdict: &Verdict) -> &obsim::check::Check {
    verdict.checks().iter().find(|check| check.name == CheckName::Bounds).expect("the bounds check is always on")
}

/// Fluentd's limit shrinks to 2 kB for 30 s under `throw_exception`: a write is admitted only
/// while the buffer is `storable?`, the rest are refused without an ack, the agents keep
/// their chunks and retry, and nothing is lost. The limit in force returns at the end.
#[test]
fn an_aggregator_shrink_under_throw_exception_makes_agents_retry_and_loses_nothing() {
    let scenario = parse(
        "[[fault]]\nat = \"30s\"\nkind = \"backpressure\"\nwhat = \"aggregator_buffer\"\nbytes = 2000\nfor = \"30s\"\n",
    )
    .unwrap();
    let mut pipeline = Pipeline::build(Arc::new(scenario), 9);
    pipeline.run().unwrap();
    let events = fault_events(&pipeline);
    assert_eq!(events.first().unwrap(), &(30, "fault.start backpressure aggregator_buffer 2000 bytes".to_string()));
    assert!(events.contains(&(60, "fault.end backpressure aggregator_buffer 2000 bytes".to_string())), "{events:?}");
    let applied: Vec<(u64, String)> = events_of(&pipeline, EventKind::AggregatorTotalLimit)
        .into_iter()
        .map(|(second, _, detail)| (second, detail.split(' ').next().unwrap().to_string()))
        .collect();
    assert_eq!(applied.len(), 2, "shrunk at the first write after 30s, restored after 60s: {applied:?}");
    assert_eq!((applied[0].1.as_str(), applied[1].1.as_str()), ("2000", "536870912"));
    assert!((30..32).contains(&applied[0].0) && (60..62).contains(&applied[1].0), "{applied:?}");
    let refused = events_of(&pipeline, EventKind::AggregatorOverflowRefused);
    assert!(!refused.is_empty(), "the shrunk buffer refused writes");
    assert!(refused.iter().all(|(second, _, _)| (30..61).contains(second)), "refused only while shrunk: {refused:?}");
    let retried: Vec<(u64, String, String)> = events_of(&pipeline, EventKind::AgentRetry);
    assert!(retried.iter().any(|(second, _, _)| (30..61).contains(second)), "agents retried the refused chunks");
    let verdict = Verdict::judge(&pipeline, pipeline.world.outcome());
    assert!(verdict.passed(), "{}", verdict.render());
    assert!(verdict.accounting.outcomes.is_empty(), "nothing lost: {:?}", verdict.accounting.outcomes);
    let gauge = verdict
        .buffers
        .iter()
        .find(|(id, _)| id.host == hosts::AGGREGATOR && id.buffer == "buffer_bytes")
        .map(|(_, gauge)| gauge)
        .expect("the aggregator's buffer reports its level");
    assert_eq!(gauge.limit, 512 << 20, "the gauge follows the limit in force: restored");
    let fullest = gauge.fullest.unwrap();
    assert_eq!(fullest.limit, 2000, "the fullest admission was judged against the shrunk limit: {fullest:?}");
    assert!(
        fullest.before < 2000 && fullest.after > 2000,
        "one write past the limit, admitted while storable: {fullest:?}"
    );
    assert_eq!(gauge.violations_count, 0);
}

/// The same shrink under `drop_oldest_chunk` while Redis is cut off from Fluentd (so chunks
/// queue): every write that finds the buffer full drops the oldest queued chunk. Every loss
/// is one of those chunks' records, with cause `aggregator_overflow`.
#[test]
fn an_aggregator_shrink_under_drop_oldest_chunk_loses_only_records_of_dropped_chunks() {
    let scenario = parse(
        "[aggregator]\noverflow_action = \"drop_oldest_chunk\"\n\
         [[fault]]\nat = \"30s\"\nkind = \"link_drop\"\nfor = \"30s\"\nfrom = \"railway-aggregator\"\nto = \"railway-redis\"\n\
         [[fault]]\nat = \"30s\"\nkind = \"backpressure\"\nwhat = \"aggregator_buffer\"\nbytes = 6000\nfor = \"30s\"\n\
         [expect]\nallow_loss = [\"aggregator_overflow\"]\n",
    )
    .unwrap();
    let mut pipeline = Pipeline::build(Arc::new(scenario), 9);
    pipeline.run().unwrap();
    let drops = events_of(&pipeline, EventKind::AggregatorDrop);
    assert!(!drops.is_empty(), "the full buffer dropped its oldest chunks");
    assert!(
        drops
            .iter()
            .all(|(second, _, detail)| (30..61).contains(second) && detail.ends_with("cause aggregator_overflow")),
        "{drops:?}"
    );
    let dropped: u64 = drops.iter().map(|(_, _, detail)| records_in(detail)).sum();
    let verdict = Verdict::judge(&pipeline, pipeline.world.outcome());
    assert!(verdict.passed(), "{}", verdict.render());
    let outcomes: Vec<(Signal, Outcome, u64)> = verdict
        .accounting
        .outcomes
        .iter()
        .map(|((signal, outcome), tally)| (*signal, outcome.clone(), tally.count))
        .collect();
    let aggregator = Custodian { part: Part::Aggregator, host: Arc::from(hosts::AGGREGATOR) };
    let overflow = Outcome::Lost { cause: LossCause::AggregatorOverflow, custodian: aggregator };
    // Every loss is a dropped chunk's record. A few records of dropped chunks may still be
    // delivered: an RPUSH of the same chunk that timed out in the cut is retransmitted after
    // it (TCP), so they count as delivered, not lost.
    assert_eq!(outcomes.len(), 1, "{outcomes:?}");
    assert_eq!((outcomes[0].0, &outcomes[0].1), (Signal::Log, &overflow), "{outcomes:?}");
    assert!(outcomes[0].2 > 0 && outcomes[0].2 <= dropped, "lost {} of {dropped} dropped", outcomes[0].2);
    assert!(bounds_check(&verdict).passed);
}

/// The agents' `mem_buf_limit` shrinks to 500 bytes on the machines (memory storage) for
/// 30 s: each input pauses once its buffer reaches the limit and resumes when the chunk is
/// acknowledged; the app's lines wait in the log pipe (the tail has not read them yet), so
/// nothing is lost. The API host's agent is not targeted and never changes its limit.
#[test]
fn an_agent_mem_buf_shrink_pauses_the_inputs_and_loses_nothing() {
    let memory_base = base().replace("\"filesystem\"", "\"memory\"");
    let text = format!(
        "{memory_base}[[fault]]\nat = \"30s\"\nkind = \"backpressure\"\nwhat = \"agent_mem_buf\"\nbytes = 500\nfor = \"30s\"\n"
    );
    let scenario = Scenario::parse(Path::new("bp.toml"), &text).unwrap();
    let mut pipeline = Pipeline::build(Arc::new(scenario), 9);
    pipeline.run().unwrap();
    let events = fault_events(&pipeline);
    assert_eq!(
        events.first().unwrap(),
        &(30, "fault.start backpressure agent_mem_buf 500 bytes on machines".to_string())
    );
    let applied = events_of(&pipeline, EventKind::AgentMemBufLimit);
    let hosts_applied: std::collections::BTreeSet<&str> = applied.iter().map(|(_, host, _)| host.as_str()).collect();
    assert_eq!(
        hosts_applied,
        ["openai-1", "openai-2"].into_iter().collect(),
        "only the targeted machines: {applied:?}"
    );
    for host in ["openai-1", "openai-2"] {
        let limits: Vec<&str> = applied
            .iter()
            .filter(|(_, h, _)| h == host)
            .map(|(_, _, detail)| detail.split(' ').next().unwrap())
            .collect();
        assert_eq!(limits, ["500", "52428800"], "{host}: shrunk, then restored");
    }
    let pauses = events_of(&pipeline, EventKind::AgentPause);
    assert!(!pauses.is_empty(), "the inputs paused at the shrunk limit");
    assert!(pauses.iter().all(|(second, host, _)| (30..61).contains(second) && host != hosts::API), "{pauses:?}");
    let verdict = Verdict::judge(&pipeline, pipeline.world.outcome());
    assert!(verdict.passed(), "{}", verdict.render());
    assert!(verdict.accounting.outcomes.is_empty(), "nothing lost: {:?}", verdict.accounting.outcomes);
    let gauge = verdict
        .buffers
        .iter()
        .find(|(id, _)| id.host == "openai-1" && id.buffer == "mem_buf_bytes")
        .map(|(_, gauge)| gauge)
        .expect("the agent's memory buffer reports its level");
    assert_eq!(gauge.limit, 50 << 20, "restored");
    assert_eq!(gauge.fullest.unwrap().limit, 500, "fullest against the shrunk limit: {:?}", gauge.fullest);
    assert_eq!(gauge.violations_count, 0);
}

/// Under `block`, a write that meets the shrunk buffer waits (in_forward stops reading that
/// connection) and looks again every second, as Fluentd's `sleep 1` loop does; once the
/// limit is restored every blocked write goes in, although nothing had to leave the buffer
/// first. Nothing is lost.
#[test]
fn an_aggregator_shrink_under_block_holds_writers_until_the_limit_returns() {
    let scenario = parse(
        "[aggregator]\noverflow_action = \"block\"\n\
         [[fault]]\nat = \"30s\"\nkind = \"backpressure\"\nwhat = \"aggregator_buffer\"\nbytes = 2000\nfor = \"30s\"\n",
    )
    .unwrap();
    let mut pipeline = Pipeline::build(Arc::new(scenario), 9);
    pipeline.run().unwrap();
    let blocks = events_of(&pipeline, EventKind::AggregatorBlock);
    let unblocks = events_of(&pipeline, EventKind::AggregatorUnblock);
    assert!(!blocks.is_empty(), "writes met the shrunk buffer and blocked");
    assert!(blocks.iter().all(|(second, _, _)| (30..61).contains(second)), "{blocks:?}");
    assert_eq!(blocks.len(), unblocks.len(), "every blocked write went in: {blocks:?} {unblocks:?}");
    assert!(events_of(&pipeline, EventKind::AggregatorOverflowRefused).is_empty(), "block never refuses");
    let verdict = Verdict::judge(&pipeline, pipeline.world.outcome());
    assert!(verdict.passed(), "{}", verdict.render());
    assert!(verdict.accounting.outcomes.is_empty(), "nothing lost: {:?}", verdict.accounting.outcomes);
}
