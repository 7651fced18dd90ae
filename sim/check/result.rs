//! The result model: one run's verdict and measurements in a documented, stable schema.
//! Everything renders from it: the text `obsim run` prints (`check::render`), result.json
//! (its JSON), summary.md and report.html (`crate::report`), and the chaos sweep's index
//! entries. `obsim report compare/merge` read it back from result.json.
//!
//! Why one model, built here once: two models joined by copying drift apart (a field shown
//! in the text but missing from result.json); built in the check layer from the finished
//! run's measurements (`check::measured`), it holds what every renderer needs and nothing
//! a renderer computes again.
//!
//! Stability rules: `schema_version` is 1. Within a version fields are only ever *added*;
//! renaming, removing or retyping a field bumps the version. Every integer quantity carries
//! its unit last in its name (`_micros`, `_count`, `_per_second`); times are true simulated
//! time since the run began. Lists have a fixed order (stated per field), so the same run
//! writes the same bytes. README.md ("Reports") lists the schema.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::measured::{Latency, Measured};
use super::verdict::Check;
use crate::ledger::sample::SAMPLE_POINTS_LIMIT;
use crate::ledger::{Outcome, Undelivered};
use crate::vocab::{Part, Signal};

/// The version of `result.json`'s layout.
pub(crate) const RESULT_SCHEMA_VERSION: u32 = 1;

/// One run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunResult {
    /// The layout version: 1.
    pub schema_version: u32,
    /// The scenario's `name`.
    pub scenario: String,
    /// The scenario file as given on the command line, if the run came from a file.
    pub scenario_file: Option<String>,
    pub seed: u64,
    /// The one command that replays this run.
    pub replay: String,
    /// Whether every check held.
    pub passed: bool,
    /// The load phase (faults active) and the drain after it (faults healed).
    pub(crate) duration_micros: u64,
    pub(crate) drain_micros: u64,
    /// True time simulated (duration + drain when the run completed).
    pub(crate) simulated_micros: u64,
    /// The window every time series is counted in (10 s).
    pub(crate) window_micros: u64,
    /// The run's identity: the SHA-256 of its whole event log, and how many events it has.
    pub event_log: EventLogResult,
    /// Every expectation checked, in the order the verdict checks them.
    pub checks: Vec<Check>,
    /// Accounting, latency and time series per signal.
    pub signals: Signals,
    /// Logs stored at Dash0 per window.
    pub throughput: ThroughputResult,
    /// Records held per custodian (peaks) and per part over time.
    pub occupancy: OccupancyResult,
    /// The fault schedule, in schedule order.
    pub faults: Vec<FaultResult>,
    /// Do logs and spans tie every job together (`crate::check::correlation`)?
    pub correlation: CorrelationResult,
    /// The job flow: submitted and completed jobs as Dash0 saw them.
    pub jobs: JobsResult,
    /// Dash0's metric totals by name (cumulative by last value, delta by sum), by name.
    pub metrics: Vec<MetricResult>,
    /// The scenario's budgets (`[expect]`), so a report shows each number next to what it is
    /// held to. Added within schema 1: all null in results written before it.
    #[serde(default)]
    pub budgets: BudgetsResult,
    /// The bugs planted in the run (`[bugs]` names, in `Bugs::names` order); empty for the
    /// correct pipeline. Added within schema 1.
    #[serde(default)]
    pub planted_bugs: Vec<String>,
}

/// The budgets of `[expect]` a report's headline puts next to the measurements; null when
/// the scenario sets none.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BudgetsResult {
    /// `latency_p99` and `latency_max` (logs' emit → Dash0 latency).
    pub latency_p99_micros: Option<u64>,
    pub latency_max_micros: Option<u64>,
    /// `max_recovery`: the longest any fault may take to recover from.
    pub recovery_micros: Option<u64>,
    /// `min_throughput`: the least logs per second in every judged window.
    pub min_throughput_per_second: Option<f64>,
    /// `lost`: the most records that may be lost with an accepted cause.
    pub lost_count: Option<u64>,
    /// `allow_loss`: the causes under which loss is accepted, in `[expect]` order.
    pub allow_loss: Vec<String>,
}

/// The event log's identity.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventLogResult {
    /// 64 hex digits.
    pub hash: String,
    pub events_count: u64,
}

/// Both signals.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Signals {
    pub log: SignalResult,
    pub span: SignalResult,
}

impl Signals {
    /// The result of `signal`.
    pub fn get(&self, signal: Signal) -> &SignalResult {
        match signal {
            Signal::Log => &self.log,
            Signal::Span => &self.span,
        }
    }
}

/// One signal's accounting and latency.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SignalResult {
    /// Records the app emitted.
    pub emitted_count: u64,
    /// Records Dash0 stored at least once.
    pub delivered_count: u64,
    /// Records Dash0 stored more than once, and the extra deliveries summed.
    pub duplicated_count: u64,
    pub(crate) duplicate_deliveries_count: u64,
    /// Records dropped (with a cause or silently): `losses` summed.
    pub lost_count: u64,
    /// Of `lost_count`, records no part recorded a cause for (always a failure).
    pub lost_silently_count: u64,
    /// Records still held by a part at the end (a liveness failure).
    pub in_flight_count: u64,
    /// Losses by (cause, part, host, born_host), in that order: one row per host the lost
    /// records were born on. A silent loss has cause `lost_silently` and names the last
    /// custodian that handed the records on (part and host null when no part ever held
    /// them).
    pub losses: Vec<LossResult>,
    /// Records held at the end, by (part, host).
    pub in_flight: Vec<HeldResult>,
    /// Emit → Dash0 latency of first deliveries (true time).
    pub latency: Latency,
    /// The HDR percentile curve: latency at quantiles 0, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99,
    /// 0.995, 0.999, 0.9995, 0.9999, 0.99999 and 1 (the maximum); empty when nothing was
    /// delivered.
    pub latency_curve: Vec<CurvePointResult>,
    /// Per window of delivery time (window k = [k·window, (k+1)·window)): records first
    /// delivered in it and their latency percentiles (all 0 when none was delivered).
    pub windows: Vec<SignalWindow>,
    /// A bounded sample of latency by emit time, and when the undelivered records were
    /// emitted: the report's scatter. Added within schema 1: empty in results written before.
    #[serde(default)]
    pub latency_sample: LatencySampleResult,
}

/// A bounded, deterministic sample of one signal's per-batch latency by emit time
/// (`crate::ledger::sample`), and where the records that never arrived were emitted.
///
/// Size: at most `points_limit` points (400: three numbers each) and, per undelivered
/// outcome, at most 200 marks (two numbers each), so a signal's sample stays some tens of
/// kilobytes of `result.json` however long the run.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LatencySampleResult {
    /// The most points the sample keeps.
    pub points_limit: u64,
    /// Delivered batches (records with one emit time first delivered together) in the run;
    /// every `stride`-th of them is a point (`stride` is a power of two, 1 when all are).
    pub batches_count: u64,
    pub stride: u64,
    /// When the last first delivery happened (true time); null when nothing was delivered.
    pub last_delivery_micros: Option<u64>,
    /// `[emit_micros, latency_micros, count]` per kept batch, in delivery order: `count`
    /// records emitted at `emit_micros` reached Dash0 `latency_micros` later.
    pub points: Vec<[u64; 3]>,
    /// Records never delivered, per outcome (`in_flight`, a loss cause, `lost_silently`;
    /// every custodian together), in that order.
    pub undelivered: Vec<UndeliveredMarksResult>,
}

/// When one outcome's undelivered records were emitted.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UndeliveredMarksResult {
    /// `in_flight`, a loss cause (`agent_retry_limit`, …) or `lost_silently`.
    pub outcome: String,
    /// Whether the records are lost (every outcome but `in_flight`).
    pub lost: bool,
    /// Records of this outcome.
    pub count: u64,
    /// The width of the emit-time bins the marks were counted in.
    pub bin_micros: u64,
    /// `[emit_micros, count]` per bin, in emit order: `emit_micros` is the bin's earliest
    /// emit time.
    pub marks: Vec<[u64; 2]>,
}

/// Records lost for one cause at one custodian.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LossResult {
    /// `agent_retry_limit`, `aggregator_overflow`, `redis_crash_unpersisted`, … or
    /// `lost_silently`.
    pub cause: String,
    /// The custodian where the records died (part on host).
    pub part: Option<String>,
    pub host: Option<String>,
    /// The host where these records were born (their emitter's host), e.g. the machine
    /// whose clock was wrong for `dash0_timestamp_range`. Added within schema 1: absent
    /// (null) in results written before it.
    #[serde(default)]
    pub born_host: Option<String>,
    pub count: u64,
}

/// Records one custodian holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldResult {
    pub part: String,
    pub host: String,
    pub count: u64,
    /// How many of them were born on each host (their emitter's host), by host. Added
    /// within schema 1: empty in results written before it.
    #[serde(default)]
    pub born_counts: BTreeMap<String, u64>,
}

/// One point of the percentile curve.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct CurvePointResult {
    /// 0 ..= 1.
    pub(crate) quantile: f64,
    pub micros: u64,
}

/// One window of a signal's time series.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignalWindow {
    /// k: the window covers [k·window_micros, (k+1)·window_micros).
    pub index: u64,
    pub start_micros: u64,
    /// Records first delivered in the window.
    pub delivered_count: u64,
    pub(crate) p50_micros: u64,
    pub(crate) p90_micros: u64,
    pub p99_micros: u64,
    pub max_micros: u64,
}

/// Logs stored at Dash0 per window (duplicates included: what Dash0 ingested).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ThroughputResult {
    pub(crate) window_micros: u64,
    /// Logs stored in window k, for every window of the run.
    pub(crate) log_records_per_window: Vec<u64>,
    /// The windows judged against `min_throughput`: from the one after the first stored
    /// record (fill time) up to the last that ends within the load phase (exclusive).
    pub(crate) judged_from_window: u64,
    pub(crate) judged_until_window: u64,
    /// The slowest judged window and its rate; null when no window is judged.
    pub(crate) min_window_index: Option<u64>,
    pub(crate) min_window_per_second: Option<f64>,
    /// The mean rate over the judged windows; null when no window is judged.
    pub(crate) mean_per_second: Option<f64>,
    /// Logs delivered per second of the load phase (delivered / duration).
    pub(crate) load_per_second: f64,
}

/// Occupancy: records held by the parts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OccupancyResult {
    /// Per custodian (part on host), by (part, host): the most it held at once and what it
    /// held at the end.
    pub(crate) custodians: Vec<CustodianOccupancy>,
    /// Per part that ever held a record, in pipeline order (app, agent, collector,
    /// aggregator, redis, shipper, dash0): the most records all its custodians held at once,
    /// per window and overall.
    pub parts: Vec<PartOccupancy>,
}

/// One custodian's occupancy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct CustodianOccupancy {
    pub part: String,
    pub host: String,
    pub peak_count: u64,
    pub(crate) held_count_at_end: u64,
}

/// One part's occupancy over time (all its hosts together).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartOccupancy {
    pub part: String,
    /// The highest of `peak_count_per_window`.
    pub peak_count: u64,
    /// Window k: the most records the part's custodians held together at once in it.
    pub peak_count_per_window: Vec<u64>,
}

/// One scheduled fault.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultResult {
    /// Its position in the scenario's `[[fault]]` list.
    pub index: u64,
    /// `link_drop`, `restart`, `dash0_errors`, …
    pub kind: String,
    pub start_micros: u64,
    /// Its end; the end of the load phase when the drain heals it (`ends_at_heal`, a
    /// crash); its start for an instant fault (a clock step).
    pub end_micros: u64,
    pub ends_at_heal: bool,
    /// Never healed (`heal = "never"`): it held until the run ended (`end_micros`).
    #[serde(default)]
    pub never_healed: bool,
    /// The `[[fault]]` table as one line.
    pub description: String,
    /// Recovery (`crate::check::recovery`): from the fault's end until the last log / span
    /// emitted during it reached Dash0; absent when none of them arrived.
    #[serde(default)]
    pub(crate) log_recovery_micros: Option<u64>,
    #[serde(default)]
    pub(crate) span_recovery_micros: Option<u64>,
    /// The end of the window recovery is measured from: the fault's end within the load
    /// phase, the end of the load phase for a fault without one (a crash, a clock step).
    /// Added within schema 1: 0 in results written before it.
    #[serde(default)]
    pub(crate) recovery_end_micros: u64,
}

/// Correlation over what Dash0 stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CorrelationResult {
    /// Whether every rule held.
    pub complete: bool,
    pub jobs_count: u64,
    pub(crate) traces_count: u64,
    pub spans_count: u64,
    pub logs_count: u64,
    /// Logs exempt from correlation (dev hosts log outside any job).
    pub(crate) logs_exempt_count: u64,
    /// Each broken rule, in rule order, with a few examples.
    pub broken: Vec<BrokenRule>,
}

/// A correlation rule that broke.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokenRule {
    /// The rule in words.
    pub rule: String,
    pub count: u64,
    pub examples: Vec<String>,
}

/// The job flow.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobsResult {
    /// Jobs the API accepted, and of those, completed.
    pub(crate) submitted_count: u64,
    pub(crate) completed_count: u64,
    /// Submissions the API gave up on.
    pub(crate) submit_failed_count: u64,
    /// Jobs with a completion, accepted or not.
    pub(crate) completed_all_count: u64,
    /// Jobs whose submission the API gave up on that ran anyway.
    pub(crate) ghosts_count: u64,
    /// A few accepted jobs that never completed.
    pub(crate) unfinished_examples: Vec<String>,
    /// Completions the workers counted, a job run twice counted twice.
    #[serde(default)]
    pub runs_count: u64,
    /// Jobs that ran more than once, and a few of them with their run counts.
    #[serde(default)]
    pub duplicated_count: u64,
    #[serde(default)]
    pub duplicated_examples: Vec<String>,
    /// Accepted / completed jobs of which Dash0 holds no telemetry (lost with it; the job
    /// itself is judged by the job book, not by what Dash0 stored).
    #[serde(default)]
    pub(crate) submitted_unseen_count: u64,
    #[serde(default)]
    pub(crate) completed_unseen_count: u64,
}

/// One metric's total at Dash0.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetricResult {
    pub name: String,
    pub total: f64,
    pub points_count: u64,
    pub(crate) series_count: u64,
}

/// A duration in whole microseconds (saturating).
pub(crate) fn micros(duration: std::time::Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}

/// Rounds a rate to 3 decimals, so the file reads cleanly and stays byte-stable.
fn rate(per_second: f64) -> f64 {
    (per_second * 1000.0).round() / 1000.0
}

/// The replay command of a run of `scenario` (its file `scenario_file` when known) with
/// `seed`.
pub(crate) fn replay_command(scenario: &str, scenario_file: Option<&str>, seed: u64) -> String {
    let path = scenario_file.map_or_else(|| format!("scenarios/{scenario}.toml"), str::to_string);
    format!("cargo run --release -- run {path} --seed {seed}")
}

impl RunResult {
    /// The model of a judged run: its measurements `run` and its `checks`, from the scenario
    /// file `scenario_file` when the run came from one.
    pub fn of(run: &Measured, checks: Vec<Check>, scenario_file: Option<String>) -> RunResult {
        let result = RunResult {
            schema_version: RESULT_SCHEMA_VERSION,
            scenario: run.scenario.clone(),
            replay: replay_command(&run.scenario, scenario_file.as_deref(), run.seed),
            scenario_file,
            seed: run.seed,
            passed: checks.iter().all(|check| check.passed),
            duration_micros: micros(run.duration),
            drain_micros: micros(run.drain),
            simulated_micros: micros(run.outcome.elapsed),
            window_micros: micros(run.timeline.window),
            event_log: EventLogResult { hash: run.outcome.hash.to_string(), events_count: run.outcome.events_count },
            checks,
            signals: Signals { log: signal_result(run, Signal::Log), span: signal_result(run, Signal::Span) },
            throughput: throughput_result(run),
            occupancy: occupancy_result(run),
            faults: fault_results(run),
            correlation: correlation_result(run),
            jobs: jobs_result(run),
            metrics: run
                .metric_totals
                .iter()
                .map(|(name, total)| MetricResult {
                    name: name.clone(),
                    total: total.total,
                    points_count: total.points_count,
                    series_count: total.series_count,
                })
                .collect(),
            budgets: budgets_result(&run.expect),
            planted_bugs: run.planted_bugs.clone(),
        };
        result.assert_conserved();
        result
    }

    /// The ledger's conservation, per signal, as the model states it: every emitted record
    /// is delivered, lost or in flight; and the rows add up to their totals.
    fn assert_conserved(&self) {
        for (name, signal) in [("log", &self.signals.log), ("span", &self.signals.span)] {
            let rows_lost: u64 = signal.losses.iter().map(|loss| loss.count).sum();
            let rows_held: u64 = signal.in_flight.iter().map(|held| held.count).sum();
            assert!(
                signal.emitted_count == signal.delivered_count + signal.lost_count + signal.in_flight_count
                    && rows_lost == signal.lost_count
                    && rows_held == signal.in_flight_count
                    && signal.lost_silently_count <= signal.lost_count,
                "{name}s: emitted {} = delivered {} + lost {} ({rows_lost} in rows) + in flight {} ({rows_held} in rows)",
                signal.emitted_count,
                signal.delivered_count,
                signal.lost_count,
                signal.in_flight_count
            );
            let sample = &signal.latency_sample;
            let marked: u64 = sample.undelivered.iter().map(|outcome| outcome.count).sum();
            assert!(
                marked == signal.lost_count + signal.in_flight_count
                    && sample.points.len() as u64 <= sample.points_limit
                    && sample.batches_count >= sample.points.len() as u64,
                "{name}s: the latency sample marks {marked} undelivered records for {} lost + {} in flight, and keeps {} points of {} batches (limit {})",
                signal.lost_count,
                signal.in_flight_count,
                sample.points.len(),
                sample.batches_count,
                sample.points_limit
            );
        }
    }
}

/// The budgets of `[expect]`, as the headline shows them.
fn budgets_result(expect: &crate::scenario::Expect) -> BudgetsResult {
    BudgetsResult {
        latency_p99_micros: expect.latency_p99.map(micros),
        latency_max_micros: expect.latency_max.map(micros),
        recovery_micros: expect.max_recovery.map(micros),
        min_throughput_per_second: expect.min_throughput.map(|rate| rate.per_second),
        lost_count: expect.lost,
        allow_loss: expect.allow_loss.iter().map(ToString::to_string).collect(),
    }
}

/// One signal's latency sample and undelivered marks, from the ledger's.
fn latency_sample_result(run: &Measured, signal: Signal) -> LatencySampleResult {
    let sample = match signal {
        Signal::Log => &run.log_latency_sample,
        Signal::Span => &run.span_latency_sample,
    };
    let undelivered = run
        .accounting
        .undelivered_marks
        .iter()
        .filter(|((marked, _), _)| *marked == signal)
        .map(|((_, kind), marks)| UndeliveredMarksResult {
            outcome: kind.name().to_string(),
            lost: *kind != Undelivered::InFlight,
            count: marks.count,
            bin_micros: marks.bin_nanos / 1_000,
            marks: marks.marks().map(|(emit_nanos, count)| [emit_nanos / 1_000, count]).collect(),
        })
        .collect();
    LatencySampleResult {
        points_limit: SAMPLE_POINTS_LIMIT as u64,
        batches_count: sample.batches_count,
        stride: sample.stride,
        last_delivery_micros: (sample.batches_count > 0).then_some(sample.last_delivery_nanos / 1_000),
        points: sample
            .points
            .iter()
            .map(|point| [point.emit_nanos / 1_000, point.latency_micros, point.count])
            .collect(),
        undelivered,
    }
}

/// Logs stored at Dash0 per window, and the windows judged.
fn throughput_result(run: &Measured) -> ThroughputResult {
    let timeline = &run.timeline;
    let throughput = &run.log_throughput;
    let judged: Vec<u64> = (throughput.judged_from..throughput.judged_until).map(|k| throughput.counts[k]).collect();
    let mean_per_second = (!judged.is_empty())
        .then(|| rate(judged.iter().sum::<u64>() as f64 / judged.len() as f64 / throughput.window.as_secs_f64()));
    let min_window = throughput.min_window();
    // Every window of the run, drain included (the store's count stops at its last batch).
    let mut log_records_per_window = throughput.counts.clone();
    if throughput.window == timeline.window && log_records_per_window.len() < timeline.windows_count {
        log_records_per_window.resize(timeline.windows_count, 0);
    }
    ThroughputResult {
        window_micros: micros(throughput.window),
        log_records_per_window,
        judged_from_window: throughput.judged_from as u64,
        judged_until_window: throughput.judged_until as u64,
        min_window_index: min_window.map(|(index, _)| index as u64),
        min_window_per_second: min_window.map(|(_, per_second)| rate(per_second)),
        mean_per_second,
        load_per_second: rate(run.log_throughput_per_second),
    }
}

/// Records held per custodian (peaks) and per part over time.
fn occupancy_result(run: &Measured) -> OccupancyResult {
    OccupancyResult {
        custodians: run
            .occupancy
            .iter()
            .map(|(custodian, occupancy)| CustodianOccupancy {
                part: custodian.part.to_string(),
                host: custodian.host.to_string(),
                peak_count: occupancy.peak_count,
                held_count_at_end: occupancy.held_count,
            })
            .collect(),
        parts: run
            .timeline
            .held_peaks
            .iter()
            .map(|(part, peaks)| PartOccupancy {
                part: part.to_string(),
                peak_count: peaks.iter().copied().max().unwrap_or(0),
                peak_count_per_window: peaks.clone(),
            })
            .collect(),
    }
}

/// The fault schedule with each fault's recovery, in schedule order.
fn fault_results(run: &Measured) -> Vec<FaultResult> {
    assert_eq!(run.fault_windows.len(), run.recoveries.len(), "one recovery per fault");
    run.fault_windows
        .iter()
        .zip(&run.recoveries)
        .map(|(window, recovery)| {
            assert_eq!(
                (window.index, window.start),
                (recovery.fault_index, recovery.start),
                "fault and recovery agree"
            );
            FaultResult {
                index: window.index as u64,
                kind: window.kind.to_string(),
                start_micros: micros(window.start),
                end_micros: micros(window.end),
                ends_at_heal: window.ends_at_heal,
                never_healed: window.never_healed,
                description: window.description.clone(),
                log_recovery_micros: recovery.logs.map(micros),
                span_recovery_micros: recovery.spans.map(micros),
                recovery_end_micros: micros(recovery.end),
            }
        })
        .collect()
}

/// Correlation over what Dash0 stored.
fn correlation_result(run: &Measured) -> CorrelationResult {
    let report = &run.correlation;
    CorrelationResult {
        complete: report.is_complete(),
        jobs_count: report.jobs_count as u64,
        traces_count: report.traces_count as u64,
        spans_count: report.spans_count as u64,
        logs_count: report.logs_count as u64,
        logs_exempt_count: report.logs_exempt_count as u64,
        broken: report
            .broken
            .iter()
            .map(|(rule, broken)| BrokenRule {
                rule: rule.describe().to_string(),
                count: broken.count,
                examples: broken.examples.clone(),
            })
            .collect(),
    }
}

/// The job flow, from the job book.
fn jobs_result(run: &Measured) -> JobsResult {
    let jobs = &run.jobs;
    JobsResult {
        submitted_count: jobs.submitted,
        completed_count: jobs.completed,
        submit_failed_count: jobs.submit_failed,
        completed_all_count: jobs.completed_all,
        ghosts_count: jobs.ghosts,
        unfinished_examples: jobs.unfinished_examples.clone(),
        runs_count: jobs.runs,
        duplicated_count: jobs.duplicated,
        duplicated_examples: jobs.duplicated_examples.clone(),
        submitted_unseen_count: jobs.submitted_unseen,
        completed_unseen_count: jobs.completed_unseen,
    }
}

/// The born-host counts of a tally, by host name.
fn born_counts(tally: &crate::ledger::Tally) -> BTreeMap<String, u64> {
    tally.born_counts.iter().map(|(host, &count)| (host.to_string(), count)).collect()
}

/// One signal's losses (with a cause, then silent) and records held at the end.
fn undelivered_rows(run: &Measured, signal: Signal) -> (Vec<LossResult>, Vec<HeldResult>, u64) {
    let mut losses = Vec::new();
    let mut in_flight = Vec::new();
    for (outcome, tally) in run.accounting.undelivered(signal) {
        match outcome {
            Outcome::Lost { cause, custodian } => {
                losses.extend(tally.born_counts.iter().map(|(born_host, &count)| LossResult {
                    cause: cause.to_string(),
                    part: Some(custodian.part.to_string()),
                    host: Some(custodian.host.to_string()),
                    born_host: Some(born_host.to_string()),
                    count,
                }));
            }
            Outcome::InFlight(custodian) => in_flight.push(HeldResult {
                part: custodian.part.to_string(),
                host: custodian.host.to_string(),
                count: tally.count,
                born_counts: born_counts(tally),
            }),
            Outcome::LostSilently => {}
        }
    }
    let mut lost_silently_count = 0;
    for ((silent_signal, last), tally) in &run.accounting.silent_by_last_custodian {
        if *silent_signal != signal {
            continue;
        }
        lost_silently_count += tally.count;
        losses.extend(tally.born_counts.iter().map(|(born_host, &count)| LossResult {
            cause: "lost_silently".to_string(),
            part: last.as_ref().map(|custodian| custodian.part.to_string()),
            host: last.as_ref().map(|custodian| custodian.host.to_string()),
            born_host: Some(born_host.to_string()),
            count,
        }));
    }
    losses.sort_by(|a, b| (&a.cause, &a.part, &a.host, &a.born_host).cmp(&(&b.cause, &b.part, &b.host, &b.born_host)));
    (losses, in_flight, lost_silently_count)
}

/// One signal's part of the result.
fn signal_result(run: &Measured, signal: Signal) -> SignalResult {
    let totals = run.accounting.totals.get(&signal).cloned().unwrap_or_default();
    let (losses, in_flight, lost_silently_count) = undelivered_rows(run, signal);
    let (latency, curve) = match signal {
        Signal::Log => (run.log_latency, &run.log_latency_curve),
        Signal::Span => (run.span_latency, &run.span_latency_curve),
    };
    let window_micros = micros(run.timeline.window);
    SignalResult {
        emitted_count: totals.emitted,
        delivered_count: totals.delivered,
        duplicated_count: totals.duplicated,
        duplicate_deliveries_count: totals.duplicate_deliveries,
        lost_count: losses.iter().map(|loss| loss.count).sum(),
        lost_silently_count,
        in_flight_count: in_flight.iter().map(|held| held.count).sum(),
        losses,
        in_flight,
        latency,
        latency_curve: curve
            .iter()
            .map(|point| CurvePointResult { quantile: point.quantile, micros: point.micros })
            .collect(),
        windows: run
            .timeline
            .latency(signal)
            .iter()
            .enumerate()
            .map(|(index, window)| SignalWindow {
                index: index as u64,
                start_micros: index as u64 * window_micros,
                delivered_count: window.delivered_count,
                p50_micros: window.p50_micros,
                p90_micros: window.p90_micros,
                p99_micros: window.p99_micros,
                max_micros: window.max_micros,
            })
            .collect(),
        latency_sample: latency_sample_result(run, signal),
    }
}

/// The part names in pipeline order, for sorting series by hop.
pub(crate) fn part_order(name: &str) -> usize {
    [Part::App, Part::Agent, Part::Collector, Part::Aggregator, Part::Redis, Part::Shipper, Part::Dash0]
        .iter()
        .position(|part| part.as_str() == name)
        .unwrap_or(usize::MAX)
}
