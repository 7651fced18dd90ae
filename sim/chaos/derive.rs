//! The `[chaos]` table of a scenario file that has none: derived from the file's own config,
//! so every file of the library can be swept (README.md, "Chaos sweeps").
//!
//! What a derived table claims is what a hand-written one claims: this config survives every
//! drawn fault of `kinds` without losing a record outside `allow_loss`. So the table takes
//! - as `allow_loss`, the causes the file's own `[expect]` already accepts (its truth: its
//!   own faults stay in every case, `crate::chaos::case`), and nothing more;
//! - as `kinds`, only the kinds whose every possible loss under this config is a cause the
//!   file accepts. A kind the config loses under by design (a power loss of a Redis without
//!   `appendfsync always`, a restart of a Fluentd with a memory buffer and 0 s draining, a
//!   kill of a Fluent Bit with memory storage, a partition or backpressure against a finite
//!   `Retry_Limit`) is left out, with the causes that ruled it out ([`Derived::excluded`]).
//!
//! The rules read the parts' configs and the durability rows of FIDELITY.md ("Hosts", and
//! each part's persistence rows): which holdings a process loss takes (memory only), which a
//! power loss takes (also every write not fsynced), and which retry budgets a partition of
//! `faults_max × fault_for_max` can spend. Each rule is one function below, saying why.

use std::collections::BTreeSet;
use std::time::Duration;

use super::strategy::{JITTER_MS_MAX, JOB_RATE_FACTOR_MAX, LATENCY_MS_MAX};
use crate::parts::agent::config::{RetryLimit, StorageType};
use crate::parts::aggregator::config::{BufferType, OverflowAction};
use crate::parts::redis::config::Persistence;
use crate::scenario::Scenario;
use crate::scenario::chaos::{ChaosConfig, ChaosKind};
use crate::vocab::LossCause;

/// Most faults of one derived schedule (the default of a hand-written table).
pub(crate) const DERIVED_FAULTS_MAX: u32 = 4;

/// Longest derived fault: a minute, as baseline's hand-written table has it — long enough
/// to build a backlog and grow every backoff, short enough that four in a row stay inside the
/// collector's default retry budget (300 s).
pub(crate) const DERIVED_FAULT_FOR_MAX: Duration = Duration::from_secs(60);

/// The kinds a derived table leaves out, each with the causes it could lose records under
/// that the file's `[expect]` does not accept.
pub type Exclusions = Vec<(ChaosKind, Vec<LossCause>)>;

/// A derived table, with why each kind left out was left out.
#[derive(Clone, Debug, PartialEq)]
pub struct Derived {
    /// The table the sweep uses.
    pub chaos: ChaosConfig,
    /// The kinds left out, each with the causes it could lose records under that the file's
    /// `[expect]` does not accept.
    pub excluded: Exclusions,
}

/// The `[chaos]` table derived for `scenario` (which has none of its own).
pub fn derive(scenario: &Scenario) -> Derived {
    let base = ChaosConfig::default();
    let mut chaos = ChaosConfig {
        kinds: Vec::new(),
        faults_max: DERIVED_FAULTS_MAX,
        fault_for_max: DERIVED_FAULT_FOR_MAX,
        allow_loss: scenario.expect.allow_loss.clone(),
        max_duplicate_ratio: scenario.expect.max_duplicate_ratio.max(base.max_duplicate_ratio),
        max_jobs_unfinished: jobs_unfinished_max(scenario),
        ..base
    };
    let accepted: BTreeSet<LossCause> = chaos.allow_loss.iter().copied().collect();
    let mut excluded = Vec::new();
    for kind in ChaosKind::ALL {
        let unaccepted: Vec<LossCause> =
            possible_losses(kind, scenario, &chaos).into_iter().filter(|cause| !accepted.contains(cause)).collect();
        if unaccepted.is_empty() {
            chaos.kinds.push(kind);
        } else {
            excluded.push((kind, unaccepted));
        }
    }
    debug_assert_eq!(chaos.kinds.len() + excluded.len(), ChaosKind::ALL.len());
    Derived { chaos, excluded }
}

/// Unfinished jobs a derived table accepts: none when the file accepts none; when it accepts
/// some (a Redis without persistence loses its queued jobs on its restart), every job the
/// run may accept. Why: the file's count is the queue's depth at its fault for its seed;
/// drawn faults move that depth (a stalled machine leaves more queued), so the count does
/// not carry over, only that such jobs are accepted.
fn jobs_unfinished_max(scenario: &Scenario) -> u64 {
    if scenario.expect.max_jobs_unfinished == 0 {
        return 0;
    }
    let jobs_max = scenario.workload.jobs_per_second * scenario.duration.as_secs_f64() * JOB_RATE_FACTOR_MAX;
    scenario.expect.max_jobs_unfinished.max(jobs_max.ceil() as u64)
}

/// Every cause `scenario`'s config may lose records under when a sweep draws faults of
/// `kind` within `chaos`'s ranges (`faults_max`, `fault_for_max`); empty: it survives them.
pub fn possible_losses(kind: ChaosKind, scenario: &Scenario, chaos: &ChaosConfig) -> BTreeSet<LossCause> {
    let outage = chaos.fault_for_max.saturating_mul(chaos.faults_max);
    let mut causes = BTreeSet::new();
    match kind {
        ChaosKind::LinkDrop | ChaosKind::LinkStall | ChaosKind::PacketLoss => {
            causes.extend(partition_losses(scenario, outage));
        }
        ChaosKind::Latency => {
            let slowest = Duration::from_millis(LATENCY_MS_MAX + JITTER_MS_MAX);
            if scenario.topology.dev_hosts > 0 && scenario.app.dev.request_timeout <= slowest {
                causes.insert(LossCause::AppDevHttpFailed);
            }
            if scenario.agent.io_timeout <= slowest {
                causes.extend(agent_retry_losses(scenario, outage));
            }
        }
        ChaosKind::Dash0Errors | ChaosKind::Dash0Slow | ChaosKind::Dash0RateLimit => {
            causes.extend(collector_retry_losses(scenario, outage));
            if scenario.redis.maxmemory_bytes > 0 {
                causes.extend(backed_up_losses(scenario, outage));
            }
        }
        ChaosKind::ClockSkew | ChaosKind::ClockStep => {}
        ChaosKind::Backpressure => causes.extend(backed_up_losses(scenario, outage)),
        ChaosKind::Restart | ChaosKind::Kill | ChaosKind::Crash | ChaosKind::PowerLoss => {
            causes.extend(host_losses(kind, scenario));
            causes.extend(partition_losses(scenario, outage));
        }
    }
    causes
}

/// A cut path (drop, stall, heavy packet loss, or a host down behind it) for up to `outage`:
/// every sender on it retries, and loses what its retry budget cannot carry across.
fn partition_losses(scenario: &Scenario, outage: Duration) -> BTreeSet<LossCause> {
    let mut causes = agent_retry_losses(scenario, outage);
    // A dev host POSTs without a buffer: `retry_limit` attempts (default 5, about 30 s of
    // backoff) and the batch is dropped (FIDELITY.md, App).
    if scenario.topology.dev_hosts > 0 {
        causes.insert(LossCause::AppDevHttpFailed);
    }
    causes.extend(collector_retry_losses(scenario, outage));
    causes.extend(backed_up_losses(scenario, outage));
    causes
}

/// Fluent Bit across a cut: without `Require_ack_response` a chunk written into a dying
/// connection counts as sent (`agent_unacked_write`); with a finite `Retry_Limit` the chunk
/// is dropped once its retries are spent. Each wait is at least `scheduler.base` (+1 s),
/// so `N` retries last at least `N × (base + 1)`: a limit that fits into `outage` loses.
fn agent_retry_losses(scenario: &Scenario, outage: Duration) -> BTreeSet<LossCause> {
    let agent = &scenario.agent;
    let mut causes = BTreeSet::new();
    if !agent.require_ack {
        causes.insert(LossCause::AgentUnackedWrite);
    }
    let retries_survive = |retries: u64| Duration::from_secs(retries * (agent.scheduler_base_secs + 1)) > outage;
    let spent = match &agent.retry_limit {
        RetryLimit::NoLimits => false,
        RetryLimit::Retries(retries) => !retries_survive(u64::from(*retries)),
        RetryLimit::NoRetries | RetryLimit::Defaulted(_) => true,
    };
    if spent {
        causes.insert(LossCause::AgentRetryLimit);
    }
    causes
}

/// The OTel Collector against an unreachable or failing Dash0: with `retry_on_failure`
/// disabled the first failure drops the batch; otherwise a batch is dropped once
/// `max_elapsed_time` passes (FIDELITY.md, Collector).
fn collector_retry_losses(scenario: &Scenario, outage: Duration) -> BTreeSet<LossCause> {
    let collector = &scenario.collector;
    let mut causes = BTreeSet::new();
    if !collector.retry_enabled {
        causes.insert(LossCause::CollectorRetryDisabled);
    } else if collector.retry_max_elapsed_time <= outage {
        causes.insert(LossCause::CollectorRetryExpired);
    }
    causes
}

/// A stalled hop behind Fluentd (Redis cut off or full) backs its buffer up, and a full
/// buffer backs up the agents and dev hosts: what each loses by its config.
fn backed_up_losses(scenario: &Scenario, outage: Duration) -> BTreeSet<LossCause> {
    let aggregator = &scenario.aggregator;
    let mut causes = agent_retry_losses(scenario, outage);
    if scenario.agent.storage_total_bytes_limit.is_some() {
        causes.insert(LossCause::AgentStorageLimit);
    }
    if scenario.topology.dev_hosts > 0 {
        causes.insert(LossCause::AppDevHttpFailed);
    }
    if aggregator.overflow_action == OverflowAction::DropOldestChunk {
        causes.insert(LossCause::AggregatorOverflow);
    }
    // Fluentd gives a chunk up after `retry_max_times` or `retry_timeout` (default 72 h);
    // `retry_forever` never does (Fluentd 1.19 lib/fluent/plugin/output.rb).
    let gives_up = !aggregator.retry_forever
        && (aggregator.retry_max_times.is_some() || aggregator.retry_timeout <= outage.saturating_mul(2));
    if gives_up {
        causes.insert(LossCause::AggregatorRetryExpired);
        causes.insert(LossCause::RedisOom);
    }
    causes
}

/// A host loss on one of the drawn targets (a machine, the API, Railway's hosts, Dash0):
/// what its parts held only in memory (any loss) or only written, not fsynced (a power
/// loss), FIDELITY.md "Hosts". A restart is drawn with 0 s draining: its SIGKILL follows
/// the SIGTERM at once, so it loses what a kill does, and the parts' shutdowns are cut.
fn host_losses(kind: ChaosKind, scenario: &Scenario) -> BTreeSet<LossCause> {
    let power = kind == ChaosKind::PowerLoss;
    // The app's span queue and the collector's sending queue are in memory on every machine
    // and on the API: any loss of a machine takes them.
    let mut causes = BTreeSet::from([LossCause::AppCrashUnpersisted, LossCause::CollectorCrashUnpersisted]);
    if kind == ChaosKind::Restart {
        causes.insert(LossCause::CollectorShutdown);
    }
    // Fluent Bit: memory chunks die with the process; filesystem chunks are written
    // (mmap, synced at best when sealed: `storage.sync full` still leaves the open chunk in
    // the page cache), so a power loss takes them.
    if scenario.agent.storage == StorageType::Memory || power {
        causes.insert(LossCause::AgentCrashUnpersisted);
        if kind == ChaosKind::Restart {
            causes.insert(LossCause::AgentGraceExpired);
        }
    }
    // Fluentd: a memory buffer dies with the process; a file buffer is written without
    // fsync, so a power loss takes it.
    if scenario.aggregator.buffer_type == BufferType::Memory || power {
        causes.insert(LossCause::AggregatorCrashUnpersisted);
    }
    // Redis: without AOF a process loss takes what no snapshot holds; `everysec` keeps every
    // write through a kill but not through a power loss; `always` fsyncs before replying.
    // The shipper's batches are also held by Redis (processing list): they are lost only
    // when Redis loses them.
    let redis_loses = match scenario.redis.persistence {
        Persistence::None | Persistence::Rdb => true,
        Persistence::AofEverysec => power,
        Persistence::AofAlways => false,
    };
    if redis_loses {
        causes.insert(LossCause::RedisCrashUnpersisted);
        causes.insert(LossCause::ShipperCrashUnpersisted);
    }
    causes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario(tables: &str) -> Scenario {
        let text = format!(
            "name = \"t\"\nduration = \"1m\"\n[topology]\nmachines = [{{ type = \"openai\", count = 1 }}]\n{tables}"
        );
        Scenario::parse(std::path::Path::new("t.toml"), &text).unwrap()
    }

    #[test]
    fn a_finite_retry_limit_rules_out_partitions_and_backpressure_unless_accepted() {
        let safe = scenario("[agent]\nstorage = \"filesystem\"\nretry_limit = \"no_limits\"\nrequire_ack = true\n");
        let derived = derive(&safe);
        for kind in [ChaosKind::LinkDrop, ChaosKind::Backpressure, ChaosKind::Dash0Errors, ChaosKind::ClockSkew] {
            assert!(derived.chaos.kinds.contains(&kind), "{kind:?}: {derived:?}");
        }
        let limited = scenario("[agent]\nstorage = \"filesystem\"\nretry_limit = 1\nrequire_ack = true\n");
        let derived = derive(&limited);
        assert!(!derived.chaos.kinds.contains(&ChaosKind::LinkDrop));
        assert!(derived.excluded.contains(&(ChaosKind::Backpressure, vec![LossCause::AgentRetryLimit])));
        let accepted = scenario(
            "[agent]\nstorage = \"filesystem\"\nretry_limit = 1\nrequire_ack = true\n[expect]\nallow_loss = [\"agent_retry_limit\"]\n",
        );
        assert!(derive(&accepted).chaos.kinds.contains(&ChaosKind::LinkDrop), "its [expect] accepts the cause");
    }

    #[test]
    fn host_loss_kinds_follow_what_each_part_keeps() {
        let all = "[expect]\nallow_loss = [\"app_crash_unpersisted\", \"collector_crash_unpersisted\", \"collector_shutdown\"]\n";
        let durable = scenario(&format!(
            "[agent]\nstorage = \"filesystem\"\nretry_limit = \"no_limits\"\nrequire_ack = true\n[aggregator]\nbuffer_type = \"file\"\n[redis]\npersistence = \"aof_everysec\"\n{all}"
        ));
        let derived = derive(&durable);
        for kind in [ChaosKind::Restart, ChaosKind::Kill, ChaosKind::Crash] {
            assert!(derived.chaos.kinds.contains(&kind), "{kind:?}: {derived:?}");
        }
        let power = &derived.excluded.iter().find(|(kind, _)| *kind == ChaosKind::PowerLoss).unwrap().1;
        assert!(power.contains(&LossCause::RedisCrashUnpersisted) && power.contains(&LossCause::AgentCrashUnpersisted));
        let memory = scenario(&format!(
            "[agent]\nstorage = \"filesystem\"\nretry_limit = \"no_limits\"\nrequire_ack = true\n[redis]\npersistence = \"aof_always\"\n{all}"
        ));
        let kill = possible_losses(ChaosKind::Kill, &memory, &derive(&memory).chaos);
        assert!(kill.contains(&LossCause::AggregatorCrashUnpersisted), "Fluentd's default buffer is memory");
        assert!(!kill.contains(&LossCause::RedisCrashUnpersisted));
    }

    #[test]
    fn the_derived_table_takes_the_files_accepted_causes_and_nothing_more() {
        let lossy = scenario("[expect]\nallow_loss = [\"redis_crash_unpersisted\"]\nmax_jobs_unfinished = 3\n");
        let derived = derive(&lossy);
        assert_eq!(derived.chaos.allow_loss, vec![LossCause::RedisCrashUnpersisted]);
        // The file's 3 is its queue's depth at its own fault; drawn faults move it, so every
        // job the run may accept (1/s default rate × 60 s × the largest job-rate factor 5).
        assert_eq!(derived.chaos.max_jobs_unfinished, 300);
        assert_eq!(derive(&scenario("")).chaos.max_jobs_unfinished, 0, "none accepted stays none");
        assert_eq!(derived.chaos.drain, None, "the drain is derived per schedule");
        assert!(derived.chaos.validate().is_ok());
    }
}
