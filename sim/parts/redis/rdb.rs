//! The RDB snapshot: the whole dataset at one instant, written to `dump.rdb` on the host's
//! simulated disk by a save point's background save or by SIGTERM's final SAVE, and loaded
//! at start when `appendonly` is off (FIDELITY.md "Redis").
//!
//! Why a snapshot is written with `replace` then `sync`: Redis writes `temp-<pid>.rdb`,
//! fsyncs it and renames it over `dump.rdb`, so the file on disk is always a whole snapshot,
//! the old one or the new one. `Disk::replace` keeps the old synced content until the sync,
//! which is that rename's guarantee. The file holds the commands that rebuild the dataset
//! (RESP, like an AOF rewrite), not RDB's binary encoding: what survives is the same
//! dataset, which is what the model's verdicts and the differential test read.

use bytes::{Bytes, BytesMut};

use crate::proto::resp::{Decoder, encode_command};
use crate::world::{Disk, DiskFull};

use super::db::{Db, Session};
use super::value::Value;

/// The snapshot's file name (redis.conf `dbfilename` default).
pub const RDB_PATH: &str = "dump.rdb";

/// Elements per rebuilding command, as Redis's AOF rewrite batches them
/// (`AOF_REWRITE_ITEMS_PER_CMD`), so no command exceeds the decoder's bounds.
const ITEMS_PER_COMMAND: usize = 64;

/// A snapshot taken: its bytes and how many keys it holds.
#[derive(Clone, Debug)]
pub struct Snapshot {
    pub(crate) bytes: Vec<u8>,
    pub(crate) keys_count: u64,
}

/// What loading found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoadReport {
    pub(crate) keys_count: u64,
    pub(crate) file_bytes: u64,
}

/// A snapshot file the loader could not read whole (Redis refuses to start on one).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CorruptSnapshot {
    pub(crate) file_bytes: u64,
    pub(crate) valid_bytes: u64,
}

impl std::fmt::Display for CorruptSnapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{RDB_PATH}: only {} of {} bytes are whole commands", self.valid_bytes, self.file_bytes)
    }
}

impl std::error::Error for CorruptSnapshot {}

/// The dataset of `db` as it is now.
pub fn snapshot(db: &Db) -> Snapshot {
    let mut bytes = BytesMut::new();
    let mut keys_count = 0;
    for (index, keyspace) in db.keyspaces().iter().enumerate() {
        if keyspace.len() == 0 {
            continue;
        }
        let index_text = index.to_string();
        encode_command(&[b"SELECT".as_slice(), index_text.as_bytes()], &mut bytes);
        for (key, value) in keyspace.iter() {
            encode_value(key, value, &mut bytes);
            keys_count += 1;
        }
    }
    Snapshot { bytes: bytes.to_vec(), keys_count }
}

/// The commands that rebuild one key: RPUSH for a list (head first), HSET for a hash (in
/// its order), `ITEMS_PER_COMMAND` elements each.
fn encode_value(key: &Bytes, value: &Value, out: &mut BytesMut) {
    let (verb, items): (&[u8], Vec<&Bytes>) = match value {
        Value::List(list) => (b"RPUSH", list.iter().collect()),
        Value::Hash(hash) => (b"HSET", hash.entries().into_iter().flat_map(|(field, value)| [field, value]).collect()),
    };
    let per_command = if matches!(value, Value::Hash(_)) { 2 * ITEMS_PER_COMMAND } else { ITEMS_PER_COMMAND };
    for chunk in items.chunks(per_command) {
        let mut argv: Vec<&[u8]> = Vec::with_capacity(chunk.len() + 2);
        argv.push(verb);
        argv.push(key);
        argv.extend(chunk.iter().map(|item| item.as_ref()));
        encode_command(&argv, out);
    }
}

/// Writes `snapshot` as the new `dump.rdb`: written, fsynced and renamed into place.
pub fn write(disk: &Disk, snapshot: &Snapshot) -> Result<(), DiskFull> {
    disk.replace(RDB_PATH, &snapshot.bytes)?;
    disk.sync(RDB_PATH);
    Ok(())
}

/// Loads `dump.rdb` into the empty `db` (nothing if there is none).
pub fn load(disk: &Disk, db: &mut Db) -> Result<LoadReport, CorruptSnapshot> {
    let Some(content) = disk.read(RDB_PATH) else { return Ok(LoadReport::default()) };
    let mut buffer = BytesMut::from(&content[..]);
    let mut decoder = Decoder::default();
    let mut session = Session::new(0, db.config());
    session.authenticated = true;
    while let Ok(Some(command)) = decoder.decode(&mut buffer) {
        db.replay(&mut session, &command);
    }
    if !buffer.is_empty() {
        let file_bytes = content.len() as u64;
        return Err(CorruptSnapshot { file_bytes, valid_bytes: file_bytes - buffer.len() as u64 });
    }
    db.take_effects();
    let keys_count = (0..db.keyspaces().len()).map(|index| db.keys_count(index) as u64).sum();
    Ok(LoadReport { keys_count, file_bytes: content.len() as u64 })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::parts::redis::config::RedisConfig;
    use crate::parts::redis::db::command;

    fn run(db: &mut Db, line: &str) {
        let argv: Vec<&str> = line.split_whitespace().collect();
        db.execute(&command(&argv));
    }

    fn dump(db: &mut Db) -> Vec<String> {
        let mut out = Vec::new();
        for line in
            ["LRANGE logs 0 -1", "LRANGE big 0 -1", "HGETALL job:1", "SELECT 2", "LRANGE other 0 -1", "SELECT 0"]
        {
            let argv: Vec<&str> = line.split_whitespace().collect();
            out.push(format!("{:?}", db.execute(&command(&argv))));
        }
        out
    }

    /// Lists (longer than one command's batch), hashes in their order and a second database
    /// come back from the snapshot as they were.
    #[test]
    fn a_snapshot_loads_back_into_the_same_dataset() {
        let mut db = Db::new(RedisConfig::default());
        run(&mut db, "RPUSH logs a b c");
        let items: Vec<String> = (0..150).map(|i| format!("v{i}")).collect();
        run(&mut db, &format!("RPUSH big {}", items.join(" ")));
        run(&mut db, "HSET job:1 status queued attempts 0 traceparent 00-ab-cd-01");
        run(&mut db, "SELECT 2");
        run(&mut db, "LPUSH other x y");
        run(&mut db, "SELECT 0");
        let disk = Disk::new(Arc::from("railway-redis"), 1 << 20);
        let taken = snapshot(&db);
        assert_eq!(taken.keys_count, 4);
        write(&disk, &taken).unwrap();
        let mut loaded = Db::new(RedisConfig::default());
        let report = load(&disk, &mut loaded).unwrap();
        assert_eq!(report.keys_count, 4);
        assert_eq!(dump(&mut loaded), dump(&mut db));
    }

    /// A power loss after the snapshot's sync keeps it whole; a half-written file is refused.
    #[test]
    fn a_synced_snapshot_survives_a_power_loss_and_a_corrupt_one_is_refused() {
        let mut db = Db::new(RedisConfig::default());
        run(&mut db, "RPUSH logs a");
        let disk = Disk::new(Arc::from("railway-redis"), 1 << 20);
        write(&disk, &snapshot(&db)).unwrap();
        disk.power_loss();
        assert_eq!(load(&disk, &mut Db::new(RedisConfig::default())).unwrap().keys_count, 1);
        let mut bytes = disk.read(RDB_PATH).unwrap();
        bytes.truncate(bytes.len() - 2);
        disk.replace(RDB_PATH, &bytes).unwrap();
        let error = load(&disk, &mut Db::new(RedisConfig::default())).unwrap_err();
        assert_eq!(error.valid_bytes, 23, "{error}");
    }
}
