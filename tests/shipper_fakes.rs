//! Small stand-ins for the Railway Redis and Dash0, for the shipper and app tests, until
//! the real models land. They speak the real protocols (RESP via `obsim::proto::resp`,
//! OTLP/HTTP via hyper) so the parts under test talk to them exactly as to the real ones.
//! Included by the test files with `#[path = "shipper_fakes.rs"] mod fakes;`.
#![allow(dead_code)]

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use obsim::ledger::Ledger;
use obsim::proto::otlp::decode_logs_bytes;
use obsim::proto::resp::{Command, Decoder, Reply};
use obsim::record::{LogRecord, RecordId, Resource};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Notify;

// ---------------------------------------------------------------------------------------
// Fake Redis: lists and hashes, the commands the shipper and the app use (MULTI/EXEC too).

#[derive(Default)]
pub struct RedisState {
    pub lists: BTreeMap<Bytes, VecDeque<Bytes>>,
    pub hashes: BTreeMap<Bytes, BTreeMap<Bytes, Bytes>>,
    /// Command names in arrival order (upper case), for assertions on what was sent.
    pub commands: Vec<String>,
}

#[derive(Clone, Default)]
pub struct FakeRedis {
    pub state: Arc<Mutex<RedisState>>,
    pushed: Arc<Notify>,
}

fn text(bytes: &Bytes) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

impl FakeRedis {
    pub fn new() -> Self {
        FakeRedis::default()
    }

    pub fn rpush(&self, key: &str, value: impl Into<Bytes>) {
        let mut state = self.state.lock().unwrap();
        state.lists.entry(Bytes::copy_from_slice(key.as_bytes())).or_default().push_back(value.into());
        drop(state);
        self.pushed.notify_waiters();
    }

    pub fn list(&self, key: &str) -> Vec<Bytes> {
        let state = self.state.lock().unwrap();
        state.lists.get(key.as_bytes()).map(|l| l.iter().cloned().collect()).unwrap_or_default()
    }

    pub fn hash(&self, key: &str) -> BTreeMap<String, String> {
        let state = self.state.lock().unwrap();
        state
            .hashes
            .get(key.as_bytes())
            .map(|h| h.iter().map(|(k, v)| (text(k), text(v))).collect())
            .unwrap_or_default()
    }

    pub fn count(&self, name: &str) -> usize {
        self.state.lock().unwrap().commands.iter().filter(|c| c.as_str() == name).count()
    }

    /// Serves RESP on :6379 until the host stops.
    pub async fn serve(self) -> turmoil::Result {
        let listener = turmoil::net::TcpListener::bind(("0.0.0.0", 6379)).await?;
        loop {
            let (stream, _) = listener.accept().await?;
            let redis = self.clone();
            tokio::spawn(async move {
                let _ = redis.connection(stream).await;
            });
        }
    }

    async fn connection(&self, mut stream: turmoil::net::TcpStream) -> std::io::Result<()> {
        let mut decoder = Decoder::default();
        let mut buf = BytesMut::with_capacity(4096);
        // MULTI … EXEC: commands queued on this connection, run together at EXEC.
        let mut transaction: Option<Vec<Command>> = None;
        loop {
            if stream.read_buf(&mut buf).await? == 0 {
                return Ok(());
            }
            let mut out = BytesMut::new();
            while let Some(command) = decoder.decode(&mut buf).map_err(|e| std::io::Error::other(e.to_string()))? {
                let name = text(command.arg(0).unwrap()).to_ascii_uppercase();
                let reply = match (name.as_str(), transaction.as_mut()) {
                    ("MULTI", None) => {
                        transaction = Some(Vec::new());
                        Reply::ok()
                    }
                    ("EXEC", Some(_)) => {
                        let queued = transaction.take().unwrap_or_default();
                        let mut replies = Vec::with_capacity(queued.len());
                        for queued_command in &queued {
                            replies.push(self.execute(queued_command).await);
                        }
                        Reply::Array(replies)
                    }
                    (_, Some(queued)) => {
                        queued.push(command.clone());
                        Reply::queued()
                    }
                    _ => self.execute(&command).await,
                };
                reply.encode(&mut out);
            }
            stream.write_all(&out).await?;
        }
    }

    fn pop(lists: &mut BTreeMap<Bytes, VecDeque<Bytes>>, key: &Bytes, left: bool) -> Option<Bytes> {
        let list = lists.get_mut(key)?;
        let value = if left { list.pop_front() } else { list.pop_back() };
        if list.is_empty() {
            lists.remove(key);
        }
        value
    }

    fn lmove(&self, args: &[Bytes]) -> Option<Bytes> {
        let mut state = self.state.lock().unwrap();
        let from_left = args[2].eq_ignore_ascii_case(b"LEFT");
        let to_left = args[3].eq_ignore_ascii_case(b"LEFT");
        let value = Self::pop(&mut state.lists, &args[0], from_left)?;
        let dest = state.lists.entry(args[1].clone()).or_default();
        if to_left {
            dest.push_front(value.clone())
        } else {
            dest.push_back(value.clone())
        }
        drop(state);
        self.pushed.notify_waiters();
        Some(value)
    }

    /// BLMOVE: LMOVE, or wait for a push up to the timeout (0: forever), polling every 100 ms.
    async fn blmove(&self, args: &[Bytes]) -> Reply {
        let seconds: f64 = text(&args[4]).parse().unwrap();
        let deadline = Duration::from_secs_f64(seconds);
        let mut waited = Duration::ZERO;
        loop {
            let notified = self.pushed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(value) = self.lmove(args) {
                return Reply::bulk(value);
            }
            if seconds > 0.0 && waited >= deadline {
                return Reply::NullArray;
            }
            let step = Duration::from_millis(100);
            let _ = tokio::time::timeout(step, notified).await;
            waited += step;
        }
    }

    /// The list commands the app and the shipper send.
    fn list_command(&self, name: &str, args: &[Bytes]) -> Reply {
        match name {
            "RPUSH" | "LPUSH" => {
                let mut state = self.state.lock().unwrap();
                let list = state.lists.entry(args[0].clone()).or_default();
                for value in &args[1..] {
                    if name == "RPUSH" { list.push_back(value.clone()) } else { list.push_front(value.clone()) }
                }
                let len = list.len() as i64;
                drop(state);
                self.pushed.notify_waiters();
                Reply::integer(len)
            }
            "LREM" => {
                let mut state = self.state.lock().unwrap();
                let count: i64 = text(&args[1]).parse().unwrap();
                assert_eq!(count, 1, "the fake supports LREM count 1 only");
                let Some(list) = state.lists.get_mut(&args[0]) else { return Reply::integer(0) };
                let removed = match list.iter().position(|v| *v == args[2]) {
                    Some(index) => {
                        list.remove(index);
                        1
                    }
                    None => 0,
                };
                if list.is_empty() {
                    state.lists.remove(&args[0]);
                }
                Reply::integer(removed)
            }
            "LLEN" => {
                let state = self.state.lock().unwrap();
                Reply::integer(state.lists.get(&args[0]).map_or(0, |l| l.len() as i64))
            }
            "LRANGE" => {
                let state = self.state.lock().unwrap();
                Reply::bulks(
                    state.lists.get(&args[0]).map(|l| l.iter().cloned().collect::<Vec<_>>()).unwrap_or_default(),
                )
            }
            other => unreachable!("{other} is not a list command"),
        }
    }

    /// The hash commands the app sends.
    fn hash_command(&self, name: &str, args: &[Bytes]) -> Reply {
        match name {
            "HSET" => {
                let mut state = self.state.lock().unwrap();
                let hash = state.hashes.entry(args[0].clone()).or_default();
                let mut added = 0;
                for pair in args[1..].chunks(2) {
                    if hash.insert(pair[0].clone(), pair[1].clone()).is_none() {
                        added += 1;
                    }
                }
                Reply::integer(added)
            }
            "HSETNX" => {
                let mut state = self.state.lock().unwrap();
                let hash = state.hashes.entry(args[0].clone()).or_default();
                let set = !hash.contains_key(&args[1]);
                if set {
                    hash.insert(args[1].clone(), args[2].clone());
                }
                Reply::integer(i64::from(set))
            }
            "HDEL" => {
                let mut state = self.state.lock().unwrap();
                let hash = state.hashes.entry(args[0].clone()).or_default();
                let removed = args[1..].iter().filter(|field| hash.remove(*field).is_some()).count();
                Reply::integer(removed as i64)
            }
            "HGETALL" => {
                let state = self.state.lock().unwrap();
                let items = state
                    .hashes
                    .get(&args[0])
                    .map(|h| h.iter().flat_map(|(k, v)| [k.clone(), v.clone()]).collect::<Vec<_>>())
                    .unwrap_or_default();
                Reply::bulks(items)
            }
            "HGET" => {
                let state = self.state.lock().unwrap();
                Reply::bulk_or_null(state.hashes.get(&args[0]).and_then(|h| h.get(&args[1]).cloned()))
            }
            other => unreachable!("{other} is not a hash command"),
        }
    }

    async fn execute(&self, command: &Command) -> Reply {
        let name = text(command.arg(0).unwrap()).to_ascii_uppercase();
        self.state.lock().unwrap().commands.push(name.clone());
        let args = command.args();
        match name.as_str() {
            "PING" => Reply::pong(),
            "CLIENT" | "SELECT" => Reply::ok(),
            "LMOVE" => Reply::bulk_or_null(self.lmove(args)),
            "BLMOVE" => self.blmove(args).await,
            "RPUSH" | "LPUSH" | "LREM" | "LLEN" | "LRANGE" => self.list_command(&name, args),
            "HSET" | "HSETNX" | "HDEL" | "HGETALL" | "HGET" => self.hash_command(&name, args),
            "DEL" => {
                let mut state = self.state.lock().unwrap();
                let mut removed = 0;
                for key in args {
                    removed +=
                        i64::from(state.lists.remove(key).is_some()) + i64::from(state.hashes.remove(key).is_some());
                }
                Reply::integer(removed)
            }
            other => Reply::error(format!("ERR unknown command '{other}' (fake redis)")),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Fake Dash0: OTLP/HTTP POST /v1/logs on :4318, scripted statuses.

#[derive(Clone, Debug)]
pub struct Dash0Request {
    pub true_nanos: u64,
    pub status: u16,
    pub path: String,
    pub authorization: String,
    pub dataset: String,
    pub content_type: String,
    pub resources: Vec<Resource>,
    pub records: Vec<LogRecord>,
}

impl Dash0Request {
    pub fn ids(&self) -> Vec<RecordId> {
        self.records.iter().map(|r| r.id).collect()
    }
}

/// A scripted answer: status and Retry-After seconds.
pub type Scripted = (u16, Option<u64>);

#[derive(Clone)]
pub struct FakeDash0 {
    /// (status, Retry-After seconds) for the next requests; 200 once it runs out.
    pub script: Arc<Mutex<VecDeque<Scripted>>>,
    pub requests: Arc<Mutex<Vec<Dash0Request>>>,
    pub ledger: Ledger,
}

impl FakeDash0 {
    pub fn new(ledger: Ledger, script: impl IntoIterator<Item = (u16, Option<u64>)>) -> Self {
        FakeDash0 {
            script: Arc::new(Mutex::new(script.into_iter().collect())),
            requests: Arc::new(Mutex::new(Vec::new())),
            ledger,
        }
    }

    pub fn requests(&self) -> Vec<Dash0Request> {
        self.requests.lock().unwrap().clone()
    }

    pub fn delivered_records(&self) -> Vec<LogRecord> {
        self.requests().into_iter().filter(|r| (200..300).contains(&r.status)).flat_map(|r| r.records).collect()
    }

    pub async fn serve(self) -> turmoil::Result {
        let listener = turmoil::net::TcpListener::bind(("0.0.0.0", 4318)).await?;
        loop {
            let (stream, _) = listener.accept().await?;
            let dash0 = self.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request| {
                    let dash0 = dash0.clone();
                    async move { dash0.handle(request).await }
                });
                let _ =
                    hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
            });
        }
    }

    async fn handle(
        &self,
        request: http::Request<hyper::body::Incoming>,
    ) -> Result<http::Response<Full<Bytes>>, std::convert::Infallible> {
        let header = |name: &str| {
            request.headers().get(name).map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()).unwrap_or_default()
        };
        let (authorization, dataset, content_type) =
            (header("authorization"), header("dash0-dataset"), header("content-type"));
        let path = request.uri().path().to_string();
        let body = request.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
        let batches = decode_logs_bytes(&body).expect("the shipper sends valid OTLP logs");
        let (status, retry_after) = self.script.lock().unwrap().pop_front().unwrap_or((200, None));
        let true_nanos = obsim::world::true_elapsed_now().as_nanos() as u64;
        let resources = batches.iter().map(|b| b.resource.clone()).collect();
        let records: Vec<LogRecord> = batches.into_iter().flat_map(|b| b.records).collect();
        if (200..300).contains(&status) {
            let ids: Vec<RecordId> = records.iter().map(|r| r.id).collect();
            self.ledger.deliver(&ids, true_nanos);
        }
        self.requests.lock().unwrap().push(Dash0Request {
            true_nanos,
            status,
            path,
            authorization,
            dataset,
            content_type,
            resources,
            records,
        });
        let mut response = http::Response::builder().status(status).header("content-type", "application/x-protobuf");
        if let Some(seconds) = retry_after {
            response = response.header("retry-after", seconds.to_string());
        }
        Ok(response.body(Full::new(Bytes::new())).unwrap())
    }
}
