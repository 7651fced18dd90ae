//! ARCHITECTURE.md §2 enforced on the source: nothing in `sim/` may read the machine's clock or
//! the OS's randomness, iterate a std hash map or set, or use an unbiased `select!`.
//!
//! Why a test and not only a lint: it runs in every `cargo test`, needs no extra tool in CI,
//! and its failure names the file and line. A hash map whose order provably never reaches
//! behaviour or output may stay if its line carries the marker `determinism: ok` with a
//! reason.

mod source_tree;

use std::path::{Path, PathBuf};

/// Patterns that make a run depend on something other than its seed.
const FORBIDDEN: &[(&str, &str)] = &[
    ("SystemTime::now", "reads the machine's clock; use the host's Clock"),
    ("Instant::now", "reads the machine's clock; use the host's Clock or tokio time"),
    ("thread_rng", "OS-seeded randomness; use HostCtx::rng or Seed::stream"),
    ("rand::rng()", "OS-seeded randomness; use HostCtx::rng or Seed::stream"),
    ("OsRng", "OS randomness; use HostCtx::rng or Seed::stream"),
    ("from_os_rng", "OS-seeded randomness; use HostCtx::rng or Seed::stream"),
    ("from_entropy", "OS-seeded randomness; use HostCtx::rng or Seed::stream"),
    ("HashMap", "iteration order varies per process; use BTreeMap or mark `determinism: ok`"),
    ("HashSet", "iteration order varies per process; use BTreeSet or mark `determinism: ok`"),
    (
        "tokio::spawn(",
        "a crash drops runtime tasks in an order set by a process-global task id; use crate::world::spawn",
    ),
    ("TokioExecutor", "spawns with tokio::spawn (see above); use crate::world::LocalExec"),
    ("transport::Server", "tonic's server spawns connections with tokio::spawn; serve with hyper and LocalExec"),
];

/// Lines after `select!` within which `biased;` must appear.
const SELECT_BIASED_WITHIN_LINES: usize = 3;

/// Every rule broken in `source`, as `line: what`.
fn violations(source: &str) -> Vec<String> {
    let lines: Vec<&str> = source.lines().collect();
    let mut found = Vec::new();
    for (index, line) in lines.iter().enumerate() {
        let code = line.trim_start();
        if code.starts_with("//") || line.contains("determinism: ok") {
            continue;
        }
        for (pattern, why) in FORBIDDEN {
            if code.contains(pattern) {
                found.push(format!("{}: `{pattern}` {why}", index + 1));
            }
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
fn the_checker_catches_each_rule() {
    let bad = "let t = std::time::Instant::now();\nlet m: HashMap<u8, u8> = HashMap::new();\ntokio::select! {\n  a = x => {}\n  b = y => {}\n}\nlet r = rand::rng();";
    let found = violations(bad);
    assert!(found.iter().any(|v| v.starts_with("1: `Instant::now`")), "{found:?}");
    assert!(found.iter().any(|v| v.starts_with("2: `HashMap`")), "{found:?}");
    assert!(found.iter().any(|v| v.starts_with("3: `select!` without")), "{found:?}");
    assert!(found.iter().any(|v| v.starts_with("7: `rand::rng()`")), "{found:?}");
    let spawned = violations("let task = tokio::spawn(async {});\nlet exec = TokioExecutor::new();");
    assert!(spawned.iter().any(|v| v.starts_with("1: `tokio::spawn(`")), "{spawned:?}");
    assert!(spawned.iter().any(|v| v.starts_with("2: `TokioExecutor`")), "{spawned:?}");
}

#[test]
fn comments_biased_selects_and_justified_maps_pass() {
    let good = "// Instant::now is forbidden\ntokio::select! {\n    biased;\n    a = x => {}\n}\nlet index: HashMap<u64, usize> = HashMap::new(); // determinism: ok, lookups only";
    assert_eq!(violations(good), Vec::<String>::new());
}
