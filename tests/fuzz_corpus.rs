//! Replays every file of `fuzz/corpus/<target>/` through the same entry points the cargo-fuzz
//! targets call (`obsim::fuzzing`), on stable, under a counting global allocator: every input
//! the fuzzer kept (and every crash turned into a corpus file) is checked on each `cargo test`
//! — the decoders' assertions, the entry points' properties, and each call's memory budget
//! (README "Fuzzing").
//!
//! One test function only: the allocator's counters are process-wide, so a second test
//! running on another thread would be measured too.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use counting_alloc::Counting;
use obsim::fuzzing::{Meter, Target, run};

#[global_allocator]
static ALLOCATOR: Counting = Counting::new();

/// The allocator, as `obsim::fuzzing::run` measures with it.
struct CountingMeter(&'static Counting);

impl Meter for CountingMeter {
    fn reset(&self) {
        self.0.reset();
    }
    fn live_bytes(&self) -> usize {
        self.0.live_bytes()
    }
    fn peak_bytes(&self) -> usize {
        self.0.peak_bytes()
    }
    fn largest_bytes(&self) -> usize {
        self.0.largest_bytes()
    }
}

static METER: CountingMeter = CountingMeter(&ALLOCATOR);

/// The entries of `dir`, sorted by name.
fn sorted_entries(dir: &Path) -> Vec<PathBuf> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .collect();
    entries.sort();
    entries
}

/// The fuzz targets' file stems under `fuzz/fuzz_targets/`, sorted.
fn fuzz_target_files(root: &Path) -> Vec<String> {
    let mut names: Vec<String> = sorted_entries(&root.join("fuzz/fuzz_targets"))
        .iter()
        .filter(|path| path.extension().is_some_and(|ext| ext == "rs"))
        .map(|path| path.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// The meter sees a 3 MiB allocation as the largest and in the peak; freed, it is not live.
fn meter_counts_allocations() {
    let live_before = METER.live_bytes();
    METER.reset();
    let buffer = std::hint::black_box(vec![1u8; 3 << 20]);
    assert!(METER.largest_bytes() >= 3 << 20 && METER.peak_bytes() >= live_before + (3 << 20));
    drop(buffer);
    assert!(METER.live_bytes() < live_before + (3 << 20));
}

#[test]
fn every_corpus_file_replays_within_its_budget() {
    meter_counts_allocations();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut targets: Vec<String> = Target::ALL.iter().map(|target| target.as_str().to_string()).collect();
    targets.sort();
    assert_eq!(fuzz_target_files(root), targets, "fuzz/fuzz_targets/ and obsim::fuzzing::Target::ALL differ");
    let mut failures = Vec::new();
    let mut replayed = 0usize;
    let mut corpora = Vec::new();
    for dir in sorted_entries(&root.join("fuzz/corpus")) {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let target = Target::from_name(&name)
            .unwrap_or_else(|| panic!("fuzz/corpus/{name}/ names no target (obsim::fuzzing::Target)"));
        let files = sorted_entries(&dir);
        assert!(!files.is_empty(), "fuzz/corpus/{name}/ is empty");
        for file in files {
            let input = match std::fs::read(&file) {
                Ok(input) => input,
                // A fuzzer running on this corpus replaces files as it shrinks them.
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => continue,
                Err(error) => panic!("cannot read {}: {error}", file.display()),
            };
            if let Err(panic) = catch_unwind(AssertUnwindSafe(|| run(target, &input, &METER))) {
                let message = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|text| (*text).to_string()))
                    .unwrap_or_default();
                failures.push(format!("{}: {message}", file.strip_prefix(root).unwrap().display()));
            }
            replayed += 1;
        }
        corpora.push(name);
    }
    assert_eq!(corpora, targets, "every target has a corpus folder under fuzz/corpus/");
    assert!(failures.is_empty(), "{} of {replayed} corpus files failed:\n{}", failures.len(), failures.join("\n"));
}
