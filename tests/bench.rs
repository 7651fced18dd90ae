//! `obsim bench` end to end: a short run prints every column and writes valid JSON with
//! positive numbers; `obsim bench compare` flags a planted regression and passes equal
//! files; an unknown case is refused by name (README "Performance").

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The obsim binary cargo built for these tests.
fn obsim() -> Command {
    Command::new(env!("CARGO_BIN_EXE_obsim"))
}

/// A fresh folder for one test's files.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("obsim-bench-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs obsim with `args`.
fn run(args: &[&str]) -> Output {
    obsim().args(args).output().expect("obsim runs")
}

/// A bench JSON report with one case per (name, speed), as `obsim bench --json` writes it.
fn report_json(cases: &[(&str, f64)]) -> serde_json::Value {
    let cases: Vec<serde_json::Value> = cases
        .iter()
        .map(|(name, speed)| {
            serde_json::json!({
                "name": name, "machines": 6, "hosts": 11, "load_logs_per_sec": 21.0,
                "sim_secs_target": 30.0, "sim_secs": 30.0, "wall_secs": 30.0 / speed,
                "build_wall_secs": 0.01, "sim_per_wall": speed, "cpu_secs": 30.0 / speed, "sim_per_cpu": speed,
                "records": 1000, "records_delivered": 900, "records_per_sim_sec": 33.3,
                "records_per_cpu_sec": 1000.0 * speed / 30.0, "peak_mib": 50.0, "stop": "done"
            })
        })
        .collect();
    serde_json::json!({
        "bench_schema_version": 1, "obsim_version": "0.1.0", "git_commit": null, "profile": "release",
        "machine": { "cores": 2, "cpu_model": null }, "sim_secs": 30.0, "case_wall_secs": 120.0,
        "cases": cases
    })
}

/// Writes `value` as JSON to `dir/name`.
fn write(dir: &Path, name: &str, value: &serde_json::Value) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, serde_json::to_string_pretty(value).unwrap()).unwrap();
    path
}

#[test]
fn a_short_baseline_run_prints_every_column_and_writes_positive_json() {
    let dir = scratch("short");
    let json = dir.join("bench.json");
    let output = run(&["bench", "--only", "baseline", "--sim-secs", "2", "--json", json.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "stdout:\n{stdout}\nstderr:\n{}", String::from_utf8_lossy(&output.stderr));
    for column in obsim::bench::COLUMNS {
        assert!(stdout.contains(column), "column {column:?} missing from:\n{stdout}");
    }
    let row = stdout.lines().find(|line| line.starts_with("| baseline")).expect("a baseline row");
    assert!(row.contains("done"), "{row}");
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["bench_schema_version"], 1);
    assert!(report["machine"]["cores"].as_u64().unwrap() >= 1);
    let cases = report["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 1, "only the baseline ran");
    let case = &cases[0];
    assert_eq!(case["name"], "baseline");
    assert_eq!(case["stop"], "done");
    assert_eq!(case["machines"], 6, "the baseline's machines");
    for key in ["sim_secs", "wall_secs", "sim_per_wall", "sim_per_cpu", "cpu_secs", "records_per_cpu_sec", "peak_mib"] {
        let value = case[key].as_f64().unwrap_or_else(|| panic!("{key} is a number in {case}"));
        assert!(value > 0.0, "{key} = {value} must be positive");
    }
    assert!(case["records"].as_u64().unwrap() > 0, "the baseline emits records in 2 s");
    assert!((case["sim_secs"].as_f64().unwrap() - 2.0).abs() < 0.02, "ran the simulated time asked: {case}");
    // The JSON reads back as the report type `compare` uses.
    let text = std::fs::read_to_string(&json).unwrap();
    obsim::bench::compare::parse_report("bench.json", &text).unwrap();
}

#[test]
fn a_case_stops_at_its_wall_budget_and_reports_what_it_measured() {
    let output = run(&["bench", "--case", "fleet-100", "--sim-secs", "600", "--case-wall-secs", "1"]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let result: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(result["stop"], "wall_budget", "{result}");
    let sim = result["sim_secs"].as_f64().unwrap();
    assert!(sim < 600.0, "stopped early at {sim} s");
    assert!(result["wall_secs"].as_f64().unwrap() < 30.0, "{result}");
    assert_eq!(result["machines"], 100);
}

#[test]
fn compare_flags_a_planted_regression_and_passes_equal_files() {
    let dir = scratch("compare");
    let old = write(&dir, "old.json", &report_json(&[("baseline", 100.0), ("fleet-25", 20.0)]));
    let same = write(&dir, "same.json", &report_json(&[("baseline", 100.0), ("fleet-25", 20.0)]));
    let slower = write(&dir, "slower.json", &report_json(&[("baseline", 100.0), ("fleet-25", 10.0)]));

    let equal = run(&["bench", "compare", old.to_str().unwrap(), same.to_str().unwrap()]);
    let equal_text = String::from_utf8_lossy(&equal.stdout);
    assert_eq!(equal.status.code(), Some(0), "{equal_text}");
    assert!(equal_text.contains("0 regressions"), "{equal_text}");

    let regressed = run(&["bench", "compare", old.to_str().unwrap(), slower.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&regressed.stdout);
    assert_eq!(regressed.status.code(), Some(1), "{text}");
    let row = text.lines().find(|line| line.starts_with("fleet-25")).expect("a fleet-25 row");
    assert!(row.contains("REGRESSION") && row.contains("0.50×"), "{row}");
    let baseline = text.lines().find(|line| line.starts_with("baseline")).expect("a baseline row");
    assert!(!baseline.contains("REGRESSION"), "{baseline}");

    // A fall within the threshold is noise, not a regression.
    let lenient = run(&["bench", "compare", old.to_str().unwrap(), slower.to_str().unwrap(), "--threshold", "60"]);
    assert_eq!(lenient.status.code(), Some(0), "{}", String::from_utf8_lossy(&lenient.stdout));
}

#[test]
fn compare_refuses_a_file_that_is_not_a_bench_report() {
    let dir = scratch("bad");
    let old = write(&dir, "old.json", &report_json(&[("baseline", 100.0)]));
    let bad = write(&dir, "bad.json", &serde_json::json!({ "runs": [] }));
    let output = run(&["bench", "compare", old.to_str().unwrap(), bad.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("not an obsim bench JSON file"));
}

#[test]
fn an_unknown_case_is_a_clear_error_naming_the_known_cases() {
    let output = run(&["bench", "--only", "fleet-7"]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("unknown bench case \"fleet-7\""), "{stderr}");
    for case in obsim::bench::CASES {
        assert!(stderr.contains(case.name), "{stderr} names {}", case.name);
    }
    assert!(output.stdout.is_empty(), "nothing ran");
}
