//! The records each client script sends, computed again here so a test can say exactly
//! which record is missing, duplicated or changed.
//!
//! Why the scripts send obsim's log record shape (FIDELITY.md "Interop clients"): the
//! aggregator keeps only entries that read as a `LogRecord`; any other map is counted as
//! "not log records" and dropped. Every record carries distinct ids: `obsim.source` = the
//! run's source, `obsim.seq` = i, a trace id, span id and job id made of both.

use std::collections::BTreeMap;

use obsim::proto::forward::EventTime;
use obsim::record::LogRecord;

/// A client run's records: what the script was told to send.
#[derive(Clone, Debug)]
pub struct Sent {
    /// The label the script writes in each body and `client` attribute.
    pub client: &'static str,
    /// The body text before ` record {i}` (the client and, for npm clients, the mode).
    pub body_prefix: String,
    /// `obsim.source`: distinct per run, so runs against one server never collide.
    pub source: u32,
    /// Records 0..count.
    pub count: u32,
    /// Entry i's time is t0 + i seconds (+ 250 ms, see `entry_time`).
    pub t0: u32,
    /// `time_unix_nano` as the script writes it.
    pub record_time: RecordTime,
}

/// How a script writes `time_unix_nano`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordTime {
    /// (t0 + i) s + 250 ms, in nanoseconds (a uint64 on the wire).
    Nanoseconds,
    /// i µs + 250 ns: a safe integer for @msgpack/msgpack 2.8, which writes integers past
    /// 2^53 as float64.
    SafeInteger,
}

/// The first entry time every test uses: 2026-12-01T00:00:00Z.
pub const T0_SECONDS: u32 = 1_796_083_200;
/// The sub-second part of every entry time the scripts give.
pub const ENTRY_NANOSECONDS: u32 = 250_000_000;

impl Sent {
    /// Record `i` exactly as the script builds it.
    pub fn record(&self, i: u32) -> LogRecord {
        let time_unix_nano = match self.record_time {
            RecordTime::Nanoseconds => u64::from(self.t0 + i) * 1_000_000_000 + u64::from(ENTRY_NANOSECONDS),
            RecordTime::SafeInteger => u64::from(i) * 1000 + 250,
        };
        let json = serde_json::json!({
            "time_unix_nano": time_unix_nano,
            "observed_time_unix_nano": time_unix_nano,
            "severity": "INFO",
            "body": format!("{} record {i}", self.body_prefix),
            "trace_id": format!("{:08x}{i:024x}", self.source),
            "span_id": format!("{:016x}", i + 1),
            "job_id": format!("job-00000000-0000-4000-8000-{:04x}{i:08x}", self.source),
            "obsim.source": self.source,
            "obsim.seq": i,
            "attributes": { "client": self.client, "n": i },
        });
        serde_json::from_value(json).unwrap_or_else(|error| panic!("expected record {i} is not a LogRecord: {error}"))
    }

    /// Entry `i`'s Forward time when the client sends t0 + i s + 250 ms.
    pub fn entry_time(&self, i: u32) -> EventTime {
        EventTime::new(self.t0 + i, ENTRY_NANOSECONDS).expect("250 ms is below a second")
    }

    /// Asserts `got` holds every record exactly once, unchanged, and nothing else of this
    /// run; `where_` names what was read (a capture, a Redis list).
    pub fn assert_exactly_once(&self, got: &[LogRecord], where_: &str) {
        let mine: Vec<&LogRecord> = got.iter().filter(|record| record.id.source.0 == self.source).collect();
        let mut by_seq: BTreeMap<u64, Vec<&LogRecord>> = BTreeMap::new();
        for record in &mine {
            by_seq.entry(record.id.seq).or_default().push(record);
        }
        for i in 0..self.count {
            let expected = self.record(i);
            match by_seq.get(&u64::from(i)).map(Vec::as_slice) {
                None | Some([]) => panic!("{}: record {i} (source {}) missing in {where_}", self.client, self.source),
                Some([one]) => assert_eq!(**one, expected, "{}: record {i} changed in {where_}", self.client),
                Some(many) => panic!("{}: record {i} arrived {} times in {where_}", self.client, many.len()),
            }
        }
        let unknown: Vec<u64> = by_seq.keys().copied().filter(|seq| *seq >= u64::from(self.count)).collect();
        assert!(unknown.is_empty(), "{}: records never sent arrived in {where_}: seq {unknown:?}", self.client);
    }
}
