//! Dash0 ingest as its clients see it: a small world with the Dash0 host and one client
//! host speaking OTLP/HTTP (hyper) or OTLP/gRPC (tonic) over the simulated network.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use obsim::ledger::{Custodian, Ledger, Outcome};
use obsim::parts::PartCtx;
use obsim::parts::collector::channel::{ChannelSettings, lazy_channel};
use obsim::parts::dash0::{self, Dash0Config, Dash0Control, Dash0Store, ScriptedErrors};
use obsim::proto::otlp::rpc_status::retry_delay_of;
use obsim::proto::otlp::{encode_logs, encode_spans, encode_to_vec};
use obsim::record::{
    Attributes, JobId, LogRecord, MachineId, MachineType, RecordId, Resource, Severity, SourceId, Span, SpanId,
    SpanKind, SpanStatus, TraceId, WorkerId,
};
use obsim::vocab::{EventKind, LossCause, Part, Signal};
use obsim::vocab::{hosts, ports};
use obsim::world::{World, WorldBuilder, true_elapsed_now};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceResponse;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use prost::Message;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

const HOUR_NANOS: u64 = 3_600_000_000_000;

/// What a client saw, in order, for the assertions.
type Seen = Arc<Mutex<Vec<Answer>>>;

/// A gRPC call's code and RetryInfo delay.
type CodeSeen = (tonic::Code, Option<Duration>);

#[derive(Clone, Debug)]
struct Answer {
    status: u16,
    retry_after: Option<String>,
    body: Bytes,
    /// True time the request left and the answer arrived.
    sent_true: Duration,
    answered_true: Duration,
}

/// The world, Dash0's shared state and the ledger.
struct Rig {
    world: World<'static>,
    ledger: Ledger,
    store: Dash0Store,
    control: Dash0Control,
}

fn rig(seed: u64) -> Rig {
    let mut world = WorldBuilder::new(seed).duration(Duration::from_secs(120)).build();
    let (ledger, store, control) = (Ledger::new(), Dash0Store::new(), Dash0Control::new());
    let (l, s, c) = (ledger.clone(), store.clone(), control.clone());
    world.host(hosts::DASH0, move |host| {
        let ctx = PartCtx::new(host, l.clone());
        dash0::run(ctx, Dash0Config::default(), c.clone(), s.clone())
    });
    Rig { world, ledger, store, control }
}

fn resource() -> Resource {
    Resource::new("emp-worker").with_machine_id("comfyui-1")
}

/// `count` log records of `source` from `first_seq`, all stamped `time_unix_nano`.
fn logs(source: SourceId, first_seq: u64, count: u64, time_unix_nano: u64) -> Vec<LogRecord> {
    let mut rng = ChaCha8Rng::seed_from_u64(first_seq);
    let machine = MachineId::new(MachineType::Comfyui, "1").unwrap();
    let (trace_id, span_id, job_id) = (TraceId::random(&mut rng), SpanId::random(&mut rng), JobId::random(&mut rng));
    (first_seq..first_seq + count)
        .map(|seq| LogRecord {
            time_unix_nano,
            observed_time_unix_nano: time_unix_nano,
            severity: Severity::Info,
            body: format!("step {seq}"),
            trace_id,
            span_id,
            job_id,
            machine_id: Some(machine.clone()),
            worker_id: Some(WorkerId::new(&machine, 0)),
            id: RecordId::new(source, seq),
            attributes: Attributes::new(),
        })
        .collect()
}

fn spans(source: SourceId, count: u64, start_unix_nano: u64) -> Vec<Span> {
    let mut rng = ChaCha8Rng::seed_from_u64(99);
    let (trace_id, job_id) = (TraceId::random(&mut rng), JobId::random(&mut rng));
    (0..count)
        .map(|seq| Span {
            trace_id,
            span_id: SpanId::random(&mut rng),
            parent_span_id: None,
            name: "job.executing".into(),
            kind: SpanKind::Consumer,
            start_time_unix_nano: start_unix_nano,
            end_time_unix_nano: start_unix_nano + 1_000,
            status: SpanStatus::Ok,
            job_id,
            machine_id: None,
            worker_id: None,
            id: RecordId::new(source, seq),
            attributes: Attributes::new(),
        })
        .collect()
}

/// POSTs `body` to Dash0's `path` over a fresh HTTP/1.1 connection.
async fn post(path: &str, token: Option<&str>, dataset: Option<&str>, body: Vec<u8>) -> Answer {
    let sent_true = true_elapsed_now();
    let stream = turmoil::net::TcpStream::connect((hosts::DASH0, ports::DASH0_HTTP)).await.expect("dash0 listens");
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.unwrap();
    tokio::spawn(connection);
    let mut request = http::Request::post(path)
        .header(http::header::HOST, hosts::DASH0)
        .header(http::header::CONTENT_TYPE, "application/x-protobuf");
    if let Some(token) = token {
        request = request.header(http::header::AUTHORIZATION, format!("Bearer {token}"));
    }
    if let Some(dataset) = dataset {
        request = request.header("Dash0-Dataset", dataset);
    }
    let response = sender.send_request(request.body(Full::new(Bytes::from(body))).unwrap()).await.unwrap();
    let status = response.status().as_u16();
    let retry_after = response.headers().get(http::header::RETRY_AFTER).map(|v| v.to_str().unwrap().to_string());
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Answer { status, retry_after, body, sent_true, answered_true: true_elapsed_now() }
}

/// Adds a client host that emits `count` log records of a fresh source at 1 s, posts them
/// stamped with its clock's now, and records the answer.
fn http_client(rig: &mut Rig, token: &'static str, dataset: Option<&'static str>, count: u64) -> (SourceId, Seen) {
    let source = rig.ledger.register_source("comfyui-1/worker-0", Signal::Log);
    let seen: Seen = Arc::default();
    let (ledger, seen_in) = (rig.ledger.clone(), seen.clone());
    rig.world.host("comfyui-1", move |host| {
        let (ledger, seen) = (ledger.clone(), seen_in.clone());
        async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let now = host.clock().now_unix_nanos();
            ledger.emit(source, count, true_elapsed_now().as_nanos() as u64);
            let body = encode_to_vec(&encode_logs(&resource(), &logs(source, 0, count, now)));
            let answer = post("/v1/logs", Some(token), dataset, body).await;
            seen.lock().unwrap().push(answer);
            Ok(())
        }
    });
    (source, seen)
}

fn outcomes(ledger: &Ledger, signal: Signal) -> Vec<(Outcome, u64)> {
    ledger.account().undelivered(signal).map(|(outcome, tally)| (outcome.clone(), tally.count)).collect()
}

fn event_details(world: &World<'_>, kind: EventKind) -> Vec<String> {
    world.events().kept().into_iter().filter(|e| e.kind == kind).map(|e| e.detail).collect()
}

#[test]
fn an_http_logs_request_is_stored_and_delivered_with_its_ingest_time() {
    let mut rig = rig(1);
    let (_, seen) = http_client(&mut rig, "obsim-token", None, 10);
    rig.world.run_for(Duration::from_secs(3)).unwrap();

    let answers = seen.lock().unwrap().clone();
    assert_eq!(answers.len(), 1);
    assert_eq!(answers[0].status, 200);
    let response = ExportLogsServiceResponse::decode(answers[0].body.clone()).unwrap();
    assert_eq!(response.partial_success, None, "everything was accepted");

    let stored = rig.store.logs();
    assert_eq!(stored.len(), 10);
    let ingest = Duration::from_nanos(stored[0].1);
    assert!(ingest > answers[0].sent_true && ingest <= answers[0].answered_true, "ingest at {ingest:?}");
    assert!(stored.iter().all(|(_, t)| *t == stored[0].1), "one request, one ingest time");
    rig.store.with_logs(|batches| assert_eq!(&*batches[0].dataset, "default"));

    let account = rig.ledger.account();
    assert_eq!(account.totals[&Signal::Log].delivered, 10);
    assert_eq!(outcomes(&rig.ledger, Signal::Log), vec![]);
    let latency = rig.ledger.latency_micros(Signal::Log);
    assert_eq!(latency.len(), 10);
    assert!(latency.max() < 100_000, "emit → store took {} µs", latency.max());
    assert_eq!(rig.store.counts().logs.requests_accepted, 1);
}

#[test]
fn a_wrong_bearer_token_is_401_and_nothing_is_stored() {
    let mut rig = rig(2);
    let (_, seen) = http_client(&mut rig, "stolen-token", None, 5);
    rig.world.run_for(Duration::from_secs(3)).unwrap();

    assert_eq!(seen.lock().unwrap()[0].status, 401);
    assert_eq!(rig.store.logs_count(), 0);
    assert_eq!(rig.ledger.account().totals[&Signal::Log].delivered, 0);
    assert_eq!(rig.store.counts().logs.requests_refused, 1);
    let refused = event_details(&rig.world, EventKind::Dash0Refused);
    assert_eq!(refused.len(), 1);
    assert!(refused[0].contains("status 401 unauthenticated"), "{refused:?}");
}

#[test]
fn a_dataset_the_token_may_not_write_is_403() {
    let mut rig = rig(3);
    let (_, seen) = http_client(&mut rig, "obsim-token", Some("production"), 5);
    rig.world.run_for(Duration::from_secs(3)).unwrap();
    assert_eq!(seen.lock().unwrap()[0].status, 403);
    assert_eq!(rig.store.logs_count(), 0);
}

#[test]
fn stale_and_far_future_records_are_refused_with_partial_success_and_their_cause() {
    let mut rig = rig(4);
    let source = rig.ledger.register_source("comfyui-1/worker-0", Signal::Log);
    let seen: Seen = Arc::default();
    let (ledger, seen_in) = (rig.ledger.clone(), seen.clone());
    rig.world.host("comfyui-1", move |host| {
        let (ledger, seen) = (ledger.clone(), seen_in.clone());
        async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let now = host.clock().now_unix_nanos();
            ledger.emit(source, 10, true_elapsed_now().as_nanos() as u64);
            let mut records = logs(source, 0, 10, now);
            records[2].time_unix_nano = now - 7 * HOUR_NANOS; // 7 h old
            records[5].time_unix_nano = now + 4 * 24 * HOUR_NANOS; // 4 days ahead
            records[7].time_unix_nano = now - 5 * HOUR_NANOS; // 5 h old: still inside
            let body = encode_to_vec(&encode_logs(&resource(), &records));
            let answer = post("/v1/logs", Some("obsim-token"), None, body).await;
            seen.lock().unwrap().push(answer);
            Ok(())
        }
    });
    rig.world.run_for(Duration::from_secs(3)).unwrap();

    let answer = seen.lock().unwrap()[0].clone();
    assert_eq!(answer.status, 200, "a partial success is still a success");
    let partial = ExportLogsServiceResponse::decode(answer.body).unwrap().partial_success.expect("partial_success");
    assert_eq!(partial.rejected_log_records, 2);
    assert!(partial.error_message.contains("timestamp outside"), "{}", partial.error_message);

    let stored: Vec<u64> = rig.store.logs().iter().map(|(r, _)| r.id.seq).collect();
    assert_eq!(stored, vec![0, 1, 3, 4, 6, 7, 8, 9]);
    let dash0 = Custodian { part: Part::Dash0, host: Arc::from(hosts::DASH0) };
    assert_eq!(
        outcomes(&rig.ledger, Signal::Log),
        vec![(Outcome::Lost { cause: LossCause::Dash0TimestampRange, custodian: dash0 }, 2)]
    );
    let account = rig.ledger.account();
    let lost = account.undelivered(Signal::Log).next().unwrap().1;
    assert_eq!(lost.examples, vec![RecordId::new(source, 2), RecordId::new(source, 5)]);
    assert_eq!(rig.store.counts().logs.records_refused_timestamp, 2);
}

#[test]
fn a_scripted_503_answers_retry_after_and_stores_nothing_until_healed() {
    let mut rig = rig(5);
    rig.control
        .set_errors(Some(ScriptedErrors { status: 503, rate: 1.0, retry_after: Some(Duration::from_secs(7)) }))
        .unwrap();
    let source = rig.ledger.register_source("s", Signal::Log);
    let seen: Seen = Arc::default();
    let (ledger, seen_in) = (rig.ledger.clone(), seen.clone());
    rig.world.host("comfyui-1", move |host| {
        let (ledger, seen) = (ledger.clone(), seen_in.clone());
        async move {
            for attempt in 0..2u64 {
                tokio::time::sleep(Duration::from_secs(1)).await;
                ledger.emit(source, 3, true_elapsed_now().as_nanos() as u64);
                let records = logs(source, attempt * 3, 3, host.clock().now_unix_nanos());
                let body = encode_to_vec(&encode_logs(&resource(), &records));
                let answer = post("/v1/logs", Some("obsim-token"), None, body).await;
                seen.lock().unwrap().push(answer);
            }
            Ok(())
        }
    });
    rig.world.run_for(Duration::from_millis(1_500)).unwrap();
    rig.control.heal();
    rig.world.run_for(Duration::from_secs(3)).unwrap();

    let answers = seen.lock().unwrap().clone();
    assert_eq!((answers[0].status, answers[0].retry_after.as_deref()), (503, Some("7")));
    assert_eq!((answers[1].status, answers[1].retry_after.as_deref()), (200, None));
    let stored: Vec<u64> = rig.store.logs().iter().map(|(r, _)| r.id.seq).collect();
    assert_eq!(stored, vec![3, 4, 5]);
    let controls = event_details(&rig.world, EventKind::Dash0Control);
    assert_eq!(controls.len(), 2, "the script and its healing are events: {controls:?}");
    assert!(controls[1].contains("errors off"), "{controls:?}");
}

#[test]
fn the_rate_limit_answers_429_beyond_the_budget() {
    let mut rig = rig(6);
    rig.control.set_rate_limit(Some(100)).unwrap();
    let source = rig.ledger.register_source("s", Signal::Log);
    let seen: Seen = Arc::default();
    let (ledger, seen_in) = (rig.ledger.clone(), seen.clone());
    rig.world.host("comfyui-1", move |host| {
        let (ledger, seen) = (ledger.clone(), seen_in.clone());
        async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            // 60 + 60 within a moment: the second is over the 100/s budget; after a second
            // the bucket has refilled.
            for (seq, wait) in [(0u64, 0u64), (60, 0), (120, 1_000)] {
                tokio::time::sleep(Duration::from_millis(wait)).await;
                ledger.emit(source, 60, true_elapsed_now().as_nanos() as u64);
                let body =
                    encode_to_vec(&encode_logs(&resource(), &logs(source, seq, 60, host.clock().now_unix_nanos())));
                let answer = post("/v1/logs", Some("obsim-token"), None, body).await;
                seen.lock().unwrap().push(answer);
            }
            Ok(())
        }
    });
    rig.world.run_for(Duration::from_secs(4)).unwrap();

    let answers = seen.lock().unwrap().clone();
    let statuses: Vec<u16> = answers.iter().map(|a| a.status).collect();
    assert_eq!(statuses, vec![200, 429, 200]);
    assert_eq!(answers[1].retry_after.as_deref(), Some("1"), "20 records short at 100/s: come back in 1 s");
    assert_eq!(rig.store.logs_count(), 120);
    assert_eq!(rig.store.counts().logs.requests_refused, 1);
}

#[test]
fn slowness_adds_its_delay_in_true_time() {
    let mut rig = rig(7);
    rig.control.set_slow(Some(Duration::from_secs(3)));
    let (_, seen) = http_client(&mut rig, "obsim-token", None, 4);
    rig.world.run_for(Duration::from_secs(6)).unwrap();

    let answer = seen.lock().unwrap()[0].clone();
    assert_eq!(answer.status, 200);
    let took = answer.answered_true - answer.sent_true;
    assert!(took >= Duration::from_secs(3) && took < Duration::from_millis(3_200), "took {took:?}");
    let ingest = Duration::from_nanos(rig.store.logs()[0].1);
    assert!(ingest >= answer.sent_true + Duration::from_secs(3), "stored after the delay, at {ingest:?}");
}

#[test]
fn spans_exported_over_grpc_are_stored_and_statuses_map_to_grpc_codes() {
    let mut rig = rig(8);
    let source = rig.ledger.register_source("api/spans", Signal::Span);
    let codes: Arc<Mutex<Vec<CodeSeen>>> = Arc::default();
    let (ledger, codes_in, control) = (rig.ledger.clone(), codes.clone(), rig.control.clone());
    rig.world.host("api", move |host| {
        let (ledger, codes, control) = (ledger.clone(), codes_in.clone(), control.clone());
        async move {
            let channel = lazy_channel(&ChannelSettings {
                host: hosts::DASH0.to_string(),
                port: ports::DASH0_GRPC,
                request_timeout: Duration::from_secs(5),
                connect_timeout: Duration::from_secs(5),
                keepalive_interval: Duration::from_secs(10),
                keepalive_timeout: Duration::from_secs(10),
            });
            let mut client = TraceServiceClient::new(channel);
            tokio::time::sleep(Duration::from_secs(1)).await;
            ledger.emit(source, 20, true_elapsed_now().as_nanos() as u64);
            let request = encode_spans(&resource(), &spans(source, 20, host.clock().now_unix_nanos()));
            for (token, throttle) in
                [("obsim-token", false), ("nope", false), ("obsim-token", true), ("obsim-token", false)]
            {
                if throttle {
                    control.set_errors(Some(ScriptedErrors {
                        status: 429,
                        rate: 1.0,
                        retry_after: Some(Duration::from_secs(2)),
                    }))?;
                } else {
                    control.set_errors(None)?;
                }
                let mut call = tonic::Request::new(request.clone());
                call.metadata_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
                let result = client.export(call).await;
                codes.lock().unwrap().push(match result {
                    Ok(response) => {
                        assert_eq!(response.into_inner().partial_success, None);
                        (tonic::Code::Ok, None)
                    }
                    Err(status) => (status.code(), retry_delay_of(&status)),
                });
            }
            Ok(())
        }
    });
    rig.world.run_for(Duration::from_secs(4)).unwrap();

    assert_eq!(
        *codes.lock().unwrap(),
        vec![
            (tonic::Code::Ok, None),
            (tonic::Code::Unauthenticated, None),
            (tonic::Code::ResourceExhausted, Some(Duration::from_secs(2))),
            (tonic::Code::Ok, None),
        ]
    );
    assert_eq!(rig.store.spans_count(), 40, "two accepted exports of 20");
    rig.store.with_spans(|batches| assert!(batches.iter().all(|b| b.transport == dash0::Transport::Grpc)));
    let account = rig.ledger.account();
    let totals = &account.totals[&Signal::Span];
    assert_eq!((totals.delivered, totals.duplicated), (20, 20), "the second export repeats the first");
}

/// A 1 MiB body of empty log records would decode into a vector of about 92 MiB: Dash0
/// refuses it with 400 before decoding (as an OTLP server answers a body it cannot
/// decode), names the bound, and stores nothing.
#[test]
fn a_body_that_would_decode_too_large_is_400_before_decoding() {
    use opentelemetry_proto::tonic::logs::v1::{LogRecord as ProtoLogRecord, ResourceLogs, ScopeLogs};
    let mut rig = rig(4);
    let seen: Seen = Arc::default();
    let seen_in = seen.clone();
    rig.world.host("comfyui-1", move |_host| {
        let seen = seen_in.clone();
        async move {
            let request = obsim::proto::otlp::ExportLogsServiceRequest {
                resource_logs: vec![ResourceLogs {
                    scope_logs: vec![ScopeLogs {
                        log_records: vec![ProtoLogRecord::default(); 1 << 19],
                        ..ScopeLogs::default()
                    }],
                    ..ResourceLogs::default()
                }],
            };
            let answer = post("/v1/logs", Some("obsim-token"), None, encode_to_vec(&request)).await;
            seen.lock().unwrap().push(answer);
            Ok(())
        }
    });
    rig.world.run_for(Duration::from_secs(3)).unwrap();
    assert_eq!(seen.lock().unwrap()[0].status, 400);
    assert_eq!(rig.store.logs_count(), 0);
    let refused = event_details(&rig.world, EventKind::Dash0Refused);
    assert_eq!(refused.len(), 1);
    assert!(refused[0].contains("decoded_expansion_limit 32"), "{refused:?}");
}

/// The same body over gRPC: refused before tonic decodes it, with INTERNAL (what tonic
/// answers for a message it cannot decode) naming the bound; a good export on the same
/// channel right after is accepted.
#[test]
fn a_grpc_message_that_would_decode_too_large_is_refused_before_decoding() {
    use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
    use opentelemetry_proto::tonic::logs::v1::{LogRecord as ProtoLogRecord, ResourceLogs, ScopeLogs};
    let mut rig = rig(9);
    let source = rig.ledger.register_source("comfyui-1/worker-0", Signal::Log);
    let answers: Arc<Mutex<Vec<(tonic::Code, String)>>> = Arc::default();
    let (ledger, answers_in) = (rig.ledger.clone(), answers.clone());
    rig.world.host("comfyui-1", move |host| {
        let (ledger, answers) = (ledger.clone(), answers_in.clone());
        async move {
            let channel = lazy_channel(&ChannelSettings {
                host: hosts::DASH0.to_string(),
                port: ports::DASH0_GRPC,
                request_timeout: Duration::from_secs(5),
                connect_timeout: Duration::from_secs(5),
                keepalive_interval: Duration::from_secs(10),
                keepalive_timeout: Duration::from_secs(10),
            });
            let mut client = LogsServiceClient::new(channel);
            tokio::time::sleep(Duration::from_secs(1)).await;
            let bomb = obsim::proto::otlp::ExportLogsServiceRequest {
                resource_logs: vec![ResourceLogs {
                    scope_logs: vec![ScopeLogs {
                        log_records: vec![ProtoLogRecord::default(); 1 << 19],
                        ..ScopeLogs::default()
                    }],
                    ..ResourceLogs::default()
                }],
            };
            ledger.emit(source, 3, true_elapsed_now().as_nanos() as u64);
            let good = encode_logs(&resource(), &logs(source, 0, 3, host.clock().now_unix_nanos()));
            for request in [bomb, good] {
                let mut call = tonic::Request::new(request);
                call.metadata_mut().insert("authorization", "Bearer obsim-token".parse().unwrap());
                let answer = match client.export(call).await {
                    Ok(_) => (tonic::Code::Ok, String::new()),
                    Err(status) => (status.code(), status.message().to_owned()),
                };
                answers.lock().unwrap().push(answer);
            }
            Ok(())
        }
    });
    rig.world.run_for(Duration::from_secs(4)).unwrap();
    let answers = answers.lock().unwrap();
    assert_eq!(answers.len(), 2);
    assert_eq!(answers[0].0, tonic::Code::Internal);
    assert!(answers[0].1.contains("decoded_expansion_limit 32"), "{answers:?}");
    assert_eq!(answers[1].0, tonic::Code::Ok);
    assert_eq!(rig.store.logs_count(), 3);
}
