//! The `occupancy` check: no custodian of a part held more records at once than `[expect]
//! max_occupancy` allows for that part (a bound on buffering per hop).

use std::fmt::Write as _;

use super::measured::Measured;
use super::name::CheckName;
use super::verdict::Check;
use crate::scenario::Expect;

/// The `occupancy` check (with `[expect] max_occupancy`).
pub fn check(run: &Measured, expect: &Expect) -> Option<Check> {
    if expect.max_occupancy.is_empty() {
        return None;
    }
    let mut over = String::new();
    let mut peaks = String::new();
    for (part, &limit) in &expect.max_occupancy {
        let peak = run
            .occupancy
            .iter()
            .filter(|(custodian, _)| custodian.part == *part)
            .max_by_key(|(custodian, occupancy)| (occupancy.peak_count, std::cmp::Reverse((*custodian).clone())));
        let Some((custodian, occupancy)) = peak else { continue };
        let _ = write!(peaks, " {custodian} {}/{limit}", occupancy.peak_count);
        for (custodian, occupancy) in run.occupancy.iter().filter(|(c, o)| c.part == *part && o.peak_count > limit) {
            let _ = write!(over, "\n    {custodian} held {} records at its peak, limit {limit}", occupancy.peak_count);
        }
    }
    Some(Check {
        name: CheckName::Occupancy,
        passed: over.is_empty(),
        detail: if over.is_empty() {
            format!("peak records held per part within max_occupancy:{peaks}")
        } else {
            format!("a hop buffered more than max_occupancy allows:{over}")
        },
    })
}
