//! The pipeline's parts, one module each. Every part is a plain async component that owns
//! its state and talks only through the simulated network, its host's `Clock` and its disk
//! (ARCHITECTURE.md §1). Each part's config struct carries the real defaults of the software it
//! models.
//!
//! Every part is started the same way: `run(ctx: PartCtx, config) -> turmoil::Result`, from
//! its host's software, once per incarnation of the host.

pub mod agent;
pub mod aggregator;
pub mod app;
pub mod bugs;
pub mod collector;
pub mod dash0;
pub mod log_chunk;
pub mod pipe;
pub mod redis;
pub mod redis_client;
pub mod shipper;

use crate::ledger::{Custodian, Ledger};
use crate::vocab::Part;
use crate::world::HostCtx;

pub use bugs::Bugs;
pub use pipe::{PipeFull, RecordPipe};

/// What a part gets when its host starts: the host's context and the run's ledger.
#[derive(Clone)]
pub struct PartCtx {
    pub host: HostCtx,
    pub ledger: Ledger,
}

impl PartCtx {
    /// This host's custodian identity for `part`, for ledger calls.
    pub fn custodian(&self, part: Part) -> Custodian {
        Custodian { part, host: self.host.name().clone() }
    }
}
