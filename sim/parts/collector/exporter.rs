//! The OTLP/gRPC exporter: one export attempt of one batch to Dash0, with the bearer token,
//! the dataset header and the per-request deadline (`grpc-timeout`, and the channel's own).

use std::time::Duration;

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;

use super::config::CollectorConfig;
use crate::proto::otlp::DATASET_HEADER;
use crate::record::RecordId;

/// A sealed batch's request, encoded once when the batch is sealed.
#[derive(Clone, Debug)]
pub enum Payload {
    Traces(ExportTraceServiceRequest),
    Metrics(ExportMetricsServiceRequest),
}

impl Payload {
    /// "traces" or "metrics", for events.
    pub fn signal(&self) -> &'static str {
        match self {
            Payload::Traces(_) => "traces",
            Payload::Metrics(_) => "metrics",
        }
    }
}

/// What the sending queue holds: one request (batch).
#[derive(Debug)]
pub struct QueuedBatch {
    /// Per-signal number of the batch, for events.
    pub(crate) batch_seq: u64,
    pub payload: Payload,
    /// The ledger ids of its spans (metrics have none).
    pub ids: Vec<RecordId>,
    /// Items (spans or data points).
    pub(crate) items_count: usize,
}

/// A successful export: how many items Dash0 refused one by one (`partial_success`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Exported {
    pub rejected: i64,
    pub error_message: String,
}

/// Sends batches to Dash0. Cheap to clone: all clones share one channel.
#[derive(Clone)]
pub struct Exporter {
    traces: TraceServiceClient<Channel>,
    metrics: MetricsServiceClient<Channel>,
    authorization: MetadataValue<tonic::metadata::Ascii>,
    dataset: MetadataValue<tonic::metadata::Ascii>,
    timeout: Duration,
}

impl Exporter {
    /// An exporter over `channel` with the config's credentials and timeout.
    pub fn new(channel: Channel, config: &CollectorConfig) -> Result<Self, String> {
        let authorization = format!("Bearer {}", config.token)
            .parse()
            .map_err(|_| "collector.token must be printable ASCII (it goes in a header)".to_string())?;
        let dataset = config.dataset.parse().map_err(|_| "collector.dataset must be printable ASCII".to_string())?;
        Ok(Exporter {
            traces: TraceServiceClient::new(channel.clone()),
            metrics: MetricsServiceClient::new(channel),
            authorization,
            dataset,
            timeout: config.export_timeout,
        })
    }

    /// One attempt. The request is cloned: retries send the same bytes again.
    pub async fn export(&mut self, payload: &Payload) -> Result<Exported, tonic::Status> {
        let timeout = self.timeout;
        let attempt = async {
            match payload {
                Payload::Traces(request) => {
                    let response = self.traces.export(self.request(request.clone())).await?.into_inner();
                    Ok(response
                        .partial_success
                        .map(|p| Exported { rejected: p.rejected_spans, error_message: p.error_message })
                        .unwrap_or_default())
                }
                Payload::Metrics(request) => {
                    let response = self.metrics.export(self.request(request.clone())).await?.into_inner();
                    Ok(response
                        .partial_success
                        .map(|p| Exported { rejected: p.rejected_data_points, error_message: p.error_message })
                        .unwrap_or_default())
                }
            }
        };
        // The channel enforces the deadline too; this outer bound makes sure no attempt
        // outlives it even if a layer below forgets. A cut attempt reads as CANCELLED, as a
        // client deadline does in tonic.
        match tokio::time::timeout(timeout + Duration::from_millis(100), attempt).await {
            Ok(result) => result.map_err(as_grpc_go),
            Err(_) => Err(tonic::Status::cancelled(format!("export deadline of {timeout:?} passed"))),
        }
    }

    fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        request.set_timeout(self.timeout);
        let metadata = request.metadata_mut();
        metadata.insert("authorization", self.authorization.clone());
        metadata.insert(DATASET_HEADER, self.dataset.clone());
        request
    }
}

/// The status the real collector (grpc-go) would see for `status`. A connection that could
/// not be made or broke mid-call (Dash0 restarting, a reset) is UNAVAILABLE in grpc-go,
/// which the OTLP exporter retries; tonic reports it as UNKNOWN "transport error" with the
/// transport error as its source, which the retry policy would drop as permanent.
pub(crate) fn as_grpc_go(status: tonic::Status) -> tonic::Status {
    use std::error::Error as _;
    let broken_transport = status.code() == tonic::Code::Unknown
        && status.source().is_some_and(|source| source.is::<tonic::transport::Error>());
    if broken_transport {
        tonic::Status::unavailable(format!("connection failed: {}", status.message()))
    } else {
        status
    }
}
