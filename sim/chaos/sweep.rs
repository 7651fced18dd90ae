//! A sweep: seeds × scenario files, each run a chaos case, failures shrunk; split across
//! threads (`jobs`) and machines (`shard`) without changing any result.
//!
//! Why the results cannot depend on `jobs` or `shard`: every run is a pure function of
//! (scenario file, seed, bugs); threads only change *when* a run happens, and results are
//! put back in (seed, file) order before anyone reads them. A shard takes every seed whose
//! index is its own modulo the shard count, so the shards of a sweep partition it exactly.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::case::Case;
use super::progress::{Phase, SweepObserver};
use super::shrink::{Shrunk, shrink_observed};
use crate::check::Verdict;
use crate::parts::Bugs;
use crate::report::index::Shard;
use crate::scenario::Scenario;

/// Most seeds one sweep may run per file: a bound on the loop, far beyond any night.
pub(crate) const SEEDS_LIMIT: u64 = 10_000_000;

/// Most threads one sweep may use.
pub(crate) const JOBS_LIMIT: usize = 256;

/// How a sweep runs.
#[derive(Clone, Debug)]
pub struct SweepOptions {
    /// Seeds per file (`--seeds N`); with a time budget, the most seeds the budget may reach.
    pub seeds: u64,
    /// The first seed; the sweep runs `first_seed .. first_seed + seeds`.
    pub first_seed: u64,
    /// Threads running cases at once.
    pub jobs: usize,
    /// This machine's part of the sweep.
    pub shard: Shard,
    /// Bugs planted into every case (`--bug`), on top of each file's own `[bugs]`.
    pub bugs: Bugs,
    /// Most runs spent shrinking one failure (0: no shrinking).
    pub shrink_runs: u32,
}

impl Default for SweepOptions {
    fn default() -> Self {
        SweepOptions { seeds: 50, first_seed: 1, jobs: 1, shard: Shard::WHOLE, bugs: Bugs::default(), shrink_runs: 100 }
    }
}

/// One run of the sweep.
#[derive(Clone, Debug)]
pub struct SweepRun {
    /// Index of the file in the sweep's list.
    pub file_index: usize,
    pub base_path: PathBuf,
    pub seed: u64,
    /// The case that ran, or why none could be made.
    pub case: Result<Case, String>,
    /// Its verdict, or the world's error (a host that stopped the simulation).
    pub verdict: Result<Verdict, String>,
    /// The shrunk failure, when the run failed and shrinking was on.
    pub shrunk: Option<Shrunk>,
}

impl SweepRun {
    /// Whether the run held every check.
    pub fn passed(&self) -> bool {
        matches!(&self.verdict, Ok(verdict) if verdict.passed())
    }

    /// The names of the checks that failed (`world` for a world error, `case` for a case
    /// that could not be made).
    pub fn failed_checks(&self) -> Vec<String> {
        match (&self.case, &self.verdict) {
            (Err(_), _) => vec!["case".to_string()],
            (_, Err(_)) => vec!["world".to_string()],
            (_, Ok(verdict)) => verdict.checks().iter().filter(|c| !c.passed).map(|c| c.name.to_string()).collect(),
        }
    }
}

/// Runs the sweep over `files` (each with a `[chaos]` table), calling `on_run` as each run
/// finishes (from any thread, in completion order) and `keep_going` before each new run (a
/// time budget). Returns the runs in (seed, file) order. `sweep_observed` also reports each
/// phase and lets the budget cut shrinking short.
pub fn sweep(
    files: &[(PathBuf, Arc<Scenario>)],
    options: &SweepOptions,
    keep_going: &(dyn Fn() -> bool + Sync),
    on_run: &(dyn Fn(&SweepRun) + Sync),
) -> Vec<SweepRun> {
    sweep_observed(files, options, &Callbacks { keep_going, on_run })
}

/// `sweep`'s two callbacks as an observer (shrinking is not cut short: `keep_going` bounds
/// new runs only, as it always did).
struct Callbacks<'a> {
    keep_going: &'a (dyn Fn() -> bool + Sync),
    on_run: &'a (dyn Fn(&SweepRun) + Sync),
}

impl SweepObserver for Callbacks<'_> {
    fn keep_going(&self) -> bool {
        (self.keep_going)()
    }

    fn finished(&self, run: &SweepRun) {
        (self.on_run)(run);
    }
}

/// Runs the sweep over `files`, telling `observer` each phase (run, shrinking step) and each
/// finished run, and asking it before each new run and each shrinking step (a time budget).
/// Returns the runs in (seed, file) order.
pub fn sweep_observed(
    files: &[(PathBuf, Arc<Scenario>)],
    options: &SweepOptions,
    observer: &dyn SweepObserver,
) -> Vec<SweepRun> {
    assert!(options.seeds <= SEEDS_LIMIT, "--seeds {} exceeds SEEDS_LIMIT", options.seeds);
    let jobs = options.jobs.clamp(1, JOBS_LIMIT);
    let items_count = options.seeds * files.len() as u64;
    let next = AtomicU64::new(0);
    let done: Mutex<Vec<(u64, SweepRun)>> = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| {
                // Bounded by items_count: each pass takes one item index for good.
                loop {
                    let item = next.fetch_add(1, Ordering::Relaxed);
                    if item >= items_count || !observer.keep_going() {
                        return;
                    }
                    let seed_index = item / files.len() as u64;
                    if !options.shard.owns(seed_index) {
                        continue;
                    }
                    let file_index = (item % files.len() as u64) as usize;
                    let (path, base) = &files[file_index];
                    let seed = options.first_seed + seed_index;
                    let run = run_observed(file_index, path, base, seed, options, observer);
                    observer.finished(&run);
                    done.lock().unwrap_or_else(|p| p.into_inner()).push((item, run));
                }
            });
        }
    });
    let mut runs = done.into_inner().unwrap_or_else(|p| p.into_inner());
    runs.sort_by_key(|(item, _)| *item);
    runs.into_iter().map(|(_, run)| run).collect()
}

/// One (file, seed): draw the case, run it, shrink it if it failed, telling `observer` its
/// phases and letting it cut shrinking short.
fn run_observed(
    file_index: usize,
    path: &std::path::Path,
    base: &Scenario,
    seed: u64,
    options: &SweepOptions,
    observer: &dyn SweepObserver,
) -> SweepRun {
    observer.phase(Phase::Run { scenario: &base.name, seed });
    let case = match Case::draw(base, path, seed, options.bugs) {
        Ok(case) => case,
        Err(error) => {
            let message = error.to_string();
            return SweepRun {
                file_index,
                base_path: path.to_path_buf(),
                seed,
                case: Err(message.clone()),
                verdict: Err(message),
                shrunk: None,
            };
        }
    };
    let verdict = case.run().map_err(|error| error.to_string());
    let shrunk = match &verdict {
        Ok(verdict) if !verdict.passed() && options.shrink_runs > 0 => {
            Some(shrink_observed(case.clone(), verdict.clone(), options.shrink_runs, observer))
        }
        _ => None,
    };
    SweepRun { file_index, base_path: path.to_path_buf(), seed, case: Ok(case), verdict, shrunk }
}
