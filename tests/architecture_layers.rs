//! The layers of ARCHITECTURE.md enforced on the source: a module uses only modules below it,
//! and no part uses another part.
//!
//! Why a test: a cycle between modules is invisible file by file and costs every later
//! reader; this one runs in every `cargo test`, needs no extra tool, and its failure names
//! the file, the line and the rule. Comment lines are not code and are skipped (a doc may
//! point upward, to say who reads a type).

mod source_tree;

use std::path::{Path, PathBuf};

/// The crate's top-level modules, bottom first: each may use only the modules before it.
/// A new module must be placed here (the test fails on an unlisted one).
const LAYERS: &[(&str, &str)] = &[
    ("units", "durations, byte sizes, rates: plain values"),
    ("vocab", "the names every layer shares: parts, signals, hosts, ports"),
    ("record", "logs, spans, metric points and their ids"),
    ("proto", "wire formats: Forward, RESP, OTLP"),
    ("world", "the simulated world: hosts, network, clocks, disks, events"),
    ("ledger", "instrumentation: custody of every record, the timeline"),
    ("gauges", "instrumentation: every bounded buffer's level against its limit"),
    ("parts", "the pipeline's components, each on its own"),
    ("faults", "fault data and pure rules: the schedule, composition"),
    ("scenario", "scenario files as data: topology, part configs, faults, expectations"),
    ("pipeline", "the parts wired on their hosts, faults applied, bugs planted"),
    ("check", "judging a finished run: every check, the verdict"),
    ("report", "results rendered and read back: result.json, summary, html, sweep index"),
    ("chaos", "sweeps: random schedules, shrinking, the sweep's output"),
    ("bench", "obsim bench: the simulation's speed on a fixed set of cases, and comparing two benches"),
    ("determinism", "obsim determinism: each sweep case run in separate processes and builds, logs compared"),
    ("fuzzing", "the fuzz targets' entry points over the decoders and scenario loading, with memory budgets"),
    ("live", "obsim serve: the parts on the machine's sockets and clock, for real clients"),
];

/// Files under `sim/parts/` that every part may use: the shared context and plumbing.
const PARTS_SHARED: &[&str] = &["mod", "bugs", "pipe", "log_chunk", "redis_client"];

/// The layer of a top-level module, by its position in `LAYERS`.
fn rank(module: &str) -> Option<usize> {
    LAYERS.iter().position(|(name, _)| *name == module)
}

/// Where a source file sits: its top-level module, and for `sim/parts/<x>/…` the part `x`
/// (`None` for the parts' shared files).
fn place(relative: &Path) -> (String, Option<String>) {
    let parts: Vec<String> = relative.iter().map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string()).collect();
    let module = parts[0].clone();
    let part = if module == "parts" && parts.len() > 1 && !PARTS_SHARED.contains(&parts[1].as_str()) {
        Some(parts[1].clone())
    } else {
        None
    };
    (module, part)
}

/// Every `crate::a::b` path a line of code names, as (a, b); `crate::{a, b::c}` groups
/// give one entry per member.
fn crate_paths(code: &str) -> Vec<(String, Option<String>)> {
    let mut found = Vec::new();
    let ident = |text: &str| -> String { text.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect() };
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        let before = rest[..at].chars().last();
        rest = &rest[at + "crate::".len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue; // `$crate::`, `obsim_crate::`…
        }
        let members: Vec<&str> = if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            group[..end].split(',').map(str::trim).collect()
        } else {
            vec![rest]
        };
        for member in members {
            let first = ident(member);
            if first.is_empty() || first == "self" {
                continue;
            }
            let second = member[first.len()..].strip_prefix("::").map(ident).filter(|s| !s.is_empty());
            found.push((first, second));
        }
    }
    found
}

/// Macros exported at the crate root (`#[macro_export]`): `crate::name!` names no module.
const ROOT_MACROS: &[&str] = &["redis_step"];

/// Every rule `source` (the file at `relative`, under `sim/`) breaks, as `line: what`.
fn violations(relative: &Path, source: &str) -> Vec<String> {
    let (module, part) = place(relative);
    let Some(own_rank) = rank(&module) else {
        return vec![format!(
            "0: module `{module}` is in no layer; place it in LAYERS of tests/architecture_layers.rs and ARCHITECTURE.md"
        )];
    };
    let mut found = Vec::new();
    for (index, line) in source.lines().enumerate() {
        let code = line.trim_start();
        if code.starts_with("//") {
            continue;
        }
        for (used, inner) in crate_paths(code) {
            if used == module {
                if let (Some(part), Some(inner)) = (&part, &inner)
                    && used == "parts"
                    && inner != part
                    && !PARTS_SHARED.contains(&inner.as_str())
                    && inner.chars().next().is_some_and(char::is_lowercase)
                {
                    found.push(format!(
                        "{}: part `{part}` uses part `{inner}`; parts are siblings and share only {PARTS_SHARED:?} \
                         (move what both need down a layer)",
                        index + 1
                    ));
                }
                continue;
            }
            match rank(&used) {
                Some(used_rank) if used_rank > own_rank => found.push(format!(
                    "{}: `{module}` (layer {own_rank}) uses `{used}` (layer {used_rank}), a layer above it",
                    index + 1
                )),
                Some(_) => {}
                None if ROOT_MACROS.contains(&used.as_str()) => {}
                None => found.push(format!("{}: `{used}` is in no layer", index + 1)),
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
fn every_module_uses_only_the_layers_below_it() {
    let sim = Path::new(env!("CARGO_MANIFEST_DIR")).join("sim");
    let mut files = Vec::new();
    rust_files(&sim, &mut files);
    assert!(files.len() > 50, "expected the sim/ sources, found {}", files.len());
    let mut report = Vec::new();
    for file in &files {
        let relative = file.strip_prefix(&sim).unwrap();
        // The crate root and the binary sit above every layer.
        if relative == Path::new("lib.rs") || relative == Path::new("main.rs") {
            continue;
        }
        let source = std::fs::read_to_string(file).unwrap();
        for violation in violations(relative, &source) {
            report.push(format!("sim/{}:{violation}", relative.display()));
        }
    }
    assert!(report.is_empty(), "layering broken (ARCHITECTURE.md §6):\n{}", report.join("\n"));
}

#[test]
fn every_top_level_module_is_in_a_layer_and_every_layer_exists() {
    let lib = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("sim/lib.rs")).unwrap();
    let declared: Vec<&str> = lib
        .lines()
        .filter_map(|line| line.trim().strip_prefix("pub mod ").or_else(|| line.trim().strip_prefix("mod ")))
        .map(|rest| rest.trim_end_matches(';'))
        .collect();
    let mut sorted_declared = declared.clone();
    sorted_declared.sort_unstable();
    let mut layered: Vec<&str> = LAYERS.iter().map(|(name, _)| *name).collect();
    layered.sort_unstable();
    assert_eq!(sorted_declared, layered, "sim/lib.rs's modules and the LAYERS list differ");
}

#[test]
fn the_root_macros_are_the_exported_ones() {
    let sim = Path::new(env!("CARGO_MANIFEST_DIR")).join("sim");
    let mut files = Vec::new();
    rust_files(&sim, &mut files);
    let mut exported = Vec::new();
    for file in &files {
        let source = std::fs::read_to_string(file).unwrap();
        let mut after_export = false;
        for line in source.lines().map(str::trim) {
            if let Some(rest) = line.strip_prefix("macro_rules! ").filter(|_| after_export) {
                exported.push(rest.trim_end_matches(" {").to_string());
            }
            after_export = line == "#[macro_export]" || (after_export && line.starts_with("#["));
        }
    }
    assert_eq!(exported, ROOT_MACROS, "ROOT_MACROS must list exactly the #[macro_export] macros");
}

#[test]
fn a_planted_upward_import_fails_and_names_the_line() {
    let source = "//! The ledger.\nuse crate::record::RecordId;\nuse crate::report::index::Index;\n";
    let found = violations(Path::new("ledger/mod.rs"), source);
    assert_eq!(found, ["3: `ledger` (layer 5) uses `report` (layer 12), a layer above it"]);
}

#[test]
fn groups_and_inline_paths_are_read_and_comments_are_not() {
    let source =
        "use crate::{units, chaos::sweep};\n// crate::chaos in a comment\nlet x = crate::pipeline::Pipeline::build;\n";
    let found = violations(Path::new("faults/spec.rs"), source);
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(found[0].starts_with("1: `faults` (layer 8) uses `chaos`"), "{found:?}");
    assert!(found[1].starts_with("3: `faults` (layer 8) uses `pipeline`"), "{found:?}");
}

#[test]
fn a_part_using_another_part_fails_and_shared_files_do_not() {
    let planted = "use crate::parts::dash0::Dash0Control;\nuse crate::parts::PartCtx;\nuse crate::parts::redis_client::RedisConn;\n";
    let found = violations(Path::new("parts/collector/exporter.rs"), planted);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].starts_with("1: part `collector` uses part `dash0`"), "{found:?}");
    assert!(
        violations(Path::new("parts/collector/mod.rs"), "use crate::parts::collector::CollectorConfig;\n").is_empty()
    );
}

/// Every line of code under `sim/parts/` that names a host constant (`hosts::`), as
/// `file:line`: a part learns its peers' addresses from its `PartCtx`, which the wiring
/// derives from `vocab::pipeline` (ARCHITECTURE.md §9).
fn parts_naming_hosts(files: &[(String, String)]) -> Vec<String> {
    let mut found = Vec::new();
    for (path, source) in files {
        for (index, line) in source.lines().enumerate() {
            let code = line.trim_start();
            if !code.starts_with("//") && code.contains("hosts::") {
                found.push(format!("{path}:{}", index + 1));
            }
        }
    }
    found
}

#[test]
fn no_part_names_a_peers_host() {
    let sim = Path::new(env!("CARGO_MANIFEST_DIR")).join("sim");
    let mut paths = Vec::new();
    rust_files(&sim.join("parts"), &mut paths);
    assert!(paths.len() > 30, "expected the parts' sources, found {}", paths.len());
    let files: Vec<(String, String)> = paths
        .iter()
        .map(|path| (path.strip_prefix(&sim).unwrap().display().to_string(), std::fs::read_to_string(path).unwrap()))
        .collect();
    let found = parts_naming_hosts(&files);
    assert!(found.is_empty(), "parts must take their peers from PartCtx, not vocab::hosts:\n{}", found.join("\n"));
}

#[test]
fn a_planted_host_constant_in_a_part_is_found() {
    let files = [(
        "parts/agent/mod.rs".to_string(),
        "//! hosts::AGGREGATOR in a doc is fine\nlet peer = (hosts::AGGREGATOR, ports::AGGREGATOR_FORWARD);\n"
            .to_string(),
    )];
    assert_eq!(parts_naming_hosts(&files), ["parts/agent/mod.rs:2"]);
}
