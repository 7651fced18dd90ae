//! The batch processor: items from the app's pipe become batches of `send_batch_size`, or
//! whatever arrived within `timeout` of a batch's first item, and go to the sending queue.
//!
//! Where custody moves: taking spans from the pipe is the collector taking them from the
//! app (`release` app, `hold` collector, volatile: the collector keeps everything in
//! memory). A batch that finds the sending queue full is dropped (`collector_queue_full`),
//! as exporterhelper drops what its full queue refuses.

use std::pin::pin;

use super::config::CollectorConfig;
use super::exporter::QueuedBatch;
use super::outcome::Outcomes;
use crate::parts::RecordPipe;
use crate::vocab::LossCause;

/// Runs the batch processor of one signal until the host stops. `on_take` is called with
/// every slice taken from the pipe (custody); `seal` turns a batch into a queued request.
pub async fn run<T>(
    config: CollectorConfig,
    pipe: RecordPipe<T>,
    queue: RecordPipe<QueuedBatch>,
    outcomes: Outcomes,
    on_take: impl Fn(&[T]),
    seal: impl Fn(u64, Vec<T>) -> QueuedBatch,
) {
    let items_max = config.batch_items_max().unwrap_or(usize::MAX);
    let mut batch_seq = 0u64;
    // Bounded by the run: one iteration per batch sent.
    loop {
        pipe.readable().await;
        let mut pending: Vec<T> = Vec::new();
        let mut timer = pin!(tokio::time::sleep(config.batch_timeout));
        // Bounded: each pass takes items or waits for the timer or new items.
        loop {
            let taken = pipe.take(items_max - pending.len());
            on_take(&taken);
            pending.extend(taken);
            if pending.len() >= config.send_batch_size {
                break;
            }
            tokio::select! {
                biased;
                _ = &mut timer => break,
                _ = pipe.readable() => {}
            }
        }
        debug_assert!(!pending.is_empty() && pending.len() <= items_max);
        let batch = seal(batch_seq, pending);
        batch_seq += 1;
        if let Err(full) = queue.push(vec![batch]) {
            for batch in full.rejected {
                outcomes.dropped(
                    &batch,
                    LossCause::CollectorQueueFull,
                    &format!("sending queue of {} requests is full", config.queue_size),
                );
            }
        }
    }
}
