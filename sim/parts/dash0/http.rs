//! OTLP/HTTP ingest on :4318: `POST /v1/logs`, `/v1/traces`, `/v1/metrics` with
//! `Content-Type: application/x-protobuf`, served by hyper 1 over turmoil's TCP.
//!
//! Answers as the OTLP/HTTP specification says: 200 with the `Export*ServiceResponse`
//! protobuf (carrying `partial_success` when records were refused); on failure the status
//! with a protobuf `google.rpc.Status` body, and `Retry-After` in seconds when Dash0 says
//! when to come back. OTLP/JSON is valid OTLP that this mock does not speak: 415.
//!
//! The same server answers Dash0's queries (`query.rs`), authorized like ingest:
//! `GET /api/traces/{trace_id}`, `GET /api/logs?job_id=...&limit=...`,
//! `GET /api/metrics?name=...&limit=...`; answers are OTLP JSON, an unknown id is 404 and a
//! bad parameter 400, each with a JSON error naming what was wrong. Real Dash0 serves its
//! query API on another host than ingest (FIDELITY.md "Dash0 query API").

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
use super::query::Queries;
use super::refusal::{Refusal, RefusalKind};
use super::store::Transport;
use crate::proto::otlp::Signal;
use crate::proto::otlp::{self, DATASET_HEADER};
use crate::record::{JobId, TraceId};
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
    if request.uri().path().starts_with(QUERY_PATH_PREFIX) {
        return Ok(query_route(&ingest, &request));
    }
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

/// Where the query routes live: every path under it is a query, never ingest.
pub(crate) const QUERY_PATH_PREFIX: &str = "/api/";

/// The content type of query answers.
const CONTENT_TYPE_JSON: &str = "application/json";

/// A query that cannot be answered: the status and the message of its JSON error body.
struct QueryError {
    status: StatusCode,
    message: String,
}

impl QueryError {
    /// 400, naming the parameter and what is wrong with it.
    fn bad_parameter(name: &str, problem: impl std::fmt::Display) -> Self {
        QueryError { status: StatusCode::BAD_REQUEST, message: format!("parameter `{name}`: {problem}") }
    }

    /// 404 for an id Dash0 stored nothing of.
    fn not_found(message: String) -> Self {
        QueryError { status: StatusCode::NOT_FOUND, message }
    }
}

/// One query request: method, credentials (as ingest), then the route's answer as JSON.
fn query_route(ingest: &Ingest, request: &Request<Incoming>) -> Response<Full<Bytes>> {
    let answer = authorize_query(ingest, request).and_then(|()| {
        let path = request.uri().path();
        let parameters = QueryParameters::parse(request.uri().query().unwrap_or(""))?;
        let limit = parameters.limit(ingest.config().query_results_limit)?;
        ingest.store().query(|queries| answer_query(queries, path, &parameters, limit))
    });
    match answer {
        Ok(json) => json_response(StatusCode::OK, &json),
        Err(error) => json_response(
            error.status,
            &serde_json::json!({ "error": { "code": error.status.as_u16(), "message": error.message } }),
        ),
    }
}

/// GET only, and the same bearer token (and dataset) as ingest.
fn authorize_query(ingest: &Ingest, request: &Request<Incoming>) -> Result<(), QueryError> {
    if request.method() != Method::GET {
        return Err(QueryError {
            status: StatusCode::METHOD_NOT_ALLOWED,
            message: format!("{} is not GET (the query routes only read)", request.method()),
        });
    }
    let headers = request.headers();
    let authorization = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let dataset = headers.get(DATASET_HEADER).and_then(|v| v.to_str().ok());
    ingest.check_credentials(authorization, dataset).map(|_| ()).map_err(|refusal| QueryError {
        status: StatusCode::from_u16(refusal.status).unwrap_or(StatusCode::UNAUTHORIZED),
        message: refusal.message.clone(),
    })
}

/// Routes one authorized query to its answer.
fn answer_query(
    queries: &Queries<'_>,
    path: &str,
    parameters: &QueryParameters,
    limit: usize,
) -> Result<serde_json::Value, QueryError> {
    if let Some(trace_id) = path.strip_prefix("/api/traces/") {
        let trace_id: TraceId = trace_id
            .parse()
            .map_err(|error| QueryError::bad_parameter("trace_id", format!("{trace_id:?}: {error}")))?;
        let trace = queries.trace(trace_id, limit);
        if trace.is_empty() {
            return Err(QueryError::not_found(format!("no span or log of trace {trace_id} is stored")));
        }
        return Ok(trace.to_json());
    }
    match path {
        "/api/logs" => {
            let text = parameters.required("job_id")?;
            let job_id = JobId::parse(text).map_err(|error| QueryError::bad_parameter("job_id", error))?;
            let logs = queries.logs_of_job(job_id, limit);
            if logs.logs.is_empty() {
                return Err(QueryError::not_found(format!("no log of job {job_id} is stored")));
            }
            Ok(logs.to_json())
        }
        "/api/metrics" => {
            let name = parameters.required("name")?;
            let metric = queries.metric(name, limit);
            if metric.is_empty() {
                return Err(QueryError::not_found(format!("no point of metric {name:?} is stored")));
            }
            Ok(metric.to_json())
        }
        other => Err(QueryError::not_found(format!(
            "no query route at {other} (routes: /api/traces/{{trace_id}}, /api/logs?job_id=, /api/metrics?name=)"
        ))),
    }
}

/// The query string's parameters, percent-decoded, in order.
struct QueryParameters(Vec<(String, String)>);

impl QueryParameters {
    /// Splits `a=1&b=2`; a malformed percent escape is a 400 naming the parameter.
    fn parse(query: &str) -> Result<Self, QueryError> {
        let mut parameters = Vec::new();
        for pair in query.split('&').filter(|pair| !pair.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let value = percent_decode(value).ok_or_else(|| QueryError::bad_parameter(name, "bad percent escape"))?;
            parameters.push((name.to_string(), value));
        }
        Ok(QueryParameters(parameters))
    }

    /// The parameter's value, if given.
    fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str())
    }

    /// The parameter's value; missing or empty is a 400 naming it.
    fn required(&self, name: &str) -> Result<&str, QueryError> {
        self.get(name).filter(|value| !value.is_empty()).ok_or_else(|| QueryError::bad_parameter(name, "is required"))
    }

    /// `limit`: a whole number from 1; absent means `max`, larger is capped at `max`
    /// (`query_results_limit`, as Dash0 caps a page), and the answer says `truncated`.
    fn limit(&self, max: usize) -> Result<usize, QueryError> {
        let Some(text) = self.get("limit") else { return Ok(max) };
        match text.parse::<usize>() {
            Ok(0) => Err(QueryError::bad_parameter("limit", "must be at least 1")),
            Ok(limit) => Ok(limit.min(max)),
            Err(_) => Err(QueryError::bad_parameter("limit", format!("{text:?} is not a whole number"))),
        }
    }
}

/// `%XX` escapes and `+` as space; `None` for a malformed escape or non-UTF-8 bytes.
fn percent_decode(text: &str) -> Option<String> {
    let mut bytes = Vec::with_capacity(text.len());
    let mut rest = text.as_bytes();
    // Bounded by the text: each iteration consumes one byte or one escape.
    while let Some((&first, tail)) = rest.split_first() {
        match first {
            b'%' => {
                let hex = std::str::from_utf8(tail.get(..2)?).ok()?;
                bytes.push(u8::from_str_radix(hex, 16).ok()?);
                rest = &tail[2..];
            }
            b'+' => {
                bytes.push(b' ');
                rest = tail;
            }
            other => {
                bytes.push(other);
                rest = tail;
            }
        }
    }
    String::from_utf8(bytes).ok()
}

/// A JSON answer with its status.
fn json_response(status: StatusCode, json: &serde_json::Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(json.to_string())));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static(CONTENT_TYPE_JSON));
    response
}
