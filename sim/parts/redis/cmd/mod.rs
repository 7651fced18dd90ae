//! The command table: each command's name, arity and flags as Redis 7.0 declares them
//! (`src/commands/*.json`), and its handler, one file per family.
//!
//! Why a table: `processCommand` checks existence, arity, auth and `denyoom` before any
//! handler runs, with texts that depend only on this data.

pub mod connection;
pub mod hash;
pub mod keys;
pub mod list;
pub mod server;

use crate::proto::resp::Command;

use super::db::{Exec, Outcome};

/// `write`: changes data (propagated to the AOF, refused under MISCONF).
pub(crate) const WRITE: u8 = 1;
/// `denyoom`: may grow memory, refused with OOM over `maxmemory`.
pub(crate) const DENYOOM: u8 = 2;
/// `no-auth`: allowed before AUTH.
pub(crate) const NO_AUTH: u8 = 4;

/// A command's declaration.
pub struct Spec {
    /// Redis's `fullname`: lower case, `container|sub` for subcommands.
    pub(crate) fullname: &'static str,
    /// Redis arity: n = exactly n arguments (name included), -n = at least n.
    pub(crate) arity: i32,
    pub flags: u8,
    pub run: fn(&mut Exec<'_>, &Command) -> Outcome,
}

impl Spec {
    pub fn write(&self) -> bool {
        self.flags & WRITE != 0
    }
    pub fn denyoom(&self) -> bool {
        self.flags & DENYOOM != 0
    }
    pub(crate) fn no_auth(&self) -> bool {
        self.flags & NO_AUTH != 0
    }
}

/// What a name resolves to.
pub enum Lookup {
    Found(&'static Spec),
    UnknownCommand,
    UnknownSubcommand,
}

const fn spec(fullname: &'static str, arity: i32, flags: u8, run: fn(&mut Exec<'_>, &Command) -> Outcome) -> Spec {
    Spec { fullname, arity, flags, run }
}

/// Placeholder handler for MULTI/EXEC/DISCARD, which the executor runs itself.
fn transaction(_: &mut Exec<'_>, _: &Command) -> Outcome {
    unreachable!("MULTI, EXEC and DISCARD are handled by Db::execute_for")
}

const W: u8 = WRITE;
const WD: u8 = WRITE | DENYOOM;

/// Plain commands, sorted by name.
static COMMANDS: &[Spec] = &[
    spec("auth", -2, NO_AUTH, connection::auth),
    spec("blmove", 6, WD, list::blmove),
    spec("dbsize", 1, 0, server::dbsize),
    spec("del", -2, W, keys::del),
    spec("discard", 1, 0, transaction),
    spec("echo", 2, 0, connection::echo),
    spec("exec", 1, 0, transaction),
    spec("exists", -2, 0, keys::exists),
    spec("flushall", -1, W, server::flushall),
    spec("hdel", -3, W, hash::hdel),
    spec("hexists", 3, 0, hash::hexists),
    spec("hget", 3, 0, hash::hget),
    spec("hgetall", 2, 0, hash::hgetall),
    spec("hincrby", 4, WD, hash::hincrby),
    spec("hlen", 2, 0, hash::hlen),
    spec("hmset", -4, WD, hash::hset),
    spec("hset", -4, WD, hash::hset),
    spec("hsetnx", 4, WD, hash::hsetnx),
    spec("info", -1, 0, server::info),
    spec("lindex", 3, 0, list::lindex),
    spec("llen", 2, 0, list::llen),
    spec("lmove", 5, WD, list::lmove),
    spec("lpop", -2, W, list::lpop),
    spec("lpush", -3, WD, list::lpush),
    spec("lrange", 4, 0, list::lrange),
    spec("lrem", 4, W, list::lrem),
    spec("multi", 1, 0, transaction),
    spec("ping", -1, 0, connection::ping),
    spec("quit", -1, NO_AUTH, connection::quit),
    spec("rpop", -2, W, list::rpop),
    spec("rpush", -3, WD, list::rpush),
    spec("select", 2, 0, connection::select),
    spec("type", 2, 0, keys::type_),
];

/// Container commands: (container spec, subcommands).
static CONTAINERS: &[(Spec, &[Spec])] = &[
    (
        spec("client", -2, 0, transaction),
        &[
            spec("client|getname", 2, 0, connection::client_getname),
            spec("client|id", 2, 0, connection::client_id),
            spec("client|setname", 3, 0, connection::client_setname),
        ],
    ),
    (
        spec("config", -2, 0, transaction),
        &[spec("config|get", -3, 0, server::config_get), spec("config|set", -4, 0, server::config_set)],
    ),
];

/// Redis's `lookupCommand`: a container alone resolves to itself (so arity reports it).
pub fn lookup(command: &Command) -> Lookup {
    let name = command.name();
    if let Ok(index) = COMMANDS.binary_search_by(|spec| cmp_ignore_case(spec.fullname.as_bytes(), name)) {
        return Lookup::Found(&COMMANDS[index]);
    }
    for (container, subcommands) in CONTAINERS {
        if !name.eq_ignore_ascii_case(container.fullname.as_bytes()) {
            continue;
        }
        let Some(sub) = command.arg(1) else { return Lookup::Found(container) };
        let prefix = container.fullname.len() + 1;
        return subcommands
            .iter()
            .find(|spec| sub.eq_ignore_ascii_case(&spec.fullname.as_bytes()[prefix..]))
            .map_or(Lookup::UnknownSubcommand, Lookup::Found);
    }
    Lookup::UnknownCommand
}

/// Orders a lower-case table name against a client's name of any case.
fn cmp_ignore_case(table: &[u8], name: &[u8]) -> std::cmp::Ordering {
    table.iter().copied().cmp(name.iter().map(u8::to_ascii_lowercase))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_sorted_for_binary_search() {
        assert!(COMMANDS.windows(2).all(|pair| pair[0].fullname < pair[1].fullname));
    }
}
