//! The hosts' names: the world's one host map. Machine hosts are named by their machine_id
//! (`comfyui-1`), dev hosts `dev-1`…

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
