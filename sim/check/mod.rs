//! The checkers: what must hold at the end of a run (ARCHITECTURE.md §4). Each check lives
//! in its own file with one signature (`verdict::Checker`: measurements and `[expect]` in,
//! `Option<Check>` out) and is listed once in `verdict::CHECKS`; each failure names what
//! broke, where, and the seed to replay it. The judged run becomes one result model
//! (`result::RunResult`) that every rendering reads.

pub mod bounds;
pub mod correlation;
pub mod delivery;
pub mod duplicates;
pub mod jobs;
pub mod latency;
pub mod liveness;
pub mod measured;
pub mod metrics;
pub mod name;
pub mod occupancy;
pub mod recovery;
mod render;
pub mod result;
pub mod throughput;
mod verdict;

pub use measured::{Latency, Measured};
pub use name::CheckName;
pub use result::RunResult;
pub use verdict::{CHECKS, Check, Checker, Verdict, judge};
