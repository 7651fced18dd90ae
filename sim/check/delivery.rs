//! The `delivery` check: every record delivered, or lost with an accepted cause (at most
//! `[expect] lost` of them when given). Records still held at the end are the liveness
//! check's. A loss with another cause, or none, always fails; a silent loss names the last
//! custodian that handed the records on and its next hop.

use std::fmt::Write as _;
use std::time::Duration;

use super::measured::Measured;
use super::name::CheckName;
use super::verdict::Check;
use crate::ledger::{Outcome, Tally};
use crate::record::RecordId;
use crate::scenario::Expect;
use crate::units::format_duration;
use crate::vocab::{Part, Signal};

/// Where records go after `part` hands them on, for naming the part that lost records a
/// custodian released (a silent loss happens at the next hop or in between).
fn next_hop(part: Part) -> String {
    crate::vocab::pipeline::next_hops_text(part)
}

/// What the records not delivered amount to, against what `[expect]` accepts.
#[derive(Default)]
struct Undelivered {
    /// Records lost without an accepted cause (silent losses included).
    unaccepted: u64,
    /// Records lost with an accepted cause.
    accepted: u64,
    /// One line per unaccepted tally.
    problems: String,
}

/// The `delivery` check (always on).
pub fn check(run: &Measured, expect: &Expect) -> Option<Check> {
    let undelivered = tally_undelivered(run, expect);
    let silent = run.accounting.outcomes.keys().any(|(_, outcome)| *outcome == Outcome::LostSilently);
    let over_budget = expect.lost.is_some_and(|lost| undelivered.accepted > lost);
    let accepted_count = undelivered.accepted;
    let allowed: Vec<&str> = expect.allow_loss.iter().map(|cause| cause.as_str()).collect();
    let accepted_text = match expect.lost {
        Some(lost) => format!("{accepted_count} lost with an accepted cause {allowed:?} (allowed {lost})"),
        None if allowed.is_empty() => "no loss accepted".to_string(),
        None => format!("{accepted_count} lost with an accepted cause {allowed:?}"),
    };
    let passed = undelivered.unaccepted == 0 && !over_budget;
    let detail = if passed {
        format!("every record delivered or lost with an accepted cause; {accepted_text}")
    } else if undelivered.unaccepted == 0 {
        format!("more records lost than the scenario allows: {accepted_text}")
    } else {
        format!(
            "{} records undelivered without an accepted cause{} ({accepted_text}):\n{}",
            undelivered.unaccepted,
            if silent { "; a silent loss always fails" } else { "" },
            undelivered.problems.trim_end()
        )
    };
    Some(Check { name: CheckName::Delivery, passed, detail })
}

/// Sorts the run's undelivered records into accepted and unaccepted losses; in flight is
/// the liveness check's.
fn tally_undelivered(run: &Measured, expect: &Expect) -> Undelivered {
    let mut undelivered = Undelivered::default();
    for ((signal, outcome), tally) in &run.accounting.outcomes {
        let accepted = match outcome {
            Outcome::Lost { cause, .. } => expect.allow_loss.iter().any(|allowed| allowed == cause),
            Outcome::InFlight(_) => continue,
            Outcome::LostSilently => false,
        };
        if accepted {
            undelivered.accepted += tally.count;
            continue;
        }
        undelivered.unaccepted += tally.count;
        if *outcome == Outcome::LostSilently {
            describe_silent(run, *signal, &mut undelivered.problems);
        } else {
            let _ = writeln!(
                undelivered.problems,
                "    {} {signal:?} records{}{} {outcome}; e.g. ids {}",
                tally.count,
                window(tally),
                born(tally),
                examples(&tally.examples)
            );
        }
    }
    undelivered
}

/// One line per last custodian of `signal`'s silent losses: the part that handed them on
/// and its next hop, which never held them.
fn describe_silent(run: &Measured, signal: Signal, problems: &mut String) {
    for ((silent_signal, last), tally) in &run.accounting.silent_by_last_custodian {
        if *silent_signal != signal {
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
}

/// Example ids as text.
pub(super) fn examples(ids: &[RecordId]) -> String {
    ids.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
}

/// How many born-host names a message lists before summing up the rest.
const BORN_HOSTS_LISTED: usize = 5;

/// Where a tally's records were born, for a message: ` born on openai-1`, or with several
/// hosts ` born on comfyui-1 (12), openai-1 (3)` (the first few, then how many more).
pub(super) fn born(tally: &Tally) -> String {
    born_text(tally.born_counts.iter().map(|(host, count)| (&**host, *count)))
}

/// `born` over (host, count) pairs in host order.
pub(super) fn born_text<'a>(born_counts: impl ExactSizeIterator<Item = (&'a str, u64)>) -> String {
    match born_counts.len() {
        0 => String::new(),
        1 => format!(" born on {}", born_counts.map(|(host, _)| host).next().expect("one host")),
        hosts => {
            let listed: Vec<String> =
                born_counts.take(BORN_HOSTS_LISTED).map(|(host, count)| format!("{host} ({count})")).collect();
            let more = hosts.saturating_sub(BORN_HOSTS_LISTED);
            let rest = if more > 0 { format!(" and {more} more hosts") } else { String::new() };
            format!(" born on {}{rest}", listed.join(", "))
        }
    }
}

/// When a tally's records were emitted, for a failure message: ` emitted 1m2s..1m40s`.
pub(super) fn window(tally: &Tally) -> String {
    match tally.emitted_window_nanos {
        Some((first, last)) => format!(
            " emitted {}..{}",
            format_duration(Duration::from_millis(first / 1_000_000)),
            format_duration(Duration::from_millis(last / 1_000_000))
        ),
        None => String::new(),
    }
}
