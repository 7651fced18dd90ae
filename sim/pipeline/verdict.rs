//! The verdict of one run: what was emitted, delivered, duplicated and lost (by cause),
//! correlation, latency and throughput, each expectation of the scenario checked, and the
//! command that replays the run.
//!
//! Why text first: the verdict is what an engineer reads in CI output when a scenario fails;
//! it must say what broke, where, and how to replay it without opening another file.

use std::fmt::Write as _;
use std::time::Duration;

use crate::check::correlation::{self, CorrelationReport};
use crate::ledger::{Accounting, Outcome, Signal};
use crate::record::LogRecord;
use crate::scenario::{CorrelationExpectation, Scenario};
use crate::units::format_duration;
use crate::world::RunOutcome;

use super::Pipeline;

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
    pub jobs: JobCompletion,
    pub checks: Vec<Check>,
}

/// Jobs seen submitted and completed, from the spans Dash0 stored.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JobCompletion {
    pub submitted: u64,
    pub completed: u64,
    /// A few jobs submitted but never completed.
    pub unfinished_examples: Vec<String>,
}

impl JobCompletion {
    /// Counts `job.submitted` and `job.completed` spans per job (duplicates counted once).
    fn of(spans: &[crate::record::Span]) -> JobCompletion {
        let mut submitted = std::collections::BTreeSet::new();
        let mut completed = std::collections::BTreeSet::new();
        for span in spans {
            match span.name.as_str() {
                "job.submitted" => {
                    submitted.insert(span.job_id);
                }
                "job.completed" => {
                    completed.insert(span.job_id);
                }
                _ => {}
            }
        }
        JobCompletion {
            submitted: submitted.len() as u64,
            completed: submitted.intersection(&completed).count() as u64,
            unfinished_examples: submitted.difference(&completed).take(5).map(ToString::to_string).collect(),
        }
    }
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
        let jobs = JobCompletion::of(&spans);
        let log_latency = Latency::of(&pipeline.ledger.latency_micros(Signal::Log));
        let span_latency = Latency::of(&pipeline.ledger.latency_micros(Signal::Span));
        let delivered_logs = accounting.totals.get(&Signal::Log).map_or(0, |totals| totals.delivered);
        let log_throughput_per_second = delivered_logs as f64 / scenario.duration.as_secs_f64().max(1e-9);
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
            jobs,
            checks: Vec::new(),
        };
        verdict.checks = verdict.evaluate(scenario);
        verdict
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

        // Delivery: every record delivered, or lost with an accepted cause.
        let mut unaccepted = 0u64;
        let mut problems = String::new();
        for ((signal, outcome), tally) in &self.accounting.outcomes {
            let accepted = match outcome {
                Outcome::Lost { cause, .. } => expect.allow_loss.iter().any(|allowed| allowed == cause),
                Outcome::InFlight(_) | Outcome::LostSilently => false,
            };
            if !accepted {
                unaccepted += tally.count;
                let examples: Vec<String> = tally.examples.iter().map(ToString::to_string).collect();
                let _ = writeln!(
                    problems,
                    "    {} {signal:?} records {outcome}; e.g. ids {}",
                    tally.count,
                    examples.join(", ")
                );
            }
        }
        let silent = self.accounting.outcomes.keys().any(|(_, outcome)| *outcome == Outcome::LostSilently);
        checks.push(Check {
            name: "delivery",
            passed: unaccepted <= expect.lost && !silent,
            detail: if problems.is_empty() {
                "every record delivered or lost with an accepted cause".to_string()
            } else {
                format!(
                    "{unaccepted} records undelivered without an accepted cause (allowed {}, accepted causes {:?}){}:\n{}",
                    expect.lost,
                    expect.allow_loss,
                    if silent { "; a silent loss always fails" } else { "" },
                    problems.trim_end()
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
            detail: format!("{duplicated} of {delivered} records duplicated ({ratio:.4}, allowed {})", expect.max_duplicate_ratio),
        });

        // Liveness of the job flow: after the drain every submitted job has completed.
        checks.push(Check {
            name: "jobs",
            passed: self.jobs.completed == self.jobs.submitted,
            detail: if self.jobs.unfinished_examples.is_empty() {
                format!("{} jobs submitted, all completed", self.jobs.submitted)
            } else {
                format!(
                    "{} of {} submitted jobs never completed (e.g. {}); is the drain long enough for the machines' capacity?",
                    self.jobs.submitted - self.jobs.completed,
                    self.jobs.submitted,
                    self.jobs.unfinished_examples.join(", ")
                )
            },
        });

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
                let _ = write!(detail, "\n    broken {} times: {}; e.g. {}", broken.count, rule.describe(), broken.examples.join("; "));
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
        checks
    }

    /// The verdict as the text `obsim run` prints.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "scenario {}  seed {}", self.scenario, self.seed);
        let _ = writeln!(
            out,
            "simulated {} ({} events)",
            format_duration(self.outcome.elapsed),
            self.outcome.events_count
        );
        for (signal, totals) in &self.accounting.totals {
            let lost: u64 = self.accounting.undelivered(*signal).map(|(_, tally)| tally.count).sum();
            let _ = writeln!(
                out,
                "{:<5} emitted {}  delivered {}  duplicated {}  lost {}",
                format!("{signal:?}").to_lowercase(),
                totals.emitted,
                totals.delivered,
                totals.duplicated,
                lost
            );
            for (outcome, tally) in self.accounting.undelivered(*signal) {
                let _ = writeln!(out, "      {:>8}  {outcome}", tally.count);
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
        let _ = writeln!(out, "log throughput {:.1}/s", self.log_throughput_per_second);
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
