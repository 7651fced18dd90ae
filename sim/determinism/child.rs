//! One run of one case, in a process of its own: the child's side of `obsim determinism`
//! (the hidden `obsim determinism-case`).
//!
//! Why a child process per run: two runs in one process share the allocator, the thread-local
//! state and anything global a dependency keeps; a nondeterminism that lives there (a hash
//! map's per-process seed, an address used as a key) only shows between processes. The child
//! draws the case itself from (file, seed, bugs), as a sweep does, so the draw is checked
//! too, and writes what the parent compares into its folder:
//!
//! - `<label>.case.toml`: the drawn case, as a sweep's failure file would hold it;
//! - `<label>.events.jsonl`: the kept events of the event log, one JSON object a line, at
//!   most `event_bytes_limit` bytes (whole lines only);
//! - `<label>.result.txt`: the judged result (result.json's text), or the world's error;
//! - `<label>.summary.json`: the digests and counts ([`ChildSummary`]), written last, so a
//!   child that died leaves none.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{LoggedEvent, RunLabel};
use crate::chaos::Case;
use crate::check::Verdict;
use crate::pipeline::Pipeline;
use crate::scenario::Scenario;

/// The environment variable that perturbs one event of one run (tests only): `LABEL:INDEX`,
/// e.g. `second:40` appends ` [perturbed]` to the detail of the 41st event the run labelled
/// `second` writes. It stands in for a nondeterministic run, so tests can prove that a
/// divergence is found and named; nothing else reads it.
pub const PERTURB_ENV: &str = "OBSIM_DETERMINISM_PERTURB";

/// What the perturbation appends to the event's detail.
pub const PERTURB_MARK: &str = " [perturbed]";

/// What one child run is asked to do.
#[derive(Clone, Debug)]
pub struct ChildRequest {
    /// The base scenario file (with a `[chaos]` table).
    pub scenario: PathBuf,
    /// The seed: it draws the case and seeds the world.
    pub seed: u64,
    /// Bugs planted by name (`--bug`).
    pub bugs: Vec<String>,
    /// Which run this is; names its files.
    pub label: RunLabel,
    /// The folder the files go to.
    pub dir: PathBuf,
    /// Most bytes of event lines written.
    pub event_bytes_limit: u64,
    /// The index of the event to perturb ([`PERTURB_ENV`]); `None` in every real run.
    pub perturb_event: Option<u64>,
}

/// What a child reports besides its files: digests and counts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChildSummary {
    /// SHA-256 of the drawn case's text.
    pub case_sha256: String,
    /// Events the run recorded (kept or not).
    pub events_count: u64,
    /// Event lines written to the events file.
    pub events_written: u64,
    /// Whether lines were left out: the byte limit or the world's kept limit cut the log.
    pub events_truncated: bool,
    /// The event log's hash over every event.
    pub hash: String,
    /// SHA-256 of the result file.
    pub result_sha256: String,
    /// `PASS`, `FAIL` or `world error`: for the report.
    pub verdict: String,
}

/// The file of `label`'s `what` (`case.toml`, `events.jsonl`, …) in `dir`.
pub fn file_of(dir: &Path, label: RunLabel, what: &str) -> PathBuf {
    dir.join(format!("{}.{what}", label.as_str()))
}

/// The perturbation [`PERTURB_ENV`] asks of the run labelled `label`: `Ok(None)` when unset
/// or meant for another run; an error naming the variable when it does not parse.
pub fn perturbation_for(label: RunLabel, value: Option<&str>) -> Result<Option<u64>, String> {
    let Some(value) = value else { return Ok(None) };
    let bad = || format!("{PERTURB_ENV}={value:?}: expected LABEL:INDEX, e.g. second:40");
    let (target, index) = value.split_once(':').ok_or_else(bad)?;
    let index: u64 = index.trim().parse().map_err(|_| bad())?;
    let target = RunLabel::from_name(target.trim()).ok_or_else(bad)?;
    Ok((target == label).then_some(index))
}

/// Runs `request`'s case in this process and writes its files; the summary is also
/// written last, as `<label>.summary.json`.
pub fn run_case_here(request: &ChildRequest) -> Result<ChildSummary, String> {
    let base = Scenario::load(&request.scenario).map_err(|error| format!("invalid scenario: {error}"))?;
    let bugs = crate::chaos::case::bugs_named(&request.bugs)?;
    let case = Case::draw(&base, &request.scenario, request.seed, bugs).map_err(|error| error.to_string())?;
    std::fs::create_dir_all(&request.dir).map_err(|error| io_error(&request.dir, &error))?;
    let case_file = file_of(&request.dir, request.label, "case.toml");
    std::fs::write(&case_file, &case.text).map_err(|error| io_error(&case_file, &error))?;
    let mut pipeline = Pipeline::build(std::sync::Arc::clone(&case.scenario), case.seed);
    let (result_text, verdict) = match pipeline.run() {
        Ok(outcome) => {
            let verdict = Verdict::judge(&pipeline, outcome);
            let text = serde_json::to_string_pretty(&verdict.result)
                .map_err(|error| format!("cannot write the result: {error}"))?;
            (text, if verdict.passed() { "PASS" } else { "FAIL" }.to_string())
        }
        Err(error) => (format!("world error: {error}\n"), "world error".to_string()),
    };
    let result_file = file_of(&request.dir, request.label, "result.txt");
    std::fs::write(&result_file, &result_text).map_err(|error| io_error(&result_file, &error))?;
    let events = pipeline.world.events();
    let (events_written, bytes_cut) = write_events(request, &events.kept())?;
    let summary = ChildSummary {
        case_sha256: sha256_hex(case.text.as_bytes()),
        events_count: events.events_count(),
        events_written,
        events_truncated: bytes_cut || events_written < events.events_count(),
        hash: perturbed_hash(events.hash().to_string(), request.perturb_event, events.events_count()),
        result_sha256: sha256_hex(result_text.as_bytes()),
        verdict,
    };
    assert!(summary.events_written <= summary.events_count, "a run writes no more events than it recorded");
    let summary_file = file_of(&request.dir, request.label, "summary.json");
    let json = serde_json::to_string(&summary).map_err(|error| format!("cannot write the summary: {error}"))?;
    std::fs::write(&summary_file, json).map_err(|error| io_error(&summary_file, &error))?;
    Ok(summary)
}

/// Writes `events` as JSON lines, whole lines only, at most `event_bytes_limit` bytes;
/// returns the lines written and whether the byte limit cut the log.
fn write_events(request: &ChildRequest, events: &[crate::world::Event]) -> Result<(u64, bool), String> {
    let path = file_of(&request.dir, request.label, "events.jsonl");
    let file = std::fs::File::create(&path).map_err(|error| io_error(&path, &error))?;
    let mut out = std::io::BufWriter::new(file);
    let mut bytes_written = 0u64;
    let mut lines_written = 0u64;
    for (index, event) in events.iter().enumerate() {
        let mut logged = LoggedEvent::of(event);
        if request.perturb_event == Some(index as u64) {
            logged.detail.push_str(PERTURB_MARK);
        }
        let mut line = serde_json::to_string(&logged).map_err(|error| format!("cannot write an event: {error}"))?;
        line.push('\n');
        if bytes_written + line.len() as u64 > request.event_bytes_limit {
            out.flush().map_err(|error| io_error(&path, &error))?;
            return Ok((lines_written, true));
        }
        out.write_all(line.as_bytes()).map_err(|error| io_error(&path, &error))?;
        bytes_written += line.len() as u64;
        lines_written += 1;
    }
    out.flush().map_err(|error| io_error(&path, &error))?;
    assert!(bytes_written <= request.event_bytes_limit, "the events file stays within its byte limit");
    Ok((lines_written, false))
}

/// The hash a run reports: the event log's, or, when the run is perturbed at an event it
/// recorded, a digest of it and the perturbation — a run whose event differs has another
/// hash too, whether or not the byte limit let the event be written.
fn perturbed_hash(hash: String, perturb_event: Option<u64>, events_count: u64) -> String {
    match perturb_event {
        Some(index) if index < events_count => sha256_hex(format!("{hash}{PERTURB_MARK}{index}").as_bytes()),
        _ => hash,
    }
}

/// The lowercase hex SHA-256 of `bytes`.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|byte| format!("{byte:02x}")).collect()
}

/// An I/O error naming the file.
fn io_error(path: &Path, error: &std::io::Error) -> String {
    format!("{}: {error}", path.display())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_perturbation_applies_only_to_the_run_it_names() {
        assert_eq!(perturbation_for(RunLabel::Second, Some("second:40")), Ok(Some(40)));
        assert_eq!(perturbation_for(RunLabel::First, Some("second:40")), Ok(None));
        assert_eq!(perturbation_for(RunLabel::First, None), Ok(None));
        let error = perturbation_for(RunLabel::First, Some("second")).unwrap_err();
        assert!(error.contains(PERTURB_ENV), "{error}");
        assert!(perturbation_for(RunLabel::First, Some("third:1")).is_err());
    }
}
