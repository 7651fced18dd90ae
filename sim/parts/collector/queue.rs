//! The exporter's sending queue and its consumers: `num_consumers` tasks each take one
//! batch at a time and export it, retrying per `retry_on_failure` until it is accepted,
//! refused for good, or its retries run out. A consumer is busy for the whole retry schedule
//! of its batch, as in exporterhelper, so a long outage fills the queue behind it.
//!
//! The queue's `queue_size` counts the requests consumers are exporting as well as those
//! waiting: exporterhelper's memory queue frees a request's place only when its export ends
//! (FIDELITY.md "Collector"). On shutdown the retry sender stops first (a batch waiting to
//! retry is dropped, a failed attempt is not retried), then the queue stops taking and its
//! consumers export what it still holds, one attempt each, and end.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use rand_chacha::ChaCha8Rng;

use super::config::CollectorConfig;
use super::exporter::{Exporter, QueuedBatch};
use super::outcome::Outcomes;
use super::retry::{Backoff, Verdict, classify};
use crate::parts::RecordPipe;
use crate::vocab::{EventKind, LossCause};
use crate::world::{HostCtx, true_elapsed_now};

/// exporterhelper's memory queue (`queue_size` requests, non-blocking when full). Cheap to
/// clone: clones share it.
#[derive(Clone)]
pub(crate) struct SendingQueue {
    waiting: RecordPipe<QueuedBatch>,
    /// Requests a consumer took and has not finished exporting: they keep their place.
    in_flight: Arc<AtomicUsize>,
    capacity: usize,
    /// Set by [`SendingQueue::stop`]: consumers end once nothing is waiting.
    stopped: tokio::sync::watch::Sender<bool>,
}

/// A request a consumer is exporting; its place in the queue is freed when this is dropped.
pub(crate) struct Taken {
    pub batch: QueuedBatch,
    in_flight: Arc<AtomicUsize>,
}

impl Drop for Taken {
    fn drop(&mut self) {
        let before = self.in_flight.fetch_sub(1, Ordering::SeqCst);
        debug_assert!(before > 0, "a finished export was counted in flight");
    }
}

impl SendingQueue {
    /// An empty queue of `capacity` requests.
    pub fn new(capacity: usize) -> Self {
        assert!(capacity > 0, "a sending queue holds at least one request");
        SendingQueue {
            waiting: RecordPipe::new(capacity),
            in_flight: Arc::new(AtomicUsize::new(0)),
            capacity,
            stopped: tokio::sync::watch::Sender::new(false),
        }
    }

    /// Requests held: waiting plus in flight.
    pub fn held(&self) -> usize {
        self.waiting.len() + self.in_flight.load(Ordering::SeqCst)
    }

    /// Queues `batch`, or hands it back when the queue already holds `capacity` requests.
    pub fn offer(&self, batch: QueuedBatch) -> Result<(), QueuedBatch> {
        if self.held() >= self.capacity {
            return Err(batch);
        }
        self.waiting.push(vec![batch]).map_err(|mut full| full.rejected.pop().expect("the one batch"))?;
        debug_assert!(self.held() <= self.capacity, "sending queue over its queue_size");
        Ok(())
    }

    /// Waits for a request and takes it, counting it in flight; `None` once the queue is
    /// stopped and nothing is waiting.
    pub async fn take(&self) -> Option<Taken> {
        let mut stopped = self.stopped.subscribe();
        // Bounded: each pass takes a request, ends, or waits for one of the two.
        loop {
            // Count it in flight before it leaves the waiting list, so `held` never dips.
            self.in_flight.fetch_add(1, Ordering::SeqCst);
            if let Some(batch) = self.waiting.take(1).pop() {
                return Some(Taken { batch, in_flight: Arc::clone(&self.in_flight) });
            }
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            if *stopped.borrow_and_update() {
                return None;
            }
            tokio::select! {
                biased;
                () = self.waiting.readable() => {}
                _ = stopped.changed() => {}
            }
        }
    }

    /// Stops the queue (exporterhelper's queue `Shutdown`): consumers export what is waiting
    /// and end.
    pub fn stop(&self) {
        self.stopped.send_replace(true);
    }
}

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
    /// One consumer: exports batches from `queue` until it is stopped and empty.
    pub async fn run(mut self, queue: SendingQueue) {
        // Bounded by the run: one iteration per batch; after the stop, by what is waiting.
        while let Some(taken) = queue.take().await {
            self.send(&taken.batch).await;
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
    async fn send(&mut self, batch: &QueuedBatch) {
        let started = true_elapsed_now();
        let mut backoff = Backoff::new(&self.config);
        // Bounded by max_elapsed_time: the backoff gives up once it would pass (the waits
        // are at least initial_interval·(1 − randomization_factor) > 0). With
        // max_elapsed_time 0 the collector retries until Dash0 answers or SIGTERM, and so
        // does this.
        let mut attempt = 0u32;
        loop {
            attempt = attempt.saturating_add(1);
            let Err(status) = self.attempt(batch, attempt).await else { return };
            let elapsed = true_elapsed_now().saturating_sub(started);
            let wait = match self.after_failure(&status, attempt, elapsed, &mut backoff) {
                Ok(wait) => wait,
                Err((cause, why)) => return self.outcomes.dropped(batch, cause, &why),
            };
            self.host.record(
                EventKind::CollectorRetry,
                format!(
                    "{} batch {} attempt {attempt} {:?}: retry in {}ms",
                    batch.payload.signal(),
                    batch.batch_seq,
                    status.code(),
                    wait.as_millis()
                ),
            );
            // The retry sender's wait ends early when the collector shuts down.
            tokio::select! {
                biased;
                () = self.host.sigterm().received() => {
                    let why = format!("{:?}, shut down while waiting to retry", status.code());
                    return self.outcomes.dropped(batch, LossCause::CollectorShutdown, &why);
                }
                () = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// One export attempt; an accepted batch is released here.
    async fn attempt(&mut self, batch: &QueuedBatch, attempt: u32) -> Result<(), tonic::Status> {
        let signal = batch.payload.signal();
        self.host.record(EventKind::CollectorAttempt, format!("{signal} batch {} attempt {attempt}", batch.batch_seq));
        let exported = self.exporter.export(&batch.payload).await?;
        self.resend_if_planted(batch).await;
        self.outcomes.exported(batch, attempt, &exported);
        Ok(())
    }

    /// What the retry sender does after a failed attempt: the wait before the next one, or
    /// the cause the batch is dropped with. Its order is exporterhelper's: a permanent error
    /// drops at once, then the backoff (stretched by RetryInfo) is held against
    /// `max_elapsed_time`, and only then does a shutdown end the retries.
    fn after_failure(
        &self,
        status: &tonic::Status,
        attempt: u32,
        elapsed: std::time::Duration,
        backoff: &mut Backoff,
    ) -> Result<std::time::Duration, (LossCause, String)> {
        let throttle = match classify(status) {
            Verdict::Permanent => {
                return Err((LossCause::CollectorRejected, format!("{:?}: {}", status.code(), status.message())));
            }
            Verdict::Retryable { .. } if !self.config.retry_enabled => {
                let why = format!("{:?} and retry_on_failure is disabled", status.code());
                return Err((LossCause::CollectorRetryDisabled, why));
            }
            Verdict::Retryable { throttle } => throttle,
        };
        let next = {
            let mut rng = self.rng.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            backoff.next(elapsed, throttle, &mut *rng)
        };
        let Some(wait) = next else {
            let why = format!(
                "{:?} after {attempt} attempts over {}ms (max_elapsed_time {}s)",
                status.code(),
                elapsed.as_millis(),
                self.config.retry_max_elapsed_time.as_secs()
            );
            return Err((LossCause::CollectorRetryExpired, why));
        };
        if self.host.sigterm().is_received() {
            return Err((
                LossCause::CollectorShutdown,
                format!("{:?}, not retried while shutting down", status.code()),
            ));
        }
        Ok(wait)
    }
}
