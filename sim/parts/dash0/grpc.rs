//! OTLP/gRPC ingest on :4317: the three OTLP collector services (tonic's generated
//! servers) over HTTP/2 (hyper) over turmoil's TCP.
//!
//! Why hyper's HTTP/2 server and not `tonic::transport::Server`: tonic's server spawns each
//! connection with `tokio::spawn`, into the runtime's task list, which a crash drops in an
//! order set by a process-global task counter (see `crate::world::spawn`); serving each
//! accepted turmoil stream ourselves keeps every task in the host's LocalSet. Requests
//! larger than `request_bytes_limit` are refused by the generated services
//! (RESOURCE_EXHAUSTED).

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
use crate::proto::otlp::DATASET_HEADER;
use crate::vocab::EventKind;
use crate::vocab::ports;

/// Serves the OTLP gRPC services on :4317 until the host stops.
pub async fn serve(ingest: Arc<Ingest>) -> turmoil::Result {
    let listener =
        TcpListener::bind(std::net::SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), ports::DASH0_GRPC)).await?;
    ingest.host().record(EventKind::Dash0Listen, format!("otlp/grpc :{}", ports::DASH0_GRPC));
    let limit = ingest.config().request_bytes_limit;
    let handler = Handler { ingest };
    let router = Router {
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
        if service == LOGS_SERVICE {
            self.logs.call(request)
        } else if service == TRACE_SERVICE {
            self.traces.call(request)
        } else if service == METRICS_SERVICE {
            self.metrics.call(request)
        } else {
            let status = Status::unimplemented(format!("no gRPC service at {path}"));
            Box::pin(std::future::ready(Ok(status.into_http())))
        }
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
