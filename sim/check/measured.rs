//! What a finished run measured, read once from the pipeline: the ledger's accounting,
//! correlation, latency, throughput, occupancy, buffers, metric totals, jobs, recoveries and
//! the time series. Every check reads this (`check::verdict::CHECKS`); the result model
//! (`check::result`) is its serialisable form.
//!
//! Why apart from the checks: measuring touches the pipeline, judging does not; a check is
//! then a pure function of the measurements and the scenario's `[expect]`.

use std::collections::BTreeMap;
use std::time::Duration;

use super::correlation::{self, CorrelationReport};
use super::jobs::JobCompletion;
use super::metrics::{self as metric_check, MetricTotal};
use super::recovery::{self, Recovery};
use super::throughput::{self, Throughput};
use crate::faults::FaultWindow;
use crate::gauges::{BufferId, Gauge};
use crate::ledger::curve::{self, CurvePoint};
use crate::ledger::timeline::{self, Timeline};
use crate::ledger::{Accounting, Custodian, LatencySample, Occupancy};
use crate::pipeline::Pipeline;
use crate::record::LogRecord;
use crate::scenario::Expect;
use crate::units::format_duration;
use crate::vocab::Signal;
use crate::world::RunOutcome;

/// Latency percentiles in microseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Latency {
    /// Records measured (first deliveries).
    pub count: u64,
    pub(crate) p50_micros: u64,
    pub(crate) p90_micros: u64,
    pub p99_micros: u64,
    pub(crate) p999_micros: u64,
    pub max_micros: u64,
}

impl Latency {
    /// The percentiles of `histogram` (all 0 when it is empty).
    fn of(histogram: &hdrhistogram::Histogram<u64>) -> Latency {
        if histogram.is_empty() {
            return Latency::default();
        }
        let latency = Latency {
            count: histogram.len(),
            p50_micros: histogram.value_at_quantile(0.50),
            p90_micros: histogram.value_at_quantile(0.90),
            p99_micros: histogram.value_at_quantile(0.99),
            p999_micros: histogram.value_at_quantile(0.999),
            max_micros: histogram.max(),
        };
        assert!(
            latency.p50_micros <= latency.p90_micros
                && latency.p90_micros <= latency.p99_micros
                && latency.p99_micros <= latency.p999_micros
                && latency.p999_micros <= latency.max_micros,
            "percentiles rise with the quantile: {latency:?}"
        );
        latency
    }
}

/// The run's measurements.
#[derive(Clone, Debug)]
pub struct Measured {
    pub scenario: String,
    pub seed: u64,
    pub outcome: RunOutcome,
    pub accounting: Accounting,
    pub correlation: CorrelationReport,
    pub log_latency: Latency,
    pub(crate) span_latency: Latency,
    /// Logs stored by Dash0 per second of load (duration, not drain).
    pub(crate) log_throughput_per_second: f64,
    /// Logs stored by Dash0 per 10 s window of true time.
    pub log_throughput: Throughput,
    /// Records each custodian holds at the end, and held at its peak.
    pub occupancy: BTreeMap<Custodian, Occupancy>,
    /// Each bounded buffer's level against its limit: peak, fullest admission, violations.
    pub buffers: BTreeMap<BufferId, Gauge>,
    /// Dash0's metric totals (cumulative by last value, delta by sum).
    pub metric_totals: BTreeMap<String, MetricTotal>,
    pub jobs: JobCompletion,
    /// How long each fault took to recover from, in `[[fault]]` order.
    pub recoveries: Vec<Recovery>,
    /// The scenario's load phase and drain (the x axis of every time series).
    pub duration: Duration,
    pub drain: Duration,
    /// Latency, deliveries and held records per 10 s window of true time (for reports).
    pub timeline: Timeline,
    /// The HDR percentile curves of log and span latency (`crate::ledger::curve`).
    pub(crate) log_latency_curve: Vec<CurvePoint>,
    pub(crate) span_latency_curve: Vec<CurvePoint>,
    /// The scenario's faults as windows of true time.
    pub fault_windows: Vec<FaultWindow>,
    /// Bounded samples of delivered batches by emit time (`crate::ledger::sample`), per signal.
    pub(crate) log_latency_sample: LatencySample,
    pub(crate) span_latency_sample: LatencySample,
    /// The scenario's `[expect]`: the budgets the report's headline shows next to the numbers.
    pub(crate) expect: Expect,
    /// The planted bugs' names (`[bugs]`), for the report's headline.
    pub(crate) planted_bugs: Vec<String>,
}

/// Whether a log is outside any job (dev hosts log without a job trace): exempt from
/// correlation, still accounted for in delivery.
fn exempt_from_correlation(log: &LogRecord) -> bool {
    crate::parts::app::is_dev_log(log)
}

impl Measured {
    /// Measures a finished pipeline run.
    pub fn of(pipeline: &Pipeline, outcome: RunOutcome) -> Measured {
        let scenario = &pipeline.scenario;
        let accounting = pipeline.ledger.account();
        let logs: Vec<LogRecord> = pipeline.dash0_store.logs().into_iter().map(|(log, _)| log).collect();
        let spans: Vec<_> = pipeline.dash0_store.spans().into_iter().map(|(span, _)| span).collect();
        let log_histogram = pipeline.ledger.latency_micros(Signal::Log);
        let span_histogram = pipeline.ledger.latency_micros(Signal::Span);
        let delivered_logs = accounting.totals.get(&Signal::Log).map_or(0, |totals| totals.delivered);
        let timeline = Self::timeline(pipeline, &outcome);
        Measured {
            scenario: scenario.name.clone(),
            seed: pipeline.seed,
            correlation: correlation::measure(&pipeline.dash0_store, exempt_from_correlation),
            jobs: JobCompletion::of(&pipeline.job_book, &spans, &logs),
            outcome,
            accounting,
            log_latency: Latency::of(&log_histogram),
            span_latency: Latency::of(&span_histogram),
            log_throughput_per_second: delivered_logs as f64 / scenario.duration.as_secs_f64().max(1e-9),
            log_throughput: pipeline.dash0_store.with_logs(|batches| {
                Throughput::of(
                    batches.iter().map(|batch| (batch.ingest_true_nanos, batch.records.len() as u64)),
                    scenario.duration,
                    throughput::WINDOW,
                )
            }),
            occupancy: pipeline.ledger.occupancy(),
            buffers: pipeline.buffer_gauges.snapshot(),
            metric_totals: pipeline.dash0_store.with_metric_points(|batches| {
                metric_check::totals(
                    batches.iter().flat_map(|batch| batch.records.iter().map(move |point| (&batch.resource, point))),
                )
            }),
            recoveries: recovery::recoveries(
                &scenario.faults,
                scenario.duration,
                &pipeline.ledger.catch_up(Signal::Log),
                &pipeline.ledger.catch_up(Signal::Span),
            ),
            duration: scenario.duration,
            drain: scenario.drain,
            timeline,
            log_latency_curve: curve::of(&log_histogram),
            span_latency_curve: curve::of(&span_histogram),
            fault_windows: FaultWindow::all(&scenario.faults, scenario.duration, scenario.drain),
            log_latency_sample: pipeline.ledger.latency_sample(Signal::Log),
            span_latency_sample: pipeline.ledger.latency_sample(Signal::Span),
            expect: scenario.expect.clone(),
            planted_bugs: scenario.bugs.names().map(str::to_string).collect(),
        }
    }

    /// The run's timeline, every window up to the run's end; asserts the run did not
    /// outlast its duration and drain.
    fn timeline(pipeline: &Pipeline, outcome: &RunOutcome) -> Timeline {
        let scenario = &pipeline.scenario;
        let windows_count = timeline::windows_covering(outcome.elapsed, timeline::WINDOW);
        let timeline = pipeline.ledger.timeline(windows_count);
        let windows_bound = timeline::windows_covering(scenario.duration + scenario.drain, timeline::WINDOW) + 1;
        assert!(
            timeline.windows_count <= windows_bound,
            "the timeline has {} windows; a run of {} + {} drain has at most {windows_bound}",
            timeline.windows_count,
            format_duration(scenario.duration),
            format_duration(scenario.drain)
        );
        timeline
    }
}
