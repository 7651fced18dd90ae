//! The pure, synchronous command executor: Redis 7.0's `processCommand` checks (existence,
//! arity, auth, OOM, MISCONF, MULTI queueing) in Redis's order, then the command.
//!
//! Why synchronous and pure: the executor is the model's semantics, tested directly and
//! against a real `redis-server` byte for byte; the network, blocking and the AOF wrap it
//! (see `server.rs`, `blocking.rs`, `aof.rs`). It reads no clock: no command the pipeline sends depends on time (keys never expire).

use std::collections::BTreeMap;

use bytes::Bytes;

use crate::proto::resp::{Command, Framing, Reply, errors};

use super::cmd::{self, Lookup, Spec};
use super::config::RedisConfig;
use super::keyspace::Keyspace;
use super::memory::BASELINE_BYTES;

/// A client's state as the executor sees it (Redis's `client`).
#[derive(Clone, Debug)]
pub struct Session {
    /// Redis's client id (CLIENT ID), unique per server incarnation.
    pub id: u64,
    /// The selected database.
    pub(crate) db_index: usize,
    /// Whether AUTH succeeded (or no password is required).
    pub authenticated: bool,
    /// CLIENT SETNAME.
    pub name: Option<Bytes>,
    /// Queued commands while in MULTI.
    multi: Option<Vec<Command>>,
    /// A command was refused while queueing: EXEC will abort.
    multi_dirty: bool,
    /// QUIT was received: close after the reply.
    pub(crate) closing: bool,
}

impl Session {
    /// A new client: db 0, authenticated unless `requirepass` is set.
    pub fn new(id: u64, config: &RedisConfig) -> Session {
        Session {
            id,
            db_index: 0,
            authenticated: config.requirepass.is_none(),
            name: None,
            multi: None,
            multi_dirty: false,
            closing: false,
        }
    }

    /// Whether the client is inside MULTI.
    pub(crate) fn in_multi(&self) -> bool {
        self.multi.is_some()
    }
}

/// What executing a command asks of the connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Send this reply.
    Reply(Reply),
    /// Block the client on `key` of database `db_index` until a push wakes it (the command
    /// is retried then) or `timeout_ms` passes (0 = forever); a timeout replies `*-1`.
    Block { db_index: usize, key: Bytes, timeout_ms: u64 },
}

/// What a command changed, for the AOF and the ledger; drained by the server after each
/// command.
#[derive(Clone, Debug, Default)]
pub struct Effects {
    /// Values newly stored in lists (custody taken).
    pub stored: Vec<Bytes>,
    /// Values that left lists for good (custody released).
    pub removed: Vec<Bytes>,
    /// Write commands to append to the AOF: (database, argv).
    pub propagate: Vec<(usize, Vec<Bytes>)>,
}

/// The whole dataset and the executor.
pub struct Db {
    config: RedisConfig,
    keyspaces: Vec<Keyspace>,
    /// Collect `stored`/`removed` values (off unless custody is tracked).
    track_values: bool,
    effects: Effects,
    /// Redis's `server.dirty`: changes made; a command that raised it is propagated.
    dirty: u64,
    /// Commands that replace the command in the AOF (BLMOVE → LMOVE), as Redis
    /// propagates them.
    rewrite: Option<Vec<Vec<Bytes>>>,
    /// Keys with blocked clients: (db, key) → waiters.
    blocked_keys: BTreeMap<(usize, Bytes), u32>,
    /// Blocked-on keys that received data since last drained, in signal order.
    ready_keys: Vec<(usize, Bytes)>,
    /// Set when the AOF could not be written: writes are refused with MISCONF.
    aof_write_error: Option<String>,
    /// The session [`Db::execute`] uses.
    default_session: Session,
    /// The next CLIENT ID.
    next_client_id: u64,
}

/// What one handler gets: the dataset, the client, the time, whether it may block.
pub struct Exec<'a> {
    pub db: &'a mut Db,
    pub session: &'a mut Session,
    pub(crate) deny_blocking: bool,
}

impl Exec<'_> {
    /// The client's selected database.
    pub(crate) fn keyspace(&mut self) -> &mut Keyspace {
        &mut self.db.keyspaces[self.session.db_index]
    }

    pub(crate) fn keyspace_ref(&self) -> &Keyspace {
        &self.db.keyspaces[self.session.db_index]
    }

    /// Counts a change (Redis's `server.dirty++`): the command will be propagated.
    pub(crate) fn dirty(&mut self, changes: u64) {
        self.db.dirty += changes;
    }

    /// Replaces the command's argv in the AOF.
    pub(crate) fn rewrite(&mut self, argv: Vec<Bytes>) {
        self.db.rewrite = Some(vec![argv]);
    }

    /// A value that carries data entered a list.
    pub fn stored(&mut self, value: &Bytes) {
        if self.db.track_values {
            self.db.effects.stored.push(value.clone());
        }
    }

    /// A value left a list for good.
    pub fn removed(&mut self, value: &Bytes) {
        if self.db.track_values {
            self.db.effects.removed.push(value.clone());
        }
    }

    /// Data arrived at `key`: blocked clients there may be served.
    pub(crate) fn signal_ready(&mut self, key: &Bytes) {
        let entry = (self.session.db_index, key.clone());
        if self.db.blocked_keys.contains_key(&entry) && !self.db.ready_keys.contains(&entry) {
            self.db.ready_keys.push(entry);
        }
    }

    pub fn config(&self) -> &RedisConfig {
        &self.db.config
    }

    pub(crate) fn config_mut(&mut self) -> &mut RedisConfig {
        &mut self.db.config
    }

    pub(crate) fn used_memory(&self) -> u64 {
        self.db.used_memory()
    }

    pub(crate) fn keyspaces_mut(&mut self) -> &mut [Keyspace] {
        &mut self.db.keyspaces
    }

    pub(crate) fn keyspaces_count(&self) -> usize {
        self.db.keyspaces.len()
    }
}

/// Redis's wording for a write refused after an AOF write error.
fn misconf(reason: &str) -> Reply {
    Reply::error(format!("MISCONF Errors writing to the AOF file: {reason}"))
}

impl Db {
    /// An empty dataset for `config`.
    pub fn new(config: RedisConfig) -> Db {
        assert!(config.databases >= 1, "redis needs at least one database (databases = {})", config.databases);
        let keyspaces = (0..config.databases).map(|_| Keyspace::default()).collect();
        let default_session = Session::new(0, &config);
        Db {
            config,
            keyspaces,
            track_values: false,
            effects: Effects::default(),
            dirty: 0,
            rewrite: None,
            blocked_keys: BTreeMap::new(),
            ready_keys: Vec::new(),
            aof_write_error: None,
            default_session,
            next_client_id: 1,
        }
    }

    pub fn config(&self) -> &RedisConfig {
        &self.config
    }

    /// Sets `maxmemory` as `CONFIG SET maxmemory <bytes>` does (0 = no limit): used by
    /// the server to apply a `RedisControl` override at runtime.
    pub fn set_maxmemory_bytes(&mut self, bytes: u64) {
        self.config.maxmemory_bytes = bytes;
    }

    /// Turns on collection of stored/removed values for the ledger.
    pub(crate) fn track_values(&mut self, on: bool) {
        self.track_values = on;
    }

    /// A new client's session with the next CLIENT ID.
    pub fn new_session(&mut self) -> Session {
        let session = Session::new(self.next_client_id, &self.config);
        self.next_client_id += 1;
        session
    }

    /// `used_memory`: the baseline plus every database's estimate.
    pub(crate) fn used_memory(&self) -> u64 {
        BASELINE_BYTES + self.keyspaces.iter().map(Keyspace::memory_bytes).sum::<u64>()
    }

    /// The estimate recomputed from scratch (tests compare it with [`Db::used_memory`]).
    #[cfg(test)]
    pub(crate) fn recount_memory(&self) -> u64 {
        BASELINE_BYTES + self.keyspaces.iter().map(Keyspace::recount_bytes).sum::<u64>()
    }

    /// Every database, in index order (a snapshot walks them).
    pub(crate) fn keyspaces(&self) -> &[Keyspace] {
        &self.keyspaces
    }

    /// Redis's `server.dirty`: changes since the last snapshot (the save points count them).
    pub(crate) fn dirty(&self) -> u64 {
        self.dirty
    }

    /// A snapshot taken when `dirty` was `changes` was saved: those changes are on disk
    /// (`server.dirty -= server.dirty_before_bgsave`).
    pub(crate) fn saved(&mut self, changes: u64) {
        assert!(changes <= self.dirty, "saved {changes} changes of {} made", self.dirty);
        self.dirty -= changes;
    }

    /// Every list element in the dataset (custody: what a snapshot or a load holds).
    pub(crate) fn list_values(&self) -> Vec<Bytes> {
        let lists = self.keyspaces.iter().flat_map(Keyspace::iter).filter_map(|(_, value)| match value {
            super::value::Value::List(list) => Some(list),
            super::value::Value::Hash(_) => None,
        });
        lists.flat_map(|list| list.iter().cloned()).collect()
    }

    /// Keys in database `index`.
    pub(crate) fn keys_count(&self, index: usize) -> usize {
        self.keyspaces.get(index).map_or(0, Keyspace::len)
    }

    /// Takes what the last commands changed.
    pub fn take_effects(&mut self) -> Effects {
        std::mem::take(&mut self.effects)
    }

    /// Refuse writes from now on with MISCONF (the AOF could not be written).
    pub(crate) fn set_aof_write_error(&mut self, reason: Option<String>) {
        self.aof_write_error = reason;
    }

    /// A client now waits on (db, key).
    pub fn block_on(&mut self, db_index: usize, key: Bytes) {
        *self.blocked_keys.entry((db_index, key)).or_default() += 1;
    }

    /// A client no longer waits on (db, key).
    pub(crate) fn unblock(&mut self, db_index: usize, key: &Bytes) {
        let entry = (db_index, key.clone());
        if let Some(count) = self.blocked_keys.get_mut(&entry) {
            *count -= 1;
            if *count == 0 {
                self.blocked_keys.remove(&entry);
            }
        }
    }

    /// Takes the keys that received data while clients were blocked on them.
    pub(crate) fn take_ready_keys(&mut self) -> Vec<(usize, Bytes)> {
        std::mem::take(&mut self.ready_keys)
    }

    /// Executes one command as a single client that is never blocked (a blocking command
    /// that would block answers as inside MULTI: BLMOVE `$-1`): for tests and the differential run.
    pub fn execute(&mut self, command: &Command) -> Reply {
        let mut session = std::mem::replace(&mut self.default_session, Session::new(0, &self.config));
        let outcome = self.process(&mut session, command, true);
        self.default_session = session;
        match outcome {
            Outcome::Reply(reply) => reply,
            Outcome::Block { .. } => Reply::NullArray,
        }
    }

    /// Executes `command` for `session`: Redis 7.0's `processCommand`.
    pub fn execute_for(&mut self, session: &mut Session, command: &Command) -> Outcome {
        self.process(session, command, false)
    }

    fn process(&mut self, session: &mut Session, command: &Command, deny_blocking: bool) -> Outcome {
        let spec = match cmd::lookup(command) {
            Lookup::Found(spec) => spec,
            Lookup::UnknownCommand => return self.reject(session, errors::unknown_command(command.argv())),
            Lookup::UnknownSubcommand => {
                let reply = errors::unknown_subcommand(command.name(), &command.argv()[1]);
                return self.reject(session, reply);
            }
        };
        let argc = command.argc() as i64;
        let arity = i64::from(spec.arity);
        if (arity > 0 && argc != arity) || argc < -arity {
            return self.reject(session, errors::wrong_number_of_arguments(spec.fullname));
        }
        if !session.authenticated && !spec.no_auth() {
            return self.reject(session, errors::error(errors::NOAUTH));
        }
        let is_exec_or_discard = matches!(spec.fullname, "exec" | "discard" | "quit");
        if self.config.maxmemory_bytes > 0 && self.used_memory() > self.config.maxmemory_bytes {
            let reject_on_oom = spec.denyoom() || (session.in_multi() && !is_exec_or_discard);
            if reject_on_oom {
                return self.reject(session, errors::error(errors::OOM));
            }
        }
        if let Some(reason) = &self.aof_write_error
            && (spec.write() || spec.fullname == "ping")
        {
            let reply = misconf(reason);
            return self.reject(session, reply);
        }
        if session.in_multi() && !matches!(spec.fullname, "exec" | "discard" | "multi" | "quit") {
            session.multi.as_mut().expect("in multi").push(command.clone());
            return Outcome::Reply(Reply::queued());
        }
        match spec.fullname {
            "multi" => Outcome::Reply(self.multi(session)),
            "exec" => Outcome::Reply(self.exec(session)),
            "discard" => Outcome::Reply(self.discard(session)),
            _ => self.call(spec, session, command, deny_blocking),
        }
    }

    /// Retries a blocked command after its key received data: `Some(reply)` if it was
    /// served, `None` if it must keep waiting.
    pub(crate) fn retry_blocked(&mut self, session: &mut Session, command: &Command) -> Option<Reply> {
        let Lookup::Found(spec) = cmd::lookup(command) else {
            unreachable!("a blocked command was looked up before it blocked")
        };
        match self.call(spec, session, command, false) {
            Outcome::Reply(reply) => Some(reply),
            Outcome::Block { .. } => None,
        }
    }

    /// Replays commands from the AOF: like clients, but never blocking and with no checks
    /// beyond the command's own (Redis's fake AOF client).
    pub fn replay(&mut self, session: &mut Session, command: &Command) -> Reply {
        match command.name() {
            name if name.eq_ignore_ascii_case(b"multi") => self.multi(session),
            name if name.eq_ignore_ascii_case(b"exec") => self.exec(session),
            _ if session.in_multi() => {
                session.multi.as_mut().expect("in multi").push(command.clone());
                Reply::queued()
            }
            _ => match cmd::lookup(command) {
                Lookup::Found(spec) => match self.call(spec, session, command, true) {
                    Outcome::Reply(reply) => reply,
                    Outcome::Block { .. } => Reply::NullArray,
                },
                _ => errors::unknown_command(command.argv()),
            },
        }
    }

    /// Refuses a command (Redis's `rejectCommand`): inside MULTI, EXEC will abort.
    fn reject(&mut self, session: &mut Session, reply: Reply) -> Outcome {
        if session.in_multi() {
            session.multi_dirty = true;
        }
        Outcome::Reply(reply)
    }

    /// Runs the command (Redis's `call`) and propagates it if it changed anything.
    fn call(&mut self, spec: &'static Spec, session: &mut Session, command: &Command, deny_blocking: bool) -> Outcome {
        let dirty_before = self.dirty;
        self.rewrite = None;
        let db_index = session.db_index;
        let outcome = {
            let mut exec = Exec { db: self, session, deny_blocking };
            (spec.run)(&mut exec, command)
        };
        let rewrite = self.rewrite.take();
        self.db_books(db_index);
        if self.dirty > dirty_before && spec.write() {
            let commands = rewrite.unwrap_or_else(|| vec![command.argv().to_vec()]);
            self.effects.propagate.extend(commands.into_iter().map(|argv| (db_index, argv)));
        }
        outcome
    }

    /// Checks the memory book of the database a command ran in (and, after SELECT or
    /// FLUSHALL, of them all): see [`Keyspace::assert_books`].
    fn db_books(&self, db_index: usize) {
        self.keyspaces[db_index].assert_books();
        if cfg!(debug_assertions) {
            self.keyspaces.iter().for_each(Keyspace::assert_books);
        }
    }

    fn multi(&mut self, session: &mut Session) -> Reply {
        if session.in_multi() {
            return errors::error(errors::MULTI_NESTED);
        }
        session.multi = Some(Vec::new());
        session.multi_dirty = false;
        Reply::ok()
    }

    fn discard(&mut self, session: &mut Session) -> Reply {
        if !session.in_multi() {
            return errors::error(errors::DISCARD_WITHOUT_MULTI);
        }
        session.multi = None;
        session.multi_dirty = false;
        Reply::ok()
    }

    fn exec(&mut self, session: &mut Session) -> Reply {
        let Some(queued) = session.multi.take() else {
            return errors::error(errors::EXEC_WITHOUT_MULTI);
        };
        if std::mem::take(&mut session.multi_dirty) {
            return errors::error(errors::EXECABORT);
        }
        let mut replies = Vec::with_capacity(queued.len());
        let propagate_start = self.effects.propagate.len();
        for command in &queued {
            let Lookup::Found(spec) = cmd::lookup(command) else { unreachable!("only known commands are queued") };
            match self.call(spec, session, command, true) {
                Outcome::Reply(reply) => replies.push(reply),
                Outcome::Block { .. } => replies.push(Reply::NullArray),
            }
        }
        // Like Redis, the transaction reaches the AOF wrapped in MULTI/EXEC, so a truncated
        // tail never replays half of it.
        if self.effects.propagate.len() - propagate_start > 1 {
            let db_index = self.effects.propagate[propagate_start].0;
            self.effects.propagate.insert(propagate_start, (db_index, vec![Bytes::from_static(b"MULTI")]));
            let last_db = self.effects.propagate.last().expect("non-empty").0;
            self.effects.propagate.push((last_db, vec![Bytes::from_static(b"EXEC")]));
        }
        Reply::Array(replies)
    }
}

/// Builds a command from text arguments (tests, AOF rewrite).
pub fn command<A: AsRef<[u8]>>(argv: &[A]) -> Command {
    Command::new(argv.iter().map(|a| Bytes::copy_from_slice(a.as_ref())).collect(), Framing::Multibulk)
}
