//! The shipper drains the Redis buffer into Dash0 with the reliable-queue pattern: values
//! leave the processing list only after a 2xx, retries honour Retry-After, refusals are
//! losses with a cause, a crash re-queues what was in flight, and chunks are batched.

#[path = "shipper_fakes.rs"]
mod fakes;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use fakes::{FakeDash0, FakeRedis};
use obsim::ledger::{Custodian, Ledger, Outcome};
use obsim::parts::PartCtx;
use obsim::parts::log_chunk::LogChunk;
use obsim::parts::shipper::{self, ExportOutcome, Exporter, Shipper, ShipperConfig, Verdict};
use obsim::record::{
    Attributes, JobId, LogRecord, MachineId, MachineType, RecordId, Severity, SpanId, TraceId, WorkerId,
};
use obsim::vocab::hosts;
use obsim::vocab::{EventKind, LossCause, Part, Signal};
use obsim::world::WorldBuilder;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use redis_test::{MockCmd, MockRedisConnection};

const BUFFER: &str = "logs:buffer";
const PROCESSING: &str = "logs:processing";

/// Emits `records` log records of a fresh source into the ledger and packs them into
/// chunks of `per_chunk`, alternating two machines, as the aggregator would.
fn chunks(ledger: &Ledger, name: &str, records: u64, per_chunk: usize) -> Vec<LogChunk> {
    let source = ledger.register_source(name, Signal::Log);
    let first = ledger.emit(source, records, 0);
    let mut rng = ChaCha8Rng::seed_from_u64(records);
    let machines =
        [MachineId::new(MachineType::Comfyui, "1").unwrap(), MachineId::new(MachineType::Openai, "2").unwrap()];
    let all: Vec<LogRecord> = (0..records)
        .map(|i| {
            let machine = machines[(i % 2) as usize].clone();
            LogRecord {
                time_unix_nano: 1_767_225_600_000_000_000 + i,
                observed_time_unix_nano: 1_767_225_600_000_000_000 + i,
                severity: Severity::Info,
                body: format!("line {i}"),
                trace_id: TraceId::random(&mut rng),
                span_id: SpanId::random(&mut rng),
                job_id: JobId::random(&mut rng),
                worker_id: Some(WorkerId::new(&machine, 0)),
                machine_id: Some(machine),
                id: RecordId::new(source, first + i),
                attributes: Attributes::new(),
            }
        })
        .collect();
    all.chunks(per_chunk)
        .map(|records| LogChunk {
            tag: "machine.comfyui".to_string(),
            environment: "production".to_string(),
            region: "us-west-2".to_string(),
            records: records.to_vec(),
        })
        .collect()
}

/// A world with the fake Redis, the fake Dash0 and the real shipper.
struct Rig {
    world: obsim::world::World<'static>,
    ledger: Ledger,
    redis: FakeRedis,
    dash0: FakeDash0,
}

fn rig(seed: u64, script: Vec<(u16, Option<u64>)>, config: ShipperConfig) -> Rig {
    let ledger = Ledger::new();
    let mut world = WorldBuilder::new(seed).duration(Duration::from_secs(600)).build();
    let redis = FakeRedis::new();
    let dash0 = FakeDash0::new(ledger.clone(), script);
    let r = redis.clone();
    world.host(hosts::REDIS, move |_| r.clone().serve());
    let d = dash0.clone();
    world.host(hosts::DASH0, move |_| d.clone().serve());
    let l = ledger.clone();
    world.host(hosts::SHIPPER, move |host| shipper::run(PartCtx::new(host, l.clone()), config.clone()));
    Rig { world, ledger, redis, dash0 }
}

fn assert_all_delivered(ledger: &Ledger, emitted: u64) {
    let account = ledger.account();
    let totals = &account.totals[&Signal::Log];
    assert_eq!((totals.emitted, totals.delivered), (emitted, emitted), "{:?}", account.outcomes);
    let undelivered: Vec<_> = account.undelivered(Signal::Log).collect();
    assert!(undelivered.is_empty(), "{undelivered:?}");
}

// ---------------------------------------------------------------------------------------
// Golden command sequences with redis-test's strict mock.

/// An exporter that answers from a script, without a network.
struct ScriptedExporter {
    outcomes: VecDeque<ExportOutcome>,
    bodies: Arc<Mutex<Vec<Bytes>>>,
}

impl Exporter for ScriptedExporter {
    async fn export(&mut self, body: Bytes) -> ExportOutcome {
        self.bodies.lock().unwrap().push(body);
        self.outcomes.pop_front().expect("the script covers every attempt")
    }
}

fn lmove(from: &str, to: &str, wherefrom: &str, whereto: &str) -> redis::Cmd {
    let mut cmd = redis::cmd("LMOVE");
    cmd.arg(from).arg(to).arg(wherefrom).arg(whereto);
    cmd
}

/// The golden test's Redis side, command by command: recovery, batch 1 (taken, look-ahead,
/// LREM after the 2xx), batch 2 (taken, 503s until expiry, given back, never LREMed).
fn golden_script(a: &Bytes, b: &Bytes, c: &Bytes) -> MockRedisConnection {
    let nil = redis::Value::Nil;
    let bulk = |v: &Bytes| redis::Value::BulkString(v.to_vec());
    let mut take_two = redis::pipe();
    take_two
        .add_command(lmove(BUFFER, PROCESSING, "LEFT", "RIGHT"))
        .add_command(lmove(BUFFER, PROCESSING, "LEFT", "RIGHT"));
    let mut lrem_ab = redis::pipe();
    lrem_ab.cmd("LREM").arg(PROCESSING).arg(1).arg(a.as_ref()).cmd("LREM").arg(PROCESSING).arg(1).arg(b.as_ref());
    let mut give_back_one = redis::pipe();
    give_back_one.add_command(lmove(PROCESSING, BUFFER, "LEFT", "RIGHT"));
    let blmove = || redis::cmd("BLMOVE").arg(BUFFER).arg(PROCESSING).arg("LEFT").arg("RIGHT").arg("1").clone();
    MockRedisConnection::new(vec![
        // Restart recovery: nothing left in processing.
        MockCmd::new(lmove(PROCESSING, BUFFER, "RIGHT", "LEFT"), Ok(nil.clone())),
        // Batch 1: one blocking take, look-ahead of two (one value, then dry).
        MockCmd::new(blmove(), Ok(bulk(a))),
        MockCmd::with_values(take_two.clone(), Ok(vec![bulk(b), nil.clone()])),
        // 2xx → LREM both.
        MockCmd::with_values(&mut lrem_ab, Ok(vec![1i64, 1])),
        // Batch 2: the last value; 503s until retries expire → given back, never LREMed.
        MockCmd::new(blmove(), Ok(bulk(c))),
        MockCmd::with_values(&mut take_two, Ok(vec![nil.clone(), nil.clone()])),
        MockCmd::with_values(&mut give_back_one, Ok(vec![bulk(c)])),
    ])
}

#[test]
fn golden_sequence_lrem_only_after_2xx_and_never_after_503() {
    let ledger = Ledger::new();
    let mut built = chunks(&ledger, "golden", 6, 2);
    let (a, b, c) = (
        Bytes::from(built.remove(0).encode()),
        Bytes::from(built.remove(0).encode()),
        Bytes::from(built.remove(0).encode()),
    );
    let mock = golden_script(&a, &b, &c);
    let config = ShipperConfig {
        batch_chunks_max: 3,
        retry_initial: Duration::from_secs(1),
        retry_max_interval: Duration::from_secs(2),
        retry_max_elapsed: Duration::from_secs(10),
        ..ShipperConfig::default()
    };
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let retry_503 = ExportOutcome::Retryable { reason: "http 503".into(), retry_after: None };
    let exporter = ScriptedExporter {
        outcomes: [ExportOutcome::Delivered { status: 200 }]
            .into_iter()
            .chain(std::iter::repeat_n(retry_503, 20))
            .collect(),
        bodies: Arc::clone(&bodies),
    };
    let verdicts = Arc::new(Mutex::new(Vec::new()));
    let mut world = WorldBuilder::new(1).duration(Duration::from_secs(60)).build();
    let (l, v, m) = (ledger.clone(), Arc::clone(&verdicts), mock.clone());
    world.host(hosts::SHIPPER, move |host| {
        let (ctx, verdicts, mut conn, config) =
            (PartCtx::new(host, l.clone()), Arc::clone(&v), m.clone(), config.clone());
        let exporter = ScriptedExporter { outcomes: exporter.outcomes.clone(), bodies: Arc::clone(&exporter.bodies) };
        async move {
            let mut shipper = Shipper::new(ctx, config, exporter);
            assert_eq!(shipper.recover(&mut conn).await?, 0);
            for _ in 0..2 {
                let batch = shipper.next_batch(&mut conn).await?.expect("a batch");
                let verdict = shipper.export(&batch).await;
                shipper.settle(&mut conn, &batch, &verdict).await?;
                verdicts.lock().unwrap().push((batch.values.len(), batch.ids.len(), verdict));
            }
            Ok(())
        }
    });
    world.run_for(Duration::from_secs(30)).unwrap();
    assert!(mock.is_empty(), "every scripted command was sent, in order");
    let verdicts = verdicts.lock().unwrap().clone();
    assert_eq!(verdicts[0], (2, 4, Verdict::Delivered { status: 200, attempts: 1 }));
    assert_eq!(verdicts[1].0, 1);
    assert!(matches!(verdicts[1].2, Verdict::Expired { .. }), "{:?}", verdicts[1]);
    // Batch 1 was one POST of both chunks' records; batch 2 was retried several times.
    let bodies = bodies.lock().unwrap().clone();
    let first = obsim::proto::otlp::decode_logs_bytes(&bodies[0]).unwrap();
    assert_eq!(first.iter().map(|b| b.records.len()).sum::<usize>(), 4);
    assert!(bodies.len() >= 4, "503s are retried: {} attempts", bodies.len());
    // The shipper holds nothing: delivered batch released, expired batch released (Redis has it).
    let account = ledger.account();
    let held: Vec<_> = account.undelivered(Signal::Log).filter(|(o, _)| matches!(o, Outcome::InFlight(_))).collect();
    assert!(held.is_empty(), "{held:?}");
}

/// Redis at `maxmemory` (noeviction) refuses LMOVE and BLMOVE (`denyoom`). A shipper that
/// only moved would deadlock: Redis frees memory only when the shipper drains it. So the
/// shipper reads in place (LRANGE) — first what it could not move back out of the
/// processing list, then the buffer's head — and LREMs from the list that holds the values
/// once Dash0 answered 2xx; then it tries BLMOVE again.
#[test]
fn golden_sequence_at_maxmemory_reads_in_place_and_lrems_after_2xx() {
    let ledger = Ledger::new();
    let mut built = chunks(&ledger, "oom", 6, 2);
    let (a, b, c) = (
        Bytes::from(built.remove(0).encode()),
        Bytes::from(built.remove(0).encode()),
        Bytes::from(built.remove(0).encode()),
    );
    let nil = redis::Value::Nil;
    let bulk = |v: &Bytes| redis::Value::BulkString(v.to_vec());
    // The reply exactly as Redis 7.0 writes it, parsed by the client.
    let oom = || {
        let reply = redis::parse_redis_value(b"-OOM command not allowed when used memory > 'maxmemory'.\r\n");
        Err::<redis::Value, _>(reply.and_then(|value| value.extract_error()).expect_err("an error reply"))
    };
    let lrange = |list: &str| redis::cmd("LRANGE").arg(list).arg(0).arg(2).clone();
    let lrem = |list: &str, values: &[&Bytes]| {
        let mut pipeline = redis::pipe();
        for value in values {
            pipeline.cmd("LREM").arg(list).arg(1).arg(value.as_ref());
        }
        pipeline
    };
    let blmove = || redis::cmd("BLMOVE").arg(BUFFER).arg(PROCESSING).arg("LEFT").arg("RIGHT").arg("1").clone();
    let mock = MockRedisConnection::new(vec![
        // Restart recovery refused: `a` stays in the processing list.
        MockCmd::new(lmove(PROCESSING, BUFFER, "RIGHT", "LEFT"), oom()),
        // Batch 1: the processing list, read in place; 2xx → LREM from processing.
        MockCmd::new(lrange(PROCESSING), Ok(redis::Value::Array(vec![bulk(&a)]))),
        MockCmd::with_values(lrem(PROCESSING, &[&a]), Ok(vec![1i64])),
        // Batch 2: processing is empty now; BLMOVE refused → the buffer's head, read in
        // place; 2xx → LREM from the buffer.
        MockCmd::new(lrange(PROCESSING), Ok(redis::Value::Array(vec![]))),
        MockCmd::new(blmove(), oom()),
        MockCmd::new(lrange(BUFFER), Ok(redis::Value::Array(vec![bulk(&b), bulk(&c)]))),
        MockCmd::with_values(lrem(BUFFER, &[&b, &c]), Ok(vec![1i64, 1])),
        // Batch 3: memory was freed, the reliable queue moves again.
        MockCmd::new(blmove(), Ok(nil.clone())),
    ]);
    let config = ShipperConfig { batch_chunks_max: 3, ..ShipperConfig::default() };
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let exporter = ScriptedExporter {
        outcomes: std::iter::repeat_n(ExportOutcome::Delivered { status: 200 }, 2).collect(),
        bodies: Arc::clone(&bodies),
    };
    let taken_from = Arc::new(Mutex::new(Vec::new()));
    let mut world = WorldBuilder::new(1).duration(Duration::from_secs(60)).build();
    let (l, t, m) = (ledger.clone(), Arc::clone(&taken_from), mock.clone());
    world.host(hosts::SHIPPER, move |host| {
        let (ctx, taken_from, mut conn, config) =
            (PartCtx::new(host, l.clone()), Arc::clone(&t), m.clone(), config.clone());
        let exporter = ScriptedExporter { outcomes: exporter.outcomes.clone(), bodies: Arc::clone(&exporter.bodies) };
        async move {
            let mut shipper = Shipper::new(ctx, config, exporter);
            assert_eq!(shipper.recover(&mut conn).await?, 0, "the refused recovery is not an error");
            for _ in 0..2 {
                let batch = shipper.next_batch(&mut conn).await?.expect("a batch");
                let verdict = shipper.export(&batch).await;
                shipper.settle(&mut conn, &batch, &verdict).await?;
                taken_from.lock().unwrap().push((batch.taken_from, batch.ids.len()));
            }
            assert!(shipper.next_batch(&mut conn).await?.is_none(), "the buffer is empty");
            Ok(())
        }
    });
    world.run_for(Duration::from_secs(30)).unwrap();
    assert!(mock.is_empty(), "every scripted command was sent, in order");
    use obsim::parts::shipper::batch::TakenFrom;
    assert_eq!(*taken_from.lock().unwrap(), vec![(TakenFrom::ReadInProcessing, 2), (TakenFrom::ReadInBuffer, 4)]);
    assert_eq!(bodies.lock().unwrap().len(), 2, "one POST per batch");
    let account = ledger.account();
    let held: Vec<_> = account.undelivered(Signal::Log).filter(|(o, _)| matches!(o, Outcome::InFlight(_))).collect();
    assert!(held.is_empty(), "the shipper released everything it delivered: {held:?}");
}

// ---------------------------------------------------------------------------------------
// Through the network, against the fakes.

#[test]
fn drains_to_dash0_and_lrems_after_2xx_with_the_dash0_headers() {
    let mut rig = rig(2, vec![], ShipperConfig::default());
    let built = chunks(&rig.ledger, "drain", 30, 10);
    for chunk in &built {
        rig.redis.rpush(BUFFER, chunk.encode());
    }
    rig.world.run_for(Duration::from_secs(5)).unwrap();
    assert!(rig.redis.list(BUFFER).is_empty() && rig.redis.list(PROCESSING).is_empty());
    assert_eq!(rig.redis.count("LREM"), 3, "one LREM per chunk");
    let requests = rig.dash0.requests();
    for request in &requests {
        assert_eq!(request.path, "/v1/logs");
        assert_eq!(request.authorization, "Bearer obsim-token");
        assert_eq!(request.dataset, "default");
        assert_eq!(request.content_type, "application/x-protobuf");
        // Grouped per machine: one resource each, with the enrichment.
        let machines: Vec<_> = request.resources.iter().map(|r| r.machine_id.clone().unwrap()).collect();
        assert_eq!(machines, vec!["comfyui-1".to_string(), "openai-2".to_string()]);
        for resource in &request.resources {
            assert_eq!(resource.service_name, "emp-machine");
            assert_eq!(resource.deployment_environment.as_deref(), Some("production"));
            assert_eq!(resource.cloud_region.as_deref(), Some("us-west-2"));
        }
    }
    assert_all_delivered(&rig.ledger, 30);
}

#[test]
fn a_503_with_retry_after_7_is_retried_no_sooner_than_7_seconds_later() {
    let mut rig = rig(3, vec![(503, Some(7))], ShipperConfig::default());
    for chunk in chunks(&rig.ledger, "retry", 5, 5) {
        rig.redis.rpush(BUFFER, chunk.encode());
    }
    rig.world.run_for(Duration::from_secs(4)).unwrap();
    // Refused once and waiting: the value stays in the processing list, not LREMed.
    assert_eq!(rig.redis.list(PROCESSING).len(), 1);
    assert_eq!(rig.redis.count("LREM"), 0);
    rig.world.run_for(Duration::from_secs(20)).unwrap();
    let requests = rig.dash0.requests();
    assert_eq!(requests.iter().map(|r| r.status).collect::<Vec<_>>(), vec![503, 200]);
    let gap = Duration::from_nanos(requests[1].true_nanos - requests[0].true_nanos);
    assert!(gap >= Duration::from_secs(7), "retried after {gap:?}");
    assert!(gap < Duration::from_secs(8), "Retry-After is honoured, not exceeded by backoff: {gap:?}");
    assert!(rig.redis.list(PROCESSING).is_empty());
    assert_all_delivered(&rig.ledger, 5);
}

#[test]
fn a_400_is_not_retried_and_is_lost_with_its_cause_and_lremed() {
    let mut rig = rig(4, vec![(400, None)], ShipperConfig::default());
    for chunk in chunks(&rig.ledger, "rejected", 8, 8) {
        rig.redis.rpush(BUFFER, chunk.encode());
    }
    rig.world.run_for(Duration::from_secs(10)).unwrap();
    assert_eq!(rig.dash0.requests().len(), 1, "a 400 is never retried");
    assert!(rig.redis.list(PROCESSING).is_empty() && rig.redis.list(BUFFER).is_empty());
    assert_eq!(rig.redis.count("LREM"), 1);
    let account = rig.ledger.account();
    let outcomes: Vec<(Outcome, u64)> =
        account.undelivered(Signal::Log).map(|(outcome, tally)| (outcome.clone(), tally.count)).collect();
    let shipper = Custodian { part: Part::Shipper, host: Arc::from(hosts::SHIPPER) };
    assert_eq!(outcomes, vec![(Outcome::Lost { cause: LossCause::ShipperRejected4xx, custodian: shipper }, 8)]);
}

#[test]
fn a_crash_between_lmove_and_post_requeues_and_delivers_everything() {
    let config = ShipperConfig { batch_records_max: 10, ..ShipperConfig::default() };
    let mut rig = rig(5, vec![], config);
    for chunk in chunks(&rig.ledger, "crash", 40, 10) {
        rig.redis.rpush(BUFFER, chunk.encode());
    }
    // Dash0 unreachable: the shipper takes chunks into processing but cannot POST them.
    rig.world.partition(hosts::SHIPPER, hosts::DASH0);
    rig.world.run_for(Duration::from_secs(3)).unwrap();
    let in_flight = rig.redis.list(PROCESSING).len();
    assert!(in_flight >= 1, "chunks were moved to processing before the crash");
    assert!(rig.dash0.requests().is_empty());
    rig.world.kill(hosts::SHIPPER);
    rig.ledger.host_lost(hosts::SHIPPER, obsim::ledger::HostLoss::Process);
    rig.world.repair(hosts::SHIPPER, hosts::DASH0);
    rig.world.run_for(Duration::from_secs(4)).unwrap();
    assert_eq!(rig.redis.list(PROCESSING).len(), in_flight, "a dead shipper moves nothing");
    rig.world.restart(hosts::SHIPPER);
    rig.world.run_for(Duration::from_secs(30)).unwrap();
    assert!(rig.redis.list(PROCESSING).is_empty() && rig.redis.list(BUFFER).is_empty());
    assert_all_delivered(&rig.ledger, 40);
    let kinds: Vec<String> = rig.world.events().kept().iter().map(|e| format!("{} {}", e.kind, e.detail)).collect();
    assert!(
        kinds.iter().any(|k| k.starts_with(&format!("shipper.recover {in_flight} values"))),
        "the second incarnation re-queued the processing list: {kinds:?}"
    );
}

#[test]
fn many_chunks_go_out_in_few_posts_within_the_batch_bounds() {
    let config = ShipperConfig { batch_records_max: 100, batch_chunks_max: 16, ..ShipperConfig::default() };
    let mut rig = rig(6, vec![], config);
    for chunk in chunks(&rig.ledger, "batching", 200, 10) {
        rig.redis.rpush(BUFFER, chunk.encode());
    }
    rig.world.run_for(Duration::from_secs(10)).unwrap();
    let requests = rig.dash0.requests();
    let sizes: Vec<usize> = requests.iter().map(|r| r.records.len()).collect();
    assert_eq!(sizes, vec![100, 100], "20 chunks of 10 records in 2 POSTs of 100");
    assert_eq!(rig.redis.count("LREM"), 20);
    assert_all_delivered(&rig.ledger, 200);
}

#[test]
fn the_config_reads_from_toml_with_defaults_and_refuses_unknown_keys() {
    let config: ShipperConfig = toml::from_str("request_timeout = \"5s\"\nbatch_records_max = 50").unwrap();
    assert_eq!(config.request_timeout, Duration::from_secs(5));
    assert_eq!(config.batch_records_max, 50);
    assert_eq!(config.buffer_key, "logs:buffer");
    assert!(toml::from_str::<ShipperConfig>("batch_size = 5").unwrap_err().to_string().contains("batch_size"));
    let zero = ShipperConfig { batch_chunks_max: 0, ..ShipperConfig::default() };
    assert!(zero.validate().unwrap_err().contains("batch_chunks_max"));
}

/// The request body of a fixed batch is pinned under `fixtures/shipper/`: records grouped by
/// origin into resources (service.name, machine.id, enrichment), in a deterministic order.
#[test]
fn golden_export_request_groups_records_by_origin() {
    use obsim::parts::shipper::batch::{TakenChunk, TakenFrom, build};
    let ledger = Ledger::new();
    let mut machine = chunks(&ledger, "golden-machine", 4, 4).remove(0);
    let mut api = chunks(&ledger, "golden-api", 2, 2).remove(0);
    api.tag = "api".to_string();
    let mut dev = chunks(&ledger, "golden-dev", 2, 2).remove(0);
    dev.tag = "dev.app".to_string();
    dev.region = String::new(); // not enriched: no cloud.region attribute
    for record in api.records.iter_mut().chain(dev.records.iter_mut()) {
        record.machine_id = None;
        record.worker_id = None;
    }
    machine.environment = "staging".to_string();
    let taken: Vec<TakenChunk> =
        [machine, api, dev].into_iter().map(|chunk| TakenChunk { value: Bytes::from(chunk.encode()), chunk }).collect();
    let batch = build(taken, TakenFrom::Moved);
    assert_eq!(batch.values.len(), 3);
    assert_eq!(batch.ids.len(), 8);
    let decoded = obsim::proto::otlp::decode_logs_bytes(&batch.body).unwrap();
    let summary: Vec<String> = decoded
        .iter()
        .map(|b| {
            let r = &b.resource;
            format!(
                "{} machine.id={:?} env={:?} region={:?} records={}",
                r.service_name,
                r.machine_id,
                r.deployment_environment,
                r.cloud_region,
                b.records.len()
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            "emp-api machine.id=None env=Some(\"production\") region=Some(\"us-west-2\") records=2",
            "emp-dev machine.id=None env=Some(\"production\") region=None records=2",
            "emp-machine machine.id=Some(\"comfyui-1\") env=Some(\"staging\") region=Some(\"us-west-2\") records=2",
            "emp-machine machine.id=Some(\"openai-2\") env=Some(\"staging\") region=Some(\"us-west-2\") records=2",
        ]
    );
    insta::with_settings!({ snapshot_path => "../fixtures/shipper", prepend_module_to_snapshot => false }, {
        insta::assert_binary_snapshot!("export_logs_request.pb", batch.body.to_vec());
    });
}

/// A partition from Redis kills the shipper's connection for good (turmoil never
/// retransmits): the shipper notices through its timeouts, reconnects after the repair,
/// settles what it had exported, and delivers the rest.
#[test]
fn a_redis_partition_is_survived_by_timeouts_and_reconnects() {
    let config = ShipperConfig { batch_records_max: 10, ..ShipperConfig::default() };
    let mut rig = rig(7, vec![], config);
    for chunk in chunks(&rig.ledger, "partition", 50, 10) {
        rig.redis.rpush(BUFFER, chunk.encode());
    }
    rig.world.run_for(Duration::from_millis(150)).unwrap();
    rig.world.partition(hosts::SHIPPER, hosts::REDIS);
    rig.world.run_for(Duration::from_secs(20)).unwrap();
    let stalled = rig.dash0.requests().len();
    assert!(stalled < 5, "the partition stopped the drain ({stalled} POSTs)");
    rig.world.repair(hosts::SHIPPER, hosts::REDIS);
    rig.world.run_for(Duration::from_secs(60)).unwrap();
    assert!(rig.redis.list(BUFFER).is_empty() && rig.redis.list(PROCESSING).is_empty());
    assert_all_delivered(&rig.ledger, 50);
    let events = rig.world.events().kept();
    assert!(events.iter().any(|e| e.kind == EventKind::ShipperRedisDown), "the lost connection was noticed");
}
