//! Chaos sweeps: many seeds over scenario files, each seed with its own random fault
//! schedule (swarm style), every failure shrunk to a small replayable scenario.
//!
//! The pieces, one file each:
//! - a scenario's `[chaos]` table (which kinds, how long, what must hold) is scenario data:
//!   `crate::scenario::chaos`;
//! - `strategy.rs`: the schedule drawn for (scenario, seed) by proptest strategies;
//! - `case.rs`: a chaos case — the base scenario with the drawn schedule, the chaos
//!   drain and expectations — written out as a plain scenario file, so what ran is
//!   exactly what `obsim replay` runs;
//! - `shrink.rs`: minimizing a failing case while the same check still fails;
//! - `sweep.rs`: seeds, shards and parallel jobs, with results in a fixed order;
//! - `derive.rs`: the `[chaos]` table of a file without one, from its config;
//! - `drain.rs`: a case's drain, from its faults and the parts' backoffs;
//! - `files.rs`: which files a sweep takes; `output.rs`: failure files and the index;
//! - `progress.rs`: the phase a sweep reports and its progress line (runs, rate, ETA).

pub mod case;

pub mod derive;
pub mod drain;
pub mod files;
pub mod output;
pub mod progress;
pub mod shrink;
pub mod strategy;
pub mod sweep;

pub use case::{Case, CaseError};
pub use progress::{Phase, SweepObserver};
pub use shrink::{Shrunk, shrink, shrink_observed};
pub use sweep::{SweepOptions, SweepRun, sweep, sweep_observed};
