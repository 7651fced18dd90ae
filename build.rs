//! Stamps the commit obsim was built from into the binary (`OBSIM_COMMIT`), so every
//! `result.json` and `index.json` says which code judged it: a failure replayed after a
//! change that reads "NOT REPRODUCED" can then say the two commits differ.
//!
//! Why a build script and not a runtime `git` call: a report must name the code that ran,
//! not the checkout the binary happens to sit in. Order of sources: the `OBSIM_COMMIT`
//! environment variable (a build from a tarball or a CI that knows its commit), then
//! `git rev-parse HEAD`, then "unknown" (no git, not a checkout). No "-dirty" mark: it would
//! rebuild the crate on every `git add`, and a dirty tree is a developer's machine, not a
//! night's report.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=OBSIM_COMMIT");
    let from_env = std::env::var("OBSIM_COMMIT").ok().filter(|commit| !commit.trim().is_empty());
    let commit = from_env.or_else(git_head).unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=OBSIM_COMMIT={}", commit.trim());
    // Rebuild the stamp when HEAD moves: HEAD itself (a checkout) and the ref it points at
    // (a commit on the branch). `git rev-parse --git-path` finds both in a worktree too.
    for path in ["HEAD", "refs/heads"] {
        if let Some(file) = git(&["rev-parse", "--git-path", path]) {
            println!("cargo:rerun-if-changed={}", file.trim());
        }
    }
    if let Some(reference) = git(&["symbolic-ref", "-q", "HEAD"])
        && let Some(file) = git(&["rev-parse", "--git-path", reference.trim()])
    {
        println!("cargo:rerun-if-changed={}", file.trim());
    }
}

/// The full hash of HEAD, when this is a git checkout with git installed.
fn git_head() -> Option<String> {
    git(&["rev-parse", "HEAD"]).filter(|hash| hash.trim().len() == 40)
}

/// One git command's standard output, or None when git is missing or says no.
fn git(args: &[&str]) -> Option<String> {
    let output = Command::new("git").args(args).output().ok()?;
    if !output.status.success() {
        return None;
    }
    String::from_utf8(output.stdout).ok()
}
