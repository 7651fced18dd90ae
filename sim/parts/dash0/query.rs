//! Dash0's query layer: what a person asks Dash0 to check correlation — a trace by its
//! trace_id (its spans and the logs carrying it), the logs of a job (by the `job_id`
//! attribute, oldest first), the trace ids of a job's spans, and a metric's series by name.
//!
//! Why one layer: the query routes (`http.rs`, `GET /api/...`), the correlation checker
//! (`crate::check::correlation`, directly after the run) and `obsim run --export` read the
//! store through these functions, so the checker judges exactly what a person would see.
//!
//! Every answer is bounded by an explicit `limit` and says whether it was `truncated`; the
//! routes cap the limit at `Dash0Config::query_results_limit` (FIDELITY.md "Dash0 query
//! API"). The answers render as OTLP JSON (`to_json`): ResourceSpans / ResourceLogs /
//! ResourceMetrics with hex ids and camelCase names, so OTLP tools read them.
//!
//! Cost: [`Queries::new`] indexes the store once (O(n log n) over the records); each query
//! is then a map look-up plus its answer. The checker builds one index for all jobs.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::store::{Dash0Store, StoredBatch};
use crate::proto::otlp;
use crate::record::{Attributes, JobId, LogRecord, MetricPoint, Resource, Span, TraceId};

/// Where a stored record sits: (batch index, record index) in ingest order.
type Position = (u32, u32);

/// One record a query found, with the batch (resource, ingest time) it was stored in.
#[derive(Debug)]
pub struct Hit<'a, T> {
    /// The stored record.
    pub record: &'a T,
    /// The batch it arrived in: its resource and ingest time.
    pub batch: &'a StoredBatch<T>,
    /// Its place in ingest order (the store's batch and record index).
    position: Position,
}

impl<T> Hit<'_, T> {
    /// The record's place in ingest order: earlier stored sorts first.
    pub fn ingest_order(&self) -> (u32, u32) {
        self.position
    }
}

/// Records a query found, at most `limit` of them.
#[derive(Debug)]
pub struct Hits<'a, T> {
    /// The records returned, in the query's order.
    pub hits: Vec<Hit<'a, T>>,
    /// How many records matched (returned or not).
    pub matched_count: usize,
    /// Whether more matched than the limit let through.
    pub truncated: bool,
}

impl<'a, T> Hits<'a, T> {
    /// The first `limit` of `positions` (already in the query's order) read from `batches`.
    fn take(batches: &'a [StoredBatch<T>], positions: &[Position], limit: usize) -> Self {
        let hits = positions
            .iter()
            .take(limit)
            .map(|&position| {
                let batch = &batches[position.0 as usize];
                Hit { record: &batch.records[position.1 as usize], batch, position }
            })
            .collect();
        Hits { hits, matched_count: positions.len(), truncated: positions.len() > limit }
    }

    /// Whether nothing matched.
    pub fn is_empty(&self) -> bool {
        self.matched_count == 0
    }

    /// The hits grouped as OTLP wants them: consecutive hits of one resource share a group
    /// (records cloned: answers are small, bounded by the limit).
    fn by_resource(&self) -> Vec<(&'a Resource, Vec<T>)>
    where
        T: Clone,
    {
        let mut groups: Vec<(&'a Resource, Vec<T>)> = Vec::new();
        for hit in &self.hits {
            match groups.last_mut() {
                Some((resource, records)) if **resource == hit.batch.resource => records.push(hit.record.clone()),
                _ => groups.push((&hit.batch.resource, vec![hit.record.clone()])),
            }
        }
        groups
    }
}

/// A trace: its spans (by start time) and the logs carrying its trace_id (by timestamp).
#[derive(Debug)]
pub struct TraceAnswer<'a> {
    /// The trace asked for.
    pub trace_id: TraceId,
    /// Its stored spans, at most `limit`.
    pub spans: Hits<'a, Span>,
    /// The stored logs carrying its trace_id, at most `limit`.
    pub logs: Hits<'a, LogRecord>,
}

impl TraceAnswer<'_> {
    /// Whether Dash0 stored nothing of this trace (the route answers 404).
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty() && self.logs.is_empty()
    }

    /// The answer as OTLP JSON, shaped like Dash0's GetTraceResponse (FIDELITY.md "Dash0
    /// query API"): `resourceSpans`, `resourceLogs`, plus obsim's `truncated` and counts.
    pub fn to_json(&self) -> serde_json::Value {
        let spans = self.spans.by_resource();
        let logs = self.logs.by_resource();
        let traces = otlp::encode_spans_batches(spans.iter().map(|(r, s)| (*r, s.as_slice())));
        let logs = otlp::encode_logs_batches(logs.iter().map(|(r, l)| (*r, l.as_slice())));
        serde_json::json!({
            "traceId": self.trace_id.to_string(),
            "resourceSpans": to_value(&traces.resource_spans),
            "resourceLogs": to_value(&logs.resource_logs),
            "spansMatched": self.spans.matched_count,
            "logsMatched": self.logs.matched_count,
            "truncated": self.spans.truncated || self.logs.truncated,
        })
    }
}

/// The logs of one job, oldest first.
#[derive(Debug)]
pub struct JobLogsAnswer<'a> {
    /// The job asked for.
    pub job_id: JobId,
    /// Its stored logs, at most `limit`.
    pub logs: Hits<'a, LogRecord>,
}

impl JobLogsAnswer<'_> {
    /// The answer as OTLP JSON, shaped like Dash0's GetLogRecordsResponse: `resourceLogs`,
    /// plus obsim's `truncated` and count.
    pub fn to_json(&self) -> serde_json::Value {
        let groups = self.logs.by_resource();
        let logs = otlp::encode_logs_batches(groups.iter().map(|(r, l)| (*r, l.as_slice())));
        serde_json::json!({
            "jobId": self.job_id.to_string(),
            "resourceLogs": to_value(&logs.resource_logs),
            "logsMatched": self.logs.matched_count,
            "truncated": self.logs.truncated,
        })
    }
}

/// One series of a metric: the points of one resource and one attribute set, by time.
#[derive(Debug)]
pub struct MetricSeries<'a> {
    /// Who emitted it.
    pub resource: &'a Resource,
    /// The points' attribute set.
    pub attributes: &'a Attributes,
    /// Its points returned, oldest first.
    pub points: Vec<&'a MetricPoint>,
}

/// A metric's series by name.
#[derive(Debug)]
pub struct MetricAnswer<'a> {
    /// The metric asked for.
    pub name: String,
    /// Its series, ordered by resource and attribute set; the points across all series are
    /// at most `limit` (series are filled in order).
    pub series: Vec<MetricSeries<'a>>,
    /// How many points matched.
    pub matched_count: usize,
    /// Whether more points matched than the limit let through.
    pub truncated: bool,
}

impl MetricAnswer<'_> {
    /// Whether Dash0 stored no point of this metric (the route answers 404).
    pub fn is_empty(&self) -> bool {
        self.matched_count == 0
    }

    /// The answer as OTLP JSON: one ResourceMetrics per series (its points in one Metric,
    /// oldest first), plus obsim's `truncated` and count.
    pub fn to_json(&self) -> serde_json::Value {
        let series: Vec<(&Resource, Vec<MetricPoint>)> = self
            .series
            .iter()
            .map(|series| (series.resource, series.points.iter().map(|&p| p.clone()).collect()))
            .collect();
        let request = otlp::encode_metrics_batches(series.iter().map(|(r, p)| (*r, p.as_slice())));
        serde_json::json!({
            "name": self.name,
            "resourceMetrics": to_value(&request.resource_metrics),
            "pointsMatched": self.matched_count,
            "truncated": self.truncated,
        })
    }
}

/// An OTLP message as OTLP JSON (opentelemetry-proto's serde mapping: hex ids, camelCase,
/// 64-bit integers as strings). Serializing these types to a `Value` cannot fail.
fn to_value(message: &impl Serialize) -> serde_json::Value {
    serde_json::to_value(message).unwrap_or_else(|error| serde_json::json!({ "error": error.to_string() }))
}

/// The look-ups every query needs, built once over one view of the store.
#[derive(Default)]
struct Index {
    /// Each trace's spans, by (start time, ingest order).
    spans_of_trace: BTreeMap<TraceId, Vec<Position>>,
    /// Each trace's logs, by (timestamp, ingest order).
    logs_of_trace: BTreeMap<TraceId, Vec<Position>>,
    /// Each job's logs, by (timestamp, ingest order).
    logs_of_job: BTreeMap<JobId, Vec<Position>>,
    /// The distinct trace ids of each job's spans.
    traces_of_job: BTreeMap<JobId, BTreeSet<TraceId>>,
}

/// The queries over one consistent view of what Dash0 stored.
pub struct Queries<'a> {
    logs: &'a [StoredBatch<LogRecord>],
    spans: &'a [StoredBatch<Span>],
    metric_points: &'a [StoredBatch<MetricPoint>],
    index: Index,
}

/// Every record of `batches` with its position, in ingest order.
fn positions<T>(batches: &[StoredBatch<T>]) -> impl Iterator<Item = (Position, &T)> {
    batches.iter().enumerate().flat_map(|(b, batch)| {
        batch.records.iter().enumerate().map(move |(r, record)| ((index_u32(b), index_u32(r)), record))
    })
}

/// An index as u32: the store is bounded far below 4 billion batches or records per batch.
fn index_u32(index: usize) -> u32 {
    u32::try_from(index).expect("the Dash0 store holds fewer than 2^32 batches and records per batch")
}

/// Sorts each list by the key `key` gives a position (then by the position itself).
fn sort_lists<K: Ord + Eq>(lists: &mut BTreeMap<K, Vec<Position>>, key: impl Fn(Position) -> u64) {
    for list in lists.values_mut() {
        list.sort_by_key(|&position| (key(position), position));
    }
}

impl<'a> Queries<'a> {
    /// Indexes one view of the store (logs, spans and metric points read under one lock).
    pub fn new(
        logs: &'a [StoredBatch<LogRecord>],
        spans: &'a [StoredBatch<Span>],
        metric_points: &'a [StoredBatch<MetricPoint>],
    ) -> Self {
        let mut index = Index::default();
        for (position, span) in positions(spans) {
            index.spans_of_trace.entry(span.trace_id).or_default().push(position);
            index.traces_of_job.entry(span.job_id).or_default().insert(span.trace_id);
        }
        for (position, log) in positions(logs) {
            index.logs_of_trace.entry(log.trace_id).or_default().push(position);
            index.logs_of_job.entry(log.job_id).or_default().push(position);
        }
        let span_start = |(b, r): Position| spans[b as usize].records[r as usize].start_time_unix_nano;
        let log_time = |(b, r): Position| logs[b as usize].records[r as usize].time_unix_nano;
        sort_lists(&mut index.spans_of_trace, span_start);
        sort_lists(&mut index.logs_of_trace, log_time);
        sort_lists(&mut index.logs_of_job, log_time);
        Queries { logs, spans, metric_points, index }
    }

    /// A trace by its id: its spans (by start time) and the logs carrying it (by timestamp),
    /// each at most `limit`.
    pub fn trace(&self, trace_id: TraceId, limit: usize) -> TraceAnswer<'a> {
        let spans = self.index.spans_of_trace.get(&trace_id).map_or(&[][..], Vec::as_slice);
        let logs = self.index.logs_of_trace.get(&trace_id).map_or(&[][..], Vec::as_slice);
        TraceAnswer { trace_id, spans: Hits::take(self.spans, spans, limit), logs: Hits::take(self.logs, logs, limit) }
    }

    /// The logs whose `job_id` is `job_id`, oldest first, at most `limit`.
    pub fn logs_of_job(&self, job_id: JobId, limit: usize) -> JobLogsAnswer<'a> {
        let logs = self.index.logs_of_job.get(&job_id).map_or(&[][..], Vec::as_slice);
        JobLogsAnswer { job_id, logs: Hits::take(self.logs, logs, limit) }
    }

    /// The distinct trace ids of the spans whose `job_id` is `job_id` (Dash0's trace-ids
    /// search with a filter on the attribute), in id order.
    pub fn trace_ids_of_job(&self, job_id: JobId) -> impl Iterator<Item = TraceId> + '_ {
        self.index.traces_of_job.get(&job_id).into_iter().flatten().copied()
    }

    /// Every job id a stored span or log carries, in id order (the values of the `job_id`
    /// attribute, as a person lists them to pick one).
    pub fn job_ids(&self) -> BTreeSet<JobId> {
        self.index.traces_of_job.keys().chain(self.index.logs_of_job.keys()).copied().collect()
    }

    /// The points of metric `name`, grouped into series by resource and attribute set, each
    /// series oldest first; at most `limit` points in all.
    pub fn metric(&self, name: &str, limit: usize) -> MetricAnswer<'a> {
        // Series keyed by their rendered resource and attributes: a total order that
        // `Resource` and `Attributes` (no `Ord`) do not give, stable across runs.
        let mut series: BTreeMap<String, (Position, Vec<(u64, Position)>)> = BTreeMap::new();
        for (position, point) in positions(self.metric_points).filter(|(_, p)| p.name == name) {
            let key = format!("{:?}{:?}", self.metric_points[position.0 as usize].resource, point.attributes);
            let entry = series.entry(key).or_insert_with(|| (position, Vec::new()));
            entry.1.push((point.time_unix_nano, position));
        }
        let matched_count = series.values().map(|(_, points)| points.len()).sum();
        let mut left = limit;
        let mut answer = MetricAnswer { name: name.to_string(), series: Vec::new(), matched_count, truncated: false };
        for (_, (first, mut points)) in series {
            if left == 0 {
                answer.truncated = true;
                break;
            }
            points.sort_unstable();
            answer.truncated |= points.len() > left;
            let first_point = &self.metric_points[first.0 as usize];
            answer.series.push(MetricSeries {
                resource: &first_point.resource,
                attributes: &first_point.records[first.1 as usize].attributes,
                points: points
                    .iter()
                    .take(left)
                    .map(|&(_, (b, r))| &self.metric_points[b as usize].records[r as usize])
                    .collect(),
            });
            left -= points.len().min(left);
        }
        answer
    }
}

impl Dash0Store {
    /// Runs `read` with the queries over what is stored now (one index, one lock held for
    /// the duration: answer quickly, do not await inside).
    pub fn query<R>(&self, read: impl FnOnce(&Queries<'_>) -> R) -> R {
        self.with_stored(|logs, spans, metric_points| read(&Queries::new(logs, spans, metric_points)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parts::dash0::Transport;
    use crate::record::{MetricValue, Number, RecordId, Severity, SourceId, SpanId};
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn batch<T>(service: &str, records: Vec<T>) -> StoredBatch<T> {
        StoredBatch {
            ingest_true_nanos: 0,
            dataset: std::sync::Arc::from("default"),
            transport: Transport::Http,
            resource: Resource::new(service),
            records,
        }
    }

    fn log(job_id: JobId, trace_id: TraceId, seq: u64, time_unix_nano: u64) -> LogRecord {
        LogRecord {
            time_unix_nano,
            observed_time_unix_nano: time_unix_nano,
            severity: Severity::Info,
            body: format!("line {seq}"),
            trace_id,
            span_id: SpanId::random(&mut ChaCha8Rng::seed_from_u64(seq)),
            job_id,
            machine_id: None,
            worker_id: None,
            id: RecordId::new(SourceId(0), seq),
            attributes: Attributes::new(),
        }
    }

    fn point(time_unix_nano: u64, queue: &str) -> MetricPoint {
        MetricPoint {
            name: "queue.depth".into(),
            unit: "1".into(),
            start_time_unix_nano: 0,
            time_unix_nano,
            attributes: Attributes::new().with("queue", queue),
            value: MetricValue::Gauge { value: Number::Int(1) },
        }
    }

    #[test]
    fn a_jobs_logs_come_oldest_first_across_batches_and_the_limit_truncates() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let (job, other, trace) = (JobId::random(&mut rng), JobId::random(&mut rng), TraceId::random(&mut rng));
        let logs = vec![
            batch("a", vec![log(job, trace, 0, 30), log(other, trace, 1, 5)]),
            batch("b", vec![log(job, trace, 2, 10), log(job, trace, 3, 20)]),
        ];
        let queries = Queries::new(&logs, &[], &[]);
        let answer = queries.logs_of_job(job, 10);
        let times: Vec<u64> = answer.logs.hits.iter().map(|hit| hit.record.time_unix_nano).collect();
        assert_eq!((times, answer.logs.truncated), (vec![10, 20, 30], false));
        let limited = queries.logs_of_job(job, 2);
        assert_eq!((limited.logs.hits.len(), limited.logs.matched_count, limited.logs.truncated), (2, 3, true));
        let json = limited.to_json();
        assert_eq!(json["resourceLogs"].as_array().unwrap().len(), 1, "both hits come from batch b: {json}");
        assert_eq!(queries.trace(trace, 100).logs.matched_count, 4);
        assert!(queries.trace(TraceId::random(&mut rng), 100).is_empty());
    }

    #[test]
    fn a_metric_is_grouped_into_series_by_attribute_set_each_by_time() {
        let points =
            vec![batch("m", vec![point(30, "a"), point(10, "b"), point(20, "a")]), batch("m", vec![point(5, "a")])];
        let queries = Queries::new(&[], &[], &points);
        let answer = queries.metric("queue.depth", 10);
        let series: Vec<Vec<u64>> =
            answer.series.iter().map(|s| s.points.iter().map(|p| p.time_unix_nano).collect()).collect();
        assert_eq!(series, vec![vec![5, 20, 30], vec![10]]);
        let limited = queries.metric("queue.depth", 3);
        assert_eq!((limited.series.len(), limited.truncated, limited.matched_count), (1, true, 4));
        assert!(queries.metric("no.such", 10).is_empty());
    }
}
