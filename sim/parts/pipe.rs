//! A bounded in-host pipe of records: how the app hands logs to its host's agent and spans
//! and metrics to its host's collector.
//!
//! Why in-process: the app and its agent and collector share a machine; between them lies a
//! log file (tailed by Fluent Bit) or the OTel SDK's in-memory export queue, neither of
//! which is a fault domain of its own. Two overflow rules, as the two real things have:
//! the SDK's queue refuses what does not fit (the writer gets the records back and drops
//! them with a cause), while a log file takes every line and rotation takes the oldest
//! lines the tail has not read yet (FIDELITY.md "App"). The log file outlives the app's
//! and the agent's processes (the integrator keeps one per host); the queue dies with them.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

/// What a full pipe does with more records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Overflow {
    /// The new records are handed back (an in-memory export queue).
    RefuseNew,
    /// The new records go in and the oldest unread ones go (a rotated log file).
    DropOldest,
}

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
    overflow: Overflow,
    /// Wakes the reader when records arrive.
    readable: Notify,
    /// Wakes writers when room is made.
    writable: Notify,
}

/// The records that did not stay: the new ones a full queue refused, or the oldest unread
/// ones a log file rotated away.
#[derive(Debug)]
pub struct PipeFull<T> {
    pub rejected: Vec<T>,
}

impl<T> RecordPipe<T> {
    /// A queue holding at most `records_limit` records; a full one refuses new records.
    pub fn new(records_limit: usize) -> Self {
        Self::with(records_limit, Overflow::RefuseNew)
    }

    /// A log file whose unread part holds at most `records_limit` records; past it, rotation
    /// takes the oldest unread ones.
    pub fn log_file(records_limit: usize) -> Self {
        Self::with(records_limit, Overflow::DropOldest)
    }

    fn with(records_limit: usize, overflow: Overflow) -> Self {
        assert!(records_limit > 0, "a pipe must hold at least one record");
        RecordPipe {
            inner: Arc::new(PipeInner {
                queue: Mutex::new(VecDeque::new()),
                records_limit,
                overflow,
                readable: Notify::new(),
                writable: Notify::new(),
            }),
        }
    }

    /// Appends `records` in order. A queue takes as many as fit and hands back the rest; a
    /// log file takes all and hands back the oldest unread ones rotation took.
    pub fn push(&self, records: Vec<T>) -> Result<(), PipeFull<T>> {
        let mut queue = self.lock();
        let mut records = records;
        let accepted = !records.is_empty();
        let rejected = match self.inner.overflow {
            Overflow::RefuseNew => {
                let room = self.inner.records_limit - queue.len();
                let rejected = if records.len() > room { records.split_off(room) } else { Vec::new() };
                queue.extend(records);
                rejected
            }
            Overflow::DropOldest => {
                queue.extend(records);
                let over = queue.len().saturating_sub(self.inner.records_limit);
                queue.drain(..over).collect()
            }
        };
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

    /// Takes every record out (a power loss took the unsynced file), returning how many.
    pub fn clear(&self) -> usize {
        let mut queue = self.lock();
        let count = queue.len();
        queue.clear();
        count
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
    fn a_full_log_file_rotates_the_oldest_unread_lines_away() {
        let file = RecordPipe::log_file(3);
        file.push(vec![1, 2]).unwrap();
        let rotated = file.push(vec![3, 4, 5]).unwrap_err();
        assert_eq!(rotated.rejected, vec![1, 2], "the writer never waits; the oldest unread lines go");
        assert_eq!(file.take(10), vec![3, 4, 5]);
        let rotated = file.push((10..15).collect()).unwrap_err();
        assert_eq!(rotated.rejected, vec![10, 11], "a burst larger than the file keeps its newest lines");
    }

    #[test]
    fn take_respects_its_maximum() {
        let pipe = RecordPipe::new(10);
        pipe.push((0..10).collect()).unwrap();
        assert_eq!(pipe.take(4), vec![0, 1, 2, 3]);
        assert_eq!(pipe.len(), 6);
    }
}
