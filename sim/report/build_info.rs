//! Which obsim judged a run: its version and the commit it was built from.
//!
//! Why in every `result.json` and `index.json`: nights are compared with nights, and a
//! failure found last night is replayed today. When a replay says NOT REPRODUCED, or a night
//! "regresses", the first question is whether the code changed; the stamp answers it.
//! The commit comes from `build.rs` (environment `OBSIM_COMMIT`, else `git rev-parse HEAD`,
//! else "unknown"). It is the only field of a report that depends on the build and not on
//! the seed, so tests that pin a report's bytes redact it (see `BuildInfo::REDACTED`).

use serde::{Deserialize, Serialize};

/// The obsim that wrote a report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildInfo {
    /// The crate version, e.g. "0.1.0".
    pub version: String,
    /// The 40-hex commit the binary was built from, or "unknown".
    pub commit: String,
}

impl BuildInfo {
    /// What tests write in place of the commit when they pin a report's bytes.
    pub const REDACTED: &'static str = "[commit]";

    /// The running binary's version and commit.
    pub fn current() -> BuildInfo {
        BuildInfo { version: VERSION.to_owned(), commit: COMMIT.to_owned() }
    }

    /// "obsim 0.1.0 (1a2b3c4d5e6f)": the short form a page or a terminal line shows.
    pub fn text(&self) -> String {
        let short = self.commit.get(..12).unwrap_or(&self.commit);
        format!("obsim {} ({short})", self.version)
    }

    /// Whether `self` and `other` were built from different code, as far as the stamps
    /// can tell ("unknown" on either side cannot tell, so it is not a difference).
    pub fn differs_from(&self, other: &BuildInfo) -> bool {
        let known = |info: &BuildInfo| info.commit != "unknown" && info.commit != Self::REDACTED;
        if known(self) && known(other) {
            return self.commit != other.commit;
        }
        self.version != other.version
    }
}

/// The crate version, from Cargo.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The commit, from `build.rs`.
pub const COMMIT: &str = env!("OBSIM_COMMIT");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stamp_names_a_version_and_a_full_commit_or_unknown() {
        let info = BuildInfo::current();
        assert!(!info.version.is_empty());
        assert!(
            info.commit == "unknown" || (info.commit.len() == 40 && info.commit.chars().all(|c| c.is_ascii_hexdigit())),
            "{info:?}"
        );
        assert!(info.text().starts_with("obsim "), "{}", info.text());
    }

    #[test]
    fn two_stamps_differ_only_when_both_commits_are_known_and_unequal() {
        let a = BuildInfo { version: "0.1.0".into(), commit: "a".repeat(40) };
        let b = BuildInfo { version: "0.1.0".into(), commit: "b".repeat(40) };
        let unknown = BuildInfo { version: "0.1.0".into(), commit: "unknown".into() };
        assert!(a.differs_from(&b));
        assert!(!a.differs_from(&a.clone()));
        assert!(!a.differs_from(&unknown), "unknown cannot tell");
        let newer = BuildInfo { version: "0.2.0".into(), commit: "unknown".into() };
        assert!(newer.differs_from(&unknown), "versions still tell");
    }
}
