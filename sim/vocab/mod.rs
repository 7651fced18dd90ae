//! The vocabulary: the names every layer shares — parts and signals, loss causes, event
//! kinds, the hosts and ports of the pipeline, and the pipeline's shape written once
//! ([`pipeline`]). Nothing here depends on anything else in the crate (ARCHITECTURE.md §6;
//! names as types: §10).

#[macro_use]
mod named;

mod event_kind;
mod loss_cause;
mod part;

pub use event_kind::EventKind;
pub use loss_cause::LossCause;
pub use part::{Part, Signal};
pub mod hosts;
pub mod pipeline;
pub mod ports;
