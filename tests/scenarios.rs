//! Every scenario file is its own named test: `cargo test --test scenarios baseline` runs
//! `scenarios/baseline.toml`. A new file needs no Rust code. Each test runs the scenario with
//! its own seed and fails with the verdict (what broke, where, the replay command).
//!
//! For CI (README "CI results"): a failed scenario always writes its report folder
//! (result.json, summary.md, report.html, events.log, failure.toml) under
//! `target/obsim-reports/<test name>/` (or `$OBSIM_REPORTS_DIR/<test name>/`) and names it in
//! the failure text; with `OBSIM_JUNIT=FILE` the harness writes a JUnit file of the tests it
//! ran, and with `OBSIM_SUMMARY=DIR` the library summary (summary.md, summary.html) of them.
//! `OBSIM_SCENARIOS_DIR=DIR` runs the scenario files of DIR instead of the library's.
//! libtest-mimic has no JUnit output of its own (its `--format` is pretty, terse or json),
//! and libtest's `--format junit` is nightly-only; hence the variables.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use libtest_mimic::{Arguments, Failed, Trial};
use obsim::check::Verdict;
use obsim::pipeline::Pipeline;
use obsim::report::junit;
use obsim::report::library::{Budgets, LibraryRow, RowRun};
use obsim::scenario::Scenario;

/// The folders whose `.toml` files are scenario tests, each with the prefix of its tests'
/// names (relative to the crate's folder).
const SCENARIO_DIRS: &[(&str, &str)] = &[("scenarios", ""), ("fixtures/regressions", "regressions/")];

/// Where failed scenarios' report folders go, unless `$OBSIM_REPORTS_DIR` says otherwise
/// (relative to the crate's folder).
const REPORTS_DIR_DEFAULT: &str = "target/obsim-reports";

/// The environment variables that ask for CI outputs (README "CI results").
const JUNIT_ENV: &str = "OBSIM_JUNIT";
const SUMMARY_ENV: &str = "OBSIM_SUMMARY";
const REPORTS_DIR_ENV: &str = "OBSIM_REPORTS_DIR";
/// A folder of scenario files run instead of `SCENARIO_DIRS` (tests of this harness, or a
/// library of one's own).
const SCENARIOS_DIR_ENV: &str = "OBSIM_SCENARIOS_DIR";

/// What each test that ran left for the CI outputs, by test name.
type Ran = Arc<Mutex<Vec<(String, LibraryRow)>>>;

/// The scenario files with their tests' names, in name order.
fn scenario_files() -> Vec<(String, PathBuf)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dirs: Vec<(PathBuf, &str)> = match std::env::var_os(SCENARIOS_DIR_ENV) {
        Some(dir) => vec![(PathBuf::from(dir), "")],
        None => SCENARIO_DIRS.iter().map(|(dir, prefix)| (root.join(dir), *prefix)).collect(),
    };
    let mut files = Vec::new();
    for (dir, prefix) in dirs {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries {
            let path = entry.expect("a readable scenario folder").path();
            if path.extension().is_some_and(|ext| ext == "toml") {
                let stem = path.file_stem().unwrap_or_default().to_string_lossy().to_string();
                files.push((format!("{prefix}{stem}"), path));
            }
        }
    }
    files.sort();
    files
}

/// The folder failed scenarios' reports go under.
fn reports_root() -> PathBuf {
    match std::env::var_os(REPORTS_DIR_ENV) {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join(REPORTS_DIR_DEFAULT),
    }
}

/// Runs one scenario file and turns a failed verdict into a failed test; a failed run's
/// report folder is written under `reports_root()/<name>` (a passed run removes a stale one).
fn run_scenario(name: &str, path: &Path, ran: &Ran) -> Result<(), Failed> {
    let scenario = Arc::new(Scenario::load(path).map_err(|error| Failed::from(format!("invalid scenario: {error}")))?);
    let seed = scenario.seed;
    let relative = path.strip_prefix(env!("CARGO_MANIFEST_DIR")).unwrap_or(path);
    let mut row = LibraryRow {
        file: relative.display().to_string(),
        scenario: scenario.name.clone(),
        run: RowRun::Stopped { error: String::new() },
        report: None,
    };
    let mut pipeline = Pipeline::build(Arc::clone(&scenario), seed);
    let outcome = match pipeline.run() {
        Ok(outcome) => outcome,
        Err(error) => {
            let message = format!("the simulation stopped: {error} (seed {seed})");
            row.run = RowRun::Stopped { error: message.clone() };
            ran.lock().unwrap_or_else(|p| p.into_inner()).push((name.to_string(), row));
            return Err(Failed::from(message));
        }
    };
    let mut verdict = Verdict::judge(&pipeline, outcome);
    verdict.set_scenario_path(relative.display().to_string());
    let dir = reports_root().join(name);
    let mut failure = None;
    if verdict.passed() {
        let _ = std::fs::remove_dir_all(&dir);
    } else {
        failure = Some(match write_reports(&dir, path, &pipeline, &verdict) {
            Ok(()) => {
                row.report = Some(dir.join(obsim::report::HTML_FILE).display().to_string());
                format!("{}\nreports: {}", verdict.render(), dir.display())
            }
            Err(error) => {
                format!("{}\nthe reports could not be written to {}: {error}", verdict.render(), dir.display())
            }
        });
    }
    row.run = RowRun::Judged { result: Box::new(verdict.result), budgets: Budgets::of(&scenario.expect) };
    ran.lock().unwrap_or_else(|p| p.into_inner()).push((name.to_string(), row));
    match failure {
        None => Ok(()),
        Some(text) => Err(Failed::from(text)),
    }
}

/// A failed run's report folder: what `obsim run` writes, failure file included.
fn write_reports(dir: &Path, path: &Path, pipeline: &Pipeline, verdict: &Verdict) -> std::io::Result<()> {
    let _ = std::fs::remove_dir_all(dir);
    obsim::report::write_run(dir, &verdict.result, Some(pipeline.world.events()), true)?;
    let source = std::fs::read_to_string(path)?;
    let text = obsim::report::failure_file::failure_file_text(&source, verdict.result.seed, verdict);
    std::fs::write(dir.join("failure.toml"), text)
}

/// The CI outputs the environment asks for, of the tests that ran (in name order, whatever
/// order the threads ran them in).
fn write_ci_outputs(ran: &Ran) {
    let mut ran = std::mem::take(&mut *ran.lock().unwrap_or_else(|p| p.into_inner()));
    ran.sort_by(|a, b| a.0.cmp(&b.0));
    if let Some(file) = std::env::var_os(JUNIT_ENV) {
        let cases = ran
            .iter()
            .map(|(name, row)| {
                let classname = name.rsplit_once('/').map_or("scenarios", |(folder, _)| folder);
                match &row.run {
                    RowRun::Judged { result, .. } => junit::run_case(classname, name, result, row.report.as_deref()),
                    RowRun::Stopped { error } => {
                        let replay = format!("cargo test --test scenarios -- --exact {name}");
                        junit::error_case(classname, name, "world", error, Some(&replay))
                    }
                }
            })
            .collect();
        let suite = junit::TestSuite { name: "scenarios".to_string(), cases };
        if let Err(error) = junit::write(Path::new(&file), &[suite]) {
            eprintln!("{JUNIT_ENV}: could not write {}: {error}", Path::new(&file).display());
        }
    }
    if let Some(dir) = std::env::var_os(SUMMARY_ENV) {
        let rows: Vec<LibraryRow> = ran.into_iter().map(|(_, row)| row).collect();
        if let Err(error) = obsim::report::library::write(Path::new(&dir), &rows) {
            eprintln!("{SUMMARY_ENV}: could not write {}: {error}", Path::new(&dir).display());
        }
    }
}

fn main() {
    let arguments = Arguments::from_args();
    let ran: Ran = Arc::default();
    let trials = scenario_files()
        .into_iter()
        .map(|(name, path)| {
            let ran = Arc::clone(&ran);
            Trial::test(name.clone(), move || run_scenario(&name, &path, &ran))
        })
        .collect();
    let conclusion = libtest_mimic::run(&arguments, trials);
    if !arguments.list {
        write_ci_outputs(&ran);
    }
    conclusion.exit();
}
