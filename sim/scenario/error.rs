//! Why a scenario file was refused: the file, the line and column, the key path, and the rule.
//!
//! Why this shape: scenario authors edit TOML by hand; an error that says only "invalid
//! type" costs them a search. Every refusal names where to look, like a compiler does: the
//! exact key path (`fault[0].rate`, `topology.machines[1].count`) and that key's own line.
//!
//! How a place is found: the document is parsed once more into toml's spanned tree
//! ([`toml::de::DeTable`]) and flattened into [`Entry`]s, one per key and per array element,
//! each with its path and byte spans. A serde error's span is then matched to the deepest
//! entry that holds it; a rule broken after deserialization names its path, which is looked
//! up in the same list. Where serde gives only a whole table's span (tagged enums such as
//! `[[fault]]` buffer their fields and lose the spans), the culprit key is named by the
//! message (`unknown field`, `missing field`) or found by blanking each key of that table in
//! turn and seeing which one the error goes away with.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use toml::de::{DeTable, DeValue};

/// A scenario that cannot run. Its `Display` is `file:line:column: key `path`: message`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScenarioError {
    pub file: PathBuf,
    /// 1-based line and column, when the error has a place in the file.
    pub line_column: Option<(usize, usize)>,
    /// The key path the error is about (e.g. `agent.retry_limit`, `fault[2].rate`), when
    /// the error is about a key.
    pub key: Option<String>,
    pub message: String,
}

/// One key or array element of the document: its path and where it is written.
#[derive(Clone, Debug)]
pub(crate) struct Entry {
    /// `topology.machines[1].count`.
    pub path: String,
    /// Where the entry starts: its key (for an array element, the element itself).
    pub(crate) key_span: Range<usize>,
    /// Its value (for a table written as `[header]`, the header).
    pub(crate) value_span: Range<usize>,
    /// Whether the value is a table (errors about a whole table name one of its keys).
    pub(crate) is_table: bool,
}

/// Every entry of `source` in document-walk order, or `None` when it is not valid TOML.
pub(crate) fn entries(source: &str) -> Option<Vec<Entry>> {
    let document = DeTable::parse(source).ok()?;
    let mut entries = Vec::new();
    walk_table(document.get_ref(), "", &mut entries);
    Some(entries)
}

/// Appends the entries of `table` (at `prefix`) and of everything inside it.
fn walk_table(table: &DeTable<'_>, prefix: &str, entries: &mut Vec<Entry>) {
    for (key, value) in table.iter() {
        let path = if prefix.is_empty() { key.get_ref().to_string() } else { format!("{prefix}.{}", key.get_ref()) };
        entries.push(Entry {
            path: path.clone(),
            key_span: key.span(),
            value_span: value.span(),
            is_table: matches!(value.get_ref(), DeValue::Table(_)),
        });
        walk_value(value.get_ref(), &path, entries);
    }
}

/// Appends the entries inside `value` (at `path`): a table's keys, an array's elements.
fn walk_value(value: &DeValue<'_>, path: &str, entries: &mut Vec<Entry>) {
    match value {
        DeValue::Table(table) => walk_table(table, path, entries),
        DeValue::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                let item_path = format!("{path}[{index}]");
                entries.push(Entry {
                    path: item_path.clone(),
                    key_span: item.span(),
                    value_span: item.span(),
                    is_table: matches!(item.get_ref(), DeValue::Table(_)),
                });
                walk_value(item.get_ref(), &item_path, entries);
            }
        }
        _ => {}
    }
}

/// Whether `outer` holds `inner` (an empty `inner` at `outer`'s start counts).
fn holds(outer: &Range<usize>, inner: &Range<usize>) -> bool {
    outer.start <= inner.start && inner.end <= outer.end && (inner.start < outer.end || outer.is_empty())
}

/// The deepest entry whose key or value holds `span`.
fn deepest_at<'a>(entries: &'a [Entry], span: &Range<usize>) -> Option<&'a Entry> {
    entries
        .iter()
        .filter(|entry| holds(&entry.key_span, span) || holds(&entry.value_span, span))
        .max_by_key(|entry| (entry.path.len(), std::cmp::Reverse(entry.value_span.len())))
}

/// The text between the first pair of backticks in `message` after `prefix`.
fn quoted_after<'a>(message: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = message.strip_prefix(prefix)?.strip_prefix('`')?;
    rest.split_once('`').map(|(name, _)| name)
}

impl ScenarioError {
    /// An error about the key at `path` (e.g. `fault[0].rate`), placed on that key's own
    /// line; a key left out (its default broke a rule) is placed on the nearest enclosing
    /// table or element that is written, and on no line at the top level.
    pub(crate) fn at_path(file: &Path, source: &str, path: &str, message: impl Into<String>) -> Self {
        let line_column = entries(source).and_then(|entries| {
            let mut prefix = path;
            loop {
                if let Some(entry) = entries.iter().find(|entry| entry.path == prefix) {
                    return Some(line_column(source, entry.key_span.start));
                }
                prefix = parent_path(prefix)?;
            }
        });
        ScenarioError { file: file.to_path_buf(), line_column, key: Some(path.to_string()), message: message.into() }
    }

    /// An error from the TOML/serde layer, placed by its byte span on the exact key path.
    /// `reparse` deserializes a changed text the same way (it finds the culprit key of an
    /// error that serde could place only on a whole table).
    pub(crate) fn from_toml(
        file: &Path,
        source: &str,
        error: &toml::de::Error,
        reparse: &dyn Fn(&str) -> Option<toml::de::Error>,
    ) -> Self {
        let message = error.message().trim_end().to_string();
        let whole = |line_column, key, message| ScenarioError { file: file.to_path_buf(), line_column, key, message };
        let Some(span) = error.span() else { return whole(None, None, message) };
        // Not TOML at all (a syntax error): only the place can be given.
        let Some(all) = entries(source) else { return whole(Some(line_column(source, span.start)), None, message) };
        // An empty span is serde's "the document": a missing top-level key.
        let entry = if span.is_empty() { None } else { deepest_at(&all, &span) };
        let Some(entry) = entry else {
            // Nothing holds it: the top level itself (a missing top-level key).
            return match quoted_after(&message, "missing field ") {
                Some(_) => whole(None, None, format!("{message} (top level)")),
                None => whole(Some(line_column(source, span.start)), None, message),
            };
        };
        let whole_table = entry.is_table && (span == entry.value_span || span == entry.key_span);
        if !whole_table {
            return whole(Some(line_column(source, entry.key_span.start)), Some(entry.path.clone()), message);
        }
        // An array of tables (`[[fault]]`) is placed on its first header whichever element
        // failed: find the element first.
        let entry = if entry.path.ends_with(']') {
            failing_element(source, &all, entry, error, reparse).unwrap_or(entry)
        } else {
            entry
        };
        let table_place = line_column(source, entry.key_span.start);
        // The table as a whole: name the key inside it the message or a probe points at.
        if let Some(name) = quoted_after(&message, "missing field ") {
            return whole(Some(table_place), Some(format!("{}.{name}", entry.path)), message);
        }
        let child = |name: &str| all.iter().find(|child| child.path == format!("{}.{name}", entry.path));
        // An unknown variant is named by its value: the child whose value is that string.
        let by_value = |variant: &str| {
            let written = format!("\"{variant}\"");
            all.iter().find(|child| {
                child.path.strip_prefix(&format!("{}.", entry.path)).is_some_and(|rest| !rest.contains(['.', '[']))
                    && source.get(child.value_span.clone()) == Some(written.as_str())
            })
        };
        let named = quoted_after(&message, "unknown field ")
            .and_then(child)
            .or_else(|| quoted_after(&message, "unknown variant ").and_then(by_value));
        let culprit = named.or_else(|| probe_culprit(source, &all, entry, error, reparse));
        match culprit {
            Some(child) => whole(Some(line_column(source, child.key_span.start)), Some(child.path.clone()), message),
            None => whole(Some(table_place), Some(entry.path.clone()), message),
        }
    }

    /// An error about the file as a whole (unreadable).
    pub(crate) fn whole_file(file: &Path, message: impl Into<String>) -> Self {
        ScenarioError { file: file.to_path_buf(), line_column: None, key: None, message: message.into() }
    }
}

/// The direct child of `table` whose removal makes `error` go away (or leaves only "missing
/// field" for that very key): the key the error is about. The `kind` tag is never blamed
/// this way (removing it always changes the error; a bad kind is named by its message).
/// Bounded: one re-parse per key of that one table.
fn probe_culprit<'a>(
    source: &str,
    all: &'a [Entry],
    table: &Entry,
    error: &toml::de::Error,
    reparse: &dyn Fn(&str) -> Option<toml::de::Error>,
) -> Option<&'a Entry> {
    let prefix = format!("{}.", table.path);
    let mut children: Vec<&Entry> = all
        .iter()
        .filter(|child| child.path.strip_prefix(&prefix).is_some_and(|rest| !rest.contains(['.', '['])))
        .collect();
    children.sort_by_key(|child| child.key_span.start);
    children.into_iter().filter(|child| !child.path.ends_with(".kind")).find(|child| {
        let blanked = blank(source, child.key_span.start..child.value_span.end);
        let name = child.path.rsplit('.').next().unwrap_or_default();
        match reparse(&blanked) {
            None => true,
            Some(after) => {
                let message = after.message().trim_end();
                message == format!("missing field `{name}`")
                    || (message != error.message().trim_end() && !message.starts_with("missing field"))
            }
        }
    })
}

/// Which element of the array `element` belongs to fails: the first whose removal makes the
/// error go away or change. Bounded: one re-parse per element.
fn failing_element<'a>(
    source: &str,
    all: &'a [Entry],
    element: &Entry,
    error: &toml::de::Error,
    reparse: &dyn Fn(&str) -> Option<toml::de::Error>,
) -> Option<&'a Entry> {
    let array = parent_path(&element.path)?;
    let elements = (0..).map_while(|index| {
        let path = format!("{array}[{index}]");
        all.iter().find(|entry| entry.path == path)
    });
    for candidate in elements {
        // The element's extent: its header or braces to the end of its last key's value.
        let inside = format!("{}.", candidate.path);
        let end = all
            .iter()
            .filter(|entry| entry.path.starts_with(&inside))
            .map(|entry| entry.value_span.end)
            .fold(candidate.value_span.end, usize::max);
        let blanked = blank(source, candidate.key_span.start..end);
        let gone_or_changed = reparse(&blanked).is_none_or(|after| after.message() != error.message());
        if gone_or_changed {
            return Some(candidate);
        }
    }
    None
}

/// `source` with the bytes of `range` turned to spaces (newlines kept): the key is gone and
/// every other span stays where it was.
fn blank(source: &str, range: Range<usize>) -> String {
    source.char_indices().map(|(at, c)| if range.contains(&at) && c != '\n' { ' ' } else { c }).collect()
}

/// `a.b[2].c` → `a.b[2]` → `a.b` → `a` → none.
fn parent_path(path: &str) -> Option<&str> {
    let cut = path.rfind(['.', '['])?;
    Some(&path[..cut])
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
pub(crate) fn line_column(source: &str, offset: usize) -> (usize, usize) {
    let before = &source[..offset.min(source.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rfind('\n').map_or(before.len(), |newline| before.len() - newline - 1) + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_walk_tables_arrays_and_inline_tables() {
        let source = "name = \"x\"\n[topology]\nmachines = [{ type = \"a\", count = 1 }, { type = \"b\" }]\n[[fault]]\nkind = \"crash\"\n";
        let all = entries(source).unwrap();
        let paths: Vec<&str> = all.iter().map(|entry| entry.path.as_str()).collect();
        for path in ["name", "topology.machines[1].type", "topology.machines[0].count", "fault[0].kind"] {
            assert!(paths.contains(&path), "{path} not in {paths:?}");
        }
        let error = ScenarioError::at_path(Path::new("f"), source, "topology.machines[1].count", "m");
        assert_eq!(error.line_column, Some((3, 40)), "a missing key is placed on its element");
        assert_eq!(parent_path("a.b[2].c"), Some("a.b[2]"));
        assert_eq!(parent_path("a"), None);
    }
}
