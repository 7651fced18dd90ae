//! The aggregator (Fluentd) on its own: in_http from dev hosts, overflow with
//! drop_oldest_chunk, Redis answering OOM until the retries run out, and the exact Redis
//! command it sends (a strict redis-test script and a golden byte fixture).

mod aggregator_support;

use std::time::Duration;

use aggregator_support::dev::{add_dev_host, railway};
use aggregator_support::{events, in_flight, lost, outcomes};
use obsim::ledger::Ledger;
use obsim::parts::aggregator::redis_out::{WriteError, push_chunk};
use obsim::parts::aggregator::{AggregatorConfig, OverflowAction};
use obsim::parts::log_chunk::LogChunk;
use obsim::record::{LogRecord, RecordId, Severity};
use obsim::vocab::{EventKind, LossCause, Part};
use obsim::world::WorldBuilder;
use redis_test::{MockCmd, MockRedisConnection};

#[test]
fn in_http_accepts_a_json_batch_and_forwards_it_to_redis() {
    let mut world = WorldBuilder::new(11).duration(Duration::from_secs(30)).build();
    let ledger = Ledger::new();
    let config = AggregatorConfig { routes: vec![("dev.".into(), "logs:dev".into())], ..AggregatorConfig::default() };
    let redis = railway(&mut world, &ledger, config);
    let replies = add_dev_host(&mut world, &ledger, 3, 40, Vec::new());
    world.run_for(Duration::from_secs(10)).unwrap();

    assert_eq!(*replies.lock().unwrap(), vec![(200, String::new()); 3]);
    let chunks = redis.chunks();
    assert!(!chunks.is_empty());
    assert!(
        chunks
            .iter()
            .all(|(key, chunk)| key == "logs:dev" && chunk.tag == "dev.app" && chunk.environment == "production")
    );
    assert_eq!(redis.pushed_ids().len(), 120);
    assert_eq!(outcomes(&ledger), vec![(in_flight(Part::Redis, "railway-redis"), 120)]);
}

#[test]
fn in_http_answers_400_naming_what_is_wrong() {
    let mut world = WorldBuilder::new(12).duration(Duration::from_secs(30)).build();
    let ledger = Ledger::new();
    let redis = railway(&mut world, &ledger, AggregatorConfig::default());
    let raw = vec![
        ("application/json".to_string(), b"[{\"body\": \"unterminated".to_vec()),
        ("application/json".to_string(), b"[{\"body\": \"no ids\"}]".to_vec()),
        ("application/json".to_string(), b"42".to_vec()),
        ("text/plain".to_string(), b"hello".to_vec()),
    ];
    let replies = add_dev_host(&mut world, &ledger, 0, 0, raw);
    world.run_for(Duration::from_secs(5)).unwrap();

    let replies = replies.lock().unwrap().clone();
    assert_eq!(replies.len(), 4);
    assert!(replies.iter().all(|(status, _)| *status == 400), "{replies:?}");
    assert!(replies[0].1.starts_with("malformed JSON body: EOF while parsing a string"), "{}", replies[0].1);
    assert!(replies[1].1.starts_with("record 0: missing field `time_unix_nano`"), "{}", replies[1].1);
    assert_eq!(replies[2].1, "JSON body must be a record object or an array of them, got a number");
    assert_eq!(replies[3].1, "Content-Type must be application/json, got \"text/plain\"");
    assert!(redis.pushed.lock().unwrap().is_empty());
}

#[test]
fn drop_oldest_chunk_makes_room_and_records_aggregator_overflow() {
    let mut world = WorldBuilder::new(13).duration(Duration::from_secs(60)).build();
    let ledger = Ledger::new();
    // Chunks larger than one POST (about 14 kB): a chunk never passes chunk_limit_size, so
    // with smaller chunks one dropped chunk would not always make room for the next POST
    // and Fluentd's `write_guard` would refuse it (one drop per attempt).
    let config = AggregatorConfig {
        chunk_bytes_limit: 20_000,
        total_bytes_limit: 60_000,
        overflow_action: OverflowAction::DropOldestChunk,
        retry_forever: true,
        ..AggregatorConfig::default()
    };
    let redis = railway(&mut world, &ledger, config);
    redis.oom.store(true, std::sync::atomic::Ordering::SeqCst);
    let replies = add_dev_host(&mut world, &ledger, 10, 40, Vec::new());
    world.run_for(Duration::from_secs(20)).unwrap();

    assert_eq!(replies.lock().unwrap().iter().filter(|(status, _)| *status == 200).count(), 10, "every POST is taken");
    let drops = events(world.events(), EventKind::AggregatorDrop);
    assert!(!drops.is_empty() && drops.iter().all(|(_, detail)| detail.ends_with("cause aggregator_overflow")));
    let dropped: u64 = drops
        .iter()
        .map(|(_, detail)| {
            detail.split("records ").nth(1).unwrap().split_whitespace().next().unwrap().parse::<u64>().unwrap()
        })
        .sum();
    assert_eq!(
        outcomes(&ledger),
        vec![
            (in_flight(Part::Aggregator, "railway-aggregator"), 400 - dropped),
            (lost(LossCause::AggregatorOverflow, Part::Aggregator, "railway-aggregator"), dropped),
        ]
    );
    // Oldest first, as Fluentd's `queue.shift`: a chunk waiting for its retry is queued and
    // may go; only one being written at that moment is spared.
    let seqs: Vec<u64> =
        drops.iter().map(|(_, detail)| detail.split_whitespace().nth(1).unwrap().parse().unwrap()).collect();
    assert!(seqs.windows(2).all(|pair| pair[0] < pair[1]), "{seqs:?}");
}

#[test]
fn redis_oom_is_retried_with_backoff_then_dropped_as_redis_oom() {
    let mut world = WorldBuilder::new(14).duration(Duration::from_secs(60)).build();
    let ledger = Ledger::new();
    let config = AggregatorConfig { retry_max_times: Some(3), retry_randomize: false, ..AggregatorConfig::default() };
    let redis = railway(&mut world, &ledger, config);
    redis.oom.store(true, std::sync::atomic::Ordering::SeqCst);
    add_dev_host(&mut world, &ledger, 1, 25, Vec::new());
    world.run_for(Duration::from_secs(30)).unwrap();

    let retries = events(world.events(), EventKind::AggregatorRetry);
    let waits: Vec<String> =
        retries.iter().map(|(_, detail)| detail.rsplit("next in ").next().unwrap().to_string()).collect();
    assert_eq!(waits, vec!["1000ms", "2000ms", "4000ms"], "retry_wait 1 s doubling: {retries:?}");
    assert!(retries[0].1.contains("OOM") && retries[0].1.contains("command not allowed"), "{retries:?}");
    assert_eq!(outcomes(&ledger), vec![(lost(LossCause::RedisOom, Part::Aggregator, "railway-aggregator"), 25)]);
}

fn golden_chunk() -> LogChunk {
    let record = LogRecord {
        time_unix_nano: 1_767_225_600_000_000_000,
        observed_time_unix_nano: 1_767_225_600_000_000_000,
        severity: Severity::Info,
        body: "job started".into(),
        trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".parse().unwrap(),
        span_id: "00f067aa0ba902b7".parse().unwrap(),
        job_id: "job-0b6f8e2c-1d2a-4b7e-9c3f-5a6b7c8d9e0f".parse().unwrap(),
        machine_id: None,
        worker_id: None,
        id: RecordId::new(obsim::record::SourceId(3), 7),
        attributes: Default::default(),
    };
    LogChunk {
        tag: "machine.comfyui".into(),
        environment: "production".into(),
        region: "us-west1".into(),
        records: vec![record],
    }
}

#[tokio::test]
async fn the_output_sends_exactly_rpush_key_chunk() {
    let value = golden_chunk().encode();
    let mut script = MockRedisConnection::new(vec![
        MockCmd::new(redis::cmd("RPUSH").arg("logs:buffer").arg(&value), Ok(1i64)),
        MockCmd::new(
            redis::cmd("RPUSH").arg("logs:buffer").arg(&value),
            Err::<i64, _>(redis::RedisError::from((redis::ErrorKind::Io, "broken pipe"))),
        ),
    ]);
    assert_eq!(push_chunk(&mut script, "logs:buffer", &value, Duration::from_secs(5)).await, Ok(1));
    let error = push_chunk(&mut script, "logs:buffer", &value, Duration::from_secs(5)).await.unwrap_err();
    assert!(matches!(error, WriteError::Connection(_)), "{error:?}");
    assert_eq!(error.give_up_cause(), LossCause::AggregatorRetryExpired);
    // A different key is not what the script expects: the golden sequence is strict.
    let mut strict =
        MockRedisConnection::new(vec![MockCmd::new(redis::cmd("RPUSH").arg("logs:buffer").arg(&value), Ok(1i64))]);
    assert!(push_chunk(&mut strict, "logs:other", &value, Duration::from_secs(5)).await.is_err());
}

/// The RESP bytes of the output's one command for a fixed chunk, pinned in
/// `fixtures/aggregator/rpush_chunk.resp`. Regenerate with `OBSIM_BLESS=1` and say why.
#[test]
fn the_rpush_bytes_are_pinned() {
    let value = golden_chunk().encode();
    let packed = redis::cmd("RPUSH").arg("logs:buffer").arg(&value).get_packed_command();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/aggregator/rpush_chunk.resp");
    if std::env::var_os("OBSIM_BLESS").is_some() {
        std::fs::write(path, &packed).unwrap();
    }
    let golden = std::fs::read(path).expect("fixture exists (OBSIM_BLESS=1 writes it)");
    assert_eq!(packed, golden);
    assert!(packed.starts_with(b"*3\r\n$5\r\nRPUSH\r\n$11\r\nlogs:buffer\r\n$"));
    assert_eq!(LogChunk::decode(&value).unwrap(), golden_chunk());
}

/// What a raw Forward client saw: every frame the aggregator sent, and whether the
/// connection was then closed by the aggregator.
#[derive(Debug, Default)]
struct RawReplies {
    frames: Vec<obsim::proto::forward::ServerFrame>,
    closed: bool,
}

/// A client host ("fluent-client-1") that connects to in_forward, writes `bytes` once it
/// has read `wait_frames` frames (HELO first when a shared key is set), then reads until the
/// aggregator closes or 5 s pass.
fn raw_forward_client(
    world: &mut obsim::world::World<'_>,
    bytes: Vec<u8>,
    wait_frames: usize,
) -> std::sync::Arc<std::sync::Mutex<RawReplies>> {
    use obsim::proto::forward::{Limits, StreamDecoder};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let replies: std::sync::Arc<std::sync::Mutex<RawReplies>> = Default::default();
    let kept = std::sync::Arc::clone(&replies);
    world.host("fluent-client-1", move |_| {
        let (bytes, replies) = (bytes.clone(), std::sync::Arc::clone(&kept));
        async move {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let mut stream = obsim::world::TcpStream::connect((obsim::vocab::hosts::AGGREGATOR, 24225)).await?;
            let mut decoder = StreamDecoder::new(Limits::default());
            let mut buffer = vec![0u8; 4096];
            let mut written = false;
            let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
            // Bounded by the deadline: each pass reads once or writes once.
            while tokio::time::Instant::now() < deadline {
                if !written && replies.lock().unwrap().frames.len() >= wait_frames {
                    stream.write_all(&bytes).await?;
                    written = true;
                    continue;
                }
                match tokio::time::timeout_at(deadline, stream.read(&mut buffer)).await {
                    Ok(Ok(0)) | Ok(Err(_)) => {
                        replies.lock().unwrap().closed = true;
                        break;
                    }
                    Ok(Ok(count)) => {
                        decoder.feed(&buffer[..count])?;
                        while let Some(frame) = decoder.next_server_frame()? {
                            replies.lock().unwrap().frames.push(frame);
                        }
                    }
                    Err(_) => break,
                }
            }
            Ok(())
        }
    });
    replies
}

/// An obsim log record as an app would emit it (the caller emits it in the ledger).
fn ledger_record(seq_source: obsim::record::SourceId, seq: u64) -> LogRecord {
    use obsim::record::{JobId, SpanId, TraceId};
    let mut rng = <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(seq);
    LogRecord {
        time_unix_nano: 1_767_225_600_000_000_000,
        observed_time_unix_nano: 1_767_225_600_000_000_000,
        severity: Severity::Info,
        body: format!("record {seq}"),
        trace_id: TraceId::random(&mut rng),
        span_id: SpanId::random(&mut rng),
        job_id: JobId::random(&mut rng),
        machine_id: None,
        worker_id: None,
        id: RecordId::new(seq_source, seq),
        attributes: Default::default(),
    }
}

/// Appends a msgpack float64.
fn write_f64(out: &mut Vec<u8>, value: f64) {
    out.push(0xcb);
    out.extend_from_slice(&value.to_bits().to_be_bytes());
}

#[test]
fn a_float_time_is_skipped_per_event_with_its_cause_and_the_frame_is_still_acked() {
    let mut world = WorldBuilder::new(21).duration(Duration::from_secs(30)).build();
    let ledger = Ledger::new();
    let source = ledger.register_source("fluent-client-1/app", obsim::vocab::Signal::Log);
    assert_eq!(ledger.emit(source, 3, 0), 0);
    let records: Vec<LogRecord> = (0..3).map(|seq| ledger_record(source, seq)).collect();
    // A Forward frame: [tag, [[time, record] × 3], {"chunk": "c1"}], the middle event's time
    // a float64 millisecond count (npm fluent-logger with `milliseconds: true`).
    let mut frame = vec![0x93, 0xa3, b'a', b'p', b'p', 0x93];
    for (index, record) in records.iter().enumerate() {
        frame.push(0x92);
        if index == 1 {
            write_f64(&mut frame, 1_767_225_600_123.0);
        } else {
            obsim::proto::forward::EventTime { seconds: 1_767_225_600, nanoseconds: 0 }.encode(&mut frame);
        }
        frame.extend(rmp_serde::to_vec_named(record).unwrap());
    }
    frame.extend([0x81, 0xa5, b'c', b'h', b'u', b'n', b'k', 0xa2, b'c', b'1']);
    let redis = railway(&mut world, &ledger, AggregatorConfig::default());
    let replies = raw_forward_client(&mut world, frame, 0);
    world.run_for(Duration::from_secs(10)).unwrap();

    let replies = replies.lock().unwrap();
    assert!(
        matches!(replies.frames.as_slice(), [obsim::proto::forward::ServerFrame::Ack(ack)] if ack.chunk == "c1"),
        "the frame is acked although one event was skipped: {replies:?}"
    );
    assert_eq!(redis.pushed_ids(), vec![records[0].id, records[2].id], "the valid events are stored");
    let outcomes = outcomes(&ledger);
    assert!(
        outcomes.contains(&(lost(LossCause::AggregatorInvalidEvent, Part::Aggregator, "railway-aggregator"), 1)),
        "the skipped event is lost with its cause, not silently: {outcomes:?}"
    );
    let skipped = events(world.events(), EventKind::AggregatorInvalidEvent);
    assert_eq!(skipped.len(), 1, "{skipped:?}");
    assert!(skipped[0].1.contains("1 events with a float time skipped"), "{skipped:?}");
}

#[test]
fn with_skip_invalid_event_off_a_millisecond_time_is_stored_and_recorded_as_odd() {
    let mut world = WorldBuilder::new(22).duration(Duration::from_secs(30)).build();
    let ledger = Ledger::new();
    // A Message frame from a logging library: [tag, float ms, {fields}, {"chunk": "m1"}].
    let mut frame = vec![0x94, 0xa3, b'a', b'p', b'p'];
    write_f64(&mut frame, 1_767_225_600_123.0);
    frame.extend(
        rmp_serde::to_vec_named(&serde_json::json!({
            "message": "hello from node",
            "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
            "span_id": "00f067aa0ba902b7",
            "job_id": "job-0f8fad5b-d9cb-469f-a165-70867728950e",
            "attempt": 2,
        }))
        .unwrap(),
    );
    frame.extend([0x81, 0xa5, b'c', b'h', b'u', b'n', b'k', 0xa2, b'm', b'1']);
    let config = AggregatorConfig { skip_invalid_event: false, ..AggregatorConfig::default() };
    let redis = railway(&mut world, &ledger, config);
    let replies = raw_forward_client(&mut world, frame, 0);
    world.run_for(Duration::from_secs(10)).unwrap();

    assert!(matches!(replies.lock().unwrap().frames.as_slice(), [obsim::proto::forward::ServerFrame::Ack(_)]));
    let chunks = redis.chunks();
    let stored: Vec<&LogRecord> = chunks.iter().flat_map(|(_, chunk)| chunk.records.iter()).collect();
    assert_eq!(stored.len(), 1, "the event is stored, as Fluentd before 1.19 stored it: {chunks:?}");
    assert_eq!(stored[0].body, "hello from node");
    assert_eq!(stored[0].time_unix_nano, u64::from(u32::MAX) * 1_000_000_000, "a time past 2106 is kept as 2106");
    assert_eq!(stored[0].attributes.get("attempt"), Some(&obsim::record::AttrValue::Int(2)));
    let odd = events(world.events(), EventKind::AggregatorOddTime);
    assert!(odd.iter().any(|(_, detail)| detail.contains("float time outside 1970..2106")), "{odd:?}");
    // The record is in the ledger under the client's source, held by Redis now.
    assert_eq!(outcomes(&ledger), vec![(in_flight(Part::Redis, "railway-redis"), 1)]);
}

#[test]
fn a_client_that_skips_the_handshake_gets_a_refusing_pong_not_a_silent_close() {
    use obsim::proto::forward::ServerFrame;
    let mut world = WorldBuilder::new(23).duration(Duration::from_secs(30)).build();
    let ledger = Ledger::new();
    let config = AggregatorConfig { shared_key: Some("s3cret".into()), ..AggregatorConfig::default() };
    let redis = railway(&mut world, &ledger, config);
    // After HELO, a Message frame where the PING should be.
    let frame = vec![0x93, 0xa3, b'a', b'p', b'p', 0x01, 0x81, 0xa1, b'k', 0xa1, b'v'];
    let replies = raw_forward_client(&mut world, frame, 1);
    world.run_for(Duration::from_secs(10)).unwrap();

    let replies = replies.lock().unwrap();
    match replies.frames.as_slice() {
        [ServerFrame::Helo(_), ServerFrame::Pong(pong)] => {
            assert!(!pong.auth_result);
            assert_eq!(pong.reason, "invalid ping message");
        }
        other => panic!("expected HELO then a refusing PONG, got {other:?}"),
    }
    assert!(replies.closed, "the aggregator closes the connection after the PONG");
    assert!(redis.pushed_ids().is_empty());
    let rejected = events(world.events(), EventKind::AggregatorAuthRejected);
    assert!(rejected.iter().any(|(_, detail)| detail.contains("invalid ping message (events before the handshake)")));
}
