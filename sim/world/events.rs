//! The run's event log: (true time, host, event), and the hash that identifies the run.
//!
//! Why: determinism is only worth something if it is checked. Every part records what it
//! did at the granularity of batches, connections and faults (never per record, which would
//! cost more than the pipeline itself); the log's running SHA-256 is printed with every
//! verdict, and two runs of the same scenario and seed must print the same hash. When they
//! do not, the kept events show where the runs parted.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::vocab::EventKind;

/// Default number of events kept in memory for `events.log`; the hash covers all of them.
pub const EVENTS_KEPT_LIMIT_DEFAULT: usize = 200_000;

/// One thing that happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// True simulated time since the run began, in nanoseconds.
    pub true_nanos: u64,
    /// The host it happened on, or `world` for the harness itself (faults, steps).
    pub host: Arc<str>,
    /// What happened, e.g. `fault.start`, `agent.flush`, `host.crash`.
    pub kind: EventKind,
    /// Free text with the details; part of the hash, so it must be deterministic too.
    pub detail: String,
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.true_nanos / 1_000_000_000;
        let millis = (self.true_nanos % 1_000_000_000) / 1_000_000;
        write!(f, "{secs:>6}.{millis:03}s {:<16} {:<20} {}", self.host, self.kind, self.detail)
    }
}

/// The shared, append-only event log of one run. Cloning shares it.
#[derive(Clone)]
pub struct EventLog {
    inner: Arc<Mutex<EventLogInner>>,
}

struct EventLogInner {
    hasher: Sha256,
    events_count: u64,
    kept: Vec<Event>,
    kept_limit: usize,
}

/// The identity of a run: the SHA-256 of its whole event log.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventLogHash(pub [u8; 32]);

impl EventLogHash {
    /// The first 16 hex digits: what reports print next to the seed.
    pub fn short(&self) -> String {
        self.to_string()[..16].to_string()
    }
}

impl fmt::Display for EventLogHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for byte in self.0 {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

impl EventLog {
    /// An empty log keeping at most `kept_limit` events in memory (all are hashed).
    pub fn new(kept_limit: usize) -> Self {
        EventLog {
            inner: Arc::new(Mutex::new(EventLogInner {
                hasher: Sha256::new(),
                events_count: 0,
                kept: Vec::new(),
                kept_limit,
            })),
        }
    }

    /// Record an event at an explicit true time (the harness, between steps).
    ///
    /// Events are kept in the order recorded, not sorted by time: within one tick turmoil
    /// runs hosts one after another and each host's timers fire inside the tick, so host B
    /// may record at t+3 ms after host A recorded at t+9 ms. That order is itself
    /// deterministic (turmoil steps hosts in registration order), so it is hashed as is.
    pub(crate) fn record_at(&self, true_elapsed: Duration, host: &Arc<str>, kind: EventKind, detail: String) {
        let true_nanos = u64::try_from(true_elapsed.as_nanos()).unwrap_or(u64::MAX);
        let mut inner = self.lock();
        // Length-prefixed fields make the encoding unambiguous: ("ab","c") ≠ ("a","bc").
        inner.hasher.update(true_nanos.to_le_bytes());
        // The kind is hashed as its string form: the hash is over the log's text.
        for field in [host.as_bytes(), kind.as_str().as_bytes(), detail.as_bytes()] {
            inner.hasher.update((field.len() as u64).to_le_bytes());
            inner.hasher.update(field);
        }
        inner.events_count += 1;
        if inner.kept.len() < inner.kept_limit {
            inner.kept.push(Event { true_nanos, host: Arc::clone(host), kind, detail });
        }
    }

    /// Record an event now, from inside a simulated host.
    pub fn record(&self, host: &Arc<str>, kind: EventKind, detail: String) {
        self.record_at(super::clock::true_elapsed_now(), host, kind, detail);
    }

    /// The hash of every event recorded so far.
    pub fn hash(&self) -> EventLogHash {
        EventLogHash(self.lock().hasher.clone().finalize().into())
    }

    /// How many events were recorded (kept or not).
    pub fn events_count(&self) -> u64 {
        self.lock().events_count
    }

    /// The kept events, oldest first (at most the kept limit; the hash covers all).
    pub fn kept(&self) -> Vec<Event> {
        self.lock().kept.clone()
    }

    /// Writes the kept events as text, one per line, with a header naming the hash and how
    /// many events were not kept.
    pub fn write_text(&self, out: &mut impl std::io::Write) -> std::io::Result<()> {
        let inner = self.lock();
        let hash = EventLogHash(inner.hasher.clone().finalize().into());
        writeln!(out, "# event log: {} events, hash {hash}", inner.events_count)?;
        let dropped = inner.events_count - inner.kept.len() as u64;
        if dropped > 0 {
            writeln!(out, "# the last {dropped} events are hashed but not kept (limit {})", inner.kept_limit)?;
        }
        for event in &inner.kept {
            writeln!(out, "{event}")?;
        }
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, EventLogInner> {
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(name: &str) -> Arc<str> {
        Arc::from(name)
    }

    #[test]
    fn equal_logs_hash_equal_and_any_difference_shows() {
        let make = |detail: &str| {
            let log = EventLog::new(10);
            log.record_at(Duration::from_millis(10), &host("a"), EventKind::Test, "1".into());
            log.record_at(Duration::from_millis(20), &host("b"), EventKind::HostStart, detail.into());
            log.hash()
        };
        assert_eq!(make("2"), make("2"));
        assert_ne!(make("2"), make("3"));
    }

    #[test]
    fn field_boundaries_are_part_of_the_hash() {
        let a = EventLog::new(10);
        a.record_at(Duration::ZERO, &host("ab"), EventKind::Test, "c".into());
        let b = EventLog::new(10);
        b.record_at(Duration::ZERO, &host("a"), EventKind::Test, "bc".into());
        assert_ne!(a.hash(), b.hash());
    }

    #[test]
    fn the_kept_limit_bounds_memory_but_not_the_hash() {
        let log = EventLog::new(2);
        for i in 0..5u64 {
            log.record_at(Duration::from_secs(i), &host("h"), EventKind::Test, i.to_string());
        }
        assert_eq!(log.events_count(), 5);
        assert_eq!(log.kept().len(), 2);
        let mut text = Vec::new();
        log.write_text(&mut text).unwrap();
        let text = String::from_utf8(text).unwrap();
        assert!(text.contains("the last 3 events are hashed but not kept (limit 2)"), "{text}");
    }
}
