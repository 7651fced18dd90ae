//! `summary.md`: the run in a page of Markdown — the verdict, the failed checks with their
//! details, totals, the latency table, the faults and the replay command.
//!
//! Why Markdown next to the HTML: it is what a CI job pastes into a pull-request comment or
//! a chat, and what `cat` shows on a machine without a browser. Built from `RunResult`, like
//! the HTML, so every report of a run says the same thing.

use std::fmt::Write as _;

use super::html::{latency_text, time_text};
use crate::check::result::{RunResult, part_order};

/// Text safe inside a Markdown table cell (one line, no column breaks).
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

/// The cause `result.json` gives silent losses.
const SILENT_CAUSE: &str = "lost_silently";

/// Records of `signal` lost with a cause: `lost_count` counts silent losses too.
pub(crate) fn lost_with_cause_count(signal: &crate::check::result::SignalResult) -> u64 {
    debug_assert!(signal.lost_silently_count <= signal.lost_count, "silent losses are part of lost_count");
    signal.lost_count.saturating_sub(signal.lost_silently_count)
}

/// `summary.md` of one run: one section after another, top to bottom.
pub fn render(result: &RunResult) -> String {
    let mut out = String::new();
    write_header(&mut out, result);
    write_checks(&mut out, result);
    write_records(&mut out, result);
    write_latency(&mut out, result);
    write_throughput_and_peaks(&mut out, result);
    write_faults(&mut out, result);
    out
}

/// The title (scenario, seed, verdict), the run's size and hash, and the replay command:
/// what a reader needs to know which run this is and how to get it back.
fn write_header(out: &mut String, result: &RunResult) {
    let _ = writeln!(
        out,
        "# {} — seed {}: {}\n",
        result.scenario,
        result.seed,
        if result.passed { "PASS" } else { "FAIL" }
    );
    let _ = writeln!(
        out,
        "Simulated {} ({} load + {} drain), {} events, event-log hash `{}`.\n",
        time_text(result.simulated_micros),
        time_text(result.duration_micros),
        time_text(result.drain_micros),
        result.event_log.events_count,
        result.event_log.hash
    );
    let _ = writeln!(out, "Replay: `{}`\n", result.replay);
}

/// The failed checks with their details, or one line naming every check that passed.
fn write_checks(out: &mut String, result: &RunResult) {
    let failed: Vec<_> = result.checks.iter().filter(|check| !check.passed).collect();
    if failed.is_empty() {
        let passed: Vec<&str> = result.checks.iter().map(|check| check.name.as_str()).collect();
        let _ = writeln!(out, "All {} checks passed: {}.\n", passed.len(), passed.join(", "));
    } else {
        let _ = writeln!(out, "## Failed checks\n");
        for check in failed {
            let _ = writeln!(out, "### {}\n\n```text\n{}\n```\n", check.name, check.detail);
        }
    }
}

/// The records table per signal, then a list of where undelivered records went.
fn write_records(out: &mut String, result: &RunResult) {
    let _ = writeln!(out, "## Records\n");
    // Lost with a cause, lost silently and in flight in columns of their own: records held
    // at the end are not lost, and a silent loss is a harness bug, not a loss with a cause.
    let _ = writeln!(
        out,
        "| signal | emitted | delivered | duplicated | lost with a cause | lost silently | in flight |\n|---|---:|---:|---:|---:|---:|---:|"
    );
    for (name, signal) in [("log", &result.signals.log), ("span", &result.signals.span)] {
        let _ = writeln!(
            out,
            "| {name} | {} | {} | {} | {} | {} | {} |",
            signal.emitted_count,
            signal.delivered_count,
            signal.duplicated_count,
            lost_with_cause_count(signal),
            signal.lost_silently_count,
            signal.in_flight_count
        );
    }
    let undelivered = undelivered_text(result);
    if !undelivered.is_empty() {
        let _ = write!(out, "\n{undelivered}");
    }
    out.push('\n');
}

/// One bullet per loss (with its cause and place, or marked silent) and per group of records
/// still held at the end; empty when every record was delivered.
fn undelivered_text(result: &RunResult) -> String {
    let mut undelivered = String::new();
    for (name, signal) in [("log", &result.signals.log), ("span", &result.signals.span)] {
        for loss in &signal.losses {
            let place = match (&loss.part, &loss.host) {
                (Some(part), Some(host)) => format!("{part}@{host}"),
                _ => "no part ever held them".to_string(),
            };
            if loss.cause == SILENT_CAUSE {
                let _ = writeln!(
                    undelivered,
                    "- {} {name} records lost silently (no part recorded a cause), last held by {place}",
                    loss.count
                );
            } else {
                let _ = writeln!(undelivered, "- {} {name} records lost: `{}` at {place}", loss.count, loss.cause);
            }
        }
        for held in &signal.in_flight {
            let _ = writeln!(undelivered, "- {} {name} records still held by {}@{}", held.count, held.part, held.host);
        }
    }
    undelivered
}

/// The latency percentiles per signal (emit → Dash0, true time).
fn write_latency(out: &mut String, result: &RunResult) {
    let _ = writeln!(out, "## Latency (emit → Dash0, true time)\n");
    let _ = writeln!(out, "| signal | count | p50 | p90 | p99 | p99.9 | max |\n|---|---:|---:|---:|---:|---:|---:|");
    for (name, signal) in [("log", &result.signals.log), ("span", &result.signals.span)] {
        let latency = &signal.latency;
        let _ = writeln!(
            out,
            "| {name} | {} | {} | {} | {} | {} | {} |",
            latency.count,
            latency_text(latency.p50_micros),
            latency_text(latency.p90_micros),
            latency_text(latency.p99_micros),
            latency_text(latency.p999_micros),
            latency_text(latency.max_micros)
        );
    }
}

/// The load-phase throughput with its slowest judged window, and each part's peak
/// occupancy in pipeline order.
fn write_throughput_and_peaks(out: &mut String, result: &RunResult) {
    let throughput = &result.throughput;
    let _ = writeln!(
        out,
        "\nThroughput: {} logs/s over the load phase; slowest judged 10 s window {}.\n",
        throughput.load_per_second,
        match (throughput.min_window_index, throughput.min_window_per_second) {
            (Some(index), Some(rate)) => format!(
                "{rate} logs/s in [{}, {})",
                time_text(index * throughput.window_micros),
                time_text((index + 1) * throughput.window_micros)
            ),
            _ => "none (no window judged)".to_string(),
        }
    );

    let mut parts: Vec<_> = result.occupancy.parts.iter().collect();
    parts.sort_by_key(|part| part_order(&part.part));
    let peaks: Vec<String> = parts.iter().map(|part| format!("{} {}", part.part, part.peak_count)).collect();
    let _ = writeln!(
        out,
        "Peak records held per part (all hosts): {}.\n",
        if peaks.is_empty() { "none".to_string() } else { peaks.join(", ") }
    );
}

/// The scheduled faults, one table row each, or a line saying there were none.
fn write_faults(out: &mut String, result: &RunResult) {
    let _ = writeln!(out, "## Faults\n");
    if result.faults.is_empty() {
        let _ = writeln!(out, "No faults scheduled.");
        return;
    }
    let _ = writeln!(out, "| # | kind | start | end | fault |\n|---:|---|---|---|---|");
    for fault in &result.faults {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {}{} | `{}` |",
            fault.index,
            fault.kind,
            time_text(fault.start_micros),
            time_text(fault.end_micros),
            match (fault.ends_at_heal, fault.never_healed) {
                (true, _) => " (drain heals)",
                (false, true) => " (never healed)",
                (false, false) => "",
            },
            cell(&fault.description)
        );
    }
}
