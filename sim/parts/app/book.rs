//! The job book: the job flow's ground truth, kept by the harness outside the hosts, as the
//! ledger keeps every record's custody.
//!
//! Why: the jobs check must judge what really happened to each job, not what telemetry about
//! it reached Dash0. A 10 s window in which Dash0 refused batches (an accepted loss) takes
//! some jobs' "Job created" lines and spans with it; judged from Dash0's store, those jobs
//! look never submitted or never completed, and the check blames the job flow for what the
//! delivery check already judged. So the app reports each job's fate here, at the moment it
//! is decided:
//!
//! - the API: [`JobBook::accepted`] when the job's HSET + RPUSH returned OK (the client was
//!   told "accepted"), [`JobBook::refused`] when it gave up after its retries;
//! - a worker: [`JobBook::ran`] when its completion transaction committed and it counted the
//!   job in `jobs_completed_total` (including a transaction whose reply was lost and that
//!   it later confirmed ran);
//! - the API's completion consumer: [`JobBook::completion_seen`] when it handled the job's
//!   completion event (a completion whose worker died before it could confirm it).
//!
//! The book lives as long as the run: a host crash loses nothing of it. It is bounded: at
//! most [`JOBS_TRACKED_MAX`] jobs; reports about jobs beyond that are counted as untracked,
//! and the jobs check fails naming the count rather than judging a partial book.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use crate::record::JobId;

/// Most jobs the book tracks: far above what a scenario's load can submit (500 machines
/// cannot complete more than this within the 24 h a run may last), small enough to stay a
/// few tens of MB.
pub(crate) const JOBS_TRACKED_MAX: usize = 1_000_000;

/// What happened to one job.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct JobFate {
    /// The API's submission returned OK.
    pub accepted: bool,
    /// The API gave up on the submission (the client was told it failed).
    pub refused: bool,
    /// Completion transactions that committed and that the worker counted.
    pub runs: u32,
    /// The API handled the job's completion event.
    pub(crate) completion_seen: bool,
}

impl JobFate {
    /// Whether a worker completed the job (its completion committed in Redis).
    pub fn completed(&self) -> bool {
        self.runs > 0 || self.completion_seen
    }
}

struct BookInner {
    jobs: BTreeMap<JobId, JobFate>,
    /// Most jobs tracked ([`JOBS_TRACKED_MAX`] unless a test says otherwise).
    jobs_limit: usize,
    /// Reports about jobs the book had no room for.
    untracked_count: u64,
}

/// The run's job book. Cloning shares it.
#[derive(Clone)]
pub struct JobBook {
    inner: Arc<Mutex<BookInner>>,
}

/// An empty book of [`JOBS_TRACKED_MAX`] jobs (what a config deserialized without one gets).
impl Default for JobBook {
    fn default() -> Self {
        JobBook::with_jobs_limit(JOBS_TRACKED_MAX)
    }
}

/// Shows only the size: the book is a runtime handle inside `AppConfig`.
impl fmt::Debug for JobBook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = self.lock();
        write!(f, "JobBook({} jobs, {} untracked)", inner.jobs.len(), inner.untracked_count)
    }
}

impl JobBook {
    /// An empty book.
    pub fn new() -> Self {
        JobBook::default()
    }

    /// An empty book that tracks at most `jobs_limit` jobs.
    pub(crate) fn with_jobs_limit(jobs_limit: usize) -> Self {
        assert!(jobs_limit > 0, "a job book needs room for a job");
        let inner = BookInner { jobs: BTreeMap::new(), jobs_limit, untracked_count: 0 };
        JobBook { inner: Arc::new(Mutex::new(inner)) }
    }

    /// The API's submission of `job` returned OK.
    pub fn accepted(&self, job: JobId) {
        self.update(job, |fate| fate.accepted = true);
    }

    /// The API gave up on submitting `job`.
    pub fn refused(&self, job: JobId) {
        self.update(job, |fate| fate.refused = true);
    }

    /// A worker's completion of `job` committed and was counted.
    pub fn ran(&self, job: JobId) {
        self.update(job, |fate| fate.runs = fate.runs.saturating_add(1));
    }

    /// The API handled `job`'s completion event.
    pub(crate) fn completion_seen(&self, job: JobId) {
        self.update(job, |fate| fate.completion_seen = true);
    }

    /// Reads every job's fate, in job id order, and the count of untracked reports.
    pub(crate) fn with_jobs<R>(&self, read: impl FnOnce(&BTreeMap<JobId, JobFate>, u64) -> R) -> R {
        let inner = self.lock();
        read(&inner.jobs, inner.untracked_count)
    }

    fn update(&self, job: JobId, change: impl FnOnce(&mut JobFate)) {
        let mut inner = self.lock();
        let room = inner.jobs.len() < inner.jobs_limit;
        match inner.jobs.get_mut(&job) {
            Some(fate) => change(fate),
            None if room => change(inner.jobs.entry(job).or_default()),
            None => inner.untracked_count += 1,
        }
        debug_assert!(inner.jobs.len() <= inner.jobs_limit);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BookInner> {
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn a_job_is_completed_by_a_counted_run_or_a_seen_completion_and_runs_add_up() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let [twice, seen, queued] = [(); 3].map(|_| JobId::random(&mut rng));
        let book = JobBook::new();
        for job in [twice, seen, queued] {
            book.accepted(job);
        }
        book.ran(twice);
        book.ran(twice);
        book.completion_seen(seen);
        book.with_jobs(|jobs, untracked| {
            assert_eq!(untracked, 0);
            assert_eq!(jobs[&twice].runs, 2);
            assert!(jobs[&twice].completed() && jobs[&seen].completed() && !jobs[&queued].completed());
        });
    }

    #[test]
    fn reports_beyond_the_limit_are_counted_not_kept() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let [first, second] = [(); 2].map(|_| JobId::random(&mut rng));
        let book = JobBook::with_jobs_limit(1);
        book.accepted(first);
        book.accepted(second);
        book.ran(second);
        book.ran(first);
        book.with_jobs(|jobs, untracked| {
            assert_eq!((jobs.len(), untracked), (1, 2));
            assert_eq!(jobs[&first].runs, 1, "a tracked job is still updated");
        });
    }
}
