//! The pipeline's parts, one module each. Every part is a plain async component that owns
//! its state and talks only through the simulated network, its host's `Clock` and its disk
//! (ARCHITECTURE.md §1). Each part's config struct carries the real defaults of the software it
//! models.
//!
//! Every part is started the same way: `run(ctx: PartCtx, config) -> turmoil::Result`, from
//! its host's software, once per incarnation of the host. A part learns where its peers
//! listen from `ctx.peers` (the wiring resolves them from `vocab::pipeline`); no part names
//! another's host.

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

use std::sync::Arc;

use crate::ledger::{Custodian, Ledger};
use crate::vocab::Part;
use crate::vocab::pipeline::{Address, Peers};
use crate::world::HostCtx;

pub use bugs::Bugs;
pub use pipe::{PipeFull, RecordPipe};

/// What a part gets when its host starts: the host's context, the run's ledger, and where
/// its peers listen.
#[derive(Clone)]
pub struct PartCtx {
    pub host: HostCtx,
    pub ledger: Ledger,
    /// Where each part dials each peer: given by the wiring, never a constant in a part.
    pub peers: Arc<Peers>,
}

impl PartCtx {
    /// A context whose peers are the pipeline's own (`Peers::of_pipeline`), as the wiring
    /// gives them.
    pub fn new(host: HostCtx, ledger: Ledger) -> PartCtx {
        PartCtx { host, ledger, peers: Arc::new(Peers::of_pipeline()) }
    }

    /// The same context with other peers (a test pointing a part at a fake).
    pub fn with_peers(self, peers: Peers) -> PartCtx {
        PartCtx { peers: Arc::new(peers), ..self }
    }

    /// Where `dialer` (the part asking) reaches `listener`.
    pub fn peer(&self, dialer: Part, listener: Part) -> &Address {
        self.peers.address(dialer, listener)
    }

    /// This host's custodian identity for `part`, for ledger calls.
    pub fn custodian(&self, part: Part) -> Custodian {
        Custodian { part, host: self.host.name().clone() }
    }
}
