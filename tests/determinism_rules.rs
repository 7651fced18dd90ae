//! ARCHITECTURE.md §2 enforced on the source: nothing in `sim/` may read the machine's clock or
//! the OS's randomness, iterate a std hash map or set, or use an unbiased `select!`.
//!
//! Who checks what: clippy's `disallowed-methods` and `disallowed-types` (clippy.toml, switched
//! on by `#![warn]` in sim/lib.rs and sim/main.rs) forbid the clock reads
//! (`std::time::Instant::now`, `std::time::SystemTime::now`), OS randomness (`rand::rng`,
//! `rand::thread_rng`, `OsRng`, `from_os_rng`), `std::collections::HashMap`/`HashSet`,
//! `tokio::spawn`, hyper's `TokioExecutor` and tonic's `transport::Server`. Clippy resolves
//! paths, so it sees through renamed imports and tells turmoil's `tokio::time::Instant` from
//! std's; those text patterns were removed from this test. What clippy cannot check stays
//! here: a `select!` without `biased;` (a macro's tokens, not a path). This test also checks
//! that clippy.toml still lists every rule and that the crate roots still switch the lints
//! on, so a rule cannot vanish from both places.

mod source_tree;

use std::path::{Path, PathBuf};

/// Lines after `select!` within which `biased;` must appear.
const SELECT_BIASED_WITHIN_LINES: usize = 3;

/// The paths clippy.toml must disallow (methods and types): the rules this test no longer
/// checks as text.
const CLIPPY_RULES: &[&str] = &[
    "std::time::Instant::now",
    "std::time::SystemTime::now",
    "tokio::spawn",
    "tokio::task::spawn",
    "rand::rng",
    "rand::thread_rng",
    "rand::SeedableRng::from_os_rng",
    "std::collections::HashMap",
    "std::collections::HashSet",
    "rand::rngs::OsRng",
    "hyper_util::rt::TokioExecutor",
    "tonic::transport::Server",
];

/// The attribute each crate root carries to switch the rules on (Cargo.toml allows them
/// crate-wide, for the tests).
const LINTS_ON: &str = "#![warn(clippy::disallowed_methods, clippy::disallowed_types)]";

/// Every rule broken in `source`, as `line: what`.
fn violations(source: &str) -> Vec<String> {
    let lines: Vec<&str> = source.lines().collect();
    let mut found = Vec::new();
    for (index, line) in lines.iter().enumerate() {
        let code = line.trim_start();
        if code.starts_with("//") || line.contains("determinism: ok") {
            continue;
        }
        if code.contains("select!") {
            let window = lines.iter().skip(index).take(SELECT_BIASED_WITHIN_LINES + 1);
            if !window.clone().any(|next| next.contains("biased;")) {
                found.push(format!("{}: `select!` without `biased;` polls branches in random order", index + 1));
            }
        }
    }
    found
}

/// The rules of `CLIPPY_RULES` that `clippy_toml` does not disallow, each with a reason.
fn missing_rules(clippy_toml: &str) -> Vec<String> {
    let config: toml::Table = match toml::from_str(clippy_toml) {
        Ok(config) => config,
        Err(error) => return vec![format!("clippy.toml does not parse: {error}")],
    };
    let listed: Vec<(String, bool)> = ["disallowed-methods", "disallowed-types"]
        .iter()
        .filter_map(|key| config.get(*key).and_then(toml::Value::as_array))
        .flatten()
        .filter_map(|entry| {
            let path = entry.get("path")?.as_str()?.to_string();
            let reason = entry.get("reason").and_then(toml::Value::as_str).is_some_and(|r| !r.trim().is_empty());
            Some((path, reason))
        })
        .collect();
    CLIPPY_RULES
        .iter()
        .filter_map(|rule| match listed.iter().find(|(path, _)| path == rule) {
            None => Some(format!("`{rule}` is not in disallowed-methods or disallowed-types")),
            Some((_, false)) => Some(format!("`{rule}` has no reason string")),
            Some(_) => None,
        })
        .collect()
}

/// The `.rs` files under `dir`, appended to `out` (`source_tree` walks them in path order).
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    out.extend(source_tree::rust_files(dir));
}

#[test]
fn the_simulation_source_follows_the_determinism_rules() {
    let mut files = Vec::new();
    rust_files(&Path::new(env!("CARGO_MANIFEST_DIR")).join("sim"), &mut files);
    assert!(files.len() > 5, "expected the sim/ sources, found {files:?}");
    let mut report = Vec::new();
    for file in &files {
        let source = std::fs::read_to_string(file).unwrap();
        for violation in violations(&source) {
            report.push(format!("{}:{violation}", file.display()));
        }
    }
    assert!(report.is_empty(), "determinism rules broken (ARCHITECTURE.md §2):\n{}", report.join("\n"));
}

#[test]
fn the_checker_catches_an_unbiased_select() {
    let bad = "let t = 1;\ntokio::select! {\n  a = x => {}\n  b = y => {}\n}\n";
    let found = violations(bad);
    assert!(found.iter().any(|v| v.starts_with("2: `select!` without")), "{found:?}");
}

#[test]
fn comments_biased_selects_and_justified_lines_pass() {
    let good = "// select! is checked\ntokio::select! {\n    biased;\n    a = x => {}\n}\nlet s = select!(a, b); // determinism: ok, a join of two ready futures";
    assert_eq!(violations(good), Vec::<String>::new());
}

#[test]
fn clippy_toml_disallows_every_rule_and_the_crate_roots_switch_them_on() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let clippy = std::fs::read_to_string(root.join("clippy.toml")).expect("clippy.toml is readable");
    assert_eq!(missing_rules(&clippy), Vec::<String>::new(), "clippy.toml lost a determinism rule");
    for crate_root in ["sim/lib.rs", "sim/main.rs"] {
        let source = std::fs::read_to_string(root.join(crate_root)).expect("a crate root is readable");
        assert!(source.lines().any(|line| line.trim() == LINTS_ON), "{crate_root} does not say `{LINTS_ON}`");
    }
}

#[test]
fn the_clippy_toml_check_catches_a_dropped_rule_and_a_missing_reason() {
    let broken = "disallowed-methods = [\n  { path = \"std::time::Instant::now\" },\n]\n";
    let missing = missing_rules(broken);
    assert!(missing.iter().any(|m| m == "`std::time::Instant::now` has no reason string"), "{missing:?}");
    assert!(missing.iter().any(|m| m.starts_with("`std::collections::HashMap` is not in")), "{missing:?}");
    assert!(missing_rules("disallowed-methods = [")[0].starts_with("clippy.toml does not parse"));
}
