//! `obsim serve`: the simulation's parts on real sockets, driven by real client libraries
//! (the `redis` crate, obsim's own Forward encoder on a std socket, hyper and tonic for
//! OTLP). Each test starts the binary with port 0, reads the announced addresses from its
//! stdout (the contract README "Live mode" documents), talks to it, then stops it with
//! SIGTERM and checks the summary line and the exit status.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use obsim::parts::log_chunk::LogChunk;
use obsim::proto::forward::{
    ClientAuth, EntryBatch, EventTime, Limits, Options, SHARED_KEY_MISMATCH, ServerFrame, StreamDecoder, encode_forward,
};
use obsim::record::{JobId, LogRecord, RecordId, Severity, SourceId, SpanId, TraceId};
use rand::SeedableRng;

/// How long a served process may take to announce `ready`, or to stop after SIGTERM.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A running `obsim serve`, killed if the test fails before stopping it.
struct Served {
    child: Child,
    lines: Receiver<String>,
    listeners: BTreeMap<(String, String), SocketAddr>,
}

impl Served {
    /// Starts `obsim serve <args>` and waits for its `ready` line.
    fn start(args: &[&str]) -> Served {
        let mut child = Command::new(env!("CARGO_BIN_EXE_obsim"))
            .arg("serve")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("obsim starts");
        let stdout = child.stdout.take().expect("stdout is piped");
        let (sender, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    return;
                }
            }
        });
        let mut served = Served { child, lines, listeners: BTreeMap::new() };
        loop {
            let line = served.next_line().unwrap_or_else(|| panic!("obsim serve {args:?} ended before `ready`"));
            if line == "obsim serve: ready" {
                return served;
            }
            let announced = line.strip_prefix("obsim serve: ").and_then(|rest| {
                let (names, addr) = rest.split_once(" listening on ")?;
                let (part, protocol) = names.split_once(' ')?;
                Some(((part.to_string(), protocol.to_string()), addr.parse::<SocketAddr>().ok()?))
            });
            let (key, addr) = announced.unwrap_or_else(|| panic!("unexpected line before ready: {line:?}"));
            assert_ne!(addr.port(), 0, "{line}: the announced port is the bound one");
            served.listeners.insert(key, addr);
        }
    }

    /// The next stdout line, `None` once stdout closed or after [`START_TIMEOUT`].
    fn next_line(&self) -> Option<String> {
        match self.lines.recv_timeout(START_TIMEOUT) {
            Ok(line) => Some(line),
            Err(RecvTimeoutError::Timeout) => panic!("obsim serve printed nothing for {START_TIMEOUT:?}"),
            Err(RecvTimeoutError::Disconnected) => None,
        }
    }

    /// The address announced for `part`'s `protocol`.
    fn addr(&self, part: &str, protocol: &str) -> SocketAddr {
        *self
            .listeners
            .get(&(part.to_string(), protocol.to_string()))
            .unwrap_or_else(|| panic!("no {part} {protocol} listener in {:?}", self.listeners))
    }

    /// Sends SIGTERM and returns the exit status and the lines printed after `ready`.
    fn stop(mut self) -> (ExitStatus, Vec<String>) {
        let status = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().expect("kill runs");
        assert!(status.success(), "kill -TERM failed");
        let mut lines = Vec::new();
        while let Some(line) = self.next_line() {
            lines.push(line);
        }
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("waiting for obsim") {
                return (status, lines);
            }
            assert!(started.elapsed() < START_TIMEOUT, "obsim serve did not exit after SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        // Already exited after `stop`: the kill fails harmlessly.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Stops `served` and returns its summary line, asserting a clean exit.
fn stop_cleanly(served: Served) -> String {
    let (status, lines) = served.stop();
    assert!(status.success(), "obsim serve exited with {status}; printed {lines:?}");
    let summary = lines.iter().find(|line| line.starts_with("obsim serve: stopped; stored "));
    summary.unwrap_or_else(|| panic!("no summary line in {lines:?}")).clone()
}

/// A redis connection to `addr`.
fn redis_at(addr: SocketAddr) -> redis::Connection {
    redis::Client::open(format!("redis://{addr}/")).unwrap().get_connection().expect("redis connects")
}

/// The machine's Unix time in nanoseconds (live Dash0 judges stamps against it).
fn now_unix_nanos() -> u64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    u64::try_from(since.as_nanos()).unwrap()
}

/// `count` log records of source 0 with distinct ids, stamped now.
fn records(count: u64) -> Vec<LogRecord> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let now = now_unix_nanos();
    (0..count)
        .map(|seq| LogRecord {
            time_unix_nano: now,
            observed_time_unix_nano: now,
            severity: Severity::Info,
            body: format!("live message {seq}"),
            trace_id: TraceId::random(&mut rng),
            span_id: SpanId::random(&mut rng),
            job_id: JobId::random(&mut rng),
            machine_id: None,
            worker_id: None,
            id: RecordId::new(SourceId(0), seq),
            attributes: Default::default(),
        })
        .collect()
}

/// A Forward frame of `records` asking for an ack of chunk `chunk`.
fn forward_frame(records: &[LogRecord], chunk: &str) -> Vec<u8> {
    let mut batch = EntryBatch::new();
    for record in records {
        let seconds = u32::try_from(record.time_unix_nano / 1_000_000_000).unwrap();
        batch.push(EventTime::new(seconds, 0).unwrap(), record).unwrap();
    }
    let mut out = Vec::new();
    let options = Options { chunk: Some(chunk.to_string()), ..Options::default() };
    encode_forward(&mut out, "live.test", &batch, &options).unwrap();
    out
}

/// Reads the next server frame (HELO, PONG or ack) from `stream`; `None` when it closed.
fn next_server_frame(stream: &mut std::net::TcpStream, decoder: &mut StreamDecoder) -> Option<ServerFrame> {
    let mut buffer = [0u8; 4096];
    loop {
        if let Some(frame) = decoder.next_server_frame().expect("a server frame") {
            return Some(frame);
        }
        let count = stream.read(&mut buffer).expect("reading from the aggregator");
        if count == 0 {
            return None;
        }
        decoder.feed(&buffer[..count]).unwrap();
    }
}

/// A Forward connection to `addr` with a read timeout.
fn forward_connection(addr: SocketAddr) -> (std::net::TcpStream, StreamDecoder) {
    let stream = std::net::TcpStream::connect(addr).expect("the aggregator accepts");
    stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    (stream, StreamDecoder::new(Limits::default()))
}

/// Every record id in the values of Redis list `key`, polled until `count` are there.
fn ids_in_redis_list(connection: &mut redis::Connection, key: &str, count: usize) -> Vec<RecordId> {
    let started = Instant::now();
    loop {
        let values: Vec<Vec<u8>> = redis::cmd("LRANGE").arg(key).arg(0).arg(-1).query(connection).unwrap();
        let ids: Vec<RecordId> = values.iter().flat_map(|value| LogChunk::record_ids(value)).collect();
        if ids.len() >= count || started.elapsed() > Duration::from_secs(20) {
            return ids;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn serve_redis_answers_the_redis_crate_and_stops_on_sigterm() {
    let redis = Served::start(&["redis", "--listen", "127.0.0.1:0"]);
    let mut connection = redis_at(redis.addr("redis", "resp"));
    let pong: String = redis::cmd("PING").query(&mut connection).unwrap();
    assert_eq!(pong, "PONG");
    let length: u64 = redis::cmd("RPUSH").arg("live:list").arg("a").arg("b").query(&mut connection).unwrap();
    assert_eq!(length, 2);
    let values: Vec<String> = redis::cmd("LRANGE").arg("live:list").arg(0).arg(-1).query(&mut connection).unwrap();
    assert_eq!(values, ["a", "b"]);
    drop(connection);
    assert_eq!(stop_cleanly(redis), "obsim serve: stopped; stored 0 records in redis lists");
}

#[test]
fn serve_aggregator_acks_a_forward_chunk_and_writes_it_to_serve_redis() {
    let redis = Served::start(&["redis", "--listen", "127.0.0.1:0"]);
    let redis_addr = redis.addr("redis", "resp").to_string();
    let aggregator =
        Served::start(&["aggregator", "--listen", "127.0.0.1:0", "--http", "127.0.0.1:0", "--redis", &redis_addr]);
    let (mut stream, mut decoder) = forward_connection(aggregator.addr("aggregator", "forward"));
    let sent = records(3);
    stream.write_all(&forward_frame(&sent, "chunk-1")).unwrap();
    match next_server_frame(&mut stream, &mut decoder) {
        Some(ServerFrame::Ack(ack)) => assert_eq!(ack.chunk, "chunk-1"),
        other => panic!("expected the ack of chunk-1, got {other:?}"),
    }
    let mut connection = redis_at(redis.addr("redis", "resp"));
    let stored = ids_in_redis_list(&mut connection, "logs:buffer", 3);
    assert_eq!(stored, sent.iter().map(|record| record.id).collect::<Vec<_>>(), "the records reach logs:buffer");
    drop((stream, connection));
    assert_eq!(stop_cleanly(aggregator), "obsim serve: stopped; stored 0 records left in the aggregator's buffer");
    assert_eq!(stop_cleanly(redis), "obsim serve: stopped; stored 3 records in redis lists");
}

#[test]
fn serve_aggregator_checks_the_shared_key_handshake() {
    let aggregator = Served::start(&[
        "aggregator",
        "--listen",
        "127.0.0.1:0",
        "--http",
        "127.0.0.1:0",
        "--redis",
        "127.0.0.1:9",
        "--shared-key",
        "live-secret",
    ]);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
    for (key, accepted) in [("live-secret", true), ("wrong-secret", false)] {
        let (mut stream, mut decoder) = forward_connection(aggregator.addr("aggregator", "forward"));
        let Some(ServerFrame::Helo(helo)) = next_server_frame(&mut stream, &mut decoder) else {
            panic!("no HELO with a shared key configured");
        };
        let auth = ClientAuth {
            hostname: "live-client".into(),
            shared_key: key.into(),
            username: String::new(),
            password: String::new(),
        };
        let ping = auth.ping(&helo, &mut rng);
        let mut out = Vec::new();
        ping.encode(&mut out);
        stream.write_all(&out).unwrap();
        let Some(ServerFrame::Pong(pong)) = next_server_frame(&mut stream, &mut decoder) else {
            panic!("no PONG for key {key}");
        };
        assert_eq!(pong.auth_result, accepted, "key {key}: {pong:?}");
        if accepted {
            auth.verify_pong(&helo, &ping, &pong).expect("the server proves it knows the key");
            stream.write_all(&forward_frame(&records(1), "after-auth")).unwrap();
            let Some(ServerFrame::Ack(ack)) = next_server_frame(&mut stream, &mut decoder) else {
                panic!("no ack after the handshake");
            };
            assert_eq!(ack.chunk, "after-auth");
        } else {
            assert_eq!(pong.reason, SHARED_KEY_MISMATCH);
            assert!(next_server_frame(&mut stream, &mut decoder).is_none(), "a refused client is disconnected");
        }
    }
    // Redis at port 9 is unreachable: the acked record stays in the buffer, and the stop
    // still ends within the grace.
    let summary = stop_cleanly(aggregator);
    assert!(summary.ends_with("records left in the aggregator's buffer"), "{summary}");
}

/// One OTLP/HTTP logs export to `addr` with `count` records: the status and `Retry-After`.
async fn post_logs(addr: SocketAddr, count: usize) -> (u16, Option<String>) {
    use http_body_util::{BodyExt, Full};
    use prost::Message;
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await.unwrap();
    let driver = tokio::spawn(connection);
    let body = logs_request(count).encode_to_vec();
    let request = http::Request::post(format!("http://{addr}/v1/logs"))
        .header("content-type", "application/x-protobuf")
        .header("authorization", "Bearer any-token")
        .body(Full::new(bytes::Bytes::from(body)))
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    let status = response.status().as_u16();
    let retry_after = response.headers().get("retry-after").map(|value| value.to_str().unwrap().to_string());
    let _ = response.into_body().collect().await.unwrap();
    driver.abort();
    (status, retry_after)
}

/// An OTLP logs request with `count` records stamped now, as an SDK sends them: a resource
/// with `service.name`, no obsim identity (Dash0 counts them as foreign and stores them).
fn logs_request(count: usize) -> opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest {
    use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
    use opentelemetry_proto::tonic::logs::v1::{LogRecord as OtlpLog, ResourceLogs, ScopeLogs};
    use opentelemetry_proto::tonic::resource::v1::Resource;
    let service_name = KeyValue {
        key: "service.name".into(),
        value: Some(AnyValue { value: Some(any_value::Value::StringValue("live-test".into())) }),
        ..Default::default()
    };
    let now = now_unix_nanos();
    let log_records = (0..count)
        .map(|index| OtlpLog {
            time_unix_nano: now,
            observed_time_unix_nano: now,
            body: Some(AnyValue { value: Some(any_value::Value::StringValue(format!("live otlp {index}"))) }),
            ..Default::default()
        })
        .collect();
    opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(Resource { attributes: vec![service_name], ..Default::default() }),
            scope_logs: vec![ScopeLogs { log_records, ..Default::default() }],
            ..Default::default()
        }],
    }
}

#[test]
fn serve_dash0_takes_otlp_http_and_grpc_exports() {
    let dash0 = Served::start(&["dash0", "--listen", "127.0.0.1:0", "--grpc", "127.0.0.1:0"]);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let (http_addr, grpc_addr) = (dash0.addr("dash0", "otlp-http"), dash0.addr("dash0", "otlp-grpc"));
    runtime.block_on(async {
        assert_eq!(post_logs(http_addr, 2).await, (200, None));
        use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
        let mut client = LogsServiceClient::connect(format!("http://{grpc_addr}")).await.expect("gRPC connects");
        let mut request = tonic::Request::new(logs_request(3));
        request.metadata_mut().insert("authorization", "Bearer any-token".parse().unwrap());
        let response = client.export(request).await.expect("the gRPC export is accepted");
        assert!(response.get_ref().partial_success.as_ref().is_none_or(|p| p.rejected_log_records == 0));
    });
    assert_eq!(stop_cleanly(dash0), "obsim serve: stopped; stored 5 logs, 0 spans, 0 metric points in dash0");
}

#[test]
fn serve_dash0_fails_as_scripted_then_recovers() {
    let dash0 = Served::start(&[
        "dash0",
        "--listen",
        "127.0.0.1:0",
        "--grpc",
        "127.0.0.1:0",
        "--fail",
        "503",
        "--retry-after",
        "5s",
        "--fail-for",
        "2s",
    ]);
    let ready = Instant::now();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let http_addr = dash0.addr("dash0", "otlp-http");
    runtime.block_on(async {
        assert_eq!(post_logs(http_addr, 1).await, (503, Some("5".to_string())));
        tokio::time::sleep(Duration::from_secs(2).saturating_sub(ready.elapsed()) + Duration::from_millis(500)).await;
        assert_eq!(post_logs(http_addr, 1).await.0, 200, "the failure ends after --fail-for");
    });
    assert_eq!(stop_cleanly(dash0), "obsim serve: stopped; stored 1 logs, 0 spans, 0 metric points in dash0");
}

#[test]
fn serve_dash0_checks_a_token_when_given_one() {
    let dash0 = Served::start(&["dash0", "--listen", "127.0.0.1:0", "--grpc", "127.0.0.1:0", "--token", "t0k"]);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let (status, _) = runtime.block_on(post_logs(dash0.addr("dash0", "otlp-http"), 1));
    assert_eq!(status, 401, "`Bearer any-token` is not the configured token");
    stop_cleanly(dash0);
}

#[test]
fn a_taken_port_fails_the_start_naming_the_address() {
    let redis = Served::start(&["redis", "--listen", "127.0.0.1:0"]);
    let taken = redis.addr("redis", "resp").to_string();
    let output =
        Command::new(env!("CARGO_BIN_EXE_obsim")).args(["serve", "redis", "--listen", &taken]).output().unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(&taken), "{stderr}");
    stop_cleanly(redis);
}

#[test]
fn serve_pipeline_carries_a_forward_chunk_to_dash0() {
    let pipeline = Served::start(&[
        "pipeline",
        "--listen",
        "127.0.0.1:0",
        "--http",
        "127.0.0.1:0",
        "--redis",
        "127.0.0.1:0",
        "--otlp-http",
        "127.0.0.1:0",
        "--grpc",
        "127.0.0.1:0",
    ]);
    let (mut stream, mut decoder) = forward_connection(pipeline.addr("aggregator", "forward"));
    stream.write_all(&forward_frame(&records(4), "pipeline-1")).unwrap();
    assert!(matches!(next_server_frame(&mut stream, &mut decoder), Some(ServerFrame::Ack(_))));
    drop(stream);
    // The aggregator flushes within a second, the shipper drains Redis to Dash0 at once.
    std::thread::sleep(Duration::from_secs(4));
    let summary = stop_cleanly(pipeline);
    assert_eq!(
        summary,
        "obsim serve: stopped; stored 0 records in redis lists, 4 logs, 0 spans, 0 metric points in dash0"
    );
}
