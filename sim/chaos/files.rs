//! Which scenario files a sweep runs: the files named, and the `.toml` files of the folders
//! named, in path order. Every file is swept: with its own `[chaos]` table, or with one
//! derived from its config (`crate::chaos::derive`) when it has none. A file opts out with
//! `[chaos] skip = "reason"`; opted-out files are listed with their reasons.

use std::path::PathBuf;
use std::sync::Arc;

use super::derive::{Exclusions, derive};
use crate::scenario::{Scenario, ScenarioError};

/// Most files one sweep may take.
pub(crate) const FILES_LIMIT: usize = 10_000;

/// The files of a sweep.
#[derive(Debug, Default)]
pub struct SweepFiles {
    /// Files swept, loaded, in path order; each has a `[chaos]` table (its own or derived).
    pub chaos: Vec<(PathBuf, Arc<Scenario>)>,
    /// The files of `chaos` whose table was derived, with the kinds left out and the
    /// unaccepted causes that ruled each out.
    pub derived: Vec<(PathBuf, Exclusions)>,
    /// Files that opt out (`[chaos] skip`), with their reasons.
    pub opted_out: Vec<(PathBuf, String)>,
}

/// Why the files could not be gathered.
#[derive(Debug)]
pub enum FilesError {
    Unreadable { path: PathBuf, message: String },
    Invalid(ScenarioError),
    TooMany(usize),
}

impl std::fmt::Display for FilesError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FilesError::Unreadable { path, message } => write!(f, "{}: {message}", path.display()),
            FilesError::Invalid(error) => write!(f, "invalid scenario: {error}"),
            FilesError::TooMany(count) => write!(f, "{count} scenario files exceed the limit of {FILES_LIMIT}"),
        }
    }
}

/// Loads every scenario `paths` name (files, or folders of `.toml` files).
pub fn gather(paths: &[PathBuf]) -> Result<SweepFiles, FilesError> {
    let mut files = SweepFiles::default();
    for path in found(paths)? {
        let mut scenario = Scenario::load(&path).map_err(FilesError::Invalid)?;
        match &scenario.chaos {
            Some(chaos) => match &chaos.skip {
                Some(reason) => files.opted_out.push((path, reason.clone())),
                None => files.chaos.push((path, Arc::new(scenario))),
            },
            None => {
                let derived = derive(&scenario);
                // Every config survives the clock kinds, so a derived table is never empty.
                assert!(!derived.chaos.kinds.is_empty(), "{}: no kind derived", path.display());
                scenario.chaos = Some(derived.chaos);
                files.derived.push((path.clone(), derived.excluded));
                files.chaos.push((path, Arc::new(scenario)));
            }
        }
    }
    Ok(files)
}

/// The scenario files `paths` name, sorted and without repeats.
pub fn found(paths: &[PathBuf]) -> Result<Vec<PathBuf>, FilesError> {
    let mut found: Vec<PathBuf> = Vec::new();
    for path in paths {
        if path.is_dir() {
            let entries = std::fs::read_dir(path)
                .map_err(|error| FilesError::Unreadable { path: path.clone(), message: error.to_string() })?;
            for entry in entries {
                let entry =
                    entry.map_err(|error| FilesError::Unreadable { path: path.clone(), message: error.to_string() })?;
                if entry.path().extension().is_some_and(|ext| ext == "toml") {
                    found.push(entry.path());
                }
                if found.len() > FILES_LIMIT {
                    return Err(FilesError::TooMany(found.len()));
                }
            }
        } else {
            found.push(path.clone());
        }
        if found.len() > FILES_LIMIT {
            return Err(FilesError::TooMany(found.len()));
        }
    }
    found.sort();
    found.dedup();
    Ok(found)
}
