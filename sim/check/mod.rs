//! The checkers: what must hold at the end of a run (ARCHITECTURE.md §4). Each one can fail, and
//! each failure names what broke, where, and the seed to replay it.

pub mod bounds;
pub mod correlation;
pub mod jobs;
pub mod metrics;
pub mod recovery;
pub mod throughput;
mod verdict;

pub use verdict::{Check, Verdict};
