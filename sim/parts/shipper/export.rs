//! The POST to Dash0: OTLP/HTTP protobuf to `/v1/logs`, one kept-alive HTTP/1.1
//! connection (hyper 1 over a turmoil TcpStream), and what each answer means.
//!
//! OTLP/HTTP spec ("Failures"): 429, 502, 503 and 504 are retryable and the client honours
//! `Retry-After`; other 4xx are not retried (the data is refused); 2xx may carry a
//! `partial_success` whose rejected records Dash0 itself accounted for.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;

use crate::vocab::pipeline::Address;

/// What one POST came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExportOutcome {
    /// 2xx: Dash0 has the batch.
    Delivered { status: u16 },
    /// 429/502/503/504, a connection error or a timeout: try again, after `retry_after`
    /// when the server said so.
    Retryable { reason: String, retry_after: Option<Duration> },
    /// Any other status: Dash0 refused the batch for good.
    Rejected { status: u16 },
}

/// Sends request bodies somewhere. The real one is [`HttpExporter`]; tests may script one.
#[allow(async_fn_in_trait)]
pub trait Exporter {
    /// POSTs one ExportLogsServiceRequest body.
    async fn export(&mut self, body: Bytes) -> ExportOutcome;
}

/// Classifies an HTTP status (with its `Retry-After`, if any).
pub(crate) fn classify(status: u16, retry_after: Option<Duration>) -> ExportOutcome {
    match status {
        200..=299 => ExportOutcome::Delivered { status },
        429 | 502 | 503 | 504 => ExportOutcome::Retryable { reason: format!("http {status}"), retry_after },
        _ => ExportOutcome::Rejected { status },
    }
}

/// `Retry-After` as delay-seconds (RFC 9110 §10.2.3). The HTTP-date form is not used by
/// Dash0 and is ignored here (the caller's backoff applies instead).
pub(crate) fn parse_retry_after(value: &[u8]) -> Option<Duration> {
    let text = std::str::from_utf8(value).ok()?.trim();
    text.parse::<u64>().ok().map(Duration::from_secs)
}

/// The Dash0 OTLP/HTTP client.
pub struct HttpExporter {
    /// Dash0's OTLP/HTTP listener, as the wiring gave it to the shipper.
    dash0: Address,
    token: String,
    dataset: String,
    request_timeout: Duration,
    sender: Option<SendRequest<Full<Bytes>>>,
    connection_task: Option<tokio::task::JoinHandle<()>>,
}

impl HttpExporter {
    /// A client of Dash0 at `dash0` that connects on first use.
    pub fn new(dash0: Address, token: String, dataset: String, request_timeout: Duration) -> Self {
        HttpExporter { dash0, token, dataset, request_timeout, sender: None, connection_task: None }
    }

    /// Forgets the connection (after an error or timeout: HTTP/1 cannot tell which response
    /// belongs to which request once one timed out, so the connection is not reused).
    fn disconnect(&mut self) {
        self.sender = None;
        if let Some(task) = self.connection_task.take() {
            task.abort();
        }
    }

    async fn connect(&mut self) -> Result<(), String> {
        let stream = crate::world::TcpStream::connect(self.dash0.pair())
            .await
            .map_err(|error| format!("connect {}: {error}", self.dash0))?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|error| format!("http handshake with {}: {error}", self.dash0.host))?;
        self.connection_task = Some(crate::world::spawn(async move {
            // Ends when the peer closes or the sender is dropped; errors end the connection,
            // which the next request notices.
            let _ = connection.await;
        }));
        self.sender = Some(sender);
        Ok(())
    }

    async fn post(&mut self, body: Bytes) -> Result<(u16, Option<Duration>), String> {
        if self.sender.as_ref().is_none_or(|sender| sender.is_closed()) {
            self.disconnect();
            self.connect().await?;
        }
        let sender = self.sender.as_mut().expect("connected above");
        sender.ready().await.map_err(|error| format!("connection not ready: {error}"))?;
        let request = http::Request::post("/v1/logs")
            .header(http::header::HOST, self.dash0.to_string())
            .header(http::header::CONTENT_TYPE, "application/x-protobuf")
            .header(http::header::AUTHORIZATION, format!("Bearer {}", self.token))
            .header("Dash0-Dataset", &self.dataset)
            .body(Full::new(body))
            .map_err(|error| format!("building the request: {error}"))?;
        let response = sender.send_request(request).await.map_err(|error| format!("POST /v1/logs: {error}"))?;
        let status = response.status().as_u16();
        let retry_after =
            response.headers().get(http::header::RETRY_AFTER).and_then(|v| parse_retry_after(v.as_bytes()));
        // Read the body to the end so the connection can carry the next request.
        response.into_body().collect().await.map_err(|error| format!("reading the response body: {error}"))?;
        Ok((status, retry_after))
    }
}

impl Exporter for HttpExporter {
    async fn export(&mut self, body: Bytes) -> ExportOutcome {
        match tokio::time::timeout(self.request_timeout, self.post(body)).await {
            Ok(Ok((status, retry_after))) => {
                let outcome = classify(status, retry_after);
                if !matches!(outcome, ExportOutcome::Delivered { .. }) {
                    // Keep-alive is fine after an error status, but a fresh connection after
                    // a 5xx also routes around a stuck one.
                    self.disconnect();
                }
                outcome
            }
            Ok(Err(reason)) => {
                self.disconnect();
                ExportOutcome::Retryable { reason, retry_after: None }
            }
            Err(_) => {
                self.disconnect();
                ExportOutcome::Retryable {
                    reason: format!("no answer within request_timeout {:?}", self.request_timeout),
                    retry_after: None,
                }
            }
        }
    }
}

impl Drop for HttpExporter {
    fn drop(&mut self) {
        self.disconnect();
    }
}
