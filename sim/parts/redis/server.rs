//! The server: the turmoil TCP listener on 6379, one task per connection, pipelining,
//! blocking, the everysec fsync timer, the cron (save points, SIGTERM), and loading the AOF
//! or the snapshot at start.
//!
//! Why one mutex around the dataset: Redis executes commands one at a time; each command
//! (with the AOF append, the ledger update and serving woken waiters) runs under the lock
//! and never across an await, so the order of effects is the order of commands.
//!
//! SIGTERM (FIDELITY.md "Redis"): the signal only sets a flag; the next cron (every 100 ms)
//! shuts down: it fsyncs the AOF, SAVEs the dataset when save points are configured (the
//! main thread is busy for the save's duration: no command runs, no client is answered),
//! then exits, closing every connection. A failed save cancels the exit, as in Redis.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::world::{TcpListener, TcpStream};
use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

use crate::parts::PartCtx;
use crate::proto::resp::{Command, Decoder, Reply, RequestLimits};
use crate::vocab::ports;
use crate::vocab::{EventKind, Part};
use crate::world::HostCtx;

use crate::gauges::{Bound, GaugeHandle, GaugeSpec, Unit};
use crate::ledger::Durability;

use super::aof::{AOF_PATH, Aof};
use super::blocking::Waiters;
use super::cmd::{Lookup, lookup};
use super::config::{Persistence, RedisConfig, SavePoint};
use super::control::RedisControl;
use super::custody::{Custody, ValueCustody};
use super::db::{Db, Outcome, Session};
use super::rdb;

/// The appendfsync everysec period.
pub(crate) const EVERYSEC_INTERVAL: Duration = Duration::from_secs(1);
/// Bytes read per socket read (Redis's `PROTO_IOBUF_LEN`, 16 KiB).
const READ_BYTES: usize = 16 * 1024;
/// The gauge's name: `used_memory`, against `maxmemory`.
pub(crate) const GAUGE_USED_MEMORY: &str = "used_memory_bytes";
/// Redis's `serverCron` period at the default `hz 10`: save points and a received SIGTERM
/// are acted on at this pace.
pub(crate) const CRON_PERIOD: Duration = Duration::from_millis(100);
/// `CONFIG_BGSAVE_RETRY_DELAY`: after a failed background save, wait this long to retry.
const BGSAVE_RETRY_DELAY_SECS: u64 = 5;
/// How fast SIGTERM's synchronous SAVE writes the dataset (bytes of the snapshot per
/// second): an assumption, FIDELITY.md "Redis" (UNKNOWN row).
pub const SAVE_BYTES_PER_SEC: u64 = 100_000_000;
/// Yields the exit waits at most for the connections to close (each closes at its first poll).
const EXIT_YIELDS_LIMIT: u32 = 1_000;

/// Where the process is in its life: serving, saving before exit (nothing runs), exited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Running,
    Saving,
    Exited,
}

/// The snapshot book: Redis's `lastsave`, `lastbgsave_status`, `lastbgsave_try`.
struct Saves {
    points: Vec<SavePoint>,
    /// Host time (whole seconds) of the last successful save, or the start.
    last_secs: u64,
    last_ok: bool,
    last_try_secs: u64,
}

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
    /// How safe a stored value is when its reply goes out (FIDELITY.md "Redis").
    stored_durability: Durability,
    saves: Saves,
    phase: watch::Sender<Phase>,
    /// SIGTERM was acted on (once: a failed save cancels the shutdown for good).
    sigterm_handled: bool,
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
        let mut durability = self.stored_durability;
        if let Some(aof) = &mut self.aof
            && let Err(full) = aof.append(&effects.propagate)
        {
            self.host.record(EventKind::RedisAofWriteError, full.to_string());
            self.db.set_aof_write_error(Some("No space left on device".to_string()));
            durability = Durability::Volatile;
        }
        self.custody.stored(&effects.stored, durability);
        self.custody.removed(&effects.removed);
    }

    /// The cron's save points (`serverCron`): a background save when a point's changes
    /// happened and more than its seconds passed since the last save (and, after a failed
    /// save, the retry delay passed).
    fn save_if_due(&mut self) {
        if self.saves.points.is_empty() {
            return;
        }
        let now_secs = self.host.clock().now_unix_nanos() / 1_000_000_000;
        let saves = &self.saves;
        let may_try = saves.last_ok || now_secs.saturating_sub(saves.last_try_secs) > BGSAVE_RETRY_DELAY_SECS;
        let dirty = self.db.dirty();
        let due = saves
            .points
            .iter()
            .find(|point| dirty >= point.changes && now_secs.saturating_sub(saves.last_secs) > point.after_secs);
        if let (Some(&point), true) = (due, may_try) {
            self.bgsave(point, now_secs);
        }
    }

    /// A background save, modelled as instant: the snapshot of this instant is written,
    /// fsynced and renamed into place; every value in it is durable now.
    fn bgsave(&mut self, point: SavePoint, now_secs: u64) {
        let changes = self.db.dirty();
        let snapshot = rdb::snapshot(&self.db);
        self.saves.last_try_secs = now_secs;
        if let Err(full) = rdb::write(self.host.disk(), &snapshot) {
            self.saves.last_ok = false;
            self.host.record(EventKind::RedisSaveError, format!("background save: {full}"));
            return;
        }
        self.db.saved(changes);
        self.saves.last_secs = now_secs;
        self.saves.last_ok = true;
        self.custody.snapshot(&self.db.list_values());
        self.host.record(
            EventKind::RedisBgsave,
            format!(
                "{} changes in {} seconds: {changes} changes saved, {} keys, {} bytes",
                point.changes,
                point.after_secs,
                snapshot.keys_count,
                snapshot.bytes.len()
            ),
        );
    }

    /// SIGTERM's first step (`finishShutdown`): the AOF flushed and fsynced; then the
    /// snapshot to save, if save points are configured. Stops every client.
    fn begin_shutdown(&mut self) -> Option<rdb::Snapshot> {
        self.sigterm_handled = true;
        self.phase.send_replace(Phase::Saving);
        if let Some(aof) = &mut self.aof
            && aof.fsync()
        {
            self.custody.synced();
        }
        let snapshot = (!self.saves.points.is_empty()).then(|| rdb::snapshot(&self.db));
        let detail = match &snapshot {
            Some(snapshot) => format!(
                "SIGTERM: saving the final snapshot ({} keys, {} bytes, {} ms)",
                snapshot.keys_count,
                snapshot.bytes.len(),
                save_duration(snapshot.bytes.len()).as_millis()
            ),
            None if self.aof.is_some() => "SIGTERM: AOF fsynced, exiting".to_string(),
            None => "SIGTERM: nothing to persist, exiting".to_string(),
        };
        self.host.record(EventKind::RedisShutdown, detail);
        snapshot
    }

    /// SIGTERM's SAVE finished writing: the snapshot replaces `dump.rdb` and the process
    /// exits; on a write error Redis logs "can't exit" and goes on serving.
    fn finish_shutdown(&mut self, snapshot: Option<&rdb::Snapshot>) {
        if let Some(snapshot) = snapshot {
            if let Err(full) = rdb::write(self.host.disk(), snapshot) {
                self.host.record(EventKind::RedisSaveError, format!("SIGTERM's save, can't exit: {full}"));
                self.phase.send_replace(Phase::Running);
                return;
            }
            let changes = self.db.dirty();
            self.db.saved(changes);
            self.custody.snapshot(&self.db.list_values());
        }
        self.phase.send_replace(Phase::Exited);
    }
}

/// How long SIGTERM's synchronous SAVE of `bytes` takes at [`SAVE_BYTES_PER_SEC`].
pub(crate) fn save_duration(bytes: usize) -> Duration {
    let nanos = (bytes as u128 * 1_000_000_000) / u128::from(SAVE_BYTES_PER_SEC);
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
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

/// What the disk holds at start, loaded into `db` (recorded): the AOF under `appendonly
/// yes` (opened for appending), else the snapshot under save points; nothing (and any old
/// AOF removed) under `none`. Returns the AOF and how safe the loaded values are.
fn open_persistence(host: &HostCtx, config: &RedisConfig, db: &mut Db) -> turmoil::Result<(Option<Aof>, Durability)> {
    let opened = match config.persistence {
        Persistence::None => {
            host.disk().remove(AOF_PATH);
            (None, Durability::Volatile)
        }
        Persistence::Rdb => {
            let report = rdb::load(host.disk(), db)?;
            host.record(
                EventKind::RedisRdbLoad,
                format!("{} keys from {} bytes", report.keys_count, report.file_bytes),
            );
            (None, Durability::Durable)
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
            let mut aof = Aof::open(host.disk().clone(), persistence);
            // What a killed process wrote may not be fsynced yet: the next fsync covers it.
            let durability = if aof.is_always() { Durability::Durable } else { Durability::Written };
            if durability == Durability::Written && report.file_bytes > 0 {
                aof.assume_unsynced();
            }
            (Some(aof), durability)
        }
    };
    // What was loaded is on disk: it counts as saved (`server.dirty` starts at 0).
    let loaded = db.dirty();
    db.saved(loaded);
    Ok(opened)
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

/// Redis's `serverCron`, the parts the model needs: save points, and SIGTERM's shutdown.
async fn cron(state: State) {
    let mut interval = tokio::time::interval(CRON_PERIOD);
    loop {
        interval.tick().await;
        let sigterm = {
            let shared = lock(&state);
            shared.host.sigterm().is_received() && !shared.sigterm_handled
        };
        if sigterm {
            shutdown(&state).await;
            continue;
        }
        lock(&state).save_if_due();
    }
}

/// SIGTERM: fsync the AOF, SAVE (the main thread busy for the save's duration), exit.
async fn shutdown(state: &State) {
    let snapshot = lock(state).begin_shutdown();
    if let Some(snapshot) = &snapshot {
        tokio::time::sleep(save_duration(snapshot.bytes.len())).await;
    }
    lock(state).finish_shutdown(snapshot.as_ref());
}

/// The shared state at start: the dataset loaded, custody of what it holds taken again.
fn start_state(
    ctx: &PartCtx,
    config: &RedisConfig,
    custody: ValueCustody,
    control: RedisControl,
) -> turmoil::Result<State> {
    let host = ctx.host.clone();
    let mut db = Db::new(config.clone());
    let (aof, loaded_durability) = open_persistence(&host, config, &mut db)?;
    db.track_values(true);
    let mut custody = Custody::new(ctx.ledger.clone(), ctx.custodian(Part::Redis), custody);
    // A value consumed after the snapshot (or the last fsync) is back: held again.
    custody.stored(&db.list_values(), loaded_durability);
    let stored_durability = match config.persistence {
        Persistence::AofAlways => Durability::Durable,
        Persistence::AofEverysec => Durability::Written,
        Persistence::Rdb | Persistence::None => Durability::Volatile,
    };
    let now_secs = host.clock().now_unix_nanos() / 1_000_000_000;
    let saves =
        Saves { points: config.save_points_in_force().to_vec(), last_secs: now_secs, last_ok: true, last_try_secs: 0 };
    let state: State = Arc::new(Mutex::new(Shared {
        db,
        waiters: Waiters::default(),
        aof,
        custody,
        host,
        clients_count: 0,
        control,
        control_generation_applied: 0,
        configured_maxmemory_bytes: config.maxmemory_bytes,
        memory_gauge: None,
        stored_durability,
        saves,
        phase: watch::channel(Phase::Running).0,
        sigterm_handled: false,
    }));
    {
        let mut shared = lock(&state);
        shared.apply_control();
        // What the disk brought back (or nothing): this incarnation's level.
        let used = shared.db.used_memory();
        shared.report_memory(None, used);
    }
    Ok(state)
}

/// `run`, with `control` able to override `maxmemory` while the server runs (faults).
pub async fn run_with_control(
    ctx: PartCtx,
    config: RedisConfig,
    custody: ValueCustody,
    control: RedisControl,
) -> turmoil::Result {
    let host = ctx.host.clone();
    let state = start_state(&ctx, &config, custody, control)?;
    if config.persistence == Persistence::AofEverysec {
        crate::world::spawn(fsync_everysec(Arc::clone(&state)));
    }
    crate::world::spawn(cron(Arc::clone(&state)));
    let listener = TcpListener::bind(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), ports::REDIS)).await?;
    host.record(EventKind::RedisListen, listen_detail(&config));
    let mut phase = lock(&state).phase.subscribe();
    loop {
        let accepted = tokio::select! {
            biased;
            () = phase_leaves(&mut phase, Phase::Running) => {
                // Saving: no connection is accepted until the exit (or a failed save).
                phase_leaves(&mut phase, Phase::Saving).await;
                if *phase.borrow() == Phase::Exited {
                    break;
                }
                continue;
            }
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = accepted?;
        accept(&state, &config, stream, peer).await;
    }
    exit(&state).await;
    Ok(())
}

/// RedisListen's text: the port, persistence (with the save points under `rdb`), maxmemory.
fn listen_detail(config: &RedisConfig) -> String {
    let save = if config.persistence == Persistence::Rdb {
        let points: Vec<String> = config
            .save_points_in_force()
            .iter()
            .map(|point| format!("{} {}", point.after_secs, point.changes))
            .collect();
        format!(" save {}", points.join(" "))
    } else {
        String::new()
    };
    format!("port {} persistence {:?}{save} maxmemory {}", ports::REDIS, config.persistence, config.maxmemory_bytes)
}

/// Resolves once the phase is no longer `from` (at once if it is not).
async fn phase_leaves(phase: &mut watch::Receiver<Phase>, from: Phase) {
    // The sender lives in the shared state as long as any task: it is never dropped here.
    let _ = phase.wait_for(|now| *now != from).await;
}

/// The process exits: every connection closes (their tasks end at their next poll).
async fn exit(state: &State) {
    for _ in 0..EXIT_YIELDS_LIMIT {
        if lock(state).clients_count == 0 {
            break;
        }
        tokio::task::yield_now().await;
    }
    let shared = lock(state);
    shared.host.record(EventKind::RedisExit, format!("{} clients left open", shared.clients_count));
}

/// A new connection: refused at `maxclients`, else served on its own task.
async fn accept(state: &State, config: &RedisConfig, mut stream: TcpStream, peer: SocketAddr) {
    let admitted = {
        let mut shared = lock(state);
        let admitted = shared.clients_count < config.maxclients;
        if admitted {
            shared.clients_count += 1;
        }
        admitted
    };
    if !admitted {
        session_host(state).record(EventKind::RedisRefuse, format!("{peer}: maxclients {}", config.maxclients));
        let _ = stream.write_all(b"-ERR max number of clients reached\r\n").await;
        return;
    }
    if let Some(keepalive) = config.client_keepalive() {
        stream.set_keepalive(keepalive);
    }
    let state = Arc::clone(state);
    let config = config.clone();
    crate::world::spawn(async move {
        let (session, phase) = {
            let mut shared = lock(&state);
            (shared.db.new_session(), shared.phase.subscribe())
        };
        session_host(&state).record(EventKind::RedisConnect, format!("{peer} client {}", session.id));
        let reason = serve_until_exit(&state, &mut stream, session, &config, phase).await;
        let mut shared = lock(&state);
        shared.clients_count -= 1;
        shared.host.record(EventKind::RedisDisconnect, format!("{peer}: {reason}"));
    });
}

/// Serves a client until it leaves or the process exits. While SIGTERM's save runs the
/// client is not served (Redis's one thread is saving); if the save fails, serving resumes.
async fn serve_until_exit(
    state: &State,
    stream: &mut TcpStream,
    session: Session,
    config: &RedisConfig,
    mut phase: watch::Receiver<Phase>,
) -> String {
    let serving = serve(state, stream, session, config);
    tokio::pin!(serving);
    loop {
        tokio::select! {
            biased;
            () = phase_leaves(&mut phase, Phase::Running) => {}
            reason = &mut serving => return reason,
        }
        phase_leaves(&mut phase, Phase::Saving).await;
        if *phase.borrow() == Phase::Exited {
            return "the server exited (SIGTERM)".to_string();
        }
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
