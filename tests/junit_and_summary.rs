//! CI results (README "CI results"): `obsim run DIR --junit FILE` and `obsim chaos … --junit
//! FILE` write JUnit XML that parses and lists exactly the runs, a failure carrying the
//! failed check's detail and the replay command; `obsim run DIR` writes the library summary
//! (`summary.md`, `summary.html`) with one row per scenario and ✓/✗ against its budgets; the
//! scenarios harness writes a JUnit file (`OBSIM_JUNIT`), a summary (`OBSIM_SUMMARY`) and a
//! failed scenario's report folder (`OBSIM_REPORTS_DIR`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// One machine for 40 s with Dash0 down for 8 s, then a 40 s drain: passes its budgets.
const GOOD: &str = r#"
name = "good"
seed = 5
duration = "40s"
drain = "40s"

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
at = "10s"
kind = "dash0_errors"
status = 503
rate = 1.0
for = "8s"

[expect]
correlation = "complete"
latency_p99 = "30s"
min_throughput = "1/s"
max_recovery = "1m"
"#;

/// `GOOD` renamed, with an `[expect]` line added before the others (a later duplicate key
/// would be refused).
fn variant(name: &str, expect_line: &str, bugs: &str) -> String {
    let text = GOOD.replace("name = \"good\"", &format!("name = \"{name}\""));
    let text = text.replace("[expect]\n", &format!("[expect]\n{expect_line}\n"));
    let text = if expect_line.starts_with("latency_p99") { text.replace("latency_p99 = \"30s\"\n", "") } else { text };
    format!("{text}{bugs}")
}

/// The library of three: one passing, one with a planted bug (Dash0 drops a batch: the
/// delivery check fails), one whose p99 budget (1ms) the run breaks.
fn library(dir: &Path) -> PathBuf {
    let library = dir.join("library");
    std::fs::create_dir_all(&library).unwrap();
    std::fs::write(library.join("a-good.toml"), GOOD).unwrap();
    std::fs::write(library.join("b-planted.toml"), variant("planted", "", "\n[bugs]\ndash0_drop_one_batch = true\n"))
        .unwrap();
    std::fs::write(library.join("c-budget.toml"), variant("budget", "latency_p99 = \"1ms\"", "")).unwrap();
    library
}

/// A fresh folder of its own under the target directory.
fn fresh_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("junit_and_summary").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn obsim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_obsim")).args(args).output().expect("the obsim binary runs")
}

fn text(output: &Output) -> String {
    format!("{}\n{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

/// A JUnit test case as the test reads it: classname, name, and the failure's message and
/// text (none when it passed).
#[derive(Debug)]
struct Case {
    classname: String,
    name: String,
    failure: Option<(String, String)>,
}

/// The cases of a JUnit file, checking the counts of every suite and of the whole file.
fn junit_cases(xml: &str) -> Vec<Case> {
    let document = roxmltree::Document::parse(xml).unwrap_or_else(|error| panic!("JUnit parses: {error}\n{xml}"));
    let root = document.root_element();
    assert_eq!(root.tag_name().name(), "testsuites");
    let mut cases = Vec::new();
    let mut failures_total = 0;
    for suite in root.children().filter(|node| node.has_tag_name("testsuite")) {
        let suite_cases: Vec<_> = suite.children().filter(|node| node.has_tag_name("testcase")).collect();
        let failed = suite_cases.iter().filter(|case| case.children().any(|n| n.has_tag_name("failure"))).count();
        assert_eq!(suite.attribute("tests"), Some(suite_cases.len().to_string().as_str()), "{xml}");
        assert_eq!(suite.attribute("failures"), Some(failed.to_string().as_str()), "{xml}");
        assert!(suite.attribute("time").is_some_and(|time| time.parse::<f64>().is_ok()), "{xml}");
        failures_total += failed;
        for case in suite_cases {
            assert!(case.attribute("time").is_some_and(|time| time.parse::<f64>().is_ok()), "{xml}");
            let failure = case.children().find(|node| node.has_tag_name("failure")).map(|failure| {
                (
                    failure.attribute("message").unwrap_or_default().to_string(),
                    failure.text().unwrap_or_default().to_string(),
                )
            });
            cases.push(Case {
                classname: case.attribute("classname").unwrap_or_default().to_string(),
                name: case.attribute("name").unwrap_or_default().to_string(),
                failure,
            });
        }
    }
    assert_eq!(root.attribute("tests"), Some(cases.len().to_string().as_str()), "{xml}");
    assert_eq!(root.attribute("failures"), Some(failures_total.to_string().as_str()), "{xml}");
    cases
}

/// The data rows of summary.md's table: (scenario, cells).
fn markdown_rows(markdown: &str) -> Vec<(String, Vec<String>)> {
    markdown
        .lines()
        .filter(|line| line.starts_with("| ") && !line.starts_with("| scenario"))
        .map(|line| {
            let cells: Vec<String> = line.trim_matches('|').split(" | ").map(|cell| cell.trim().to_string()).collect();
            (cells[0].clone(), cells[1..].to_vec())
        })
        .collect()
}

#[test]
fn run_of_a_library_writes_junit_and_a_summary_with_one_row_per_scenario() {
    let dir = fresh_dir("run");
    let library = library(&dir);
    let out = dir.join("reports");
    let junit = dir.join("junit.xml");
    let output =
        obsim(&["run", library.to_str().unwrap(), "--out", out.to_str().unwrap(), "--junit", junit.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));

    // JUnit: exactly the three scenarios, two failures with their check and replay command.
    let xml = std::fs::read_to_string(&junit).unwrap();
    let cases = junit_cases(&xml);
    let names: Vec<&str> = cases.iter().map(|case| case.name.as_str()).collect();
    assert_eq!(names, ["good", "planted", "budget"]);
    assert!(cases.iter().all(|case| case.classname == "library"), "{cases:?}");
    assert!(cases[0].failure.is_none(), "{cases:?}");
    let (message, planted) = cases[1].failure.clone().expect("the planted bug fails");
    assert!(message.contains("delivery"), "{message}");
    let replay = format!("replay: cargo run --release -- run {} --seed 5", library.join("b-planted.toml").display());
    assert!(planted.contains(&replay) && planted.contains("delivery: "), "{planted}");
    let (message, budget) = cases[2].failure.clone().expect("the broken budget fails");
    assert_eq!(message, "failed: latency_p99");
    assert!(budget.contains("latency_p99: log latency") && budget.contains("vs budget 1ms"), "{budget}");
    assert!(budget.contains("report: budget/5/report.html"), "{budget}");

    // summary.md: one row per scenario, ✓/✗ where the budgets say.
    let markdown = std::fs::read_to_string(out.join("summary.md")).unwrap();
    let rows = markdown_rows(&markdown);
    assert_eq!(rows.iter().map(|row| row.0.as_str()).collect::<Vec<_>>(), ["good", "planted", "budget"], "{markdown}");
    assert!(markdown.contains("3 scenarios, 1 passed, 2 failed."), "{markdown}");
    let (_, good) = &rows[0];
    assert_eq!(good[0], "PASS");
    assert!(good[2].ends_with('✓') && good[2].contains("/ 30s"), "p99 within 30s: {good:?}");
    assert!(good[4].ends_with('✓') && good[4].contains("dash0_errors"), "recovery: {good:?}");
    assert!(good[5].ends_with('✓') && good[5].contains("/ 1/s"), "throughput: {good:?}");
    assert_eq!(good[6], "[report](good/5/report.html)");
    let (_, planted) = &rows[1];
    assert!(planted[0].starts_with("FAIL: ") && planted[0].contains("delivery"), "{planted:?}");
    assert!(planted[1] != "none", "the dropped batch shows as lost: {planted:?}");
    let (_, budget) = &rows[2];
    assert_eq!(budget[0], "FAIL: latency_p99");
    assert!(budget[2].ends_with('✗') && budget[2].contains("/ 1ms"), "p99 beyond 1ms: {budget:?}");
    assert!(out.join("good/5/report.html").is_file() && out.join("budget/5/failure.toml").is_file());

    // summary.html: well-formed, self-contained, the same rows, the broken budget marked.
    let html = std::fs::read_to_string(out.join("summary.html")).unwrap();
    let options = roxmltree::ParsingOptions { allow_dtd: true, ..roxmltree::ParsingOptions::default() };
    let document = roxmltree::Document::parse_with_options(&html, options)
        .unwrap_or_else(|error| panic!("summary.html parses: {error}"));
    let rows: Vec<_> = document.descendants().filter(|node| node.has_tag_name("tr")).skip(1).collect();
    assert_eq!(rows.len(), 3, "{html}");
    let broken: Vec<_> = rows[2]
        .children()
        .filter(|cell| cell.attribute("class") == Some("cell-fail"))
        .map(|cell| cell.text().unwrap_or_default())
        .collect();
    assert_eq!(broken.len(), 2, "verdict and p99 of the broken budget: {broken:?}");
    let links: Vec<&str> = document.descendants().filter_map(|node| node.attribute("href")).collect();
    assert_eq!(links, ["good/5/report.html", "planted/5/report.html", "budget/5/report.html"]);
    assert!(!html.contains("<script") && !html.contains("http://") && !html.contains("https://"));
}

#[test]
fn run_refuses_a_library_with_an_invalid_file_before_running_any() {
    let dir = fresh_dir("invalid");
    let library = library(&dir);
    std::fs::write(library.join("d-broken.toml"), "name = \"broken\"\nduration = \"forever\"\n").unwrap();
    let out = dir.join("reports");
    let output = obsim(&["run", library.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(text(&output).contains("d-broken.toml"), "the error names the file: {}", text(&output));
    assert!(!out.exists(), "nothing ran");
}

/// A tiny chaos scenario (as tests/chaos_sweep.rs's): its seeds 1 and 2 pass clean.
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

#[test]
fn a_sweep_writes_one_case_per_scenario_and_seed_with_failures_that_replay() {
    let dir = fresh_dir("chaos");
    let files = dir.join("files");
    std::fs::create_dir_all(&files).unwrap();
    std::fs::write(files.join("a-tiny.toml"), TINY).unwrap();
    let buggy = TINY.replace("name = \"tiny\"", "name = \"buggy\"") + "[bugs]\ndash0_drop_one_batch = true\n";
    std::fs::write(files.join("b-buggy.toml"), buggy).unwrap();
    let out = dir.join("sweep");
    let junit = dir.join("chaos.xml");
    let output = obsim(&[
        "chaos",
        files.to_str().unwrap(),
        "--seeds",
        "2",
        "--shrink-runs",
        "2",
        "--out",
        out.to_str().unwrap(),
        "--junit",
        junit.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let xml = std::fs::read_to_string(&junit).unwrap();
    let cases = junit_cases(&xml);
    let listed: Vec<(&str, &str)> = cases.iter().map(|case| (case.classname.as_str(), case.name.as_str())).collect();
    assert_eq!(
        listed,
        [("chaos.tiny", "seed 1"), ("chaos.tiny", "seed 2"), ("chaos.buggy", "seed 1"), ("chaos.buggy", "seed 2")]
    );
    assert!(cases[..2].iter().all(|case| case.failure.is_none()), "{xml}");
    let index: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("index.json")).unwrap()).unwrap();
    for (case, run) in
        cases[2..].iter().zip(index["runs"].as_array().unwrap().iter().filter(|run| run["passed"] == false))
    {
        let (message, failure) = case.failure.clone().expect("the planted bug fails every seed");
        let first_check = run["failed_checks"][0].as_str().unwrap();
        assert!(message.contains(first_check), "{message} names {first_check}");
        assert!(failure.contains(&format!("{first_check}: ")), "the check's detail: {failure}");
        assert!(failure.contains(&format!("replay: {}", run["replay"].as_str().unwrap())), "{failure}");
    }
    // The same sweep writes the same bytes: time is simulated, not wall.
    let again = dir.join("again.xml");
    let rerun = obsim(&[
        "chaos",
        files.to_str().unwrap(),
        "--seeds",
        "2",
        "--shrink-runs",
        "2",
        "--jobs",
        "2",
        "--out",
        out.to_str().unwrap(),
        "--junit",
        again.to_str().unwrap(),
    ]);
    assert_eq!(rerun.status.code(), Some(1), "{}", text(&rerun));
    assert_eq!(std::fs::read_to_string(&again).unwrap(), xml);
}

/// The scenarios harness's binary (built next to this test's by `cargo test`).
fn scenarios_harness() -> PathBuf {
    let deps = std::env::current_exe().unwrap().parent().unwrap().to_path_buf();
    let newest = std::fs::read_dir(&deps)
        .unwrap()
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| {
            let name = path.file_name().unwrap_or_default().to_string_lossy().to_string();
            name.starts_with("scenarios-") && path.extension().is_none()
        })
        .max_by_key(|path| std::fs::metadata(path).and_then(|meta| meta.modified()).ok());
    newest.unwrap_or_else(|| {
        panic!("no scenarios harness in {}: build it (cargo test --test scenarios --no-run)", deps.display())
    })
}

#[test]
fn the_scenarios_harness_writes_junit_a_summary_and_a_failed_runs_reports() {
    let dir = fresh_dir("harness");
    let library = library(&dir);
    let reports = dir.join("obsim-reports");
    let junit = dir.join("scenarios.xml");
    let summary = dir.join("summary");
    let run = |filter: &[&str]| {
        Command::new(scenarios_harness())
            .args(filter)
            .env("OBSIM_SCENARIOS_DIR", &library)
            .env("OBSIM_JUNIT", &junit)
            .env("OBSIM_SUMMARY", &summary)
            .env("OBSIM_REPORTS_DIR", &reports)
            .output()
            .unwrap()
    };
    let output = run(&[]);
    assert_eq!(output.status.code(), Some(101), "libtest's failure status: {}", text(&output));
    let cases = junit_cases(&std::fs::read_to_string(&junit).unwrap());
    let names: Vec<&str> = cases.iter().map(|case| case.name.as_str()).collect();
    assert_eq!(names, ["a-good", "b-planted", "c-budget"]);
    let failed_dir = reports.join("c-budget");
    assert!(text(&output).contains(&format!("reports: {}", failed_dir.display())), "{}", text(&output));
    for file in ["result.json", "summary.md", "report.html", "events.log", "failure.toml"] {
        assert!(failed_dir.join(file).is_file(), "{file} in {}", failed_dir.display());
    }
    assert!(!reports.join("a-good").exists(), "a passed scenario writes no report folder");
    let markdown = std::fs::read_to_string(summary.join("summary.md")).unwrap();
    assert_eq!(markdown_rows(&markdown).len(), 3, "{markdown}");

    // A filter: the JUnit lists only the tests that ran.
    let output = run(&["good"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let cases = junit_cases(&std::fs::read_to_string(&junit).unwrap());
    assert_eq!(cases.iter().map(|case| case.name.as_str()).collect::<Vec<_>>(), ["a-good"]);
}
