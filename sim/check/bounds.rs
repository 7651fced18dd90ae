//! The `bounds` and `buffer_fill` checks: no buffer admitted a write its bound forbids
//! (`crate::gauges` keeps the books), and no buffer of a part filled past `[expect]
//! max_buffer_fill`.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::gauges::{BufferId, Gauge, Sample};
use crate::units::format_duration;
use crate::vocab::Part;

use super::measured::Measured;
use super::name::CheckName;
use super::verdict::Check;
use crate::scenario::Expect;

/// Violations listed in full at most; the rest are counted.
const VIOLATIONS_SHOWN_LIMIT: usize = 10;

/// The `bounds` check: no buffer admitted a write its bound forbids. Returns (passed,
/// detail); the detail shows each kind of buffer's fullest instance (peak/limit) on a pass,
/// and each broken bound with host, buffer, level, limit and time on a failure.
pub(crate) fn check_bounds(gauges: &BTreeMap<BufferId, Gauge>) -> (bool, String) {
    let broken: Vec<(&BufferId, &Gauge, Sample)> =
        gauges.iter().filter_map(|(id, gauge)| gauge.first_violation.map(|sample| (id, gauge, sample))).collect();
    if broken.is_empty() {
        return (true, format!("every buffer kept its bound:{}", peaks(gauges)));
    }
    let mut detail =
        format!("{} buffer(s) took writes past their limit (a part not enforcing its bound):", broken.len());
    for (id, gauge, sample) in broken.iter().take(VIOLATIONS_SHOWN_LIMIT) {
        let reason = gauge.bound.broken_by(sample).unwrap_or_default();
        let _ = write!(
            detail,
            "\n    {} {id} reached {} {} at {}, over {} {} in force then (allowed: {}): {reason}; {} such writes, {}",
            gauge.part.as_str(),
            sample.after,
            gauge.unit.as_str(),
            format_duration(sample.at),
            gauge.limit_name,
            sample.limit,
            gauge.bound.allowed(sample.limit),
            gauge.violations_count,
            gauge.describe_peak()
        );
    }
    if broken.len() > VIOLATIONS_SHOWN_LIMIT {
        let _ = write!(detail, "\n    … and {} more", broken.len() - VIOLATIONS_SHOWN_LIMIT);
    }
    (false, detail)
}

/// Per (part, buffer name): the instance that got fullest relative to its limit, and how
/// many instances there are (a fleet of 50 agents is one line).
fn peaks(gauges: &BTreeMap<BufferId, Gauge>) -> String {
    let mut groups: BTreeMap<(Part, &'static str), (usize, &BufferId, &Gauge)> = BTreeMap::new();
    for (id, gauge) in gauges {
        let entry = groups.entry((gauge.part, id.buffer)).or_insert((0, id, gauge));
        entry.0 += 1;
        if gauge.fill() > entry.2.fill() {
            entry.1 = id;
            entry.2 = gauge;
        }
    }
    let mut text = String::new();
    for (count, id, gauge) in groups.values() {
        let others = if *count > 1 { format!(" (fullest of {count})") } else { String::new() };
        let _ = write!(text, "\n    {id} {}{others}", gauge.describe_peak());
    }
    if text.is_empty() {
        text.push_str(" no bounded buffer reported");
    }
    text
}

/// The `buffer_fill` check (`[expect] max_buffer_fill = { aggregator = 0.8 }`): no admitted
/// write left a buffer of that part fuller than that fraction of the limit in force.
/// `None` when nothing is expected.
pub(crate) fn check_fill(gauges: &BTreeMap<BufferId, Gauge>, max_fill: &BTreeMap<Part, f64>) -> Option<(bool, String)> {
    if max_fill.is_empty() {
        return None;
    }
    let mut over = String::new();
    let mut measured = String::new();
    for (part, &allowed) in max_fill {
        let fullest = gauges
            .iter()
            .filter(|(_, gauge)| gauge.part == *part)
            .filter_map(|(id, gauge)| gauge.fullest.map(|sample| (id, gauge, sample)))
            .max_by(|a, b| a.2.fill().unwrap_or(0.0).total_cmp(&b.2.fill().unwrap_or(0.0)));
        let Some((id, gauge, sample)) = fullest else {
            let _ = write!(measured, "\n    {} no admission under a limit (allowed {allowed})", part.as_str());
            continue;
        };
        let fill = sample.fill().unwrap_or(0.0);
        let line = format!(
            "\n    {id} filled to {fill:.3} of {} ({}/{} {}) at {} (allowed {allowed})",
            gauge.limit_name,
            sample.after,
            sample.limit,
            gauge.unit.as_str(),
            format_duration(sample.at)
        );
        for (other_id, other, other_sample) in gauges
            .iter()
            .filter(|(_, gauge)| gauge.part == *part)
            .filter_map(|(id, gauge)| gauge.fullest.map(|sample| (id, gauge, sample)))
        {
            let other_fill = other_sample.fill().unwrap_or(0.0);
            if other_fill > allowed {
                let _ = write!(
                    over,
                    "\n    {other_id} filled to {other_fill:.3} of {} ({}/{} {}) at {}, above max_buffer_fill {} = {allowed}",
                    other.limit_name,
                    other_sample.after,
                    other_sample.limit,
                    other.unit.as_str(),
                    format_duration(other_sample.at),
                    part.as_str()
                );
            }
        }
        measured.push_str(&line);
    }
    Some(if over.is_empty() {
        (true, format!("fullest admission per part within max_buffer_fill:{measured}"))
    } else {
        (false, format!("a buffer filled past max_buffer_fill:{over}"))
    })
}

/// The `bounds` check (always on): `check_bounds` over the run's buffers.
pub fn check(run: &Measured, _expect: &Expect) -> Option<Check> {
    let (passed, detail) = check_bounds(&run.buffers);
    Some(Check { name: CheckName::Bounds, passed, detail })
}

/// The `buffer_fill` check (with `[expect] max_buffer_fill`): `check_fill` over the run's
/// buffers.
pub(crate) fn check_buffer_fill(run: &Measured, expect: &Expect) -> Option<Check> {
    let (passed, detail) = check_fill(&run.buffers, &expect.max_buffer_fill)?;
    Some(Check { name: CheckName::BufferFill, passed, detail })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gauges::{Bound, BufferGauges, GaugeSpec, Unit};
    use std::time::Duration;

    fn sample(before: u64, after: u64, limit: u64) -> Sample {
        Sample { before, after, limit, discardable: 0, at: Duration::from_secs(1) }
    }

    #[test]
    fn admission_bounds_allow_one_write_past_the_limit_and_nothing_while_full() {
        let fluentd = Bound::Admission { admits_at_limit: false, overshoot_limit: Some(100) };
        assert_eq!(fluentd.broken_by(&sample(0, 1_000, 1_000)), None, "up to the limit");
        assert_eq!(fluentd.broken_by(&sample(999, 1_050, 1_000)), None, "storable? then one write past it");
        assert!(fluentd.broken_by(&sample(1_000, 1_001, 1_000)).unwrap().contains("already at its limit"));
        assert!(fluentd.broken_by(&sample(900, 1_101, 1_000)).unwrap().contains("101 past the limit"));
        let redis = Bound::Admission { admits_at_limit: true, overshoot_limit: None };
        assert_eq!(redis.broken_by(&sample(1_000, 9_000, 1_000)), None, "used == maxmemory is not over it");
        assert!(redis.broken_by(&sample(1_001, 1_002, 1_000)).unwrap().contains("already over"));
        assert_eq!(redis.broken_by(&sample(5, 9_000, 0)), None, "maxmemory 0: no limit");
        let storage = Bound::Discards;
        assert_eq!(storage.broken_by(&sample(900, 3_000, 1_000)), None, "only busy chunks left");
        let kept = Sample { discardable: 500, ..sample(900, 3_000, 1_000) };
        assert!(storage.broken_by(&kept).unwrap().contains("500 of its data could have been discarded"));
    }

    #[test]
    fn a_shrunk_limit_below_the_level_is_no_violation_until_the_part_takes_more() {
        let gauges = BufferGauges::new();
        let spec = GaugeSpec {
            part: Part::Aggregator,
            limit_name: "total_limit_size",
            unit: Unit::Bytes,
            bound: Bound::Admission { admits_at_limit: false, overshoot_limit: Some(0) },
            limit: 1_000,
        };
        let handle = gauges.register("railway-aggregator", "buffer_bytes", spec);
        let gauge = handle.gauge.clone().unwrap();
        let at = Duration::from_secs(3);
        let admit = |before, after, limit, at| Sample { before, after, limit, discardable: 0, at };
        gauge.lock().unwrap().admit(admit(0, 900, 1_000, at));
        gauge.lock().unwrap().set_level(900, 100, at);
        gauge.lock().unwrap().set_level(50, 100, at);
        gauge.lock().unwrap().admit(admit(50, 100, 100, at));
        let snapshot = gauges.snapshot();
        let (passed, detail) = check_bounds(&snapshot);
        assert!(passed, "{detail}");
        assert!(
            detail.contains("railway-aggregator buffer_bytes peak 900/1000 bytes (total_limit_size) at 3s"),
            "{detail}"
        );
        let fill = BTreeMap::from([(Part::Aggregator, 0.95)]);
        let (passed, detail) = check_fill(&snapshot, &fill).unwrap();
        assert!(!passed && detail.contains("filled to 1.000 of total_limit_size (100/100 bytes)"), "{detail}");

        gauge.lock().unwrap().admit(admit(100, 150, 100, Duration::from_secs(7)));
        let (passed, detail) = check_bounds(&gauges.snapshot());
        assert!(!passed, "{detail}");
        assert!(
            detail.contains(
                "aggregator railway-aggregator buffer_bytes reached 150 bytes at 7s, over total_limit_size 100"
            ),
            "{detail}"
        );
    }
}
