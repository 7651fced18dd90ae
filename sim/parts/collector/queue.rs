//! The exporter's sending queue consumers: `num_consumers` tasks each take one batch at a
//! time and export it, retrying per `retry_on_failure` until it is accepted, refused for
//! good, or its retries run out. A consumer is busy for the whole retry schedule of its
//! batch, as in exporterhelper, so a long outage fills the queue behind it.

use std::sync::{Arc, Mutex};

use rand_chacha::ChaCha8Rng;

use super::config::CollectorConfig;
use super::exporter::{Exporter, QueuedBatch};
use super::outcome::Outcomes;
use super::retry::{Backoff, Verdict, classify};
use crate::parts::RecordPipe;
use crate::vocab::{EventKind, LossCause};
use crate::world::{HostCtx, true_elapsed_now};

/// What every consumer of one collector shares.
#[derive(Clone)]
pub(crate) struct Consumers {
    pub host: HostCtx,
    pub config: CollectorConfig,
    pub exporter: Exporter,
    pub outcomes: Outcomes,
    /// Backoff jitter (`collector/retry`), shared so draws follow the deterministic order
    /// in which consumers fail.
    pub rng: Arc<Mutex<ChaCha8Rng>>,
}

impl Consumers {
    /// One consumer: takes batches from `queue` until the host stops.
    pub async fn run(mut self, queue: RecordPipe<QueuedBatch>) {
        // Bounded by the run: one iteration per batch.
        loop {
            queue.readable().await;
            // Another consumer may have taken it first.
            let Some(batch) = queue.take(1).pop() else { continue };
            self.send(batch).await;
        }
    }

    /// Planted bug `collector_resends_delivered_metrics` (`crate::parts::bugs`): a metric batch Dash0
    /// accepted is exported once more, whatever that answer is.
    async fn resend_if_planted(&mut self, batch: &QueuedBatch) {
        if self.config.bugs.collector_resends_delivered_metrics
            && matches!(batch.payload, super::exporter::Payload::Metrics(_))
        {
            let answer = self.exporter.export(&batch.payload).await;
            self.host
                .record(EventKind::CollectorResent, format!("metrics batch {}: {}", batch.batch_seq, answer.is_ok()));
        }
    }

    /// Exports one batch with retries; every end goes through `outcomes`.
    async fn send(&mut self, batch: QueuedBatch) {
        let started = true_elapsed_now();
        let mut backoff = Backoff::new(&self.config);
        let signal = batch.payload.signal();
        // Bounded by max_elapsed_time: the backoff gives up once it would pass (the waits
        // are at least initial_interval·(1 − randomization_factor) > 0). With
        // max_elapsed_time 0 the collector retries until Dash0 answers, and so does this.
        let mut attempt = 0u32;
        loop {
            attempt = attempt.saturating_add(1);
            self.host
                .record(EventKind::CollectorAttempt, format!("{signal} batch {} attempt {attempt}", batch.batch_seq));
            let status = match self.exporter.export(&batch.payload).await {
                Ok(exported) => {
                    self.resend_if_planted(&batch).await;
                    return self.outcomes.exported(&batch, attempt, &exported);
                }
                Err(status) => status,
            };
            let throttle = match classify(&status) {
                Verdict::Permanent => {
                    let why = format!("{:?}: {}", status.code(), status.message());
                    return self.outcomes.dropped(&batch, LossCause::CollectorRejected, &why);
                }
                Verdict::Retryable { .. } if !self.config.retry_enabled => {
                    let why = format!("{:?} and retry_on_failure is disabled", status.code());
                    return self.outcomes.dropped(&batch, LossCause::CollectorRetryDisabled, &why);
                }
                Verdict::Retryable { throttle } => throttle,
            };
            let elapsed = true_elapsed_now().saturating_sub(started);
            let next = {
                let mut rng = self.rng.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                backoff.next(elapsed, &mut *rng)
            };
            let Some(wait) = next else {
                let why = format!(
                    "{:?} after {attempt} attempts over {}ms (max_elapsed_time {}s)",
                    status.code(),
                    elapsed.as_millis(),
                    self.config.retry_max_elapsed_time.as_secs()
                );
                return self.outcomes.dropped(&batch, LossCause::CollectorRetryExpired, &why);
            };
            let wait = throttle.map_or(wait, |throttle| wait.max(throttle));
            self.host.record(
                EventKind::CollectorRetry,
                format!(
                    "{signal} batch {} attempt {attempt} {:?}: retry in {}ms",
                    batch.batch_seq,
                    status.code(),
                    wait.as_millis()
                ),
            );
            tokio::time::sleep(wait).await;
        }
    }
}
