//! The `duplicates` check: records Dash0 stored more than once, as a share of the records
//! delivered, within `[expect] max_duplicate_ratio`.

use super::measured::Measured;
use super::name::CheckName;
use super::verdict::Check;
use crate::scenario::Expect;

/// The `duplicates` check (always on).
pub fn check(run: &Measured, expect: &Expect) -> Option<Check> {
    let (delivered, duplicated) =
        run.accounting.totals.values().fold((0, 0), |(d, u), totals| (d + totals.delivered, u + totals.duplicated));
    assert!(duplicated <= delivered, "{duplicated} records duplicated of {delivered} delivered");
    let ratio = if delivered == 0 { 0.0 } else { duplicated as f64 / delivered as f64 };
    Some(Check {
        name: CheckName::Duplicates,
        passed: ratio <= expect.max_duplicate_ratio,
        detail: format!(
            "{duplicated} of {delivered} records duplicated ({ratio:.4}, allowed {})",
            expect.max_duplicate_ratio
        ),
    })
}
