//! Running a scenario written inline in a test: the one way the pipeline-level tests turn
//! TOML text into a verdict, so each test file keeps only its scenario and its assertions.
//!
//! Included by test files with `mod scenario_support;`.

#![allow(dead_code, reason = "each test binary that includes this module uses only part of it")]

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

/// The header most inline scenarios share, so a test's text holds only what the test is
/// about: `name`, `seed`, load `duration` and `drain` (scenario durations, e.g. "2m"),
/// `machines` OpenAI machines of `workers` workers each, and agents that buffer on the
/// filesystem, never give up and wait for acks (nothing lost unless a fault says so).
/// Ten lines, each ending in a newline, so a test's own tables follow directly and the
/// line numbers in loader errors stay what they were.
pub fn openai_header(name: &str, seed: u64, duration: &str, drain: &str, machines: u32, workers: u32) -> String {
    format!(
        "name = \"{name}\"\nseed = {seed}\nduration = \"{duration}\"\ndrain = \"{drain}\"\n[topology]\nmachines = [{{ type = \"openai\", count = {machines}, workers = {workers} }}]\n[agent]\nstorage = \"filesystem\"\nretry_limit = \"no_limits\"\nrequire_ack = true\n"
    )
}
