//! The OTel Collector on each machine (work in progress).

pub mod channel;
pub mod config;
