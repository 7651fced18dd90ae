//! The whole pipeline end to end: `scenarios/baseline.toml` runs with zero loss and complete
//! correlation, the same seed gives the same event-log hash in two processes, and `obsim run`
//! exits 0 / 1 / 2 for pass / failed check / invalid scenario.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use obsim::check::CheckName;
use obsim::check::Verdict;
use obsim::scenario::Scenario;
use obsim::vocab::Signal;

fn manifest_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

fn obsim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_obsim")).args(args).output().expect("the obsim binary runs")
}

fn stdout_line<'a>(output: &'a str, prefix: &str) -> &'a str {
    output
        .lines()
        .find_map(|line| line.strip_prefix(prefix))
        .unwrap_or_else(|| panic!("no `{prefix}` line in:\n{output}"))
}

/// Writes `text` to a scenario file of its own under the target directory.
fn scenario_file(name: &str, text: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("pipeline_run");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

/// A small, quick scenario: two machines, one minute of load.
const SMALL: &str = r#"
name = "small"
seed = 3
duration = "1m"
drain = "1m"
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

#[test]
fn the_baseline_delivers_everything_once_and_correlates_completely() {
    let scenario = Arc::new(Scenario::load(&manifest_path("scenarios/baseline.toml")).unwrap());
    let machines: u32 = scenario.topology.machines.iter().map(|group| group.count).sum();
    assert!(machines >= 6 && scenario.topology.dev_hosts >= 1, "the baseline is the issue's topology");
    let verdict = Verdict::run(Arc::clone(&scenario), scenario.seed).unwrap();
    let report = verdict.render();
    assert!(verdict.passed(), "{report}");
    for signal in [Signal::Log, Signal::Span] {
        let totals = &verdict.accounting.totals[&signal];
        assert!(totals.emitted > 500, "{signal:?}: {report}");
        assert_eq!((totals.delivered, totals.duplicated), (totals.emitted, 0), "{signal:?}: {report}");
    }
    assert!(verdict.accounting.outcomes.is_empty(), "nothing lost or in flight: {report}");
    assert!(verdict.correlation.is_complete() && verdict.correlation.jobs_count > 100, "{report}");
    assert_eq!(verdict.jobs.completed, verdict.jobs.submitted);
    assert!(verdict.log_latency.count > 0 && verdict.log_latency.max_micros < 30_000_000, "{report}");
}

#[test]
fn the_same_seed_replays_the_same_run_in_another_process() {
    let baseline = manifest_path("scenarios/baseline.toml");
    let baseline = baseline.to_str().unwrap();
    let first = obsim(&["run", baseline]);
    let second = obsim(&["run", baseline]);
    let other_seed = obsim(&["run", baseline, "--seed", "2"]);
    for output in [&first, &second, &other_seed] {
        assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stdout));
    }
    let [first, second, other_seed] =
        [first, second, other_seed].map(|output| String::from_utf8(output.stdout).unwrap());
    assert_eq!(first, second, "the whole report, hash included, must replay byte for byte");
    assert_ne!(stdout_line(&first, "event-log hash "), stdout_line(&other_seed, "event-log hash "));
    assert_eq!(stdout_line(&other_seed, "replay: "), format!("cargo run --release -- run {baseline} --seed 2"));
    for line in [
        "log   emitted",
        "span  emitted",
        "log latency p50",
        "log throughput",
        "verdict PASS",
        "scenario baseline  seed 1",
    ] {
        assert!(first.contains(line), "missing `{line}` in:\n{first}");
    }
}

#[test]
fn an_invalid_scenario_exits_2_naming_file_line_and_key() {
    let path = scenario_file("misspelt", &SMALL.replace("retry_limit", "retry_limt"));
    let output = obsim(&["run", path.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains(&format!("{}:13:1: key `agent.retry_limt`", path.display())), "{stderr}");
    assert!(stderr.contains("unknown field `retry_limt`"), "{stderr}");

    let path = scenario_file("bad-duration", &SMALL.replace("drain = \"1m\"", "drain = \"1 minute\""));
    let output = obsim(&["run", path.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains(":5:") && stderr.contains("key `drain`") && stderr.contains("invalid duration"),
        "{stderr}"
    );

    // A part's own rule (Fluentd's buffer must hold at least one chunk) is checked at load too.
    let path = scenario_file("small-buffer", &format!("{SMALL}[aggregator]\ntotal_bytes_limit = 1000\n"));
    let output = obsim(&["run", path.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains(":16:1: key `aggregator.total_bytes_limit`") && stderr.contains("must be ≥ chunk_bytes_limit"),
        "{stderr}"
    );
}

#[test]
fn check_validates_without_running() {
    let output = obsim(&["check", manifest_path("scenarios/baseline.toml").to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(0));
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(stdout.contains("valid — 6 machines, 1 dev hosts, 0 faults, 5m + 2m drain"), "{stdout}");
    let path = scenario_file("check-misspelt", &SMALL.replace("retry_limit", "retry_limt"));
    let output = obsim(&["check", path.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8(output.stderr).unwrap().contains("key `agent.retry_limt`"));
}

#[test]
fn a_broken_budget_exits_1_and_says_which_check_failed() {
    let path = scenario_file("tight-budget", &format!("{SMALL}[expect]\nlatency_max = \"100ms\"\n"));
    let output = obsim(&["run", path.to_str().unwrap()]);
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("FAIL latency_max") && stdout.contains("vs budget 100ms"), "{stdout}");
    assert!(stdout.contains("ok   delivery"), "only the budget broke: {stdout}");
    assert!(stdout.contains(&format!("replay: cargo run --release -- run {} --seed 3", path.display())), "{stdout}");
}

#[test]
fn an_overloaded_fleet_fails_the_jobs_check_with_the_unfinished_jobs() {
    let overloaded = SMALL.replace("jobs_per_second = 1.0", "jobs_per_second = 5.0").replace(
        r#"[{ type = "openai", count = 2, workers = 2 }]"#,
        r#"[{ type = "comfyui", count = 1, workers = 1 }]"#,
    );
    let scenario = Arc::new(Scenario::parse(Path::new("overloaded.toml"), &overloaded).unwrap());
    let verdict = Verdict::run(scenario, 3).unwrap();
    let jobs = verdict.checks().iter().find(|check| check.name == CheckName::Jobs).unwrap();
    assert!(!jobs.passed && jobs.detail.contains("never completed (allowed 0; e.g. job-"), "{}", verdict.render());
    assert!(!verdict.passed());
}

#[test]
fn a_failing_run_writes_a_failure_file_that_replay_reproduces() {
    let path = scenario_file("replayable", &format!("{SMALL}[expect]\nlatency_max = \"100ms\"\n"));
    let workdir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("replay-workdir");
    std::fs::create_dir_all(&workdir).unwrap();
    let run = Command::new(env!("CARGO_BIN_EXE_obsim"))
        .args(["run", path.to_str().unwrap(), "--seed", "77"])
        .current_dir(&workdir)
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(1));
    let stdout = String::from_utf8(run.stdout).unwrap();
    let failure = workdir.join("reports/small/77/failure.toml");
    assert!(stdout.contains("failure file: reports/small/77/failure.toml"), "{stdout}");
    let text = std::fs::read_to_string(&failure).unwrap();
    assert!(text.contains("\nseed = 77\n") && text.contains("# obsim failure: FAIL latency_max"), "{text}");

    let replay = obsim(&["replay", failure.to_str().unwrap()]);
    let replayed = String::from_utf8(replay.stdout).unwrap();
    assert_eq!(replay.status.code(), Some(0), "{replayed}");
    assert!(replayed.contains("replayed: same verdict (FAIL), same event-log hash"), "{replayed}");
    assert_eq!(stdout_line(&stdout, "event-log hash "), stdout_line(&replayed, "event-log hash "));

    // A tampered schedule no longer reproduces: replay says so and exits 1.
    std::fs::write(&failure, text.replace("seed = 77", "seed = 78")).unwrap();
    let tampered = obsim(&["replay", failure.to_str().unwrap()]);
    assert_eq!(tampered.status.code(), Some(1));
    assert!(String::from_utf8(tampered.stdout).unwrap().contains("NOT REPRODUCED"));
}
