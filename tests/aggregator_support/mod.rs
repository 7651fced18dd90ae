//! Shared pieces of the agent and aggregator world tests: a tiny fake Redis speaking RESP
//! through `obsim::proto::resp` (answers RPUSH with the list length, or OOM when told to, and
//! keeps what was pushed), and an app that emits numbered log records into an agent's pipe
//! with the ledger bookkeeping the real app does.
#![allow(dead_code)]

pub mod dev;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::BytesMut;
use obsim::ledger::{Custodian, Durability, Ledger, Outcome};
use obsim::parts::log_chunk::LogChunk;
use obsim::parts::{PartCtx, RecordPipe};
use obsim::proto::resp::{Decoder, Reply, RequestLimits, errors};
use obsim::record::{JobId, LogRecord, RecordId, Severity, SpanId, TraceId};
use obsim::vocab::{EventKind, LossCause, Part, Signal};
use obsim::vocab::{hosts, ports};
use obsim::world::{HostCtx, true_elapsed_now};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use turmoil::net::{TcpListener, TcpStream};

/// Every `(key, value)` RPUSHed, in order.
pub type Pushed = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

/// What the fake Redis was sent, and a switch to make it answer OOM.
#[derive(Clone)]
pub struct FakeRedis {
    pub pushed: Pushed,
    pub oom: Arc<AtomicBool>,
    /// Custody as Redis reports it: what it stores, it holds (durable).
    ledger: Ledger,
}

impl FakeRedis {
    /// An empty fake Redis reporting custody to `ledger`.
    pub fn new(ledger: &Ledger) -> FakeRedis {
        FakeRedis { pushed: Arc::default(), oom: Arc::default(), ledger: ledger.clone() }
    }

    /// Every record id in the chunks pushed so far, in push order.
    pub fn pushed_ids(&self) -> Vec<RecordId> {
        self.pushed.lock().unwrap().iter().flat_map(|(_, value)| LogChunk::record_ids(value)).collect()
    }

    /// The pushed chunks, decoded.
    pub fn chunks(&self) -> Vec<(String, LogChunk)> {
        self.pushed.lock().unwrap().iter().map(|(key, value)| (key.clone(), LogChunk::decode(value).unwrap())).collect()
    }

    /// Serves RESP on :6379 forever (the host software).
    pub async fn serve(self) -> turmoil::Result {
        let listener = TcpListener::bind((IpAddr::from(Ipv4Addr::UNSPECIFIED), ports::REDIS)).await?;
        loop {
            let (stream, _) = listener.accept().await?;
            tokio::spawn(self.clone().connection(stream));
        }
    }

    async fn connection(self, mut stream: TcpStream) {
        let mut decoder = Decoder::new(RequestLimits::default());
        let mut input = BytesMut::new();
        let mut output = BytesMut::new();
        let mut read = vec![0u8; 64 * 1024];
        loop {
            let count = match stream.read(&mut read).await {
                Ok(0) | Err(_) => return,
                Ok(count) => count,
            };
            input.extend_from_slice(&read[..count]);
            while let Ok(Some(command)) = decoder.decode(&mut input) {
                let reply = if command.is("RPUSH") {
                    if self.oom.load(Ordering::SeqCst) {
                        Reply::error(errors::OOM)
                    } else {
                        let key = String::from_utf8_lossy(&command.args()[0]).into_owned();
                        let mut pushed = self.pushed.lock().unwrap();
                        let redis = Custodian { part: Part::Redis, host: Arc::from(hosts::REDIS) };
                        for value in &command.args()[1..] {
                            self.ledger.hold(&redis, &LogChunk::record_ids(value), Durability::Durable);
                            pushed.push((key.clone(), value.to_vec()));
                        }
                        Reply::integer(pushed.iter().filter(|(k, _)| *k == key).count() as i64)
                    }
                } else {
                    Reply::ok()
                };
                reply.encode(&mut output);
            }
            if stream.write_all(&output).await.is_err() {
                return;
            }
            output.clear();
        }
    }
}

/// An app writing `batches` batches of `per_batch` records, one batch every `every`, into
/// `pipe`, as the real app does: register the source, emit in the ledger, hold as the app.
pub async fn emit_logs(
    ctx: PartCtx,
    pipe: RecordPipe<LogRecord>,
    source_name: &str,
    batches: u64,
    per_batch: u64,
    every: Duration,
) {
    let source = ctx.ledger.register_source(source_name, Signal::Log);
    let app = ctx.custodian(Part::App);
    let mut rng = ctx.host.rng("test/app");
    for _ in 0..batches {
        let first = ctx.ledger.emit(source, per_batch, true_elapsed_now().as_nanos() as u64);
        let now = ctx.host.clock().now_unix_nanos();
        let records: Vec<LogRecord> = (first..first + per_batch)
            .map(|seq| LogRecord {
                time_unix_nano: now,
                observed_time_unix_nano: now,
                severity: Severity::Info,
                body: format!("step {seq} of the job"),
                trace_id: TraceId::random(&mut rng),
                span_id: SpanId::random(&mut rng),
                job_id: JobId::random(&mut rng),
                machine_id: None,
                worker_id: None,
                id: RecordId::new(source, seq),
                attributes: Default::default(),
            })
            .collect();
        let ids: Vec<RecordId> = records.iter().map(|record| record.id).collect();
        ctx.ledger.hold(&app, &ids, Durability::Volatile);
        if let Err(full) = pipe.push(records) {
            let ids: Vec<RecordId> = full.rejected.iter().map(|record| record.id).collect();
            ctx.ledger.drop_records(&app, LossCause::AppLogRotated, &ids);
        }
        tokio::time::sleep(every).await;
    }
}

/// A part context for a host.
pub fn part_ctx(host: HostCtx, ledger: &Ledger) -> PartCtx {
    PartCtx::new(host, ledger.clone())
}

/// Outcomes of the log signal, with their record counts, in the ledger's order.
pub fn outcomes(ledger: &Ledger) -> Vec<(Outcome, u64)> {
    ledger.account().undelivered(Signal::Log).map(|(outcome, tally)| (outcome.clone(), tally.count)).collect()
}

/// The outcome "lost with `cause` at `part`@`host`".
pub fn lost(cause: LossCause, part: Part, host: &str) -> Outcome {
    Outcome::Lost { cause, custodian: Custodian { part, host: Arc::from(host) } }
}

/// The outcome "still held by `part`@`host`".
pub fn in_flight(part: Part, host: &str) -> Outcome {
    Outcome::InFlight(Custodian { part, host: Arc::from(host) })
}

/// The records of `outcomes` that met `outcome` (0 if none did).
pub fn count_of(outcomes: &[(Outcome, u64)], outcome: &Outcome) -> u64 {
    outcomes.iter().filter(|(met, _)| met == outcome).map(|(_, count)| count).sum()
}

/// The records of `outcomes` lost with `cause`, at any custodian.
pub fn lost_with(outcomes: &[(Outcome, u64)], cause: LossCause) -> u64 {
    outcomes
        .iter()
        .filter(|(met, _)| matches!(met, Outcome::Lost { cause: c, .. } if *c == cause))
        .map(|(_, n)| n)
        .sum()
}

/// Whether any of `outcomes` is a silent loss (a part lost records without a cause).
pub fn any_silent(outcomes: &[(Outcome, u64)]) -> bool {
    outcomes.iter().any(|(met, _)| *met == Outcome::LostSilently)
}

/// Events of `kind` as (true seconds, detail).
pub fn events(world_events: &obsim::world::EventLog, kind: EventKind) -> Vec<(f64, String)> {
    world_events
        .kept()
        .into_iter()
        .filter(|event| event.kind == kind)
        .map(|event| (event.true_nanos as f64 / 1e9, event.detail))
        .collect()
}
