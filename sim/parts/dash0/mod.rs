//! Dash0 ingest: the end of the pipeline, modelled on what Dash0 documents.
//!
//! - OTLP/HTTP (`http.rs`, hyper, :4318) and OTLP/gRPC (`grpc.rs`, tonic, :4317) for logs,
//!   traces and metrics, both judged by one `Ingest` (`ingest.rs`);
//! - `Authorization: Bearer <token>` (401 / UNAUTHENTICATED) and the optional
//!   `Dash0-Dataset` header (403 / PERMISSION_DENIED for a dataset the token may not write);
//! - records stamped more than 6 h in the past or 3 days in the future of Dash0's own clock
//!   are refused one by one through `partial_success`, with the ledger cause
//!   `dash0_timestamp_range`;
//! - everything accepted goes to the [`Dash0Store`] with its true ingest time and is
//!   delivered in the ledger (once per request);
//! - scripted misbehaviour through [`Dash0Control`]: error statuses at a rate (with
//!   `Retry-After` / RetryInfo), slowness, a records-per-second rate limit (429);
//! - queries (`query.rs`, routes `GET /api/...` in `http.rs`): a trace by id, the logs of a
//!   job, a metric's series; the correlation checker asks the same questions.
//!
//! Where does Dash0 refuse a record? `ingest.rs` (`admit`). Where does it answer 429?
//! `ingest.rs` (`scripted`). How does a status become a gRPC code? `refusal.rs`.

pub mod config;
pub mod control;
pub mod grpc;
pub mod http;
pub mod ingest;
pub mod query;
pub mod refusal;
pub mod store;

pub use config::{DATASET_DEFAULT, Dash0Config, QUERY_RESULTS_LIMIT_DEFAULT};
pub use control::{
    Behaviour, ControlError, Dash0Control, ErrorScope, ErrorScript, RateLimit, ScriptedErrors, Slowness,
};
pub use query::{Hit, Hits, JobLogsAnswer, MetricAnswer, MetricSeries, Queries, TraceAnswer};
pub use store::{Dash0Store, SignalCounts, StoreCounts, StoredBatch, Transport};

use crate::parts::PartCtx;

/// Runs Dash0 on its host: both ingest servers and the watcher that records every change
/// of the script. `control` and `store` are created by the integrator outside the host, so
/// they outlive a crash of it. Returns only if a server fails (e.g. its port is taken).
pub async fn run(ctx: PartCtx, config: Dash0Config, control: Dash0Control, store: Dash0Store) -> turmoil::Result {
    config.check()?;
    let ingest = ingest::Ingest::new(&ctx, config, control, store);
    crate::world::spawn(std::sync::Arc::clone(&ingest).watch_control());
    // One task for both servers: their futures end only on failure.
    tokio::try_join!(grpc::serve(std::sync::Arc::clone(&ingest)), http::serve(ingest))?;
    Ok(())
}
