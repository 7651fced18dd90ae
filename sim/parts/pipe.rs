//! A bounded in-host pipe of records: how the app hands logs to its host's agent and spans
//! and metrics to its host's collector.
//!
//! Why in-process: the app and its agent and collector share a machine; between them lies a
//! log file (tailed by Fluent Bit) or a loopback OTLP socket, neither of which is a fault
//! domain of its own. A crash of the host drops the pipe with everything in it (the ledger
//! turns those records into `app_crash_unpersisted`). The pipe is bounded: a writer finding
//! it full gets the records back and must drop them with a cause or wait.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

/// A bounded multi-writer, single-reader queue of records. Cloning shares it.
pub struct RecordPipe<T> {
    inner: Arc<PipeInner<T>>,
}

impl<T> Clone for RecordPipe<T> {
    fn clone(&self) -> Self {
        RecordPipe { inner: Arc::clone(&self.inner) }
    }
}

struct PipeInner<T> {
    queue: Mutex<VecDeque<T>>,
    records_limit: usize,
    /// Wakes the reader when records arrive.
    readable: Notify,
    /// Wakes writers when room is made.
    writable: Notify,
}

/// The records a full pipe did not take, handed back to the writer.
#[derive(Debug)]
pub struct PipeFull<T> {
    pub rejected: Vec<T>,
}

impl<T> RecordPipe<T> {
    /// A pipe holding at most `records_limit` records.
    pub fn new(records_limit: usize) -> Self {
        assert!(records_limit > 0, "a pipe must hold at least one record");
        RecordPipe {
            inner: Arc::new(PipeInner {
                queue: Mutex::new(VecDeque::new()),
                records_limit,
                readable: Notify::new(),
                writable: Notify::new(),
            }),
        }
    }

    /// Appends as many of `records` as fit, in order; the rest come back in `PipeFull`.
    pub fn push(&self, records: Vec<T>) -> Result<(), PipeFull<T>> {
        let mut queue = self.lock();
        let room = self.inner.records_limit - queue.len();
        let mut records = records;
        let rejected = if records.len() > room { records.split_off(room) } else { Vec::new() };
        let accepted = !records.is_empty();
        queue.extend(records);
        assert!(
            queue.len() <= self.inner.records_limit,
            "record pipe: {} queued over its limit {}",
            queue.len(),
            self.inner.records_limit
        );
        drop(queue);
        if accepted {
            self.inner.readable.notify_one();
        }
        if rejected.is_empty() { Ok(()) } else { Err(PipeFull { rejected }) }
    }

    /// Takes up to `records_max` records, oldest first, without waiting.
    pub fn take(&self, records_max: usize) -> Vec<T> {
        let mut queue = self.lock();
        let count = records_max.min(queue.len());
        let taken: Vec<T> = queue.drain(..count).collect();
        drop(queue);
        if !taken.is_empty() {
            self.inner.writable.notify_waiters();
        }
        taken
    }

    /// Waits until at least one record is queued (returns at once if one is).
    pub async fn readable(&self) {
        loop {
            let notified = self.inner.readable.notified();
            if !self.lock().is_empty() {
                return;
            }
            notified.await;
        }
    }

    /// Records queued now.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<T>> {
        self.inner.queue.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_pipe_hands_back_the_rest_in_order() {
        let pipe = RecordPipe::new(3);
        pipe.push(vec![1, 2]).unwrap();
        let full = pipe.push(vec![3, 4, 5]).unwrap_err();
        assert_eq!(full.rejected, vec![4, 5]);
        assert_eq!(pipe.take(10), vec![1, 2, 3]);
        assert!(pipe.is_empty());
    }

    #[test]
    fn take_respects_its_maximum() {
        let pipe = RecordPipe::new(10);
        pipe.push((0..10).collect()).unwrap();
        assert_eq!(pipe.take(4), vec![0, 1, 2, 3]);
        assert_eq!(pipe.len(), 6);
    }
}
