//! `obsim determinism` end to end (README "Checking determinism"): equal runs in separate
//! processes and under another binary pass; a run perturbed at one event (the test-only
//! `OBSIM_DETERMINISM_PERTURB`) is reported at that event with its time, host and both
//! texts; a run past the byte limit is caught by its hash; a run that gives nothing is
//! reported unchecked; bad input is refused with 2.
//!
//! The case is `scenarios/chaos-restarts.toml` at seed 1: about 4,800 events, a few
//! seconds a run.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use obsim::determinism::{CaseStatus, DeterminismReport, Divergence, LoggedEvent, PERTURB_ENV, RunLabel};

/// The scenario every case here draws from.
const SCENARIO: &str = "scenarios/chaos-restarts.toml";

/// The obsim binary cargo built for these tests.
fn obsim() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_obsim"));
    command.current_dir(env!("CARGO_MANIFEST_DIR")).env_remove(PERTURB_ENV);
    command
}

/// A fresh folder for one test's files.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("obsim-determinism-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Checks seed 1 of [`SCENARIO`] into `out` with `extra` flags and `perturb` as the
/// perturbation; the output and the report it wrote.
fn check(out: &Path, extra: &[&str], perturb: Option<&str>) -> (Output, DeterminismReport) {
    let mut command = obsim();
    command.args(["determinism", SCENARIO, "--seeds", "1", "--out"]).arg(out).args(extra);
    if let Some(perturb) = perturb {
        command.env(PERTURB_ENV, perturb);
    }
    let output = command.output().expect("obsim runs");
    let text = std::fs::read_to_string(out.join("determinism.json")).unwrap_or_else(|error| {
        panic!("no determinism.json ({error}); stderr: {}", String::from_utf8_lossy(&output.stderr))
    });
    (output, serde_json::from_str(&text).unwrap())
}

/// The event at `index` of `label`'s kept events file in `dir`.
fn kept_event(dir: &Path, label: RunLabel, index: usize) -> LoggedEvent {
    let text = std::fs::read_to_string(dir.join(format!("{}.events.jsonl", label.as_str()))).unwrap();
    LoggedEvent::parse(text.lines().nth(index).expect("the kept log holds the event"))
}

#[test]
fn equal_runs_in_two_processes_and_under_another_binary_pass_and_leave_nothing() {
    let out = scratch("equal");
    // Another path to the same build: the check runs whatever program it is given.
    let other = out.join("obsim-other");
    std::fs::hard_link(env!("CARGO_BIN_EXE_obsim"), &other)
        .or_else(|_| std::fs::copy(env!("CARGO_BIN_EXE_obsim"), &other).map(|_| ()))
        .unwrap();
    let (output, report) = check(&out, &["--compare-with", other.to_str().unwrap()], None);
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stdout));
    assert_eq!((report.runs_per_case, report.planned_count, report.cases.len()), (3, 1, 1));
    let CaseStatus::Equal { events_count, .. } = &report.cases[0].status else {
        panic!("equal runs: {:?}", report.cases[0].status)
    };
    assert!(*events_count > 1_000, "the case ran: {events_count} events");
    assert!(!out.join("cases").join("chaos-restarts-seed1").exists(), "equal runs leave no files");
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn a_run_perturbed_at_one_event_is_reported_there_with_time_host_and_both_texts() {
    let out = scratch("perturbed");
    let (output, report) = check(&out, &[], Some("second:40"));
    assert_eq!(output.status.code(), Some(1));
    let CaseStatus::Diverged { pairs, kept } = &report.cases[0].status else {
        panic!("a divergence: {:?}", report.cases[0].status)
    };
    assert_eq!(pairs.len(), 1);
    assert_eq!((pairs[0].first, pairs[0].second), (RunLabel::First, RunLabel::Second));
    let Divergence::Event { event_index: 40, first: Some(first), second: Some(second), .. } = &pairs[0].divergence
    else {
        panic!("the runs part at event index 40: {:?}", pairs[0].divergence)
    };
    // The first run's event 40 is the one its own log holds there; the second's is it, perturbed.
    assert_eq!(first, &kept_event(kept, RunLabel::First, 40));
    assert_eq!((second.true_nanos, &second.host, &second.kind), (first.true_nanos, &first.host, &first.kind));
    assert_eq!(second.detail, format!("{}{}", first.detail, obsim::determinism::child::PERTURB_MARK));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let at = format!(
        "at {}.{:03}s on {}",
        first.true_nanos / 1_000_000_000,
        first.true_nanos % 1_000_000_000 / 1_000_000,
        first.host
    );
    assert!(stdout.contains(&at), "the report names time and host ({at}): {stdout}");
    assert!(stdout.contains(&second.detail), "{stdout}");
    assert!(
        stdout.contains("replay: obsim determinism scenarios/chaos-restarts.toml --first-seed 1 --seeds 1"),
        "{stdout}"
    );
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn the_other_binarys_run_is_compared_with_the_first_and_past_the_byte_limit_the_hash_decides() {
    let out = scratch("other");
    // 20,000 bytes hold about 100 events: a perturbation at event 2,000 is past them.
    let exe = env!("CARGO_BIN_EXE_obsim");
    let (output, report) = check(&out, &["--compare-with", exe, "--event-bytes-limit", "20000"], Some("other:2000"));
    assert_eq!(output.status.code(), Some(1));
    let CaseStatus::Diverged { pairs, kept } = &report.cases[0].status else {
        panic!("a divergence: {:?}", report.cases[0].status)
    };
    assert_eq!(pairs.len(), 1, "the second run equals the first: {pairs:?}");
    assert_eq!((pairs[0].first, pairs[0].second), (RunLabel::First, RunLabel::Other));
    let Divergence::PastCompared { compared_count, .. } = &pairs[0].divergence else {
        panic!("the hash decides past the limit: {:?}", pairs[0].divergence)
    };
    let written = std::fs::read_to_string(kept.join("first.events.jsonl")).unwrap();
    assert!(written.len() <= 20_000, "the byte limit holds: {}", written.len());
    assert_eq!(*compared_count, written.lines().count() as u64);
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn a_run_that_writes_nothing_leaves_its_case_unchecked_and_fails() {
    let out = scratch("unchecked");
    let (output, report) = check(&out, &["--compare-with", "/bin/true"], None);
    assert_eq!(output.status.code(), Some(1));
    let CaseStatus::Unchecked { label, reason, .. } = &report.cases[0].status else {
        panic!("unchecked: {:?}", report.cases[0].status)
    };
    assert_eq!(*label, RunLabel::Other);
    assert!(reason.contains("wrote no summary"), "{reason}");
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn bad_input_is_refused_with_2_naming_the_flag() {
    let out = scratch("bad");
    let cases: [&[&str]; 4] = [
        &["--bug", "no_such_bug"],
        &["--compare-with", "/no/such/obsim"],
        &["--seeds", "20", "--cases-limit", "5"],
        &["--event-bytes-limit", "0"],
    ];
    for extra in cases {
        let output = obsim().args(["determinism", SCENARIO, "--out"]).arg(&out).args(extra).output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{extra:?}: {stderr}");
        let flag = extra[0].trim_start_matches("--");
        let named = if flag == "seeds" { "--cases-limit" } else { extra[0] };
        assert!(stderr.contains(named) || stderr.contains(flag), "{extra:?} names its flag: {stderr}");
    }
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn the_nightly_checks_1000_seeds_over_its_shards_and_release_against_debug_and_fails_on_a_divergence() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(".github/workflows/nightly-chaos.yml");
    let workflow: serde_yaml::Value = serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    for (job, needles) in [
        ("determinism", &["obsim determinism", "--seeds 1000", "--shard ${{ matrix.shard }}/4", "--time"][..]),
        (
            "determinism-builds",
            &["obsim determinism", "--seeds 100", "--compare-with target/debug/obsim", "--time"][..],
        ),
    ] {
        let steps = workflow["jobs"][job]["steps"].as_sequence().unwrap_or_else(|| panic!("job {job}"));
        let run = |needle: &str| steps.iter().find(|step| step["run"].as_str().is_some_and(|run| run.contains(needle)));
        let check = run("obsim determinism").unwrap_or_else(|| panic!("{job} runs obsim determinism"));
        let script = check["run"].as_str().unwrap();
        for needle in needles {
            assert!(script.contains(needle), "{job}: {needle} in {script}");
        }
        assert!(script.contains("|| status=$?") && !script.contains("|| true"), "{job} keeps the status: {script}");
        let fail = run("exit 1").unwrap_or_else(|| panic!("{job} fails on a non-zero status"));
        let condition = fail["if"].as_str().unwrap_or("");
        assert!(
            condition.contains("always()") && condition.contains("steps.check.outputs.status != '0'"),
            "{job}: {condition}"
        );
        let upload = steps
            .iter()
            .find(|step| step["uses"].as_str().is_some_and(|uses| uses.starts_with("actions/upload-artifact")));
        assert!(
            upload.is_some_and(|step| step["if"].as_str().unwrap_or("").contains("always()")),
            "{job} uploads always"
        );
    }
    let shards = workflow["jobs"]["determinism"]["strategy"]["matrix"]["shard"].as_sequence().unwrap();
    assert_eq!(shards.len(), 4, "1,000 seeds over 4 shards: 250 each");
}
