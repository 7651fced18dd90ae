//! The job flow's liveness: every job the API accepted was completed by a worker, and none
//! ran twice, judged from the job book (`crate::parts::app::book`), the harness's ground
//! truth of each job's fate.
//!
//! Why the book and not Dash0's store: telemetry lost with an accepted cause (a Dash0 400
//! window, a crash of an agent without persistence) is the delivery check's business. Judged
//! from the spans and lines Dash0 kept, jobs whose telemetry was lost look never submitted
//! or never completed, and the check blames the job flow for a loss already judged. So a job
//! counts as submitted when the API's submission returned OK, and as completed when a
//! worker's completion transaction committed in Redis (or the API saw its completion
//! event). What Dash0 holds about the jobs is still counted ([`JobCompletion::submitted_unseen`],
//! [`JobCompletion::completed_unseen`]) so the verdict can say how much of the job flow an
//! engineer could not see.
//!
//! A submission the API gave up on after its retries (Redis refused or was unreachable) is
//! not submitted: the client was told, and normally no worker runs it. But a write the API
//! gave up on can still land (a stalled link delivers it late): such a *ghost* ran although
//! the client was told it failed; the verdict names it. A job whose completion committed
//! twice ran twice (*duplicated*): Redis lost the first completion (a crash before fsync) or
//! the job was queued twice and two workers ran it. The check fails on it unless the
//! scenario allows it (`[expect] max_jobs_duplicated`).

use std::collections::{BTreeMap, BTreeSet};

use crate::parts::app::{JobBook, JobFate};
use crate::record::{JobId, LogRecord, Span, SpanStatus};
use std::fmt::Write as _;

use super::measured::Measured;
use super::name::CheckName;
use super::verdict::Check;
use crate::scenario::Expect;

/// Examples kept for a failure message.
const EXAMPLES_MAX: usize = 5;

/// What happened to the run's jobs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JobCompletion {
    /// Jobs the API accepted (queued in Redis).
    pub submitted: u64,
    /// Accepted jobs a worker completed.
    pub completed: u64,
    /// Submissions the API gave up on; not part of `submitted`.
    pub(crate) submit_failed: u64,
    /// Jobs a worker completed, whether or not the API accepted them.
    pub completed_all: u64,
    /// Completions the workers counted, a job run twice counted twice: what the workers'
    /// `jobs_completed_total` (and the duration histogram's count) must total.
    pub runs: u64,
    /// Jobs whose submission the API gave up on that completed anyway (a late write).
    pub(crate) ghosts: u64,
    /// Jobs that ran more than once.
    pub duplicated: u64,
    /// Accepted jobs of which Dash0 holds neither a `job.submitted` span nor a "Job created"
    /// line (their telemetry was lost).
    pub submitted_unseen: u64,
    /// Completed jobs of which Dash0 holds no completion span or line.
    pub(crate) completed_unseen: u64,
    /// Reports the job book had no room for: the counts above are partial.
    pub(crate) untracked: u64,
    /// A few jobs accepted but never completed.
    pub(crate) unfinished_examples: Vec<String>,
    /// A few jobs that ran more than once, with their run counts (`job-… ×2`).
    pub duplicated_examples: Vec<String>,
}

/// What Dash0 holds about the jobs: those with a submission, and those with a completion.
fn seen_in_dash0(spans: &[Span], logs: &[LogRecord]) -> (BTreeSet<JobId>, BTreeSet<JobId>) {
    let mut submitted = BTreeSet::new();
    let mut completed = BTreeSet::new();
    for span in spans {
        match (span.name.as_str(), &span.status) {
            ("job.submitted", SpanStatus::Error { .. }) => {}
            ("job.submitted", _) => {
                submitted.insert(span.job_id);
            }
            ("job.completed", _) => {
                completed.insert(span.job_id);
            }
            _ => {}
        }
    }
    for log in logs {
        if log.body.starts_with("Job created") {
            submitted.insert(log.job_id);
        } else if log.body.starts_with("Job completed") {
            completed.insert(log.job_id);
        }
    }
    (submitted, completed)
}

impl JobCompletion {
    /// Judges the jobs in `book`; `spans` and `logs` (what Dash0 stored) only say how much
    /// of it an engineer could see.
    pub fn of(book: &JobBook, spans: &[Span], logs: &[LogRecord]) -> JobCompletion {
        let (seen_submitted, seen_completed) = seen_in_dash0(spans, logs);
        book.with_jobs(|jobs, untracked| JobCompletion::judge(jobs, untracked, &seen_submitted, &seen_completed))
    }

    fn judge(
        jobs: &BTreeMap<JobId, JobFate>,
        untracked: u64,
        seen_submitted: &BTreeSet<JobId>,
        seen_completed: &BTreeSet<JobId>,
    ) -> JobCompletion {
        let mut completion = JobCompletion { untracked, ..JobCompletion::default() };
        for (job, fate) in jobs {
            // A submission reported both ways cannot happen in the app (one outcome per
            // job); if it did, the refusal wins: the client was told it failed.
            let accepted = fate.accepted && !fate.refused;
            completion.submitted += u64::from(accepted);
            completion.submit_failed += u64::from(fate.refused);
            completion.runs += u64::from(fate.runs);
            if accepted && !seen_submitted.contains(job) {
                completion.submitted_unseen += 1;
            }
            if fate.runs > 1 {
                completion.duplicated += 1;
                if completion.duplicated_examples.len() < EXAMPLES_MAX {
                    completion.duplicated_examples.push(format!("{job} ×{}", fate.runs));
                }
            }
            if fate.completed() {
                completion.completed_all += 1;
                completion.completed += u64::from(accepted);
                completion.ghosts += u64::from(fate.refused);
                completion.completed_unseen += u64::from(!seen_completed.contains(job));
            } else if accepted && completion.unfinished_examples.len() < EXAMPLES_MAX {
                completion.unfinished_examples.push(job.to_string());
            }
        }
        debug_assert!(completion.completed <= completion.submitted);
        debug_assert!(completion.completed + completion.ghosts <= completion.completed_all);
        debug_assert!(completion.duplicated <= completion.completed_all);
        completion
    }

    /// Accepted jobs never completed.
    pub fn unfinished(&self) -> u64 {
        self.submitted - self.completed
    }
}

/// The `jobs` check (always on): the job flow's liveness, judged from the job book. After
/// the drain every job the API accepted has completed, and no job ran more often than once
/// (beyond what `[expect]` allows). Telemetry lost about the jobs is the delivery check's;
/// the detail says how much of it Dash0 lacks.
pub fn check(run: &Measured, expect: &Expect) -> Option<Check> {
    let jobs = &run.jobs;
    let passed = jobs.unfinished() <= expect.max_jobs_unfinished
        && jobs.duplicated <= expect.max_jobs_duplicated
        && jobs.untracked == 0;
    let mut detail = format!(
        "{} jobs accepted, {} completed ({} runs); {} submissions refused by the API{}",
        jobs.submitted,
        jobs.completed,
        jobs.runs,
        jobs.submit_failed,
        if jobs.ghosts > 0 {
            format!(", of which {} ran anyway: a write the API gave up on landed late", jobs.ghosts)
        } else {
            String::new()
        }
    );
    if jobs.submitted_unseen > 0 || jobs.completed_unseen > 0 {
        let _ = write!(
            detail,
            "; Dash0 lacks the submission of {} and the completion of {} of them (telemetry lost, see delivery)",
            jobs.submitted_unseen, jobs.completed_unseen
        );
    }
    for problem in problems(jobs, expect) {
        let _ = write!(detail, "\n    {problem}");
    }
    Some(Check { name: CheckName::Jobs, passed, detail })
}

/// What went wrong with the job flow, one sentence each (whether allowed or not: the
/// detail shows every unfinished or duplicated job).
fn problems(jobs: &JobCompletion, expect: &Expect) -> Vec<String> {
    let mut problems = Vec::new();
    if jobs.unfinished() > 0 {
        problems.push(format!(
            "{} of {} accepted jobs never completed (allowed {}; e.g. {}); is the drain long enough for the machines' capacity, or did the job queue lose them?",
            jobs.unfinished(),
            jobs.submitted,
            expect.max_jobs_unfinished,
            jobs.unfinished_examples.join(", ")
        ));
    }
    if jobs.duplicated > 0 {
        problems.push(format!(
            "{} jobs ran more than once (allowed {}; e.g. {}): a completion Redis lost, or a job queued twice and run by two workers",
            jobs.duplicated,
            expect.max_jobs_duplicated,
            jobs.duplicated_examples.join(", ")
        ));
    }
    if jobs.untracked > 0 {
        problems.push(format!(
            "{} job reports did not fit the job book ({} jobs); the counts are partial",
            jobs.untracked,
            crate::parts::app::book::JOBS_TRACKED_MAX
        ));
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{Attributes, RecordId, Severity, SourceId, SpanId, SpanKind, TraceId};
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn span(job_id: JobId, name: &str, status: SpanStatus, seq: u64) -> Span {
        let mut rng = ChaCha8Rng::seed_from_u64(seq);
        Span {
            trace_id: TraceId::random(&mut rng),
            span_id: SpanId::random(&mut rng),
            parent_span_id: None,
            name: name.into(),
            kind: SpanKind::Server,
            start_time_unix_nano: 1,
            end_time_unix_nano: 2,
            status,
            job_id,
            machine_id: None,
            worker_id: None,
            id: RecordId::new(SourceId(0), seq),
            attributes: Attributes::new(),
        }
    }

    fn log(job_id: JobId, body: &str, seq: u64) -> LogRecord {
        LogRecord {
            time_unix_nano: 1,
            observed_time_unix_nano: 1,
            severity: Severity::Info,
            body: body.into(),
            trace_id: TraceId::random(&mut ChaCha8Rng::seed_from_u64(seq)),
            span_id: SpanId::random(&mut ChaCha8Rng::seed_from_u64(seq)),
            job_id,
            machine_id: None,
            worker_id: None,
            id: RecordId::new(SourceId(1), seq),
            attributes: Attributes::new(),
        }
    }

    fn jobs(count: u64) -> Vec<JobId> {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        (0..count).map(|_| JobId::random(&mut rng)).collect()
    }

    fn book(fates: &[(JobId, JobFate)]) -> JobBook {
        let book = JobBook::new();
        for (job, fate) in fates {
            if fate.accepted {
                book.accepted(*job);
            }
            if fate.refused {
                book.refused(*job);
            }
            for _ in 0..fate.runs {
                book.ran(*job);
            }
            if fate.completion_seen {
                book.completion_seen(*job);
            }
        }
        book
    }

    const ACCEPTED: JobFate = JobFate { accepted: true, refused: false, runs: 0, completion_seen: false };
    const RAN: JobFate = JobFate { runs: 1, completion_seen: true, ..ACCEPTED };

    #[test]
    fn a_job_whose_telemetry_was_lost_still_counts_as_submitted_and_completed() {
        // The old check judged from Dash0's store: with both jobs' spans and lines lost it
        // said 0 submitted; with only the completion lost, 1 unfinished.
        let [silent, half_seen] = jobs(2).try_into().unwrap();
        let spans = vec![span(half_seen, "job.submitted", SpanStatus::Ok, 0)];
        let completion = JobCompletion::of(&book(&[(silent, RAN), (half_seen, RAN)]), &spans, &[]);
        assert_eq!((completion.submitted, completion.completed, completion.unfinished()), (2, 2, 0));
        assert_eq!((completion.submitted_unseen, completion.completed_unseen), (1, 2));
        assert_eq!((completion.runs, completion.completed_all), (2, 2));
    }

    #[test]
    fn a_refused_submission_is_not_an_unfinished_job() {
        let [done, refused, stuck] = jobs(3).try_into().unwrap();
        let refused_fate = JobFate { accepted: false, refused: true, runs: 0, completion_seen: false };
        let completion = JobCompletion::of(&book(&[(done, RAN), (refused, refused_fate), (stuck, ACCEPTED)]), &[], &[]);
        assert_eq!(completion.submitted, 2, "the refused job is not submitted");
        assert_eq!((completion.completed, completion.submit_failed, completion.unfinished()), (1, 1, 1));
        assert_eq!(completion.unfinished_examples, vec![stuck.to_string()], "only the stuck job is named");
        assert_eq!((completion.completed_all, completion.ghosts, completion.duplicated), (1, 0, 0));
    }

    #[test]
    fn a_refused_submission_that_completed_anyway_is_a_ghost_among_the_completions() {
        let [late] = jobs(1).try_into().unwrap();
        let ghost = JobFate { accepted: false, refused: true, runs: 1, completion_seen: true };
        let completion = JobCompletion::of(&book(&[(late, ghost)]), &[], &[]);
        assert_eq!((completion.submitted, completion.completed, completion.unfinished()), (0, 0, 0));
        assert_eq!(
            (completion.completed_all, completion.ghosts, completion.submit_failed, completion.runs),
            (1, 1, 1, 1)
        );
    }

    #[test]
    fn a_job_run_twice_is_a_duplicate_and_counts_twice_among_the_runs() {
        let [twice, once] = jobs(2).try_into().unwrap();
        let completion = JobCompletion::of(&book(&[(twice, JobFate { runs: 2, ..RAN }), (once, RAN)]), &[], &[]);
        assert_eq!((completion.completed, completion.runs, completion.duplicated), (2, 3, 1));
        assert_eq!(completion.duplicated_examples, vec![format!("{twice} ×2")]);
    }

    #[test]
    fn a_completion_only_the_api_saw_completes_the_job_without_a_counted_run() {
        // The worker's EXEC reply was lost and its host crashed before it could confirm.
        let [unconfirmed] = jobs(1).try_into().unwrap();
        let fate = JobFate { runs: 0, completion_seen: true, ..ACCEPTED };
        let completion = JobCompletion::of(&book(&[(unconfirmed, fate)]), &[], &[]);
        assert_eq!((completion.completed, completion.runs, completion.unfinished()), (1, 0, 0));
    }

    #[test]
    fn reports_the_book_could_not_keep_are_counted() {
        let [kept, lost] = jobs(2).try_into().unwrap();
        let book = JobBook::with_jobs_limit(1);
        book.accepted(kept);
        book.accepted(lost);
        assert_eq!(JobCompletion::of(&book, &[], &[]).untracked, 1);
    }

    #[test]
    fn dash0_sees_a_submission_by_either_signal_but_not_a_failed_one() {
        let [by_logs, by_spans, failed] = jobs(3).try_into().unwrap();
        let error = SpanStatus::Error { message: "redis unavailable".into() };
        let spans = vec![span(by_spans, "job.submitted", SpanStatus::Ok, 0), span(failed, "job.submitted", error, 1)];
        let logs = vec![log(by_logs, "Job created: comfyui job", 2), log(by_logs, "Job completed in 3.2s", 3)];
        let (submitted, completed) = seen_in_dash0(&spans, &logs);
        assert_eq!(submitted, BTreeSet::from([by_logs, by_spans]));
        assert_eq!(completed, BTreeSet::from([by_logs]));
    }
}
