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
