//! JUnit XML of scenario runs and chaos sweeps, for CI systems (GitHub test reporters,
//! GitLab's test report, Jenkins): `<testsuites>` of `<testsuite>`s of `<testcase>`s, a
//! failed case carrying a `<failure>` (a check failed) or an `<error>` (the simulation
//! stopped, or a chaos case could not be made) whose text is the failed checks with their
//! details and the replay command.
//!
//! Why JUnit: it is the one test-result format every CI reads; a run's `result.json` is
//! richer but no CI shows it. The layout is the de-facto schema those tools read (Jenkins'
//! and Ant's): `testsuites`; `testsuite` with `name tests failures errors skipped time`;
//! `testcase` with `classname name time`; `failure`/`error` with `message type` and text.
//!
//! Why the `time` attributes are simulated seconds and not wall time: the file must be a
//! function of the runs (the same seeds write the same bytes, so two CI runs of one commit
//! diff clean and tests can pin it), and wall time depends on the machine and its load.
//! Simulated time is also what a scenario's budgets speak in. No timestamp or hostname is
//! written, for the same reason.

use std::fmt::Write as _;
use std::path::Path;

use super::index::{Index, IndexRun};
use crate::check::RunResult;

/// One test case: a scenario run, or one seed of a sweep.
#[derive(Clone, Debug, PartialEq)]
pub struct TestCase {
    /// The group a CI shows the case under (e.g. `scenarios`, `chaos.baseline`).
    pub classname: String,
    /// The case's own name (a scenario, or `seed 17`).
    pub name: String,
    /// Simulated time the run took, in microseconds (see the module doc for why not wall
    /// time).
    pub time_micros: u64,
    /// Passed, failed or errored.
    pub outcome: Outcome,
}

/// How a test case ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Every check held.
    Passed,
    /// A check failed: `<failure>`.
    Failed(Problem),
    /// The case could not be judged (the simulation stopped, a case could not be made):
    /// `<error>`.
    Errored(Problem),
}

/// What a `<failure>` or `<error>` element says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// One line: the `message` attribute (`failed: delivery, latency_p99`).
    pub message: String,
    /// The `type` attribute: the failed checks' names joined by `,`, or `world` / `case`.
    pub kind: String,
    /// The element's text: every failed check with its detail, then the replay command.
    pub text: String,
}

/// A `<testsuite>`: cases under one name.
#[derive(Clone, Debug, PartialEq)]
pub struct TestSuite {
    /// The suite's name (`obsim run`, `scenarios`, `chaos.<scenario>`).
    pub name: String,
    /// Its cases, in the order they are written.
    pub cases: Vec<TestCase>,
}

impl TestSuite {
    /// Cases whose outcome is `Failed`.
    pub fn failures_count(&self) -> usize {
        self.cases.iter().filter(|case| matches!(case.outcome, Outcome::Failed(_))).count()
    }

    /// Cases whose outcome is `Errored`.
    pub fn errors_count(&self) -> usize {
        self.cases.iter().filter(|case| matches!(case.outcome, Outcome::Errored(_))).count()
    }

    /// Simulated time of all cases, in microseconds.
    fn time_micros(&self) -> u64 {
        self.cases.iter().map(|case| case.time_micros).fold(0, u64::saturating_add)
    }
}

/// The test case of one judged run: its failed checks with their details and its replay
/// command when it failed; `report` (the run's report folder), when given, is named too.
pub fn run_case(classname: &str, name: &str, result: &RunResult, report: Option<&str>) -> TestCase {
    let outcome = if result.passed {
        Outcome::Passed
    } else {
        Outcome::Failed(failed_checks_problem(result, &result.replay, report))
    };
    TestCase { classname: classname.to_owned(), name: name.to_owned(), time_micros: result.simulated_micros, outcome }
}

/// The test case of a run that gave no verdict: `error` says why, `replay` how to get it
/// back.
pub fn error_case(classname: &str, name: &str, kind: &str, error: &str, replay: Option<&str>) -> TestCase {
    let mut text = format!("{error}\n");
    if let Some(replay) = replay {
        let _ = writeln!(text, "replay: {replay}");
    }
    let first_line = error.lines().next().unwrap_or_default();
    TestCase {
        classname: classname.to_owned(),
        name: name.to_owned(),
        time_micros: 0,
        outcome: Outcome::Errored(Problem { message: first_line.to_owned(), kind: kind.to_owned(), text }),
    }
}

/// The `<failure>` of a failed run: each failed check's name and detail, then `replay`.
fn failed_checks_problem(result: &RunResult, replay: &str, report: Option<&str>) -> Problem {
    let failed: Vec<_> = result.checks.iter().filter(|check| !check.passed).collect();
    let names: Vec<&str> = failed.iter().map(|check| check.name.as_str()).collect();
    let mut text = String::new();
    for check in &failed {
        let _ = writeln!(text, "{}: {}", check.name, check.detail);
    }
    let _ = writeln!(text, "replay: {replay}");
    if let Some(report) = report {
        let _ = writeln!(text, "report: {report}");
    }
    Problem { message: format!("failed: {}", names.join(", ")), kind: names.join(","), text }
}

/// The suites of a chaos sweep's `index`: one suite per scenario (in the sweep's file
/// order), one case per seed. `result_of` gives a run's `result.json` when there is one
/// (see [`read_run_result`]); the failure text then carries each failed check's detail,
/// else only the failed checks' names the index keeps.
pub fn sweep(index: &Index, result_of: &dyn Fn(&IndexRun) -> Option<RunResult>) -> Vec<TestSuite> {
    let mut order: Vec<(u64, &str)> = index.runs.iter().map(|run| (run.file_index, run.scenario.as_str())).collect();
    order.sort_unstable();
    order.dedup();
    order
        .into_iter()
        .map(|(file_index, scenario)| TestSuite {
            name: format!("chaos.{scenario}"),
            cases: index
                .runs
                .iter()
                .filter(|run| run.file_index == file_index && run.scenario == scenario)
                .map(|run| sweep_case(run, result_of(run).as_ref()))
                .collect(),
        })
        .collect()
}

/// One seed of a sweep as a test case.
fn sweep_case(run: &IndexRun, result: Option<&RunResult>) -> TestCase {
    let classname = format!("chaos.{}", run.scenario);
    let name = format!("seed {}", run.seed);
    if let Some(error) = &run.error {
        let kind = run.failed_checks.first().map_or("world", String::as_str);
        return error_case(&classname, &name, kind, error, run.replay.as_deref());
    }
    let time_micros = result.map_or(0, |result| result.simulated_micros);
    if run.passed {
        return TestCase { classname, name, time_micros, outcome: Outcome::Passed };
    }
    let replay = run.replay.clone().or_else(|| result.map(|result| result.replay.clone())).unwrap_or_default();
    let mut problem = match result {
        Some(result) => failed_checks_problem(result, &replay, run.report_dir.as_deref()),
        None => Problem {
            message: format!("failed: {}", run.failed_checks.join(", ")),
            kind: run.failed_checks.join(","),
            text: format!("failed checks: {}\nreplay: {replay}\n", run.failed_checks.join(", ")),
        },
    };
    if !run.shrunk_faults.is_empty() || !run.shrunk_steps.is_empty() {
        let faults = if run.shrunk_faults.is_empty() { "no faults".to_owned() } else { run.shrunk_faults.join("; ") };
        let _ = writeln!(problem.text, "shrunk to: {faults}");
    }
    TestCase { classname, name, time_micros, outcome: Outcome::Failed(problem) }
}

/// The `result.json` of `run` in the sweep folder `dir`, if the sweep wrote one and it
/// reads back.
pub fn read_run_result(dir: &Path, run: &IndexRun) -> Option<RunResult> {
    let folder = run.report_dir.as_ref()?;
    let text = std::fs::read_to_string(dir.join(folder).join(super::RESULT_FILE)).ok()?;
    RunResult::parse(&text).ok()
}

/// The JUnit XML of `suites`: deterministic bytes (see the module doc).
pub fn render(suites: &[TestSuite]) -> String {
    let tests: usize = suites.iter().map(|suite| suite.cases.len()).sum();
    let failures: usize = suites.iter().map(TestSuite::failures_count).sum();
    let errors: usize = suites.iter().map(TestSuite::errors_count).sum();
    let time = suites.iter().map(TestSuite::time_micros).fold(0, u64::saturating_add);
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"obsim\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\" time=\"{}\">",
        seconds_text(time)
    );
    for suite in suites {
        write_suite(&mut out, suite);
    }
    out.push_str("</testsuites>\n");
    out
}

/// One `<testsuite>` and its cases.
fn write_suite(out: &mut String, suite: &TestSuite) {
    let _ = writeln!(
        out,
        "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"0\" time=\"{}\">",
        escape(&suite.name),
        suite.cases.len(),
        suite.failures_count(),
        suite.errors_count(),
        seconds_text(suite.time_micros())
    );
    for case in &suite.cases {
        let head = format!(
            "    <testcase classname=\"{}\" name=\"{}\" time=\"{}\"",
            escape(&case.classname),
            escape(&case.name),
            seconds_text(case.time_micros)
        );
        let (element, problem) = match &case.outcome {
            Outcome::Passed => {
                let _ = writeln!(out, "{head}/>");
                continue;
            }
            Outcome::Failed(problem) => ("failure", problem),
            Outcome::Errored(problem) => ("error", problem),
        };
        let _ = writeln!(
            out,
            "{head}>\n      <{element} message=\"{}\" type=\"{}\">{}</{element}>\n    </testcase>",
            escape(&problem.message),
            escape(&problem.kind),
            escape(&problem.text)
        );
    }
    out.push_str("  </testsuite>\n");
}

/// Writes the JUnit XML of `suites` to `path` (its folder created if missing).
pub fn write(path: &Path, suites: &[TestSuite]) -> std::io::Result<()> {
    if let Some(parent) = path.parent().filter(|parent| !parent.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(path, render(suites))
}

/// Microseconds as seconds with three decimals, as JUnit's `time` attributes are read.
fn seconds_text(micros: u64) -> String {
    format!("{}.{:03}", micros / 1_000_000, micros % 1_000_000 / 1_000)
}

/// Text safe in an XML attribute or element: the five markup characters escaped, and the
/// control characters XML 1.0 forbids (all below U+0020 except tab, newline and carriage
/// return) left out, so a detail with odd bytes cannot make the file unreadable.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if u32::from(c) < 0x20 => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_and_forbidden_control_characters_are_escaped_or_dropped() {
        assert_eq!(escape("a<b>&\"c'\u{1}\n"), "a&lt;b&gt;&amp;&quot;c&apos;\n");
        assert_eq!(seconds_text(1_234_567), "1.234");
        assert_eq!(seconds_text(0), "0.000");
    }

    #[test]
    fn counts_add_up_over_suites_and_an_error_is_not_a_failure() {
        let error = error_case("chaos.tiny", "seed 2", "world", "the simulation stopped\nmore", Some("replay it"));
        let suite = TestSuite {
            name: "chaos.tiny".into(),
            cases: vec![
                TestCase {
                    classname: "chaos.tiny".into(),
                    name: "seed 1".into(),
                    time_micros: 2_500_000,
                    outcome: Outcome::Passed,
                },
                error,
            ],
        };
        let xml = render(&[suite]);
        assert!(
            xml.contains("<testsuites name=\"obsim\" tests=\"2\" failures=\"0\" errors=\"1\" time=\"2.500\">"),
            "{xml}"
        );
        assert!(xml.contains("<error message=\"the simulation stopped\" type=\"world\">"), "{xml}");
        assert!(xml.contains("replay: replay it"), "{xml}");
    }
}
