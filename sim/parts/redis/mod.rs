//! The Redis 7 server model: RESP over turmoil TCP, lists and hashes, blocking BLMOVE,
//! `maxmemory` with `noeviction`, and persistence as Redis 7.0 does it — RDB save points by
//! default, none, AOF everysec, AOF always — with what each loses to a SIGKILL, a power loss
//! or a SIGTERM (FIDELITY.md, the Redis section). Streams are not modelled: the
//! pipeline buffers in lists, and a stream command is answered as real Redis answers a
//! command it does not know.
//!
//! Where things are:
//! - [`config`]: `[redis]`, redis.conf's defaults; [`control`]: the runtime `maxmemory`
//!   override faults use.
//! - [`db`]: the pure executor `Db::execute` / `Db::execute_for` — Redis's `processCommand`
//!   order of checks, MULTI/EXEC, what each command changed ([`db::Effects`]).
//! - [`cmd`]: the command table and one file per family (connection, keys, server, list,
//!   hash).
//! - [`keyspace`], [`value`], [`memory`]: the dataset and its `used_memory`
//!   estimate; [`args`]: argument parsing with Redis's error texts.
//! - [`blocking`]: clients blocked in BLMOVE, served FIFO per key.
//! - [`aof`]: the append-only file on the host's simulated disk, fsync policy, replay.
//! - [`rdb`]: the snapshot (`dump.rdb`) a save point or SIGTERM writes and a start loads.
//! - [`custody`]: what the ledger is told as values carrying log records come and go.
//! - [`server`]: `run`, the TCP listener and per-connection loop with pipelining.

pub mod aof;
pub mod args;
pub mod blocking;
pub mod cmd;
pub mod config;
pub mod control;
pub mod custody;
pub mod db;
pub(crate) mod keyspace;
pub mod memory;
pub mod rdb;
pub mod server;
pub mod value;

pub use config::{Persistence, RedisConfig, SavePoint};
pub use control::RedisControl;
pub use custody::ValueCustody;
pub use db::{Db, Effects, Outcome, Session};
pub use server::{run, run_with_control};

#[cfg(test)]
mod tests;
