//! Time series of one run, collected while it runs: per 10 s window of true time, the emit →
//! Dash0 latency of the records delivered in it, how many were delivered, and the most
//! records each part held at once.
//!
//! Why collected during the run and not rebuilt afterwards: the ledger forgets *when* a
//! record was delivered or held (it keeps compact range sets, ARCHITECTURE.md §4), and a verdict
//! that says "p99 9 s" without saying *when* cannot tell a steady 9 s from a fault's spike.
//!
//! Why windows are keyed by **delivery** time: deliveries come in true-time order (Dash0 is
//! one host, and true time only moves forward), so only the current window's histogram is
//! ever written. One small histogram per signal is reused window after window and summarised
//! when time moves on: memory stays O(windows) of a few words each, never O(windows ×
//! histogram). The plot then reads "records stored at Dash0 during [t, t+10 s) had waited
//! this long": a fault shows as a latency spike when its backlog drains.
//!
//! Cost: the ledger calls in per batch (a run of consecutive records with one emit time),
//! never per record; the hot path records into a preallocated histogram and allocates only
//! when a new window starts (amortised `Vec` growth).

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;

use crate::vocab::pipeline::{PARTS, custody_rank};
use crate::vocab::{Part, Signal};

/// The window every series is counted in, and the throughput check's window: 10 s.
pub(crate) const WINDOW: Duration = Duration::from_secs(10);

/// Most windows one run may have: 24 hours of true time. A run's windows are bounded by
/// (duration + drain) / WINDOW (the verdict asserts it); this is the recorder's own bound.
pub(crate) const WINDOWS_LIMIT: usize = 8_640;

/// Significant digits of the per-window histograms: 1 % precision is plenty for a plot, and
/// keeps each histogram a few thousand 4-byte counters.
const WINDOW_HISTOGRAM_SIGFIG: u8 = 2;

/// Latency of the records first delivered in one window (microseconds; all 0 when none).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WindowLatency {
    /// Records first delivered to Dash0 in the window (duplicates not counted).
    pub delivered_count: u64,
    pub(crate) p50_micros: u64,
    pub(crate) p90_micros: u64,
    pub p99_micros: u64,
    pub max_micros: u64,
}

impl WindowLatency {
    fn of(histogram: &Histogram<u32>) -> WindowLatency {
        if histogram.is_empty() {
            return WindowLatency::default();
        }
        WindowLatency {
            delivered_count: histogram.len(),
            p50_micros: histogram.value_at_quantile(0.50),
            p90_micros: histogram.value_at_quantile(0.90),
            p99_micros: histogram.value_at_quantile(0.99),
            max_micros: histogram.max(),
        }
    }
}

/// A finished run's time series. Every series has `windows_count` entries; window k covers
/// true time [k·window, (k+1)·window).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Timeline {
    pub window: Duration,
    pub(crate) windows_count: usize,
    /// Log latency per window, keyed by delivery time.
    pub log: Vec<WindowLatency>,
    /// Span latency per window, keyed by delivery time.
    pub span: Vec<WindowLatency>,
    /// Per part that ever held a record: the most records all its custodians (every host's
    /// instance of the part) held at once within each window.
    pub(crate) held_peaks: BTreeMap<Part, Vec<u64>>,
    /// Deliveries whose time fell in a window already closed (folded into the open one);
    /// 0 unless hosts' clocks raced within a tick.
    pub(crate) late_deliveries_count: u64,
}

impl Timeline {
    /// The latency series of `signal`.
    pub fn latency(&self, signal: Signal) -> &[WindowLatency] {
        match signal {
            Signal::Log => &self.log,
            Signal::Span => &self.span,
        }
    }
}

/// One signal's series while the run goes.
struct SignalSeries {
    /// Summaries of closed windows; the open window is `closed.len()`.
    closed: Vec<WindowLatency>,
    /// The open window's histogram (allocated on the first delivery, then reset per window).
    open: Option<Histogram<u32>>,
}

impl SignalSeries {
    fn new() -> SignalSeries {
        SignalSeries { closed: Vec::new(), open: None }
    }

    /// Closes windows until `window` is the open one (no-op when it already is or is past).
    fn advance_to(&mut self, window: usize) {
        while self.closed.len() < window {
            let summary = self.open.as_ref().map_or_else(WindowLatency::default, WindowLatency::of);
            self.closed.push(summary);
            if let Some(histogram) = self.open.as_mut() {
                histogram.reset();
            }
        }
    }

    fn summaries(&self, windows_count: usize) -> Vec<WindowLatency> {
        let mut all = self.closed.clone();
        if all.len() < windows_count {
            all.push(self.open.as_ref().map_or_else(WindowLatency::default, WindowLatency::of));
        }
        all.resize(windows_count.max(all.len()), WindowLatency::default());
        all
    }
}

/// One part's held count while the run goes.
#[derive(Default)]
struct PartSeries {
    /// Records all custodians of the part hold now.
    held_count: u64,
    /// Peak per window so far; the last entry is the open window.
    peaks: Vec<u64>,
    /// Whether the part ever held anything (parts that never did get no line).
    ever_held: bool,
}

/// Collects the time series; lives in the ledger, which calls it on every deliver, hold,
/// release, drop and crash.
pub(crate) struct TimelineRecorder {
    window_nanos: u64,
    log: SignalSeries,
    span: SignalSeries,
    parts: [PartSeries; PARTS_COUNT],
    /// The latest true time seen: times never go back, and calls made outside a simulated
    /// host (the harness crashing a host between steps) happen "now", at this time.
    last_nanos: u64,
    late_deliveries_count: u64,
}

/// One series per part of the pipeline's list, indexed by custody rank.
const PARTS_COUNT: usize = PARTS.len();

impl Default for TimelineRecorder {
    fn default() -> Self {
        TimelineRecorder::new(WINDOW)
    }
}

impl TimelineRecorder {
    /// An empty recorder counting in windows of `window`.
    pub fn new(window: Duration) -> TimelineRecorder {
        assert!(!window.is_zero(), "a timeline window is longer than 0");
        TimelineRecorder {
            window_nanos: u64::try_from(window.as_nanos()).expect("a window shorter than 584 years"),
            log: SignalSeries::new(),
            span: SignalSeries::new(),
            parts: Default::default(),
            last_nanos: 0,
            late_deliveries_count: 0,
        }
    }

    /// The window of true time `nanos` (which must be within the limit).
    fn window_of(&self, nanos: u64) -> usize {
        let window = usize::try_from(nanos / self.window_nanos).unwrap_or(usize::MAX);
        assert!(
            window < WINDOWS_LIMIT,
            "true time {}s is past the timeline's {WINDOWS_LIMIT} windows of {}s",
            nanos / 1_000_000_000,
            self.window_nanos / 1_000_000_000
        );
        window
    }

    /// The current true time: the simulated host's when called from one, else the latest
    /// seen. Never earlier than a time already seen.
    fn now_nanos(&mut self) -> u64 {
        if let Some(elapsed) = turmoil::sim_elapsed() {
            let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
            self.last_nanos = self.last_nanos.max(nanos);
        }
        self.last_nanos
    }

    /// `count` records of `signal` were first delivered at true time `true_nanos`, each
    /// after `latency_micros`.
    pub fn delivered(&mut self, signal: Signal, true_nanos: u64, latency_micros: u64, count: u64) {
        self.last_nanos = self.last_nanos.max(true_nanos);
        let window = self.window_of(true_nanos);
        let series = match signal {
            Signal::Log => &mut self.log,
            Signal::Span => &mut self.span,
        };
        if window < series.closed.len() {
            self.late_deliveries_count += count;
        }
        series.advance_to(window);
        let histogram = series.open.get_or_insert_with(new_window_histogram);
        histogram.saturating_record_n(latency_micros.max(1), u32::try_from(count).unwrap_or(u32::MAX));
    }

    /// The custodians of `part` together now hold `before - removed + added` records
    /// instead of `before`: called with the change of one call to the ledger.
    pub(crate) fn held_changed(&mut self, part: Part, added: u64, removed: u64) {
        if added == 0 && removed == 0 {
            return;
        }
        let now = self.now_nanos();
        let window = self.window_of(now);
        let series = &mut self.parts[custody_rank(part)];
        // Windows since the last change carried the level held then.
        while series.peaks.len() <= window {
            series.peaks.push(series.held_count);
        }
        assert!(removed <= series.held_count + added, "{part} cannot release more than its custodians hold");
        series.held_count = series.held_count + added - removed;
        series.ever_held = true;
        let open = series.peaks.last_mut().expect("at least one window");
        *open = (*open).max(series.held_count);
    }

    /// The series so far, over `windows_count` windows at least (the run's length).
    pub fn finish(&self, windows_count: usize) -> Timeline {
        let windows_count = windows_count
            .max(self.log.closed.len() + usize::from(self.log.open.is_some()))
            .max(self.span.closed.len() + usize::from(self.span.open.is_some()))
            .max(self.parts.iter().map(|series| series.peaks.len()).max().unwrap_or(0));
        let held_peaks = PARTS
            .iter()
            .zip(&self.parts)
            .filter(|(_, series)| series.ever_held)
            .map(|(&part, series)| {
                let mut peaks = series.peaks.clone();
                // Windows after the last change hold the level left then.
                peaks.resize(windows_count, series.held_count);
                (part, peaks)
            })
            .collect();
        Timeline {
            window: Duration::from_nanos(self.window_nanos),
            windows_count,
            log: self.log.summaries(windows_count),
            span: self.span.summaries(windows_count),
            held_peaks,
            late_deliveries_count: self.late_deliveries_count,
        }
    }
}

/// A window's latency histogram: 1 µs to 1 day at 2 significant digits, 4-byte counters.
fn new_window_histogram() -> Histogram<u32> {
    Histogram::new_with_bounds(1, 86_400_000_000, WINDOW_HISTOGRAM_SIGFIG).expect("valid histogram bounds")
}

/// How many windows of `window` cover `elapsed` (a window begun is counted).
pub(crate) fn windows_covering(elapsed: Duration, window: Duration) -> usize {
    usize::try_from(elapsed.as_nanos().div_ceil(window.as_nanos())).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: u64 = 1_000_000_000;

    #[test]
    fn latency_is_summarised_per_delivery_window_and_empty_windows_are_zero() {
        let mut recorder = TimelineRecorder::new(WINDOW);
        recorder.delivered(Signal::Log, 2 * SECOND, 1_000_000, 99);
        recorder.delivered(Signal::Log, 3 * SECOND, 5_000_000, 1);
        recorder.delivered(Signal::Log, 31 * SECOND, 2_000, 10);
        recorder.delivered(Signal::Span, 12 * SECOND, 400, 3);
        let timeline = recorder.finish(5);
        assert_eq!(timeline.windows_count, 5);
        let log = &timeline.log;
        assert_eq!(log.len(), 5);
        assert_eq!(log[0].delivered_count, 100);
        assert!(log[0].p50_micros.abs_diff(1_000_000) <= 10_000, "{:?}", log[0]);
        assert!(log[0].max_micros.abs_diff(5_000_000) <= 50_000, "{:?}", log[0]);
        assert_eq!((log[1], log[2]), (WindowLatency::default(), WindowLatency::default()));
        assert_eq!(log[3].delivered_count, 10);
        assert_eq!(log[4], WindowLatency::default());
        assert_eq!(timeline.span[1].delivered_count, 3);
        assert_eq!(timeline.late_deliveries_count, 0);
    }

    #[test]
    fn a_late_delivery_folds_into_the_open_window_and_is_counted() {
        let mut recorder = TimelineRecorder::new(WINDOW);
        recorder.delivered(Signal::Log, 25 * SECOND, 10, 1);
        recorder.delivered(Signal::Log, 5 * SECOND, 10, 4);
        let timeline = recorder.finish(3);
        assert_eq!(timeline.log[2].delivered_count, 5);
        assert_eq!(timeline.late_deliveries_count, 4);
    }

    #[test]
    fn held_peaks_carry_the_level_into_quiet_windows() {
        let mut recorder = TimelineRecorder::new(WINDOW);
        // Outside a simulated host, the time is the latest seen: set it with a delivery.
        recorder.held_changed(Part::Aggregator, 40, 0); // window 0: 40
        recorder.held_changed(Part::Aggregator, 0, 30); // 10
        recorder.delivered(Signal::Log, 35 * SECOND, 1, 1);
        recorder.held_changed(Part::Aggregator, 5, 0); // window 3: 15
        recorder.held_changed(Part::Aggregator, 0, 15); // 0
        recorder.held_changed(Part::Redis, 0, 0); // no change: no line
        let timeline = recorder.finish(5);
        assert_eq!(timeline.held_peaks.keys().copied().collect::<Vec<_>>(), vec![Part::Aggregator]);
        assert_eq!(timeline.held_peaks[&Part::Aggregator], vec![40, 10, 10, 15, 0]);
    }

    #[test]
    fn a_window_histogram_stays_small() {
        // 1 µs .. 1 day at 2 digits: a few thousand u32 counters, reused every window.
        let histogram = new_window_histogram();
        assert!(histogram.distinct_values() <= 4_096, "{} counters", histogram.distinct_values());
    }

    #[test]
    #[should_panic(expected = "past the timeline's")]
    fn the_window_limit_is_asserted() {
        let mut recorder = TimelineRecorder::new(WINDOW);
        recorder.delivered(Signal::Log, (WINDOWS_LIMIT as u64 + 1) * 10 * SECOND, 1, 1);
    }
}
