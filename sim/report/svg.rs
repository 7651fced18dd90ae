//! SVG plots, written by hand: line plots (time series, the percentile curve), bar plots
//! (a histogram across seeds) and scatter plots (latency by emit time, with the records that
//! never arrived in a band at the top), with axes, tick labels, a legend and shaded fault
//! windows. A logarithmic axis is a linear axis over log10 of the values with ticks placed
//! at round latencies ([`log_latency_axis`]), so every plot shares one frame.
//!
//! Why by hand and not a plotting crate: the report must open with no network and no
//! scripts (ARCHITECTURE.md §5), and be byte-identical for the same run. A few hundred lines of
//! string building give both; every text is escaped, so the output is well-formed XML that
//! a test parses.
//!
//! Decision on plotters (issue 15 asked to adopt one "if the SVG code grows"), taken when the
//! scatter was added: kept by hand. Reasons: (1) the scatter and the log axis added some 200
//! lines, reusing the frame, ticks, bands and legend already here; plotters' SVG backend
//! would replace them with a dependency tree of its own (plotters, plotters-svg,
//! plotters-backend, and a font stack for text layout) that every builder of obsim compiles;
//! (2) plotters lays text out with a font it must load (or embed, some hundred kilobytes in
//! the binary) and writes coordinates from its own float formatting: byte-identical output
//! per seed would then hang on plotters' version, where here `num` fixes every number to two
//! decimals; (3) the tests read the plots as data (`data-series`, `class` per mark, `<title>`
//! per mark and band): plotters writes bare shapes, so the tests would have to guess from
//! colours; (4) the page must stay well-formed XML for the tests' parser, which this module
//! guarantees by escaping every text. Revisit when a plot needs what is costly here (text
//! measured for layout, many plot kinds).

use std::fmt::Write as _;

/// The plot's size in SVG user units.
const WIDTH: f64 = 880.0;
const HEIGHT: f64 = 320.0;
/// Room around the plot area for tick labels, axis labels, the title and the legend.
const MARGIN_LEFT: f64 = 72.0;
const MARGIN_RIGHT: f64 = 24.0;
const MARGIN_TOP: f64 = 56.0;
const MARGIN_BOTTOM: f64 = 48.0;

/// Most points one line may draw: bounds the file (a run's windows are far fewer).
pub(crate) const POINTS_LIMIT: usize = 100_000;

/// Colours for lines, in order; chosen to stay apart for the colour-blind (Okabe–Ito).
pub(crate) const PALETTE: [&str; 8] =
    ["#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#000000", "#f0e442"];

/// Escapes text for XML content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // XML 1.0 refuses most control characters even escaped.
            c if (c as u32) < 0x20 && !matches!(c, '\n' | '\t' | '\r') => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// A number as SVG writes it: two decimals, no trailing noise.
fn num(value: f64) -> String {
    let rounded = (value * 100.0).round() / 100.0;
    if rounded == rounded.trunc() { format!("{}", rounded as i64) } else { format!("{rounded}") }
}

/// An axis: its range, its ticks (value, label) and its name.
#[derive(Clone, Debug)]
pub(crate) struct Axis {
    pub label: String,
    pub min: f64,
    pub max: f64,
    pub ticks: Vec<(f64, String)>,
}

impl Axis {
    /// An axis from `min` to at least `max` with about `count` round ticks labelled by
    /// `label_of`; the range is widened to the outer ticks.
    pub(crate) fn nice(label: &str, min: f64, max: f64, count: usize, label_of: impl Fn(f64) -> String) -> Axis {
        let max = if max > min { max } else { min + 1.0 };
        let step = nice_step((max - min) / count.max(1) as f64);
        let first = (min / step).floor() * step;
        let last = (max / step).ceil() * step;
        let mut ticks = Vec::new();
        let mut value = first;
        // Bounded: (last - first) / step ≤ count + 2 by construction.
        for _ in 0..=count + 2 {
            if value > last + step * 1e-9 {
                break;
            }
            ticks.push((value, label_of(value)));
            value += step;
        }
        Axis { label: label.to_string(), min: first, max: last, ticks }
    }
}

impl Axis {
    /// An axis of whole counts from 0 to at least `max`: like `nice`, with steps of at least 1.
    pub fn counts(label: &str, max: f64, count: usize) -> Axis {
        let max = max.max(1.0);
        if max / count.max(1) as f64 >= 1.0 {
            return Axis::nice(label, 0.0, max, count, plain);
        }
        let last = max.ceil();
        let ticks = (0..=last as usize).map(|k| (k as f64, plain(k as f64))).collect();
        Axis { label: label.to_string(), min: 0.0, max: last, ticks }
    }

    /// A time axis from 0 to at least `max_seconds` with about `count` ticks at durations a
    /// reader counts in (10 s, 30 s, 1 m, 5 m, …), labelled like scenarios write them.
    pub fn time(label: &str, max_seconds: f64, count: usize) -> Axis {
        const STEPS_SECONDS: [f64; 16] =
            [1.0, 2.0, 5.0, 10.0, 15.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0, 21600.0];
        let max_seconds = if max_seconds > 0.0 { max_seconds } else { 1.0 };
        let raw = max_seconds / count.max(1) as f64;
        let step = STEPS_SECONDS.iter().copied().find(|step| *step >= raw).unwrap_or_else(|| nice_step(raw));
        let last = (max_seconds / step).ceil() * step;
        let ticks_count = (last / step).round() as usize;
        let ticks = (0..=ticks_count).map(|k| (k as f64 * step, time_label(k as f64 * step))).collect();
        Axis { label: label.to_string(), min: 0.0, max: last, ticks }
    }
}

/// A round step (1, 2, 2.5 or 5 × 10^k) near `raw`.
fn nice_step(raw: f64) -> f64 {
    if !(raw.is_finite() && raw > 0.0) {
        return 1.0;
    }
    let magnitude = 10f64.powf(raw.log10().floor());
    let fraction = raw / magnitude;
    let nice = if fraction <= 1.0 {
        1.0
    } else if fraction <= 2.0 {
        2.0
    } else if fraction <= 2.5 {
        2.5
    } else if fraction <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * magnitude
}

/// One line: points in data units; `None` breaks the line (a window with no data).
#[derive(Clone, Debug)]
pub(crate) struct Line {
    pub label: String,
    pub(crate) color: &'static str,
    pub(crate) dashed: bool,
    pub points: Vec<Option<(f64, f64)>>,
}

/// A shaded span of x (a fault window), labelled at its top.
#[derive(Clone, Debug)]
pub(crate) struct Band {
    pub from: f64,
    pub to: f64,
    pub label: String,
}

/// A vertical line at x (the start of the drain), labelled.
#[derive(Clone, Debug)]
pub(crate) struct Marker {
    pub at: f64,
    pub label: String,
}

/// A line plot.
#[derive(Clone, Debug)]
pub(crate) struct LinePlot {
    /// The `data-series` attribute: what the plot shows, for tests and scripts.
    pub series: &'static str,
    pub title: String,
    pub x: Axis,
    pub y: Axis,
    pub lines: Vec<Line>,
    pub(crate) bands: Vec<Band>,
    pub(crate) markers: Vec<Marker>,
}

/// Maps data to SVG coordinates inside the plot area.
struct Frame<'a> {
    x: &'a Axis,
    y: &'a Axis,
}

impl Frame<'_> {
    fn left() -> f64 {
        MARGIN_LEFT
    }
    fn right() -> f64 {
        WIDTH - MARGIN_RIGHT
    }
    fn top() -> f64 {
        MARGIN_TOP
    }
    fn bottom() -> f64 {
        HEIGHT - MARGIN_BOTTOM
    }

    fn px(&self, value: f64) -> f64 {
        let span = (self.x.max - self.x.min).max(f64::MIN_POSITIVE);
        let clamped = value.clamp(self.x.min, self.x.max);
        Self::left() + (clamped - self.x.min) / span * (Self::right() - Self::left())
    }

    fn py(&self, value: f64) -> f64 {
        let span = (self.y.max - self.y.min).max(f64::MIN_POSITIVE);
        let clamped = value.clamp(self.y.min, self.y.max);
        Self::bottom() - (clamped - self.y.min) / span * (Self::bottom() - Self::top())
    }
}

/// The opening tag, title and axes every plot shares.
fn open_plot(out: &mut String, series: &str, title: &str, frame: &Frame<'_>) {
    let _ = write!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"plot\" data-series=\"{}\" viewBox=\"0 0 {} {}\" width=\"{}\" height=\"{}\" role=\"img\" aria-label=\"{}\">",
        escape(series),
        num(WIDTH),
        num(HEIGHT),
        num(WIDTH),
        num(HEIGHT),
        escape(title)
    );
    let _ = write!(out, "<title>{}</title>", escape(title));
    let _ = write!(out, "<rect x=\"0\" y=\"0\" width=\"{}\" height=\"{}\" fill=\"#ffffff\"/>", num(WIDTH), num(HEIGHT));
    let _ = write!(out, "<text x=\"{}\" y=\"18\" class=\"plot-title\">{}</text>", num(Frame::left()), escape(title));
    // Grid and ticks.
    let _ = write!(out, "<g class=\"axis\">");
    for (value, label) in &frame.y.ticks {
        let y = frame.py(*value);
        let _ = write!(
            out,
            "<line x1=\"{}\" y1=\"{y}\" x2=\"{}\" y2=\"{y}\" stroke=\"#e4e4e4\"/><text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>",
            num(Frame::left()),
            num(Frame::right()),
            num(Frame::left() - 6.0),
            num(y + 4.0),
            escape(label),
            y = num(y)
        );
    }
    for (value, label) in &frame.x.ticks {
        let x = frame.px(*value);
        let _ = write!(
            out,
            "<line x1=\"{x}\" y1=\"{}\" x2=\"{x}\" y2=\"{}\" stroke=\"#999999\"/><text x=\"{x}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
            num(Frame::bottom()),
            num(Frame::bottom() + 5.0),
            num(Frame::bottom() + 18.0),
            escape(label),
            x = num(x)
        );
    }
    let _ = write!(
        out,
        "<line x1=\"{l}\" y1=\"{b}\" x2=\"{r}\" y2=\"{b}\" stroke=\"#333333\"/><line x1=\"{l}\" y1=\"{t}\" x2=\"{l}\" y2=\"{b}\" stroke=\"#333333\"/>",
        l = num(Frame::left()),
        r = num(Frame::right()),
        t = num(Frame::top()),
        b = num(Frame::bottom())
    );
    let _ = write!(
        out,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" class=\"axis-label\">{}</text>",
        num((Frame::left() + Frame::right()) / 2.0),
        num(HEIGHT - 8.0),
        escape(&frame.x.label)
    );
    let _ = write!(
        out,
        "<text x=\"14\" y=\"{y}\" text-anchor=\"middle\" transform=\"rotate(-90 14 {y})\" class=\"axis-label\">{}</text>",
        escape(&frame.y.label),
        y = num((Frame::top() + Frame::bottom()) / 2.0)
    );
    let _ = write!(out, "</g>");
}

/// The legend: a swatch and a label per entry, in a row under the title.
fn legend(out: &mut String, entries: &[(&str, &str, bool)]) {
    let _ = write!(out, "<g class=\"legend\">");
    let mut x = Frame::left();
    let y = 36.0;
    for (label, color, dashed) in entries {
        let _ = write!(
            out,
            "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"{}\" stroke-width=\"3\"{}/><text x=\"{}\" y=\"{}\">{}</text>",
            num(x),
            num(y),
            num(x + 18.0),
            num(y),
            escape(color),
            if *dashed { " stroke-dasharray=\"5 3\"" } else { "" },
            num(x + 22.0),
            num(y + 4.0),
            escape(label)
        );
        // Advance by the label's rough width (7 units a character at the legend's size).
        x += 34.0 + 7.0 * label.chars().count() as f64;
    }
    let _ = write!(out, "</g>");
}

impl LinePlot {
    /// The plot as an `<svg>` element: frame, fault bands under the data, markers, lines,
    /// legend, and a "no data" note when no line has a point.
    pub fn render(&self) -> String {
        let frame = Frame { x: &self.x, y: &self.y };
        let mut out = String::new();
        open_plot(&mut out, self.series, &self.title, &frame);
        write_bands(&mut out, &frame, &self.bands);
        write_markers(&mut out, &frame, &self.markers);
        let _ = write!(out, "<g class=\"lines\">");
        for line in &self.lines {
            write_line(&mut out, &frame, line);
        }
        let _ = write!(out, "</g>");
        let entries: Vec<(&str, &str, bool)> =
            self.lines.iter().map(|line| (line.label.as_str(), line.color, line.dashed)).collect();
        legend(&mut out, &entries);
        if self.lines.iter().all(|line| line.points.iter().all(Option::is_none)) {
            let _ = write!(
                out,
                "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" class=\"empty\">no data</text>",
                num((Frame::left() + Frame::right()) / 2.0),
                num((Frame::top() + Frame::bottom()) / 2.0)
            );
        }
        out.push_str("</svg>");
        out
    }
}

/// Fault windows as shaded rectangles with staggered labels, drawn under the data.
fn write_bands(out: &mut String, frame: &Frame<'_>, bands: &[Band]) {
    let _ = write!(out, "<g class=\"bands\">");
    for (index, band) in bands.iter().enumerate() {
        let (x0, x1) = (frame.px(band.from), frame.px(band.to));
        let _ = write!(
            out,
            "<rect class=\"fault\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"#d55e00\" fill-opacity=\"0.12\"><title>{}</title></rect>",
            num(x0),
            num(Frame::top()),
            num((x1 - x0).max(1.5)),
            num(Frame::bottom() - Frame::top()),
            escape(&band.label)
        );
        // Stagger labels so neighbouring windows stay readable.
        let label_y = Frame::top() + 11.0 + 11.0 * (index % 3) as f64;
        let _ = write!(
            out,
            "<text x=\"{}\" y=\"{}\" class=\"fault-label\">{}</text>",
            num(x0 + 2.0),
            num(label_y),
            escape(&band.label)
        );
    }
    let _ = write!(out, "</g>");
}

/// Vertical dashed lines with labels at marked moments (e.g. where the drain starts);
/// markers outside the x axis are left out.
fn write_markers(out: &mut String, frame: &Frame<'_>, markers: &[Marker]) {
    for marker in markers.iter().filter(|marker| marker.at >= frame.x.min && marker.at <= frame.x.max) {
        let x = frame.px(marker.at);
        let _ = write!(
            out,
            "<line x1=\"{x}\" y1=\"{}\" x2=\"{x}\" y2=\"{}\" stroke=\"#555555\" stroke-dasharray=\"2 3\"/><text x=\"{}\" y=\"{}\" class=\"marker-label\">{}</text>",
            num(Frame::top()),
            num(Frame::bottom()),
            num(x + 3.0),
            num(Frame::top() - 4.0),
            escape(&marker.label),
            x = num(x)
        );
    }
}

/// The path data of `line`: a gap (`None`) lifts the pen, so the next point starts a new
/// stroke. Empty when the line has no point.
fn line_path(frame: &Frame<'_>, line: &Line) -> String {
    let mut path = String::new();
    let mut pen_down = false;
    for point in &line.points {
        match point {
            Some((x, y)) => {
                let _ =
                    write!(path, "{}{} {} ", if pen_down { "L" } else { "M" }, num(frame.px(*x)), num(frame.py(*y)));
                pen_down = true;
            }
            None => pen_down = false,
        }
    }
    path
}

/// One line as a path with a dot on every point; nothing when it has no point.
fn write_line(out: &mut String, frame: &Frame<'_>, line: &Line) {
    assert!(line.points.len() <= POINTS_LIMIT, "line {:?} has {} points", line.label, line.points.len());
    let path = line_path(frame, line);
    if path.is_empty() {
        return;
    }
    let _ = write!(
        out,
        "<path d=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"1.8\"{}><title>{}</title></path>",
        path.trim_end(),
        escape(line.color),
        if line.dashed { " stroke-dasharray=\"5 3\"" } else { "" },
        escape(&line.label)
    );
    // A lone point (between gaps) would not show as a path: mark every point.
    for (x, y) in line.points.iter().flatten() {
        let _ = write!(
            out,
            "<circle cx=\"{}\" cy=\"{}\" r=\"1.6\" fill=\"{}\"/>",
            num(frame.px(*x)),
            num(frame.py(*y)),
            escape(line.color)
        );
    }
}

/// One bar: a span of x and its height.
#[derive(Clone, Debug)]
pub(crate) struct Bar {
    pub from: f64,
    pub to: f64,
    pub value: f64,
    /// Shown on hover.
    pub label: String,
}

/// A bar plot (a histogram).
#[derive(Clone, Debug)]
pub(crate) struct BarPlot {
    pub series: &'static str,
    pub title: String,
    pub x: Axis,
    pub y: Axis,
    pub(crate) bars: Vec<Bar>,
    /// The legend's label for the bars.
    pub legend: String,
}

impl BarPlot {
    /// The plot as an `<svg>` element.
    pub fn render(&self) -> String {
        let frame = Frame { x: &self.x, y: &self.y };
        let mut out = String::new();
        open_plot(&mut out, self.series, &self.title, &frame);
        let color = PALETTE[0];
        let _ = write!(out, "<g class=\"bars\">");
        for bar in &self.bars {
            let (x0, x1) = (frame.px(bar.from), frame.px(bar.to));
            let (y0, y1) = (frame.py(bar.value), frame.py(self.y.min));
            let _ = write!(
                out,
                "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{color}\" fill-opacity=\"0.8\" stroke=\"#ffffff\"><title>{}</title></rect>",
                num(x0),
                num(y0),
                num((x1 - x0).max(1.0)),
                num((y1 - y0).max(0.0)),
                escape(&bar.label)
            );
        }
        let _ = write!(out, "</g>");
        legend(&mut out, &[(self.legend.as_str(), color, false)]);
        if self.bars.is_empty() {
            let _ = write!(
                out,
                "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" class=\"empty\">no data</text>",
                num((Frame::left() + Frame::right()) / 2.0),
                num((Frame::top() + Frame::bottom()) / 2.0)
            );
        }
        out.push_str("</svg>");
        out
    }
}

/// A latency unit for an axis whose largest value is `max_micros`: milliseconds below 2 s,
/// else seconds. Returns (unit name, micros per unit).
pub(crate) fn latency_unit(max_micros: u64) -> (&'static str, f64) {
    if max_micros < 2_000_000 { ("ms", 1_000.0) } else { ("s", 1_000_000.0) }
}

/// A tick label for a count or a rate: 1200 → "1200", 2.5 → "2.5".
pub fn plain(value: f64) -> String {
    num(value)
}

/// A tick label for seconds of true time: 90 → "1m30s".
pub(crate) fn time_label(seconds: f64) -> String {
    crate::units::format_duration(std::time::Duration::from_secs_f64(seconds.max(0.0)))
}

/// Round latencies a logarithmic axis ticks at (microseconds) and their labels.
const LOG_TICKS: [(f64, &str); 10] = [
    (1e3, "1ms"),
    (1e4, "10ms"),
    (1e5, "100ms"),
    (1e6, "1s"),
    (1e7, "10s"),
    (6e7, "1m"),
    (6e8, "10m"),
    (3.6e9, "1h"),
    (3.6e10, "10h"),
    (8.64e10, "1d"),
];

/// Where a latency sits on a logarithmic axis: log10 of its microseconds (1 µs at least).
pub(crate) fn log_micros(micros: u64) -> f64 {
    (micros.max(1) as f64).log10()
}

/// A logarithmic latency axis over `min_micros..=max_micros` (values are [`log_micros`]),
/// ticked at the round latencies around them (at least two; 1ms is the lowest: anything
/// faster sits on it). `top_rows` rows are added above the top tick for records that never
/// arrived; returns the axis, the rows' positions (bottom up) and where their band starts.
pub(crate) fn log_latency_axis(
    label: &str,
    min_micros: u64,
    max_micros: u64,
    top_rows: usize,
) -> (Axis, Vec<f64>, f64) {
    let value = |index: usize| LOG_TICKS[index].0;
    let last = LOG_TICKS.len() - 1;
    let low = (0..=last).rev().find(|&index| value(index) <= min_micros.max(1) as f64).unwrap_or(0);
    let mut high = (0..=last).find(|&index| value(index) >= max_micros as f64).unwrap_or(last);
    if high <= low {
        high = (low + 1).min(last);
    }
    let low = low.min(high.saturating_sub(1));
    let (bottom, top) = (value(low).log10(), value(high).log10());
    let step = ((top - bottom) * 0.12).max(0.15);
    let rows: Vec<f64> = (0..top_rows).map(|row| top + step * (row + 1) as f64).collect();
    let max = if top_rows == 0 { top } else { top + step * (top_rows as f64 + 0.6) };
    let ticks = (low..=high).map(|index| (value(index).log10(), LOG_TICKS[index].1.to_string())).collect();
    (Axis { label: label.to_string(), min: bottom, max, ticks }, rows, top)
}

/// One dot of a scatter plot, with its hover text.
#[derive(Clone, Debug)]
pub(crate) struct ScatterMark {
    pub x: f64,
    pub y: f64,
    pub title: String,
}

/// A row of a scatter plot's top band: marks at x only (records that have no y, such as
/// records never delivered), in one colour, labelled.
#[derive(Clone, Debug)]
pub(crate) struct ScatterRow {
    pub label: String,
    /// The `class` of its marks, for tests and scripts (`lost`, `in-flight`).
    pub class: &'static str,
    pub(crate) color: &'static str,
    /// (x, hover text) per mark.
    pub marks: Vec<(f64, String)>,
}

/// A scatter plot: one dot per mark, shaded fault windows under them, and a top band above
/// the y axis's top tick with a row per kind of mark that has no y.
#[derive(Clone, Debug)]
pub(crate) struct ScatterPlot {
    pub series: &'static str,
    pub title: String,
    pub x: Axis,
    /// Its range reaches above `band_from` when there are rows: [`log_latency_axis`].
    pub y: Axis,
    pub(crate) color: &'static str,
    /// The legend's label for the dots.
    pub legend: String,
    pub marks: Vec<ScatterMark>,
    pub rows: Vec<ScatterRow>,
    /// The y where the top band starts, and each row's y (bottom up, one per row).
    pub(crate) band_from: f64,
    pub(crate) rows_y: Vec<f64>,
    pub(crate) bands: Vec<Band>,
    pub(crate) markers: Vec<Marker>,
}

impl ScatterPlot {
    /// The plot as an `<svg>` element: frame, fault bands, markers, the top band's rows,
    /// the dots, the legend, and "no data" when there is neither a dot nor a row mark.
    pub fn render(&self) -> String {
        assert!(self.marks.len() <= POINTS_LIMIT, "scatter {:?} has {} marks", self.series, self.marks.len());
        assert_eq!(self.rows.len(), self.rows_y.len(), "scatter {:?}: one position per row", self.series);
        let frame = Frame { x: &self.x, y: &self.y };
        let mut out = String::new();
        open_plot(&mut out, self.series, &self.title, &frame);
        write_bands(&mut out, &frame, &self.bands);
        write_markers(&mut out, &frame, &self.markers);
        self.write_rows(&mut out, &frame);
        let _ = write!(out, "<g class=\"marks\">");
        for mark in &self.marks {
            let _ = write!(
                out,
                "<circle class=\"delivered\" cx=\"{}\" cy=\"{}\" r=\"2.2\" fill=\"{}\" fill-opacity=\"0.55\"><title>{}</title></circle>",
                num(frame.px(mark.x)),
                num(frame.py(mark.y)),
                escape(self.color),
                escape(&mark.title)
            );
        }
        let _ = write!(out, "</g>");
        let mut entries: Vec<(&str, &str, bool)> = vec![(self.legend.as_str(), self.color, false)];
        entries.extend(self.rows.iter().map(|row| (row.label.as_str(), row.color, false)));
        legend(&mut out, &entries);
        if self.marks.is_empty() && self.rows.iter().all(|row| row.marks.is_empty()) {
            let _ = write!(
                out,
                "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" class=\"empty\">no data</text>",
                num((Frame::left() + Frame::right()) / 2.0),
                num((Frame::top() + Frame::bottom()) / 2.0)
            );
        }
        out.push_str("</svg>");
        out
    }

    /// The top band: a tinted strip above `band_from`, each row's label at its right end
    /// and a tick per mark.
    fn write_rows(&self, out: &mut String, frame: &Frame<'_>) {
        if self.rows.is_empty() {
            return;
        }
        let _ = write!(out, "<g class=\"top-band\">");
        let from = frame.py(self.band_from);
        let _ = write!(
            out,
            "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"#b00020\" fill-opacity=\"0.05\"/><line x1=\"{}\" y1=\"{from}\" x2=\"{}\" y2=\"{from}\" stroke=\"#b00020\" stroke-dasharray=\"4 3\"/>",
            num(Frame::left()),
            num(Frame::top()),
            num(Frame::right() - Frame::left()),
            num((from - Frame::top()).max(0.0)),
            num(Frame::left()),
            num(Frame::right()),
            from = num(from)
        );
        for (row, &row_y) in self.rows.iter().zip(&self.rows_y) {
            let y = frame.py(row_y);
            let _ = write!(
                out,
                "<text x=\"{}\" y=\"{}\" text-anchor=\"end\" class=\"row-label\">{}</text>",
                num(Frame::right() - 4.0),
                num(y - 6.0),
                escape(&row.label)
            );
            for (x, title) in &row.marks {
                let _ = write!(
                    out,
                    "<rect class=\"{}\" x=\"{}\" y=\"{}\" width=\"3\" height=\"9\" fill=\"{}\"><title>{}</title></rect>",
                    escape(row.class),
                    num(frame.px(*x) - 1.5),
                    num(y - 4.5),
                    escape(row.color),
                    escape(title)
                );
            }
        }
        let _ = write!(out, "</g>");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped() {
        assert_eq!(escape("a<b & \"c\" 'd'>"), "a&lt;b &amp; &quot;c&quot; &#39;d&#39;&gt;");
        assert_eq!(escape("bell\u{7}"), "bell\u{fffd}");
    }

    #[test]
    fn nice_axes_cover_the_range_with_round_ticks() {
        let axis = Axis::nice("t", 0.0, 437.0, 6, plain);
        assert_eq!(axis.min, 0.0);
        assert!(axis.max >= 437.0);
        let values: Vec<f64> = axis.ticks.iter().map(|(value, _)| *value).collect();
        assert_eq!(values, vec![0.0, 100.0, 200.0, 300.0, 400.0, 500.0]);
        let flat = Axis::nice("t", 0.0, 0.0, 4, plain);
        assert!(flat.max > flat.min, "an empty range still has an axis");
    }

    #[test]
    fn count_axes_tick_at_whole_numbers() {
        let values: Vec<f64> = Axis::counts("runs", 1.0, 4).ticks.iter().map(|(v, _)| *v).collect();
        assert_eq!(values, vec![0.0, 1.0]);
        let values: Vec<f64> = Axis::counts("runs", 3.0, 4).ticks.iter().map(|(v, _)| *v).collect();
        assert_eq!(values, vec![0.0, 1.0, 2.0, 3.0]);
        assert_eq!(Axis::counts("records", 180.0, 5).ticks.last().unwrap().0, 200.0);
    }

    #[test]
    fn time_axes_tick_at_round_durations() {
        let axis = Axis::time("t", 300.0, 8);
        let labels: Vec<&str> = axis.ticks.iter().map(|(_, label)| label.as_str()).collect();
        assert_eq!(labels, vec!["0s", "1m", "2m", "3m", "4m", "5m"]);
        let short = Axis::time("t", 45.0, 8);
        assert_eq!(short.ticks.last().unwrap().1, "50s");
        assert_eq!(short.ticks[1].1, "10s");
    }

    #[test]
    fn log_latency_axes_tick_at_round_latencies_and_stack_rows_above() {
        let (axis, rows, band_from) = log_latency_axis("latency", 2_000, 368_000_000, 2);
        let labels: Vec<&str> = axis.ticks.iter().map(|(_, label)| label.as_str()).collect();
        assert_eq!(labels, vec!["1ms", "10ms", "100ms", "1s", "10s", "1m", "10m"]);
        assert_eq!(band_from, 6e8f64.log10());
        assert!(rows.len() == 2 && rows[0] > band_from && rows[1] > rows[0] && axis.max > rows[1], "{rows:?}");
        let (fast, rows, _) = log_latency_axis("latency", 10, 500, 0);
        let labels: Vec<&str> = fast.ticks.iter().map(|(_, label)| label.as_str()).collect();
        assert_eq!((labels, rows.len()), (vec!["1ms", "10ms"], 0), "below 1ms sits on the lowest tick");
    }

    #[test]
    fn a_line_plot_breaks_at_gaps_and_labels_bands() {
        let plot = LinePlot {
            series: "latency",
            title: "t <1>".into(),
            x: Axis::nice("x", 0.0, 10.0, 5, plain),
            y: Axis::nice("y", 0.0, 10.0, 5, plain),
            lines: vec![Line {
                label: "p99".into(),
                color: PALETTE[0],
                dashed: false,
                points: vec![Some((0.0, 1.0)), Some((1.0, 2.0)), None, Some((3.0, 4.0))],
            }],
            bands: vec![Band { from: 2.0, to: 4.0, label: "#0 link_drop".into() }],
            markers: vec![],
        };
        let svg = plot.render();
        assert!(svg.contains("data-series=\"latency\""), "{svg}");
        assert!(svg.contains("t &lt;1&gt;") && svg.contains("#0 link_drop"), "{svg}");
        let path = svg.split("<path d=\"").nth(1).unwrap().split('"').next().unwrap();
        assert_eq!(path.matches('M').count(), 2, "the gap starts a new segment: {path}");
    }
}
