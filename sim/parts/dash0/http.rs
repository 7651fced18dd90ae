//! OTLP/HTTP ingest on :4318: `POST /v1/logs`, `/v1/traces`, `/v1/metrics` with
//! `Content-Type: application/x-protobuf`, served by hyper 1 over turmoil's TCP.
//!
//! Answers as the OTLP/HTTP specification says: 200 with the `Export*ServiceResponse`
//! protobuf (carrying `partial_success` when records were refused); on failure the status
//! with a protobuf `google.rpc.Status` body, and `Retry-After` in seconds when Dash0 says
//! when to come back. OTLP/JSON is valid OTLP that this mock does not speak: 415.

use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::world::TcpListener;
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use prost::Message;

use super::ingest::{ExportRequest, Ingest};
use super::refusal::{Refusal, RefusalKind};
use super::store::Transport;
use crate::proto::otlp::Signal;
use crate::proto::otlp::{self, DATASET_HEADER};
use crate::vocab::EventKind;
use crate::vocab::ports;

/// The content type of OTLP/HTTP protobuf requests and responses.
pub(crate) const CONTENT_TYPE_PROTOBUF: &str = "application/x-protobuf";

/// Accepts connections on :4318 and serves each on its own task until the host stops.
pub async fn serve(ingest: Arc<Ingest>) -> turmoil::Result {
    let listener =
        TcpListener::bind(std::net::SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), ports::DASH0_HTTP)).await?;
    let open = Arc::new(AtomicUsize::new(0));
    let limit = ingest.config().http_connections_limit;
    ingest.host().record(EventKind::Dash0Listen, format!("otlp/http :{}", ports::DASH0_HTTP));
    // Bounded by the run: one iteration per accepted connection.
    loop {
        let (stream, peer) = listener.accept().await?;
        if open.load(Ordering::Relaxed) >= limit {
            ingest.host().record(EventKind::Dash0HttpConnectionRefused, format!("{peer}: {limit} connections open"));
            drop(stream);
            continue;
        }
        open.fetch_add(1, Ordering::Relaxed);
        let (ingest, open) = (Arc::clone(&ingest), Arc::clone(&open));
        crate::world::spawn(async move {
            let service = service_fn(move |request| handle(Arc::clone(&ingest), request));
            // A connection ends when the client closes it or it breaks; either is routine.
            let _ =
                http1::Builder::new().timer(TokioTimer::new()).serve_connection(TokioIo::new(stream), service).await;
            open.fetch_sub(1, Ordering::Relaxed);
        });
    }
}

/// One request: route, content type, size, credentials, body, protobuf, then the judge.
async fn handle(ingest: Arc<Ingest>, request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let signal = match request.uri().path() {
        "/v1/logs" => Signal::Logs,
        "/v1/traces" => Signal::Traces,
        "/v1/metrics" => Signal::Metrics,
        other => {
            let refusal = Refusal::new(RefusalKind::Malformed, 404, format!("no OTLP endpoint at {other}"));
            return Ok(refusal_response(&refusal));
        }
    };
    match admit(&ingest, signal, request).await {
        Ok(response) => Ok(response),
        Err(refusal) => {
            ingest.refused(Transport::Http, signal, 0, &refusal);
            Ok(refusal_response(&refusal))
        }
    }
}

/// Everything that may refuse a request before its records are counted.
async fn admit(ingest: &Ingest, signal: Signal, request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Refusal> {
    if request.method() != Method::POST {
        return Err(Refusal::new(RefusalKind::Malformed, 405, format!("{} is not POST", request.method())));
    }
    let headers = request.headers();
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if content_type.split(';').next().map(str::trim) != Some(CONTENT_TYPE_PROTOBUF) {
        return Err(Refusal::new(
            RefusalKind::Malformed,
            415,
            format!("Content-Type {content_type:?} is not {CONTENT_TYPE_PROTOBUF} (OTLP/JSON is not accepted)"),
        ));
    }
    let limit = ingest.config().request_bytes_limit;
    let declared = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        return Err(too_large(limit));
    }
    let authorization = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let dataset = headers.get(DATASET_HEADER).and_then(|v| v.to_str().ok());
    let dataset = ingest.check_credentials(authorization, dataset)?;
    let body = match Limited::new(request.into_body(), limit).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(error) if error.is::<http_body_util::LengthLimitError>() => return Err(too_large(limit)),
        Err(error) => {
            return Err(Refusal::new(RefusalKind::Malformed, 400, format!("reading the request body failed: {error}")));
        }
    };
    let malformed = |error: prost::DecodeError| {
        Refusal::new(
            RefusalKind::Malformed,
            400,
            format!("the body is not an OTLP {} request: {error}", signal.as_str()),
        )
    };
    // Bounded before prost allocates: a body whose tree would be too large is undecodable.
    otlp::check_decode_bounds(signal, &body, &ingest.config().decode_limits()).map_err(|error| {
        Refusal::new(
            RefusalKind::Malformed,
            400,
            format!("the body is not an OTLP {} request: {error}", signal.as_str()),
        )
    })?;
    let export = match signal {
        Signal::Logs => ExportRequest::Logs(Message::decode(body).map_err(malformed)?),
        Signal::Traces => ExportRequest::Traces(Message::decode(body).map_err(malformed)?),
        Signal::Metrics => ExportRequest::Metrics(Message::decode(body).map_err(malformed)?),
    };
    // The judge records its own refusals; answer them without counting twice.
    let accepted = match ingest.judge(Transport::Http, dataset, export).await {
        Ok(accepted) => accepted,
        Err(refusal) => return Ok(refusal_response(&refusal)),
    };
    let bytes = match signal {
        Signal::Logs => accepted.logs_response().encode_to_vec(),
        Signal::Traces => accepted.traces_response().encode_to_vec(),
        Signal::Metrics => accepted.metrics_response().encode_to_vec(),
    };
    Ok(protobuf_response(StatusCode::OK, bytes))
}

fn too_large(limit: usize) -> Refusal {
    Refusal::new(RefusalKind::TooLarge, 413, format!("the request body exceeds {limit} bytes (request_bytes_limit)"))
}

fn protobuf_response(status: StatusCode, bytes: Vec<u8>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(bytes)));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static(CONTENT_TYPE_PROTOBUF));
    response
}

/// The error answer: status, `google.rpc.Status` body, `Retry-After` when known.
fn refusal_response(refusal: &Refusal) -> Response<Full<Bytes>> {
    let status = StatusCode::from_u16(refusal.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = protobuf_response(status, refusal.http_body());
    if let Some(secs) = refusal.retry_after_header() {
        response.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from(secs));
    }
    response
}
