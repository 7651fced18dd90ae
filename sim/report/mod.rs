//! Reports (ARCHITECTURE.md §5): what a run leaves behind for machines and for people.
//!
//! One folder per run, `reports/<scenario>/<seed>/`:
//! - `result.json` (`result.rs`): the verdict and every measurement in a stable schema;
//! - `summary.md` (`summary.rs`): the verdict, failed checks, totals, latency, faults, replay;
//! - `report.html` (`html.rs`, plots from `svg.rs`, the headline from `templates/headline.html`):
//!   a headline, then the same with six plots (latency by emit time per signal among them),
//!   self-contained;
//! - `events.log`: the world's kept events as text.
//!
//! The series behind the plots are collected while the run goes (`timeline.rs` and the
//! latency sample `sample.rs`, fed by the ledger); the percentile curve and fault windows are read when the run is judged
//! (`curve.rs`, `fault_window.rs`). A chaos sweep adds its index page (`index_html.rs`);
//! `obsim report compare` (`compare.rs`) flags regressions between two results or two sweep
//! indexes, and `obsim report merge` (`merge.rs`) joins the shards of one sweep;
//! `obsim report trend` (`trend.rs`) lines the last nights' sweeps up.
//! `obsim run --export DIR` (`export.rs`) writes what Dash0 stored as OTLP JSON files.
//! For CI: `junit.rs` writes JUnit XML of runs and sweeps (`--junit FILE`), `library.rs` the
//! library summary (`summary.md`, `summary.html`) of `obsim run scenarios/`.

pub mod build_info;
pub mod compare;
pub mod export;
pub mod failure_file;

pub mod html;
pub mod index;
pub(crate) mod index_html;
pub mod junit;
pub mod library;
pub mod merge;
pub mod result;
pub mod summary;
pub mod svg;
pub mod trend;

use std::path::Path;

use crate::check::RunResult;
use crate::world::EventLog;

/// The files of a run's report folder.
pub(crate) const RESULT_FILE: &str = "result.json";
pub(crate) const SUMMARY_FILE: &str = "summary.md";
pub const HTML_FILE: &str = "report.html";
pub(crate) const EVENTS_FILE: &str = "events.log";

/// Writes `result` into `dir` (created if missing): `result.json` always; `summary.md` and
/// `report.html` when `full`; `events.log` when `events` is given.
pub fn write_run(dir: &Path, result: &RunResult, events: Option<&EventLog>, full: bool) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join(RESULT_FILE), result.to_json())?;
    if full {
        std::fs::write(dir.join(SUMMARY_FILE), summary::render(result))?;
        std::fs::write(dir.join(HTML_FILE), html::render(result))?;
    }
    if let Some(events) = events {
        let mut file = std::io::BufWriter::new(std::fs::File::create(dir.join(EVENTS_FILE))?);
        events.write_text(&mut file)?;
        std::io::Write::flush(&mut file)?;
    }
    Ok(())
}
