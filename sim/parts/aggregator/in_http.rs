//! in_http on :24224: dev hosts POST their logs as JSON, as Fluentd's in_http accepts them:
//! `POST /<tag>` (path segments joined with dots form the tag) with
//! `Content-Type: application/json` and one record object or an array of them. The reply is
//! 200 once the records are in the buffer; 400 for a body that is not what is described
//! (the message names the record and the field); 413 beyond `http_body_bytes_limit`; 500
//! when the buffer refuses (Fluentd answers its emit error with 500).

use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use crate::world::TcpListener;
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde::Deserialize;

use crate::record::LogRecord;
use crate::vocab::ports;

use super::Shared;
use crate::vocab::EventKind;

/// Accepts dev hosts forever.
pub async fn serve(shared: Arc<Shared>) -> turmoil::Result {
    let listener =
        TcpListener::bind(std::net::SocketAddr::new(IpAddr::from(Ipv4Addr::UNSPECIFIED), ports::AGGREGATOR_HTTP))
            .await?;
    loop {
        let (stream, _) = listener.accept().await?;
        let shared = Arc::clone(&shared);
        crate::world::spawn(async move {
            let sigterm = shared.ctx.host.sigterm().clone();
            let service = service_fn(move |request| handle(Arc::clone(&shared), request));
            // A connection error ends that connection only; SIGTERM ends every connection
            // (Fluentd shuts its inputs down before its outputs).
            tokio::select! {
                biased;
                () = sigterm.received() => {}
                _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service) => {}
            }
        });
    }
}

fn reply(status: StatusCode, text: String) -> Result<Response<Full<Bytes>>, Infallible> {
    let mut response = Response::new(Full::new(Bytes::from(text)));
    *response.status_mut() = status;
    Ok(response)
}

/// Parses a JSON body: one record or an array of records. The error names what is wrong.
pub(crate) fn parse_records(body: &[u8]) -> Result<Vec<LogRecord>, String> {
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|error| format!("malformed JSON body: {error}"))?;
    match value {
        serde_json::Value::Array(items) => items
            .into_iter()
            .enumerate()
            .map(|(index, item)| LogRecord::deserialize(item).map_err(|error| format!("record {index}: {error}")))
            .collect(),
        serde_json::Value::Object(_) => {
            LogRecord::deserialize(value).map(|record| vec![record]).map_err(|error| format!("record 0: {error}"))
        }
        other => Err(format!(
            "JSON body must be a record object or an array of them, got {}",
            match other {
                serde_json::Value::Null => "null",
                serde_json::Value::Bool(_) => "a boolean",
                serde_json::Value::Number(_) => "a number",
                _ => "a string",
            }
        )),
    }
}

async fn handle(shared: Arc<Shared>, request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    if request.method() != Method::POST {
        return reply(StatusCode::METHOD_NOT_ALLOWED, format!("in_http takes POST /<tag>, not {}", request.method()));
    }
    let tag = request.uri().path().trim_matches('/').replace('/', ".");
    if tag.is_empty() {
        return reply(StatusCode::BAD_REQUEST, "missing tag: POST /<tag>".into());
    }
    let content_type =
        request.headers().get(http::header::CONTENT_TYPE).and_then(|value| value.to_str().ok()).unwrap_or("");
    if !content_type.starts_with("application/json") {
        return reply(StatusCode::BAD_REQUEST, format!("Content-Type must be application/json, got {content_type:?}"));
    }
    let limit = shared.config.http_body_bytes_limit;
    let body = match Limited::new(request.into_body(), limit).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(error) => {
            return reply(StatusCode::PAYLOAD_TOO_LARGE, format!("body over {limit} bytes or unreadable: {error}"));
        }
    };
    let records = match parse_records(&body) {
        Ok(records) => records,
        Err(message) => {
            shared.ctx.host.record(EventKind::AggregatorHttpBadRequest, format!("tag {tag}: {message}"));
            return reply(StatusCode::BAD_REQUEST, message);
        }
    };
    let count = records.len();
    match shared.buffer_records(&tag, records, body.len() as u64).await {
        Ok(()) => {
            shared.ctx.host.record(EventKind::AggregatorHttp, format!("tag {tag} records {count}"));
            reply(StatusCode::OK, String::new())
        }
        Err(overflow) => {
            shared
                .ctx
                .host
                .record(EventKind::AggregatorOverflowRefused, format!("http tag {tag} records {count}: {overflow}"));
            reply(StatusCode::INTERNAL_SERVER_ERROR, overflow.to_string())
        }
    }
}
