//! `obsim report merge <index.json>... --out DIR`: the shards of one chaos sweep joined into
//! the index the whole sweep would have written.
//!
//! Why strict: a nightly job fans a sweep out over `--shard i/n` machines; if one machine's
//! artifact is missing, a merged index that silently covers part of the seeds would report
//! "no failures" for seeds nobody ran. So the shards must be of one sweep (same n, first
//! seed and seed count), distinct, and cover 1..n; each run must belong to its shard.
//! Anything else is refused naming the file and what is missing.
//!
//! `--partial` is for the night whose shard timed out or crashed: it merges what there is
//! but never passes for whole — the merged index lists the missing and unfinished shards
//! (index.md and index.html say INCOMPLETE), and `obsim report merge` exits non-zero. A shard
//! index written while its sweep still ran (`finished: false`, see `SweepWriter`) counts as
//! unfinished; without `--partial` it is refused like a missing shard.
//!
//! The merged folder is a whole sweep's folder: failure files and run folders are copied
//! next to the merged index (replay commands point at the copies), and the full reports of
//! the merged worst seeds are rebuilt from their `result.json`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::index::{INDEX_SCHEMA_VERSION, Index, IndexRun, Shard, display_path, worst_index_runs, write_index};
use crate::check::RunResult;

/// Most shard indexes one merge takes.
pub(crate) const SHARDS_LIMIT: usize = 10_000;

/// Why a merge failed.
#[derive(Debug)]
pub enum MergeError {
    /// The inputs are unreadable or not the complete shards of one sweep (exit 2).
    Invalid(String),
    /// Writing files failed (exit 3, as any report that cannot be written).
    Io(String),
}

impl std::fmt::Display for MergeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MergeError::Invalid(message) | MergeError::Io(message) => f.write_str(message),
        }
    }
}

/// Joins `shards` (each with the file it came from, for messages) into one index; every
/// shard of the sweep must be there and finished.
pub fn merge(shards: &[(String, Index)]) -> Result<Index, String> {
    merge_with(shards, false)
}

/// Joins `shards` into one index; with `partial`, missing and unfinished shards are listed in
/// the index instead of refused (shards of another sweep, repeated ones and runs in the
/// wrong shard are refused either way).
pub(crate) fn merge_with(shards: &[(String, Index)], partial: bool) -> Result<Index, String> {
    let Some((first_name, first)) = shards.first() else {
        return Err("no shard index given".to_string());
    };
    if shards.len() > SHARDS_LIMIT {
        return Err(format!("{} shard indexes exceed the limit of {SHARDS_LIMIT}", shards.len()));
    }
    let first_shard = Shard::parse(&first.shard).map_err(|error| format!("{first_name}: {error}"))?;
    let mut seen: BTreeMap<u32, &str> = BTreeMap::new();
    for (name, index) in shards {
        let shard = check_shard(name, index, (first_name, first), first_shard)?;
        if let Some(other) = seen.insert(shard.index, name) {
            return Err(format!("shard {shard} given twice: {other} and {name}"));
        }
        check_runs_owned(name, index, shard)?;
    }
    let missing = missing_shards(first_shard, &seen, partial)?;
    let unfinished = unfinished_shards(shards, partial)?;
    let planned_runs_count = if missing.is_empty() {
        shards.iter().map(|(_, index)| index.planned_runs_count).sum::<Option<u64>>()
    } else {
        None
    };
    let runs = joined_runs(shards)?;
    let mut index = Index {
        schema_version: INDEX_SCHEMA_VERSION,
        obsim: shards.iter().find_map(|(_, index)| index.obsim.clone()),
        shard: Shard::WHOLE.to_string(),
        first_seed: first.first_seed,
        seeds: first.seeds,
        runs_count: runs.len() as u64,
        failures_count: runs.iter().filter(|run| !run.passed).count() as u64,
        planned_runs_count,
        finished: unfinished.is_empty(),
        missing_shards: missing,
        unfinished_shards: unfinished,
        runs,
    };
    mark_full_reports(&mut index);
    Ok(index)
}

/// Checks that shard index `name` is of this obsim's schema and of the same sweep as the
/// first shard (same shard count, first seed and seed count); returns which shard it is.
fn check_shard(
    name: &str,
    index: &Index,
    (first_name, first): (&str, &Index),
    first_shard: Shard,
) -> Result<Shard, String> {
    if index.schema_version != INDEX_SCHEMA_VERSION {
        return Err(format!(
            "{name}: index schema_version {}, this obsim merges version {INDEX_SCHEMA_VERSION}",
            index.schema_version
        ));
    }
    let shard = Shard::parse(&index.shard).map_err(|error| format!("{name}: {error}"))?;
    if let (Some(build), Some(first_build)) = (&index.obsim, &first.obsim)
        && build.differs_from(first_build)
    {
        return Err(format!(
            "{name} was swept by {} (commit {}) but {first_name} by {} (commit {}): the shards of one sweep \
             must come from one build, or the merged night mixes two versions of the code",
            build.text(),
            build.commit,
            first_build.text(),
            first_build.commit
        ));
    }
    if shard.count != first_shard.count || index.first_seed != first.first_seed || index.seeds != first.seeds {
        return Err(format!(
            "{name} (shard {}, seeds {}..{}) is not of the same sweep as {first_name} (shard {}, seeds {}..{})",
            index.shard,
            index.first_seed,
            index.first_seed + index.seeds,
            first.shard,
            first.first_seed,
            first.first_seed + first.seeds
        ));
    }
    Ok(shard)
}

/// Checks that every run of shard index `name` has a seed its `shard` owns: a run in the
/// wrong shard means the shards were not cut from one sweep.
fn check_runs_owned(name: &str, index: &Index, shard: Shard) -> Result<(), String> {
    for run in &index.runs {
        let owned = run.seed.checked_sub(index.first_seed).is_some_and(|seed_index| shard.owns(seed_index));
        if !owned {
            return Err(format!("{name}: run {} seed {} does not belong to shard {shard}", run.scenario, run.seed));
        }
    }
    Ok(())
}

/// The shards of 1..n no index was given for, as "i/n"; without `partial` any is refused.
fn missing_shards(first_shard: Shard, seen: &BTreeMap<u32, &str>, partial: bool) -> Result<Vec<String>, String> {
    let missing: Vec<String> = (1..=first_shard.count)
        .filter(|i| !seen.contains_key(i))
        .map(|i| format!("{i}/{}", first_shard.count))
        .collect();
    if !missing.is_empty() && !partial {
        return Err(format!(
            "missing shards {} of the sweep (have {}); `--partial` merges what there is and says what is missing",
            missing.join(", "),
            seen.len()
        ));
    }
    Ok(missing)
}

/// The shards whose sweep stopped before it finished, in shard order; without `partial` the
/// first of them (in the order given) is refused.
fn unfinished_shards(shards: &[(String, Index)], partial: bool) -> Result<Vec<String>, String> {
    let mut unfinished: Vec<(u32, String)> = Vec::new();
    for (name, index) in shards.iter().filter(|(_, index)| !index.finished) {
        let shard = Shard::parse(&index.shard).map_err(|error| format!("{name}: {error}"))?;
        if !partial {
            return Err(format!(
                "{name}: shard {shard} did not finish (its sweep stopped after {} of {} runs); `--partial` merges what it ran",
                index.runs_count,
                index.planned_runs_count.map_or("?".to_string(), |planned| planned.to_string())
            ));
        }
        unfinished.push((shard.index, shard.to_string()));
    }
    unfinished.sort();
    Ok(unfinished.into_iter().map(|(_, shard)| shard).collect())
}

/// Every shard's runs in the order the whole sweep lists them (seed, then file); a
/// (file, seed) in two shards is refused.
fn joined_runs(shards: &[(String, Index)]) -> Result<Vec<IndexRun>, String> {
    let mut runs: Vec<IndexRun> = shards.iter().flat_map(|(_, index)| index.runs.iter().cloned()).collect();
    runs.sort_by(|a, b| (a.seed, a.file_index, &a.file).cmp(&(b.seed, b.file_index, &b.file)));
    if let Some(pair) = runs.windows(2).find(|pair| (pair[0].seed, &pair[0].file) == (pair[1].seed, &pair[1].file)) {
        return Err(format!("{} seed {} appears in two shards", pair[0].file, pair[0].seed));
    }
    Ok(runs)
}

/// Full reports: failures and the merged worst seeds (as the whole sweep would write).
fn mark_full_reports(index: &mut Index) {
    let worst: Vec<(String, u64)> = worst_index_runs(index).iter().map(|run| (run.file.clone(), run.seed)).collect();
    for run in &mut index.runs {
        run.full_report = run.report_dir.is_some() && (!run.passed || worst.contains(&(run.file.clone(), run.seed)));
    }
}

/// The exit status of `obsim report merge` for a merged `index`, the same scheme as
/// `obsim chaos`: 1 when a merged run failed (the finding comes first, however much of the
/// sweep is there), 2 when no run failed but shards are missing or unfinished (nobody can
/// say the sweep passed), 0 when the whole sweep ran and every run passed.
///
/// Why a failed run fails the merge: the nightly workflow's verdict is this status; exit 0
/// with failed runs inside let nights with failures pass.
pub fn exit_status(index: &Index) -> u8 {
    if index.failures_count > 0 {
        1
    } else if crate::report::index::incompleteness(index).is_some() {
        2
    } else {
        0
    }
}

/// Reads the shard indexes at `paths`, merges them, copies their failure files and run
/// folders into `out`, and writes the merged index there.
pub fn merge_files(paths: &[PathBuf], out: &Path, partial: bool) -> Result<Index, MergeError> {
    let mut shards = Vec::with_capacity(paths.len());
    for path in paths {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|error| MergeError::Invalid(format!("{name}: {error}")))?;
        let index = match super::compare::parse_input(&name, &text).map_err(MergeError::Invalid)? {
            super::compare::Input::Index(index) => *index,
            super::compare::Input::Result(_) => {
                return Err(MergeError::Invalid(format!("{name}: a result.json, not a chaos index.json")));
            }
        };
        shards.push((name, index));
    }
    let mut index = merge_with(&shards, partial).map_err(MergeError::Invalid)?;
    // Where each run came from: its shard's folder.
    let mut source_dirs: BTreeMap<(String, u64), PathBuf> = BTreeMap::new();
    for ((_, shard), path) in shards.iter().zip(paths) {
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        for run in &shard.runs {
            source_dirs.insert((run.file.clone(), run.seed), dir.clone());
        }
    }
    let io = |what: &Path, error: std::io::Error| MergeError::Io(format!("{}: {error}", what.display()));
    std::fs::create_dir_all(out).map_err(|error| io(out, error))?;
    for run in &mut index.runs {
        let source = &source_dirs[&(run.file.clone(), run.seed)];
        if let Some(failure) = &run.failure_file {
            let (from, to) = (source.join(failure), out.join(failure));
            if from.exists() {
                copy(&from, &to).map_err(|error| io(&from, error))?;
                run.replay = Some(format!("cargo run --release -- replay {}", display_path(&to)));
            }
        }
        if let Some(dir) = &run.report_dir {
            let (from, to) = (source.join(dir), out.join(dir));
            if from.is_dir() {
                copy_folder(&from, &to).map_err(|error| io(&from, error))?;
            }
            let result_path = to.join(super::RESULT_FILE);
            if run.full_report && !to.join(super::HTML_FILE).exists() && result_path.exists() {
                let text = std::fs::read_to_string(&result_path).map_err(|error| io(&result_path, error))?;
                let result: RunResult = RunResult::parse(&text)
                    .map_err(|error| MergeError::Invalid(format!("{}: {error}", result_path.display())))?;
                super::write_run(&to, &result, None, true).map_err(|error| io(&to, error))?;
            }
        }
    }
    write_index(out, &index).map_err(|error| io(out, error))?;
    Ok(index)
}

/// Copies one file, unless it is the same file.
fn copy(from: &Path, to: &Path) -> std::io::Result<()> {
    if same_file(from, to) {
        return Ok(());
    }
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::copy(from, to).map(|_| ())
}

/// Copies the files of a run folder (it has no subfolders).
fn copy_folder(from: &Path, to: &Path) -> std::io::Result<()> {
    if same_file(from, to) {
        return Ok(());
    }
    std::fs::create_dir_all(to)?;
    let mut entries: Vec<PathBuf> =
        std::fs::read_dir(from)?.map(|entry| entry.map(|e| e.path())).collect::<Result<_, _>>()?;
    entries.sort();
    for entry in entries {
        if entry.is_file()
            && let Some(name) = entry.file_name()
        {
            std::fs::copy(&entry, to.join(name))?;
        }
    }
    Ok(())
}

fn same_file(a: &Path, b: &Path) -> bool {
    matches!((a.canonicalize(), b.canonicalize()), (Ok(a), Ok(b)) if a == b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(shard: &str, seeds: &[u64]) -> Index {
        Index {
            schema_version: INDEX_SCHEMA_VERSION,
            obsim: Some(crate::report::build_info::BuildInfo { version: "0.1.0".into(), commit: "a".repeat(40) }),
            shard: shard.to_string(),
            first_seed: 1,
            seeds: 4,
            runs_count: seeds.len() as u64,
            failures_count: 0,
            planned_runs_count: Some(seeds.len() as u64),
            finished: true,
            missing_shards: Vec::new(),
            unfinished_shards: Vec::new(),
            runs: seeds
                .iter()
                .map(|&seed| IndexRun {
                    scenario: "s".into(),
                    file: "s.toml".into(),
                    file_index: 0,
                    seed,
                    passed: true,
                    failed_checks: Vec::new(),
                    faults: Vec::new(),
                    log_latency_p99_micros: Some(seed * 1000),
                    log_latency_max_micros: Some(seed * 2000),
                    event_log_hash: None,
                    failure_file: None,
                    shrunk_steps: Vec::new(),
                    shrunk_faults: Vec::new(),
                    replay: None,
                    error: None,
                    lost_count: Some(0),
                    lost_silently_count: Some(0),
                    in_flight_count: Some(0),
                    loss_causes: Vec::new(),
                    log_throughput_min_per_second: None,
                    log_throughput_mean_per_second: None,
                    report_dir: None,
                    full_report: false,
                    ..IndexRun::default()
                })
                .collect(),
        }
    }

    #[test]
    fn shards_join_in_seed_order() {
        let merged = merge(&[("b".into(), index("2/2", &[2, 4])), ("a".into(), index("1/2", &[1, 3]))]).unwrap();
        assert_eq!(merged.runs.iter().map(|run| run.seed).collect::<Vec<_>>(), vec![1, 2, 3, 4]);
        assert_eq!((merged.shard.as_str(), merged.runs_count), ("1/1", 4));
    }

    #[test]
    fn missing_repeated_or_foreign_shards_are_refused_by_name() {
        let error = merge(&[("a".into(), index("1/3", &[1, 4]))]).unwrap_err();
        assert!(error.contains("missing shards 2/3, 3/3"), "{error}");
        let error = merge(&[("a".into(), index("1/2", &[1, 3])), ("b".into(), index("1/2", &[1, 3]))]).unwrap_err();
        assert!(error.contains("shard 1/2 given twice: a and b"), "{error}");
        let error = merge(&[("a".into(), index("1/2", &[1, 2]))]).unwrap_err();
        assert!(error.contains("a: run s seed 2 does not belong to shard 1/2"), "{error}");
        let error = merge(&[("a".into(), index("1/2", &[1])), ("b".into(), index("2/3", &[2]))]).unwrap_err();
        assert!(error.contains("is not of the same sweep"), "{error}");
        assert!(merge(&[]).unwrap_err().contains("no shard index"));
    }

    #[test]
    fn shards_of_two_builds_are_refused_naming_both_commits() {
        let mut other = index("2/2", &[2]);
        other.obsim = Some(crate::report::build_info::BuildInfo { version: "0.1.0".into(), commit: "b".repeat(40) });
        let error = merge(&[("a".into(), index("1/2", &[1])), ("b".into(), other.clone())]).unwrap_err();
        assert!(error.contains("b was swept by obsim 0.1.0 (bbbbbbbbbbbb)") && error.contains("but a by"), "{error}");
        // Without a stamp (an index written before obsim recorded it), nothing to compare.
        other.obsim = None;
        let merged = merge(&[("a".into(), index("1/2", &[1])), ("b".into(), other)]).unwrap();
        assert_eq!(merged.obsim.map(|build| build.commit), Some("a".repeat(40)), "the merged index keeps the stamp");
    }

    #[test]
    fn a_partial_merge_keeps_what_there_is_and_names_the_missing_and_unfinished_shards() {
        let mut unfinished = index("2/3", &[2]);
        unfinished.finished = false;
        unfinished.planned_runs_count = Some(2);
        let shards = [("a".to_string(), index("1/3", &[1, 4])), ("b".to_string(), unfinished)];
        let every = [shards[0].clone(), shards[1].clone(), ("c".to_string(), index("3/3", &[3]))];
        let error = merge(&every).unwrap_err();
        assert!(error.contains("b: shard 2/3 did not finish (its sweep stopped after 1 of 2 runs)"), "{error}");
        let error = merge(&shards).unwrap_err();
        assert!(error.contains("missing shards 3/3"), "{error}");
        let merged = merge_with(&shards, true).unwrap();
        assert_eq!(merged.runs.iter().map(|run| run.seed).collect::<Vec<_>>(), vec![1, 2, 4]);
        assert_eq!(
            (merged.missing_shards.clone(), merged.unfinished_shards.clone()),
            (vec!["3/3".to_string()], vec!["2/3".to_string()])
        );
        assert!(!merged.finished && merged.planned_runs_count.is_none());
        let said = crate::report::index::incompleteness(&merged).expect("a partial merge is incomplete");
        assert!(
            said.contains("shards 3/3 are missing") && said.contains("shards 2/3 stopped before they finished"),
            "{said}"
        );
        assert!(crate::report::index::markdown(&merged).contains("**INCOMPLETE: shards 3/3 are missing"));
        // Whole and finished: nothing to say.
        let whole = merge_with(&[("a".into(), index("1/2", &[1, 3])), ("b".into(), index("2/2", &[2]))], true).unwrap();
        assert_eq!(crate::report::index::incompleteness(&whole), None);
        assert_eq!((whole.finished, whole.planned_runs_count), (true, Some(3)));
        assert_eq!((exit_status(&whole), exit_status(&merged)), (0, 2));
        let mut failed = merged.clone();
        failed.runs[0].passed = false;
        failed.failures_count = 1;
        assert_eq!(exit_status(&failed), 1, "a failed run is the finding, even in a partial merge");
    }
}
