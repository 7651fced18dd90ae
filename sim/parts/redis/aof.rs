//! The append-only file: write commands in RESP, as real Redis writes them, on the host's
//! simulated disk; fsync per write (`always`) or by a 1 s timer (`everysec`); replayed on
//! start.
//!
//! Why the disk decides the loss: every append is written to the file (the kernel) before
//! the reply, as Redis's `beforeSleep` flushes the AOF buffer before it answers; a killed
//! process loses none of it, and `Disk::power_loss` throws away whatever was not synced, so
//! a power loss under `everysec` loses exactly the writes since the last timer fsync, and
//! under `always` nothing that was acknowledged. A truncated tail found at load is cut off and
//! ignored, as `aof-load-truncated yes` (the default) does. Not modelled: the multi-part
//! AOF directory of 7.0 (one file here) and AOF rewrite (the file only grows).

use bytes::{Bytes, BytesMut};

use crate::proto::resp::{Decoder, encode_command};
use crate::world::{Disk, DiskFull};

use super::config::Persistence;
use super::db::{Db, Session};

/// The AOF's file name (redis.conf `appendfilename` default).
pub const AOF_PATH: &str = "appendonly.aof";

/// What loading found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoadReport {
    pub(crate) commands_count: u64,
    pub(crate) file_bytes: u64,
    /// Bytes of an incomplete last command, cut off.
    pub(crate) truncated_bytes: u64,
}

/// The open AOF.
pub struct Aof {
    disk: Disk,
    always: bool,
    /// The database the file's last SELECT chose.
    selected_db: Option<usize>,
    /// Bytes appended since the last fsync.
    unsynced_bytes: u64,
    scratch: BytesMut,
}

impl Aof {
    /// Opens the AOF for `persistence` (which must not be `None`).
    pub fn open(disk: Disk, persistence: Persistence) -> Aof {
        assert!(persistence != Persistence::None, "no AOF without appendonly");
        Aof {
            disk,
            always: persistence == Persistence::AofAlways,
            selected_db: None,
            unsynced_bytes: 0,
            scratch: BytesMut::new(),
        }
    }

    /// Whether every append is synced before the reply (`appendfsync always`).
    pub(crate) fn is_always(&self) -> bool {
        self.always
    }

    /// Replays the AOF into `db`, cutting off a truncated tail.
    pub fn load(disk: &Disk, db: &mut Db) -> LoadReport {
        let Some(content) = disk.read(AOF_PATH) else { return LoadReport::default() };
        let mut report = LoadReport { file_bytes: content.len() as u64, ..LoadReport::default() };
        let mut buffer = BytesMut::from(&content[..]);
        let mut decoder = Decoder::default();
        let mut session = Session::new(0, db.config());
        session.authenticated = true;
        let mut valid_bytes = 0usize;
        // A protocol error ends the load like a truncated tail.
        while let Ok(Some(command)) = decoder.decode(&mut buffer) {
            db.replay(&mut session, &command);
            report.commands_count += 1;
            if !session.in_multi() {
                valid_bytes = content.len() - buffer.len();
            }
        }
        // A MULTI without its EXEC is part of the truncated tail.
        report.truncated_bytes = (content.len() - valid_bytes) as u64;
        if report.truncated_bytes > 0 {
            disk.replace(AOF_PATH, &content[..valid_bytes]).expect("shrinking a file needs no space");
            disk.sync(AOF_PATH);
        }
        db.take_effects();
        report
    }

    /// Appends the propagated commands (with SELECT where the database changes); syncs at
    /// once under `always`.
    pub fn append(&mut self, commands: &[(usize, Vec<Bytes>)]) -> Result<(), DiskFull> {
        if commands.is_empty() {
            return Ok(());
        }
        self.scratch.clear();
        for (db_index, argv) in commands {
            if self.selected_db != Some(*db_index) {
                let index = db_index.to_string();
                encode_command(&[b"SELECT".as_slice(), index.as_bytes()], &mut self.scratch);
                self.selected_db = Some(*db_index);
            }
            encode_command(argv, &mut self.scratch);
        }
        self.disk.append(AOF_PATH, &self.scratch)?;
        self.unsynced_bytes += self.scratch.len() as u64;
        if self.always {
            self.fsync();
        }
        Ok(())
    }

    /// The file may hold writes no fsync covered (loaded after a killed process): the next
    /// fsync syncs it.
    pub(crate) fn assume_unsynced(&mut self) {
        self.unsynced_bytes = self.unsynced_bytes.max(1);
    }

    /// fsync: true if there was anything to sync.
    pub fn fsync(&mut self) -> bool {
        if self.unsynced_bytes == 0 {
            return false;
        }
        self.disk.sync(AOF_PATH);
        self.unsynced_bytes = 0;
        true
    }
}
