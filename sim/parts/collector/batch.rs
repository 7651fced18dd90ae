//! The batch processor: items from the app's pipe become batches of `send_batch_size`, or
//! whatever is pending when the processor's timer fires, and go to the sending queue.
//!
//! The timer is free-running, as in batchprocessor: it starts with the processor and fires
//! every `timeout`, sending what is pending; a batch sent for size restarts it. So an item
//! waits at most `timeout`, often less: it leaves at the next tick, not `timeout` after the
//! batch's first item (FIDELITY.md "Collector").
//!
//! Where custody moves: taking spans from the pipe is the collector taking them from the
//! app (`release` app, `hold` collector, volatile: the collector keeps everything in
//! memory). A batch that finds the sending queue full is dropped (`collector_queue_full`),
//! as exporterhelper drops what its full queue refuses. On SIGTERM the processor sends what
//! it holds (one batch, at most `send_batch_max_size`) and ends; what the app has not
//! handed over stays with the app.

use std::time::Duration;

use tokio::time::{Instant, sleep_until};

use super::config::CollectorConfig;
use super::exporter::QueuedBatch;
use super::outcome::Outcomes;
use super::queue::SendingQueue;
use crate::parts::RecordPipe;
use crate::vocab::LossCause;
use crate::world::Sigterm;

/// Called with every slice taken from the pipe (custody).
pub(crate) type OnTake<T> = Box<dyn Fn(&[T])>;
/// Turns a batch into a queued request.
pub(crate) type Seal<T> = Box<dyn Fn(u64, Vec<T>) -> QueuedBatch>;

/// One signal's batch processor: where its items come from and where its batches go.
pub(crate) struct BatchProcessor<T> {
    pub config: CollectorConfig,
    pub pipe: RecordPipe<T>,
    pub queue: SendingQueue,
    pub outcomes: Outcomes,
    pub sigterm: Sigterm,
    pub on_take: OnTake<T>,
    pub seal: Seal<T>,
}

impl<T> BatchProcessor<T> {
    /// Runs until SIGTERM, then flushes and returns.
    pub async fn run(self) {
        let timeout = self.config.batch_timeout;
        let mut pending: Vec<T> = Vec::new();
        let mut batch_seq = 0u64;
        let mut tick = next_tick(timeout);
        // Bounded by the run: each pass takes items, sends on a tick, or ends.
        loop {
            tokio::select! {
                biased;
                () = self.sigterm.received() => {
                    if !pending.is_empty() {
                        self.send(&mut pending, &mut batch_seq);
                    }
                    return;
                }
                () = sleep_until(tick) => {
                    if !pending.is_empty() {
                        self.send(&mut pending, &mut batch_seq);
                    }
                    tick = next_tick(timeout);
                }
                () = self.pipe.readable() => {
                    let taken = self.pipe.take(usize::MAX);
                    (self.on_take)(&taken);
                    pending.extend(taken);
                    let mut sent = false;
                    // Bounded: each pass sends at least one item.
                    while !pending.is_empty() && pending.len() >= self.config.send_batch_size {
                        self.send(&mut pending, &mut batch_seq);
                        sent = true;
                    }
                    if sent {
                        tick = next_tick(timeout);
                    }
                }
            }
        }
    }

    /// Seals the oldest `send_batch_max_size` pending items (all of them when unbounded) and
    /// offers the batch to the sending queue.
    fn send(&self, pending: &mut Vec<T>, batch_seq: &mut u64) {
        let count = self.config.batch_items_max().map_or(pending.len(), |max| max.min(pending.len()));
        debug_assert!(count > 0, "a batch holds at least one item");
        let rest = pending.split_off(count);
        let batch = (self.seal)(*batch_seq, std::mem::replace(pending, rest));
        *batch_seq += 1;
        if let Err(batch) = self.queue.offer(batch) {
            self.outcomes.dropped(
                &batch,
                LossCause::CollectorQueueFull,
                &format!("sending queue of {} requests is full", self.config.queue_size),
            );
        }
    }
}

/// When the timer fires next if restarted now.
fn next_tick(timeout: Duration) -> Instant {
    Instant::now() + timeout // determinism: ok (tokio time, simulated by turmoil)
}
