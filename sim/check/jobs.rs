//! The job flow's liveness: every job the API accepted was completed by a worker, judged
//! from what Dash0 stored.
//!
//! Why from Dash0's store and not from the app's own counters: the check must see what an
//! engineer would see in Dash0. Either signal tells: with the spans lost, the API's
//! "Job created" / "Job completed" lines still do, and the other way round.
//!
//! A job counts as submitted only when the API accepted it: a `job.submitted` span with an
//! `Error` status (or a "Job submission failed" line) is a submission the API gave up on
//! after its retries (Redis refused or was unreachable); the client was told, no job hash
//! normally exists, and no worker runs it. Counting it as submitted would fail the check for
//! a job that never existed. But a write the API gave up on can still land (a stalled link
//! delivers it late): such a *ghost* job runs although the client was told it failed. It is
//! not an accepted job, yet it really completed, so it counts among the completions the
//! metrics must agree with, and the verdict names it.

use std::collections::BTreeSet;

use crate::record::{JobId, LogRecord, Span, SpanStatus};

/// Examples kept for a failure message.
const UNFINISHED_EXAMPLES_MAX: usize = 5;

/// Jobs seen accepted and completed, from the spans and logs Dash0 stored.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JobCompletion {
    /// Jobs the API accepted (queued in Redis).
    pub submitted: u64,
    /// Accepted jobs whose completion Dash0 holds.
    pub completed: u64,
    /// Submissions the API gave up on; not part of `submitted`.
    pub submit_failed: u64,
    /// Jobs with a completion in Dash0, whether or not the API accepted them: what the
    /// workers' `jobs_completed_total` must total.
    pub completed_all: u64,
    /// Jobs whose submission the API gave up on that completed anyway (a late write).
    pub ghosts: u64,
    /// A few jobs accepted but never completed.
    pub unfinished_examples: Vec<String>,
}

impl JobCompletion {
    /// Counts `job.submitted` and `job.completed` spans, and "Job created" and "Job
    /// completed" log lines, per job (duplicates counted once). A job whose submission
    /// failed is not submitted, whatever else arrived for it.
    pub fn of(spans: &[Span], logs: &[LogRecord]) -> JobCompletion {
        let mut submitted = BTreeSet::<JobId>::new();
        let mut failed = BTreeSet::<JobId>::new();
        let mut completed = BTreeSet::<JobId>::new();
        for span in spans {
            match (span.name.as_str(), &span.status) {
                ("job.submitted", SpanStatus::Error { .. }) => {
                    failed.insert(span.job_id);
                }
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
            } else if log.body.starts_with("Job submission failed") {
                failed.insert(log.job_id);
            } else if log.body.starts_with("Job completed") {
                completed.insert(log.job_id);
            }
        }
        // A submission reported both ways cannot happen in the app (one outcome per job);
        // if it did, the failure wins: no worker was handed the job.
        let accepted: BTreeSet<JobId> = submitted.difference(&failed).copied().collect();
        let completion = JobCompletion {
            submitted: accepted.len() as u64,
            completed: accepted.intersection(&completed).count() as u64,
            submit_failed: failed.len() as u64,
            completed_all: completed.len() as u64,
            ghosts: failed.intersection(&completed).count() as u64,
            unfinished_examples: accepted
                .difference(&completed)
                .take(UNFINISHED_EXAMPLES_MAX)
                .map(ToString::to_string)
                .collect(),
        };
        debug_assert!(completion.completed <= completion.submitted);
        debug_assert!(completion.completed + completion.ghosts <= completion.completed_all);
        completion
    }

    /// Accepted jobs never completed.
    pub fn unfinished(&self) -> u64 {
        self.submitted - self.completed
    }
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

    #[test]
    fn a_refused_submission_is_not_an_unfinished_job() {
        let [done, refused, stuck] = jobs(3).try_into().unwrap();
        let error = SpanStatus::Error { message: "redis unavailable".into() };
        let spans = vec![
            span(done, "job.submitted", SpanStatus::Ok, 0),
            span(done, "job.completed", SpanStatus::Ok, 1),
            span(refused, "job.submitted", error, 2),
            span(stuck, "job.submitted", SpanStatus::Ok, 3),
        ];
        let logs = vec![log(refused, "Job submission failed: OOM", 4)];
        let completion = JobCompletion::of(&spans, &logs);
        assert_eq!(completion.submitted, 2, "the refused job is not submitted");
        assert_eq!(completion.completed, 1);
        assert_eq!(completion.submit_failed, 1);
        assert_eq!(completion.unfinished(), 1);
        assert_eq!(completion.unfinished_examples, vec![stuck.to_string()], "only the stuck job is named");
        assert_eq!((completion.completed_all, completion.ghosts), (1, 0));
    }

    #[test]
    fn a_refused_submission_that_completed_anyway_is_a_ghost_among_the_completions() {
        let [late] = jobs(1).try_into().unwrap();
        let error = SpanStatus::Error { message: "redis unavailable".into() };
        let spans = vec![span(late, "job.submitted", error, 0), span(late, "job.completed", SpanStatus::Ok, 1)];
        let completion = JobCompletion::of(&spans, &[]);
        assert_eq!((completion.submitted, completion.completed, completion.unfinished()), (0, 0, 0));
        assert_eq!((completion.completed_all, completion.ghosts, completion.submit_failed), (1, 1, 1));
    }

    #[test]
    fn either_signal_tells_and_duplicates_count_once() {
        let [by_logs, by_spans] = jobs(2).try_into().unwrap();
        let spans = vec![
            span(by_spans, "job.submitted", SpanStatus::Ok, 0),
            span(by_spans, "job.submitted", SpanStatus::Ok, 0),
            span(by_spans, "job.completed", SpanStatus::Ok, 1),
        ];
        let logs = vec![log(by_logs, "Job created: comfyui job", 2), log(by_logs, "Job completed in 3.2s", 3)];
        let completion = JobCompletion::of(&spans, &logs);
        assert_eq!((completion.submitted, completion.completed, completion.submit_failed), (2, 2, 0));
    }

    #[test]
    fn a_completion_without_an_accepted_submission_is_not_counted() {
        let [orphan] = jobs(1).try_into().unwrap();
        let spans = vec![span(orphan, "job.completed", SpanStatus::Ok, 0)];
        let completion = JobCompletion::of(&spans, &[]);
        assert_eq!((completion.submitted, completion.completed, completion.completed_all), (0, 0, 1));
    }
}
