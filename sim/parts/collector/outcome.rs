//! Where a batch's custody ends in the collector: handed to Dash0 (release) or dropped with
//! a cause. One place, so that every end is both a ledger call and an event.

use super::exporter::{Exported, QueuedBatch};
use crate::ledger::{Custodian, Ledger};
use crate::parts::PartCtx;
use crate::vocab::{EventKind, LossCause, Part};
use crate::world::HostCtx;

/// The ends of batches on one collector. Cheap to clone.
#[derive(Clone)]
pub struct Outcomes {
    host: HostCtx,
    ledger: Ledger,
    custodian: Custodian,
}

impl Outcomes {
    pub fn new(ctx: &PartCtx) -> Self {
        Outcomes { host: ctx.host.clone(), ledger: ctx.ledger.clone(), custodian: ctx.custodian(Part::Collector) }
    }

    /// Dash0 answered OK: the collector no longer holds the batch. Items Dash0 refused one
    /// by one (`partial_success`) were recorded by Dash0 with its own cause.
    pub fn exported(&self, batch: &QueuedBatch, attempt: u32, exported: &Exported) {
        self.ledger.release(&self.custodian, &batch.ids);
        let partial = if exported.rejected > 0 {
            format!(" partial_success rejected {}: {}", exported.rejected, exported.error_message)
        } else {
            String::new()
        };
        self.host.record(
            EventKind::CollectorExported,
            format!(
                "{} batch {} attempt {attempt} items {}{partial}",
                batch.payload.signal(),
                batch.batch_seq,
                batch.items_count
            ),
        );
    }

    /// The batch is given up: lost with `cause`. Metric points have no ledger ids; the event
    /// counts them.
    pub fn dropped(&self, batch: &QueuedBatch, cause: LossCause, why: &str) {
        if !batch.ids.is_empty() {
            self.ledger.drop_records(&self.custodian, cause, &batch.ids);
        }
        self.host.record(
            EventKind::CollectorDropped,
            format!("{} batch {} {cause} items {}: {why}", batch.payload.signal(), batch.batch_seq, batch.items_count),
        );
    }
}
