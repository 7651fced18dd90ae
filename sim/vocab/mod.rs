//! The vocabulary: the names every layer shares — parts and signals, the hosts and ports of
//! the pipeline, and the pipeline's shape written once ([`pipeline`]). Nothing here depends
//! on anything else in the crate (ARCHITECTURE.md, "Layers").

mod part;

pub use part::{Part, Signal};
pub mod hosts;
pub mod pipeline;
pub mod ports;
