//! Buffer gauges: every bounded buffer reports how full it is and the limit in force, and
//! each write it admitted is judged against the rule of the software it models (the
//! `bounds` check, `crate::check::bounds`, reads the result).
//!
//! Why judge admissions and not the level: a limit can shrink below what a buffer already
//! holds (the `backpressure` fault, an operator's `CONFIG SET maxmemory`). The buffer is
//! then over its limit through no fault of its own; what the real software promises is not
//! to *take more* while full. So a part reports two kinds of change:
//! - [`GaugeHandle::admit`]: it took a write — the level before and after, and the limit it
//!   judged the write against. Admissions are judged by the buffer's [`Bound`].
//! - [`GaugeHandle::level`]: the level or the limit moved for any other reason (drained,
//!   dropped, crashed and restarted, the limit changed, a write the limit does not govern).
//!
//! Both move the peak, which the verdict shows next to the limit in force at that moment.
//!
//! Why a handle per buffer: parts report per chunk or batch; a report locks only its own
//! buffer's gauge (no map lookup, no string compare). A handle outlives a restart of its
//! host: the harness keeps the gauges, as it keeps the ledger.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::units::format_duration;
use crate::vocab::Part;

/// What a gauge counts. Names of buffers carry it too (`buffer_bytes`, `sending_queue_batches`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Unit {
    Bytes,
    Batches,
}

impl Unit {
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Bytes => "bytes",
            Unit::Batches => "batches",
        }
    }
}

/// How a buffer enforces its limit: what the real software lets through, so that a part
/// which does exactly that passes and one that ignores its limit fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bound {
    /// The limit is checked *before* each write, and the write is then taken whole. A write is
    /// admitted only while the level is below the limit (or at it, with `admits_at_limit`);
    /// one admitted write may carry the level past the limit — by at most `overshoot_limit`
    /// when the largest write is known, by one write of any size when `None`.
    /// - Fluentd's `total_limit_size`: `Buffer#write` raises `BufferOverflowError` unless
    ///   `storable?` (`total_limit_size > stage_size + queue_size`), then appends the whole
    ///   event stream: one Forward frame or in_http body past the limit, at most.
    /// - Fluent Bit's `mem_buf_limit`: the docs' own example (limit 1 MB, 700 KB buffered:
    ///   a 500 KB append is *allowed*, 1.2 MB, then the input pauses): one append past the
    ///   limit; its size is whatever the input read (no setting bounds it: `None`).
    /// - Redis's `maxmemory`: `processCommand` refuses `denyoom` commands while
    ///   `used_memory > maxmemory`; an admitted command may push memory past it by its own
    ///   size (`None`).
    Admission { admits_at_limit: bool, overshoot_limit: Option<u64> },
    /// Never refuses a write; after it, the oldest data that is not busy is discarded until
    /// the level is within the limit. The level may stay above the limit only when nothing
    /// discardable is left (Fluent Bit's `storage.total_limit_size`: the chunk being filled
    /// and the chunk being sent are not discarded). The part reports what it could still
    /// discard with each admission.
    Discards,
}

impl Bound {
    /// Why an admission breaks this bound, if it does. A limit of 0 means "no limit"
    /// (Redis `maxmemory 0`).
    pub(crate) fn broken_by(&self, sample: &Sample) -> Option<String> {
        let Sample { before, after, limit, discardable, .. } = *sample;
        if limit == 0 || after <= limit {
            return None;
        }
        match *self {
            Bound::Admission { admits_at_limit, overshoot_limit } => {
                let full = if admits_at_limit { before > limit } else { before >= limit };
                if full {
                    Some(format!(
                        "took a write while already {} its limit ({before} held): the part does not refuse when full",
                        if before > limit { "over" } else { "at" }
                    ))
                } else {
                    overshoot_limit.filter(|&overshoot| after - limit > overshoot).map(|overshoot| {
                        format!(
                            "one write carried it {} past the limit, more than the {overshoot} one write may",
                            after - limit
                        )
                    })
                }
            }
            Bound::Discards => (discardable > 0).then(|| {
                format!(
                    "stayed {} above the limit after a write while {discardable} of its data could have been discarded",
                    after - limit
                )
            }),
        }
    }

    /// What an admission may reach under `limit`, in words, for the verdict.
    pub fn allowed(&self, limit: u64) -> String {
        match *self {
            Bound::Admission { admits_at_limit, overshoot_limit } => {
                let admits = if admits_at_limit { "at or below" } else { "below" };
                match overshoot_limit {
                    Some(overshoot) => {
                        format!("writes only while {admits} {limit}, each at most {overshoot} past it")
                    }
                    None => format!("writes only while {admits} {limit}, one write past it"),
                }
            }
            Bound::Discards => format!("{limit}, or more only with nothing left to discard"),
        }
    }
}

/// One admitted write: levels before and after, the limit it was judged against, what the
/// part could still have discarded (for [`Bound::Discards`]; else 0), and when (true time
/// since the run began).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sample {
    pub before: u64,
    pub after: u64,
    pub limit: u64,
    pub(crate) discardable: u64,
    pub at: Duration,
}

impl Sample {
    /// `after / limit`; `None` without a limit.
    pub fn fill(&self) -> Option<f64> {
        (self.limit > 0).then(|| self.after as f64 / self.limit as f64)
    }
}

/// Which buffer: the host it runs on and its name (unit last: `buffer_bytes`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct BufferId {
    pub host: String,
    pub buffer: &'static str,
}

impl std::fmt::Display for BufferId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.host, self.buffer)
    }
}

/// What a buffer is, given when it registers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GaugeSpec {
    pub part: Part,
    /// The setting the limit comes from, as the real software names it (`total_limit_size`).
    pub limit_name: &'static str,
    pub unit: Unit,
    pub bound: Bound,
    /// The limit in force at registration (0 = none).
    pub limit: u64,
}

/// One buffer's history, as the verdict reads it. Amounts are in `unit`.
#[derive(Clone, Debug, PartialEq)]
pub struct Gauge {
    pub part: Part,
    pub limit_name: &'static str,
    pub unit: Unit,
    pub bound: Bound,
    /// The level and the limit in force now (0 = no limit).
    pub current: u64,
    pub limit: u64,
    /// The highest level ever, when, and the limit in force then.
    pub peak: u64,
    pub(crate) peak_at: Duration,
    pub(crate) limit_at_peak: u64,
    /// Writes admitted.
    pub admissions_count: u64,
    /// The admission that left the buffer fullest relative to its limit then.
    pub fullest: Option<Sample>,
    /// Admissions that broke the bound, and the first of them.
    pub violations_count: u64,
    pub first_violation: Option<Sample>,
}

impl Gauge {
    fn new(spec: GaugeSpec) -> Gauge {
        Gauge {
            part: spec.part,
            limit_name: spec.limit_name,
            unit: spec.unit,
            bound: spec.bound,
            current: 0,
            limit: spec.limit,
            peak: 0,
            peak_at: Duration::ZERO,
            limit_at_peak: spec.limit,
            admissions_count: 0,
            fullest: None,
            violations_count: 0,
            first_violation: None,
        }
    }

    pub(crate) fn set_level(&mut self, current: u64, limit: u64, at: Duration) {
        self.current = current;
        self.limit = limit;
        if current > self.peak {
            self.peak = current;
            self.peak_at = at;
            self.limit_at_peak = limit;
        }
    }

    pub(crate) fn admit(&mut self, sample: Sample) {
        self.set_level(sample.after, sample.limit, sample.at);
        self.admissions_count += 1;
        if let Some(fill) = sample.fill()
            && self.fullest.and_then(|fullest| fullest.fill()).is_none_or(|fullest| fill > fullest)
        {
            self.fullest = Some(sample);
        }
        if self.bound.broken_by(&sample).is_some() {
            self.violations_count += 1;
            self.first_violation.get_or_insert(sample);
        }
    }

    /// `peak/limit unit (limit_name) at t`, and the fullest admission when it was judged
    /// against another limit (a shrunk one) or is not the peak.
    pub(crate) fn describe_peak(&self) -> String {
        let limit = if self.limit_at_peak == 0 { "no limit".to_string() } else { self.limit_at_peak.to_string() };
        let mut text = format!(
            "peak {}/{limit} {} ({}) at {}",
            self.peak,
            self.unit.as_str(),
            self.limit_name,
            format_duration(self.peak_at)
        );
        if let Some(fullest) = self.fullest
            && (fullest.limit != self.limit_at_peak || fullest.after != self.peak)
        {
            let _ = write!(
                text,
                "; fullest write {}/{} at {} ({:.2} of the limit then)",
                fullest.after,
                fullest.limit,
                format_duration(fullest.at),
                fullest.fill().unwrap_or(0.0)
            );
        }
        text
    }

    /// How full the buffer got relative to its limit: the fullest admission, else the peak.
    pub(crate) fn fill(&self) -> f64 {
        match self.fullest.and_then(|fullest| fullest.fill()) {
            Some(fill) => fill,
            None if self.limit_at_peak > 0 => self.peak as f64 / self.limit_at_peak as f64,
            None => 0.0,
        }
    }
}

/// A part's handle on its buffer's gauge. `GaugeHandle::inert()` records nothing (a part
/// run on its own, outside a pipeline).
#[derive(Clone, Debug, Default)]
pub struct GaugeHandle {
    pub(crate) gauge: Option<Arc<Mutex<Gauge>>>,
}

impl GaugeHandle {
    /// A handle that records nothing.
    pub(crate) fn inert() -> GaugeHandle {
        GaugeHandle::default()
    }

    /// The buffer took a write: its level went from `before` to `after` (a growth is
    /// judged; anything else is recorded as a level), judged against `limit`.
    /// Called from inside a host (reads true time).
    pub(crate) fn admit(&self, before: u64, after: u64, limit: u64) {
        self.admit_discarding(before, after, limit, 0);
    }

    /// `admit` for a buffer that makes room by discarding ([`Bound::Discards`]):
    /// `discardable` is what it could still discard after making room.
    pub(crate) fn admit_discarding(&self, before: u64, after: u64, limit: u64, discardable: u64) {
        let Some(gauge) = &self.gauge else { return };
        let at = crate::world::true_elapsed_now();
        let mut gauge = gauge.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if after > before {
            gauge.admit(Sample { before, after, limit, discardable, at });
        } else {
            gauge.set_level(after, limit, at);
        }
    }

    /// The level or the limit moved for a reason the bound does not judge.
    /// Called from inside a host (reads true time).
    pub fn level(&self, current: u64, limit: u64) {
        let Some(gauge) = &self.gauge else { return };
        let at = crate::world::true_elapsed_now();
        gauge.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).set_level(current, limit, at);
    }
}

/// Every buffer's gauge in a run. Clones share them; the pipeline hands a clone to each
/// part through its control handle.
#[derive(Clone, Debug, Default)]
pub(crate) struct BufferGauges {
    inner: Arc<Mutex<BTreeMap<BufferId, Arc<Mutex<Gauge>>>>>,
}

impl BufferGauges {
    pub fn new() -> BufferGauges {
        BufferGauges::default()
    }

    /// The gauge of `buffer` on `host`, created on first use. A new incarnation of the host
    /// registers again: the level starts from 0 (its memory is gone; a part that loads
    /// state reports it with `level`), the history stays.
    pub fn register(&self, host: &str, buffer: &'static str, spec: GaugeSpec) -> GaugeHandle {
        let mut gauges = self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let id = BufferId { host: host.to_string(), buffer };
        let gauge = gauges.entry(id).or_insert_with(|| Arc::new(Mutex::new(Gauge::new(spec))));
        {
            let mut gauge = gauge.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            gauge.part = spec.part;
            gauge.limit_name = spec.limit_name;
            gauge.unit = spec.unit;
            gauge.bound = spec.bound;
            gauge.current = 0;
            gauge.limit = spec.limit;
        }
        GaugeHandle { gauge: Some(Arc::clone(gauge)) }
    }

    /// Every gauge as it stands, in (host, buffer) order.
    pub fn snapshot(&self) -> BTreeMap<BufferId, Gauge> {
        let gauges = self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        gauges
            .iter()
            .map(|(id, gauge)| (id.clone(), gauge.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()))
            .collect()
    }
}
