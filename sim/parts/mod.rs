//! The pipeline's parts, one module each. Every part is a plain async component that owns
//! its state and talks only through the simulated network, its host's `Clock` and its disk
//! (DESIGN.md §1). Each part's config struct carries the real defaults of the software it
//! models.
//!
//! Every part is started the same way: `run(ctx: PartCtx, config) -> turmoil::Result`, from
//! its host's software, once per incarnation of the host.

pub mod agent;
pub mod aggregator;
pub mod app;
pub mod collector;
pub mod dash0;
pub mod log_chunk;
pub mod pipe;
pub mod redis;
pub mod redis_client;
pub mod shipper;

use crate::ledger::{Custodian, Ledger, Part};
use crate::world::HostCtx;

pub use pipe::{PipeFull, RecordPipe};

/// Where each part listens: the real ports (DESIGN.md §1).
pub mod ports {
    /// Fluentd in_forward (agents, shared_key auth).
    pub const AGGREGATOR_FORWARD: u16 = 24225;
    /// Fluentd in_http (dev hosts, JSON).
    pub const AGGREGATOR_HTTP: u16 = 24224;
    /// Redis.
    pub const REDIS: u16 = 6379;
    /// Dash0 OTLP/gRPC.
    pub const DASH0_GRPC: u16 = 4317;
    /// Dash0 OTLP/HTTP.
    pub const DASH0_HTTP: u16 = 4318;
}

/// The hosts' names: the world's one host map (DESIGN.md §7). Machine hosts are named by
/// their machine_id (`comfyui-1`), dev hosts `dev-1`…
pub mod hosts {
    /// The API (client, API, its own agent and collector).
    pub const API: &str = "api";
    /// Railway's Fluentd.
    pub const AGGREGATOR: &str = "railway-aggregator";
    /// Railway's Redis (job queue and log buffer).
    pub const REDIS: &str = "railway-redis";
    /// Railway's shipper process.
    pub const SHIPPER: &str = "railway-shipper";
    /// Dash0 ingest.
    pub const DASH0: &str = "dash0";
}

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
