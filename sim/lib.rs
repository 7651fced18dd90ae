//! obsim: a deterministic simulation and chaos-testing harness for the log and trace
//! pipeline Fluent Bit → Fluentd → Redis → Dash0 (logs) and OTel Collector → Dash0 (spans,
//! metrics). See ARCHITECTURE.md for the architecture and the determinism rules.

// The determinism rules (ARCHITECTURE.md §2) as clippy checks them: clippy.toml lists the
// clock reads, OS randomness, hash maps and global spawns that sim/ may not use.
#![warn(clippy::disallowed_methods, clippy::disallowed_types)]

pub mod bench;
pub mod chaos;
pub mod check;
pub mod determinism;
pub mod faults;
pub mod fuzzing;
pub mod gauges;
pub mod ledger;
pub mod live;
pub mod parts;
pub mod pipeline;
pub mod proto;
pub mod record;
pub mod report;
pub mod scenario;
pub mod units;
pub mod vocab;
pub mod world;
