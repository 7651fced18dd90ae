//! Running a scenario written inline in a test: the one way the pipeline-level tests turn
//! TOML text into a verdict, so each test file keeps only its scenario and its assertions.
//!
//! Included by test files with `mod scenario_support;`.

use std::path::Path;
use std::sync::Arc;

use obsim::check::Verdict;
use obsim::scenario::Scenario;

/// Parses `text` (named `file` in errors) and runs it with `seed`, or with the scenario's own
/// seed when `None`. Panics with the loader's message when the text is not a valid scenario:
/// a test's scenario is part of the test.
pub fn judge(file: &str, text: &str, seed: Option<u64>) -> Verdict {
    let scenario = Scenario::parse(Path::new(file), text).unwrap_or_else(|error| panic!("{error}"));
    let seed = seed.unwrap_or(scenario.seed);
    Verdict::run(Arc::new(scenario), seed).unwrap_or_else(|error| panic!("{file} seed {seed}: {error}"))
}
