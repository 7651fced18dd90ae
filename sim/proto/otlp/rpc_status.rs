//! `google.rpc.Status` and `google.rpc.RetryInfo`: how an OTLP server says why it refused
//! a request and when to come back.
//!
//! Why here: OTLP/HTTP error bodies are a protobuf `google.rpc.Status`, and OTLP/gRPC puts
//! the same message (with a `RetryInfo` detail for throttling) in `grpc-status-details-bin`.
//! The collector's exporter honours `RetryInfo.retry_delay`, and RESOURCE_EXHAUSTED is only
//! retryable when it carries one (OTLP specification, "Failures"). The messages are tiny;
//! they are declared with prost's derive rather than pulling in another crate, with the
//! field numbers of `google/rpc/status.proto` and `google/rpc/error_details.proto`.

use std::time::Duration;

use prost::Message;

/// The type URL of a packed `RetryInfo`.
pub(crate) const RETRY_INFO_TYPE_URL: &str = "type.googleapis.com/google.rpc.RetryInfo";

/// `google.rpc.Status`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct RpcStatus {
    /// A `google.rpc.Code`.
    #[prost(int32, tag = "1")]
    pub code: i32,
    /// Developer-facing message.
    #[prost(string, tag = "2")]
    pub message: String,
    /// Details, packed as `Any`.
    #[prost(message, repeated, tag = "3")]
    pub details: Vec<ProtoAny>,
}

/// `google.protobuf.Any`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct ProtoAny {
    #[prost(string, tag = "1")]
    pub(crate) type_url: String,
    #[prost(bytes = "vec", tag = "2")]
    pub value: Vec<u8>,
}

/// `google.rpc.RetryInfo`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RetryInfo {
    #[prost(message, optional, tag = "1")]
    pub(crate) retry_delay: Option<ProtoDuration>,
}

/// `google.protobuf.Duration`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct ProtoDuration {
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    #[prost(int32, tag = "2")]
    pub(crate) nanos: i32,
}

impl RpcStatus {
    /// A status with `code` and `message`, and a `RetryInfo` detail when `retry_delay` is set.
    pub fn new(code: i32, message: impl Into<String>, retry_delay: Option<Duration>) -> Self {
        let details = retry_delay
            .map(|delay| {
                let info = RetryInfo {
                    retry_delay: Some(ProtoDuration {
                        seconds: i64::try_from(delay.as_secs()).unwrap_or(i64::MAX),
                        nanos: delay.subsec_nanos() as i32,
                    }),
                };
                vec![ProtoAny { type_url: RETRY_INFO_TYPE_URL.to_string(), value: info.encode_to_vec() }]
            })
            .unwrap_or_default();
        RpcStatus { code, message: message.into(), details }
    }

    /// The `RetryInfo` delay, if a detail carries one.
    pub(crate) fn retry_delay(&self) -> Option<Duration> {
        self.details.iter().filter(|any| any.type_url == RETRY_INFO_TYPE_URL).find_map(|any| {
            let info = RetryInfo::decode(any.value.as_slice()).ok()?;
            let delay = info.retry_delay?;
            let seconds = u64::try_from(delay.seconds).ok()?;
            let nanos = u32::try_from(delay.nanos).ok().filter(|n| *n < 1_000_000_000)?;
            Some(Duration::new(seconds, nanos))
        })
    }
}

/// The `RetryInfo` delay in a gRPC status's details (`grpc-status-details-bin`), if any.
pub fn retry_delay_of(status: &tonic::Status) -> Option<Duration> {
    if status.details().is_empty() {
        return None;
    }
    RpcStatus::decode(status.details()).ok()?.retry_delay()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_info_round_trips_through_a_grpc_status() {
        let delay = Duration::from_millis(7_250);
        let rpc = RpcStatus::new(tonic::Code::ResourceExhausted as i32, "slow down", Some(delay));
        let status =
            tonic::Status::with_details(tonic::Code::ResourceExhausted, "slow down", rpc.encode_to_vec().into());
        assert_eq!(retry_delay_of(&status), Some(delay));
        assert_eq!(retry_delay_of(&tonic::Status::unavailable("no details")), None);
    }
}
