//! What the ledger is told as values carrying log records enter and leave Redis.
//!
//! Why here and not in the commands: custody depends on persistence (where a value is when
//! its reply goes out), which the executor does not know. The server hands over each
//! command's stored and removed values (`Effects`) after the AOF append.
//!
//! Rules (FIDELITY.md "Redis"): a stored list value carrying records is held
//! - `Durable` under `aof_always` (written and fsynced before the reply);
//! - `Written` under `aof_everysec` (written to the AOF file before the reply, fsynced by
//!   the next once-a-second fsync, which makes it `Durable`): a killed process loses none of
//!   it, a power loss what the fsync had not reached;
//! - `Volatile` under `rdb` and `none` (in memory only), until a snapshot holds it: at a
//!   snapshot every value in the dataset is `Durable`.
//!
//! A value that leaves for good (LPOP, RPOP, LREM, DEL, FLUSHALL) is released; LMOVE/BLMOVE
//! keep custody. Writes refused with OOM never reach here (the writer keeps custody). A host
//! loss is the ledger's `host_lost`: what did not survive becomes `redis_crash_unpersisted`.
//! A restart holds again every value it loaded: a value consumed after the snapshot (or
//! after the last fsync) comes back and is delivered again, a duplicate downstream, as it
//! really is. Records are held per id, so two copies of one chunk are one holding: removing
//! either copy releases it.

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
    /// Values held `Written` since the last fsync, with their ids (`aof_everysec`).
    unsynced: Vec<(Bytes, Vec<RecordId>)>,
}

impl Custody {
    /// Custody for the Redis part `custodian`.
    pub fn new(ledger: Ledger, custodian: Custodian, record_ids: ValueCustody) -> Custody {
        Custody { ledger, custodian, record_ids, unsynced: Vec::new() }
    }

    /// Values entered lists, now as safe as `durability`.
    pub fn stored(&mut self, values: &[Bytes], durability: Durability) {
        for value in values {
            let ids = (self.record_ids)(value);
            if ids.is_empty() {
                continue;
            }
            self.ledger.hold(&self.custodian, &ids, durability);
            if durability == Durability::Written {
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

    /// A snapshot of the dataset holding `values` (every list element) is on disk, synced.
    pub fn snapshot(&mut self, values: &[Bytes]) {
        self.unsynced.clear();
        self.stored(values, Durability::Durable);
    }
}
