//! A request refused as a whole, and how each protocol says so.
//!
//! Why one type: HTTP and gRPC ingest share one judge (`ingest.rs`); only the wording
//! differs. OTLP/HTTP answers the status with a protobuf `google.rpc.Status` body and
//! `Retry-After` (seconds) on 429/503; OTLP/gRPC answers the code the OTLP specification and
//! gRPC's HTTP mapping pair with the status, with `RetryInfo` on RESOURCE_EXHAUSTED (the
//! only way it is retryable) and on UNAVAILABLE when a delay was scripted.

use std::time::Duration;

use prost::Message;

use crate::proto::otlp::rpc_status::RpcStatus;

/// Why a request was refused, for events and counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefusalKind {
    /// Missing or wrong bearer token.
    Unauthenticated,
    /// Dataset the token may not write.
    Forbidden,
    /// Larger than `request_bytes_limit`.
    TooLarge,
    /// Not an OTLP protobuf request, or the wrong content type or path.
    Malformed,
    /// Scripted by the fault injector.
    Scripted,
    /// Over the scripted rate limit.
    RateLimited,
}

impl RefusalKind {
    /// Short name for events.
    pub fn as_str(self) -> &'static str {
        match self {
            RefusalKind::Unauthenticated => "unauthenticated",
            RefusalKind::Forbidden => "forbidden",
            RefusalKind::TooLarge => "too_large",
            RefusalKind::Malformed => "malformed",
            RefusalKind::Scripted => "scripted",
            RefusalKind::RateLimited => "rate_limited",
        }
    }
}

/// A whole request refused: nothing of it was stored.
#[derive(Clone, Debug, PartialEq)]
pub struct Refusal {
    pub kind: RefusalKind,
    /// The HTTP status (the gRPC code follows from it).
    pub status: u16,
    /// Developer-facing reason, naming the rule broken.
    pub message: String,
    /// When to come back, if the server says.
    pub retry_after: Option<Duration>,
}

impl Refusal {
    pub fn new(kind: RefusalKind, status: u16, message: impl Into<String>) -> Self {
        Refusal { kind, status, message: message.into(), retry_after: None }
    }

    /// The gRPC code for this HTTP status: gRPC's HTTP→gRPC mapping, except where the OTLP
    /// specification says otherwise (429 → RESOURCE_EXHAUSTED, 504 → DEADLINE_EXCEEDED, 413
    /// → RESOURCE_EXHAUSTED without RetryInfo, i.e. not retryable, like an oversized gRPC
    /// message).
    pub(crate) fn grpc_code(&self) -> tonic::Code {
        match self.status {
            400 | 415 | 422 => tonic::Code::InvalidArgument,
            401 => tonic::Code::Unauthenticated,
            403 => tonic::Code::PermissionDenied,
            404 | 405 | 501 => tonic::Code::Unimplemented,
            408 => tonic::Code::DeadlineExceeded,
            409 => tonic::Code::Aborted,
            413 | 429 => tonic::Code::ResourceExhausted,
            500 => tonic::Code::Internal,
            502 | 503 => tonic::Code::Unavailable,
            504 => tonic::Code::DeadlineExceeded,
            _ => tonic::Code::Unknown,
        }
    }

    /// The delay to advertise over gRPC: RetryInfo on 429 (always: throttling must say when)
    /// and on retryable codes when scripted; never on 413 (RetryInfo would make it retryable).
    fn grpc_retry_delay(&self) -> Option<Duration> {
        match self.status {
            413 => None,
            _ => self.retry_after,
        }
    }

    /// As a gRPC status, with `google.rpc.Status` details carrying RetryInfo when due.
    pub(crate) fn to_grpc(&self) -> tonic::Status {
        let code = self.grpc_code();
        match self.grpc_retry_delay() {
            Some(delay) => {
                let details = RpcStatus::new(code as i32, self.message.clone(), Some(delay)).encode_to_vec();
                tonic::Status::with_details(code, self.message.clone(), details.into())
            }
            None => tonic::Status::new(code, self.message.clone()),
        }
    }

    /// The `Retry-After` header value in whole seconds (rounded up; at least 1), if any.
    pub(crate) fn retry_after_header(&self) -> Option<u64> {
        self.retry_after.map(|delay| {
            let secs = delay.as_secs() + u64::from(delay.subsec_nanos() > 0);
            secs.max(1)
        })
    }

    /// The OTLP/HTTP error body: a protobuf `google.rpc.Status`.
    pub(crate) fn http_body(&self) -> Vec<u8> {
        RpcStatus::new(self.grpc_code() as i32, self.message.clone(), None).encode_to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::otlp::rpc_status::retry_delay_of;

    #[test]
    fn statuses_map_to_the_codes_otlp_exporters_retry_or_not() {
        let with = |status: u16| {
            let mut refusal = Refusal::new(RefusalKind::Scripted, status, "x");
            refusal.retry_after = Some(Duration::from_millis(1_500));
            refusal
        };
        assert_eq!(with(503).grpc_code(), tonic::Code::Unavailable);
        assert_eq!(with(502).grpc_code(), tonic::Code::Unavailable);
        assert_eq!(with(504).grpc_code(), tonic::Code::DeadlineExceeded);
        assert_eq!(with(500).grpc_code(), tonic::Code::Internal);
        assert_eq!(with(400).grpc_code(), tonic::Code::InvalidArgument);
        assert_eq!(retry_delay_of(&with(429).to_grpc()), Some(Duration::from_millis(1_500)));
        assert_eq!(with(413).to_grpc().code(), tonic::Code::ResourceExhausted);
        assert_eq!(retry_delay_of(&with(413).to_grpc()), None, "413 must not become retryable");
        assert_eq!(with(503).retry_after_header(), Some(2));
    }
}
