//! Integration tests of the Fluent Forward v1 codec through its public API: golden bytes for
//! every frame obsim writes (insta, under `fixtures/forward/`), hand-written frames of what
//! real clients send, property tests for round trips, split points, truncation and garbage,
//! and the shared-key handshake end to end.

use std::collections::BTreeMap;

use bytes::Bytes;
use obsim::proto::forward::{
    Check, ClientAuth, ClientFrame, Compression, EntryBatch, EventFrame, EventTime, ForwardError, Helo, Limits, Mode,
    Options, Ping, Pong, SHARED_KEY_MISMATCH, ServerAuth, ServerFrame, StreamDecoder, check_value, encode_ack,
    encode_compressed_packed_forward, encode_forward, encode_message, encode_packed_forward, parse_ack,
    parse_client_frame, parse_event_frame, parse_server_frame,
};
use proptest::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// A log line shaped like the app's: the fields the correlation checker reads.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct LogLine {
    message: String,
    level: String,
    trace_id: String,
    span_id: String,
    job_id: String,
    machine_id: String,
    worker_id: String,
}

fn log_line(index: u32) -> LogLine {
    LogLine {
        message: format!("step {index} done"),
        level: "info".to_owned(),
        trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".to_owned(),
        span_id: "00f067aa0ba902b7".to_owned(),
        job_id: "job-0f8fad5b-d9cb-469f-a165-70867728950e".to_owned(),
        machine_id: "comfyui-3".to_owned(),
        worker_id: "comfyui-3-worker-0".to_owned(),
    }
}

fn golden_time(index: u32) -> EventTime {
    EventTime { seconds: 1_764_340_000 + index, nanoseconds: 123_456_789 }
}

fn golden_batch() -> EntryBatch {
    let mut batch = EntryBatch::new();
    for index in 0..3 {
        batch.push(golden_time(index), &log_line(index)).unwrap();
    }
    batch
}

/// A chunk id as Fluent Bit makes it: base64 of 16 bytes (here fixed).
const GOLDEN_CHUNK: &str = "p8n9gmxTQVC8/nh2wlKKeQ==";

fn golden_options(size: u64) -> Options {
    Options { size: Some(size), chunk: Some(GOLDEN_CHUNK.to_owned()), compressed: None }
}

fn server_auth() -> ServerAuth {
    ServerAuth {
        hostname: "railway-aggregator".to_owned(),
        shared_key: "obsim-shared-key".to_owned(),
        users: Vec::new(),
    }
}

fn client_auth(shared_key: &str) -> ClientAuth {
    ClientAuth {
        hostname: "comfyui-3".to_owned(),
        shared_key: shared_key.to_owned(),
        username: String::new(),
        password: String::new(),
    }
}

/// Checks `bytes` against `fixtures/forward/<name>.snap.bin` (insta binary snapshot).
fn assert_golden(name: &str, bytes: Vec<u8>) {
    insta::with_settings!({
        snapshot_path => concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/forward"),
        prepend_module_to_snapshot => false,
        omit_expression => true,
    }, {
        insta::assert_binary_snapshot!(&format!("{name}.bin"), bytes);
    });
}

fn parse_events(bytes: &[u8]) -> EventFrame {
    parse_event_frame(&Bytes::copy_from_slice(bytes), &Limits::default()).unwrap()
}

fn records(frame: &EventFrame) -> Vec<LogLine> {
    frame.entries.iter().map(|entry| entry.deserialize_record().unwrap()).collect()
}

// ---------------------------------------------------------------------------------------
// Golden bytes of every frame obsim writes.
// ---------------------------------------------------------------------------------------

#[test]
fn golden_message() {
    let mut out = Vec::new();
    encode_message(&mut out, "app.log", golden_time(0), &log_line(0), &Options::default()).unwrap();
    let frame = parse_events(&out);
    assert_eq!((frame.mode, records(&frame)), (Mode::Message, vec![log_line(0)]));
    assert_golden("message", out);
}

#[test]
fn golden_forward() {
    let mut out = Vec::new();
    encode_forward(&mut out, "app.log", &golden_batch(), &golden_options(3)).unwrap();
    let frame = parse_events(&out);
    assert_eq!(frame.mode, Mode::Forward);
    assert_eq!(records(&frame), vec![log_line(0), log_line(1), log_line(2)]);
    assert_golden("forward", out);
}

#[test]
fn golden_packed_forward() {
    let mut out = Vec::new();
    encode_packed_forward(&mut out, "app.log", &golden_batch(), &golden_options(3)).unwrap();
    let frame = parse_events(&out);
    assert_eq!((frame.mode, frame.ack_chunk()), (Mode::PackedForward, Some(GOLDEN_CHUNK)));
    assert_eq!(records(&frame), vec![log_line(0), log_line(1), log_line(2)]);
    assert_golden("packed_forward", out);
}

#[test]
fn golden_compressed_packed_forward() {
    let mut out = Vec::new();
    encode_compressed_packed_forward(&mut out, "app.log", &golden_batch(), &golden_options(3)).unwrap();
    let frame = parse_events(&out);
    assert_eq!(frame.mode, Mode::CompressedPackedForward);
    assert_eq!(frame.options.compressed, Some(Compression::Gzip));
    assert_eq!(records(&frame), vec![log_line(0), log_line(1), log_line(2)]);
    assert_golden("compressed_packed_forward", out);
}

#[test]
fn golden_ack() {
    let mut out = Vec::new();
    encode_ack(&mut out, GOLDEN_CHUNK);
    assert_eq!(parse_ack(&out).unwrap().chunk, GOLDEN_CHUNK);
    assert_golden("ack", out);
}

/// The handshake with a fixed seed: HELO, PING, PONG (accepted) and PONG (refused).
fn golden_handshake(shared_key: &str) -> (Helo, Ping, Pong) {
    let mut rng = ChaCha8Rng::seed_from_u64(42);
    let helo = server_auth().helo(&mut rng, true);
    let ping = client_auth(shared_key).ping(&helo, &mut rng);
    let pong = server_auth().answer_ping(&helo, &ping);
    (helo, ping, pong)
}

#[test]
fn golden_handshake_frames() {
    let (helo, ping, pong) = golden_handshake("obsim-shared-key");
    let (_, _, refused) = golden_handshake("wrong-key");
    assert!(pong.auth_result);
    assert!(!refused.auth_result);
    for (name, bytes, decoded) in [
        ("helo", encoded(|out| helo.encode(out)), ServerFrame::Helo(helo.clone())),
        ("pong", encoded(|out| pong.encode(out)), ServerFrame::Pong(pong.clone())),
        ("pong_refused", encoded(|out| refused.encode(out)), ServerFrame::Pong(refused.clone())),
    ] {
        assert_eq!(parse_server_frame(&bytes).unwrap(), decoded);
        assert_golden(name, bytes);
    }
    let ping_bytes = encoded(|out| ping.encode(out));
    assert_eq!(parse_client_frame(&Bytes::from(ping_bytes.clone()), &Limits::default()), Ok(ClientFrame::Ping(ping)));
    assert_golden("ping", ping_bytes);
}

fn encoded(write: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut out = Vec::new();
    write(&mut out);
    out
}

// ---------------------------------------------------------------------------------------
// What real clients send that obsim's encoder does not.
// ---------------------------------------------------------------------------------------

fn real_client(name: &str) -> EventFrame {
    let path = format!("{}/fixtures/forward/real_clients/{name}", env!("CARGO_MANIFEST_DIR"));
    let bytes = std::fs::read(&path).unwrap_or_else(|error| panic!("{path}: {error}"));
    assert_eq!(check_value(&bytes, bytes.len()), Ok(Check::Complete { frame_bytes: bytes.len() }));
    parse_events(&bytes)
}

fn logs(frame: &EventFrame) -> Vec<String> {
    frame
        .entries
        .iter()
        .map(|entry| entry.deserialize_record::<BTreeMap<String, String>>().unwrap().remove("log").unwrap())
        .collect()
}

fn times(frame: &EventFrame) -> Vec<(u32, u32)> {
    frame.entries.iter().map(|entry| (entry.time.seconds, entry.time.nanoseconds)).collect()
}

#[test]
fn real_client_ext8_event_time() {
    let frame = real_client("message_ext8_event_time.bin");
    assert_eq!((frame.mode, frame.tag.as_str()), (Mode::Message, "app.log"));
    assert_eq!(times(&frame), vec![(1_700_000_000, 500)]);
    assert_eq!(logs(&frame), vec!["hello"]);
    assert_eq!(frame.options, Options::default());
}

#[test]
fn real_client_integer_time() {
    let frame = real_client("forward_integer_time.bin");
    assert_eq!(frame.mode, Mode::Forward);
    assert_eq!(times(&frame), vec![(1_700_000_000, 0), (1_700_000_001, 0)]);
    assert_eq!(logs(&frame), vec!["a", "b"]);
    assert_eq!(frame.options.size, Some(2));
}

#[test]
fn real_client_packed_forward_as_str() {
    let frame = real_client("packed_forward_str.bin");
    assert_eq!(frame.mode, Mode::PackedForward);
    assert_eq!(times(&frame), vec![(1_700_000_000, 1), (1_700_000_000, 2)]);
    assert_eq!(logs(&frame), vec!["x", "y"]);
    assert_eq!(frame.options, Options { size: Some(2), chunk: Some(GOLDEN_CHUNK.to_owned()), compressed: None });
}

#[test]
fn real_client_message_with_empty_options() {
    let frame = real_client("message_empty_options.bin");
    assert_eq!(frame.mode, Mode::Message);
    assert_eq!(times(&frame), vec![(1_700_000_000, 0)]);
    assert_eq!(logs(&frame), vec!["z"]);
    assert_eq!(frame.options, Options::default());
}

#[test]
fn real_client_two_gzip_members() {
    let frame = real_client("compressed_two_gzip_members.bin");
    assert_eq!(frame.mode, Mode::CompressedPackedForward);
    assert_eq!(times(&frame), vec![(1_700_000_000, 0), (1_700_000_001, 1), (1_700_000_002, 2)]);
    assert_eq!(logs(&frame), vec!["m0", "m1", "m2"]);
    assert_eq!(frame.options.size, Some(3));
}

// ---------------------------------------------------------------------------------------
// Handshake end to end through the streaming decoder.
// ---------------------------------------------------------------------------------------

/// Runs HELO → PING → PONG over two decoders; returns the client's verdict.
fn run_handshake(server: &ServerAuth, client: &ClientAuth, tamper_pong: bool) -> Result<(), ForwardError> {
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let mut to_client = StreamDecoder::new(Limits::default());
    let mut to_server = StreamDecoder::new(Limits::default());
    let helo = server.helo(&mut rng, false);
    to_client.feed(&encoded(|out| helo.encode(out)))?;
    let Some(ServerFrame::Helo(received_helo)) = to_client.next_server_frame()? else { panic!("expected HELO") };
    let ping = client.ping(&received_helo, &mut rng);
    to_server.feed(&encoded(|out| ping.encode(out)))?;
    let Some(ClientFrame::Ping(received_ping)) = to_server.next_client_frame()? else { panic!("expected PING") };
    let mut pong = server.answer_ping(&helo, &received_ping);
    if tamper_pong {
        pong.shared_key_hexdigest = pong.shared_key_hexdigest.chars().rev().collect();
    }
    to_client.feed(&encoded(|out| pong.encode(out)))?;
    let Some(ServerFrame::Pong(received_pong)) = to_client.next_server_frame()? else { panic!("expected PONG") };
    if !pong.auth_result {
        assert_eq!(received_pong.reason, SHARED_KEY_MISMATCH, "the server says why");
    }
    client.verify_pong(&received_helo, &ping, &received_pong)
}

#[test]
fn handshake_right_key_authenticates_both_ways() {
    assert_eq!(run_handshake(&server_auth(), &client_auth("obsim-shared-key"), false), Ok(()));
}

#[test]
fn handshake_wrong_key_is_rejected_with_a_reason() {
    let verdict = run_handshake(&server_auth(), &client_auth("not-the-key"), false);
    assert_eq!(verdict, Err(ForwardError::HandshakeRejected { reason: SHARED_KEY_MISMATCH.to_owned() }));
    assert_eq!(verdict.unwrap_err().to_string(), "handshake rejected: shared_key mismatch");
}

#[test]
fn handshake_tampered_pong_is_rejected_by_the_client() {
    let verdict = run_handshake(&server_auth(), &client_auth("obsim-shared-key"), true);
    assert_eq!(verdict, Err(ForwardError::HandshakeRejected { reason: SHARED_KEY_MISMATCH.to_owned() }));
}

// ---------------------------------------------------------------------------------------
// Limits: refused before allocation.
// ---------------------------------------------------------------------------------------

#[test]
fn four_gib_bin_header_is_refused_immediately() {
    // [tag, bin32 declaring 4 GiB - 1, ...] with a 3-byte body.
    let mut wire = vec![0x93, 0xa3, b'a', b'p', b'p', 0xc6, 0xff, 0xff, 0xff, 0xff];
    wire.extend_from_slice(&[1, 2, 3]);
    let mut decoder = StreamDecoder::new(Limits::default());
    decoder.feed(&wire).unwrap();
    let error = decoder.next_frame().unwrap_err();
    assert!(matches!(error, ForwardError::FrameTooLarge { frame_bytes_limit: 8_388_608, .. }), "{error}");
    assert_eq!(error.to_string(), "frame of 4294967306 bytes exceeds frame_bytes_limit 8388608");
    assert_eq!(decoder.buffered_bytes(), wire.len(), "nothing beyond what arrived was buffered");
}

#[test]
fn oversized_real_frame_is_refused_and_one_at_the_limit_passes() {
    let mut batch = EntryBatch::new();
    for index in 0..50 {
        batch.push(golden_time(index), &log_line(index)).unwrap();
    }
    let mut out = Vec::new();
    encode_packed_forward(&mut out, "app.log", &batch, &Options::default()).unwrap();
    let exact = Limits::with_frame_bytes_limit(out.len());
    assert_eq!(check_value(&out, exact.frame_bytes_limit), Ok(Check::Complete { frame_bytes: out.len() }));
    let below = out.len() - 1;
    // Refused from the first 20 bytes: the bin header already declares too much.
    assert!(matches!(check_value(&out[..20], below), Err(ForwardError::FrameTooLarge { .. })));
}

// ---------------------------------------------------------------------------------------
// Properties.
// ---------------------------------------------------------------------------------------

/// An arbitrary record: string fields, a nested map of integers, some bytes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct AnyRecord {
    fields: BTreeMap<String, String>,
    counters: BTreeMap<String, i64>,
    #[serde(with = "serde_bytes")]
    blob: Vec<u8>,
}

fn any_record() -> impl Strategy<Value = AnyRecord> {
    (
        prop::collection::btree_map("[a-z_]{1,12}", ".{0,40}", 0..5),
        prop::collection::btree_map("[a-z]{1,8}", any::<i64>(), 0..4),
        prop::collection::vec(any::<u8>(), 0..64),
    )
        .prop_map(|(fields, counters, blob)| AnyRecord { fields, counters, blob })
}

fn any_time() -> impl Strategy<Value = EventTime> {
    (any::<u32>(), 0..1_000_000_000u32).prop_map(|(seconds, nanoseconds)| EventTime { seconds, nanoseconds })
}

/// What a test frame should decode to.
#[derive(Clone, Debug)]
struct FrameSpec {
    mode: Mode,
    tag: String,
    entries: Vec<(EventTime, AnyRecord)>,
    chunk: Option<String>,
    with_size: bool,
}

fn any_mode() -> impl Strategy<Value = Mode> {
    prop_oneof![
        Just(Mode::Message),
        Just(Mode::Forward),
        Just(Mode::PackedForward),
        Just(Mode::CompressedPackedForward)
    ]
}

fn any_frame() -> impl Strategy<Value = FrameSpec> {
    (
        any_mode(),
        "[a-z][a-z0-9._]{0,30}",
        prop::collection::vec((any_time(), any_record()), 1..12),
        prop::option::of("[A-Za-z0-9+/]{22}=="),
        any::<bool>(),
    )
        .prop_map(|(mode, tag, mut entries, chunk, with_size)| {
            if mode == Mode::Message {
                entries.truncate(1);
            }
            FrameSpec { mode, tag, entries, chunk, with_size }
        })
}

impl FrameSpec {
    fn options(&self) -> Options {
        Options {
            size: self.with_size.then_some(self.entries.len() as u64),
            chunk: self.chunk.clone(),
            compressed: None,
        }
    }

    fn encode(&self, out: &mut Vec<u8>) {
        let options = self.options();
        if self.mode == Mode::Message {
            let (time, record) = &self.entries[0];
            encode_message(out, &self.tag, *time, record, &options).unwrap();
            return;
        }
        let mut batch = EntryBatch::new();
        for (time, record) in &self.entries {
            batch.push(*time, record).unwrap();
        }
        match self.mode {
            Mode::Forward => encode_forward(out, &self.tag, &batch, &options),
            Mode::PackedForward => encode_packed_forward(out, &self.tag, &batch, &options),
            _ => encode_compressed_packed_forward(out, &self.tag, &batch, &options),
        }
        .unwrap();
    }

    fn assert_decoded(&self, frame: &EventFrame) {
        assert_eq!(frame.mode, self.mode);
        assert_eq!(frame.tag, self.tag);
        let expected_compressed = (self.mode == Mode::CompressedPackedForward).then_some(Compression::Gzip);
        assert_eq!(frame.options, Options { compressed: expected_compressed, ..self.options() });
        let decoded: Vec<(EventTime, AnyRecord)> =
            frame.entries.iter().map(|entry| (entry.time, entry.deserialize_record().unwrap())).collect();
        assert_eq!(decoded, self.entries);
    }
}

/// Feeds `wire` in the given pieces and drains every frame after each piece.
fn decode_in_pieces(wire: &[u8], cuts: &[usize]) -> Vec<Bytes> {
    let mut decoder = StreamDecoder::new(Limits::default());
    let mut frames = Vec::new();
    let mut start = 0;
    for &cut in cuts.iter().chain(std::iter::once(&wire.len())) {
        decoder.feed(&wire[start..cut]).unwrap();
        start = cut;
        while let Some(frame) = decoder.next_frame().unwrap() {
            frames.push(frame);
        }
    }
    assert_eq!(decoder.buffered_bytes(), 0);
    frames
}

/// Drains a decoder fed arbitrary bytes, in both roles; must never panic.
fn drain_arbitrary(bytes: &[u8], frame_bytes_limit: usize) {
    for server_side in [true, false] {
        let mut decoder = StreamDecoder::new(Limits::with_frame_bytes_limit(frame_bytes_limit));
        decoder.feed(bytes).unwrap();
        // Bounded: every Ok(Some) consumes at least one byte.
        for _ in 0..=bytes.len() {
            let next = if server_side {
                decoder.next_client_frame().map(|frame| frame.is_some())
            } else {
                decoder.next_server_frame().map(|frame| frame.is_some())
            };
            match next {
                Ok(true) => continue,
                Ok(false) | Err(ForwardError::DecoderPoisoned) => break,
                Err(_) => continue,
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn encode_then_decode_round_trips(spec in any_frame()) {
        let mut out = Vec::new();
        spec.encode(&mut out);
        let frame = parse_event_frame(&Bytes::from(out), &Limits::default()).unwrap();
        spec.assert_decoded(&frame);
    }

    #[test]
    fn random_chunk_boundaries_give_the_same_frames(
        specs in prop::collection::vec(any_frame(), 1..5),
        cut_fractions in prop::collection::vec(0.0..1.0f64, 0..20),
    ) {
        let mut wire = Vec::new();
        for spec in &specs {
            spec.encode(&mut wire);
        }
        let whole = decode_in_pieces(&wire, &[]);
        prop_assert_eq!(whole.len(), specs.len());
        let mut cuts: Vec<usize> = cut_fractions.iter().map(|f| (f * wire.len() as f64) as usize).collect();
        cuts.sort_unstable();
        prop_assert_eq!(decode_in_pieces(&wire, &cuts), whole.clone());
        for (frame, spec) in whole.iter().zip(&specs) {
            match parse_client_frame(frame, &Limits::default()).unwrap() {
                ClientFrame::Events(events) => spec.assert_decoded(&events),
                ClientFrame::Ping(_) => prop_assert!(false, "events decoded as PING"),
            }
        }
    }

    #[test]
    fn every_single_split_point_gives_the_same_frames(specs in prop::collection::vec(any_frame(), 1..3)) {
        let mut wire = Vec::new();
        for spec in &specs {
            spec.encode(&mut wire);
        }
        let whole = decode_in_pieces(&wire, &[]);
        for cut in 0..=wire.len() {
            prop_assert_eq!(decode_in_pieces(&wire, &[cut]), whole.clone(), "split at {}", cut);
        }
    }

    #[test]
    fn every_truncation_is_incomplete_or_an_error(spec in any_frame()) {
        let mut out = Vec::new();
        spec.encode(&mut out);
        for cut in 0..out.len() {
            let prefix = &out[..cut];
            prop_assert_eq!(check_value(prefix, 1 << 20), Ok(Check::Incomplete));
            prop_assert!(parse_event_frame(&Bytes::copy_from_slice(prefix), &Limits::default()).is_err());
            prop_assert!(parse_client_frame(&Bytes::copy_from_slice(prefix), &Limits::default()).is_err());
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        drain_arbitrary(&bytes, 256);
        let frame = Bytes::from(bytes.clone());
        let _ = parse_event_frame(&frame, &Limits::default());
        let _ = parse_server_frame(&bytes);
        let _ = parse_ack(&bytes);
        let _ = Helo::parse(&bytes);
        let _ = Ping::parse(&bytes);
        let _ = Pong::parse(&bytes);
    }

    #[test]
    fn mutated_frames_never_panic(spec in any_frame(), flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8)) {
        let mut out = Vec::new();
        spec.encode(&mut out);
        for (index, byte) in flips {
            let at = index.index(out.len());
            out[at] = byte;
        }
        drain_arbitrary(&out, 1 << 16);
        let _ = parse_event_frame(&Bytes::from(out), &Limits::default());
    }

    #[test]
    fn declared_size_over_the_limit_is_refused_before_the_body(
        declared in (1u64 << 20)..=u64::from(u32::MAX),
        body in prop::collection::vec(any::<u8>(), 0..16),
        header in prop_oneof![Just(0xc6u8), Just(0xdb), Just(0xdd), Just(0xdf), Just(0xc9)],
    ) {
        // bin32 / str32 / array32 / map32 / ext32 declaring `declared` with a tiny body.
        let mut wire = vec![0x92, 0xa1, b't', header];
        wire.extend_from_slice(&(declared as u32).to_be_bytes());
        wire.extend_from_slice(&body);
        let limits = Limits::with_frame_bytes_limit(1 << 20);
        let mut decoder = StreamDecoder::new(limits);
        decoder.feed(&wire).unwrap();
        let refused = matches!(decoder.next_frame(), Err(ForwardError::FrameTooLarge { frame_bytes_limit, .. }) if frame_bytes_limit == 1 << 20);
        prop_assert!(refused);
    }

    #[test]
    fn handshake_succeeds_only_with_the_same_key(seed in any::<u64>(), server_key in "[a-z]{1,8}", client_key in "[a-z]{1,8}") {
        let server = ServerAuth { shared_key: server_key.clone(), ..server_auth() };
        let client = client_auth(&client_key);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let helo = server.helo(&mut rng, true);
        let ping = client.ping(&helo, &mut rng);
        let pong = server.answer_ping(&helo, &ping);
        prop_assert_eq!(pong.auth_result, server_key == client_key);
        prop_assert_eq!(client.verify_pong(&helo, &ping, &pong).is_ok(), server_key == client_key);
    }
}
