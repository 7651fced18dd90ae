//! A scheduled fault as a window of true time: what reports shade on their plots and list.
//!
//! Why here and not on `FaultSpec`: a crash has no end of its own (the drain heals it) and a
//! clock step is an instant; a report needs both drawn as windows, ending when the load phase
//! does and at their start respectively.

use std::time::Duration;

use super::{FaultSpec, Heal};

/// One fault's window.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FaultWindow {
    /// Its position in the scenario's `[[fault]]` list.
    pub index: usize,
    /// The kind as scenarios spell it (`link_drop`, `restart`, …).
    pub kind: &'static str,
    pub start: Duration,
    /// Its own end; the end of the load phase for a fault the drain heals (a crash); its
    /// start for an instant one (a clock step).
    pub end: Duration,
    /// Whether it lasts until the drain heals it rather than ending by itself.
    pub ends_at_heal: bool,
    /// Whether it is never healed (`heal = "never"`): it holds until the run ends, and the
    /// run is judged with it in force.
    pub never_healed: bool,
    /// The fault as one line: kind and parameters.
    pub description: String,
}

impl FaultWindow {
    /// The window of `fault` in a load phase of `duration`, in a run that ends at `run_end`.
    pub fn of(index: usize, fault: &FaultSpec, duration: Duration, run_end: Duration) -> FaultWindow {
        let start = fault.at();
        let never_healed = fault.heal() == Heal::Never;
        let (end, ends_at_heal) = match (fault, fault.end()) {
            (_, Some(end)) => (end, false),
            (FaultSpec::ClockStep { .. }, None) => (start, false),
            (_, None) if never_healed => (run_end.max(start), false),
            (_, None) => (duration.max(start), true),
        };
        assert!(!(never_healed && ends_at_heal), "fault {index}: a never-healed fault cannot end at the heal");
        FaultWindow {
            index,
            kind: fault.kind(),
            start,
            end,
            ends_at_heal,
            never_healed,
            description: super::describe_line(fault),
        }
    }

    /// The windows of `faults` in a load phase of `duration` followed by `drain`, in
    /// schedule order.
    pub fn all(faults: &[FaultSpec], duration: Duration, drain: Duration) -> Vec<FaultWindow> {
        faults
            .iter()
            .enumerate()
            .map(|(index, fault)| FaultWindow::of(index, fault, duration, duration + drain))
            .collect()
    }
}
