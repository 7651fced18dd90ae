//! A chaos case: a base scenario with a drawn fault schedule, written out as a plain,
//! self-contained scenario file and parsed back.
//!
//! Why write it out and parse it back before running: the text is what a failure report
//! saves and what `obsim replay` runs. Running the parsed text, not the in-memory value,
//! makes "what ran" and "what replays" the same thing by construction (and a schedule the
//! loader would refuse is caught here as a generator bug, naming the key).

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::strategy;
use crate::check::Verdict;
use crate::faults::FaultSpec;
use crate::parts::Bugs;
use crate::scenario::chaos::ChaosConfig;
use crate::scenario::{Expect, Scenario};
use crate::world::WorldError;

/// Why a case could not be made.
#[derive(Debug)]
pub enum CaseError {
    /// The base scenario has no `[chaos]` table: it does not take part in sweeps (a sweep
    /// gives such a file a derived one first, `crate::chaos::files`).
    NotChaos { path: PathBuf },
    /// The base scenario opts out of sweeps (`[chaos] skip = "reason"`).
    OptedOut { path: PathBuf, reason: String },
    /// The case's text did not load back: a bug in the generator or the shrinker.
    Invalid { path: PathBuf, seed: u64, message: String },
}

impl fmt::Display for CaseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CaseError::NotChaos { path } => {
                write!(f, "{}: no [chaos] table, so it takes no part in sweeps", path.display())
            }
            CaseError::OptedOut { path, reason } => {
                write!(f, "{}: opts out of sweeps ([chaos] skip): {reason}", path.display())
            }
            CaseError::Invalid { path, seed, message } => write!(
                f,
                "{} seed {seed}: the chaos case does not load back as a scenario (a generator bug): {message}",
                path.display()
            ),
        }
    }
}

impl std::error::Error for CaseError {}

/// One chaos case, ready to run.
#[derive(Clone, Debug)]
pub struct Case {
    /// The file the base scenario came from.
    pub base_path: PathBuf,
    /// The seed: it drew the schedule and seeds the world.
    pub seed: u64,
    /// The scenario as it runs (parsed back from `text`).
    pub scenario: Arc<Scenario>,
    /// The scenario file: self-contained, replayable with `obsim replay`.
    pub text: String,
}

impl Case {
    /// The case `seed` draws for `base` (which must have a `[chaos]` table), with `bugs`
    /// planted on top of the base's own.
    ///
    /// The base's own `[[fault]]` schedule is kept and the drawn faults are added to it: the
    /// file's stated truth (the causes its `[expect]` accepts for its faults) is what the
    /// sweep's `allow_loss` holds, so keeping the faults keeps that truth valid and sweeps
    /// their composition with random ones; replacing them would sweep a different scenario.
    pub fn draw(base: &Scenario, base_path: &Path, seed: u64, bugs: Bugs) -> Result<Case, CaseError> {
        let chaos = base.chaos.clone().ok_or_else(|| CaseError::NotChaos { path: base_path.to_path_buf() })?;
        if let Some(reason) = &chaos.skip {
            return Err(CaseError::OptedOut { path: base_path.to_path_buf(), reason: reason.clone() });
        }
        let mut faults = base.faults.clone();
        faults.extend(strategy::draw(base, &chaos, seed));
        faults.sort_by_key(|fault| (fault.at(), fault.end()));
        let scenario = instance(base, &chaos, faults, bugs);
        Case::of(scenario, base_path, seed)
    }

    /// The case of an already made scenario (the shrinker's candidates): written out and
    /// parsed back.
    pub fn of(mut scenario: Scenario, base_path: &Path, seed: u64) -> Result<Case, CaseError> {
        scenario.seed = seed;
        let invalid = |message: String| CaseError::Invalid { path: base_path.to_path_buf(), seed, message };
        let body = toml::to_string(&scenario).map_err(|error| invalid(format!("cannot write TOML: {error}")))?;
        let text = format!(
            "# Chaos case of {} at seed {seed}: the scenario with a drawn fault schedule.\n\
             # Replay: cargo run --release -- run <this file>\n{body}",
            base_path.display()
        );
        let parsed = Scenario::parse(base_path, &text).map_err(|error| invalid(error.to_string()))?;
        Ok(Case { base_path: base_path.to_path_buf(), seed, scenario: Arc::new(parsed), text })
    }

    /// Runs the case and judges it.
    pub fn run(&self) -> Result<Verdict, WorldError> {
        Verdict::run(Arc::clone(&self.scenario), self.seed)
    }

    /// The faults of the case.
    pub fn faults(&self) -> &[FaultSpec] {
        &self.scenario.faults
    }
}

/// `base` with `faults` as its schedule, the chaos drain (`[chaos] drain`, else derived from
/// `faults`: `crate::chaos::drain`), the chaos expectations, and `bugs` planted; no
/// `[chaos]` table (a case is a plain scenario, its drain written out).
///
/// Budgets (latency, throughput, recovery, occupancy) are dropped: under random faults
/// they are measured and reported, not judged. What is judged is what no fault a correct
/// pipeline must survive may break: delivery (loss only with a cause of `allow_loss`,
/// never silent), liveness after the drain, duplicates, jobs, correlation and metrics as
/// the base asks.
pub(crate) fn instance(base: &Scenario, chaos: &ChaosConfig, faults: Vec<FaultSpec>, bugs: Bugs) -> Scenario {
    let mut scenario = base.clone();
    scenario.description = format!("chaos case of {}: {} drawn faults", base.name, faults.len());
    scenario.drain = super::drain::drain(base, chaos, &faults);
    scenario.faults = faults;
    scenario.chaos = None;
    scenario.bugs = merge_bugs(base.bugs, bugs);
    scenario.expect = Expect {
        lost: None,
        allow_loss: chaos.allow_loss.clone(),
        max_duplicate_ratio: chaos.max_duplicate_ratio,
        correlation: base.expect.correlation,
        max_jobs_unfinished: chaos.max_jobs_unfinished,
        max_jobs_duplicated: base.expect.max_jobs_duplicated,
        metrics: base.expect.metrics,
        ..Expect::default()
    };
    scenario
}

/// Both sets of planted bugs: a bug planted by the file and by `--bug` is planted once.
///
/// Why a set: a name written twice is a TOML "duplicate key", and `--bug X` on a file whose
/// own `[bugs]` already plants `X` is a fair request, not an error.
fn merge_bugs(base: Bugs, extra: Bugs) -> Bugs {
    let names: std::collections::BTreeSet<&str> = base.names().chain(extra.names()).collect();
    let text: String = names.iter().map(|name| format!("{name} = true\n")).collect();
    toml::from_str(&text).expect("bug names come from Bugs::names, each once")
}

/// Planted bugs by name, as `--bug NAME` gives them; an unknown name is an error naming it.
pub fn bugs_named(names: &[String]) -> Result<Bugs, String> {
    let text: String = names.iter().map(|name| format!("{name} = true\n")).collect();
    toml::from_str(&text).map_err(|error| format!("--bug: {}", error.message()))
}
