//! The three wire formats the pipeline speaks, each on the real library for it:
//! Fluent Forward v1 (msgpack via rmp-serde), OTLP (protobuf via opentelemetry-proto/prost)
//! and RESP (the Redis protocol, server side).

pub mod forward;
pub mod otlp;
pub mod resp;
