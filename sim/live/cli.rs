//! `obsim serve`'s command line: one subcommand per part, each with its listeners'
//! addresses (port 0 allowed) and its settings; what they mean is README "Live mode".

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};

use crate::units::parse_duration;

/// `obsim serve <part>`: the simulation's part code on the machine's sockets and clock.
#[derive(Args, Debug)]
pub struct ServeArgs {
    #[command(subcommand)]
    pub part: ServePart,
}

/// The part (or the whole log path) to serve.
#[derive(Subcommand, Debug)]
pub enum ServePart {
    /// Fluentd: in_forward (Forward protocol, shared_key, acks) and in_http, writing chunks
    /// to a Redis.
    Aggregator(AggregatorArgs),
    /// The Redis 7 model speaking RESP.
    Redis(RedisArgs),
    /// The Dash0 ingest model: OTLP/HTTP and OTLP/gRPC, with scripted failures.
    Dash0(Dash0Args),
    /// Redis, the aggregator, the shipper and Dash0 in one process, wired on loopback.
    Pipeline(PipelineArgs),
}

/// Settings every `serve` subcommand takes.
#[derive(Args, Debug, Clone)]
pub struct CommonArgs {
    /// A TOML file with the parts' settings as scenario files spell them: `[aggregator]`,
    /// `[redis]`, `[shipper]`, `[dash0]` tables (each optional; unknown keys are errors).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// On stop, write the parts' event log (as `events.log` of a run) to this file.
    #[arg(long)]
    pub events: Option<PathBuf>,
    /// How long a part that shuts down on SIGTERM (Fluentd's flush, Redis's save) may take
    /// before it is killed, e.g. `10s`.
    #[arg(long, default_value = "10s", value_parser = parse_duration_arg)]
    pub grace: Duration,
}

/// `obsim serve aggregator`.
#[derive(Args, Debug, Clone)]
pub struct AggregatorArgs {
    /// Where in_forward listens (Forward protocol).
    #[arg(long, default_value = "127.0.0.1:24225")]
    pub listen: SocketAddr,
    /// Where in_http listens.
    #[arg(long, default_value = "127.0.0.1:24224")]
    pub http: SocketAddr,
    /// The Redis the chunks are written to.
    #[arg(long, default_value = "127.0.0.1:6379")]
    pub redis: String,
    /// in_forward's `<security> shared_key` (handshake off without it, unless the config
    /// file sets one).
    #[arg(long)]
    pub shared_key: Option<String>,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// `obsim serve redis`.
#[derive(Args, Debug, Clone)]
pub struct RedisArgs {
    /// Where Redis listens (RESP).
    #[arg(long, default_value = "127.0.0.1:6379")]
    pub listen: SocketAddr,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// Dash0's scripted behaviour, as the `dash0_errors`, `dash0_slow` and `dash0_rate_limit`
/// faults script it in a run.
#[derive(Args, Debug, Clone)]
pub struct Dash0Script {
    /// The bearer token requests must carry; without it (and without a `[dash0] token` in
    /// the config file) any token, or none, is accepted.
    #[arg(long)]
    pub token: Option<String>,
    /// Answer requests with this HTTP status (4xx or 5xx; over gRPC the code OTLP pairs
    /// with it).
    #[arg(long)]
    pub fail: Option<u16>,
    /// The fraction of requests `--fail` answers (0.0..=1.0).
    #[arg(long, default_value_t = 1.0)]
    pub fail_rate: f64,
    /// Sent with `--fail` as `Retry-After` (HTTP) / `RetryInfo` (gRPC), e.g. `5s`.
    #[arg(long, value_parser = parse_duration_arg)]
    pub retry_after: Option<Duration>,
    /// `--fail` ends this long after the start (so a client's retry succeeds); without it
    /// the failure lasts until the process stops.
    #[arg(long, value_parser = parse_duration_arg)]
    pub fail_for: Option<Duration>,
    /// Answer every request this much later, e.g. `2s`.
    #[arg(long, value_parser = parse_duration_arg)]
    pub slow: Option<Duration>,
    /// Admit at most this many records (log records, spans, points) per second; beyond: 429.
    #[arg(long)]
    pub rate_limit: Option<u64>,
}

/// `obsim serve dash0`.
#[derive(Args, Debug, Clone)]
pub struct Dash0Args {
    /// Where OTLP/HTTP listens.
    #[arg(long, default_value = "127.0.0.1:4318")]
    pub listen: SocketAddr,
    /// Where OTLP/gRPC listens.
    #[arg(long, default_value = "127.0.0.1:4317")]
    pub grpc: SocketAddr,
    #[command(flatten)]
    pub script: Dash0Script,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// `obsim serve pipeline`.
#[derive(Args, Debug, Clone)]
pub struct PipelineArgs {
    /// Where the aggregator's in_forward listens (Forward protocol).
    #[arg(long, default_value = "127.0.0.1:24225")]
    pub listen: SocketAddr,
    /// Where the aggregator's in_http listens.
    #[arg(long, default_value = "127.0.0.1:24224")]
    pub http: SocketAddr,
    /// Where Redis listens (RESP).
    #[arg(long, default_value = "127.0.0.1:6379")]
    pub redis: SocketAddr,
    /// Where Dash0's OTLP/HTTP listens.
    #[arg(long, default_value = "127.0.0.1:4318")]
    pub otlp_http: SocketAddr,
    /// Where Dash0's OTLP/gRPC listens.
    #[arg(long, default_value = "127.0.0.1:4317")]
    pub grpc: SocketAddr,
    /// in_forward's `<security> shared_key`.
    #[arg(long)]
    pub shared_key: Option<String>,
    #[command(flatten)]
    pub script: Dash0Script,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// A duration as scenarios spell it (`5s`, `250ms`), for clap.
fn parse_duration_arg(text: &str) -> Result<Duration, String> {
    parse_duration(text).map_err(|error| error.to_string())
}
