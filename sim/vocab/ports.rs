//! Where each part listens: the real ports of the software each part models.

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
