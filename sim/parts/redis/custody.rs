//! What the ledger is told as values carrying log records enter and leave Redis.
//!
//! Why here and not in the commands: custody depends on persistence (a value is durable
//! only once its AOF write is synced), which the executor does not know. The server hands
//! over each command's stored and removed values (`Effects`) after the AOF append.
//!
//! Rules: a stored list value carrying records is held Durable under `aof_always`
//! (synced before the reply), Volatile otherwise; under `aof_everysec` the timer fsync makes
//! the values written since the previous fsync Durable. A value that leaves for good (LPOP,
//! RPOP, LREM, DEL, FLUSHALL) is released. LMOVE/BLMOVE keep
//! custody. Writes refused with OOM never reach here (the writer keeps custody). A crash is
//! the integrator's `ledger.crash(host)`: Volatile holdings become
//! `redis_crash_unpersisted`. Records are held per id, so two copies of one chunk are one
//! holding: removing either copy releases it.

use bytes::Bytes;

use crate::ledger::{Custodian, Durability, Ledger};
use crate::record::RecordId;

/// Which log records a stored value carries; empty for values that carry none (job-queue
/// values). The integrator passes `LogChunk::record_ids`.
pub type ValueCustody = fn(&[u8]) -> Vec<RecordId>;

/// The Redis part's custody bookkeeping.
pub struct Custody {
    ledger: Ledger,
    custodian: Custodian,
    record_ids: ValueCustody,
    /// `aof_everysec`: values held Volatile since the last fsync, with their ids.
    unsynced: Vec<(Bytes, Vec<RecordId>)>,
    track_unsynced: bool,
}

impl Custody {
    /// `track_unsynced` under `aof_everysec`, where fsyncs promote holdings to Durable.
    pub fn new(ledger: Ledger, custodian: Custodian, record_ids: ValueCustody, track_unsynced: bool) -> Custody {
        Custody { ledger, custodian, record_ids, unsynced: Vec::new(), track_unsynced }
    }

    /// Values entered lists; `durable` if their AOF write is already synced.
    pub fn stored(&mut self, values: &[Bytes], durable: bool) {
        let durability = if durable { Durability::Durable } else { Durability::Volatile };
        for value in values {
            let ids = (self.record_ids)(value);
            if ids.is_empty() {
                continue;
            }
            self.ledger.hold(&self.custodian, &ids, durability);
            if self.track_unsynced && !durable {
                self.unsynced.push((value.clone(), ids));
            }
        }
    }

    /// Values left Redis for good.
    pub fn removed(&mut self, values: &[Bytes]) {
        for value in values {
            let ids = (self.record_ids)(value);
            if ids.is_empty() {
                continue;
            }
            self.ledger.release(&self.custodian, &ids);
            if let Some(index) = self.unsynced.iter().position(|(unsynced, _)| unsynced == value) {
                self.unsynced.remove(index);
            }
        }
    }

    /// The AOF was fsynced: everything written before is durable now.
    pub fn synced(&mut self) {
        for (_, ids) in self.unsynced.drain(..) {
            self.ledger.hold(&self.custodian, &ids, Durability::Durable);
        }
    }
}
