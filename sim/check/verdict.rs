//! The verdict of one run: what was emitted, delivered, duplicated and lost (by cause),
//! correlation, latency and throughput, each expectation of the scenario checked, and the
//! command that replays the run.
//!
//! Why text first: the verdict is what an engineer reads in CI output when a scenario fails;
//! it must say what broke, where, and how to replay it without opening another file.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use super::correlation::{self, CorrelationReport};
use super::jobs::JobCompletion;
use super::metrics::{self as metric_check, MetricTotal};
use super::recovery::{self, Recovery};
use super::throughput::{self, Throughput};
use crate::faults::FaultWindow;
use crate::ledger::curve::{self, CurvePoint};
use crate::ledger::timeline::{self, Timeline};
use crate::ledger::{Accounting, Custodian, Occupancy, Outcome};
use crate::record::LogRecord;
use crate::scenario::{CorrelationExpectation, MetricsExpectation, Scenario};
use crate::units::format_duration;
use crate::vocab::{Part, Signal};
use crate::world::{RunOutcome, WorldError};

use crate::pipeline::Pipeline;

/// One expectation, checked.
#[derive(Clone, Debug, PartialEq)]
pub struct Check {
    /// Short name: `delivery`, `duplicates`, `correlation`, `latency_p99`, …
    pub name: &'static str,
    pub passed: bool,
    /// What was measured against what was allowed; on failure, where and examples.
    pub detail: String,
}

/// Latency percentiles in microseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Latency {
    pub count: u64,
    pub p50_micros: u64,
    pub p90_micros: u64,
    pub p99_micros: u64,
    pub p999_micros: u64,
    pub max_micros: u64,
}

impl Latency {
    fn of(histogram: &hdrhistogram::Histogram<u64>) -> Latency {
        if histogram.is_empty() {
            return Latency::default();
        }
        Latency {
            count: histogram.len(),
            p50_micros: histogram.value_at_quantile(0.50),
            p90_micros: histogram.value_at_quantile(0.90),
            p99_micros: histogram.value_at_quantile(0.99),
            p999_micros: histogram.value_at_quantile(0.999),
            max_micros: histogram.max(),
        }
    }
}

/// The judged run.
#[derive(Clone, Debug)]
pub struct Verdict {
    pub scenario: String,
    pub scenario_path: Option<String>,
    pub seed: u64,
    pub outcome: RunOutcome,
    pub accounting: Accounting,
    pub correlation: CorrelationReport,
    pub log_latency: Latency,
    pub span_latency: Latency,
    /// Logs stored by Dash0 per second of load (duration, not drain).
    pub log_throughput_per_second: f64,
    /// Logs stored by Dash0 per 10 s window of true time.
    pub log_throughput: Throughput,
    /// Records each custodian holds at the end, and held at its peak.
    pub occupancy: BTreeMap<Custodian, Occupancy>,
    /// Each bounded buffer's level against its limit: peak, fullest admission, violations.
    pub buffers: BTreeMap<crate::gauges::BufferId, crate::gauges::Gauge>,
    /// Dash0's metric totals (cumulative by last value, delta by sum).
    pub metric_totals: BTreeMap<String, MetricTotal>,
    pub jobs: JobCompletion,
    /// How long each fault took to recover from, in `[[fault]]` order.
    pub recoveries: Vec<Recovery>,
    pub checks: Vec<Check>,
    /// The scenario's load phase and drain (the x axis of every time series).
    pub duration: Duration,
    pub drain: Duration,
    /// Latency, deliveries and held records per 10 s window of true time (for reports).
    pub timeline: Timeline,
    /// The HDR percentile curves of log and span latency (`crate::ledger::curve`).
    pub log_latency_curve: Vec<CurvePoint>,
    pub span_latency_curve: Vec<CurvePoint>,
    /// The scenario's faults as windows of true time.
    pub fault_windows: Vec<FaultWindow>,
}

/// Where records go after `part` hands them on, for naming the part that lost records a
/// custodian released (a silent loss happens at the next hop or in between).
fn next_hop(part: Part) -> String {
    crate::vocab::pipeline::next_hops_text(part)
}

/// The metric names the app emits and the true count each must total (from the job book:
/// what the API accepted, and every completion the workers counted, a job run twice twice).
fn expected_metrics(jobs: &JobCompletion) -> [metric_check::Expected<'static>; 3] {
    [
        ("jobs_submitted_total", jobs.submitted, "jobs were accepted"),
        ("jobs_completed_total", jobs.runs, "jobs ran"),
        ("job_duration_seconds.count", jobs.runs, "jobs ran"),
    ]
}

/// Whether a log is outside any job (dev hosts log without a job trace): exempt from
/// correlation, still accounted for in delivery.
fn exempt_from_correlation(log: &LogRecord) -> bool {
    crate::parts::app::is_dev_log(log)
}

impl Verdict {
    /// Judges a finished pipeline run.
    pub fn judge(pipeline: &Pipeline, outcome: RunOutcome) -> Verdict {
        let scenario = &pipeline.scenario;
        let accounting = pipeline.ledger.account();
        let logs: Vec<LogRecord> = pipeline.dash0_store.logs().into_iter().map(|(log, _)| log).collect();
        let spans: Vec<_> = pipeline.dash0_store.spans().into_iter().map(|(span, _)| span).collect();
        let correlation = correlation::check(&logs, &spans, exempt_from_correlation);
        let jobs = JobCompletion::of(&pipeline.job_book, &spans, &logs);
        let log_histogram = pipeline.ledger.latency_micros(Signal::Log);
        let span_histogram = pipeline.ledger.latency_micros(Signal::Span);
        let log_latency = Latency::of(&log_histogram);
        let span_latency = Latency::of(&span_histogram);
        let delivered_logs = accounting.totals.get(&Signal::Log).map_or(0, |totals| totals.delivered);
        let log_throughput_per_second = delivered_logs as f64 / scenario.duration.as_secs_f64().max(1e-9);
        let log_throughput = pipeline.dash0_store.with_logs(|batches| {
            Throughput::of(
                batches.iter().map(|batch| (batch.ingest_true_nanos, batch.records.len() as u64)),
                scenario.duration,
                throughput::WINDOW,
            )
        });
        let metric_totals = pipeline.dash0_store.with_metric_points(|batches| {
            metric_check::totals(
                batches.iter().flat_map(|batch| batch.records.iter().map(move |point| (&batch.resource, point))),
            )
        });
        let occupancy = pipeline.ledger.occupancy();
        let recoveries = recovery::recoveries(
            &scenario.faults,
            scenario.duration,
            &pipeline.ledger.catch_up(Signal::Log),
            &pipeline.ledger.catch_up(Signal::Span),
        );
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
        let log_latency_curve = curve::of(&log_histogram);
        let span_latency_curve = curve::of(&span_histogram);
        let mut verdict = Verdict {
            scenario: scenario.name.clone(),
            scenario_path: None,
            seed: pipeline.seed,
            outcome,
            accounting,
            correlation,
            log_latency,
            span_latency,
            log_throughput_per_second,
            log_throughput,
            occupancy,
            buffers: pipeline.buffer_gauges.snapshot(),
            metric_totals,
            jobs,
            recoveries,
            checks: Vec::new(),
            duration: scenario.duration,
            drain: scenario.drain,
            timeline,
            log_latency_curve,
            span_latency_curve,
            fault_windows: FaultWindow::all(&scenario.faults, scenario.duration, scenario.drain),
        };
        verdict.checks = verdict.evaluate(scenario);
        verdict
    }

    /// Builds, runs and judges `scenario` with `seed`.
    pub fn run(scenario: std::sync::Arc<Scenario>, seed: u64) -> Result<Verdict, WorldError> {
        let mut pipeline = Pipeline::build(scenario, seed);
        let outcome = pipeline.run()?;
        Ok(Verdict::judge(&pipeline, outcome))
    }

    /// Whether every check passed.
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|check| check.passed)
    }

    /// The one command that replays this run.
    pub fn replay_command(&self) -> String {
        let path = self.scenario_path.clone().unwrap_or_else(|| format!("scenarios/{}.toml", self.scenario));
        format!("cargo run --release -- run {path} --seed {}", self.seed)
    }

    fn evaluate(&self, scenario: &Scenario) -> Vec<Check> {
        let expect = &scenario.expect;
        let mut checks = Vec::new();

        // Delivery: every record delivered, or lost with an accepted cause (at most
        // `expect.lost` of them when given). Records still held at the end are the liveness
        // check's. A loss with another cause, or none, always fails.
        let mut unaccepted = 0u64;
        let mut accepted_count = 0u64;
        let mut problems = String::new();
        for ((signal, outcome), tally) in &self.accounting.outcomes {
            let accepted = match outcome {
                Outcome::Lost { cause, .. } => expect.allow_loss.iter().any(|allowed| allowed == cause),
                Outcome::InFlight(_) => continue,
                Outcome::LostSilently => false,
            };
            if accepted {
                accepted_count += tally.count;
                continue;
            }
            unaccepted += tally.count;
            if *outcome == Outcome::LostSilently {
                // Name the part: the last custodian that released them, and its next hop.
                for ((silent_signal, last), tally) in &self.accounting.silent_by_last_custodian {
                    if silent_signal != signal {
                        continue;
                    }
                    let _ = match last {
                        Some(custodian) => writeln!(
                            problems,
                            "    {} {signal:?} records{}{} lost silently (no part recorded a cause): last custodian \
                             {custodian} handed them on, next hop {} never held them; e.g. ids {}",
                            tally.count,
                            window(tally),
                            born(tally),
                            next_hop(custodian.part),
                            examples(&tally.examples)
                        ),
                        None => writeln!(
                            problems,
                            "    {} {signal:?} records{}{} lost silently: no part ever held them; e.g. ids {}",
                            tally.count,
                            window(tally),
                            born(tally),
                            examples(&tally.examples)
                        ),
                    };
                }
            } else {
                let _ = writeln!(
                    problems,
                    "    {} {signal:?} records{}{} {outcome}; e.g. ids {}",
                    tally.count,
                    window(tally),
                    born(tally),
                    examples(&tally.examples)
                );
            }
        }
        let silent = self.accounting.outcomes.keys().any(|(_, outcome)| *outcome == Outcome::LostSilently);
        let over_budget = expect.lost.is_some_and(|lost| accepted_count > lost);
        let allowed: Vec<&str> = expect.allow_loss.iter().map(|cause| cause.as_str()).collect();
        let accepted_text = match expect.lost {
            Some(lost) => format!("{accepted_count} lost with an accepted cause {allowed:?} (allowed {lost})"),
            None if allowed.is_empty() => "no loss accepted".to_string(),
            None => format!("{accepted_count} lost with an accepted cause {allowed:?}"),
        };
        checks.push(Check {
            name: "delivery",
            passed: unaccepted == 0 && !over_budget,
            detail: if unaccepted == 0 && !over_budget {
                format!("every record delivered or lost with an accepted cause; {accepted_text}")
            } else if unaccepted == 0 {
                format!("more records lost than the scenario allows: {accepted_text}")
            } else {
                format!(
                    "{unaccepted} records undelivered without an accepted cause{} ({accepted_text}):\n{}",
                    if silent { "; a silent loss always fails" } else { "" },
                    problems.trim_end()
                )
            },
        });

        // Liveness: after the drain (faults healed) nothing is left in flight.
        let mut in_flight = 0u64;
        let mut holders = String::new();
        for ((signal, outcome), tally) in &self.accounting.outcomes {
            if let Outcome::InFlight(custodian) = outcome {
                in_flight += tally.count;
                let _ = write!(
                    holders,
                    "\n    {} {signal:?} records{} held by {custodian}; e.g. ids {}",
                    tally.count,
                    window(tally),
                    examples(&tally.examples)
                );
            }
        }
        checks.push(Check {
            name: "liveness",
            passed: in_flight == 0,
            detail: if in_flight == 0 {
                format!("nothing in flight after the {} drain", format_duration(scenario.drain))
            } else {
                format!(
                    "{in_flight} records still in flight after the {} drain (faults healed); is the drain long \
                     enough, or is a part stuck?{holders}",
                    format_duration(scenario.drain)
                )
            },
        });

        // Duplicates.
        let (delivered, duplicated) = self
            .accounting
            .totals
            .values()
            .fold((0, 0), |(d, u), totals| (d + totals.delivered, u + totals.duplicated));
        let ratio = if delivered == 0 { 0.0 } else { duplicated as f64 / delivered as f64 };
        checks.push(Check {
            name: "duplicates",
            passed: ratio <= expect.max_duplicate_ratio,
            detail: format!(
                "{duplicated} of {delivered} records duplicated ({ratio:.4}, allowed {})",
                expect.max_duplicate_ratio
            ),
        });

        checks.push(self.jobs_check(scenario));

        if expect.correlation == CorrelationExpectation::Complete {
            let mut detail = format!(
                "{} jobs, {} traces, {} spans, {} logs ({} exempt)",
                self.correlation.jobs_count,
                self.correlation.traces_count,
                self.correlation.spans_count,
                self.correlation.logs_count,
                self.correlation.logs_exempt_count
            );
            for (rule, broken) in &self.correlation.broken {
                let _ = write!(
                    detail,
                    "\n    broken {} times: {}; e.g. {}",
                    broken.count,
                    rule.describe(),
                    broken.examples.join("; ")
                );
            }
            checks.push(Check { name: "correlation", passed: self.correlation.is_complete(), detail });
        }

        for (name, budget, measured) in [
            ("latency_p99", expect.latency_p99, self.log_latency.p99_micros),
            ("latency_max", expect.latency_max, self.log_latency.max_micros),
        ] {
            if let Some(budget) = budget {
                let measured = Duration::from_micros(measured);
                checks.push(Check {
                    name,
                    passed: measured <= budget,
                    detail: format!("log latency {} vs budget {}", format_duration(measured), format_duration(budget)),
                });
            }
        }

        if let Some(budget) = expect.max_recovery {
            checks.push(self.recovery_check(budget));
        }

        if let Some(budget) = expect.min_throughput {
            match self.log_throughput.min_window() {
                Some((index, per_second)) => checks.push(Check {
                    name: "throughput",
                    passed: per_second >= budget.per_second,
                    detail: format!(
                        "slowest 10s window of load {} stored {per_second:.1} logs/s at dash0 vs budget {budget}",
                        self.log_throughput.describe_window(index)
                    ),
                }),
                None => checks.push(Check {
                    name: "throughput",
                    passed: false,
                    detail: format!(
                        "no 10s window of load to judge against {budget}: dash0 stored {} logs during the {} of load",
                        self.log_throughput.counts.iter().take(self.log_throughput.judged_until).sum::<u64>(),
                        format_duration(scenario.duration)
                    ),
                }),
            }
        }

        if !expect.max_occupancy.is_empty() {
            let mut over = String::new();
            let mut peaks = String::new();
            for (part, &limit) in &expect.max_occupancy {
                let peak = self.occupancy.iter().filter(|(custodian, _)| custodian.part == *part).max_by_key(
                    |(custodian, occupancy)| (occupancy.peak_count, std::cmp::Reverse((*custodian).clone())),
                );
                let Some((custodian, occupancy)) = peak else { continue };
                let _ = write!(peaks, " {custodian} {}/{limit}", occupancy.peak_count);
                for (custodian, occupancy) in
                    self.occupancy.iter().filter(|(c, o)| c.part == *part && o.peak_count > limit)
                {
                    let _ = write!(
                        over,
                        "\n    {custodian} held {} records at its peak, limit {limit}",
                        occupancy.peak_count
                    );
                }
            }
            checks.push(Check {
                name: "occupancy",
                passed: over.is_empty(),
                detail: if over.is_empty() {
                    format!("peak records held per part within max_occupancy:{peaks}")
                } else {
                    format!("a hop buffered more than max_occupancy allows:{over}")
                },
            });
        }

        checks.extend(self.bounds_checks(scenario));

        if expect.metrics == MetricsExpectation::Agree {
            let disagreements = metric_check::check(&self.metric_totals, &expected_metrics(&self.jobs));
            checks.push(Check {
                name: "metrics",
                passed: disagreements.is_empty(),
                detail: if disagreements.is_empty() {
                    format!(
                        "dash0's totals agree with the jobs that ran: {} accepted, {} runs completed",
                        self.jobs.submitted, self.jobs.runs
                    )
                } else {
                    let lines: Vec<String> = disagreements.iter().map(|d| format!("\n    {d}")).collect();
                    format!(
                        "dash0's metric totals disagree with the jobs that ran (cumulative: each stream's largest point; delta: every point summed):{}",
                        lines.concat()
                    )
                },
            });
        }
        checks
    }

    /// Liveness of the job flow, judged from the job book: after the drain every job the API
    /// accepted has completed, and no job ran more often than once (beyond what the scenario
    /// allows). Telemetry lost about the jobs is the delivery check's; the detail says how
    /// much of it Dash0 lacks.
    fn jobs_check(&self, scenario: &Scenario) -> Check {
        let expect = &scenario.expect;
        let jobs = &self.jobs;
        let unfinished_ok = jobs.unfinished() <= expect.max_jobs_unfinished;
        let duplicated_ok = jobs.duplicated <= expect.max_jobs_duplicated;
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
        let passed = unfinished_ok && duplicated_ok && jobs.untracked == 0;
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
        for problem in problems {
            let _ = write!(detail, "\n    {problem}");
        }
        Check { name: "jobs", passed, detail }
    }

    /// Every fault recovered within `budget`; a failure names the fault, its window and the
    /// signal that lagged.
    fn recovery_check(&self, budget: Duration) -> Check {
        let slow: Vec<&Recovery> = self.recoveries.iter().filter(|r| r.worst().is_some_and(|w| w > budget)).collect();
        let worst = self
            .recoveries
            .iter()
            .filter_map(|r| r.worst().map(|w| (w, r)))
            .max_by_key(|(w, r)| (*w, std::cmp::Reverse(r.fault_index)));
        let detail = if slow.is_empty() {
            match worst {
                Some((time, r)) => format!(
                    "slowest recovery {} after fault[{}] {} (budget {})",
                    format_duration(time),
                    r.fault_index,
                    r.kind,
                    format_duration(budget)
                ),
                None => format!("no fault held back any record (budget {})", format_duration(budget)),
            }
        } else {
            let mut text =
                format!("{} faults took longer than {} to recover from:", slow.len(), format_duration(budget));
            for r in &slow {
                let _ = write!(
                    text,
                    "\n    fault[{}] {} over {}..{}: logs caught up {} after it ended, spans {}; what emitted in the window waited at which hop? (see the peak occupancy)",
                    r.fault_index,
                    r.kind,
                    format_duration(r.start),
                    format_duration(r.end),
                    r.logs.map_or("never".to_string(), format_duration),
                    r.spans.map_or("never".to_string(), format_duration)
                );
            }
            text
        };
        Check { name: "recovery", passed: slow.is_empty(), detail }
    }

    /// `bounds` (always: no buffer admitted a write its bound forbids; the detail shows each
    /// buffer's peak against its limit) and `buffer_fill` (with `[expect] max_buffer_fill`).
    fn bounds_checks(&self, scenario: &Scenario) -> Vec<Check> {
        use super::bounds;
        let (passed, detail) = bounds::check_bounds(&self.buffers);
        let mut checks = vec![Check { name: "bounds", passed, detail }];
        if let Some((passed, detail)) = bounds::check_fill(&self.buffers, &scenario.expect.max_buffer_fill) {
            checks.push(Check { name: "buffer_fill", passed, detail });
        }
        checks
    }

    /// The verdict as the text `obsim run` prints.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "scenario {}  seed {}", self.scenario, self.seed);
        let _ =
            writeln!(out, "simulated {} ({} events)", format_duration(self.outcome.elapsed), self.outcome.events_count);
        for (signal, totals) in &self.accounting.totals {
            // Lost, lost silently and in flight apart: records still held at the end are
            // not lost (result.json counts them as in flight), and a silent loss is a
            // harness bug, not a loss with a cause.
            let (mut lost, mut silent, mut in_flight) = (0u64, 0u64, 0u64);
            for (outcome, tally) in self.accounting.undelivered(*signal) {
                match outcome {
                    Outcome::Lost { .. } => lost += tally.count,
                    Outcome::LostSilently => silent += tally.count,
                    Outcome::InFlight(_) => in_flight += tally.count,
                }
            }
            let _ = writeln!(
                out,
                "{:<5} emitted {}  delivered {}  duplicated {}  lost {lost}  lost silently {silent}  in flight {in_flight}",
                format!("{signal:?}").to_lowercase(),
                totals.emitted,
                totals.delivered,
                totals.duplicated,
            );
            for (outcome, tally) in self.accounting.undelivered(*signal) {
                let _ = writeln!(out, "      {:>8}  {outcome}{}", tally.count, born(tally));
            }
        }
        for (name, latency) in [("log", self.log_latency), ("span", self.span_latency)] {
            let _ = writeln!(
                out,
                "{name} latency p50 {}  p90 {}  p99 {}  p99.9 {}  max {}",
                millis(latency.p50_micros),
                millis(latency.p90_micros),
                millis(latency.p99_micros),
                millis(latency.p999_micros),
                millis(latency.max_micros)
            );
        }
        for r in &self.recoveries {
            let _ = writeln!(
                out,
                "recovery fault[{}] {} {}..{}: logs {}, spans {}",
                r.fault_index,
                r.kind,
                format_duration(r.start),
                format_duration(r.end),
                r.logs.map_or("-".to_string(), format_duration),
                r.spans.map_or("-".to_string(), format_duration)
            );
        }
        let _ = writeln!(out, "log throughput {:.1}/s", self.log_throughput_per_second);
        if let Some((index, per_second)) = self.log_throughput.min_window() {
            let _ = writeln!(
                out,
                "log throughput per 10s window: min {per_second:.1}/s in {}",
                self.log_throughput.describe_window(index)
            );
        }
        let mut peaks: BTreeMap<Part, (u64, &Custodian)> = BTreeMap::new();
        for (custodian, occupancy) in &self.occupancy {
            let peak = peaks.entry(custodian.part).or_insert((occupancy.peak_count, custodian));
            if occupancy.peak_count > peak.0 {
                *peak = (occupancy.peak_count, custodian);
            }
        }
        let peaks: Vec<String> = peaks.values().map(|(count, custodian)| format!("{custodian} {count}")).collect();
        let _ = writeln!(out, "peak records held per part: {}", peaks.join(", "));
        for check in &self.checks {
            let _ = writeln!(out, "{} {:<12} {}", if check.passed { "ok  " } else { "FAIL" }, check.name, check.detail);
        }
        let _ = writeln!(out, "event-log hash {}", self.outcome.hash);
        let _ = writeln!(out, "verdict {}", if self.passed() { "PASS" } else { "FAIL" });
        let _ = writeln!(out, "replay: {}", self.replay_command());
        out
    }
}

fn millis(micros: u64) -> String {
    format!("{:.1}ms", micros as f64 / 1_000.0)
}

/// Example ids as text.
fn examples(ids: &[crate::record::RecordId]) -> String {
    ids.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
}

/// How many born-host names a message lists before summing up the rest.
const BORN_HOSTS_LISTED: usize = 5;

/// Where a tally's records were born, for a message: ` born on openai-1`, or with several
/// hosts ` born on comfyui-1 (12), openai-1 (3)` (the first few, then how many more).
fn born(tally: &crate::ledger::Tally) -> String {
    match tally.born_counts.len() {
        0 => String::new(),
        1 => format!(" born on {}", tally.born_counts.keys().next().expect("one host")),
        hosts => {
            let listed: Vec<String> = tally
                .born_counts
                .iter()
                .take(BORN_HOSTS_LISTED)
                .map(|(host, count)| format!("{host} ({count})"))
                .collect();
            let more = hosts.saturating_sub(BORN_HOSTS_LISTED);
            let rest = if more > 0 { format!(" and {more} more hosts") } else { String::new() };
            format!(" born on {}{rest}", listed.join(", "))
        }
    }
}

/// When a tally's records were emitted, for a failure message: ` emitted 1m2s..1m40s`.
fn window(tally: &crate::ledger::Tally) -> String {
    match tally.emitted_window_nanos {
        Some((first, last)) => format!(
            " emitted {}..{}",
            format_duration(Duration::from_millis(first / 1_000_000)),
            format_duration(Duration::from_millis(last / 1_000_000))
        ),
        None => String::new(),
    }
}
