//! `obsim bench compare OLD.json NEW.json`: did a change make the simulation slower?
//!
//! Case by case (matched by name), the ratio new/old of simulated seconds per wall second,
//! records per CPU-second and peak memory. A case is a regression when its speed (simulated
//! s per wall s) fell by more than the threshold (new < old · (1 − t/100)), or when it
//! measured in OLD and failed or was killed in NEW. CPU and memory ratios are shown, not
//! judged: a slower case shows in its speed.
//!
//! Why a wide default threshold: the bench's numbers are wall-clock numbers on a shared
//! machine; two runs of the same build differ by several percent (README "Performance").

use std::fmt::Write as _;

use super::render::figure;
use super::{BENCH_SCHEMA_VERSION, BenchReport, CaseResult, Stop};

/// The default threshold, percent.
pub const THRESHOLD_PERCENT_DEFAULT: f64 = 20.0;

/// One case compared.
#[derive(Clone, Debug, PartialEq)]
pub struct CaseComparison {
    /// The case's name.
    pub name: String,
    /// Simulated s per wall s, old and new.
    pub speed: (f64, f64),
    /// new / old of the speed (`None` when old measured nothing).
    pub speed_ratio: Option<f64>,
    /// new / old of simulated s per CPU-second: shown, not judged (steadier than the wall
    /// speed on a shared machine).
    pub cpu_speed_ratio: Option<f64>,
    /// new / old of records per CPU-second.
    pub records_per_cpu_sec_ratio: Option<f64>,
    /// new / old of peak memory.
    pub peak_mib_ratio: Option<f64>,
    /// Why this case is a regression, if it is.
    pub regression: Option<String>,
}

/// The outcome of a comparison.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BenchComparison {
    /// The cases in both files, in the old file's order.
    pub cases: Vec<CaseComparison>,
    /// What is not a regression but worth saying: cases in only one file, different settings.
    pub notes: Vec<String>,
}

impl BenchComparison {
    /// How many cases regressed.
    pub fn regressions_count(&self) -> usize {
        self.cases.iter().filter(|case| case.regression.is_some()).count()
    }

    /// The comparison as an aligned table, regressions marked, then the notes.
    pub fn render(&self, threshold_percent: f64) -> String {
        let ratio = |value: Option<f64>| value.map_or_else(|| "—".to_string(), |r| format!("{r:.2}×"));
        let mut text = String::new();
        let _ = writeln!(
            text,
            "{:<12} {:>10} {:>10} {:>7} {:>12} {:>9}  verdict",
            "case", "old", "new", "speed", "records/CPU", "peak MiB"
        );
        for case in &self.cases {
            let verdict =
                case.regression.as_deref().map_or_else(|| "ok".to_string(), |why| format!("REGRESSION: {why}"));
            let _ = writeln!(
                text,
                "{:<12} {:>10} {:>10} {:>7} {:>9} {:>11} {:>8}  {verdict}",
                case.name,
                figure(case.speed.0),
                figure(case.speed.1),
                ratio(case.speed_ratio),
                ratio(case.cpu_speed_ratio),
                ratio(case.records_per_cpu_sec_ratio),
                ratio(case.peak_mib_ratio),
            );
        }
        let _ = writeln!(
            text,
            "old, new: simulated s per wall s; speed, CPU speed, records/CPU, peak MiB: new/old; a case regresses when its speed falls by more than {threshold_percent}%"
        );
        for note in &self.notes {
            let _ = writeln!(text, "note: {note}");
        }
        let _ = writeln!(text, "{} regressions", self.regressions_count());
        text
    }
}

/// Reads a bench JSON file's text; `name` names it in errors.
pub fn parse_report(name: &str, text: &str) -> Result<BenchReport, String> {
    let report: BenchReport =
        serde_json::from_str(text).map_err(|error| format!("{name}: not an obsim bench JSON file: {error}"))?;
    if report.bench_schema_version != BENCH_SCHEMA_VERSION {
        return Err(format!(
            "{name}: bench_schema_version {} (this obsim reads {BENCH_SCHEMA_VERSION})",
            report.bench_schema_version
        ));
    }
    Ok(report)
}

/// new / old, when old is a positive measurement and new a measurement.
fn ratio(old: Option<f64>, new: Option<f64>) -> Option<f64> {
    match (old, new) {
        (Some(old), Some(new)) if old > 0.0 && new.is_finite() => Some(new / old),
        _ => None,
    }
}

/// Whether a case measured anything (it ran to the end or to its budget).
fn measured(case: &CaseResult) -> bool {
    matches!(case.stop, Stop::Done | Stop::WallBudget)
}

/// Compares one case present in both reports.
fn compare_case(old: &CaseResult, new: &CaseResult, threshold_percent: f64) -> CaseComparison {
    let speed_ratio = ratio(Some(old.sim_per_wall), Some(new.sim_per_wall)).filter(|_| measured(old));
    let regression = if measured(old) && !measured(new) {
        Some(format!("measured before, {:?} now", new.stop).to_lowercase())
    } else {
        speed_ratio
            .filter(|r| *r < 1.0 - threshold_percent / 100.0)
            .map(|r| format!("speed fell {:.0}% (more than {threshold_percent}%)", (1.0 - r) * 100.0))
    };
    CaseComparison {
        name: old.name.clone(),
        speed: (old.sim_per_wall, new.sim_per_wall),
        speed_ratio,
        cpu_speed_ratio: ratio(old.sim_per_cpu, new.sim_per_cpu),
        records_per_cpu_sec_ratio: ratio(old.records_per_cpu_sec, new.records_per_cpu_sec),
        peak_mib_ratio: ratio(old.peak_mib, new.peak_mib),
        regression,
    }
}

/// Compares `new` with `old` case by case (in OLD's order); `threshold_percent` must be a
/// percentage ≥ 0.
pub fn compare(old: &BenchReport, new: &BenchReport, threshold_percent: f64) -> Result<BenchComparison, String> {
    if !(threshold_percent.is_finite() && (0.0..100.0).contains(&threshold_percent)) {
        return Err(format!("--threshold {threshold_percent} must be a percentage from 0 to below 100"));
    }
    let mut comparison = BenchComparison::default();
    for old_case in &old.cases {
        match new.cases.iter().find(|case| case.name == old_case.name) {
            Some(new_case) => comparison.cases.push(compare_case(old_case, new_case, threshold_percent)),
            None => comparison.notes.push(format!("case {} is only in the old file", old_case.name)),
        }
    }
    for new_case in new.cases.iter().filter(|case| !old.cases.iter().any(|old_case| old_case.name == case.name)) {
        comparison.notes.push(format!("case {} is only in the new file", new_case.name));
    }
    if old.profile != new.profile {
        comparison.notes.push(format!("profiles differ: {} vs {} (not comparable)", old.profile, new.profile));
    }
    if old.sim_secs != new.sim_secs || old.case_wall_secs != new.case_wall_secs {
        comparison.notes.push(format!(
            "settings differ: {} vs {} simulated s, {} vs {} s budget",
            old.sim_secs, new.sim_secs, old.case_wall_secs, new.case_wall_secs
        ));
    }
    Ok(comparison)
}
