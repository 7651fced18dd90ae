//! The server: the turmoil TCP listener on 6379, one task per connection, pipelining,
//! blocking, the everysec fsync timer, and the AOF load at start.
//!
//! Why one mutex around the dataset: Redis executes commands one at a time; each command
//! (with the AOF append, the ledger update and serving woken waiters) runs under the lock
//! and never across an await, so the order of effects is the order of commands.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::world::{TcpListener, TcpStream};
use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::parts::PartCtx;
use crate::proto::resp::{Command, Decoder, Reply, RequestLimits};
use crate::vocab::ports;
use crate::vocab::{EventKind, Part};
use crate::world::HostCtx;

use crate::gauges::{Bound, GaugeHandle, GaugeSpec, Unit};

use super::aof::{AOF_PATH, Aof};
use super::blocking::Waiters;
use super::cmd::{Lookup, lookup};
use super::config::{Persistence, RedisConfig};
use super::control::RedisControl;
use super::custody::{Custody, ValueCustody};
use super::db::{Db, Outcome, Session};

/// The appendfsync everysec period.
pub(crate) const EVERYSEC_INTERVAL: Duration = Duration::from_secs(1);
/// Bytes read per socket read (Redis's `PROTO_IOBUF_LEN`, 16 KiB).
const READ_BYTES: usize = 16 * 1024;
/// The gauge's name: `used_memory`, against `maxmemory`.
pub(crate) const GAUGE_USED_MEMORY: &str = "used_memory_bytes";

/// Everything commands touch, behind one lock.
struct Shared {
    db: Db,
    waiters: Waiters,
    aof: Option<Aof>,
    custody: Custody,
    host: HostCtx,
    clients_count: u32,
    /// The runtime `maxmemory` override and the generation of it last applied.
    control: RedisControl,
    control_generation_applied: u64,
    configured_maxmemory_bytes: u64,
    /// `used_memory` against `maxmemory`, registered once a `maxmemory` above 0 is in force
    /// (without a limit there is no bound to judge).
    memory_gauge: Option<GaugeHandle>,
}

impl Shared {
    /// Reports `used_memory` after `command` (or a change of `maxmemory`, `None`) moved it
    /// from `before_bytes`. A growth by a `denyoom` command is an admission, judged by the
    /// `bounds` check the way Redis's `processCommand` decides: refused while
    /// `used_memory > maxmemory`, else executed whole (it may carry memory past the limit by its own
    /// size). Any other change — a non-denyoom command (EXEC runs what was admitted when
    /// queued), a drain, a new limit — is a level.
    fn report_memory(&mut self, command: Option<&Command>, before_bytes: u64) {
        let limit = self.db.config().maxmemory_bytes;
        if self.memory_gauge.is_none() {
            if limit == 0 {
                return;
            }
            let spec = GaugeSpec {
                part: Part::Redis,
                limit_name: "maxmemory",
                unit: Unit::Bytes,
                bound: Bound::Admission { admits_at_limit: true, overshoot_limit: None },
                limit,
            };
            self.memory_gauge = Some(self.control.gauge(self.host.name(), GAUGE_USED_MEMORY, spec));
        }
        let after_bytes = self.db.used_memory();
        let gauge = self.memory_gauge.as_ref().expect("registered above");
        let denyoom = command.is_some_and(|command| matches!(lookup(command), Lookup::Found(spec) if spec.denyoom()));
        if denyoom {
            gauge.admit(before_bytes, after_bytes, limit);
        } else {
            gauge.level(after_bytes, limit);
        }
    }

    /// Before each command: apply a changed `maxmemory` override, as `CONFIG SET` would.
    fn apply_control(&mut self) {
        let (maxmemory_bytes, generation) = self.control.maxmemory_bytes();
        if generation == self.control_generation_applied {
            return;
        }
        self.control_generation_applied = generation;
        let bytes = maxmemory_bytes.unwrap_or(self.configured_maxmemory_bytes);
        if bytes != self.db.config().maxmemory_bytes {
            self.db.set_maxmemory_bytes(bytes);
            self.host.record(EventKind::RedisMaxmemory, format!("{bytes} bytes (used {})", self.db.used_memory()));
            let used = self.db.used_memory();
            self.report_memory(None, used);
        }
    }

    /// After each command: serve woken waiters, append to the AOF, tell the ledger.
    fn after_command(&mut self) {
        self.waiters.serve_ready(&mut self.db);
        let effects = self.db.take_effects();
        let mut durable = false;
        if let Some(aof) = &mut self.aof {
            match aof.append(&effects.propagate) {
                Ok(()) => durable = aof.is_always(),
                Err(full) => {
                    self.host.record(EventKind::RedisAofWriteError, full.to_string());
                    self.db.set_aof_write_error(Some("No space left on device".to_string()));
                }
            }
        }
        self.custody.stored(&effects.stored, durable);
        self.custody.removed(&effects.removed);
    }
}

type State = Arc<Mutex<Shared>>;

fn lock(state: &State) -> MutexGuard<'_, Shared> {
    state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Runs a Redis server on this host until the host stops: loads the AOF (if persistence
/// is on), then serves clients on port 6379. `custody` tells which log records a stored
/// value carries (pass `LogChunk::record_ids`).
pub async fn run(ctx: PartCtx, config: RedisConfig, custody: ValueCustody) -> turmoil::Result {
    run_with_control(ctx, config, custody, RedisControl::new()).await
}

/// The append-only file at start: none (and any old file removed) under `appendonly no`;
/// otherwise loaded into `db` (recorded) and opened for appending.
fn open_aof(host: &HostCtx, config: &RedisConfig, db: &mut Db) -> Option<Aof> {
    match config.persistence {
        Persistence::None => {
            // `appendonly no`: nothing survives a restart (RDB snapshots are not modelled).
            host.disk().remove(AOF_PATH);
            None
        }
        persistence => {
            let report = Aof::load(host.disk(), db);
            host.record(
                EventKind::RedisAofLoad,
                format!(
                    "{} commands from {} bytes, truncated tail {} bytes, {} keys",
                    report.commands_count,
                    report.file_bytes,
                    report.truncated_bytes,
                    db.keys_count(0)
                ),
            );
            Some(Aof::open(host.disk().clone(), persistence))
        }
    }
}

/// `appendfsync everysec`: fsyncs the AOF once a second; what it synced becomes durable.
async fn fsync_everysec(state: State) {
    let mut interval = tokio::time::interval(EVERYSEC_INTERVAL);
    loop {
        interval.tick().await;
        let mut shared = lock(&state);
        let Shared { aof, custody, .. } = &mut *shared;
        if aof.as_mut().expect("everysec has an AOF").fsync() {
            custody.synced();
        }
    }
}

/// `run`, with `control` able to override `maxmemory` while the server runs (faults).
pub async fn run_with_control(
    ctx: PartCtx,
    config: RedisConfig,
    custody: ValueCustody,
    control: RedisControl,
) -> turmoil::Result {
    let host = ctx.host.clone();
    let mut db = Db::new(config.clone());
    let aof = open_aof(&host, &config, &mut db);
    db.track_values(true);
    let custody = Custody::new(
        ctx.ledger.clone(),
        ctx.custodian(Part::Redis),
        custody,
        config.persistence == Persistence::AofEverysec,
    );
    let state: State = Arc::new(Mutex::new(Shared {
        db,
        waiters: Waiters::default(),
        aof,
        custody,
        host: host.clone(),
        clients_count: 0,
        control,
        control_generation_applied: 0,
        configured_maxmemory_bytes: config.maxmemory_bytes,
        memory_gauge: None,
    }));
    {
        let mut shared = lock(&state);
        shared.apply_control();
        // What the AOF brought back (or nothing): this incarnation's level.
        let used = shared.db.used_memory();
        shared.report_memory(None, used);
    }
    if config.persistence == Persistence::AofEverysec {
        crate::world::spawn(fsync_everysec(Arc::clone(&state)));
    }
    let listener = TcpListener::bind(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), ports::REDIS)).await?;
    host.record(
        EventKind::RedisListen,
        format!("port {} persistence {:?} maxmemory {}", ports::REDIS, config.persistence, config.maxmemory_bytes),
    );
    loop {
        let (mut stream, peer) = listener.accept().await?;
        let admitted = {
            let mut shared = lock(&state);
            let admitted = shared.clients_count < config.maxclients;
            if admitted {
                shared.clients_count += 1;
            }
            admitted
        };
        if !admitted {
            host.record(EventKind::RedisRefuse, format!("{peer}: maxclients {}", config.maxclients));
            let _ = stream.write_all(b"-ERR max number of clients reached\r\n").await;
            continue;
        }
        let state = Arc::clone(&state);
        let config = config.clone();
        crate::world::spawn(async move {
            let session = lock(&state).db.new_session();
            session_host(&state).record(EventKind::RedisConnect, format!("{peer} client {}", session.id));
            let reason = serve(&state, &mut stream, session, &config).await;
            let mut shared = lock(&state);
            shared.clients_count -= 1;
            shared.host.record(EventKind::RedisDisconnect, format!("{peer}: {reason}"));
        });
    }
}

fn session_host(state: &State) -> HostCtx {
    lock(state).host.clone()
}

/// One client's loop: read, decode every whole request (pipelining), execute, answer all
/// in one write. Returns why the connection ended.
async fn serve(state: &State, stream: &mut TcpStream, mut session: Session, config: &RedisConfig) -> String {
    let mut decoder = Decoder::new(RequestLimits::default());
    decoder.set_auth_required(!session.authenticated);
    let mut input = BytesMut::with_capacity(READ_BYTES);
    let mut output = BytesMut::new();
    let idle_timeout =
        (config.client_idle_timeout_secs > 0).then(|| Duration::from_secs(config.client_idle_timeout_secs));
    loop {
        let mut close_reason = None;
        loop {
            let command = match decoder.decode(&mut input) {
                Ok(Some(command)) => command,
                Ok(None) => break,
                Err(error) => {
                    if let Some(reply) = error.reply() {
                        reply.encode(&mut output);
                    }
                    close_reason = Some(format!("protocol error: {error}"));
                    break;
                }
            };
            let outcome = execute(state, &mut session, &command);
            match outcome {
                Outcome::Reply(reply) => reply.encode(&mut output),
                Outcome::Block { db_index, key, timeout_ms } => {
                    // Answer what came before, then wait.
                    if !output.is_empty() {
                        if stream.write_all(&output).await.is_err() {
                            return "write failed".to_string();
                        }
                        output.clear();
                    }
                    let (reply, returned) =
                        match wait(state, stream, &mut input, session, db_index, key, command, timeout_ms).await {
                            Ok(served) => served,
                            Err(reason) => return reason,
                        };
                    session = returned;
                    reply.encode(&mut output);
                }
            }
            decoder.set_auth_required(!session.authenticated);
            if session.closing {
                close_reason = Some("QUIT".to_string());
                break;
            }
        }
        if !output.is_empty() {
            if stream.write_all(&output).await.is_err() {
                return "write failed".to_string();
            }
            output.clear();
        }
        if let Some(reason) = close_reason {
            return reason;
        }
        if let Err(reason) = read_more(stream, &mut input, idle_timeout).await {
            return reason;
        }
    }
}

/// Executes one command under the server lock: applies a pending `maxmemory` override
/// first, then the AOF and custody bookkeeping, and reports memory if the command moved it.
fn execute(state: &State, session: &mut Session, command: &Command) -> Outcome {
    let mut shared = lock(state);
    shared.apply_control();
    let before_bytes = shared.db.used_memory();
    let outcome = shared.db.execute_for(session, command);
    shared.after_command();
    if shared.db.used_memory() != before_bytes {
        shared.report_memory(Some(command), before_bytes);
    }
    outcome
}

/// Reads more request bytes into `input`, within the idle timeout if one is set. `Err`
/// says why the connection ends (closed, failed, idle).
async fn read_more(stream: &mut TcpStream, input: &mut BytesMut, idle_timeout: Option<Duration>) -> Result<(), String> {
    let read = match idle_timeout {
        Some(limit) => match tokio::time::timeout(limit, stream.read_buf(input)).await {
            Ok(read) => read,
            Err(_) => return Err(format!("idle for {}s (timeout)", limit.as_secs())),
        },
        None => stream.read_buf(input).await,
    };
    match read {
        Ok(0) => Err("closed by client".to_string()),
        Ok(_) => Ok(()),
        Err(error) => Err(format!("read failed: {error}")),
    }
}

/// Waits for a blocked command's reply, its timeout (`*-1`) or the client's disconnect.
/// Bytes the client sends meanwhile are kept for after (Redis does not run a blocked
/// client's next commands).
#[allow(clippy::too_many_arguments)]
async fn wait(
    state: &State,
    stream: &mut TcpStream,
    input: &mut BytesMut,
    session: Session,
    db_index: usize,
    key: bytes::Bytes,
    command: crate::proto::resp::Command,
    timeout_ms: u64,
) -> Result<(Reply, Session), String> {
    let (ticket, mut receiver) = {
        let mut shared = lock(state);
        let Shared { db, waiters, .. } = &mut *shared;
        waiters.block(db, db_index, key, command, session)
    };
    // 0 = wait forever: a year stands in for forever (a run lasts minutes).
    let wait_for =
        if timeout_ms > 0 { Duration::from_millis(timeout_ms) } else { Duration::from_secs(365 * 24 * 3600) };
    let timeout = tokio::time::sleep(wait_for);
    tokio::pin!(timeout);
    loop {
        tokio::select! {
            biased;
            served = &mut receiver => {
                return served.map_err(|_| "the server dropped a blocked client".to_string());
            }
            _ = &mut timeout => {
                let mut shared = lock(state);
                let Shared { db, waiters, .. } = &mut *shared;
                return match waiters.cancel(db, &ticket) {
                    Some(session) => Ok((Reply::NullArray, session)),
                    // Served in the same instant: the reply is in the channel.
                    None => receiver.try_recv().map_err(|_| "lost a served reply".to_string()),
                };
            }
            read = stream.read_buf(input) => {
                if matches!(read, Ok(0) | Err(_)) {
                    let mut shared = lock(state);
                    let Shared { db, waiters, .. } = &mut *shared;
                    waiters.cancel(db, &ticket);
                    return Err("closed by client while blocked".to_string());
                }
            }
        }
    }
}
