//! A sweep that found a failure fails, and reports say what happened (issue 9, point 7
//! and 4c): `obsim report merge` exits 1 when a merged run failed and names missing or
//! unfinished shards; a sweep's index is written as runs finish, so a killed sweep leaves
//! a valid index of what it ran; `obsim run` exits 3 when it cannot write its reports;
//! `obsim promote` gives the regression its own name and refuses planted bugs; records in
//! flight at the end are never called lost; the nightly workflow lets no failure, invalid
//! input, panic or missing shard pass.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use obsim::check::RunResult;
use obsim::report::index::Index;

/// One OpenAI machine for 20 s, swept with Dash0 faults only: each run takes well under a
/// second, so a sweep of a few seeds is quick.
const TINY: &str = r#"
name = "sweep-tiny"
seed = 1
duration = "20s"
drain = "1m"
[topology]
machines = [{ type = "openai", count = 1, workers = 2 }]
[workload]
jobs_per_second = 0.5
logs_per_job = 8
[agent]
storage = "filesystem"
retry_limit = "no_limits"
require_ack = true
[chaos]
kinds = ["dash0_errors", "latency"]
faults_max = 2
fault_for_max = "5s"
drain = "2m"
"#;

/// One machine whose link to Railway is down for the last 10 s of the load, and a drain of
/// 1 s: records are still held by the agent and the aggregator when the run ends — in
/// flight, not lost.
const IN_FLIGHT: &str = r#"
name = "in-flight-at-end"
seed = 3
duration = "30s"
drain = "1s"
[topology]
machines = [{ type = "openai", count = 1, workers = 2 }]
[workload]
jobs_per_second = 1.0
logs_per_job = 8
[agent]
storage = "filesystem"
retry_limit = "no_limits"
require_ack = true
[[fault]]
at = "20s"
kind = "link_drop"
from = "machines"
to = "railway"
for = "10s"
"#;

fn obsim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_obsim")).args(args).output().expect("the obsim binary runs")
}

fn text(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

/// A fresh folder of its own under the target directory.
fn fresh_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("sweep_failures").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn read_index(path: &Path) -> Index {
    let text = std::fs::read_to_string(path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    serde_json::from_str(&text)
        .unwrap_or_else(|error| panic!("{} is not a valid index: {error}\n{text}", path.display()))
}

/// `obsim chaos <file> --seeds 2 --shard <shard> --out <out> <extra>`.
fn chaos(file: &Path, shard: &str, out: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "chaos",
        file.to_str().unwrap(),
        "--seeds",
        "2",
        "--shrink-runs",
        "0",
        "--shard",
        shard,
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    obsim(&args)
}

#[test]
fn report_merge_fails_when_a_merged_run_failed_and_names_missing_shards() {
    let dir = fresh_dir("merge");
    let file = dir.join("sweep-tiny.toml");
    std::fs::write(&file, TINY).unwrap();
    let bug = ["--bug", "dash0_drop_one_batch"];
    for shard in ["1/2", "2/2"] {
        let out = dir.join(format!("buggy-{}", &shard[..1]));
        let output = chaos(&file, shard, &out, &bug);
        assert_eq!(output.status.code(), Some(1), "the planted bug fails the shard's run: {}", text(&output));
    }
    let shard_index = |name: &str| dir.join(name).join("index.json").to_str().unwrap().to_string();
    let merged = dir.join("merged");
    let output = obsim(&[
        "report",
        "merge",
        &shard_index("buggy-1"),
        &shard_index("buggy-2"),
        "--out",
        merged.to_str().unwrap(),
    ]);
    // Before: exit 0 however many merged runs failed, so the night passed.
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let index = read_index(&merged.join("index.json"));
    assert_eq!((index.runs_count, index.failures_count, index.finished), (2, 2, true));
    assert!(text(&output).contains("2 runs (seeds 1..3), 2 failed"), "{}", text(&output));

    // A shard missing: refused by default; --partial merges what there is, says which is
    // missing, and exits non-zero (1: its run failed).
    let output = obsim(&["report", "merge", &shard_index("buggy-1"), "--out", dir.join("strict").to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(text(&output).contains("missing shards 2/2 of the sweep"), "{}", text(&output));
    let partial = dir.join("partial");
    let output = obsim(&["report", "merge", &shard_index("buggy-1"), "--partial", "--out", partial.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let index = read_index(&partial.join("index.json"));
    assert_eq!((index.runs_count, index.missing_shards.clone()), (1, vec!["2/2".to_string()]));
    let markdown = std::fs::read_to_string(partial.join("index.md")).unwrap();
    assert!(markdown.contains("**INCOMPLETE: shards 2/2 are missing"), "{markdown}");

    // Clean shards, one missing: no failed run, but nobody ran the rest: exit 2, never 0.
    let clean = dir.join("clean-1");
    assert_eq!(chaos(&file, "1/2", &clean, &[]).status.code(), Some(0));
    let output = obsim(&[
        "report",
        "merge",
        &shard_index("clean-1"),
        "--partial",
        "--out",
        dir.join("clean-partial").to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(text(&output).contains("INCOMPLETE: shards 2/2 are missing"), "{}", text(&output));
    let html = std::fs::read_to_string(dir.join("clean-partial/index.html")).unwrap();
    assert!(
        html.contains("<span class=\"fail\">FAIL</span>") && html.contains("INCOMPLETE"),
        "an incomplete sweep never shows PASS"
    );
}

#[test]
fn a_killed_sweep_leaves_a_valid_index_of_the_runs_that_finished() {
    let dir = fresh_dir("killed");
    let file = dir.join("sweep-tiny.toml");
    std::fs::write(&file, TINY).unwrap();
    let out = dir.join("shard-1");
    let mut child = Command::new(env!("CARGO_BIN_EXE_obsim"))
        .args(["chaos", file.to_str().unwrap(), "--seeds", "1000", "--shrink-runs", "0"])
        .args(["--out", out.to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait (bounded) until the index lists two finished runs, then kill the sweep mid-way.
    let index_path = out.join("index.json");
    let mut waited = Duration::ZERO;
    loop {
        let runs = std::fs::read_to_string(&index_path)
            .ok()
            .and_then(|text| serde_json::from_str::<Index>(&text).ok())
            .map(|i| i.runs_count);
        if runs.is_some_and(|runs| runs >= 2) {
            break;
        }
        assert!(waited < Duration::from_secs(300), "no index with 2 runs after {waited:?}");
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the sweep ended ({status}) before it was killed");
        }
        std::thread::sleep(Duration::from_millis(50));
        waited += Duration::from_millis(50);
    }
    child.kill().unwrap();
    child.wait().unwrap();

    // Before: nothing was written until the sweep ended. Now: a valid, unfinished index.
    let index = read_index(&index_path);
    assert!(!index.finished, "the sweep did not finish");
    assert!(index.runs_count >= 2 && index.runs_count < 1000, "{} runs", index.runs_count);
    assert_eq!(index.planned_runs_count, Some(1000));
    assert_eq!(index.runs.len() as u64, index.runs_count);
    for run in &index.runs {
        let report_dir = out.join(run.report_dir.as_ref().expect("every finished run has its folder"));
        let result = RunResult::parse(&std::fs::read_to_string(report_dir.join("result.json")).unwrap()).unwrap();
        assert_eq!((result.seed, result.passed), (run.seed, run.passed));
    }
    assert!(index.runs.windows(2).all(|pair| pair[0].seed < pair[1].seed), "runs in seed order");
    let markdown = std::fs::read_to_string(out.join("index.md")).unwrap();
    assert!(markdown.contains("INCOMPLETE: the sweep has not finished"), "{markdown}");

    // The merge of the killed shard: refused by default, merged with --partial and exit 2.
    let output =
        obsim(&["report", "merge", index_path.to_str().unwrap(), "--out", dir.join("strict").to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output).contains("shard 1/1 did not finish"), "{}", text(&output));
    let output = obsim(&[
        "report",
        "merge",
        index_path.to_str().unwrap(),
        "--partial",
        "--out",
        dir.join("partial").to_str().unwrap(),
    ]);
    let merged = read_index(&dir.join("partial/index.json"));
    assert_eq!(output.status.code(), Some(if merged.failures_count > 0 { 1 } else { 2 }), "never 0: {}", text(&output));
    assert!(merged.missing_shards.is_empty() && merged.unfinished_shards == ["1/1"], "{merged:?}");
    assert_eq!(merged.runs_count, index.runs_count, "what the killed shard ran is merged");
}

#[test]
fn a_sweep_stopped_by_its_time_budget_finishes_its_index() {
    let dir = fresh_dir("time");
    let file = dir.join("sweep-tiny.toml");
    std::fs::write(&file, TINY).unwrap();
    let out = dir.join("out");
    let output = obsim(&[
        "chaos",
        file.to_str().unwrap(),
        "--seeds",
        "1000",
        "--shrink-runs",
        "0",
        "--time",
        "1s",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let index = read_index(&out.join("index.json"));
    assert!(index.finished && index.runs_count < 1000, "{} runs", index.runs_count);
    assert_eq!(obsim::report::index::incompleteness(&index), None, "a time budget is by design, not a missing shard");
    let markdown = std::fs::read_to_string(out.join("index.md")).unwrap();
    assert!(
        markdown.contains(&format!("Stopped by its time budget after {} of 1000 planned runs.", index.runs_count)),
        "{markdown}"
    );
}

#[test]
fn obsim_run_exits_3_when_it_cannot_write_its_reports() {
    let dir = fresh_dir("unwritable");
    let file = dir.join("sweep-tiny.toml");
    std::fs::write(&file, TINY).unwrap();
    // A file where the reports folder would go.
    let blocked = dir.join("reports");
    std::fs::write(&blocked, "not a folder").unwrap();
    let output = obsim(&["run", file.to_str().unwrap(), "--reports", blocked.to_str().unwrap()]);
    // Before: exit 0 (only a line on stderr said the reports were not written).
    assert_eq!(output.status.code(), Some(3), "{}", text(&output));
    assert!(text(&output).contains("verdict PASS"), "the verdict is still printed: {}", text(&output));
    assert!(text(&output).contains("could not write the reports"), "{}", text(&output));
    // The same for a sweep's folder.
    let output = chaos(&file, "1/1", &blocked.join("chaos"), &[]);
    assert_eq!(output.status.code(), Some(3), "{}", text(&output));
}

#[test]
fn promote_names_the_regression_and_refuses_planted_bugs() {
    let dir = fresh_dir("promote");
    let file = dir.join("sweep-tiny.toml");
    std::fs::write(&file, TINY).unwrap();
    let out = dir.join("buggy");
    let output = chaos(&file, "1/1", &out, &["--bug", "dash0_drop_one_batch"]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let failure = out.join("failures/sweep-tiny-seed1.toml");
    assert!(std::fs::read_to_string(&failure).unwrap().contains("dash0_drop_one_batch = true"));
    let into = dir.join("regressions");
    let promote = |extra: &[&str]| {
        let mut args =
            vec!["promote", failure.to_str().unwrap(), "--name", "dash0-drop", "--into", into.to_str().unwrap()];
        args.extend_from_slice(extra);
        obsim(&args)
    };
    // Before: promoted with the bug planted (a regression that can never pass).
    let refused = promote(&[]);
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused));
    assert!(text(&refused).contains("plants bugs (dash0_drop_one_batch)"), "{}", text(&refused));
    assert!(!into.join("dash0-drop.toml").exists());
    let stripped = promote(&["--strip-bugs"]);
    assert_eq!(stripped.status.code(), Some(0), "{}", text(&stripped));
    assert!(text(&stripped).contains("stripped the planted bugs dash0_drop_one_batch"), "{}", text(&stripped));
    let regression_path = into.join("dash0-drop.toml");
    let regression = obsim::scenario::Scenario::load(&regression_path).unwrap();
    // Before: name = "sweep-tiny", so its reports overwrote the scenario's own.
    assert_eq!(regression.name, "regression-dash0-drop");
    assert!(!regression.bugs.any());
    // The regression runs the real pipeline: it passes, and reports under its own name.
    let reports = dir.join("reports");
    let output = obsim(&["run", regression_path.to_str().unwrap(), "--reports", reports.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert!(reports.join("regression-dash0-drop").is_dir() && !reports.join("sweep-tiny").exists());
}

/// The `lost`, `lost silently` and `in flight` numbers of the `log` line `obsim run` prints.
fn printed_log_counts(stdout: &str) -> (u64, u64, u64) {
    let line = stdout.lines().find(|line| line.starts_with("log ") && line.contains("emitted")).expect("a log line");
    let number_after = |label: &str| -> u64 {
        let rest = line.split(label).nth(1).unwrap_or_else(|| panic!("{label:?} in {line:?}"));
        rest.split_whitespace().next().unwrap().parse().unwrap()
    };
    (number_after("  lost "), number_after("lost silently "), number_after("in flight "))
}

#[test]
fn records_in_flight_at_the_end_are_never_called_lost() {
    let dir = fresh_dir("in-flight");
    let file = dir.join("in-flight.toml");
    std::fs::write(&file, IN_FLIGHT).unwrap();
    let reports = dir.join("reports");
    let output = obsim(&["run", file.to_str().unwrap(), "--reports", reports.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1), "the liveness check fails: {}", text(&output));
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    let result =
        RunResult::parse(&std::fs::read_to_string(reports.join("in-flight-at-end/3/result.json")).unwrap()).unwrap();
    let log = &result.signals.log;
    assert!(log.in_flight_count > 0 && log.lost_count == 0, "the case needs records in flight and none lost: {log:?}");
    // Before: `lost 4` (every undelivered record summed, in flight included).
    assert_eq!(printed_log_counts(&stdout), (0, 0, log.in_flight_count), "{stdout}");
    let summary = std::fs::read_to_string(reports.join("in-flight-at-end/3/summary.md")).unwrap();
    assert!(
        summary.contains(&format!(
            "| log | {} | {} | 0 | 0 | 0 | {} |",
            log.emitted_count, log.delivered_count, log.in_flight_count
        )),
        "{summary}"
    );
    assert!(!summary.contains("records lost"), "{summary}");
    let html = std::fs::read_to_string(reports.join("in-flight-at-end/3/report.html")).unwrap();
    assert!(
        html.contains("in flight at the end, held by") && html.contains("<th class=\"num\">lost silently</th>"),
        "report.html"
    );

    // The chaos index: in flight in its own column, never as lost.
    let index_run = obsim::report::index::IndexRun {
        lost_count: Some(0),
        lost_silently_count: Some(0),
        in_flight_count: Some(log.in_flight_count),
        ..serde_json::from_value(serde_json::json!({
            "scenario": "s", "file": "s.toml", "seed": 1, "passed": false, "failed_checks": ["liveness"], "faults": [],
            "log_latency_p99_micros": null, "log_latency_max_micros": null, "event_log_hash": null, "failure_file": null,
            "shrunk_steps": [], "shrunk_faults": [], "replay": null, "error": null
        }))
        .unwrap()
    };
    assert_eq!(obsim::report::index::undelivered_text(&index_run), format!("{} in flight", log.in_flight_count));
    let mixed = obsim::report::index::IndexRun {
        lost_count: Some(5),
        lost_silently_count: Some(2),
        loss_causes: vec!["agent_retry_limit".into(), "lost_silently".into()],
        ..index_run
    };
    assert_eq!(
        obsim::report::index::undelivered_text(&mixed),
        format!("3 lost (agent_retry_limit), 2 lost silently, {} in flight", log.in_flight_count)
    );
}

/// The nightly workflow as YAML.
fn workflow() -> serde_yaml::Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(".github/workflows/nightly-chaos.yml");
    serde_yaml::from_str(&std::fs::read_to_string(&path).unwrap())
        .unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

/// The steps of `job`.
fn steps<'a>(workflow: &'a serde_yaml::Value, job: &str) -> &'a Vec<serde_yaml::Value> {
    workflow["jobs"][job]["steps"].as_sequence().unwrap_or_else(|| panic!("job {job} has steps"))
}

/// The step of `job` whose `run` contains `needle`.
fn step_running<'a>(workflow: &'a serde_yaml::Value, job: &str, needle: &str) -> &'a serde_yaml::Value {
    steps(workflow, job)
        .iter()
        .find(|step| step["run"].as_str().is_some_and(|run| run.contains(needle)))
        .unwrap_or_else(|| panic!("job {job} has a step running {needle:?}"))
}

/// The step of `job` that uses `action` (e.g. `actions/upload-artifact`).
fn step_using<'a>(workflow: &'a serde_yaml::Value, job: &str, action: &str) -> &'a serde_yaml::Value {
    steps(workflow, job)
        .iter()
        .find(|step| step["uses"].as_str().is_some_and(|uses| uses.starts_with(action)))
        .unwrap_or_else(|| panic!("job {job} uses {action}"))
}

fn condition(value: &serde_yaml::Value) -> &str {
    value["if"].as_str().unwrap_or("")
}

#[test]
fn the_nightly_workflow_lets_no_failure_panic_or_missing_shard_pass() {
    let workflow = workflow();
    let sweep = step_running(&workflow, "sweep", "obsim chaos");
    let script = sweep["run"].as_str().unwrap();
    // Before: `|| echo "..."` turned every exit status — an invalid scenario (2), a panic
    // (101), a kill — into success.
    assert!(!script.contains("|| echo") && !script.contains("|| true"), "{script}");
    assert!(script.contains("--time"), "the sweep stops starting runs before the step's limit: {script}");
    assert!(
        script.contains("--junit reports/chaos/shard-${{ matrix.shard }}/junit.xml"),
        "each shard's JUnit lands in the folder its artifact uploads: {script}"
    );
    assert!(
        sweep["timeout-minutes"]
            .as_u64()
            .is_some_and(|step| step < workflow["jobs"]["sweep"]["timeout-minutes"].as_u64().unwrap())
    );
    // Run the script's exit handling with each status: only 0 and 1 may go on.
    let handling = &script[script.find("case").expect("the script branches on the exit status")..];
    for (status, continues) in [(0, true), (1, true), (2, false), (3, false), (101, false), (137, false)] {
        let shell = format!("status={status}\n{}", handling.replace("${{ matrix.shard }}", "1"));
        let ran = Command::new("bash").args(["-c", &shell]).output().unwrap();
        assert_eq!(ran.status.success(), continues, "exit {status}: {}", text(&ran));
    }
    // The shard's folder uploads whatever happened (a failed or timed-out sweep too).
    assert!(condition(step_using(&workflow, "sweep", "actions/upload-artifact")).contains("always()"));
    // The merge runs even when a shard failed or timed out, merges what there is, and the
    // night fails on any non-zero merge.
    let merge_job = &workflow["jobs"]["merge"];
    assert!(
        condition(merge_job).contains("always()") || condition(merge_job).contains("!cancelled()"),
        "{merge_job:?}"
    );
    let merge = step_running(&workflow, "merge", "obsim report merge");
    let merge_script = merge["run"].as_str().unwrap();
    assert!(merge_script.contains("--partial") && !merge_script.contains("|| echo"), "{merge_script}");
    assert!(merge_script.contains("status=$status") || merge_script.contains("status=$?"), "{merge_script}");
    let fail = step_running(&workflow, "merge", "exit 1");
    assert!(condition(fail).contains("steps.merge.outputs.status != '0'"), "{fail:?}");
    assert!(condition(fail).contains("always()"), "a failed earlier step must not skip the verdict: {fail:?}");
}

#[test]
fn every_scenario_and_regression_has_a_name_of_its_own() {
    // Reports go to reports/<name>/<seed>/: two files with one name overwrite each other's.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut names: std::collections::BTreeMap<String, PathBuf> = std::collections::BTreeMap::new();
    for folder in ["scenarios", "fixtures/regressions"] {
        let mut files: Vec<PathBuf> =
            std::fs::read_dir(root.join(folder)).unwrap().map(|entry| entry.unwrap().path()).collect();
        files.sort();
        for path in files.into_iter().filter(|path| path.extension().is_some_and(|ext| ext == "toml")) {
            let text = std::fs::read_to_string(&path).unwrap();
            let table: toml::Table =
                toml::from_str(&text).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
            let name = table["name"].as_str().unwrap_or_else(|| panic!("{}: no name", path.display())).to_string();
            if folder == "fixtures/regressions" {
                assert!(
                    name.starts_with("regression-"),
                    "{}: name {name:?} (promote names regressions regression-<file>)",
                    path.display()
                );
            }
            if let Some(other) = names.insert(name.clone(), path.clone()) {
                panic!("{} and {} are both named {name:?}", other.display(), path.display());
            }
        }
    }
}

#[test]
fn the_final_index_does_not_depend_on_the_order_runs_finished_in() {
    // Runs finish in any order with several jobs; the index written as they finish must end
    // byte-identical to the one-job sweep's (runs in (seed, file) order, the same worst
    // seeds with full reports).
    let dir = fresh_dir("order");
    let file = dir.join("sweep-tiny.toml");
    std::fs::write(&file, TINY).unwrap();
    let sweep = |jobs: &str, out: &Path| {
        let output = obsim(&[
            "chaos",
            file.to_str().unwrap(),
            "--seeds",
            "7",
            "--shrink-runs",
            "0",
            "--jobs",
            jobs,
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(matches!(output.status.code(), Some(0 | 1)), "{}", text(&output));
        std::fs::read_to_string(out.join("index.json")).unwrap()
    };
    let (one, two) = (dir.join("one"), dir.join("two"));
    let one_json = sweep("1", &one);
    let two_json = sweep("3", &two);
    let display = obsim::report::index::display_path;
    assert_eq!(two_json.replace(&display(&two), &display(&one)), one_json);
    let index = read_index(&one.join("index.json"));
    assert_eq!((index.runs_count, index.finished), (7, true));
    let worst: Vec<u64> = obsim::report::index::worst_index_runs(&index).iter().map(|run| run.seed).collect();
    assert_eq!(worst.len(), 5);
    for run in &index.runs {
        assert_eq!(
            run.full_report,
            !run.passed || worst.contains(&run.seed),
            "seed {}: full reports for failures and the worst seeds",
            run.seed
        );
    }
    for run in &index.runs {
        let html = |root: &Path| root.join(run.report_dir.as_ref().unwrap()).join("report.html").exists();
        assert_eq!((html(&one), html(&two)), (run.full_report, run.full_report), "seed {}", run.seed);
    }
}

/// TINY under another name with a planted bug in its own `[bugs]` table: every run of it
/// fails, whatever the seed.
fn buggy_tiny() -> String {
    TINY.replace("name = \"sweep-tiny\"", "name = \"sweep-buggy\"")
        .replace("[chaos]", "[bugs]\ndash0_drop_one_batch = true\n\n[chaos]")
}

/// `obsim chaos <library> --seeds 3 --first-seed <first_seed> --out <dir>/<name> <extra>`:
/// the index.json it wrote.
fn night(library: &Path, dir: &Path, name: &str, first_seed: &str, extra: &[&str]) -> PathBuf {
    let out = dir.join(name);
    let mut args = vec!["chaos", library.to_str().unwrap(), "--seeds", "3", "--first-seed", first_seed];
    args.extend(["--shrink-runs", "0", "--out", out.to_str().unwrap()]);
    args.extend_from_slice(extra);
    let output = obsim(&args);
    assert!(matches!(output.status.code(), Some(0 | 1)), "{}", text(&output));
    out.join("index.json")
}

#[test]
fn two_nights_of_different_seeds_compare_per_scenario_and_a_planted_bug_regresses() {
    let dir = fresh_dir("nights");
    let library = dir.join("library");
    std::fs::create_dir_all(&library).unwrap();
    std::fs::write(library.join("a-tiny.toml"), TINY).unwrap();
    std::fs::write(library.join("b-buggy.toml"), buggy_tiny()).unwrap();
    let first = night(&library, &dir, "night-1", "1", &[]);
    let second = night(&library, &dir, "night-2", "1001", &[]);
    // The planted night plants the bug in every case; its copy of sweep-buggy leaves out its
    // own [bugs] table (a case with the bug in both panics on a duplicate key: a known bug of
    // the case builder, reported).
    let planted_library = dir.join("planted-library");
    std::fs::create_dir_all(&planted_library).unwrap();
    std::fs::write(planted_library.join("a-tiny.toml"), TINY).unwrap();
    std::fs::write(
        planted_library.join("b-buggy.toml"),
        TINY.replace("name = \"sweep-tiny\"", "name = \"sweep-buggy\""),
    )
    .unwrap();
    let planted = night(&planted_library, &dir, "night-3", "2001", &["--bug", "dash0_drop_one_batch"]);
    check_build_stamp(&first);
    check_nights_compare(&first, &second, &planted);
    check_builds_compare(&dir, &first, &second);
    check_index_pages(first.parent().unwrap());
}

/// The index says which obsim ran the sweep.
fn check_build_stamp(first: &Path) {
    let index = read_index(first);
    let build = index.obsim.clone().expect("index.json carries the build");
    assert_eq!(build.version, env!("CARGO_PKG_VERSION"));
    assert!(build.commit == "unknown" || build.commit.len() == 40, "{build:?}");
    let raw: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(first).unwrap()).unwrap();
    assert_eq!(raw["obsim"]["commit"], build.commit.as_str());
}

/// Two nights of one config compare as distributions within the thresholds; a planted bug
/// regresses the failure rate of the scenario it broke.
fn check_nights_compare(first: &Path, second: &Path, planted: &Path) {
    // Same config, other seeds: no (scenario, seed) matches, so distributions per scenario;
    // within the thresholds. Before: "0 matched runs, no regression" whatever happened.
    // Three seeds a scenario make latency quantiles noise (measured: the p99 of the runs'
    // log p99 was 4.0 s one night and 14.6 s the next, same config): the latency rows are
    // not judged here (a wide threshold); the failure rate's rule does not use it.
    let output = obsim(&[
        "report",
        "compare",
        first.to_str().unwrap(),
        second.to_str().unwrap(),
        "--distribution-threshold",
        "1000",
    ]);
    let said = text(&output);
    assert_eq!(output.status.code(), Some(0), "{said}");
    assert!(said.contains("0 of 6 runs match on (scenario, seed)") && said.contains("as distributions"), "{said}");
    assert!(said.contains("same build"), "{said}");
    for metric in ["failure rate", "p50 of runs' log p99", "p99 of runs' span p99", "lost records per run"] {
        assert!(said.contains(metric), "{metric}: {said}");
    }
    // The buggy scenario fails every night: no change of its failure rate.
    assert!(
        said.lines()
            .any(|line| line.starts_with("ok") && line.contains("sweep-buggy") && line.contains("3/3 (100.0%)")),
        "{said}"
    );

    // A planted bug in the third night: sweep-tiny's failure rate jumps.
    let output = obsim(&["report", "compare", second.to_str().unwrap(), planted.to_str().unwrap()]);
    let said = text(&output);
    assert_eq!(output.status.code(), Some(1), "{said}");
    let regressed: Vec<&str> = said.lines().filter(|line| line.starts_with("REGRESSION")).collect();
    assert!(
        regressed
            .iter()
            .any(|line| line.contains("sweep-tiny") && line.contains("failure rate") && line.contains("0/3")),
        "{said}"
    );
    assert!(!regressed.iter().any(|line| line.contains("sweep-buggy") && line.contains("failure rate")), "{said}");
}

/// Indexes of two builds: the comparison says so first; an index without a stamp (or the
/// per-run fields added since) still reads.
fn check_builds_compare(dir: &Path, first: &Path, second: &Path) {
    let mut other: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(second).unwrap()).unwrap();
    other["obsim"]["commit"] = "f".repeat(40).into();
    let other_path = dir.join("other-build.json");
    std::fs::write(&other_path, serde_json::to_string_pretty(&other).unwrap()).unwrap();
    let output = obsim(&["report", "compare", first.to_str().unwrap(), other_path.to_str().unwrap()]);
    assert!(text(&output).starts_with("different builds:"), "{}", text(&output));
    // An index written before the stamp still reads.
    other.as_object_mut().unwrap().remove("obsim");
    for run in other["runs"].as_array_mut().unwrap() {
        for field in ["failed_check_details", "span_latency_p99_micros", "duplicated_count", "lost_by_cause"] {
            run.as_object_mut().unwrap().remove(field);
        }
    }
    std::fs::write(&other_path, serde_json::to_string_pretty(&other).unwrap()).unwrap();
    let (first, other) = (first.to_str().unwrap(), other_path.to_str().unwrap());
    let output = obsim(&["report", "compare", first, other, "--distribution-threshold", "1000"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert!(text(&output).starts_with("builds unknown"), "{}", text(&output));
}

/// The index page: one row per scenario linking its page; every link of every page exists;
/// failures show their checks' details and link their replay files.
fn check_index_pages(sweep_dir: &Path) {
    let html = std::fs::read_to_string(sweep_dir.join("index.html")).unwrap();
    let links = page_links(&html);
    let rows = parse_page(&html, |node| node.has_tag_name("tr") && node.attribute("class") == Some("scenario"));
    assert_eq!(rows, 2, "one row per scenario, not a seed grid");
    let drill_downs: Vec<&String> = links.iter().filter(|link| link.starts_with("scenarios/")).collect();
    assert_eq!(drill_downs, vec!["scenarios/sweep-tiny.html", "scenarios/sweep-buggy.html"]);
    for link in &links {
        assert!(sweep_dir.join(link).exists(), "index.html links {link}, which does not exist");
    }
    // Failures show why, not only the check's name, and link their replay file.
    let details = parse_page(&html, |node| {
        node.has_tag_name("li")
            && node.attribute("class") == Some("failed-check")
            && node.children().any(|child| child.has_tag_name("pre") && child.text().is_some_and(|t| !t.is_empty()))
    });
    assert!(details >= 3, "each failed run lists its failed checks with their details: {html}");
    assert!(links.iter().any(|link| link.starts_with("failures/sweep-buggy-seed")), "{links:?}");
    for page in ["sweep-tiny", "sweep-buggy"] {
        let page_path = sweep_dir.join("scenarios").join(format!("{page}.html"));
        let page_html = std::fs::read_to_string(&page_path).unwrap();
        let runs = parse_page(&page_html, |node| node.has_tag_name("tr") && node.attribute("class") == Some("run"));
        assert_eq!(runs, 3, "{page}: a row per run");
        for link in page_links(&page_html) {
            assert!(page_path.parent().unwrap().join(&link).exists(), "{page} links {link}, which does not exist");
        }
    }
    let buggy_page = std::fs::read_to_string(sweep_dir.join("scenarios/sweep-buggy.html")).unwrap();
    assert!(buggy_page.contains("class=\"replay\" href=\"../failures/sweep-buggy-seed"), "{buggy_page}");
}

/// Parses `html` as XML (as every obsim page must be) and counts the nodes `matches` takes.
fn parse_page(html: &str, matches: impl Fn(&roxmltree::Node<'_, '_>) -> bool) -> usize {
    let options = roxmltree::ParsingOptions { allow_dtd: true, ..roxmltree::ParsingOptions::default() };
    let document = roxmltree::Document::parse_with_options(html, options).unwrap_or_else(|error| panic!("{error}"));
    document.descendants().filter(|node| matches(node)).count()
}

/// Every `href` of `html`.
fn page_links(html: &str) -> Vec<String> {
    let options = roxmltree::ParsingOptions { allow_dtd: true, ..roxmltree::ParsingOptions::default() };
    let document = roxmltree::Document::parse_with_options(html, options).unwrap_or_else(|error| panic!("{error}"));
    document.descendants().filter_map(|node| node.attribute("href").map(str::to_string)).collect()
}

/// An index of one night: `runs` (scenario, passed, log p99 in ms), seeds from `first_seed`.
fn fake_night(first_seed: u64, runs: &[(&str, bool, u64)]) -> String {
    let runs: Vec<obsim::report::index::IndexRun> = runs
        .iter()
        .enumerate()
        .map(|(k, (scenario, passed, p99_ms))| obsim::report::index::IndexRun {
            scenario: scenario.to_string(),
            file: format!("scenarios/{scenario}.toml"),
            seed: first_seed + k as u64,
            passed: *passed,
            log_latency_p99_micros: Some(p99_ms * 1000),
            lost_count: Some(0),
            ..obsim::report::index::IndexRun::default()
        })
        .collect();
    let index = Index {
        schema_version: 1,
        obsim: Some(obsim::report::build_info::BuildInfo::current()),
        shard: "1/1".into(),
        first_seed,
        seeds: runs.len() as u64,
        runs_count: runs.len() as u64,
        failures_count: runs.iter().filter(|run| !run.passed).count() as u64,
        planned_runs_count: Some(runs.len() as u64),
        finished: true,
        missing_shards: Vec::new(),
        unfinished_shards: Vec::new(),
        runs,
    };
    serde_json::to_string_pretty(&index).unwrap()
}

#[test]
fn the_nightly_workflow_keeps_a_bounded_history_and_publishes_the_trend() {
    let workflow = workflow();
    let merge_job = &workflow["jobs"]["merge"];
    assert_eq!(merge_job["permissions"]["actions"].as_str(), Some("read"), "gh run download needs actions: read");
    let fetch = step_running(&workflow, "merge", "gh run download");
    assert!(condition(fetch).contains("always()"), "a failed night still keeps its history: {fetch:?}");
    assert!(fetch["run"].as_str().unwrap().contains("--name chaos-history"), "{fetch:?}");
    let upload = steps(&workflow, "merge")
        .iter()
        .find(|step| step["with"]["name"].as_str() == Some("chaos-history"))
        .expect("the history is uploaded again");
    assert!(condition(upload).contains("always()") && upload["with"]["path"].as_str() == Some("history"));
    let trend_step = step_running(&workflow, "merge", "obsim report trend");
    assert!(condition(trend_step).contains("always()"));
    run_the_history_step(trend_step["run"].as_str().unwrap());
}

/// Runs the history step's `script` on a history of three nights with HISTORY_NIGHTS=3.
fn run_the_history_step(script: &str) {
    // Run the step's script on a history of three nights with HISTORY_NIGHTS=3: tonight is
    // added, the oldest night goes, the trend is drawn over the three left and tonight is
    // compared with last night, in the step summary.
    let dir = fresh_dir("history");
    let history = dir.join("history");
    let nights = [
        ("night-00000001", fake_night(1_000_000, &[("a", true, 100), ("b", true, 200)])),
        ("night-00000002", fake_night(2_000_000, &[("a", true, 110), ("b", false, 200)])),
        ("night-00000003", fake_night(3_000_000, &[("a", true, 120), ("b", true, 210)])),
    ];
    for (name, json) in &nights {
        std::fs::create_dir_all(history.join(name)).unwrap();
        std::fs::write(history.join(name).join("index.json"), json).unwrap();
    }
    let merged = dir.join("reports/chaos/merged");
    std::fs::create_dir_all(&merged).unwrap();
    std::fs::write(merged.join("index.json"), fake_night(4_000_000, &[("a", true, 130), ("b", true, 190)])).unwrap();
    let script =
        script.replace("${{ github.run_number }}", "4").replace("./target/release/obsim", env!("CARGO_BIN_EXE_obsim"));
    let summary = dir.join("summary.md");
    let ran = Command::new("bash")
        // As GitHub runs a step: `bash --noprofile --norc -eo pipefail`.
        .args(["--noprofile", "--norc", "-eo", "pipefail", "-c", &script])
        .current_dir(&dir)
        .env("HISTORY_NIGHTS", "3")
        .env("GITHUB_STEP_SUMMARY", &summary)
        .output()
        .unwrap();
    assert!(ran.status.success(), "{}", text(&ran));
    let mut kept: Vec<String> = std::fs::read_dir(&history)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    kept.sort();
    assert_eq!(kept, vec!["night-00000002", "night-00000003", "night-00000004"], "bounded to 3 nights");
    let trend_md = std::fs::read_to_string(dir.join("reports/chaos/trend/trend.md")).unwrap();
    assert!(trend_md.contains("| b | 1/1 (100.0%) | 0/1 (0.0%) | 0/1 (0.0%) |"), "{trend_md}");
    for file in ["trend.svg", "trend.html"] {
        let text = std::fs::read_to_string(dir.join("reports/chaos/trend").join(file)).unwrap();
        assert!(parse_page(&text, |node| node.has_tag_name("svg")) >= 2, "{file}: two plots");
    }
    let summary = std::fs::read_to_string(&summary).unwrap();
    assert!(summary.contains("# obsim nightly trend: the last 3 nights"), "{summary}");
    assert!(summary.contains("## Tonight against night-00000003") && summary.contains("as distributions"), "{summary}");
}
