//! The check's text: a block per case that diverged or went unchecked, and the totals.
//!
//! Why the first event's time and host lead: that is where the search for the cause
//! starts (the host's parts, at that simulated instant); both runs' texts follow so the
//! difference is visible without opening the files, and the replay command last, to copy.

use std::fmt::Write as _;

use super::{CaseCheck, CaseStatus, DeterminismReport, Divergence, LoggedEvent, PairDivergence, RunLabel};

/// The block for `case`, or `None` for a case whose runs were equal.
pub fn render_case(case: &CaseCheck) -> Option<String> {
    let mut text = String::new();
    let name = format!("{} seed {}", case.case.base_path.display(), case.case.seed);
    match &case.status {
        CaseStatus::Equal { .. } => return None,
        CaseStatus::Unchecked { label, reason, kept } => {
            let _ = writeln!(text, "UNCHECKED {name}: the {label} run gave nothing to compare: {reason}");
            let _ = writeln!(text, "  kept: {}", kept.display());
        }
        CaseStatus::Diverged { pairs, kept } => {
            for pair in pairs {
                let _ = writeln!(text, "DIVERGED {name}: {}", pair_header(pair));
                write_divergence(&mut text, pair);
            }
            let _ = writeln!(text, "  kept: {} (each run's case.toml, events.jsonl, result.txt)", kept.display());
        }
    }
    let _ = writeln!(text, "  replay: {}", case.replay);
    Some(text)
}

/// Which runs parted, and in what.
fn pair_header(pair: &PairDivergence) -> String {
    let runs = format!("the {} and {} runs", pair.first, pair.second);
    let binaries =
        if pair.second == RunLabel::Other { "(this binary and --compare-with's)" } else { "(separate processes)" };
    match &pair.divergence {
        Divergence::Case { line_index, .. } => {
            format!("{runs} {binaries} drew different cases (line {})", line_index + 1)
        }
        Divergence::Event { event_index, .. } => format!("{runs} {binaries} part at event {}", event_index + 1),
        Divergence::PastCompared { compared_count, .. } => {
            format!("{runs} {binaries} agree on the {compared_count} events compared, then part")
        }
        Divergence::Result { line_index, .. } => {
            format!("{runs} {binaries} log the same events but judge differently (result line {})", line_index + 1)
        }
    }
}

/// The lines under a pair's header: where, and each run's side.
fn write_divergence(text: &mut String, pair: &PairDivergence) {
    let width = pair.first.as_str().len().max(pair.second.as_str().len()) + 1;
    let side = |label: RunLabel| format!("{:<width$}", format!("{label}:"));
    match &pair.divergence {
        Divergence::Case { first, second, .. } | Divergence::Result { first, second, .. } => {
            let _ = writeln!(text, "  {} {}", side(pair.first), first.as_deref().unwrap_or("(file ended)"));
            let _ = writeln!(text, "  {} {}", side(pair.second), second.as_deref().unwrap_or("(file ended)"));
        }
        Divergence::Event { first, second, first_cut, second_cut, .. } => {
            if let Some(at) = first.as_ref().or(second.as_ref()) {
                let _ = writeln!(text, "  at {} on {}", seconds(at.true_nanos), at.host);
            }
            let _ = writeln!(text, "  {} {}", side(pair.first), event_text(first.as_ref(), *first_cut));
            let _ = writeln!(text, "  {} {}", side(pair.second), event_text(second.as_ref(), *second_cut));
        }
        Divergence::PastCompared { first_hash, second_hash, .. } => {
            let _ = writeln!(text, "  event-log hashes {first_hash} and {second_hash}");
            let _ = writeln!(text, "  raise --event-bytes-limit to compare further");
        }
    }
}

/// An event as the report shows it, or why there is none.
fn event_text(event: Option<&LoggedEvent>, cut: bool) -> String {
    match (event, cut) {
        (Some(event), _) => event.to_string(),
        (None, true) => "(past --event-bytes-limit: this run's event here is longer)".to_string(),
        (None, false) => "(its log ends here)".to_string(),
    }
}

/// Nanoseconds as seconds with milliseconds, as the event log prints them.
fn seconds(nanos: u64) -> String {
    format!("{}.{:03}s", nanos / 1_000_000_000, (nanos % 1_000_000_000) / 1_000_000)
}

/// The totals: cases checked of planned, equal, diverged, unchecked.
pub fn render_summary(report: &DeterminismReport) -> String {
    let checked = report.cases.len();
    let equal = checked - report.diverged_count() - report.unchecked_count();
    let runs = match &report.compare_with {
        Some(other) => format!("3 runs each: twice this binary, once {}", other.display()),
        None => "2 runs each, in separate processes".to_string(),
    };
    let mut text = format!(
        "determinism: {checked} of {} cases checked ({runs}): {equal} equal, {} diverged, {} unchecked\n",
        report.planned_count,
        report.diverged_count(),
        report.unchecked_count()
    );
    if (checked as u64) < report.planned_count {
        text.push_str("stopped at --time: the cases not started are not checked\n");
    }
    text
}
