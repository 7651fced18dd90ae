//! The drain of a chaos case, derived from its faults (README.md, "Chaos sweeps").
//!
//! Why derive it: a drain is the time after the load phase for every record to arrive; the
//! verdict's liveness needs it long enough, and a sweep spends it on every run. A fixed 15
//! minutes was long enough for a late, long partition and ten times too long for a short
//! early one. What a healed pipeline still needs is:
//! - for every part that retries, the wait it may be in when the last fault on its path ends
//!   (its backoff, grown by the outage it just lived through) plus one attempt's timeouts;
//! - the backlog the faults built (records per second × fault time), sent at the slowest
//!   hop's capacity.
//!
//! The estimate is clamped to `[chaos] drain_min ..= drain_max`; an explicit `drain` wins.
//! Each part's bound reads its own config; where the real wait is random the bound takes a
//! run of short draws followed by a long one (see [`geometric_wait_bound`], [`agent_wait`]).

use std::time::Duration;

use crate::faults::FaultSpec;
use crate::parts::agent::backoff::upper_bound_secs;
use crate::scenario::Scenario;
use crate::scenario::chaos::ChaosConfig;
use crate::vocab::hosts;

/// The parts that retry towards a next hop, as far as a drain is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Retrier {
    /// Fluent Bit towards Fluentd.
    Agent,
    /// Fluentd towards Redis.
    Aggregator,
    /// The shipper towards Dash0 (and Redis).
    Shipper,
    /// The OTel Collector towards Dash0.
    Collector,
}

const RETRIERS: [Retrier; 4] = [Retrier::Agent, Retrier::Aggregator, Retrier::Shipper, Retrier::Collector];

/// grpc-go's reconnect backoff (`backoff.DefaultConfig`), as the collector's channel models
/// it (FIDELITY.md, Collector).
const GRPC_BACKOFF_BASE: Duration = Duration::from_secs(1);
const GRPC_BACKOFF_MULTIPLIER: f64 = 1.6;
const GRPC_BACKOFF_JITTER: f64 = 0.2;
const GRPC_BACKOFF_MAX: Duration = Duration::from_secs(120);

/// Largest product of job-rate factors (the composition rule's cap, FIDELITY.md, Faults).
const JOB_RATE_PRODUCT_MAX: f64 = 1000.0;

/// Most retries the agent's expected-elapsed walk counts (Fluent Bit's bound reaches its cap
/// long before: `base·2^n` overflows no cap beyond 64 doublings).
const AGENT_RETRIES_LIMIT: u32 = 64;

/// The drain for `faults` on `scenario` under `chaos`: the explicit `drain` if given, else
/// the estimate clamped to `drain_min ..= drain_max`.
pub fn drain(scenario: &Scenario, chaos: &ChaosConfig, faults: &[FaultSpec]) -> Duration {
    if let Some(drain) = chaos.drain {
        return drain;
    }
    // The file's own drain is what its own load and faults need (a case keeps them), so it
    // is a floor too, unless it passes the cap.
    let floor = chaos.drain_min.max(scenario.drain).min(chaos.drain_max);
    let drained = estimate(scenario, faults).clamp(floor, chaos.drain_max);
    debug_assert!(chaos.drain_min <= drained && drained <= chaos.drain_max);
    drained
}

/// The unclamped estimate: the latest time a retrier may still be waiting, after the load
/// phase, plus the backlog's sending time.
pub fn estimate(scenario: &Scenario, faults: &[FaultSpec]) -> Duration {
    let mut ready = scenario.duration;
    for retrier in RETRIERS {
        let windows: Vec<(Duration, Duration)> = faults
            .iter()
            .filter(|fault| retriers(fault).contains(&retrier))
            .map(|fault| window(fault, scenario.duration))
            .collect();
        for (start, end) in merged(windows) {
            ready = ready.max(end + wait_after(retrier, scenario, end - start));
        }
    }
    let all: Vec<(Duration, Duration)> = faults.iter().map(|fault| window(fault, scenario.duration)).collect();
    let fault_time: Duration = merged(all).into_iter().map(|(start, end)| end - start).sum();
    let records = (ready - scenario.duration) + backlog(scenario, faults, fault_time);
    records.max(jobs_backlog(scenario, faults))
}

/// The time after the load phase until the machines have run every job the run accepted:
/// per machine type, the jobs submitted (the workload's rate × the type's weight share,
/// more under a job-rate backpressure) over the type's capacity (workers ÷ mean service
/// time), plus the time the machines could not reach the job queue (a cut or a host loss on
/// their side of Railway) and one longest job per cut (its interrupted jobs run again), plus
/// the longest job itself; a job's records then need their
/// hops, which the records' estimate covers. Why: a case judges jobs and liveness after the
/// drain, and a burst of jobs outlasts any backoff.
fn jobs_backlog(scenario: &Scenario, faults: &[FaultSpec]) -> Duration {
    let app = scenario.app_config();
    let stopped: Vec<(Duration, Duration)> = faults
        .iter()
        .filter(|fault| retriers(fault).contains(&Retrier::Agent) && !matches!(fault, FaultSpec::Backpressure { .. }))
        .map(|fault| window(fault, scenario.duration))
        .collect();
    let stopped = merged(stopped);
    let stopped_time: Duration = stopped.iter().map(|(start, end)| *end - *start).sum();
    // A cut interrupts the jobs in progress: the app re-queues them and they run again.
    let reruns = u32::try_from(stopped.len()).unwrap_or(u32::MAX);
    let submitted_jobs = app.workload.jobs_per_second * job_rate_secs(faults, scenario.duration);
    let mut types = Vec::new();
    for group in &scenario.topology.machines {
        if !types.contains(&group.machine_type) {
            types.push(group.machine_type);
        }
    }
    let weights_total: f64 = types.iter().map(|kind| f64::from(app.machine_type(*kind).weight)).sum();
    let mut done_at = scenario.duration;
    for kind in &types {
        let config = app.machine_type(*kind);
        let workers: u32 = scenario
            .topology
            .machines
            .iter()
            .filter(|group| group.machine_type == *kind)
            .map(|g| g.count * g.workers)
            .sum();
        let mean_service_secs = (config.service_time_min + config.service_time_max).as_secs_f64() / 2.0;
        let capacity_jobs_per_second = f64::from(workers) / mean_service_secs.max(0.001);
        let share = f64::from(config.weight) / weights_total.max(1.0);
        let busy = Duration::from_secs_f64(submitted_jobs * share / capacity_jobs_per_second.max(1e-6));
        done_at = done_at.max(busy + stopped_time + config.service_time_max.saturating_mul(reruns.saturating_add(1)));
    }
    // The last job's counts reach Dash0 with the next metrics export, through the
    // collector's batch and one export attempt.
    let settle = app.metrics_interval + scenario.collector.batch_timeout + scenario.collector.export_timeout;
    done_at - scenario.duration + settle
}

/// The load phase in seconds of the base job rate: job-rate backpressure factors in force
/// together multiply (FIDELITY.md, Faults), so each stretch between two factor changes
/// counts `duration × Π factors`.
fn job_rate_secs(faults: &[FaultSpec], duration: Duration) -> f64 {
    let factors: Vec<(Duration, Duration, f64)> = faults
        .iter()
        .filter_map(|fault| match fault {
            FaultSpec::Backpressure { factor: Some(factor), .. } => {
                let (start, end) = window(fault, duration);
                Some((start, end, *factor))
            }
            _ => None,
        })
        .collect();
    let mut edges: Vec<Duration> = vec![Duration::ZERO, duration];
    edges.extend(factors.iter().flat_map(|(start, end, _)| [*start, *end]));
    edges.sort();
    edges.dedup();
    edges
        .windows(2)
        .map(|pair| {
            let product: f64 =
                factors.iter().filter(|(start, end, _)| *start <= pair[0] && pair[1] <= *end).map(|f| f.2).product();
            (pair[1] - pair[0]).as_secs_f64() * product.min(JOB_RATE_PRODUCT_MAX)
        })
        .sum()
}

/// When `fault` holds: from `at` to its end, or to the drain's start for a fault healed
/// there (a crash, a clock step).
fn window(fault: &FaultSpec, duration: Duration) -> (Duration, Duration) {
    let end = fault.end().unwrap_or(duration).max(fault.at());
    (fault.at(), end)
}

/// Overlapping or touching windows joined, in time order: a part's backoff grows across
/// back-to-back faults as across one.
fn merged(mut windows: Vec<(Duration, Duration)>) -> Vec<(Duration, Duration)> {
    windows.sort();
    let mut out: Vec<(Duration, Duration)> = Vec::with_capacity(windows.len());
    for (start, end) in windows {
        match out.last_mut() {
            Some(last) if start <= last.1 => last.1 = last.1.max(end),
            _ => out.push((start, end)),
        }
    }
    out
}

/// The parts that retry while `fault` holds: a path to Dash0 concerns the shipper and the
/// collectors; Dash0's own faults the same; backpressure the agents and Fluentd (a full
/// buffer refuses, Redis at `maxmemory` refuses); any other cut or host loss every part
/// (Railway's hosts are behind each other). Clock faults make nobody retry; a refused TLS
/// certificate makes the agents retry.
fn retriers(fault: &FaultSpec) -> &'static [Retrier] {
    const DASH0_SIDE: &[Retrier] = &[Retrier::Shipper, Retrier::Collector];
    match fault {
        FaultSpec::LinkDrop { from, to, .. }
        | FaultSpec::LinkStall { from, to, .. }
        | FaultSpec::Latency { from, to, .. }
        | FaultSpec::PacketLoss { from, to, .. } => {
            if from == hosts::DASH0 || to == hosts::DASH0 {
                DASH0_SIDE
            } else {
                &RETRIERS
            }
        }
        FaultSpec::Dash0Errors { .. } | FaultSpec::Dash0Slow { .. } | FaultSpec::Dash0RateLimit { .. } => DASH0_SIDE,
        FaultSpec::Backpressure { .. } => &[Retrier::Agent, Retrier::Aggregator, Retrier::Shipper],
        FaultSpec::ClockSkew { .. } | FaultSpec::ClockStep { .. } => &[],
        // A certificate the agents refuse fails their handshakes: they retry.
        FaultSpec::TlsCertExpired { .. } | FaultSpec::TlsWrongCa { .. } | FaultSpec::TlsHostnameMismatch { .. } => {
            &[Retrier::Agent]
        }
        FaultSpec::Restart { .. } | FaultSpec::Kill { .. } | FaultSpec::PowerLoss { .. } | FaultSpec::Crash { .. } => {
            &RETRIERS
        }
    }
}

/// How long `retrier` may still wait after an outage of `outage` ends, plus one attempt's
/// timeouts (connect and I/O), by its own config.
fn wait_after(retrier: Retrier, scenario: &Scenario, outage: Duration) -> Duration {
    match retrier {
        Retrier::Agent => {
            let agent = &scenario.agent;
            agent_wait(agent.scheduler_base_secs, agent.scheduler_cap_secs, outage)
                + agent.io_timeout
                + agent.connect_timeout
        }
        Retrier::Aggregator => {
            let aggregator = &scenario.aggregator;
            let jitter = if aggregator.retry_randomize { 0.125 } else { 0.0 };
            let cap = aggregator.retry_max_interval.unwrap_or(aggregator.retry_timeout);
            geometric_wait_bound(aggregator.retry_wait, aggregator.retry_exponential_backoff_base, jitter, cap, outage)
                + aggregator.redis_timeout
        }
        Retrier::Shipper => {
            let shipper = &scenario.shipper;
            geometric_wait_bound(shipper.retry_initial, 2.0, 0.5, shipper.retry_max_interval, outage)
                + shipper.request_timeout
                + shipper.redis_timeout
        }
        Retrier::Collector => {
            let collector = &scenario.collector;
            let jitter = collector.retry_randomization_factor.clamp(0.0, 0.9);
            let cap = collector.retry_max_interval.mul_f64(1.0 + jitter);
            // The gRPC channel's own reconnect backoff (grpc-go DefaultConfig: 1 s, ×1.6,
            // ±20 %, at most 120 s) comes first: until it dials again, exports fail at once.
            let reconnect = geometric_wait_bound(
                GRPC_BACKOFF_BASE,
                GRPC_BACKOFF_MULTIPLIER,
                GRPC_BACKOFF_JITTER,
                GRPC_BACKOFF_MAX,
                outage,
            );
            reconnect
                + geometric_wait_bound(
                    collector.retry_initial_interval,
                    collector.retry_multiplier,
                    jitter,
                    cap,
                    outage,
                )
                + collector.export_timeout
                + collector.connect_timeout
        }
    }
}

/// The next wait of a backoff that starts at `initial`, grows by `multiplier` and draws each
/// wait within `±jitter` of its interval, after retrying through `outage`: the waits so far
/// sum to about `interval / (multiplier − 1)`, so the next interval is about
/// `outage · (multiplier − 1) + initial`; a run of short draws (`1 − jitter`) fits more
/// steps into the outage and a long draw (`1 + jitter`) follows. At most `cap`.
fn geometric_wait_bound(initial: Duration, multiplier: f64, jitter: f64, cap: Duration, outage: Duration) -> Duration {
    assert!((0.0..1.0).contains(&jitter), "jitter {jitter} is a fraction below 1");
    let growth = (multiplier - 1.0).max(0.0);
    let interval = outage.mul_f64(growth) + initial;
    interval.mul_f64((1.0 + jitter) / (1.0 - jitter)).min(cap)
}

/// Fluent Bit's next wait after retrying through `outage`: waits are uniform in
/// `[base, min(cap, base·2^n)]` (+1 s) for retry `n` (FIDELITY.md, Agent: scheduler), so
/// the expected time to retry `n` is `Σ (base + bound_k)/2 + 1`. The retry pending when
/// the outage ends is the first whose expected time passes it; the bound is that of the
/// retry after it (a chunk whose draws ran short is one doubling further on).
fn agent_wait(base_secs: u64, cap_secs: u64, outage: Duration) -> Duration {
    let mut elapsed_secs = 0.0;
    let mut retry = 1;
    while retry < AGENT_RETRIES_LIMIT {
        let bound = upper_bound_secs(base_secs, cap_secs, retry) as f64;
        elapsed_secs += (base_secs as f64 + bound) / 2.0 + 1.0;
        if elapsed_secs >= outage.as_secs_f64() {
            break;
        }
        retry += 1;
    }
    Duration::from_secs(upper_bound_secs(base_secs, cap_secs, retry + 1) + 1)
}

/// The time to send what `fault_time` of faults held back: the load's records per second
/// (the jobs' logs, scaled by the largest job-rate backpressure factor drawn, and the dev
/// hosts' lines) over the slowest hop's capacity: every agent takes `take_records_max`
/// records per flush; the shipper sends one batch of `batch_records_max` per round, taken
/// as one round a second (UNKNOWN in FIDELITY.md: the round's time is the network's).
fn backlog(scenario: &Scenario, faults: &[FaultSpec], fault_time: Duration) -> Duration {
    let load_secs = scenario.duration.as_secs_f64().max(1.0);
    let factor = job_rate_secs(faults, scenario.duration) / load_secs;
    let jobs_records_per_second =
        scenario.workload.jobs_per_second * f64::from(scenario.workload.logs_per_job) * factor;
    let dev_records_per_second = f64::from(scenario.topology.dev_hosts) * f64::from(scenario.app.dev.logs_per_second);
    let backlog_records = (jobs_records_per_second + dev_records_per_second) * fault_time.as_secs_f64();
    let agents = scenario.machine_hosts().len() as f64 + 1.0;
    let agent_capacity =
        agents * scenario.agent.take_records_max as f64 / scenario.agent.flush_interval.as_secs_f64().max(0.001);
    let shipper_capacity = scenario.shipper.batch_records_max as f64;
    let capacity = agent_capacity.min(shipper_capacity).max(1.0);
    Duration::from_secs_f64(backlog_records / capacity)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_bounds_grow_with_the_outage_and_stop_at_their_caps() {
        let short = agent_wait(5, 2000, Duration::from_secs(10));
        let long = agent_wait(5, 2000, Duration::from_secs(240));
        assert!(short < long && long <= Duration::from_secs(2001), "{short:?} {long:?}");
        assert_eq!(agent_wait(5, 30, Duration::from_secs(3600)), Duration::from_secs(31));
        let wait =
            geometric_wait_bound(Duration::from_secs(1), 2.0, 0.5, Duration::from_secs(30), Duration::from_secs(600));
        assert_eq!(wait, Duration::from_secs(30));
        let wait =
            geometric_wait_bound(Duration::from_secs(1), 2.0, 0.0, Duration::from_secs(600), Duration::from_secs(60));
        assert_eq!(wait, Duration::from_secs(61));
    }

    #[test]
    fn job_rate_factors_in_force_together_multiply() {
        let burst = |at: u64, lasting: u64, factor: f64| FaultSpec::Backpressure {
            at: Duration::from_secs(at),
            lasting: Duration::from_secs(lasting),
            what: crate::faults::BackpressureWhat::JobsPerSecond,
            bytes: None,
            factor: Some(factor),
            target: None,
        };
        let duration = Duration::from_secs(100);
        assert!((job_rate_secs(&[], duration) - 100.0).abs() < 1e-9);
        // 10 s at ×4 alone, 10 s at ×4·×5, 10 s at ×5 alone, 70 s at ×1.
        let secs = job_rate_secs(&[burst(0, 20, 4.0), burst(10, 20, 5.0)], duration);
        assert!((secs - (40.0 + 200.0 + 50.0 + 70.0)).abs() < 1e-9, "{secs}");
    }

    #[test]
    fn back_to_back_windows_merge() {
        let s = Duration::from_secs;
        assert_eq!(merged(vec![(s(5), s(9)), (s(0), s(5)), (s(20), s(21))]), vec![(s(0), s(9)), (s(20), s(21))]);
    }
}
