//! Chaos sweeps: schedules drawn from a seed are valid and replayable, results do not
//! depend on threads or shards, and shrinking keeps the failing check while the case gets
//! smaller. Runs a tiny scenario so each sweep takes seconds.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use obsim::chaos::case::bugs_named;
use obsim::chaos::progress::{ETA_RUNS_MIN, Phase, Status, eta_text, line, rate_text};
use obsim::chaos::{Case, SweepOptions, SweepRun, shrink, strategy, sweep};
use obsim::check::CheckName;
use obsim::parts::Bugs;
use obsim::report::index::Shard;
use obsim::scenario::Scenario;
use std::time::Duration;

/// Two OpenAI machines for 30 s, swept with the network and Dash0 kinds.
const TINY: &str = r#"
name = "tiny"
duration = "30s"
drain = "1m"
[topology]
machines = [{ type = "openai", count = 2, workers = 2 }]
dev_hosts = 1
[workload]
jobs_per_second = 0.5
logs_per_job = 10
[agent]
storage = "filesystem"
retry_limit = "no_limits"
require_ack = true
[chaos]
kinds = ["link_drop", "latency", "dash0_errors", "dash0_slow", "packet_loss", "link_stall"]
faults_max = 3
fault_for_max = "20s"
drain = "5m"
allow_loss = ["app_dev_http_failed"]
"#;

fn tiny() -> (PathBuf, Arc<Scenario>) {
    let path = PathBuf::from("tiny.toml");
    let scenario = Scenario::parse(&path, TINY).unwrap();
    (path, Arc::new(scenario))
}

/// What identifies a run's result: file, seed, verdict, hash.
fn summary(runs: &[SweepRun]) -> Vec<(usize, u64, bool, String)> {
    runs.iter()
        .map(|run| {
            let hash = run.verdict.as_ref().map(|v| v.outcome.hash.to_string()).unwrap_or_else(|e| e.clone());
            (run.file_index, run.seed, run.passed(), hash)
        })
        .collect()
}

fn sweep_with(options: &SweepOptions) -> Vec<SweepRun> {
    sweep(&[tiny()], options, &|| true, &|_| {})
}

#[test]
fn every_drawn_schedule_loads_as_a_scenario_and_the_same_seed_draws_the_same() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/baseline.toml");
    let base = Scenario::load(&path).unwrap();
    let chaos = base.chaos.clone().expect("baseline takes part in sweeps");
    let mut kinds_seen = std::collections::BTreeSet::new();
    for seed in 0..300 {
        let case = Case::draw(&base, &path, seed, Bugs::default()).unwrap_or_else(|e| panic!("{e}"));
        let faults = case.faults();
        assert!(!faults.is_empty() && faults.len() <= chaos.faults_max as usize, "seed {seed}: {faults:?}");
        for fault in faults {
            assert!(chaos.kinds.iter().any(|kind| kind.as_str() == fault.kind()), "seed {seed}: {fault:?}");
            assert!(fault.end().unwrap_or(fault.at()) <= base.duration, "seed {seed}: {fault:?}");
            kinds_seen.insert(fault.kind());
        }
        assert_eq!(strategy::draw(&base, &chaos, seed), faults.to_vec(), "seed {seed} draws the same schedule");
    }
    assert_eq!(kinds_seen.len(), chaos.kinds.len(), "300 seeds draw every allowed kind: {kinds_seen:?}");
}

#[test]
fn two_jobs_give_the_same_results_as_one() {
    let options = SweepOptions { seeds: 4, shrink_runs: 0, ..SweepOptions::default() };
    let one = sweep_with(&SweepOptions { jobs: 1, ..options.clone() });
    let two = sweep_with(&SweepOptions { jobs: 2, ..options });
    assert_eq!(one.len(), 4);
    assert_eq!(summary(&one), summary(&two));
}

#[test]
fn the_shards_of_a_sweep_union_to_the_whole_sweep() {
    let options = SweepOptions { seeds: 5, shrink_runs: 0, ..SweepOptions::default() };
    let whole = summary(&sweep_with(&options));
    let mut parts = Vec::new();
    for index in 1..=3 {
        let shard = Shard::parse(&format!("{index}/3")).unwrap();
        let part = summary(&sweep_with(&SweepOptions { shard, ..options.clone() }));
        assert!(!part.is_empty(), "shard {index}/3 ran nothing");
        parts.extend(part);
    }
    parts.sort_by_key(|(file, seed, _, _)| (*seed, *file));
    assert_eq!(parts, whole);
    assert!(Shard::parse("0/3").is_err() && Shard::parse("4/3").is_err() && Shard::parse("x").is_err());
}

#[test]
fn a_sweep_finds_a_planted_bug_and_shrinks_it_while_the_same_check_fails() {
    let bugs = bugs_named(&["dash0_drop_one_batch".to_string()]).unwrap();
    assert!(bugs_named(&["no_such_bug".to_string()]).unwrap_err().contains("no_such_bug"));
    let runs = sweep_with(&SweepOptions { seeds: 2, bugs, shrink_runs: 40, ..SweepOptions::default() });
    assert!(runs.iter().all(|run| !run.passed()), "the bug fails every run");
    for run in &runs {
        let original = run.case.as_ref().unwrap();
        let shrunk = run.shrunk.as_ref().expect("a failing run is shrunk");
        assert_eq!(shrunk.check, CheckName::Delivery, "dash0 dropping a batch is a silent loss");
        assert!(shrunk.verdict.checks().iter().any(|c| c.name == CheckName::Delivery && !c.passed));
        assert!(
            shrunk
                .verdict
                .checks()
                .iter()
                .find(|c| c.name == CheckName::Delivery)
                .unwrap()
                .detail
                .contains("lost silently")
        );
        let size = |case: &Case| {
            let machines: u32 = case.scenario.topology.machines.iter().map(|g| g.count).sum();
            (case.faults().len(), machines, case.scenario.duration)
        };
        let (faults_before, machines_before, duration_before) = size(original);
        let (faults_after, machines_after, duration_after) = size(&shrunk.case);
        assert!(faults_after < faults_before || faults_before == 0, "fewer faults: {:?}", shrunk.steps);
        assert!(machines_after < machines_before && duration_after < duration_before, "smaller: {:?}", shrunk.steps);
        assert!(!shrunk.steps.is_empty() && shrunk.runs <= 40);
        // The shrunk case replays: same verdict, same hash.
        let again = shrunk.case.run().unwrap();
        assert_eq!(again.outcome.hash, shrunk.verdict.outcome.hash);
    }
}

#[test]
fn shrinking_stops_at_its_run_budget() {
    let (path, base) = tiny();
    let bugs = bugs_named(&["silent_record_loss".to_string()]).unwrap();
    let case = Case::draw(&base, &path, 3, bugs).unwrap();
    let verdict = case.run().unwrap();
    assert!(!verdict.passed());
    let shrunk = shrink(case, verdict, 2);
    assert!(shrunk.runs <= 2, "{} runs", shrunk.runs);
}

#[test]
fn the_command_exits_1_on_a_planted_bug_and_0_without_and_writes_replayable_failures() {
    let dir = std::env::temp_dir().join(format!("obsim-chaos-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("tiny.toml");
    std::fs::write(&file, TINY).unwrap();
    let obsim = env!("CARGO_BIN_EXE_obsim");
    let run = |extra: &[&str], out: &str| {
        std::process::Command::new(obsim)
            .args(["chaos", file.to_str().unwrap(), "--seeds", "2", "--out", dir.join(out).to_str().unwrap()])
            .args(extra)
            .output()
            .unwrap()
    };
    let clean = run(&[], "clean");
    assert_eq!(clean.status.code(), Some(0), "{}", String::from_utf8_lossy(&clean.stdout));
    let buggy =
        run(&["--bug", "aggregator_ack_before_buffer", "--bug", "dash0_drop_one_batch", "--shrink-runs", "5"], "buggy");
    let stdout = String::from_utf8_lossy(&buggy.stdout);
    assert_eq!(buggy.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("2 runs (seeds 1..3), 2 failed"), "{stdout}");
    let failure = dir.join("buggy/failures/tiny-seed1.toml");
    let replay = std::process::Command::new(obsim).args(["replay", failure.to_str().unwrap()]).output().unwrap();
    let replayed = String::from_utf8_lossy(&replay.stdout);
    assert_eq!(replay.status.code(), Some(0), "{replayed}");
    assert!(replayed.contains("replayed: same verdict (FAIL), same event-log hash"), "{replayed}");
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("buggy/index.json")).unwrap()).unwrap();
    assert_eq!(index["failures_count"], 2);
    assert_eq!(index["runs"][0]["replay"], format!("cargo run --release -- replay {}", failure.display()));
    let bad = run(&["--bug", "nope"], "bad");
    assert_eq!(bad.status.code(), Some(2));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_passing_runs_result_json_leaves_out_the_sampled_points_unless_it_gets_a_full_report() {
    let dir = std::env::temp_dir().join(format!("obsim-chaos-lean-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("tiny.toml");
    std::fs::write(&file, TINY).unwrap();
    let out = dir.join("out");
    // More seeds than the worst runs that get full reports, so some passing runs do not.
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_obsim"))
        .args(["chaos", file.to_str().unwrap(), "--seeds", "7", "--out", out.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stdout));
    let index: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("index.json")).unwrap()).unwrap();
    let (mut full, mut lean) = (0, 0);
    for run in index["runs"].as_array().unwrap() {
        let folder = out.join(run["report_dir"].as_str().unwrap());
        let result: serde_json::Value =
            serde_json::from_slice(&std::fs::read(folder.join("result.json")).unwrap()).unwrap();
        let sample = &result["signals"]["log"]["latency_sample"];
        let points = sample["points"].as_array().unwrap().len();
        assert!(sample["batches_count"].as_u64().unwrap() > 0, "{sample}");
        if run["full_report"].as_bool().unwrap() {
            assert!(points > 0 && folder.join("report.html").exists(), "a full report keeps its scatter's points");
            full += 1;
        } else {
            assert_eq!(points, 0, "a passing run without a page keeps no points: {}", folder.display());
            lean += 1;
        }
    }
    assert!(full > 0 && lean > 0, "{full} full, {lean} lean");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `TINY` without its `[chaos]` table: a file a sweep must derive a table for.
fn tiny_without_chaos(name: &str) -> String {
    let body = TINY.split("[chaos]").next().unwrap().replace("name = \"tiny\"", &format!("name = \"{name}\""));
    assert!(!body.contains("[chaos]"));
    body
}

#[test]
fn the_command_sweeps_a_file_without_chaos_lists_opt_outs_and_groups_the_index_by_scenario() {
    let dir = std::env::temp_dir().join(format!("obsim-chaos-library-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let library = dir.join("library");
    std::fs::create_dir_all(&library).unwrap();
    std::fs::write(library.join("a-plain.toml"), tiny_without_chaos("plain")).unwrap();
    std::fs::write(library.join("b-tiny.toml"), TINY).unwrap();
    let skipped = format!("{}[chaos]\nskip = \"its truth is its own fault\"\n", tiny_without_chaos("skipped"));
    std::fs::write(library.join("c-skipped.toml"), skipped).unwrap();
    let out = dir.join("out");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_obsim"))
        .args(["chaos", library.to_str().unwrap(), "--seeds", "1", "--jobs", "2", "--out", out.to_str().unwrap()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stderr.contains("c-skipped.toml opts out: its truth is its own fault"), "{stderr}");
    assert!(stderr.contains("1 files swept with a [chaos] table derived from their config"), "{stderr}");
    assert!(stdout.contains("2 runs (seeds 1..2), 0 failed"), "{stdout}");
    let index: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("index.json")).unwrap()).unwrap();
    let scenarios: Vec<&str> =
        index["runs"].as_array().unwrap().iter().map(|run| run["scenario"].as_str().unwrap()).collect();
    assert_eq!(scenarios, vec!["plain", "tiny"], "the [chaos]-less file is swept, the opted-out one is not");
    assert!(out.join("runs/plain/1/case.toml").exists() && out.join("runs/tiny/1/case.toml").exists());
    let markdown = std::fs::read_to_string(out.join("index.md")).unwrap();
    assert!(markdown.contains("## By scenario\n\n| scenario | runs | failed | failed seeds |"), "{markdown}");
    assert!(markdown.contains("| plain | 1 | 0 |  |\n| tiny | 1 | 0 |  |"), "{markdown}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_opt_out_without_a_reason_is_refused_naming_the_key() {
    let dir = std::env::temp_dir().join(format!("obsim-chaos-skip-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("empty-skip.toml");
    std::fs::write(&file, format!("{}[chaos]\nskip = \"\"\n", tiny_without_chaos("empty"))).unwrap();
    let error = obsim::chaos::files::gather(std::slice::from_ref(&file)).unwrap_err().to_string();
    assert!(error.contains("chaos.skip") && error.contains("needs a reason"), "{error}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_derived_table_leaves_out_the_kinds_its_config_loses_under() {
    use obsim::scenario::chaos::ChaosKind;
    use obsim::vocab::LossCause;
    let library = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let files = obsim::chaos::files::gather(&[library]).unwrap();
    let swept = |name: &str| {
        files.chaos.iter().find(|(path, _)| path.ends_with(format!("{name}.toml"))).map(|(_, s)| s.clone())
    };
    let excluded = |name: &str, kind: ChaosKind| {
        let (_, excluded) = files.derived.iter().find(|(path, _)| path.ends_with(format!("{name}.toml"))).unwrap();
        excluded.iter().find(|(k, _)| *k == kind).map(|(_, causes)| causes.clone())
    };
    // The file accepts the losses of its machines' kill, not those of a kill of Railway's
    // Fluentd with its (default) memory buffer: kills are left out.
    let kill = excluded("machine-crash-memory-storage", ChaosKind::Kill).expect("kill is left out");
    assert!(kill.contains(&LossCause::AggregatorCrashUnpersisted), "{kill:?}");
    // Redis on `appendfsync everysec` loses to a power loss what it had not fsynced: the
    // file accepts that cause, but not the others a power loss brings.
    let power = excluded("redis-power-loss-aof-everysec", ChaosKind::PowerLoss).expect("power loss is left out");
    assert!(!power.contains(&LossCause::RedisCrashUnpersisted), "accepted by the file: {power:?}");
    // Retry_Limit 1 loses under a partition: that file accepts it, so it is swept with them.
    let limited = swept("retry-limit-1-long-outage").unwrap();
    assert!(limited.chaos.as_ref().unwrap().kinds.contains(&ChaosKind::LinkDrop));
    // Without `Require_ack_response` a partition may lose a written chunk.
    let unacked = excluded("link-drop-no-ack", ChaosKind::LinkDrop).expect("link drops are left out");
    assert!(unacked.contains(&LossCause::AgentUnackedWrite), "{unacked:?}");
    // Every file of the library is swept or opts out with a reason.
    assert_eq!(
        files.chaos.len() + files.opted_out.len(),
        std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios")).unwrap().count()
    );
    assert!(files.opted_out.iter().all(|(_, reason)| !reason.trim().is_empty()));
}

#[test]
fn a_late_long_fault_gets_a_longer_drain_than_a_short_early_one() {
    use obsim::faults::FaultSpec;
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/baseline.toml");
    let base = Scenario::load(&path).unwrap();
    let chaos = base.chaos.clone().unwrap();
    assert_eq!(chaos.drain, None, "baseline's sweep derives its drains");
    let drop = |at: u64, lasting: u64| FaultSpec::LinkDrop {
        at: Duration::from_secs(at),
        lasting: Duration::from_secs(lasting),
        from: "machines".into(),
        to: "railway".into(),
        oneway: false,
    };
    let early = obsim::chaos::drain::drain(&base, &chaos, &[drop(10, 5)]);
    let late = obsim::chaos::drain::drain(&base, &chaos, &[drop(240, 60)]);
    assert_eq!(early, chaos.drain_min, "a short early fault is long healed: the floor");
    assert!(late > early && late <= chaos.drain_max, "{late:?} vs {early:?}");
    assert!(late < Duration::from_secs(15 * 60), "shorter than the old fixed drain: {late:?}");
    let explicit = obsim::scenario::chaos::ChaosConfig { drain: Some(Duration::from_secs(77)), ..chaos.clone() };
    assert_eq!(
        obsim::chaos::drain::drain(&base, &explicit, &[drop(240, 60)]),
        Duration::from_secs(77),
        "an explicit drain wins"
    );
    // The case writes the derived drain out, so a replay runs the same.
    let case = Case::draw(&base, &path, 1, Bugs::default()).unwrap();
    assert_eq!(case.scenario.drain, obsim::chaos::drain::drain(&base, &chaos, case.faults()));
}

/// Baseline's `[chaos]` table.
fn run_base_chaos() -> obsim::scenario::chaos::ChaosConfig {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/baseline.toml");
    Scenario::load(&path).unwrap().chaos.unwrap()
}

#[test]
fn a_sweep_with_derived_drains_passes_on_baseline() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/baseline.toml");
    let base = Arc::new(Scenario::load(&path).unwrap());
    let options = SweepOptions { seeds: 2, jobs: 2, shrink_runs: 0, ..SweepOptions::default() };
    let runs = sweep(&[(path, base)], &options, &|| true, &|_| {});
    for run in &runs {
        assert!(run.passed(), "seed {}: {:?}", run.seed, run.failed_checks());
        let chaos = run_base_chaos();
        let drain = run.case.as_ref().unwrap().scenario.drain;
        assert!(chaos.drain_min <= drain && drain <= chaos.drain_max, "seed {}: {drain:?}", run.seed);
    }
}

/// An observer that lets shrinking take `shrink_steps` steps and then says the time budget is
/// spent, recording every phase it is told.
struct BudgetAfter {
    shrink_steps: u32,
    phases: std::sync::Mutex<Vec<String>>,
}

impl obsim::chaos::SweepObserver for BudgetAfter {
    fn keep_shrinking(&self) -> bool {
        let phases = self.phases.lock().unwrap();
        phases.iter().filter(|phase| phase.starts_with("shrinking")).count() < self.shrink_steps as usize
    }

    fn phase(&self, phase: obsim::chaos::Phase<'_>) {
        self.phases.lock().unwrap().push(phase.to_string());
    }
}

#[test]
fn a_spent_time_budget_cuts_shrinking_short_and_the_failure_file_and_index_say_so() {
    let bugs = bugs_named(&["dash0_drop_one_batch".to_string()]).unwrap();
    let options = SweepOptions { seeds: 1, bugs, shrink_runs: 40, ..SweepOptions::default() };
    let observer = BudgetAfter { shrink_steps: 1, phases: std::sync::Mutex::new(Vec::new()) };
    let runs = obsim::chaos::sweep_observed(&[tiny()], &options, &observer);
    let shrunk = runs[0].shrunk.as_ref().expect("the planted bug fails the run and it is shrunk");
    assert!(shrunk.cut_short, "the budget cut shrinking short");
    assert_eq!(shrunk.runs, 1, "one step before the budget was spent");
    let last = shrunk.steps.last().unwrap();
    assert!(last.starts_with("shrinking cut short after 1 of at most 40 runs: the time budget (--time)"), "{last}");
    let phases = observer.phases.lock().unwrap().clone();
    assert_eq!(phases, ["run tiny seed 1", "shrinking tiny seed 1 step 1/40"]);
    // What the sweep writes says so too: the failure file's header and the index's steps.
    let out = std::env::temp_dir().join(format!("obsim-chaos-cut-{}", std::process::id()));
    let index = obsim::chaos::output::write(&out, &runs, Shard::WHOLE, 1, 1).unwrap();
    let failure = std::fs::read_to_string(out.join("failures/tiny-seed1.toml")).unwrap();
    assert!(failure.contains("# obsim chaos: shrinking cut short after 1 of at most 40 runs"), "{failure}");
    assert!(index.runs[0].shrunk_steps.iter().any(|step| step.starts_with("shrinking cut short")));
    // Without a budget, shrinking runs to its end.
    let free = sweep_with(&options);
    assert!(!free[0].shrunk.as_ref().unwrap().cut_short);
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn the_command_prints_progress_lines_when_stderr_is_not_a_terminal() {
    let dir = std::env::temp_dir().join(format!("obsim-chaos-progress-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("tiny.toml");
    std::fs::write(&file, TINY).unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_obsim"))
        .args(["chaos", file.to_str().unwrap(), "--seeds", "2", "--shrink-runs", "3"])
        .args(["--bug", "dash0_drop_one_batch", "--out", dir.join("out").to_str().unwrap()])
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|line| line.starts_with("obsim chaos: ")).collect();
    // A failure's shrinking is announced when it begins, with done/total and failures so far.
    assert!(
        lines.iter().any(|line| line.starts_with(
            "obsim chaos: 0/2 runs, 0 failures, rate unknown, eta unknown, now: shrinking tiny seed 1 step 1/3"
        )),
        "{stderr}"
    );
    assert!(lines.iter().any(|line| line.contains("now: shrinking tiny seed 2 step 1/3")), "{stderr}");
    // The last line: every run done, both failed, a rate, no ETA left.
    let last = lines.last().unwrap();
    assert!(last.starts_with("obsim chaos: 2/2 runs, 2 failures, "), "{stderr}");
    assert!(last.ends_with(", eta 0s, now: done"), "{stderr}");
    assert!(last.contains(" runs/s") || last.contains(" runs/min"), "{last}");
    assert!(stderr.contains("FAIL "), "{stderr}");
    assert!(!stderr.contains('\u{1b}'), "no terminal escapes when stderr is piped: {stderr:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

// The progress line's text (sim/chaos/progress.rs): ETA, rate, phase.

#[test]
fn eta_is_unknown_until_a_few_runs_are_done() {
    assert_eq!(eta_text(0, 800, Duration::from_secs(90), None), "eta unknown");
    assert_eq!(eta_text(ETA_RUNS_MIN - 1, 800, Duration::from_secs(90), None), "eta unknown");
    assert_eq!(
        eta_text(1, 800, Duration::from_secs(90), Some(Duration::from_secs(600))),
        "eta unknown, at most 8m30s (--time)"
    );
}

#[test]
fn eta_is_the_time_per_run_times_the_runs_left() {
    // 120 runs in 60 s: 0.5 s a run, 680 left: 340 s.
    assert_eq!(eta_text(120, 800, Duration::from_secs(60), None), "eta 5m40s");
    assert_eq!(eta_text(800, 800, Duration::from_secs(60), None), "eta 0s");
}

#[test]
fn eta_is_capped_at_a_day_and_at_the_time_budget() {
    // The first run took a long shrink: 3 runs in 3 h, 9997 left.
    assert_eq!(eta_text(3, 10_000, Duration::from_secs(3 * 3600), None), "eta > 24h");
    assert_eq!(
        eta_text(3, 10_000, Duration::from_secs(3 * 3600), Some(Duration::from_secs(4 * 3600))),
        "eta 1h (--time)"
    );
    assert_eq!(eta_text(u64::MAX / 2, u64::MAX, Duration::from_secs(u64::MAX / 4), None), "eta > 24h");
}

#[test]
fn a_line_says_done_of_planned_failures_rate_eta_and_phase() {
    let now = Phase::Shrink { scenario: "baseline", seed: 1_000_017, step: 4, steps_max: 30 }.to_string();
    let status =
        Status { done: 120, planned: 800, failures: 3, elapsed: Duration::from_secs(60), budget: None, now: &now };
    assert_eq!(
        line(&status),
        "120/800 runs, 3 failures, 2.0 runs/s, eta 5m40s, now: shrinking baseline seed 1000017 step 4/30"
    );
    assert_eq!(rate_text(3, Duration::from_secs(60)), "3.0 runs/min");
    assert_eq!(rate_text(0, Duration::ZERO), "rate unknown");
    assert_eq!(Phase::Run { scenario: "tiny", seed: 2 }.to_string(), "run tiny seed 2");
}
