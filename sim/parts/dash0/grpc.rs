//! OTLP/gRPC ingest on :4317: the three OTLP collector services (tonic's generated
//! servers) over HTTP/2 (hyper) over turmoil's TCP.
//!
//! Why hyper's HTTP/2 server and not `tonic::transport::Server`: tonic's server spawns each
//! connection with `tokio::spawn`, into the runtime's task list, which a crash drops in an
//! order set by a process-global task counter (see `crate::world::spawn`); serving each
//! accepted turmoil stream ourselves keeps every task in the host's LocalSet. Requests
//! larger than `request_bytes_limit` are refused by the generated services
//! (RESOURCE_EXHAUSTED); a message that would decode beyond `[dash0]`'s decode bounds is
//! refused before tonic decodes it (INTERNAL, as tonic answers an undecodable message).

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::task::{Context, Poll};

use crate::world::TcpListener;
use hyper_util::rt::{TokioIo, TokioTimer};
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{LogsService, LogsServiceServer};
use opentelemetry_proto::tonic::collector::logs::v1::{ExportLogsServiceRequest, ExportLogsServiceResponse};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{ExportMetricsServiceRequest, ExportMetricsServiceResponse};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use tonic::{Request, Response, Status};

use super::ingest::{Accepted, ExportRequest, Ingest};
use super::store::Transport;
use crate::proto::otlp::{self, DATASET_HEADER, DecodeLimits, Signal};
use crate::vocab::EventKind;
use crate::vocab::ports;

/// Serves the OTLP gRPC services on :4317 until the host stops.
pub async fn serve(ingest: Arc<Ingest>) -> turmoil::Result {
    let listener =
        TcpListener::bind(std::net::SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), ports::DASH0_GRPC)).await?;
    ingest.host().record(EventKind::Dash0Listen, format!("otlp/grpc :{}", ports::DASH0_GRPC));
    let limit = ingest.config().request_bytes_limit;
    let decode_limits = ingest.config().decode_limits();
    let handler = Handler { ingest };
    let router = Router {
        request_bytes_limit: limit,
        decode_limits,
        logs: LogsServiceServer::new(handler.clone()).max_decoding_message_size(limit),
        traces: TraceServiceServer::new(handler.clone()).max_decoding_message_size(limit),
        metrics: MetricsServiceServer::new(handler).max_decoding_message_size(limit),
    };
    // Bounded by the run: one iteration per accepted connection; ends with the host.
    loop {
        let (stream, _) = listener.accept().await?;
        let router = router.clone();
        crate::world::spawn(async move {
            let service = hyper::service::service_fn(move |request: http::Request<hyper::body::Incoming>| {
                let mut router = router.clone();
                tower::Service::call(&mut router, request.map(tonic::body::Body::new))
            });
            // A connection that breaks (a partition, a crashed peer) just ends.
            let _ = hyper::server::conn::http2::Builder::new(crate::world::LocalExec)
                .timer(TokioTimer::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// Routes each call to its service by path (`/<package>.<Service>/<Method>`): tonic's own
/// router needs its `router` feature (axum), which obsim leaves out.
#[derive(Clone)]
struct Router {
    /// The generated services' `max_decoding_message_size`.
    request_bytes_limit: usize,
    /// The bounds a message is walked against before tonic decodes it.
    decode_limits: DecodeLimits,
    logs: LogsServiceServer<Handler>,
    traces: TraceServiceServer<Handler>,
    metrics: MetricsServiceServer<Handler>,
}

impl tower::Service<http::Request<tonic::body::Body>> for Router {
    type Response = http::Response<tonic::body::Body>;
    type Error = std::convert::Infallible;
    type Future = tonic::codegen::BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // The generated services are always ready.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        let path = request.uri().path();
        let service = path.strip_prefix('/').and_then(|p| p.split('/').next()).unwrap_or("");
        let bounded = |signal: Signal, request: http::Request<tonic::body::Body>| {
            let guard = MessageGuard::new(signal, self.decode_limits, self.request_bytes_limit);
            request.map(|body| tonic::body::Body::new(BoundedBody { inner: body, guard }))
        };
        if service == LOGS_SERVICE {
            self.logs.call(bounded(Signal::Logs, request))
        } else if service == TRACE_SERVICE {
            self.traces.call(bounded(Signal::Traces, request))
        } else if service == METRICS_SERVICE {
            self.metrics.call(bounded(Signal::Metrics, request))
        } else {
            let status = Status::unimplemented(format!("no gRPC service at {path}"));
            Box::pin(std::future::ready(Ok(status.into_http())))
        }
    }
}

/// Bytes of the gRPC length prefix: a compressed flag and a big-endian u32 length.
const GRPC_PREFIX_BYTES: usize = 5;

/// Watches the first gRPC message of a call's body go by and walks it with
/// [`otlp::check_decode_bounds`] once it is whole, before its last bytes reach tonic: a
/// message that would decode too large never reaches prost. A compressed message, or one
/// over `request_bytes_limit`, is left to tonic (which refuses it).
struct MessageGuard {
    signal: Signal,
    limits: DecodeLimits,
    request_bytes_limit: usize,
    /// The message's bytes so far (at most `request_bytes_limit` + the prefix).
    seen: Vec<u8>,
    /// The message was judged (or left to tonic): pass everything through.
    done: bool,
}

impl MessageGuard {
    fn new(signal: Signal, limits: DecodeLimits, request_bytes_limit: usize) -> Self {
        Self { signal, limits, request_bytes_limit, seen: Vec::new(), done: false }
    }

    /// Takes the next data bytes; `Err` when the whole message breaks the bounds.
    fn inspect(&mut self, data: &[u8]) -> Result<(), Status> {
        if self.done {
            return Ok(());
        }
        let length = self.seen.get(..GRPC_PREFIX_BYTES).map(declared_length);
        let wanted = length.map_or(GRPC_PREFIX_BYTES, |length| GRPC_PREFIX_BYTES + length);
        let take = data.len().min(wanted.saturating_sub(self.seen.len()));
        self.seen.extend_from_slice(&data[..take]);
        if length.is_none() && self.seen.len() >= GRPC_PREFIX_BYTES {
            let prefix = &self.seen[..GRPC_PREFIX_BYTES];
            if prefix[0] != 0 || declared_length(prefix) > self.request_bytes_limit {
                self.done = true;
                self.seen = Vec::new();
                return Ok(());
            }
            // The rest of this read may hold the message.
            return self.inspect(&data[take..]);
        }
        let Some(length) = length else { return Ok(()) };
        if self.seen.len() < GRPC_PREFIX_BYTES + length {
            return Ok(());
        }
        self.done = true;
        let message = std::mem::take(&mut self.seen);
        otlp::check_decode_bounds(self.signal, &message[GRPC_PREFIX_BYTES..], &self.limits).map(|_| ()).map_err(
            |error| Status::internal(format!("the message is not an OTLP {} request: {error}", self.signal.as_str())),
        )
    }
}

/// The message length a gRPC prefix declares (bytes 1..5, big-endian).
fn declared_length(prefix: &[u8]) -> usize {
    u32::from_be_bytes([prefix[1], prefix[2], prefix[3], prefix[4]]) as usize
}

/// A call's body, passed through frame by frame under a [`MessageGuard`].
struct BoundedBody {
    inner: tonic::body::Body,
    guard: MessageGuard,
}

impl hyper::body::Body for BoundedBody {
    type Data = bytes::Bytes;
    type Error = Status;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        let polled = std::pin::Pin::new(&mut this.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
            && let Err(status) = this.guard.inspect(data)
        {
            return Poll::Ready(Some(Err(status)));
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

const LOGS_SERVICE: &str = opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::SERVICE_NAME;
const TRACE_SERVICE: &str = opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::SERVICE_NAME;
const METRICS_SERVICE: &str = opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::SERVICE_NAME;

/// The three services share one judge.
#[derive(Clone)]
struct Handler {
    ingest: Arc<Ingest>,
}

impl Handler {
    async fn export<T>(&self, request: Request<T>, wrap: fn(T) -> ExportRequest) -> Result<Accepted, Status> {
        let metadata = request.metadata();
        let authorization = metadata.get("authorization").and_then(|v| v.to_str().ok());
        let dataset = metadata.get(DATASET_HEADER).and_then(|v| v.to_str().ok());
        let credentials = self.ingest.check_credentials(authorization, dataset);
        let export = wrap(request.into_inner());
        let dataset = match credentials {
            Ok(dataset) => dataset,
            Err(refusal) => {
                self.ingest.refused(Transport::Grpc, export.signal(), export.records_count(), &refusal);
                return Err(refusal.to_grpc());
            }
        };
        self.ingest.judge(Transport::Grpc, dataset, export).await.map_err(|refusal| refusal.to_grpc())
    }
}

#[tonic::async_trait]
impl LogsService for Handler {
    async fn export(
        &self,
        request: Request<ExportLogsServiceRequest>,
    ) -> Result<Response<ExportLogsServiceResponse>, Status> {
        let accepted = Handler::export(self, request, ExportRequest::Logs).await?;
        Ok(Response::new(accepted.logs_response()))
    }
}

#[tonic::async_trait]
impl TraceService for Handler {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        let accepted = Handler::export(self, request, ExportRequest::Traces).await?;
        Ok(Response::new(accepted.traces_response()))
    }
}

#[tonic::async_trait]
impl MetricsService for Handler {
    async fn export(
        &self,
        request: Request<ExportMetricsServiceRequest>,
    ) -> Result<Response<ExportMetricsServiceResponse>, Status> {
        let accepted = Handler::export(self, request, ExportRequest::Metrics).await?;
        Ok(Response::new(accepted.metrics_response()))
    }
}
