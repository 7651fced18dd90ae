//! The repository explains itself: every document a source file cites is in the repository,
//! and every `ARCHITECTURE.md §N` it cites is a section that exists.
//!
//! Why a test: a citation of a document the reader does not have (a design brief kept
//! elsewhere) is a dead end; this fails on one, naming file and line.

mod source_tree;

use std::path::{Path, PathBuf};

/// The documents a line cites — `*.md` names in capitals, the repository's convention
/// (`ARCHITECTURE.md`, `README.md`; lower-case `summary.md` is a report obsim writes) — with
/// the `§N` after each when there is one.
fn citations(line: &str) -> Vec<(String, Option<u32>)> {
    let mut found = Vec::new();
    let mut rest = line;
    while let Some(at) = rest.find(".md") {
        let before = &rest[..at];
        let start = before.rfind(|c: char| !(c.is_alphanumeric() || c == '_' || c == '-' || c == '/' || c == '.'));
        let name = &before[start.map_or(0, |s| s + 1)..];
        let after = &rest[at + 3..];
        let section = after
            .trim_start()
            .strip_prefix('§')
            .map(|s| s.chars().take_while(char::is_ascii_digit).collect::<String>())
            .and_then(|digits| digits.parse().ok());
        let base = name.rsplit('/').next().unwrap_or(name);
        if base.chars().next().is_some_and(|c| c.is_ascii_uppercase()) {
            found.push((format!("{name}.md"), section));
        }
        rest = after;
    }
    found
}

/// The numbers of ARCHITECTURE.md's `## N.` sections.
fn architecture_sections(root: &Path) -> Vec<u32> {
    let text = std::fs::read_to_string(root.join("ARCHITECTURE.md")).expect("ARCHITECTURE.md is in the repository");
    text.lines()
        .filter_map(|line| line.strip_prefix("## "))
        .filter_map(|heading| heading.split('.').next()?.trim().parse().ok())
        .collect()
}

/// The `.rs` files under `dir`, appended to `out` (`source_tree` walks them in path order).
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    out.extend(source_tree::rust_files(dir));
}

#[test]
fn every_cited_document_and_section_is_in_the_repository() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let sections = architecture_sections(root);
    assert!(sections.len() >= 8, "ARCHITECTURE.md has numbered sections, found {sections:?}");
    let mut files = Vec::new();
    rust_files(&root.join("sim"), &mut files);
    rust_files(&root.join("tests"), &mut files);
    let mut broken = Vec::new();
    for file in &files {
        if file.ends_with("doc_citations.rs") {
            continue; // its own self-test cites a document elsewhere on purpose
        }
        let source = std::fs::read_to_string(file).unwrap();
        for (index, line) in source.lines().enumerate() {
            for (document, section) in citations(line) {
                let place = format!("{}:{}", file.strip_prefix(root).unwrap().display(), index + 1);
                if document.contains('/') || !root.join(&document).is_file() {
                    broken.push(format!("{place}: cites {document}, which is not a file at the repository's root"));
                } else if let Some(section) = section.filter(|_| document == "ARCHITECTURE.md")
                    && !sections.contains(&section)
                {
                    broken.push(format!("{place}: cites ARCHITECTURE.md §{section}, which has no such section"));
                }
            }
        }
    }
    assert!(broken.is_empty(), "citations outside the repository:\n{}", broken.join("\n"));
}

#[test]
fn a_citation_of_a_document_elsewhere_is_found() {
    assert_eq!(citations("//! see ../shared/DESIGN.md §2"), [("../shared/DESIGN.md".to_string(), Some(2))]);
    assert!(citations("reports/x/1/summary.md and index.md").is_empty(), "reports obsim writes are not citations");
    assert_eq!(
        citations("(ARCHITECTURE.md §4, budgets) and README.md"),
        [("ARCHITECTURE.md".to_string(), Some(4)), ("README.md".to_string(), None)]
    );
}
