//! The verdict as text, rendered from the result model (`check::result`): what `obsim run`
//! prints and what an engineer reads in CI output when a scenario fails.
//!
//! Why from the model: the text, result.json, summary.md, report.html and the sweep index
//! then show the same numbers; nothing here measures or judges.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use super::delivery::born_text;
use super::result::{RunResult, SignalResult, part_order};
use crate::units::format_duration;

/// One printed loss line: records, born hosts with their counts, and the custodian.
type LossLine<'a> = (u64, BTreeMap<String, u64>, &'a str);
/// Microseconds as milliseconds with one decimal: `12.3ms`.
fn millis(micros: u64) -> String {
    format!("{:.1}ms", micros as f64 / 1_000.0)
}

/// Microseconds as a duration in text: `1m30s`.
fn duration_text(micros: u64) -> String {
    format_duration(Duration::from_micros(micros))
}

/// ` born on …` from (host, count) pairs in host order.
fn born(born_counts: &BTreeMap<String, u64>) -> String {
    born_text(born_counts.iter().map(|(host, count)| (host.as_str(), *count)))
}

impl RunResult {
    /// The verdict as the text `obsim run` prints.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "scenario {}  seed {}", self.scenario, self.seed);
        let _ = writeln!(
            out,
            "simulated {} ({} events)",
            duration_text(self.simulated_micros),
            self.event_log.events_count
        );
        for (name, signal) in [("log", &self.signals.log), ("span", &self.signals.span)] {
            render_signal(&mut out, name, signal);
        }
        for (name, signal) in [("log", &self.signals.log), ("span", &self.signals.span)] {
            let latency = signal.latency;
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
        self.render_recoveries(&mut out);
        self.render_throughput(&mut out);
        self.render_peaks(&mut out);
        for check in &self.checks {
            let _ = writeln!(out, "{} {:<12} {}", if check.passed { "ok  " } else { "FAIL" }, check.name, check.detail);
        }
        let _ = writeln!(out, "event-log hash {}", self.event_log.hash);
        let _ = writeln!(out, "verdict {}", if self.passed { "PASS" } else { "FAIL" });
        let _ = writeln!(out, "replay: {}", self.replay);
        out
    }

    /// One line per fault: how long after it logs and spans caught up.
    fn render_recoveries(&self, out: &mut String) {
        for fault in &self.faults {
            let _ = writeln!(
                out,
                "recovery fault[{}] {} {}..{}: logs {}, spans {}",
                fault.index,
                fault.kind,
                duration_text(fault.start_micros),
                duration_text(fault.recovery_end_micros),
                fault.log_recovery_micros.map_or("-".to_string(), duration_text),
                fault.span_recovery_micros.map_or("-".to_string(), duration_text)
            );
        }
    }

    /// Logs per second of load, and the slowest judged window.
    fn render_throughput(&self, out: &mut String) {
        let throughput = &self.throughput;
        let _ = writeln!(out, "log throughput {:.1}/s", throughput.load_per_second);
        if let (Some(index), Some(per_second)) = (throughput.min_window_index, throughput.min_window_per_second) {
            let start = index * throughput.window_micros;
            let _ = writeln!(
                out,
                "log throughput per 10s window: min {per_second:.1}/s in [{}, {})",
                duration_text(start),
                duration_text(start + throughput.window_micros)
            );
        }
    }

    /// Per part, in pipeline order, the custodian that held the most records at once.
    fn render_peaks(&self, out: &mut String) {
        let mut peaks: BTreeMap<usize, (u64, String)> = BTreeMap::new();
        for custodian in &self.occupancy.custodians {
            let name = format!("{}@{}", custodian.part, custodian.host);
            let peak = peaks.entry(part_order(&custodian.part)).or_insert((custodian.peak_count, name.clone()));
            if custodian.peak_count > peak.0 {
                *peak = (custodian.peak_count, name);
            }
        }
        let peaks: Vec<String> = peaks.values().map(|(count, custodian)| format!("{custodian} {count}")).collect();
        let _ = writeln!(out, "peak records held per part: {}", peaks.join(", "));
    }
}

/// A signal's totals line and one line per way its records went undelivered: held at the
/// end (by custodian), lost with a cause (by cause, then custodian in pipeline order), lost
/// silently. A signal nothing was emitted of has no line.
fn render_signal(out: &mut String, name: &str, signal: &SignalResult) {
    if signal.emitted_count == 0 && signal.delivered_count == 0 && signal.lost_count == 0 {
        return;
    }
    let lost = signal.lost_count.saturating_sub(signal.lost_silently_count);
    let _ = writeln!(
        out,
        "{name:<5} emitted {}  delivered {}  duplicated {}  lost {lost}  lost silently {}  in flight {}",
        signal.emitted_count,
        signal.delivered_count,
        signal.duplicated_count,
        signal.lost_silently_count,
        signal.in_flight_count,
    );
    for held in &signal.in_flight {
        let _ = writeln!(
            out,
            "      {:>8}  in flight at {}@{}{}",
            held.count,
            held.part,
            held.host,
            born(&held.born_counts)
        );
    }
    // Lost with a cause: one line per (cause, custodian), its born hosts summed.
    let mut by_custodian: BTreeMap<(&str, usize, &str), LossLine<'_>> = BTreeMap::new();
    let mut silent_born: BTreeMap<String, u64> = BTreeMap::new();
    for loss in &signal.losses {
        let born_host = loss.born_host.clone().unwrap_or_default();
        if loss.cause == "lost_silently" {
            *silent_born.entry(born_host).or_default() += loss.count;
            continue;
        }
        let part = loss.part.as_deref().unwrap_or_default();
        let key = (loss.cause.as_str(), part_order(part), loss.host.as_deref().unwrap_or_default());
        let row = by_custodian.entry(key).or_insert((0, BTreeMap::new(), part));
        row.0 += loss.count;
        *row.1.entry(born_host).or_default() += loss.count;
    }
    for ((cause, _, host), (count, born_counts, part)) in &by_custodian {
        let _ = writeln!(out, "      {count:>8}  lost: {cause} at {part}@{host}{}", born(born_counts));
    }
    if signal.lost_silently_count > 0 {
        let _ = writeln!(
            out,
            "      {:>8}  lost silently (no part recorded a cause){}",
            signal.lost_silently_count,
            born(&silent_born)
        );
    }
}
