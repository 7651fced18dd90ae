//! `result.json`: the result model (`crate::check::result`) as a file, for
//! machines (dashboards, `obsim report compare`, nightly trend lines): written as pretty
//! JSON, read back refusing another schema version.
//!
//! README.md ("Reports") lists the schema; `crate::check::result` states its stability rules.
//!
//! The file also says which obsim wrote it: a last field `"obsim": {"version", "commit"}`
//! (`BuildInfo`). Why added here and not a field of `RunResult`: the model lives in the check
//! layer, below this one where `BuildInfo` lives (ARCHITECTURE.md §6); the stamp is a fact
//! about the file, not about the run. `schema_version` stays 1: the field is added, nothing
//! is renamed or retyped, and readers of schema 1 ignore a field they do not know.

use std::collections::BTreeMap;

use serde::Serialize;

use super::build_info::BuildInfo;
use crate::check::result::{RESULT_SCHEMA_VERSION, RunResult};

/// A result as its file holds it: the model's fields, then the stamp of the obsim that
/// wrote it.
#[derive(Serialize)]
struct Stamped<'a> {
    #[serde(flatten)]
    result: &'a RunResult,
    obsim: &'a BuildInfo,
}

impl RunResult {
    /// The file's text: pretty JSON with a final newline, stamped with the running obsim.
    pub fn to_json(&self) -> String {
        self.to_json_stamped(&BuildInfo::current())
    }

    /// The file's text stamped with `obsim`: tests that pin the bytes pass a stamp whose
    /// commit is `BuildInfo::REDACTED`.
    pub fn to_json_stamped(&self, obsim: &BuildInfo) -> String {
        serde_json::to_string_pretty(&Stamped { result: self, obsim }).expect("a result serializes") + "\n"
    }

    /// Parses a `result.json`, refusing another schema version.
    pub fn parse(text: &str) -> Result<RunResult, String> {
        let value: serde_json::Value = serde_json::from_str(text).map_err(|error| format!("not JSON: {error}"))?;
        match value.get("schema_version").and_then(serde_json::Value::as_u64) {
            Some(version) if version == u64::from(RESULT_SCHEMA_VERSION) => {}
            Some(version) => {
                return Err(format!(
                    "schema_version {version}: this obsim reads result.json version {RESULT_SCHEMA_VERSION}"
                ));
            }
            None => return Err("no schema_version: not an obsim result.json".to_string()),
        }
        serde_json::from_value(value)
            .map_err(|error| format!("not a result.json of version {RESULT_SCHEMA_VERSION}: {error}"))
    }

    /// Records lost (with a cause or silently), both signals.
    pub fn lost_count(&self) -> u64 {
        self.signals.log.lost_count + self.signals.span.lost_count
    }

    /// The loss causes with at least one record, both signals.
    pub fn loss_causes(&self) -> Vec<String> {
        let mut causes: Vec<String> = [&self.signals.log, &self.signals.span]
            .into_iter()
            .flat_map(|signal| signal.losses.iter().filter(|loss| loss.count > 0).map(|loss| loss.cause.clone()))
            .collect();
        causes.sort();
        causes.dedup();
        causes
    }
}

/// The stamp of the obsim that wrote a `result.json` (`None` for files written before
/// results were stamped); an error names what is wrong with the text.
pub fn build_info_of(text: &str) -> Result<Option<BuildInfo>, String> {
    let value: serde_json::Value = serde_json::from_str(text).map_err(|error| format!("not JSON: {error}"))?;
    match value.get("obsim") {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(stamp) => serde_json::from_value(stamp.clone())
            .map(Some)
            .map_err(|error| format!("field obsim: not a version and commit: {error}")),
    }
}

/// Losses of both signals by cause, summed: for comparing two results.
pub(crate) fn losses_by_cause(result: &RunResult) -> BTreeMap<String, u64> {
    let mut by_cause = BTreeMap::new();
    for signal in [&result.signals.log, &result.signals.span] {
        for loss in &signal.losses {
            *by_cause.entry(loss.cause.clone()).or_default() += loss.count;
        }
    }
    by_cause
}
