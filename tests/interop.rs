//! Real clients against obsim: Debian's python3-fluent-logger, npm @fluent-org/logger and
//! fluent-logger 3.4.x, and the OpenTelemetry Python SDK's OTLP exporters (README "Real
//! clients", FIDELITY.md "Interop clients").
//!
//! Two levels. The wire tests run each Forward client against a capture server built from
//! obsim's own protocol code (`interop_support::capture`) and assert what obsim's decoder
//! reads: mode, options, times, every record once, acks, the handshake. The serve tests
//! run the clients against `obsim serve aggregator` (pointed at `obsim serve redis`) and
//! `obsim serve dash0` and assert what got stored.
//!
//! A missing client (or a build without `obsim serve`) skips a test with the reason, and
//! fails it when `OBSIM_INTEROP=require` (as `.ci/run` sets).

mod interop_support;

use std::path::Path;
use std::process::Command;

use interop_support::capture::{CaptureServer, Connection};
use interop_support::records::{RecordTime, Sent, T0_SECONDS};
use interop_support::{ClientRun, DEBIAN_PYTHON, available, run_client};
use obsim::proto::forward::{Compression, EventFrame, Limits, Mode, StreamDecoder};
use obsim::record::LogRecord;

/// Records each client run sends: enough for several per frame, few enough to read.
const RECORDS_PER_RUN: u32 = 20;

/// Every record of every frame, decoded as a log record (panics naming a bad entry).
fn records_of(frames: &[EventFrame]) -> Vec<LogRecord> {
    let mut records = Vec::new();
    for frame in frames {
        for (index, entry) in frame.entries.iter().enumerate() {
            let record = entry.deserialize_record::<LogRecord>().unwrap_or_else(|error| {
                panic!("{} frame (tag {}) entry {index} is not a log record: {error}", frame.mode.name(), frame.tag)
            });
            records.push(record);
        }
    }
    records
}

/// Every frame of every connection, in order.
fn frames_of(connections: &[Connection]) -> Vec<EventFrame> {
    connections.iter().flat_map(|connection| connection.frames.iter().cloned()).collect()
}

/// Asserts no connection met a decoder error.
fn assert_decoded_cleanly(connections: &[Connection], client: &str) {
    for (index, connection) in connections.iter().enumerate() {
        assert!(
            connection.errors.is_empty(),
            "{client}: obsim's decoder refused connection {index}: {:?}",
            connection.errors
        );
    }
}

/// Asserts each record's entry time is the one the client was given.
fn assert_entry_times(frames: &[EventFrame], sent: &Sent) {
    for frame in frames {
        for entry in &frame.entries {
            let record: LogRecord = entry.deserialize_record().expect("checked by records_of");
            let seq = u32::try_from(record.id.seq).expect("a small seq");
            assert_eq!(entry.time, sent.entry_time(seq), "{}: record {seq}'s entry time", sent.client);
        }
    }
}

/// When `OBSIM_WRITE_WIRE_FIXTURES=1`, keeps the first connection's bytes as
/// `fixtures/wire/<name>.msgpack` (how the committed captures were made).
fn maybe_write_fixture(connections: &[Connection], name: &str) {
    if std::env::var("OBSIM_WRITE_WIRE_FIXTURES").is_ok_and(|value| value == "1") {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/wire").join(format!("{name}.msgpack"));
        std::fs::write(&path, &connections[0].raw).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    }
}

/// Runs Debian's python3-fluent-logger script against `host:port`.
fn run_python_fluent_logger(address: std::net::SocketAddr, sent: &Sent) -> ClientRun {
    run_client(Command::new(DEBIAN_PYTHON).args([
        "fluent_python.py".to_owned(),
        address.ip().to_string(),
        address.port().to_string(),
        sent.source.to_string(),
        sent.count.to_string(),
        sent.t0.to_string(),
    ]))
}

/// What the python fluent-logger run sends.
fn python_sent(source: u32) -> Sent {
    Sent {
        client: "fluent-logger-python",
        body_prefix: "fluent-logger-python".to_owned(),
        source,
        count: RECORDS_PER_RUN,
        t0: T0_SECONDS,
        record_time: RecordTime::Nanoseconds,
    }
}

#[test]
fn python_fluent_logger_sends_message_mode_with_event_time_that_obsim_decodes() {
    if !available("python3-fluent-logger", interop_support::debian_fluent_logger()) {
        return;
    }
    let server = CaptureServer::start(None);
    let sent = python_sent(101);
    run_python_fluent_logger(server.address, &sent).assert_success();
    let connections = server.finish();
    assert_decoded_cleanly(&connections, sent.client);
    let frames = frames_of(&connections);
    assert!(frames.iter().all(|frame| frame.mode == Mode::Message), "python fluent-logger sends Message mode");
    assert!(frames.iter().all(|frame| frame.tag == "interop.python"), "tag = prefix.label");
    sent.assert_exactly_once(&records_of(&frames), "the capture");
    assert_entry_times(&frames, &sent);
    maybe_write_fixture(&connections, "python3-fluent-logger-0.10.0-message");
}

/// The JSON config of one @fluent-org/logger or fluent-logger run.
fn node_config(address: std::net::SocketAddr, sent: &Sent, extra: serde_json::Value) -> String {
    let mut config = serde_json::json!({
        "host": address.ip().to_string(),
        "port": address.port(),
        "source": sent.source,
        "count": sent.count,
        "t0": sent.t0,
    });
    let object = config.as_object_mut().expect("an object");
    for (key, value) in extra.as_object().expect("extra is an object") {
        object.insert(key.clone(), value.clone());
    }
    config.to_string()
}

/// What an @fluent-org/logger run in `mode` sends.
fn fluent_org_sent(source: u32, mode: Mode) -> Sent {
    Sent {
        client: "fluent-org-logger",
        body_prefix: format!("fluent-org-logger {}", mode.name()),
        source,
        count: RECORDS_PER_RUN,
        t0: T0_SECONDS,
        record_time: RecordTime::SafeInteger,
    }
}

/// The four carrier modes, as the npm clients spell them.
const MODES: [Mode; 4] = [Mode::Message, Mode::Forward, Mode::PackedForward, Mode::CompressedPackedForward];

#[test]
fn fluent_org_logger_every_event_mode_with_ack_is_decoded_and_acked() {
    if !available("npm clients (node, tests/interop/node_modules)", interop_support::node_clients()) {
        return;
    }
    for (index, mode) in MODES.into_iter().enumerate() {
        let server = CaptureServer::start(None);
        let sent = fluent_org_sent(201 + index as u32, mode);
        let config = node_config(server.address, &sent, serde_json::json!({"mode": mode.name(), "ack": true}));
        let run = run_client(Command::new("node").args(["fluent_org.js", config.as_str()]));
        run.assert_success();
        assert_eq!(run.result()["acked"], true, "every emit resolved on its ack\n{run}");
        let connections = server.finish();
        assert_decoded_cleanly(&connections, sent.client);
        let frames = frames_of(&connections);
        assert!(frames.iter().all(|frame| frame.mode == mode), "{}: every frame in that mode", mode.name());
        assert!(frames.iter().all(|frame| frame.options.chunk.is_some()), "ack asks with a chunk");
        let acks: usize = connections.iter().map(|connection| connection.acks_sent).sum();
        assert_eq!(acks, frames.len(), "{}: one ack per frame", mode.name());
        sent.assert_exactly_once(&records_of(&frames), &format!("the {} capture", mode.name()));
        assert_entry_times(&frames, &sent);
        maybe_write_fixture(&connections, &format!("fluent-org-logger-1.0.10-{}-ack", mode.name()));
    }
}

#[test]
fn fluent_org_logger_shared_key_is_accepted_and_a_wrong_key_is_refused_with_its_auth_error() {
    if !available("npm clients (node, tests/interop/node_modules)", interop_support::node_clients()) {
        return;
    }
    let server = CaptureServer::start(Some("interop-secret"));
    let sent = fluent_org_sent(211, Mode::PackedForward);
    let extra = serde_json::json!({"mode": "PackedForward", "ack": true, "sharedKey": "interop-secret"});
    let run = run_client(Command::new("node").args(["fluent_org.js", &node_config(server.address, &sent, extra)]));
    run.assert_success();
    let connections = server.finish();
    assert_eq!(connections[0].auth_accepted, Some(true), "the right key passes obsim's handshake");
    sent.assert_exactly_once(&records_of(&frames_of(&connections)), "the capture after the handshake");
    maybe_write_fixture(&connections, "fluent-org-logger-1.0.10-shared-key-PackedForward-ack");

    let server = CaptureServer::start(Some("interop-secret"));
    let extra = serde_json::json!({"mode": "PackedForward", "ack": true, "sharedKey": "wrong-secret"});
    let run = run_client(Command::new("node").args(["fluent_org.js", &node_config(server.address, &sent, extra)]));
    let connections = server.finish();
    assert_eq!(run.status.code(), Some(3), "the client reports a socket error\n{run}");
    assert_wrong_key_refused(&run, &connections);
}

/// The client saw Fluentd's refusal as @fluent-org/logger reports it (an `AuthError` whose
/// message carries the PONG's reason) and nothing was taken.
fn assert_wrong_key_refused(run: &ClientRun, connections: &[Connection]) {
    let result = run.result();
    assert_eq!(result["error"], "AuthError", "{run}");
    let message = result["message"].as_str().unwrap_or_default();
    assert!(message.contains("shared_key mismatch"), "the PONG's reason reaches the client: {message}");
    assert!(connections.iter().all(|connection| connection.auth_accepted != Some(true)), "no connection accepted");
    assert!(frames_of(connections).is_empty(), "no events taken with a wrong key");
}

/// What a fluent-logger 3.4.x run in `mode` sends.
fn fluent_logger_sent(source: u32, mode: Mode) -> Sent {
    Sent {
        client: "fluent-logger",
        body_prefix: format!("fluent-logger {}", mode.name()),
        source,
        count: RECORDS_PER_RUN,
        t0: T0_SECONDS,
        record_time: RecordTime::Nanoseconds,
    }
}

/// Runs fluent_logger.js in `mode` with `time` against a capture server; returns the run,
/// what was sent and the connections.
fn run_fluent_logger_capture(source: u32, mode: Mode, ack: bool, time: &str) -> (ClientRun, Sent, Vec<Connection>) {
    let server = CaptureServer::start(None);
    let sent = fluent_logger_sent(source, mode);
    let extra = serde_json::json!({"mode": mode.name(), "ack": ack, "time": time});
    let run = run_client(Command::new("node").args(["fluent_logger.js", &node_config(server.address, &sent, extra)]));
    (run, sent, server.finish())
}

#[test]
fn fluent_logger_3_packed_forward_size_in_bytes_and_compressed_text_are_read_as_fluentd_reads_them() {
    if !available("npm clients (node, tests/interop/node_modules)", interop_support::node_clients()) {
        return;
    }
    let (run, sent, connections) = run_fluent_logger_capture(301, Mode::PackedForward, true, "eventTime");
    run.assert_success();
    assert_decoded_cleanly(&connections, sent.client);
    let frames = frames_of(&connections);
    for frame in &frames {
        assert_eq!(frame.mode, Mode::PackedForward);
        assert_eq!(frame.options.compressed, Some(Compression::Text), "fluent-logger says compressed: \"text\"");
        let size = frame.options.size.expect("fluent-logger sends size");
        assert!(size > frame.entries.len() as u64, "size is the entries' byte length ({size}), not their count");
    }
    sent.assert_exactly_once(&records_of(&frames), "the PackedForward capture");
    assert_entry_times(&frames, &sent);
    maybe_write_fixture(&connections, "fluent-logger-3.4.1-PackedForward-size-compressed-text-ack");

    let (run, sent, connections) = run_fluent_logger_capture(302, Mode::CompressedPackedForward, true, "eventTime");
    run.assert_success();
    assert_decoded_cleanly(&connections, sent.client);
    let frames = frames_of(&connections);
    assert!(frames.iter().all(|frame| frame.options.compressed == Some(Compression::Gzip)));
    sent.assert_exactly_once(&records_of(&frames), "the CompressedPackedForward capture");
    maybe_write_fixture(&connections, "fluent-logger-3.4.1-CompressedPackedForward-ack");
}

#[test]
fn fluent_logger_3_float_and_integer_second_times_are_read() {
    if !available("npm clients (node, tests/interop/node_modules)", interop_support::node_clients()) {
        return;
    }
    let (run, sent, connections) = run_fluent_logger_capture(303, Mode::Message, true, "float");
    run.assert_success();
    assert_decoded_cleanly(&connections, sent.client);
    let frames = frames_of(&connections);
    sent.assert_exactly_once(&records_of(&frames), "the float-time capture");
    assert_entry_times(&frames, &sent);
    maybe_write_fixture(&connections, "fluent-logger-3.4.1-Message-float-seconds-ack");

    let (run, sent, connections) = run_fluent_logger_capture(304, Mode::Message, false, "seconds");
    run.assert_success();
    let frames = frames_of(&connections);
    sent.assert_exactly_once(&records_of(&frames), "the integer-seconds capture");
    for frame in &frames {
        assert!(frame.entries.iter().all(|entry| entry.time.nanoseconds == 0), "integer seconds carry no fraction");
    }
}

#[test]
fn fluent_logger_3_milliseconds_option_sends_float_milliseconds_which_fluentd_1_19_judges_invalid() {
    if !available("npm clients (node, tests/interop/node_modules)", interop_support::node_clients()) {
        return;
    }
    let (run, _sent, connections) = run_fluent_logger_capture(305, Mode::Message, false, "milliseconds");
    run.assert_success();
    let raw: Vec<u8> = connections.iter().flat_map(|connection| connection.raw.iter().copied()).collect();
    let millis = f64::from(T0_SECONDS) * 1000.0 + 250.0;
    let mut float64 = vec![0xcb];
    float64.extend_from_slice(&millis.to_be_bytes());
    assert!(
        raw.windows(9).any(|window| window == float64.as_slice()),
        "the first time is the float64 {millis} (milliseconds)"
    );
    // The frames are read whole (Fluentd reads them); each event's time is a float past
    // 2106, which in_forward's `invalid_event?` calls invalid (FIDELITY.md, Aggregator).
    assert_decoded_cleanly(&connections, "fluent-logger 3.4.1 milliseconds");
    assert_float_millisecond_times(&frames_of(&connections), "the capture");
    maybe_write_fixture(&connections, "fluent-logger-3.4.1-Message-milliseconds-float");
}

/// Every event of `frames` has a float time outside an EventTime's range (a millisecond
/// count), as the decoder flags it for the aggregator to judge.
fn assert_float_millisecond_times(frames: &[EventFrame], what: &str) {
    let entries: Vec<&obsim::proto::forward::Entry> = frames.iter().flat_map(|frame| &frame.entries).collect();
    assert_eq!(entries.len(), RECORDS_PER_RUN as usize, "{what}: every event");
    assert!(
        entries.iter().all(|entry| entry.time_form == obsim::proto::forward::TimeForm::Float && entry.time_saturated),
        "{what}: float millisecond times, flagged: {entries:?}"
    );
}

/// Decodes a committed capture the way the aggregator does: fed in small pieces.
fn decode_fixture(bytes: &[u8]) -> (Vec<EventFrame>, Vec<String>) {
    const PIECE_BYTES: usize = 7;
    let mut decoder = StreamDecoder::new(Limits::default());
    let (mut frames, mut errors) = (Vec::new(), Vec::new());
    for piece in bytes.chunks(PIECE_BYTES) {
        decoder.feed(piece).expect("a capture fits the decoder's buffer");
        loop {
            match decoder.next_client_frame() {
                Ok(Some(obsim::proto::forward::ClientFrame::Events(frame))) => frames.push(frame),
                Ok(Some(obsim::proto::forward::ClientFrame::Ping(_))) => {}
                Ok(None) => break,
                Err(error) => errors.push(error.to_string()),
            }
        }
    }
    (frames, errors)
}

#[test]
fn committed_wire_captures_decode_with_obsims_forward_decoder() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/wire");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|error| panic!("{}: {error}", dir.display()))
        .map(|entry| entry.expect("fixture entry").file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".msgpack"))
        .collect();
    names.sort();
    assert!(names.len() >= 6, "the client captures are committed: {names:?}");
    for name in &names {
        let bytes = std::fs::read(dir.join(name)).expect("fixture readable");
        let (frames, errors) = decode_fixture(&bytes);
        if name.contains("milliseconds") {
            assert!(errors.is_empty(), "{name}: {errors:?}");
            assert_float_millisecond_times(&frames, name);
            continue;
        }
        assert!(errors.is_empty(), "{name}: {errors:?}");
        let records = records_of(&frames);
        assert_eq!(records.len(), RECORDS_PER_RUN as usize, "{name}: every record");
        let seqs: std::collections::BTreeSet<u64> = records.iter().map(|record| record.id.seq).collect();
        assert_eq!(seqs.len(), records.len(), "{name}: distinct records");
    }
}

/// How long the serve tests wait for records to reach Redis (the aggregator flushes its
/// buffer on its own schedule).
const REDIS_WAIT: std::time::Duration = std::time::Duration::from_secs(30);
/// The list the aggregator RPUSHes to by default (`[aggregator] redis_key`).
const REDIS_LOG_KEY: &str = "logs:buffer";

/// `obsim serve redis` and `obsim serve aggregator` pointed at it.
struct Railway {
    redis: interop_support::Served,
    aggregator: interop_support::Served,
}

impl Railway {
    /// Starts both, the aggregator with `shared_key` if given; `None` when `obsim serve` is
    /// missing and not required.
    fn start(shared_key: Option<&str>) -> Option<Railway> {
        if !available("obsim serve", interop_support::obsim_serve()) {
            return None;
        }
        let redis = interop_support::Served::start(&["redis", "--listen", "127.0.0.1:0"]);
        let redis_address = redis.address("redis", "resp").to_string();
        let mut args =
            vec!["aggregator", "--listen", "127.0.0.1:0", "--http", "127.0.0.1:0", "--redis", redis_address.as_str()];
        if let Some(key) = shared_key {
            args.extend(["--shared-key", key]);
        }
        let aggregator = interop_support::Served::start(&args);
        Some(Railway { redis, aggregator })
    }

    /// The aggregator's Forward listener.
    fn forward(&self) -> std::net::SocketAddr {
        self.aggregator.address("aggregator", "forward")
    }

    /// Every log record in the aggregator's Redis list, once `sent`'s count of them arrived
    /// or `REDIS_WAIT` passed.
    fn records_after(&self, sent: &Sent) -> Vec<LogRecord> {
        self.records_of_source(sent.source, sent.count)
    }

    /// Every log record in the aggregator's Redis list, once `count` of `source` arrived or
    /// `REDIS_WAIT` passed.
    fn records_of_source(&self, source: u32, count: u32) -> Vec<LogRecord> {
        let address = self.redis.address("redis", "resp");
        let client = redis::Client::open(format!("redis://{address}/")).expect("redis url");
        let mut connection = client.get_connection().expect("connects to obsim serve redis");
        let deadline = std::time::Instant::now() + REDIS_WAIT;
        loop {
            let values: Vec<Vec<u8>> =
                redis::cmd("LRANGE").arg(REDIS_LOG_KEY).arg(0).arg(-1).query(&mut connection).expect("LRANGE");
            let records: Vec<LogRecord> = values
                .iter()
                .flat_map(|value| {
                    obsim::parts::log_chunk::LogChunk::decode(value)
                        .unwrap_or_else(|error| panic!("a value in {REDIS_LOG_KEY} is not a log chunk: {error}"))
                        .records
                })
                .collect();
            let mine = records.iter().filter(|record| record.id.source.0 == source).count();
            if mine >= count as usize || std::time::Instant::now() >= deadline {
                return records;
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    }
}

#[test]
fn serve_python_fluent_logger_records_reach_redis_exactly_once() {
    if !available("python3-fluent-logger", interop_support::debian_fluent_logger()) {
        return;
    }
    let Some(railway) = Railway::start(None) else { return };
    let sent = python_sent(401);
    run_python_fluent_logger(railway.forward(), &sent).assert_success();
    sent.assert_exactly_once(&railway.records_after(&sent), "Redis");
}

#[test]
fn serve_fluent_org_logger_every_mode_with_ack_reaches_redis_exactly_once() {
    if !available("npm clients (node, tests/interop/node_modules)", interop_support::node_clients()) {
        return;
    }
    let Some(railway) = Railway::start(None) else { return };
    for (index, mode) in MODES.into_iter().enumerate() {
        let sent = fluent_org_sent(411 + index as u32, mode);
        let config = node_config(railway.forward(), &sent, serde_json::json!({"mode": mode.name(), "ack": true}));
        let run = run_client(Command::new("node").args(["fluent_org.js", config.as_str()]));
        run.assert_success();
        assert_eq!(run.result()["acked"], true, "{}: every ack came\n{run}", mode.name());
        sent.assert_exactly_once(&railway.records_after(&sent), &format!("Redis after {}", mode.name()));
    }
}

#[test]
fn serve_fluent_org_logger_right_key_is_stored_and_wrong_key_is_refused() {
    if !available("npm clients (node, tests/interop/node_modules)", interop_support::node_clients()) {
        return;
    }
    let Some(railway) = Railway::start(Some("interop-secret")) else { return };
    let sent = fluent_org_sent(421, Mode::Forward);
    let extra = serde_json::json!({"mode": "Forward", "ack": true, "sharedKey": "interop-secret"});
    let run = run_client(Command::new("node").args(["fluent_org.js", &node_config(railway.forward(), &sent, extra)]));
    run.assert_success();
    sent.assert_exactly_once(&railway.records_after(&sent), "Redis after the handshake");

    let refused = fluent_org_sent(422, Mode::Forward);
    let extra = serde_json::json!({"mode": "Forward", "ack": true, "sharedKey": "wrong-secret"});
    let run =
        run_client(Command::new("node").args(["fluent_org.js", &node_config(railway.forward(), &refused, extra)]));
    assert_eq!(run.status.code(), Some(3), "the client reports its auth error\n{run}");
    assert_eq!(run.result()["error"], "AuthError", "{run}");
    assert!(run.result()["message"].as_str().unwrap_or_default().contains("shared_key mismatch"), "{run}");
    let stored = railway.records_after(&sent);
    assert!(stored.iter().all(|record| record.id.source.0 != refused.source), "nothing stored with a wrong key");
}

#[test]
fn serve_fluent_logger_3_options_reach_redis_exactly_once() {
    if !available("npm clients (node, tests/interop/node_modules)", interop_support::node_clients()) {
        return;
    }
    let Some(railway) = Railway::start(None) else { return };
    let runs = [
        (431, Mode::PackedForward, "eventTime"),
        (432, Mode::CompressedPackedForward, "eventTime"),
        (434, Mode::Message, "seconds"),
    ];
    for (source, mode, time) in runs {
        let sent = fluent_logger_sent(source, mode);
        let extra = serde_json::json!({"mode": mode.name(), "ack": true, "time": time});
        let run =
            run_client(Command::new("node").args(["fluent_logger.js", &node_config(railway.forward(), &sent, extra)]));
        run.assert_success();
        assert_eq!(run.result()["acked"], true, "{} {time}: every ack came\n{run}", mode.name());
        sent.assert_exactly_once(&railway.records_after(&sent), &format!("Redis after {} {time}", mode.name()));
    }
}

#[test]
fn serve_fluent_logger_3_float_times_are_acked_and_skipped_as_fluentd_1_19_does() {
    if !available("npm clients (node, tests/interop/node_modules)", interop_support::node_clients()) {
        return;
    }
    let Some(railway) = Railway::start(None) else { return };
    // Float seconds and fluent-logger's `milliseconds` (a float of milliseconds) alike: a
    // Float is not an Integer or an EventTime, so in_forward's `invalid_event?` is true.
    for (source, time) in [(433, "float"), (435, "milliseconds")] {
        let sent = fluent_logger_sent(source, Mode::Message);
        let extra = serde_json::json!({"mode": Mode::Message.name(), "ack": true, "time": time});
        let run =
            run_client(Command::new("node").args(["fluent_logger.js", &node_config(railway.forward(), &sent, extra)]));
        run.assert_success();
        // skip_invalid_event (Fluentd 1.19's default): the event is dropped, the ack still sent.
        assert_eq!(run.result()["acked"], true, "{time}: every ack came although every event was skipped\n{run}");
        let stored: Vec<LogRecord> =
            railway.records_after(&sent).into_iter().filter(|record| record.id.source.0 == sent.source).collect();
        assert!(stored.is_empty(), "{time}: no event with a float time is stored: {stored:?}");
    }
}

/// The records of each signal the OTel script sends (one metric point: a counter's sum).
const OTEL_RECORDS: u32 = 5;

/// `obsim serve dash0` on port 0 with `extra` flags, writing its event log to `events` on
/// stop; `None` when serve is missing and not required.
fn dash0(extra: &[&str], events: &Path) -> Option<interop_support::Served> {
    if !available("obsim serve", interop_support::obsim_serve()) {
        return None;
    }
    let events = events.to_str().expect("a UTF-8 temp path");
    let mut args = vec!["dash0", "--listen", "127.0.0.1:0", "--grpc", "127.0.0.1:0", "--events", events];
    args.extend_from_slice(extra);
    Some(interop_support::Served::start(&args))
}

/// A serve run's event log file, removed when the test ends.
struct EventsFile(std::path::PathBuf);

impl std::ops::Deref for EventsFile {
    type Target = Path;

    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for EventsFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A fresh path for one serve run's event log.
fn events_path(name: &str) -> EventsFile {
    let path = std::env::temp_dir().join(format!("obsim-interop-{}-{name}.log", std::process::id()));
    let _ = std::fs::remove_file(&path);
    EventsFile(path)
}

/// Dash0's `(requests stored, requests refused)` per `(protocol, signal)` as its event log
/// recorded them (`dash0.ingest` / `dash0.refused`, text `<transport> <signal> ...`).
fn dash0_requests(events: &Path, signal: &str) -> (usize, usize) {
    let text = std::fs::read_to_string(events).unwrap_or_else(|error| panic!("{}: {error}", events.display()));
    let count = |kind: &str| {
        text.lines()
            .filter(|line| line.contains(kind))
            .filter(|line| line.split_whitespace().any(|word| word == signal))
            .count()
    };
    (count("dash0.ingest"), count("dash0.refused"))
}

/// The OTLP signal names Dash0's events use for the script's spans, logs and metrics.
const EVENT_SIGNALS: [&str; 3] = ["traces", "logs", "metrics"];

/// Runs otel.py over `protocol` against `dash0`; returns its result line.
fn run_otel(dash0: &interop_support::Served, protocol: &str, prefix: &str) -> serde_json::Value {
    let listener = if protocol == "http" { "otlp-http" } else { "otlp-grpc" };
    let endpoint = format!("http://{}", dash0.address("dash0", listener));
    let count = OTEL_RECORDS.to_string();
    let run =
        run_client(Command::new(interop_support::otel_python()).args(["otel.py", protocol, &endpoint, &count, prefix]));
    run.assert_success();
    run.result()
}

/// A plain HTTP/1.1 GET of `path` (the query API answers JSON): the status and the body.
fn http_get(address: std::net::SocketAddr, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address).expect("connects to dash0's HTTP port");
    stream.set_read_timeout(Some(std::time::Duration::from_secs(10))).expect("a read timeout");
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n").expect("request written");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("the answer is text");
    let status = answer.split(' ').nth(1).and_then(|code| code.parse().ok()).unwrap_or(0);
    let body = answer.split_once("\r\n\r\n").map_or(String::new(), |(_, body)| body.to_owned());
    (status, body)
}

/// Per signal `(logs, spans, metric points)` stored, from serve's stop summary.
fn stored_counts(summary: &str) -> (Option<u64>, Option<u64>, Option<u64>) {
    let count = |labels: &[&str]| labels.iter().find_map(|label| interop_support::count_before(summary, label));
    (count(&["log"]), count(&["span"]), count(&["metric"]))
}

/// Asserts every signal's one export (after the exporter's own retries) ended `ok`.
fn assert_outcome(result: &serde_json::Value, ok: bool, what: &str) {
    for signal in ["spans", "logs", "metrics"] {
        assert_eq!(result[signal]["ok"], ok, "{what}: {signal} export ok = {ok}: {result}");
        assert_eq!(result[signal]["exports"], 1, "{what}: {signal} exported once: {result}");
    }
}

#[test]
fn serve_otel_sdk_http_and_grpc_spans_logs_and_metrics_are_all_stored() {
    if !available("the OTel Python SDK", interop_support::otel_sdk()) {
        return;
    }
    for protocol in ["http", "grpc"] {
        let events = events_path(&format!("stored-{protocol}"));
        let Some(dash0) = dash0(&[], &events) else { return };
        let result = run_otel(&dash0, protocol, &format!("interop-{protocol}"));
        assert_outcome(&result, true, protocol);
        // Queryable as a person would ask: the counter's series by name (`GET /api/metrics`).
        let metric = format!("interop-{protocol}.requests");
        let (status, body) = http_get(dash0.address("dash0", "otlp-http"), &format!("/api/metrics?name={metric}"));
        assert_eq!(status, 200, "{protocol}: the metric query answers: {body}");
        assert!(body.contains(&format!("\"{metric}\"")), "{protocol}: the answer names the series: {body}");
        let summary = dash0.stop();
        let expected = (Some(u64::from(OTEL_RECORDS)), Some(u64::from(OTEL_RECORDS)), Some(1));
        assert_eq!(stored_counts(&summary), expected, "{protocol}: (logs, spans, metric points) stored: {summary}");
        for signal in EVENT_SIGNALS {
            assert_eq!(dash0_requests(&events, signal), (1, 0), "{protocol} {signal}: one request, stored");
        }
    }
}

#[test]
fn serve_otel_sdk_retries_a_503_with_retry_after_and_loses_nothing() {
    if !available("the OTel Python SDK", interop_support::otel_sdk()) {
        return;
    }
    for protocol in ["http", "grpc"] {
        let events = events_path(&format!("retry-{protocol}"));
        let flags = ["--fail", "503", "--retry-after", "5s", "--fail-for", "3s"];
        let Some(dash0) = dash0(&flags, &events) else { return };
        let result = run_otel(&dash0, protocol, &format!("interop-retry-{protocol}"));
        // Spans go first, inside the 3 s of failure: refused, retried, stored; logs and
        // metrics follow after the failure ended.
        assert_outcome(&result, true, protocol);
        let summary = dash0.stop();
        let expected = (Some(u64::from(OTEL_RECORDS)), Some(u64::from(OTEL_RECORDS)), Some(1));
        assert_eq!(stored_counts(&summary), expected, "{protocol}: nothing lost after the retry: {summary}");
        let (stored, refused) = dash0_requests(&events, "traces");
        assert_eq!(stored, 1, "{protocol}: the spans' retry was stored");
        if protocol == "http" {
            // The HTTP exporter waits the Retry-After's 5 s: past the 3 s of failure.
            assert_eq!(refused, 1, "http: one 503, then the retry after Retry-After was stored");
        } else {
            // SDK 1.45.2 reads RetryInfo only from `google.rpc.retryinfo-bin` metadata, not
            // from the status details obsim sends (FIDELITY.md "Interop clients"): it retries
            // on its own backoff (1 s, 2 s, …) until the failure ends.
            assert!(refused >= 1, "grpc: the spans were refused at least once");
        }
        assert_eq!(dash0_requests(&events, "logs"), (1, 0), "{protocol}: logs stored at once");
    }
}

#[test]
fn serve_otel_sdk_does_not_retry_a_400_and_nothing_is_stored() {
    if !available("the OTel Python SDK", interop_support::otel_sdk()) {
        return;
    }
    for protocol in ["http", "grpc"] {
        let events = events_path(&format!("refused-{protocol}"));
        let Some(dash0) = dash0(&["--fail", "400"], &events) else { return };
        let result = run_otel(&dash0, protocol, &format!("interop-refused-{protocol}"));
        assert_outcome(&result, false, protocol);
        let summary = dash0.stop();
        assert_eq!(stored_counts(&summary), (Some(0), Some(0), Some(0)), "{protocol}: nothing stored: {summary}");
        for signal in EVENT_SIGNALS {
            assert_eq!(dash0_requests(&events, signal), (0, 1), "{protocol} {signal}: one request seen, refused");
        }
    }
}

/// The fenced `python` and `js` blocks of README.md's "### Real clients", in order.
fn readme_examples() -> Vec<(String, String)> {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).expect("README.md");
    let start = readme.find("### Real clients").expect("README has a \"### Real clients\" section");
    let section = &readme[start..];
    let section = &section[..section[3..].find("\n## ").map_or(section.len(), |end| end + 3)];
    let mut examples = Vec::new();
    let mut lines = section.lines();
    while let Some(line) = lines.next() {
        let language = line.trim_start_matches("```");
        if line.starts_with("```") && (language == "python" || language == "js") {
            let code: Vec<&str> = lines.by_ref().take_while(|line| !line.starts_with("```")).collect();
            examples.push((language.to_owned(), code.join("\n") + "\n"));
        }
    }
    examples
}

/// Runs one README example, pointed at the test's ports, from tests/interop (where node
/// finds node_modules).
fn run_readme_example(index: usize, language: &str, code: &str, ports: &[(&str, String)]) -> ClientRun {
    let mut code = code.to_owned();
    for (from, to) in ports {
        code = code.replace(from, to);
    }
    let extension = if language == "js" { "js" } else { "py" };
    let file = interop_support::interop_dir().join(format!(".readme-{}-{index}.{extension}", std::process::id()));
    std::fs::write(&file, &code).expect("example written");
    let program = match language {
        "js" => std::path::PathBuf::from("node"),
        _ if code.contains("from fluent import") => std::path::PathBuf::from(DEBIAN_PYTHON),
        _ => interop_support::otel_python(),
    };
    let run = run_client(Command::new(program).arg(&file));
    let _ = std::fs::remove_file(&file);
    run
}

#[test]
fn readme_examples_run_against_obsim_serve() {
    let clients = [
        ("python3-fluent-logger", interop_support::debian_fluent_logger()),
        ("npm clients (node, tests/interop/node_modules)", interop_support::node_clients()),
        ("the OTel Python SDK", interop_support::otel_sdk()),
    ];
    if !clients.into_iter().all(|(what, check)| available(what, check)) {
        return;
    }
    let Some(railway) = Railway::start(None) else { return };
    let events = events_path("readme");
    let Some(dash0) = dash0(&[], &events) else { return };
    let examples = readme_examples();
    assert_eq!(examples.len(), 5, "README shows five client examples: {examples:?}");
    let forward_port = railway.forward().port().to_string();
    let ports = [
        ("port=24225", format!("port={forward_port}")),
        ("port: 24225", format!("port: {forward_port}")),
        ("127.0.0.1:4318", dash0.address("dash0", "otlp-http").to_string()),
        ("127.0.0.1:4317", dash0.address("dash0", "otlp-grpc").to_string()),
    ];
    for (index, (language, code)) in examples.iter().enumerate() {
        let run = run_readme_example(index, language, code, &ports);
        assert!(run.status.success(), "README example {index} ({language}) failed: {}\n{code}\n{run}", run.status);
    }
    for source in 1..=3u32 {
        let records = railway.records_of_source(source, 3);
        let mut seqs: Vec<u64> =
            records.iter().filter(|record| record.id.source.0 == source).map(|record| record.id.seq).collect();
        seqs.sort_unstable();
        assert_eq!(seqs, vec![0, 1, 2], "README example with obsim.source {source}: each record once in Redis");
    }
    let summary = dash0.stop();
    assert_eq!(stored_counts(&summary), (Some(1), Some(2), Some(1)), "the OTel examples' log, spans, point: {summary}");
}

#[test]
fn the_harness_reads_serves_listening_lines_and_stop_summary() {
    let ((part, protocol), address) =
        interop_support::parse_listening("obsim serve: aggregator forward listening on 127.0.0.1:24225")
            .expect("a listening line");
    assert_eq!((part.as_str(), protocol.as_str(), address.port()), ("aggregator", "forward", 24225));
    assert_eq!(interop_support::parse_listening("obsim serve: ready"), None);
    assert_eq!(interop_support::parse_listening("obsim serve: dash0 otlp-http listening on nowhere"), None);
    let summary = "obsim serve: stopped; stored 0 records in redis lists, 4 logs, 7 spans, 1 metric points in dash0";
    assert_eq!(stored_counts(summary), (Some(4), Some(7), Some(1)));
    assert_eq!(stored_counts("obsim serve: stopped; stored 3 records in redis lists"), (None, None, None));
}
