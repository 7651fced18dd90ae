//! The simulated world is deterministic: the same seed gives the same event-log hash in
//! separate processes, a different seed a different one, and host clocks bend exactly as
//! configured.

use std::process::Command;
use std::time::Duration;

use obsim::check::Verdict;
use obsim::vocab::EventKind;
use obsim::world::{WorldBuilder, probe};

/// Runs `obsim probe` in a fresh process and returns the hash it prints.
fn probe_hash_in_new_process(seed: u64) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_obsim"))
        .args(["probe", "--seed", &seed.to_string(), "--nodes", "5", "--duration", "20s"])
        .output()
        .expect("the obsim binary runs");
    assert!(output.status.success(), "obsim probe failed: {}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8(output.stdout).expect("utf-8 output");
    let hash = stdout
        .lines()
        .find_map(|line| line.strip_prefix("event-log hash "))
        .unwrap_or_else(|| panic!("no hash line in {stdout}"));
    assert_eq!(hash.len(), 64, "a SHA-256 in hex");
    hash.to_string()
}

#[test]
fn the_same_seed_in_two_processes_gives_the_same_hash() {
    assert_eq!(probe_hash_in_new_process(7), probe_hash_in_new_process(7));
}

#[test]
fn a_different_seed_gives_a_different_hash() {
    assert_ne!(probe_hash_in_new_process(7), probe_hash_in_new_process(8));
}

#[test]
fn the_probe_exchanges_messages_and_the_hash_covers_them() {
    let config = probe::ProbeConfig { seed: 3, nodes_count: 3, duration: Duration::from_secs(10), skew_ms_max: 1_000 };
    let (outcome, log) = probe::run_with_log(config).unwrap();
    let echoes = log.kept().iter().filter(|event| event.kind == EventKind::ProbeEcho).count();
    assert!(echoes > 10, "nodes should have completed round trips, got {echoes}");
    assert_eq!(outcome.events_count, log.kept().len() as u64);
    assert_eq!(outcome.elapsed, Duration::from_secs(10));
    // In-process repeat agrees with itself too.
    assert_eq!(probe::run(config).unwrap().hash, outcome.hash);
}

/// Pins the probe's hash: a run must replay identically on any machine, so a change here is
/// either a deliberate change of the world (update the snapshot and say so) or a bug.
#[test]
fn the_probe_hash_is_pinned_across_machines() {
    let config =
        probe::ProbeConfig { seed: 1, nodes_count: 4, duration: Duration::from_secs(30), skew_ms_max: 120_000 };
    insta::assert_snapshot!(probe::run(config).unwrap().hash.to_string());
}

#[test]
fn a_skewed_clock_reads_offset_plus_drift_as_configured_inside_its_host() {
    let mut world = WorldBuilder::new(11).duration(Duration::from_secs(200)).build();
    let clock = world.host("machine", |ctx| async move {
        tokio::time::sleep(Duration::from_secs(100)).await;
        ctx.record(EventKind::Test, ctx.clock().now_unix_nanos().to_string());
        Ok(())
    });
    clock.set_offset(Duration::ZERO, -120_000_000_000); // two minutes behind
    clock.set_drift_ppm(Duration::ZERO, 100.0); // gains 100 µs a second
    world.run_for(Duration::from_secs(101)).unwrap();

    let read =
        world.events().kept().into_iter().find(|event| event.kind == EventKind::Test).expect("the host read its clock");
    let epoch_nanos = obsim::world::EPOCH_UNIX_SECS_DEFAULT * 1_000_000_000;
    let expected = epoch_nanos + 100_000_000_000 - 120_000_000_000 + 10_000_000;
    assert_eq!(read.true_nanos, 100_000_000_000);
    assert_eq!(read.detail, expected.to_string());
}

#[test]
fn a_restarted_host_starts_a_new_incarnation_with_fresh_randomness() {
    use rand::RngCore;
    let mut world = WorldBuilder::new(5).duration(Duration::from_secs(10)).build();
    world.host("railway-aggregator", |ctx| async move {
        let draw = ctx.rng("jitter").next_u64();
        ctx.record(EventKind::Test, format!("incarnation {} drew {draw}", ctx.incarnation()));
        std::future::pending::<()>().await;
        Ok(())
    });
    world.run_for(Duration::from_secs(1)).unwrap();
    world.power_loss("railway-aggregator");
    world.run_for(Duration::from_secs(2)).unwrap();
    world.restart("railway-aggregator");
    world.run_for(Duration::from_secs(3)).unwrap();

    let draws: Vec<String> = world
        .events()
        .kept()
        .into_iter()
        .filter(|event| event.kind == EventKind::Test)
        .map(|event| event.detail)
        .collect();
    assert_eq!(draws.len(), 2, "{draws:?}");
    assert!(draws[0].starts_with("incarnation 0 ") && draws[1].starts_with("incarnation 1 "), "{draws:?}");
    assert_ne!(draws[0]["incarnation 0 ".len()..], draws[1]["incarnation 1 ".len()..]);
    let kinds: Vec<EventKind> = world.events().kept().iter().map(|event| event.kind).collect();
    assert!(kinds.contains(&EventKind::HostPowerLoss) && kinds.contains(&EventKind::HostRestart), "{kinds:?}");
}

#[test]
fn a_failing_host_is_named_in_the_error() {
    let mut world = WorldBuilder::new(1).duration(Duration::from_secs(5)).build();
    world.host("shipper", |_ctx| async move {
        tokio::time::sleep(Duration::from_millis(500)).await;
        Err("dash0 unreachable".into())
    });
    let error = world.run_for(Duration::from_secs(2)).unwrap_err().to_string();
    assert!(error.contains("host shipper: dash0 unreachable"), "{error}");
}

#[test]
fn running_past_the_configured_duration_is_refused() {
    let mut world = WorldBuilder::new(1).duration(Duration::from_secs(5)).build();
    let error = world.run_for(Duration::from_secs(6)).unwrap_err().to_string();
    assert!(error.contains("past the world's duration"), "{error}");
}

/// A crash drops the host's tasks, and each dropped connection sends its FIN or RST through
/// the world (drawing latency from the world's random stream), so the drop order is part
/// of the run. tokio drops the tasks of a runtime's own task list in shards chosen by task
/// id — a process-global counter — so a host that spawned onto the runtime behaved
/// differently after other runs in the same process (chaos sweeps, parallel tests). Host
/// tasks live in the host's LocalSet (`obsim::world::spawn`), dropped in spawn order.
#[test]
fn a_crash_replays_the_same_whatever_ran_before_in_the_process() {
    use std::sync::Arc;

    use obsim::scenario::Scenario;

    let text = r#"
name = "crash-order"
duration = "40s"
drain = "40s"
[topology]
machines = [{ type = "comfyui", count = 2, workers = 2 }, { type = "openai", count = 1, workers = 2 }]
dev_hosts = 1
[workload]
jobs_per_second = 1.0
[agent]
storage = "filesystem"
retry_limit = "no_limits"
require_ack = true
[[fault]]
kind = "restart"
at = "12s"
target = "railway"
down_for = "5s"
[[fault]]
kind = "restart"
at = "22s"
target = "dash0"
down_for = "3s"
[[fault]]
kind = "restart"
at = "25s"
target = "api"
down_for = "2s"
"#;
    let scenario = Arc::new(Scenario::parse(std::path::Path::new("crash-order.toml"), text).unwrap());
    let run = || Verdict::run(Arc::clone(&scenario), 7).unwrap().outcome.hash.to_string();
    let first = run();
    // Shift tokio's global task-id counter by one, two and three tasks between runs.
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    for shift in 1..=3 {
        runtime.block_on(async {
            for _ in 0..shift {
                tokio::spawn(async {}).await.unwrap();
            }
        });
        assert_eq!(run(), first, "the run changed after {shift} more tokio tasks existed in the process");
    }
}
