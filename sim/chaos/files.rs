//! Which scenario files a sweep runs: the files named, and the `.toml` files of the folders
//! named, in path order; files without a `[chaos]` table are skipped and listed.

use std::path::PathBuf;
use std::sync::Arc;

use crate::scenario::{Scenario, ScenarioError};

/// Most files one sweep may take.
pub(crate) const FILES_LIMIT: usize = 10_000;

/// The files of a sweep.
#[derive(Debug, Default)]
pub struct SweepFiles {
    /// Files with a `[chaos]` table, loaded, in path order.
    pub chaos: Vec<(PathBuf, Arc<Scenario>)>,
    /// Valid files without a `[chaos]` table.
    pub skipped: Vec<PathBuf>,
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
    let mut files = SweepFiles::default();
    for path in found {
        let scenario = Scenario::load(&path).map_err(FilesError::Invalid)?;
        if scenario.chaos.is_some() {
            files.chaos.push((path, Arc::new(scenario)));
        } else {
            files.skipped.push(path);
        }
    }
    Ok(files)
}
