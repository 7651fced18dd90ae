//! Every scenario file is its own named test: `cargo test --test scenarios baseline` runs
//! `scenarios/baseline.toml`. A new file needs no Rust code. Each test runs the scenario with
//! its own seed and fails with the verdict (what broke, where, the replay command).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use libtest_mimic::{Arguments, Failed, Trial};
use obsim::check::Verdict;
use obsim::scenario::Scenario;

/// The folders whose `.toml` files are scenario tests.
const SCENARIO_DIRS: &[&str] = &["scenarios", "fixtures/regressions"];

fn scenario_files() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for dir in SCENARIO_DIRS {
        let Ok(entries) = std::fs::read_dir(root.join(dir)) else { continue };
        for entry in entries {
            let path = entry.expect("a readable scenario folder").path();
            if path.extension().is_some_and(|ext| ext == "toml") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// Runs one scenario file and turns a failed verdict into a failed test.
fn run_scenario(path: &Path) -> Result<(), Failed> {
    let scenario = Arc::new(Scenario::load(path).map_err(|error| Failed::from(format!("invalid scenario: {error}")))?);
    let seed = scenario.seed;
    let mut verdict = Verdict::run(scenario, seed)
        .map_err(|error| Failed::from(format!("the simulation stopped: {error} (seed {seed})")))?;
    let relative = path.strip_prefix(env!("CARGO_MANIFEST_DIR")).unwrap_or(path);
    verdict.set_scenario_path(relative.display().to_string());
    if verdict.passed() { Ok(()) } else { Err(Failed::from(verdict.render())) }
}

fn main() {
    let arguments = Arguments::from_args();
    let trials = scenario_files()
        .into_iter()
        .map(|path| {
            let stem = path.file_stem().unwrap().to_string_lossy().to_string();
            let folder = path.parent().and_then(Path::file_name).unwrap().to_string_lossy().to_string();
            let name = if folder == "scenarios" { stem } else { format!("{folder}/{stem}") };
            Trial::test(name, move || run_scenario(&path))
        })
        .collect();
    libtest_mimic::run(&arguments, trials).exit();
}
