//! The one judge of every OTLP request, whichever protocol carried it: credentials, the
//! scripted misbehaviour, the rate limit, then per record the timestamp window; what passes
//! is stored with its true ingest time and delivered in the ledger, once per request.
//!
//! Order of the checks, and why: credentials first (a refused token costs Dash0 nothing);
//! then the scripted delay (a slow backend is slow for everyone), scripted errors and the
//! rate limit (a throttled request is not looked at); then decoding and the timestamp
//! window, which refuse single records through `partial_success` while the rest is stored.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::config::{DATASET_DEFAULT, Dash0Config};
use super::control::{Behaviour, Dash0Control};
use super::refusal::{Refusal, RefusalKind};
use super::store::{Dash0Store, SignalCounts, StoreCounts, StoredBatch, Transport};
use crate::ledger::{Custodian, Ledger};
use crate::parts::PartCtx;
use crate::proto::otlp::{self, Batch, Decoded, Signal};
use crate::record::{LogRecord, MetricPoint, RecordId, Span};
use crate::vocab::{EventKind, LossCause, Part};
use crate::world::{HostCtx, true_elapsed_now};

/// One decoded OTLP export request.
pub enum ExportRequest {
    Logs(ExportLogsServiceRequest),
    Traces(ExportTraceServiceRequest),
    Metrics(ExportMetricsServiceRequest),
}

impl ExportRequest {
    pub fn signal(&self) -> Signal {
        match self {
            ExportRequest::Logs(_) => Signal::Logs,
            ExportRequest::Traces(_) => Signal::Traces,
            ExportRequest::Metrics(_) => Signal::Metrics,
        }
    }

    /// Records in the request (log records, spans, data points), counted on the wire.
    pub(crate) fn records_count(&self) -> u64 {
        let count: usize = match self {
            ExportRequest::Logs(r) => {
                r.resource_logs.iter().flat_map(|rl| &rl.scope_logs).map(|sl| sl.log_records.len()).sum()
            }
            ExportRequest::Traces(r) => {
                r.resource_spans.iter().flat_map(|rs| &rs.scope_spans).map(|ss| ss.spans.len()).sum()
            }
            ExportRequest::Metrics(r) => r
                .resource_metrics
                .iter()
                .flat_map(|rm| &rm.scope_metrics)
                .flat_map(|sm| &sm.metrics)
                .map(data_points_count)
                .sum(),
        };
        count as u64
    }
}

fn data_points_count(metric: &opentelemetry_proto::tonic::metrics::v1::Metric) -> usize {
    use opentelemetry_proto::tonic::metrics::v1::metric::Data;
    match &metric.data {
        Some(Data::Gauge(g)) => g.data_points.len(),
        Some(Data::Sum(s)) => s.data_points.len(),
        Some(Data::Histogram(h)) => h.data_points.len(),
        Some(Data::ExponentialHistogram(h)) => h.data_points.len(),
        Some(Data::Summary(s)) => s.data_points.len(),
        None => 0,
    }
}

/// A fully or partially accepted request: what `partial_success` reports.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Accepted {
    /// Records refused one by one (timestamp window, invalid); 0 when all were stored.
    pub rejected: i64,
    /// Why, naming the rule and the first record refused; empty when none was.
    pub error_message: String,
}

impl Accepted {
    pub(crate) fn logs_response(self) -> ExportLogsServiceResponse {
        ExportLogsServiceResponse {
            partial_success: (self.rejected > 0).then_some(ExportLogsPartialSuccess {
                rejected_log_records: self.rejected,
                error_message: self.error_message,
            }),
        }
    }

    pub(crate) fn traces_response(self) -> ExportTraceServiceResponse {
        ExportTraceServiceResponse {
            partial_success: (self.rejected > 0).then_some(ExportTracePartialSuccess {
                rejected_spans: self.rejected,
                error_message: self.error_message,
            }),
        }
    }

    pub(crate) fn metrics_response(self) -> ExportMetricsServiceResponse {
        ExportMetricsServiceResponse {
            partial_success: (self.rejected > 0).then_some(ExportMetricsPartialSuccess {
                rejected_data_points: self.rejected,
                error_message: self.error_message,
            }),
        }
    }
}

/// A record as the timestamp window sees it.
trait Stamped {
    /// The timestamp Dash0 checks: a log's time (its observed time when unset), a span's
    /// start, a point's time. 0 means "unset": Dash0 stamps it on arrival, so it passes.
    fn stamp_unix_nanos(&self) -> u64;
    /// The obsim identity, if the ledger accounts for it (logs and spans).
    fn ledger_id(&self) -> Option<RecordId>;
}

impl Stamped for LogRecord {
    fn stamp_unix_nanos(&self) -> u64 {
        if self.time_unix_nano != 0 { self.time_unix_nano } else { self.observed_time_unix_nano }
    }
    fn ledger_id(&self) -> Option<RecordId> {
        Some(self.id)
    }
}

impl Stamped for Span {
    fn stamp_unix_nanos(&self) -> u64 {
        self.start_time_unix_nano
    }
    fn ledger_id(&self) -> Option<RecordId> {
        Some(self.id)
    }
}

impl Stamped for MetricPoint {
    fn stamp_unix_nanos(&self) -> u64 {
        self.time_unix_nano
    }
    fn ledger_id(&self) -> Option<RecordId> {
        None
    }
}

/// The rate limit's token bucket, in record·nanoseconds so the arithmetic stays integral.
struct TokenBucket {
    records_per_second: u64,
    /// Tokens × 1e9; may go negative by one request (a request larger than the burst is let
    /// through when the bucket is full, then the debt is paid back).
    tokens_nanos: i128,
    last_true_nanos: u64,
}

const NANOS_PER_SECOND: i128 = 1_000_000_000;

impl TokenBucket {
    fn new(records_per_second: u64, now_true_nanos: u64) -> Self {
        let full = i128::from(records_per_second) * NANOS_PER_SECOND;
        TokenBucket { records_per_second, tokens_nanos: full, last_true_nanos: now_true_nanos }
    }

    /// Takes `records` tokens, or says how long until there are enough.
    fn take(&mut self, records: u64, now_true_nanos: u64) -> Result<(), Duration> {
        let rate = i128::from(self.records_per_second);
        let full = rate * NANOS_PER_SECOND;
        let elapsed = i128::from(now_true_nanos.saturating_sub(self.last_true_nanos));
        self.last_true_nanos = now_true_nanos;
        self.tokens_nanos = (self.tokens_nanos + elapsed * rate).min(full);
        let needed = i128::from(records.min(self.records_per_second)) * NANOS_PER_SECOND;
        if self.tokens_nanos >= needed {
            self.tokens_nanos -= i128::from(records) * NANOS_PER_SECOND;
            return Ok(());
        }
        let wait_nanos = (needed - self.tokens_nanos + rate - 1) / rate;
        Err(Duration::from_nanos(u64::try_from(wait_nanos).unwrap_or(u64::MAX)))
    }
}

struct JudgeState {
    /// Draws which requests the scripted errors hit.
    rng: ChaCha8Rng,
    bucket: Option<TokenBucket>,
}

/// Dash0's judge, shared by the HTTP and gRPC servers of one incarnation.
pub struct Ingest {
    host: HostCtx,
    ledger: Ledger,
    custodian: Custodian,
    config: Dash0Config,
    control: Dash0Control,
    store: Dash0Store,
    state: Mutex<JudgeState>,
    /// Planted bug `dash0_drop_one_batch` has struck (it strikes once per incarnation).
    dropped_one_batch: std::sync::atomic::AtomicBool,
}

/// Nanoseconds of a duration, saturating.
fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

impl Ingest {
    pub fn new(ctx: &PartCtx, config: Dash0Config, control: Dash0Control, store: Dash0Store) -> Arc<Self> {
        Arc::new(Ingest {
            host: ctx.host.clone(),
            ledger: ctx.ledger.clone(),
            custodian: ctx.custodian(Part::Dash0),
            state: Mutex::new(JudgeState { rng: ctx.host.rng("dash0/errors"), bucket: None }),
            dropped_one_batch: std::sync::atomic::AtomicBool::new(false),
            config,
            control,
            store,
        })
    }

    pub fn config(&self) -> &Dash0Config {
        &self.config
    }

    pub fn host(&self) -> &HostCtx {
        &self.host
    }

    /// Checks `Authorization: Bearer <token>` and the `Dash0-Dataset` header; gives the
    /// dataset written to.
    pub(crate) fn check_credentials(
        &self,
        authorization: Option<&str>,
        dataset: Option<&str>,
    ) -> Result<Arc<str>, Refusal> {
        let token = authorization.and_then(|value| value.strip_prefix("Bearer "));
        match token {
            _ if self.config.accept_any_token => {}
            None => {
                return Err(Refusal::new(
                    RefusalKind::Unauthenticated,
                    401,
                    "missing `Authorization: Bearer <token>` header",
                ));
            }
            Some(token) if token.trim() != self.config.token => {
                return Err(Refusal::new(RefusalKind::Unauthenticated, 401, "the bearer token is not valid"));
            }
            Some(_) => {}
        }
        let dataset = dataset.map(str::trim).filter(|d| !d.is_empty()).unwrap_or(DATASET_DEFAULT);
        if dataset != self.config.dataset {
            return Err(Refusal::new(
                RefusalKind::Forbidden,
                403,
                format!("the token may not write to dataset {dataset:?} (Dash0-Dataset header)"),
            ));
        }
        Ok(Arc::from(dataset))
    }

    /// Records a refusal (event and counts). Callers answer it in their protocol.
    pub fn refused(&self, transport: Transport, signal: Signal, records: u64, refusal: &Refusal) {
        self.host.record(
            EventKind::Dash0Refused,
            format!(
                "{} {} status {} {} records {records}: {}",
                transport.as_str(),
                signal.as_str(),
                refusal.status,
                refusal.kind.as_str(),
                refusal.message
            ),
        );
        self.store.count(|counts| counts_of(counts, signal).requests_refused += 1);
    }

    /// Judges an authenticated request: scripted delay, errors and rate limit, then the
    /// records one by one. A refusal is recorded here. A slowness that stores before its
    /// delay judges (and stores) at once and only answers late.
    pub async fn judge(
        &self,
        transport: Transport,
        dataset: Arc<str>,
        request: ExportRequest,
    ) -> Result<Accepted, Refusal> {
        let behaviour = self.control.behaviour();
        if let Some(slow) = behaviour.slow {
            if slow.stores_before_delay {
                let judged = self.judge_now(transport, dataset, request, &behaviour);
                tokio::time::sleep(slow.delay).await;
                return judged;
            }
            tokio::time::sleep(slow.delay).await;
            // Re-read: the script may have changed while this request waited.
            let behaviour = self.control.behaviour();
            return self.judge_now(transport, dataset, request, &behaviour);
        }
        self.judge_now(transport, dataset, request, &behaviour)
    }

    /// Scripted errors and rate limit under `behaviour`, then the records.
    fn judge_now(
        &self,
        transport: Transport,
        dataset: Arc<str>,
        request: ExportRequest,
        behaviour: &Behaviour,
    ) -> Result<Accepted, Refusal> {
        let signal = request.signal();
        let records = request.records_count();
        if let Err(refusal) = self.scripted(behaviour, signal, transport, records) {
            self.refused(transport, signal, records, &refusal);
            return Err(refusal);
        }
        Ok(self.store_request(transport, dataset, request))
    }

    /// Scripted errors, then the rate limit. Every active script draws once per request
    /// (so the random stream's position depends only on the requests and scripts seen, not
    /// on scopes); the first script in schedule order that covers the request and fires
    /// gives the status.
    fn scripted(
        &self,
        behaviour: &Behaviour,
        signal: Signal,
        transport: Transport,
        records: u64,
    ) -> Result<(), Refusal> {
        let mut state = self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut fired: Option<Refusal> = None;
        for script in &behaviour.errors {
            let draw: f64 = state.rng.random();
            let errors = &script.errors;
            if fired.is_none() && script.scope.covers(signal, transport) && draw < errors.rate {
                let mut refusal = Refusal::new(
                    RefusalKind::Scripted,
                    errors.status,
                    format!("scripted error {} (rate {})", errors.status, errors.rate),
                );
                refusal.retry_after = errors.retry_after;
                fired = Some(refusal);
            }
        }
        if let Some(refusal) = fired {
            return Err(refusal);
        }
        match behaviour.rate_limit {
            None => state.bucket = None,
            Some(limit) => {
                let now = nanos(true_elapsed_now());
                let bucket = match &mut state.bucket {
                    Some(bucket) if bucket.records_per_second == limit.records_per_second => bucket,
                    slot => slot.insert(TokenBucket::new(limit.records_per_second, now)),
                };
                if let Err(wait) = bucket.take(records, now) {
                    let mut refusal = Refusal::new(
                        RefusalKind::RateLimited,
                        429,
                        format!("rate limit of {} records per second exceeded", limit.records_per_second),
                    );
                    refusal.retry_after = Some(wait);
                    return Err(refusal);
                }
            }
        }
        Ok(())
    }

    /// Decodes, applies the timestamp window, stores and delivers.
    fn store_request(&self, transport: Transport, dataset: Arc<str>, request: ExportRequest) -> Accepted {
        match request {
            ExportRequest::Logs(_)
                if self.config.bugs.dash0_drop_one_batch
                    && !self.dropped_one_batch.swap(true, std::sync::atomic::Ordering::Relaxed) =>
            {
                // Planted bug (`crate::parts::bugs`): answered 200, stored nothing, told no one.
                Accepted { rejected: 0, error_message: String::new() }
            }
            ExportRequest::Logs(r) => {
                let (batches, accepted) =
                    self.admit(transport, &dataset, Signal::Logs, otlp::decode_logs_partial(r), "log records");
                self.store.store_logs(batches);
                accepted
            }
            ExportRequest::Traces(r) => {
                let (batches, accepted) =
                    self.admit(transport, &dataset, Signal::Traces, otlp::decode_spans_partial(r), "spans");
                self.store.store_spans(batches);
                accepted
            }
            ExportRequest::Metrics(r) => {
                let (batches, accepted) =
                    self.admit(transport, &dataset, Signal::Metrics, otlp::decode_metrics_partial(r), "data points");
                self.store.store_metric_points(batches);
                accepted
            }
        }
    }

    /// The per-record judgement of one decoded request, its ledger calls, counts and event.
    fn admit<T: Stamped>(
        &self,
        transport: Transport,
        dataset: &Arc<str>,
        signal: Signal,
        decoded: Decoded<T>,
        noun: &str,
    ) -> (Vec<StoredBatch<T>>, Accepted) {
        let now_true_nanos = nanos(true_elapsed_now());
        let clock_nanos = self.host.clock().now_unix_nanos();
        let oldest = clock_nanos.saturating_sub(nanos(self.config.timestamp_past_limit));
        let newest = clock_nanos.saturating_add(nanos(self.config.timestamp_future_limit));
        let foreign = decoded.missing_record_id_count() as u64;
        let invalid = decoded.rejected_records as u64 - foreign;
        let first_invalid = decoded.errors.iter().find(|e| !e.is_missing_record_id()).map(|e| e.to_string());

        let mut out_of_range_ids: Vec<RecordId> = Vec::new();
        let mut out_of_range = 0u64;
        let mut first_out_of_range: Option<u64> = None;
        let mut delivered_ids: Vec<RecordId> = Vec::with_capacity(decoded.accepted_records());
        let mut stored = 0u64;
        let mut batches = Vec::with_capacity(decoded.batches.len());
        for Batch { resource, mut records } in decoded.batches {
            records.retain(|record| {
                let stamp = record.stamp_unix_nanos();
                let in_range = stamp == 0 || (oldest..=newest).contains(&stamp);
                if !in_range {
                    out_of_range += 1;
                    first_out_of_range.get_or_insert(stamp);
                    out_of_range_ids.extend(record.ledger_id());
                }
                in_range
            });
            delivered_ids.extend(records.iter().filter_map(Stamped::ledger_id));
            stored += records.len() as u64;
            batches.push(StoredBatch {
                ingest_true_nanos: now_true_nanos,
                dataset: Arc::clone(dataset),
                transport,
                resource,
                records,
            });
        }
        if !out_of_range_ids.is_empty() {
            self.ledger.drop_records(&self.custodian, LossCause::Dash0TimestampRange, &out_of_range_ids);
        }
        if !delivered_ids.is_empty() {
            self.ledger.deliver(&delivered_ids, now_true_nanos);
        }
        self.store.count(|counts| {
            let c = counts_of(counts, signal);
            c.requests_accepted += 1;
            c.records_stored += stored + foreign;
            c.foreign_records += foreign;
            c.records_refused_timestamp += out_of_range;
            c.records_refused_invalid += invalid;
        });

        let reasons =
            self.refusal_reasons(noun, (out_of_range, first_out_of_range, clock_nanos), (invalid, first_invalid));
        self.host.record(
            EventKind::Dash0Ingest,
            format!(
                "{} {} dataset {dataset} stored {stored} foreign {foreign} refused_timestamp {out_of_range} \
                 refused_invalid {invalid}",
                transport.as_str(),
                signal.as_str(),
            ),
        );
        let rejected = i64::try_from(out_of_range + invalid).unwrap_or(i64::MAX);
        (batches, Accepted { rejected, error_message: reasons.join("; ") })
    }

    /// The partial-success message: why records were refused — `(count, first stamp, Dash0's
    /// clock)` out of the timestamp range, `(count, first error)` invalid.
    fn refusal_reasons(
        &self,
        noun: &str,
        (out_of_range, first_out_of_range, clock_nanos): (u64, Option<u64>, u64),
        (invalid, first_invalid): (u64, Option<String>),
    ) -> Vec<String> {
        let mut reasons = Vec::new();
        if let Some(stamp) = first_out_of_range {
            reasons.push(format!(
                "{out_of_range} {noun} refused: timestamp outside [now - {}s, now + {}s] of Dash0's clock \
                 (first at {stamp} ns, Dash0 clock {clock_nanos} ns)",
                self.config.timestamp_past_limit.as_secs(),
                self.config.timestamp_future_limit.as_secs(),
            ));
        }
        if let Some(error) = first_invalid {
            reasons.push(format!("{invalid} {noun} refused as invalid (first: {error})"));
        }
        reasons
    }

    /// Records every change of the script as it is noticed; runs for the incarnation.
    pub(crate) async fn watch_control(self: Arc<Self>) {
        let (mut seen, behaviour) = self.control.snapshot();
        self.host.record(EventKind::Dash0Control, format!("generation {seen}: {behaviour}"));
        // Bounded by the run: one wake per change.
        loop {
            self.control.changed().await;
            let (generation, behaviour) = self.control.snapshot();
            if generation != seen {
                seen = generation;
                self.host.record(EventKind::Dash0Control, format!("generation {generation}: {behaviour}"));
            }
        }
    }
}

fn counts_of(counts: &mut StoreCounts, signal: Signal) -> &mut SignalCounts {
    match signal {
        Signal::Logs => &mut counts.logs,
        Signal::Traces => &mut counts.traces,
        Signal::Metrics => &mut counts.metrics,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bucket_admits_its_rate_and_says_when_to_return() {
        let second = 1_000_000_000;
        let mut bucket = TokenBucket::new(100, 0);
        assert_eq!(bucket.take(60, 0), Ok(()));
        assert_eq!(bucket.take(40, 0), Ok(()));
        assert_eq!(bucket.take(50, 0), Err(Duration::from_millis(500)));
        assert_eq!(bucket.take(50, second / 2), Ok(()));
        // Larger than the burst: admitted only from a full bucket, then paid back.
        assert!(bucket.take(250, second / 2).is_err());
        assert_eq!(bucket.take(250, 2 * second), Ok(()));
        assert!(bucket.take(1, 2 * second + second).is_err());
        assert_eq!(bucket.take(1, 2 * second + 2 * second), Ok(()));
    }
}
