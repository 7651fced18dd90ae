//! OTLP/gRPC ingest on :4317: the three OTLP collector services, served by tonic over
//! turmoil's TCP.
//!
//! How tonic meets turmoil (DESIGN.md §8): tonic's server takes any stream of accepted
//! connections whose type implements `Connected`; an accept task feeds turmoil streams into
//! a bounded channel that the server reads as that stream. Requests larger than
//! `request_bytes_limit` are refused by tonic itself (RESOURCE_EXHAUSTED).

use std::net::{IpAddr, Ipv4Addr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{LogsService, LogsServiceServer};
use opentelemetry_proto::tonic::collector::logs::v1::{ExportLogsServiceRequest, ExportLogsServiceResponse};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::mpsc;
use tonic::transport::server::{Connected, TcpConnectInfo};
use tonic::{Request, Response, Status};
use turmoil::net::{TcpListener, TcpStream};

use super::config::DATASET_HEADER;
use super::ingest::{Accepted, ExportRequest, Ingest};
use super::store::Transport;
use crate::parts::ports;

/// Accepted connections waiting for tonic to pick them up: a small bound, since tonic takes
/// each at once.
const ACCEPTED_QUEUE_LIMIT: usize = 64;

/// Serves the OTLP gRPC services on :4317 until the host stops.
pub async fn serve(ingest: Arc<Ingest>) -> turmoil::Result {
    let listener = TcpListener::bind((IpAddr::V4(Ipv4Addr::UNSPECIFIED), ports::DASH0_GRPC)).await?;
    ingest.host().record("dash0.listen", format!("otlp/grpc :{}", ports::DASH0_GRPC));
    let (sender, receiver) = mpsc::channel(ACCEPTED_QUEUE_LIMIT);
    tokio::spawn(async move {
        // Bounded by the run: one iteration per accepted connection; ends with the server.
        loop {
            let accepted = listener.accept().await.map(|(stream, _)| AcceptedStreamItem(stream));
            if sender.send(accepted).await.is_err() {
                return;
            }
        }
    });
    let limit = ingest.config().request_bytes_limit;
    let handler = Handler { ingest };
    let router = Router {
        logs: LogsServiceServer::new(handler.clone()).max_decoding_message_size(limit),
        traces: TraceServiceServer::new(handler.clone()).max_decoding_message_size(limit),
        metrics: MetricsServiceServer::new(handler).max_decoding_message_size(limit),
    };
    tonic::transport::Server::builder().serve_with_incoming(router, AcceptedStream(receiver)).await?;
    Ok(())
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
const METRICS_SERVICE: &str =
    opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::SERVICE_NAME;

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

/// The accepted connections as the stream tonic's server reads.
struct AcceptedStream(mpsc::Receiver<std::io::Result<AcceptedStreamItem>>);

impl tonic::codegen::tokio_stream::Stream for AcceptedStream {
    type Item = std::io::Result<AcceptedStreamItem>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0.poll_recv(cx)
    }
}

/// A turmoil stream tonic can serve: it needs the peer's address (`Connected`).
struct AcceptedStreamItem(TcpStream);

impl Connected for AcceptedStreamItem {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        TcpConnectInfo { local_addr: self.0.local_addr().ok(), remote_addr: self.0.peer_addr().ok() }
    }
}

impl AsyncRead for AcceptedStreamItem {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for AcceptedStreamItem {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}
