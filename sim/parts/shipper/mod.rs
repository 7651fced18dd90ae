//! The shipper: EMP's Railway process that drains the Redis log buffer into Dash0
//! (ARCHITECTURE.md §1, the `shipper` row).
//!
//! Where to look:
//! - [`queue`]: the reliable-queue commands (BLMOVE/LMOVE into `logs:processing`, LREM
//!   after 2xx, restart recovery, dead letters, giving expired batches back);
//! - [`batch`]: chunks → one OTLP `ExportLogsServiceRequest` (resource attributes);
//! - [`export`]: the POST to Dash0 `:4318/v1/logs` and what each status means;
//! - [`drain`]: the loop, custody in the ledger, retries and backoff;
//! - [`connect`]: the Redis connection over turmoil (shared with the app);
//! - [`config`]: `[shipper]` settings and their defaults.

pub mod batch;
pub mod config;
pub mod drain;
pub mod export;
pub mod queue;

pub use crate::parts::redis_client::RedisConn;
pub use config::ShipperConfig;
pub use drain::{Shipper, Verdict};
pub use export::{ExportOutcome, Exporter, HttpExporter};

use crate::parts::PartCtx;
use crate::vocab::{EventKind, Part};

/// Runs the shipper on its host for one incarnation, from the Redis to the Dash0 its `ctx`'s
/// peers name: validates the config, then drains forever (restart recovery first, on every
/// start and every reconnection).
pub async fn run(ctx: PartCtx, config: ShipperConfig) -> turmoil::Result {
    config.validate()?;
    ctx.host.record(EventKind::ShipperStart, format!("{} → dash0 /v1/logs", config.buffer_key));
    let dash0 = ctx.peer(Part::Shipper, Part::Dash0).clone();
    let redis = ctx.peer(Part::Shipper, Part::Redis).clone();
    let exporter = HttpExporter::new(dash0, config.token.clone(), config.dataset.clone(), config.request_timeout);
    let (connect_timeout, response_timeout) = (config.redis_timeout, config.redis_timeout + config.blmove_timeout);
    let mut shipper = Shipper::new(ctx, config, exporter);
    shipper.run_with(|| RedisConn::connect(&redis, connect_timeout, response_timeout)).await
}
