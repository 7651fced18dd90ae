//! A dev host POSTing JSON to the aggregator's in_http, and the Railway side (a fake
//! Redis and the aggregator) for the aggregator's world tests.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use obsim::ledger::{Durability, Ledger};
use obsim::parts::PartCtx;
use obsim::parts::aggregator::{self, AggregatorConfig};
use obsim::record::{JobId, LogRecord, RecordId, Severity, SpanId, TraceId};
use obsim::vocab::{Part, Signal};
use obsim::vocab::{hosts, ports};
use obsim::world::{World, true_elapsed_now};
use turmoil::net::TcpStream;

use super::{FakeRedis, part_ctx};

pub const DEV: &str = "dev-1";

/// POSTs `body` to in_http over turmoil with hyper's client; returns status and body text.
pub async fn post(path: &str, content_type: &str, body: Vec<u8>) -> Result<(u16, String), Box<dyn std::error::Error>> {
    let stream = TcpStream::connect((hosts::AGGREGATOR, ports::AGGREGATOR_HTTP)).await?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    let request = http::Request::post(path)
        .header(http::header::HOST, hosts::AGGREGATOR)
        .header(http::header::CONTENT_TYPE, content_type)
        .body(Full::new(Bytes::from(body)))?;
    let response = sender.send_request(request).await?;
    let status = response.status().as_u16();
    let text = String::from_utf8_lossy(&response.into_body().collect().await?.to_bytes()).into_owned();
    Ok((status, text))
}

/// `count` new records of a dev host's source, emitted and held by its app.
pub fn dev_records(
    ctx: &PartCtx,
    source: obsim::record::SourceId,
    count: u64,
    rng: &mut impl rand::RngCore,
) -> Vec<LogRecord> {
    let first = ctx.ledger.emit(source, count, true_elapsed_now().as_nanos() as u64);
    let now = ctx.host.clock().now_unix_nanos();
    let records: Vec<LogRecord> = (first..first + count)
        .map(|seq| LogRecord {
            time_unix_nano: now,
            observed_time_unix_nano: now,
            severity: Severity::Warn,
            body: format!("dev message {seq}"),
            trace_id: TraceId::random(rng),
            span_id: SpanId::random(rng),
            job_id: JobId::random(rng),
            machine_id: None,
            worker_id: None,
            id: RecordId::new(source, seq),
            attributes: Default::default(),
        })
        .collect();
    let ids: Vec<RecordId> = records.iter().map(|record| record.id).collect();
    ctx.ledger.hold(&ctx.custodian(Part::App), &ids, Durability::Volatile);
    records
}

pub type Replies = Arc<Mutex<Vec<(u16, String)>>>;

/// A dev host that POSTs `posts` batches of `per_post` records, one a second, and then the
/// given raw bodies; on 200 its app hands custody on. Every reply is kept.
pub fn add_dev_host(
    world: &mut World<'_>,
    ledger: &Ledger,
    posts: u64,
    per_post: u64,
    raw: Vec<(String, Vec<u8>)>,
) -> Replies {
    let replies: Replies = Arc::default();
    let kept = Arc::clone(&replies);
    let ledger = ledger.clone();
    world.host(DEV, move |host| {
        let ctx = part_ctx(host, &ledger);
        let replies = Arc::clone(&kept);
        let raw = raw.clone();
        async move {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let source = ctx.ledger.register_source("dev-1/app", Signal::Log);
            let mut rng = ctx.host.rng("test/dev");
            for _ in 0..posts {
                let records = dev_records(&ctx, source, per_post, &mut rng);
                let ids: Vec<RecordId> = records.iter().map(|record| record.id).collect();
                let reply = post("/dev.app", "application/json", serde_json::to_vec(&records)?).await?;
                if reply.0 == 200 {
                    ctx.ledger.release(&ctx.custodian(Part::App), &ids);
                }
                replies.lock().unwrap().push(reply);
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            for (content_type, body) in raw {
                let reply = post("/dev.app", &content_type, body).await?;
                replies.lock().unwrap().push(reply);
            }
            Ok(())
        }
    });
    replies
}

/// Redis (fake) and the aggregator running `config` on their Railway hosts.
pub fn railway(world: &mut World<'_>, ledger: &Ledger, config: AggregatorConfig) -> FakeRedis {
    let redis = FakeRedis::new(ledger);
    let serve = redis.clone();
    world.host(hosts::REDIS, move |_| serve.clone().serve());
    let ledger = ledger.clone();
    world.host(hosts::AGGREGATOR, move |host| aggregator::run(part_ctx(host, &ledger), config.clone()));
    redis
}
