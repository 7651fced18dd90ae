//! Failure files: a failing run written as a self-contained scenario (its seed inlined, its
//! fault schedule already in the file) with the verdict and event-log hash it produced, so
//! `obsim replay` can run it again and prove the same verdict and the same hash.
//!
//! Why text surgery and not re-serializing the parsed scenario: the file the author wrote —
//! comments, order, defaults left implicit — is what they will read when the failure comes
//! back; only the seed line changes, and the header says what happened.

use std::fmt::Write as _;

use crate::check::Verdict;

/// The header line that records the hash a failure file's run produced.
const HASH_PREFIX: &str = "# obsim failure: event-log hash ";
/// The header line that records the verdict.
const VERDICT_PREFIX: &str = "# obsim failure: verdict ";

/// `source` with its top-level `seed` set to `seed`, under a header naming the verdict, the
/// failed checks and the hash.
pub fn failure_file_text(source: &str, seed: u64, verdict: &Verdict) -> String {
    let mut text = String::new();
    let _ = writeln!(text, "{HASH_PREFIX}{}", verdict.outcome.hash);
    let _ = writeln!(text, "{VERDICT_PREFIX}{}", if verdict.passed() { "PASS" } else { "FAIL" });
    for check in verdict.checks().iter().filter(|check| !check.passed) {
        let first_line = check.detail.lines().next().unwrap_or_default();
        let _ = writeln!(text, "# obsim failure: FAIL {}: {first_line}", check.name);
    }
    let _ = writeln!(text, "# replay: cargo run --release -- replay <this file>");
    text.push_str(&with_seed(source, seed));
    text
}

/// `source` with the top-level `seed = …` replaced (or added before the first table).
pub(crate) fn with_seed(source: &str, seed: u64) -> String {
    with_top_level(source, "seed", &seed.to_string())
}

/// `source` with the top-level `name = …` replaced (or added before the first table) by
/// `name` as a TOML string.
pub(crate) fn with_name(source: &str, name: &str) -> String {
    let quoted = toml::Value::String(name.to_string()).to_string();
    with_top_level(source, "name", &quoted)
}

/// `source` with the top-level `key = …` line replaced by `key = value` (`value` already
/// TOML), or that line added before the first table when there is none.
fn with_top_level(source: &str, key: &str, value: &str) -> String {
    let mut out = String::with_capacity(source.len() + 16);
    let mut in_tables = false;
    let mut written = false;
    for line in source.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with('[') && !in_tables {
            in_tables = true;
            if !written {
                let _ = writeln!(out, "{key} = {value}");
                written = true;
            }
        }
        if !in_tables && !trimmed.starts_with("#") && trimmed.split_once('=').is_some_and(|(k, _)| k.trim() == key) {
            let _ = writeln!(out, "{key} = {value}");
            written = true;
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    if !written {
        let _ = writeln!(out, "{key} = {value}");
    }
    out
}

/// `source` without its `[bugs]` table (the header and its keys, up to the next table).
pub(crate) fn without_bugs_table(source: &str) -> String {
    let mut out = String::with_capacity(source.len());
    let mut in_bugs = false;
    for line in source.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('[') {
            in_bugs = trimmed.split('#').next().is_some_and(|header| header.trim() == "[bugs]");
        }
        if !in_bugs {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// The hash and verdict a failure file recorded, if it is one.
pub fn recorded(text: &str) -> Option<(String, String)> {
    let hash = text.lines().find_map(|line| line.strip_prefix(HASH_PREFIX))?;
    let verdict = text.lines().find_map(|line| line.strip_prefix(VERDICT_PREFIX))?;
    Some((hash.trim().to_string(), verdict.trim().to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seed_is_replaced_at_top_level_only() {
        let source = "name = \"x\"\nseed = 7 # comment\nduration = \"1m\"\n[redis]\nseed = 3\n";
        assert_eq!(with_seed(source, 42), "name = \"x\"\nseed = 42\nduration = \"1m\"\n[redis]\nseed = 3\n");
        assert_eq!(with_seed("name = \"x\"\n[topology]\n", 5), "name = \"x\"\nseed = 5\n[topology]\n");
    }

    #[test]
    fn the_name_is_replaced_at_top_level_only_and_the_bugs_table_can_go() {
        let source = "# c\nname = \"baseline\"\nseed = 7\n[redis]\nname = \"r\"\n[bugs]\nsilent_record_loss = true\n\n[[fault]]\nkind = \"crash\"\n";
        let renamed = with_name(source, "regression-x");
        assert!(renamed.starts_with("# c\nname = \"regression-x\"\nseed = 7\n[redis]\nname = \"r\"\n"), "{renamed}");
        assert_eq!(with_name("[topology]\n", "a-b"), "name = \"a-b\"\n[topology]\n");
        let stripped = without_bugs_table(source);
        assert_eq!(
            stripped,
            "# c\nname = \"baseline\"\nseed = 7\n[redis]\nname = \"r\"\n[[fault]]\nkind = \"crash\"\n"
        );
    }
}
