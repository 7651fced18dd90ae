//! Why a scenario file was refused: the file, the line and column, the key, and the rule.
//!
//! Why this shape: scenario authors edit TOML by hand; an error that says only "invalid
//! type" costs them a search. Every refusal names where to look, like a compiler does.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// A scenario that cannot run. Its `Display` is `file:line:column: key: message`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScenarioError {
    pub file: PathBuf,
    /// 1-based line and column, when the error has a place in the file.
    pub line_column: Option<(usize, usize)>,
    /// The key the error is about (e.g. `agent.retry_limit`), when known.
    pub key: Option<String>,
    pub message: String,
}

impl ScenarioError {
    /// An error about `key` with no better place than the key's own line (found by search).
    pub fn at_key(file: &Path, source: &str, key: &str, message: impl Into<String>) -> Self {
        ScenarioError {
            file: file.to_path_buf(),
            line_column: find_key_line(source, key).map(|line| (line, 1)),
            key: Some(key.to_string()),
            message: message.into(),
        }
    }

    /// An error about `key` inside the `index`-th `[[table]]` (0-based), placed on that key's
    /// line within the table, or on the table's header.
    pub fn in_table(file: &Path, source: &str, table: &str, index: usize, key: &str, message: impl Into<String>) -> Self {
        let header = format!("[[{table}]]");
        let lines: Vec<&str> = source.lines().collect();
        let start = lines.iter().enumerate().filter(|(_, line)| line.trim_start().starts_with(&header)).nth(index).map(|(n, _)| n);
        let line = start.map(|start| {
            lines[start + 1..]
                .iter()
                .take_while(|line| !line.trim_start().starts_with('['))
                .position(|line| line.split_once('=').is_some_and(|(name, _)| name.trim() == key))
                .map_or(start + 1, |offset| start + 2 + offset)
        });
        ScenarioError {
            file: file.to_path_buf(),
            line_column: line.map(|line| (line, 1)),
            key: Some(format!("{table}[{index}].{key}")),
            message: message.into(),
        }
    }

    /// An error from the TOML/serde layer, placed by its byte span.
    pub fn from_toml(file: &Path, source: &str, error: &toml::de::Error) -> Self {
        let span = error.span();
        let line_column = span.clone().map(|span| line_column(source, span.start));
        let key = span.and_then(|span| key_at(source, span));
        ScenarioError {
            file: file.to_path_buf(),
            line_column,
            key,
            message: error.message().trim_end().to_string(),
        }
    }

    /// An error about the file as a whole (unreadable).
    pub fn whole_file(file: &Path, message: impl Into<String>) -> Self {
        ScenarioError { file: file.to_path_buf(), line_column: None, key: None, message: message.into() }
    }
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some((line, column)) = self.line_column {
            write!(f, ":{line}:{column}")?;
        }
        if let Some(key) = &self.key {
            write!(f, ": key `{key}`")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ScenarioError {}

/// 1-based (line, column) of byte `offset` in `source`.
fn line_column(source: &str, offset: usize) -> (usize, usize) {
    let before = &source[..offset.min(source.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rfind('\n').map_or(before.len(), |newline| before.len() - newline - 1) + 1;
    (line, column)
}

/// The bare key the span points at, if it points at `key = …` or at a value on such a line.
fn key_at(source: &str, span: Range<usize>) -> Option<String> {
    let start = span.start.min(source.len());
    let line_start = source[..start].rfind('\n').map_or(0, |newline| newline + 1);
    let line_end = source[start..].find('\n').map_or(source.len(), |newline| start + newline);
    let line = source[line_start..line_end].trim();
    if line.starts_with('[') {
        return Some(line.trim_matches(|c| c == '[' || c == ']').trim().to_string());
    }
    let (key, _) = line.split_once('=')?;
    let key = key.trim().trim_matches('"');
    // Qualify the key by the table it sits in: `agent.retry_limit`, not `retry_limit`.
    let table = source[..line_start].lines().rev().map(str::trim).find(|line| line.starts_with('['));
    Some(match table {
        Some(header) => format!("{}.{key}", header.trim_matches(|c| c == '[' || c == ']').trim()),
        None => key.to_string(),
    })
}

/// The first line on which `key`'s last segment is assigned or opened as a table.
fn find_key_line(source: &str, key: &str) -> Option<usize> {
    let last = key.rsplit('.').next().unwrap_or(key);
    source.lines().position(|line| {
        let line = line.trim_start();
        line.starts_with(&format!("[{key}]"))
            || line.starts_with(&format!("[[{key}]]"))
            || line.split_once('=').is_some_and(|(name, _)| name.trim() == last)
    })
    .map(|index| index + 1)
}
