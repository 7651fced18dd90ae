//! Correlation: do the logs and spans Dash0 stored tie every job together?
//!
//! Why: the pipeline exists so that an engineer can go from a job to its trace and from any
//! log line to the span it was written in. ARCHITECTURE.md §4 lists the rules: all spans of a job
//! share one 32-hex trace_id; parent links form one tree per job with no orphans; every
//! log's trace_id/span_id resolves to a stored span; the log's ids agree with its span's;
//! worker_id belongs to machine_id. Id formats are guaranteed by the record types (a
//! malformed id never decodes), so they need no rule here.
//!
//! It reads Dash0 as a person would (README "Querying Dash0 and exporting what it stored"):
//! for every job the logs of the job, and the trace by each trace_id the job names, through
//! the same queries the `GET /api/...` routes answer (`parts::dash0::query`), called
//! directly after the run. The store is indexed once for all jobs.

use std::collections::{BTreeMap, BTreeSet};

use crate::parts::dash0::{Dash0Store, Queries, TraceAnswer};
use crate::record::{JobId, LogRecord, Span, SpanId, TraceId};
use std::fmt::Write as _;

use super::measured::Measured;
use super::name::CheckName;
use super::verdict::Check;
use crate::scenario::{CorrelationExpectation, Expect};

/// Examples kept per broken rule.
const EXAMPLES_LIMIT: usize = 5;

/// A correlation rule, as failure messages name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Rule {
    /// A job's spans carry more than one trace_id.
    JobHasOneTrace,
    /// A trace carries spans of more than one job.
    TraceHasOneJob,
    /// A trace has no root span, or more than one.
    TraceHasOneRoot,
    /// A span's parent is not a stored span of its trace.
    SpanParentResolves,
    /// A log's (trace_id, span_id) is not a stored span.
    LogSpanResolves,
    /// A log's job_id, machine_id or worker_id differs from its span's.
    LogAgreesWithSpan,
    /// A worker_id does not belong to the record's machine_id.
    WorkerBelongsToMachine,
}

impl Rule {
    /// The rule in words.
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Rule::JobHasOneTrace => "all spans of a job share one trace_id",
            Rule::TraceHasOneJob => "a trace belongs to one job",
            Rule::TraceHasOneRoot => "each job's trace has exactly one root span",
            Rule::SpanParentResolves => "every span's parent is a stored span of its trace (no orphans)",
            Rule::LogSpanResolves => "every log's trace_id/span_id resolves to a stored span",
            Rule::LogAgreesWithSpan => "a log's job_id/machine_id/worker_id agree with its span's",
            Rule::WorkerBelongsToMachine => "worker_id is {machine_id}-worker-{index}",
        }
    }
}

/// How often one rule broke, with examples.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Broken {
    pub count: u64,
    pub examples: Vec<String>,
}

/// The correlation verdict over what Dash0 stored.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CorrelationReport {
    pub jobs_count: usize,
    pub(crate) traces_count: usize,
    pub spans_count: usize,
    pub logs_count: usize,
    /// Logs the caller exempted (e.g. dev-host logs outside any job).
    pub(crate) logs_exempt_count: usize,
    pub broken: BTreeMap<Rule, Broken>,
}

impl CorrelationReport {
    /// Whether every rule held.
    pub fn is_complete(&self) -> bool {
        self.broken.is_empty()
    }

    fn breaks(&mut self, rule: Rule, example: impl FnOnce() -> String) {
        let broken = self.broken.entry(rule).or_default();
        broken.count += 1;
        if broken.examples.len() < EXAMPLES_LIMIT {
            broken.examples.push(example());
        }
    }
}

/// Measures correlation over what Dash0 stored, through Dash0's own queries
/// (`parts::dash0::query`): for every job, the logs of the job, then each trace the job
/// names (the trace ids of its spans and of its logs) by trace_id. Logs for which `exempt`
/// says true are counted but not checked.
pub(crate) fn measure(store: &Dash0Store, exempt: impl Fn(&LogRecord) -> bool) -> CorrelationReport {
    store.query(|queries| measure_queries(queries, &exempt))
}

/// Where a stored record sits in ingest order: (batch index, index within the batch).
type IngestPlace = (u32, u32);

/// What the per-job queries answered: every distinct span (by trace and span id, the
/// earliest stored copy) and every log, each with its place in ingest order.
#[derive(Default)]
struct Answers<'a> {
    spans: BTreeMap<(TraceId, SpanId), (IngestPlace, &'a Span)>,
    logs: Vec<(IngestPlace, &'a LogRecord)>,
    spans_count: usize,
    logs_count: usize,
}

impl<'a> Answers<'a> {
    /// Asks Dash0 about every job: its logs, and each trace it names, once per trace.
    fn gather(queries: &Queries<'a>) -> Self {
        let mut answers = Answers::default();
        let mut traces_asked: BTreeSet<TraceId> = BTreeSet::new();
        for job in queries.job_ids() {
            let logs = queries.logs_of_job(job, usize::MAX).logs;
            assert!(!logs.truncated, "the checker reads every log of job {job}");
            let named: BTreeSet<TraceId> =
                queries.trace_ids_of_job(job).chain(logs.hits.iter().map(|hit| hit.record.trace_id)).collect();
            for trace_id in named.into_iter().filter(|trace_id| traces_asked.insert(*trace_id)) {
                answers.add_trace(queries.trace(trace_id, usize::MAX));
            }
            answers.logs_count += logs.matched_count;
            answers.logs.extend(logs.hits.iter().map(|hit| (hit.ingest_order(), hit.record)));
        }
        // Judged in ingest order, as Dash0 stored them: the examples a failure names do not
        // depend on the order jobs were asked in.
        answers.logs.sort_unstable_by_key(|(order, _)| *order);
        answers
    }

    /// Keeps a trace's spans (the earliest stored copy of each).
    fn add_trace(&mut self, trace: TraceAnswer<'a>) {
        assert!(!trace.spans.truncated, "the checker reads every span of trace {}", trace.trace_id);
        self.spans_count += trace.spans.matched_count;
        for hit in trace.spans.hits {
            let entry =
                self.spans.entry((hit.record.trace_id, hit.record.span_id)).or_insert((hit.ingest_order(), hit.record));
            if hit.ingest_order() < entry.0 {
                *entry = (hit.ingest_order(), hit.record);
            }
        }
    }
}

/// Judges every rule over the answers of the per-job queries.
fn measure_queries(queries: &Queries<'_>, exempt: &dyn Fn(&LogRecord) -> bool) -> CorrelationReport {
    let answers = Answers::gather(queries);
    let mut report =
        CorrelationReport { spans_count: answers.spans_count, logs_count: answers.logs_count, ..Default::default() };
    let by_id: BTreeMap<(TraceId, SpanId), &Span> =
        answers.spans.iter().map(|(key, (_, span))| (*key, *span)).collect();
    let shape = check_spans(&mut report, &by_id);
    check_trace_shape(&mut report, &shape);
    report.jobs_count = shape.traces_of_job.len();
    report.traces_count = shape.jobs_of_trace.len();
    for (_, log) in &answers.logs {
        if exempt(log) {
            report.logs_exempt_count += 1;
            continue;
        }
        check_log(&mut report, &by_id, log);
    }
    report
}

/// Which jobs and traces the stored spans tie together, and how many roots each trace has:
/// the per-trace rules are judged on this once every span was seen.
#[derive(Default)]
struct TraceShape {
    /// Each job's distinct trace ids (one expected).
    traces_of_job: BTreeMap<JobId, BTreeSet<TraceId>>,
    /// Each trace's distinct job ids (one expected).
    jobs_of_trace: BTreeMap<TraceId, BTreeSet<JobId>>,
    /// Each trace's count of spans without a parent (one expected).
    roots_of_trace: BTreeMap<TraceId, u32>,
}

/// One pass over the distinct spans: records the trace shape and judges the per-span rules
/// (parent resolves, worker belongs to machine).
fn check_spans(report: &mut CorrelationReport, by_id: &BTreeMap<(TraceId, SpanId), &Span>) -> TraceShape {
    let mut shape = TraceShape::default();
    for span in by_id.values() {
        shape.traces_of_job.entry(span.job_id).or_default().insert(span.trace_id);
        shape.jobs_of_trace.entry(span.trace_id).or_default().insert(span.job_id);
        let roots = shape.roots_of_trace.entry(span.trace_id).or_default();
        match span.parent_span_id {
            None => *roots += 1,
            Some(parent) if !by_id.contains_key(&(span.trace_id, parent)) => {
                report.breaks(Rule::SpanParentResolves, || {
                    format!(
                        "span {} `{}` of job {} has parent {parent}, not stored",
                        span.span_id, span.name, span.job_id
                    )
                });
            }
            Some(_) => {}
        }
        if let (Some(machine), Some(worker)) = (&span.machine_id, &span.worker_id)
            && !worker.belongs_to(machine)
        {
            report.breaks(Rule::WorkerBelongsToMachine, || format!("span {}: {worker} on {machine}", span.span_id));
        }
    }
    shape
}

/// The per-trace rules over the whole shape: one trace per job, one job per trace, one root
/// per trace.
fn check_trace_shape(report: &mut CorrelationReport, shape: &TraceShape) {
    for (job, traces) in &shape.traces_of_job {
        if traces.len() > 1 {
            report.breaks(Rule::JobHasOneTrace, || format!("job {job} spans {} traces: {traces:?}", traces.len()));
        }
    }
    for (trace, jobs) in &shape.jobs_of_trace {
        if jobs.len() > 1 {
            report.breaks(Rule::TraceHasOneJob, || format!("trace {trace} holds {} jobs", jobs.len()));
        }
    }
    for (trace, &roots) in &shape.roots_of_trace {
        if roots != 1 {
            report.breaks(Rule::TraceHasOneRoot, || format!("trace {trace} has {roots} root spans"));
        }
    }
}

/// The per-log rules for one non-exempt log: its ids are self-consistent, its span is
/// stored, and it agrees with that span on job, machine and worker.
fn check_log(report: &mut CorrelationReport, by_id: &BTreeMap<(TraceId, SpanId), &Span>, log: &LogRecord) {
    if !log.ids_consistent() {
        report.breaks(Rule::WorkerBelongsToMachine, || {
            format!("log {}: worker {:?} on machine {:?}", log.id, log.worker_id, log.machine_id)
        });
    }
    let Some(span) = by_id.get(&(log.trace_id, log.span_id)) else {
        report.breaks(Rule::LogSpanResolves, || {
            format!("log {} of job {}: span {} in trace {} not stored", log.id, log.job_id, log.span_id, log.trace_id)
        });
        return;
    };
    let machine_disagrees = span.machine_id.is_some() && span.machine_id != log.machine_id;
    let worker_disagrees = span.worker_id.is_some() && span.worker_id != log.worker_id;
    if span.job_id != log.job_id || machine_disagrees || worker_disagrees {
        report.breaks(Rule::LogAgreesWithSpan, || {
            format!(
                "log {} says job {} machine {:?} worker {:?}; its span `{}` says job {} machine {:?} worker {:?}",
                log.id,
                log.job_id,
                log.machine_id,
                log.worker_id,
                span.name,
                span.job_id,
                span.machine_id,
                span.worker_id
            )
        });
    }
}

/// The `correlation` check (with `[expect] correlation = "complete"`): every rule held over
/// what Dash0 stored; a failure names each broken rule with examples.
pub fn check(run: &Measured, expect: &Expect) -> Option<Check> {
    if expect.correlation != CorrelationExpectation::Complete {
        return None;
    }
    let report = &run.correlation;
    let mut detail = format!(
        "{} jobs, {} traces, {} spans, {} logs ({} exempt)",
        report.jobs_count, report.traces_count, report.spans_count, report.logs_count, report.logs_exempt_count
    );
    for (rule, broken) in &report.broken {
        let _ = write!(
            detail,
            "\n    broken {} times: {}; e.g. {}",
            broken.count,
            rule.describe(),
            broken.examples.join("; ")
        );
    }
    Some(Check { name: CheckName::Correlation, passed: report.is_complete(), detail })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parts::dash0::{StoredBatch, Transport};
    use crate::record::{
        Attributes, MachineId, MachineType, RecordId, Resource, Severity, SourceId, SpanKind, SpanStatus, WorkerId,
    };
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    /// One job's spans (submitted → executing → service) and a log in each.
    fn job(rng: &mut ChaCha8Rng, seq: u64) -> (Vec<Span>, Vec<LogRecord>) {
        let machine = MachineId::new(MachineType::Comfyui, "1").unwrap();
        let worker = WorkerId::new(&machine, 0);
        let trace_id = TraceId::random(rng);
        let job_id = JobId::random(rng);
        let ids: Vec<SpanId> = (0..3).map(|_| SpanId::random(rng)).collect();
        let span = |index: usize, name: &str, on_machine: bool| Span {
            trace_id,
            span_id: ids[index],
            parent_span_id: index.checked_sub(1).map(|parent| ids[parent]),
            name: name.into(),
            kind: SpanKind::Internal,
            start_time_unix_nano: 1,
            end_time_unix_nano: 2,
            status: SpanStatus::Ok,
            job_id,
            machine_id: on_machine.then(|| machine.clone()),
            worker_id: on_machine.then(|| worker.clone()),
            id: RecordId::new(SourceId(0), seq * 3 + index as u64),
            attributes: Attributes::new(),
        };
        let spans =
            vec![span(0, "job.submitted", false), span(1, "job.executing", true), span(2, "comfyui.generate", true)];
        let logs = spans
            .iter()
            .enumerate()
            .map(|(index, span)| LogRecord {
                time_unix_nano: 1,
                observed_time_unix_nano: 1,
                severity: Severity::Info,
                body: "step".into(),
                trace_id,
                span_id: span.span_id,
                job_id,
                machine_id: span.machine_id.clone(),
                worker_id: span.worker_id.clone(),
                id: RecordId::new(SourceId(1), seq * 3 + index as u64),
                attributes: Attributes::new(),
            })
            .collect();
        (spans, logs)
    }

    fn jobs(count: u64) -> (Vec<Span>, Vec<LogRecord>) {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let (mut spans, mut logs) = (Vec::new(), Vec::new());
        for seq in 0..count {
            let (s, l) = job(&mut rng, seq);
            spans.extend(s);
            logs.extend(l);
        }
        (spans, logs)
    }

    /// Stores `logs` and `spans` in a Dash0 store (one batch each) and measures through the
    /// queries, as the run does.
    fn measure(logs: &[LogRecord], spans: &[Span], exempt: impl Fn(&LogRecord) -> bool) -> CorrelationReport {
        fn batch<T>(records: Vec<T>) -> StoredBatch<T> {
            StoredBatch {
                ingest_true_nanos: 0,
                dataset: std::sync::Arc::from("default"),
                transport: Transport::Http,
                resource: Resource::new("test"),
                records,
            }
        }
        let store = Dash0Store::new();
        store.store_logs(vec![batch(logs.to_vec())]);
        store.store_spans(vec![batch(spans.to_vec())]);
        super::measure(&store, exempt)
    }

    fn broken_rules(report: &CorrelationReport) -> Vec<Rule> {
        report.broken.keys().copied().collect()
    }

    #[test]
    fn consistent_jobs_correlate_completely_even_with_duplicates() {
        let (mut spans, logs) = jobs(4);
        spans.push(spans[1].clone());
        let report = measure(&logs, &spans, |_| false);
        assert!(report.is_complete(), "{report:?}");
        assert_eq!((report.jobs_count, report.traces_count, report.logs_count), (4, 4, 12));
    }

    #[test]
    fn a_lost_span_orphans_its_child_and_unresolves_its_log() {
        let (mut spans, logs) = jobs(2);
        spans.remove(1); // job 0's job.executing
        let report = measure(&logs, &spans, |_| false);
        assert_eq!(broken_rules(&report), vec![Rule::SpanParentResolves, Rule::LogSpanResolves]);
        assert_eq!(report.broken[&Rule::LogSpanResolves].count, 1);
    }

    #[test]
    fn a_new_trace_at_the_redis_hop_splits_the_job() {
        let (mut spans, mut logs) = jobs(1);
        let mut rng = ChaCha8Rng::seed_from_u64(99);
        let new_trace = TraceId::random(&mut rng);
        for span in &mut spans[1..] {
            span.trace_id = new_trace;
        }
        spans[1].parent_span_id = None;
        for log in &mut logs[1..] {
            log.trace_id = new_trace;
        }
        let report = measure(&logs, &spans, |_| false);
        assert_eq!(broken_rules(&report), vec![Rule::JobHasOneTrace]);
    }

    #[test]
    fn a_log_disagreeing_with_its_span_and_a_foreign_worker_are_caught() {
        let (spans, mut logs) = jobs(1);
        let other = MachineId::new(MachineType::Openai, "9").unwrap();
        logs[2].worker_id = Some(WorkerId::new(&other, 0));
        let report = measure(&logs, &spans, |_| false);
        assert_eq!(broken_rules(&report), vec![Rule::LogAgreesWithSpan, Rule::WorkerBelongsToMachine]);
        assert!(report.broken[&Rule::LogAgreesWithSpan].examples[0].contains("openai-9-worker-0"));
    }

    #[test]
    fn exempt_logs_are_counted_not_checked() {
        let (spans, mut logs) = jobs(1);
        logs[0].span_id = SpanId::random(&mut ChaCha8Rng::seed_from_u64(5));
        let report = measure(&logs, &spans, |log| log.id.seq == 0);
        assert!(report.is_complete());
        assert_eq!(report.logs_exempt_count, 1);
    }
}
