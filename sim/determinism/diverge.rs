//! Where two runs of one case part: the first difference in what they drew, logged or
//! judged.
//!
//! Why streams and not only hashes: a hash says *that* two runs differ; the first event
//! that differs says *where* (simulated time, host, what happened), which is where the
//! search for the cause starts. The comparison reads both files a line at a time, so its
//! memory is one line per run whatever the log's size; the files themselves are bounded by
//! the children's byte limit.

use std::io::BufRead;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::LoggedEvent;
use super::RunLabel;
use super::child::{ChildSummary, file_of};

/// How two runs of one case differ, the first way found in the order the runs did things:
/// the drawn case, then the event log, then the judged result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "what", rename_all = "snake_case")]
pub enum Divergence {
    /// The drawn cases differ (the schedule draw is not deterministic): the first line of
    /// the case files that differs (0-based), with each run's line (`None`: its file ended).
    Case { line_index: u64, first: Option<String>, second: Option<String> },
    /// The event logs part at `event_index` (0-based): each run's event there (`None`: its
    /// log ended there, or, with `cut` set for it, the byte limit left the event out).
    Event {
        event_index: u64,
        first: Option<LoggedEvent>,
        second: Option<LoggedEvent>,
        first_cut: bool,
        second_cut: bool,
    },
    /// Every compared event is equal but the hashes differ: the runs part after the
    /// `compared_count` events both files hold (raise `--event-bytes-limit` to see where).
    PastCompared { compared_count: u64, first_hash: String, second_hash: String },
    /// The logs are equal but the judged results differ: the first line that differs.
    Result { line_index: u64, first: Option<String>, second: Option<String> },
}

/// The first difference between the runs `first` and `second`, whose files are in `dir`
/// and whose summaries are given; `None` when they are the same run.
pub fn compare_runs(
    dir: &Path,
    first: (RunLabel, &ChildSummary),
    second: (RunLabel, &ChildSummary),
) -> std::io::Result<Option<Divergence>> {
    let (first_label, first_summary) = first;
    let (second_label, second_summary) = second;
    let file = |label: RunLabel, what: &str| file_of(dir, label, what);
    if first_summary.case_sha256 != second_summary.case_sha256 {
        let (line_index, first, second) =
            first_difference(&file(first_label, "case.toml"), &file(second_label, "case.toml"))?
                .unwrap_or((0, None, None));
        return Ok(Some(Divergence::Case { line_index, first, second }));
    }
    let events = (file(first_label, "events.jsonl"), file(second_label, "events.jsonl"));
    if let Some((index, first_line, second_line)) = first_difference(&events.0, &events.1)? {
        return Ok(Some(event_divergence(index, first_line, second_line, (first_summary, second_summary))));
    }
    if first_summary.hash != second_summary.hash || first_summary.events_count != second_summary.events_count {
        return Ok(Some(Divergence::PastCompared {
            compared_count: first_summary.events_written.min(second_summary.events_written),
            first_hash: first_summary.hash.clone(),
            second_hash: second_summary.hash.clone(),
        }));
    }
    if first_summary.result_sha256 != second_summary.result_sha256 {
        let (line_index, first, second) =
            first_difference(&file(first_label, "result.txt"), &file(second_label, "result.txt"))?
                .unwrap_or((0, None, None));
        return Ok(Some(Divergence::Result { line_index, first, second }));
    }
    Ok(None)
}

/// The divergence at event `index`, from the two lines there (`None`: that file ended).
///
/// A file that ended while the other goes on was either the shorter log or cut by the byte
/// limit; with equal lines before, a cut means its event here is longer than the other's,
/// so different: the event is left `None` with `cut` set.
fn event_divergence(
    index: u64,
    first_line: Option<String>,
    second_line: Option<String>,
    summaries: (&ChildSummary, &ChildSummary),
) -> Divergence {
    let parse = |line: Option<String>| line.map(|line| LoggedEvent::parse(&line));
    let cut = |line: &Option<LoggedEvent>, summary: &ChildSummary| {
        line.is_none() && summary.events_truncated && summary.events_written == index
    };
    let (first, second) = (parse(first_line), parse(second_line));
    let first_cut = cut(&first, summaries.0);
    let second_cut = cut(&second, summaries.1);
    Divergence::Event { event_index: index, first, second, first_cut, second_cut }
}

/// Where two files part: the line's index (0-based) and each file's line there (`None`:
/// the file ended before it).
pub type LineDifference = (u64, Option<String>, Option<String>);

/// The first line (0-based) where the files at `first` and `second` differ, with each
/// file's line there (`None`: the file ended); `None` when the files are equal.
pub fn first_difference(first: &Path, second: &Path) -> std::io::Result<Option<LineDifference>> {
    let mut first_lines = std::io::BufReader::new(std::fs::File::open(first)?).lines();
    let mut second_lines = std::io::BufReader::new(std::fs::File::open(second)?).lines();
    // Bounded by the shorter file: each pass reads one line of each, and ends at the first
    // file to end.
    for index in 0u64.. {
        let first_line = first_lines.next().transpose()?;
        let second_line = second_lines.next().transpose()?;
        if first_line.is_none() && second_line.is_none() {
            return Ok(None);
        }
        if first_line != second_line {
            return Ok(Some((index, first_line, second_line)));
        }
    }
    unreachable!("the line counter ran past u64::MAX")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(events_written: u64, truncated: bool, hash: &str) -> ChildSummary {
        ChildSummary {
            case_sha256: "c".into(),
            events_count: 10,
            events_written,
            events_truncated: truncated,
            hash: hash.into(),
            result_sha256: "r".into(),
            verdict: "PASS".into(),
        }
    }

    fn event_line(nanos: u64, host: &str, detail: &str) -> String {
        serde_json::to_string(&LoggedEvent {
            true_nanos: nanos,
            host: host.into(),
            kind: "test".into(),
            detail: detail.into(),
        })
        .unwrap()
    }

    /// Writes `lines` as `label`'s file `what` in `dir`.
    fn write(dir: &Path, label: RunLabel, what: &str, lines: &[String]) {
        let text: String = lines.iter().map(|line| format!("{line}\n")).collect();
        std::fs::write(file_of(dir, label, what), text).unwrap();
    }

    fn scratch(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("obsim-diverge-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        for label in [RunLabel::First, RunLabel::Second] {
            write(&dir, label, "case.toml", &["seed = 1".into()]);
            write(&dir, label, "result.txt", &["{}".into()]);
        }
        dir
    }

    #[test]
    fn two_logs_with_one_line_different_part_at_that_line_with_its_time_and_host() {
        let dir = scratch("one-line");
        let common = [event_line(0, "dash0", "start"), event_line(10_000_000, "api", "dial")];
        let mut first = common.to_vec();
        first.push(event_line(2_500_000_000, "railway-redis", "saved 3 keys"));
        let mut second = common.to_vec();
        second.push(event_line(2_500_000_000, "railway-redis", "saved 4 keys"));
        write(&dir, RunLabel::First, "events.jsonl", &first);
        write(&dir, RunLabel::Second, "events.jsonl", &second);
        let found =
            compare_runs(&dir, (RunLabel::First, &summary(3, false, "a")), (RunLabel::Second, &summary(3, false, "b")))
                .unwrap()
                .expect("the logs differ");
        let Divergence::Event { event_index, first: Some(first), second: Some(second), .. } = found else {
            panic!("an event divergence with both events: {found:?}")
        };
        assert_eq!(event_index, 2);
        assert_eq!((first.true_nanos, first.host.as_str()), (2_500_000_000, "railway-redis"));
        assert_eq!((first.detail.as_str(), second.detail.as_str()), ("saved 3 keys", "saved 4 keys"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn equal_logs_and_results_are_no_divergence_and_a_hash_past_the_compared_lines_is() {
        let dir = scratch("equal");
        let lines = [event_line(0, "dash0", "start")];
        write(&dir, RunLabel::First, "events.jsonl", &lines);
        write(&dir, RunLabel::Second, "events.jsonl", &lines);
        let same = summary(1, true, "a");
        assert_eq!(compare_runs(&dir, (RunLabel::First, &same), (RunLabel::Second, &same)).unwrap(), None);
        let found =
            compare_runs(&dir, (RunLabel::First, &same), (RunLabel::Second, &summary(1, true, "b"))).unwrap().unwrap();
        assert!(matches!(found, Divergence::PastCompared { compared_count: 1, .. }), "{found:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_log_cut_by_the_byte_limit_where_the_other_goes_on_parts_there() {
        let dir = scratch("cut");
        let first = [event_line(0, "dash0", "start"), event_line(1, "api", "short")];
        write(&dir, RunLabel::First, "events.jsonl", &first);
        write(&dir, RunLabel::Second, "events.jsonl", &first[..1]);
        let found =
            compare_runs(&dir, (RunLabel::First, &summary(2, true, "a")), (RunLabel::Second, &summary(1, true, "b")))
                .unwrap()
                .unwrap();
        let Divergence::Event { event_index: 1, first: Some(_), second: None, first_cut: false, second_cut: true } =
            found
        else {
            panic!("the second log was cut at event 1: {found:?}")
        };
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn different_drawn_cases_are_named_before_the_logs() {
        let dir = scratch("case");
        write(&dir, RunLabel::Second, "case.toml", &["seed = 2".into()]);
        for label in [RunLabel::First, RunLabel::Second] {
            write(&dir, label, "events.jsonl", &[]);
        }
        let mut second = summary(0, false, "a");
        second.case_sha256 = "other".into();
        let found =
            compare_runs(&dir, (RunLabel::First, &summary(0, false, "a")), (RunLabel::Second, &second)).unwrap();
        assert_eq!(
            found,
            Some(Divergence::Case { line_index: 0, first: Some("seed = 1".into()), second: Some("seed = 2".into()) })
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
