//! `report.html`: one run for people — a headline of the numbers people act on (verdict,
//! loss by cause, p99/max against their budgets, slowest recovery, minimum throughput,
//! planted bugs, the obsim that wrote it, links to `result.json` and `events.log`), what
//! failed and why, and the plots: latency by emit time per signal (Jepsen's view: one dot per
//! sampled batch on a log scale, the records that never arrived marked in a band at the
//! top), latency percentiles per window of delivery time, the HDR percentile curve,
//! throughput and buffer occupancy per hop, every time plot with its fault windows shaded
//! and labelled with their parameters.
//!
//! Why built from `RunResult` and not from the verdict: the page shows exactly what
//! `result.json` says, so the two never disagree and a page can be rebuilt from the JSON.
//! Self-contained by rule (ARCHITECTURE.md §5: it opens with no network): inline CSS, inline SVG,
//! no scripts, fonts or links to anything outside the file. Well-formed XML throughout
//! (every element closed, every text escaped), so tests parse it with an XML parser.

use std::fmt::Write as _;

use super::build_info::BuildInfo;
use super::svg::{self, Axis, Band, LinePlot, Marker, PALETTE, ScatterMark, ScatterPlot, ScatterRow, escape};
use crate::check::CheckName;
use crate::check::result::{RunResult, SignalResult, UndeliveredMarksResult, part_order};
use crate::ledger::curve::{NINES_MAX, nines};

/// A whole obsim page: `templates/page.html` (the shared style lives there) around a body.
///
/// Why a template engine: every value a template prints is HTML-escaped unless it is marked
/// `|safe`, so a scenario name, a fault description or a check's message cannot break a page;
/// the templates are checked when the crate compiles. Pages that are more than a body extend
/// `page.html` (its `content` block).
#[derive(askama::Template)]
#[template(path = "page.html")]
struct Page<'a> {
    title: &'a str,
    /// Already-escaped HTML (the sections and inline SVG plots this module writes).
    body: &'a str,
}

/// A whole page around `body` (already escaped HTML).
pub fn page(title: &str, body: &str) -> String {
    render_template(&Page { title, body })
}

/// Renders a template into a string. Why it cannot fail here: obsim's templates only print
/// values whose `Display` cannot fail, and the output is a `String`; a failure would be a bug
/// in a template, so it panics naming the template's type.
pub(crate) fn render_template<T: askama::Template>(template: &T) -> String {
    match template.render() {
        Ok(text) => text,
        Err(error) => panic!("rendering the template {}: {error}", std::any::type_name::<T>()),
    }
}

/// Microseconds as text: "850ms", "2.12s", "1m9.1s".
pub(crate) fn latency_text(micros: u64) -> String {
    if micros < 1_000 {
        return format!("{micros}µs");
    }
    if micros < 1_000_000 {
        return format!("{:.1}ms", micros as f64 / 1_000.0);
    }
    if micros < 60_000_000 {
        return format!("{:.2}s", micros as f64 / 1_000_000.0);
    }
    format!("{}m{:.1}s", micros / 60_000_000, (micros % 60_000_000) as f64 / 1_000_000.0)
}

/// Microseconds of true time as the scenario writes durations: "1m30s".
pub(crate) fn time_text(micros: u64) -> String {
    crate::units::format_duration(std::time::Duration::from_micros(micros))
}

fn seconds(micros: u64) -> f64 {
    micros as f64 / 1_000_000.0
}

/// A fault's parameters as a band shows them: its `[[fault]]` line without the kind and the
/// start (the band shows both), quotes dropped: `for=8s status=503 rate=1.0`.
pub(crate) fn fault_parameters(fault: &crate::check::result::FaultResult) -> String {
    let rest = fault.description.strip_prefix(fault.kind.as_str()).unwrap_or(&fault.description);
    let kept: Vec<&str> = rest.split(' ').filter(|token| !token.is_empty() && !token.starts_with("at=")).collect();
    kept.join(" ").replace('"', "")
}

/// The fault windows as shaded bands, labelled with their kind and parameters.
fn fault_bands(result: &RunResult) -> Vec<Band> {
    result
        .faults
        .iter()
        .map(|fault| Band {
            from: seconds(fault.start_micros),
            to: seconds(fault.end_micros),
            label: format!(
                "#{} {} {}{}",
                fault.index,
                fault.kind,
                fault_parameters(fault),
                if fault.ends_at_heal {
                    " (until drain)"
                } else if fault.never_healed {
                    " (never healed)"
                } else {
                    ""
                }
            ),
        })
        .collect()
}

/// The time axis of a run: 0 to the simulated time.
fn time_axis(result: &RunResult) -> Axis {
    let end = seconds(result.simulated_micros.max(result.duration_micros + result.drain_micros));
    Axis::time("true time", end, 10)
}

/// When the last record reached Dash0 (either signal), in microseconds of true time: the
/// sample's, or for results written before samples the end of the last window with a
/// delivery; `None` when nothing was delivered.
fn last_delivery_micros(result: &RunResult) -> Option<u64> {
    [&result.signals.log, &result.signals.span]
        .into_iter()
        .filter_map(|signal| {
            signal.latency_sample.last_delivery_micros.or_else(|| {
                signal
                    .windows
                    .iter()
                    .rev()
                    .find(|w| w.delivered_count > 0)
                    .map(|w| w.start_micros + result.window_micros)
            })
        })
        .max()
}

/// The time axis of the latency views: from 0 to the last delivery (or the last emitted
/// record that never arrived, if later) plus a margin of 5 % (at least 5 s), not through a
/// drain in which nothing happened; the whole run when nothing was delivered or marked.
fn latency_time_axis(result: &RunResult) -> Axis {
    let last_marked = [&result.signals.log, &result.signals.span]
        .into_iter()
        .flat_map(|signal| signal.latency_sample.undelivered.iter().flat_map(|outcome| outcome.marks.iter()))
        .map(|&[emit_micros, _]| emit_micros)
        .max();
    let whole = seconds(result.simulated_micros.max(result.duration_micros + result.drain_micros));
    let end = match last_delivery_micros(result).max(last_marked) {
        Some(micros) => {
            let end = seconds(micros);
            (end + (end * 0.05).max(5.0)).min(whole)
        }
        None => whole,
    };
    Axis::time("true time", end, 10)
}

fn drain_marker(result: &RunResult) -> Vec<Marker> {
    vec![Marker { at: seconds(result.duration_micros), label: "drain".into() }]
}

/// A latency axis up to `max_micros`, in ms or s.
fn latency_axis(max_micros: u64) -> (Axis, f64) {
    let (unit, per_unit) = svg::latency_unit(max_micros);
    (Axis::nice(&format!("latency ({unit})"), 0.0, max_micros as f64 / per_unit, 5, svg::plain), per_unit)
}

/// (a) Latency percentiles per window of delivery time, on a log scale (so p99 stays
/// readable under a spike of the max), up to the last delivery.
pub(crate) fn latency_plot(result: &RunResult) -> LinePlot {
    let window_s = seconds(result.window_micros);
    let windows =
        || result.signals.log.windows.iter().chain(&result.signals.span.windows).filter(|w| w.delivered_count > 0);
    let max = windows().map(|w| w.max_micros).max().unwrap_or(0);
    let min = windows().map(|w| w.p50_micros.min(w.p99_micros)).min().unwrap_or(0);
    let (y, _, _) = svg::log_latency_axis("latency (log scale)", min, max, 0);
    let line = |signal: &SignalResult,
                label: &str,
                color: &'static str,
                dashed: bool,
                pick: fn(&crate::check::result::SignalWindow) -> u64| {
        super::svg::Line {
            label: label.to_string(),
            color,
            dashed,
            points: signal
                .windows
                .iter()
                .map(|w| (w.delivered_count > 0).then(|| ((w.index as f64 + 0.5) * window_s, svg::log_micros(pick(w)))))
                .collect(),
        }
    };
    LinePlot {
        series: "latency",
        title: "Emit → Dash0 latency per 10 s window of delivery time (log scale)".into(),
        x: latency_time_axis(result),
        y,
        lines: vec![
            line(&result.signals.log, "log p50", PALETTE[2], false, |w| w.p50_micros),
            line(&result.signals.log, "log p99", PALETTE[0], false, |w| w.p99_micros),
            line(&result.signals.log, "log max", PALETTE[1], false, |w| w.max_micros),
            line(&result.signals.span, "span p99", PALETTE[3], true, |w| w.p99_micros),
        ],
        bands: fault_bands(result),
        markers: drain_marker(result),
    }
}

/// Most rows a scatter's top band has; further outcomes share the last row.
const TOP_ROWS_LIMIT: usize = 5;

/// The colour of the records that never arrived: lost (red) or in flight (orange).
const LOST_COLOR: &str = "#b00020";

/// A top-band row's label: `in flight (3)`, `lost: agent_retry_limit (12)`.
fn outcome_label(outcome: &UndeliveredMarksResult) -> String {
    match (outcome.outcome.as_str(), outcome.lost) {
        (_, false) => format!("in flight ({})", outcome.count),
        ("lost_silently", true) => format!("lost silently ({})", outcome.count),
        (cause, true) => format!("lost: {cause} ({})", outcome.count),
    }
}

/// The top band's rows of `signal`: one per undelivered outcome (in flight, each cause,
/// silent), at most `TOP_ROWS_LIMIT`; the last row gathers what does not fit.
fn undelivered_rows(signal: &SignalResult) -> Vec<ScatterRow> {
    let outcomes: Vec<&UndeliveredMarksResult> =
        signal.latency_sample.undelivered.iter().filter(|outcome| !outcome.marks.is_empty()).collect();
    let mut rows: Vec<ScatterRow> = Vec::new();
    for (index, outcome) in outcomes.iter().enumerate() {
        let marks = outcome.marks.iter().map(|&[emit_micros, count]| {
            let what = if outcome.lost { format!("lost: {}", outcome.outcome) } else { "in flight at the end".into() };
            (seconds(emit_micros), format!("{count} records emitted at {}: {what}", latency_text(emit_micros)))
        });
        if index + 1 < TOP_ROWS_LIMIT || outcomes.len() <= TOP_ROWS_LIMIT {
            rows.push(ScatterRow {
                label: outcome_label(outcome),
                class: if outcome.lost { "lost" } else { "in-flight" },
                color: if outcome.lost { LOST_COLOR } else { PALETTE[4] },
                marks: marks.collect(),
            });
        } else if index + 1 == TOP_ROWS_LIMIT {
            let others: u64 = outcomes[index..].iter().map(|outcome| outcome.count).sum();
            rows.push(ScatterRow {
                label: format!("lost: {} other causes ({others})", outcomes.len() - index),
                class: "lost",
                color: LOST_COLOR,
                marks: marks.collect(),
            });
        } else if let Some(last) = rows.last_mut() {
            last.marks.extend(marks);
        }
    }
    rows
}

/// (a) Latency by emit time of one signal (Jepsen's latency plot): a dot per sampled
/// delivered batch at (emit time, latency) on a log scale, the records that never arrived
/// in the top band at their emit times, fault windows shaded with their parameters.
pub(crate) fn latency_scatter(
    result: &RunResult,
    name: &str,
    signal: &SignalResult,
    series: &'static str,
) -> ScatterPlot {
    let sample = &signal.latency_sample;
    let latencies = || sample.points.iter().map(|&[_, latency_micros, _]| latency_micros);
    let (min, max) = (latencies().min().unwrap_or(1_000), latencies().max().unwrap_or(1_000));
    let rows = undelivered_rows(signal);
    let (y, rows_y, band_from) = svg::log_latency_axis("latency (log scale)", min, max, rows.len());
    let kept = if sample.stride > 1 {
        format!("every {}th of {} batches", sample.stride, sample.batches_count)
    } else {
        format!("all {} batches", sample.batches_count)
    };
    ScatterPlot {
        series,
        title: format!("{name} latency by emit time: a dot per delivered batch ({kept}), log scale"),
        x: latency_time_axis(result),
        y,
        color: if name == "Log" { PALETTE[0] } else { PALETTE[3] },
        legend: format!("{} sampled batches", sample.points.len()),
        marks: sample
            .points
            .iter()
            .map(|&[emit_micros, latency_micros, count]| ScatterMark {
                x: seconds(emit_micros),
                y: svg::log_micros(latency_micros),
                title: format!(
                    "{count} records emitted at {}, at Dash0 {} later",
                    latency_text(emit_micros),
                    latency_text(latency_micros)
                ),
            })
            .collect(),
        rows,
        band_from,
        rows_y,
        bands: fault_bands(result),
        markers: drain_marker(result),
    }
}

/// Step points of a per-window series: flat across each window.
fn steps(values: impl IntoIterator<Item = f64>, window_s: f64) -> Vec<Option<(f64, f64)>> {
    values
        .into_iter()
        .enumerate()
        .flat_map(|(index, value)| {
            [Some((index as f64 * window_s, value)), Some(((index + 1) as f64 * window_s, value))]
        })
        .collect()
}

/// (b) Logs stored at Dash0 per second, per window.
pub(crate) fn throughput_plot(result: &RunResult) -> LinePlot {
    let window_s = seconds(result.throughput.window_micros).max(f64::MIN_POSITIVE);
    let rates: Vec<f64> =
        result.throughput.log_records_per_window.iter().map(|&count| count as f64 / window_s).collect();
    let max = rates.iter().copied().fold(0.0, f64::max);
    let first_rates: Vec<f64> =
        result.signals.log.windows.iter().map(|w| w.delivered_count as f64 / seconds(result.window_micros)).collect();
    LinePlot {
        series: "throughput",
        title: "Logs stored at Dash0 per second (10 s windows)".into(),
        x: time_axis(result),
        y: Axis::nice("logs per second", 0.0, max.max(first_rates.iter().copied().fold(0.0, f64::max)), 5, svg::plain),
        lines: vec![
            svg::Line {
                label: "logs stored/s".into(),
                color: PALETTE[0],
                dashed: false,
                points: steps(rates, window_s),
            },
            svg::Line {
                label: "first deliveries/s".into(),
                color: PALETTE[2],
                dashed: true,
                points: steps(first_rates, seconds(result.window_micros)),
            },
        ],
        bands: fault_bands(result),
        markers: drain_marker(result),
    }
}

/// (c) Records held per part (all its hosts together), peak per window.
pub(crate) fn occupancy_plot(result: &RunResult) -> LinePlot {
    let window_s = seconds(result.window_micros);
    let mut parts: Vec<&crate::check::result::PartOccupancy> = result.occupancy.parts.iter().collect();
    parts.sort_by_key(|part| part_order(&part.part));
    let max = parts.iter().map(|part| part.peak_count).max().unwrap_or(0);
    LinePlot {
        series: "occupancy",
        title: "Records held per hop (peak per 10 s window, all hosts of a part)".into(),
        x: time_axis(result),
        y: Axis::counts("records held", max as f64, 5),
        lines: parts
            .iter()
            .enumerate()
            .map(|(index, part)| svg::Line {
                label: part.part.clone(),
                color: PALETTE[index % PALETTE.len()],
                dashed: false,
                points: steps(part.peak_count_per_window.iter().map(|&count| count as f64), window_s),
            })
            .collect(),
        bands: fault_bands(result),
        markers: drain_marker(result),
    }
}

/// (d) The HDR percentile curve on a "nines" axis.
pub(crate) fn percentiles_plot(result: &RunResult) -> LinePlot {
    let max = result.signals.log.latency.max_micros.max(result.signals.span.latency.max_micros);
    let (y, per_unit) = latency_axis(max);
    let ticks = [
        (0.0, "0%"),
        (1.0, "90%"),
        (2.0, "99%"),
        (3.0, "99.9%"),
        (4.0, "99.99%"),
        (5.0, "99.999%"),
        (NINES_MAX + 0.5, "max"),
    ];
    let x = Axis {
        label: "percentile".into(),
        min: 0.0,
        max: NINES_MAX + 0.5,
        ticks: ticks.iter().map(|&(value, label)| (value, label.to_string())).collect(),
    };
    let line = |signal: &SignalResult, label: &str, color: &'static str| svg::Line {
        label: label.to_string(),
        color,
        dashed: false,
        points: signal
            .latency_curve
            .iter()
            .map(|point| Some((nines(point.quantile), point.micros as f64 / per_unit)))
            .collect(),
    };
    LinePlot {
        series: "percentiles",
        title: "Latency by percentile (HDR histogram of the whole run)".into(),
        x,
        y,
        lines: vec![line(&result.signals.log, "log", PALETTE[0]), line(&result.signals.span, "span", PALETTE[3])],
        bands: Vec::new(),
        markers: Vec::new(),
    }
}

/// The verdict as a coloured word.
pub(crate) fn verdict_html(passed: bool) -> &'static str {
    if passed { "<span class=\"pass\">PASS</span>" } else { "<span class=\"fail\">FAIL</span>" }
}

/// `report.html` of one run, stamped with the running obsim.
pub fn render(result: &RunResult) -> String {
    render_stamped(result, &BuildInfo::current())
}

/// `report.html` of one run written by `obsim`: one section after another, top to bottom.
pub fn render_stamped(result: &RunResult, obsim: &BuildInfo) -> String {
    let mut body = String::new();
    write_header(&mut body, result);
    body.push_str(&render_template(&headline(result, obsim)));
    write_run_line(&mut body, result);
    write_checks(&mut body, result);
    write_records(&mut body, result);
    write_losses(&mut body, result);
    write_held(&mut body, result);
    write_latency(&mut body, result);
    write_throughput(&mut body, result);
    write_occupancy(&mut body, result);
    write_faults(&mut body, result);
    write_jobs(&mut body, result);
    page(&format!("obsim {} seed {}", result.scenario, result.seed), &body)
}

/// The title, the verdict, the run's size and hash, and the replay command.
fn write_header(body: &mut String, result: &RunResult) {
    let _ = writeln!(body, "<h1>obsim: {} — seed {}</h1>", escape(&result.scenario), result.seed);
    let _ = writeln!(body, "<p class=\"verdict\">{}</p>", verdict_html(result.passed));
}

/// The run's size and hash, and the replay command, under the headline.
fn write_run_line(body: &mut String, result: &RunResult) {
    let _ = writeln!(
        body,
        "<p>simulated {} ({} load + {} drain), {} events, event-log hash <code>{}</code></p>\n<p>replay: <code>{}</code></p>",
        time_text(result.simulated_micros),
        time_text(result.duration_micros),
        time_text(result.drain_micros),
        result.event_log.events_count,
        escape(&result.event_log.hash),
        escape(&result.replay)
    );
}

/// Every check with its result and detail, failed or not.
fn write_checks(body: &mut String, result: &RunResult) {
    let _ = writeln!(body, "<h2>Checks</h2>\n<table>\n<tr><th>check</th><th>result</th><th>detail</th></tr>");
    for check in &result.checks {
        let _ = writeln!(
            body,
            "<tr><td>{}</td><td>{}</td><td><pre>{}</pre></td></tr>",
            escape(check.name.as_str()),
            if check.passed { "<span class=\"pass\">ok</span>" } else { "<span class=\"fail\">FAIL</span>" },
            escape(&check.detail)
        );
    }
    let _ = writeln!(body, "</table>");
}

/// The records table per signal: emitted, delivered, duplicated, lost and in flight.
fn write_records(body: &mut String, result: &RunResult) {
    let _ = writeln!(
        body,
        "<h2>Records</h2>\n<table>\n<tr><th>signal</th><th class=\"num\">emitted</th><th class=\"num\">delivered</th><th class=\"num\">duplicated</th><th class=\"num\">lost with a cause</th><th class=\"num\">lost silently</th><th class=\"num\">in flight</th></tr>"
    );
    for (name, signal) in [("log", &result.signals.log), ("span", &result.signals.span)] {
        let _ = writeln!(
            body,
            "<tr><td>{name}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            signal.emitted_count,
            signal.delivered_count,
            signal.duplicated_count,
            super::summary::lost_with_cause_count(signal),
            signal.lost_silently_count,
            signal.in_flight_count
        );
    }
    let _ = writeln!(body, "</table>");
}

/// The losses of both signals, one row per cause and place; nothing when none were lost.
fn write_losses(body: &mut String, result: &RunResult) {
    let losses: Vec<(&str, &crate::check::result::LossResult)> =
        [("log", &result.signals.log), ("span", &result.signals.span)]
            .into_iter()
            .flat_map(|(name, signal)| signal.losses.iter().map(move |loss| (name, loss)))
            .collect();
    if losses.is_empty() {
        return;
    }
    let _ =
        writeln!(body, "<table>\n<tr><th>signal</th><th>cause</th><th>where</th><th class=\"num\">records</th></tr>");
    for (name, loss) in losses {
        let place = match (&loss.part, &loss.host) {
            (Some(part), Some(host)) => format!("{part}@{host}"),
            _ => "no part ever held them".to_string(),
        };
        let _ = writeln!(
            body,
            "<tr><td>{name}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td></tr>",
            escape(&loss.cause),
            escape(&place),
            loss.count
        );
    }
    let _ = writeln!(body, "</table>");
}

/// Records held at the end: in flight, not lost (their own table, never a loss row);
/// nothing when no part held any.
fn write_held(body: &mut String, result: &RunResult) {
    let held: Vec<(&str, &crate::check::result::HeldResult)> =
        [("log", &result.signals.log), ("span", &result.signals.span)]
            .into_iter()
            .flat_map(|(name, signal)| signal.in_flight.iter().map(move |held| (name, held)))
            .collect();
    if held.is_empty() {
        return;
    }
    let _ = writeln!(
        body,
        "<table>\n<tr><th>signal</th><th>in flight at the end, held by</th><th class=\"num\">records</th></tr>"
    );
    for (name, held) in held {
        let _ = writeln!(
            body,
            "<tr><td>{name}</td><td>{}</td><td class=\"num\">{}</td></tr>",
            escape(&format!("{}@{}", held.part, held.host)),
            held.count
        );
    }
    let _ = writeln!(body, "</table>");
}

/// The latency percentiles per signal, then the latency-over-time and percentile plots.
fn write_latency(body: &mut String, result: &RunResult) {
    let _ = writeln!(
        body,
        "<h2>Latency</h2>\n<table>\n<tr><th>signal</th><th class=\"num\">count</th><th class=\"num\">p50</th><th class=\"num\">p90</th><th class=\"num\">p99</th><th class=\"num\">p99.9</th><th class=\"num\">max</th></tr>"
    );
    for (name, signal) in [("log", &result.signals.log), ("span", &result.signals.span)] {
        let latency = &signal.latency;
        let _ = writeln!(
            body,
            "<tr><td>{name}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            latency.count,
            latency_text(latency.p50_micros),
            latency_text(latency.p90_micros),
            latency_text(latency.p99_micros),
            latency_text(latency.p999_micros),
            latency_text(latency.max_micros)
        );
    }
    let _ = writeln!(body, "</table>");
    for (name, signal, series) in
        [("Log", &result.signals.log, "latency_scatter_log"), ("Span", &result.signals.span, "latency_scatter_span")]
    {
        body.push_str(&latency_scatter(result, name, signal, series).render());
        body.push('\n');
    }
    body.push_str(&latency_plot(result).render());
    body.push('\n');
    body.push_str(&percentiles_plot(result).render());
    body.push('\n');
}

/// The load-phase throughput, its slowest and mean judged windows, and its plot.
fn write_throughput(body: &mut String, result: &RunResult) {
    let throughput = &result.throughput;
    let _ = writeln!(body, "<h2>Throughput</h2>");
    let _ = writeln!(
        body,
        "<p>{} logs/s delivered over the load phase; slowest judged window {}; mean of judged windows {}.</p>",
        throughput.load_per_second,
        match (throughput.min_window_index, throughput.min_window_per_second) {
            (Some(index), Some(rate)) => format!(
                "{rate} logs/s in [{}, {})",
                time_text(index * throughput.window_micros),
                time_text((index + 1) * throughput.window_micros)
            ),
            _ => "none (no window judged)".to_string(),
        },
        throughput.mean_per_second.map_or_else(|| "none".to_string(), |rate| format!("{rate} logs/s"))
    );
    body.push_str(&throughput_plot(result).render());
    body.push('\n');
}

/// Each part's peak occupancy, busiest custodian and records held at the end, in pipeline
/// order, then the occupancy plot.
fn write_occupancy(body: &mut String, result: &RunResult) {
    let _ = writeln!(body, "<h2>Buffer occupancy</h2>");
    let _ = writeln!(
        body,
        "<table>\n<tr><th>part</th><th class=\"num\">peak (all hosts)</th><th>busiest custodian</th><th class=\"num\">its peak</th><th class=\"num\">held at end</th></tr>"
    );
    let mut parts: Vec<&crate::check::result::PartOccupancy> = result.occupancy.parts.iter().collect();
    parts.sort_by_key(|part| part_order(&part.part));
    for part in parts {
        let busiest = result
            .occupancy
            .custodians
            .iter()
            .filter(|custodian| custodian.part == part.part)
            .max_by(|a, b| a.peak_count.cmp(&b.peak_count).then_with(|| b.host.cmp(&a.host)));
        let held_at_end: u64 =
            result.occupancy.custodians.iter().filter(|c| c.part == part.part).map(|c| c.held_count_at_end).sum();
        let _ = writeln!(
            body,
            "<tr><td>{}</td><td class=\"num\">{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{held_at_end}</td></tr>",
            escape(&part.part),
            part.peak_count,
            busiest.map_or_else(String::new, |c| escape(&format!("{}@{}", c.part, c.host))),
            busiest.map_or(0, |c| c.peak_count)
        );
    }
    let _ = writeln!(body, "</table>");
    body.push_str(&occupancy_plot(result).render());
    body.push('\n');
}

/// The scheduled faults, one table row each, or a line saying there were none.
fn write_faults(body: &mut String, result: &RunResult) {
    let _ = writeln!(body, "<h2>Faults</h2>");
    if result.faults.is_empty() {
        let _ = writeln!(body, "<p class=\"muted\">No faults scheduled.</p>");
        return;
    }
    let _ = writeln!(body, "<table>\n<tr><th>#</th><th>kind</th><th>start</th><th>end</th><th>fault</th></tr>");
    for fault in &result.faults {
        let _ = writeln!(
            body,
            "<tr><td class=\"num\">{}</td><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td></tr>",
            fault.index,
            escape(&fault.kind),
            time_text(fault.start_micros),
            if fault.ends_at_heal {
                format!("{} (drain heals)", time_text(fault.end_micros))
            } else if fault.never_healed {
                format!("{} (never healed)", time_text(fault.end_micros))
            } else {
                time_text(fault.end_micros)
            },
            escape(&fault.description)
        );
    }
    let _ = writeln!(body, "</table>");
}

/// The job counts and the correlation verdict, then a pointer to `result.json`.
fn write_jobs(body: &mut String, result: &RunResult) {
    let _ = writeln!(
        body,
        "<h2>Jobs and correlation</h2>\n<p>{} jobs accepted, {} completed ({} submissions refused); correlation {} over {} jobs, {} spans, {} logs ({} exempt).</p>",
        result.jobs.submitted_count,
        result.jobs.completed_count,
        result.jobs.submit_failed_count,
        if result.correlation.complete { "complete" } else { "BROKEN" },
        result.correlation.jobs_count,
        result.correlation.spans_count,
        result.correlation.logs_count,
        result.correlation.logs_exempt_count
    );
    let _ = writeln!(
        body,
        "<p class=\"muted\">result.json (schema version {}) holds every number on this page.</p>",
        result.schema_version
    );
}

/// One line of the headline: what, the number as text, the number as data (for tests and
/// scripts), and whether it is within its budget (`None`: no budget).
struct HeadlineRow {
    /// The `data-headline` attribute: `log_p99`, `lost`, …
    key: &'static str,
    label: &'static str,
    text: String,
    /// The number itself (`data-value`): micros, records, records per second.
    value: String,
    /// "✓" or "✗" (empty without a budget) and its CSS class.
    mark: &'static str,
    mark_class: &'static str,
}

impl HeadlineRow {
    fn new(key: &'static str, label: &'static str, text: String, value: String, within: Option<bool>) -> HeadlineRow {
        let (mark, mark_class) = match within {
            Some(true) => ("✓", "pass"),
            Some(false) => ("✗", "fail"),
            None => ("", ""),
        };
        HeadlineRow { key, label, text, value, mark, mark_class }
    }
}

/// The headline at the top of `report.html` (`templates/headline.html`): the numbers people
/// act on, each next to its budget, and where the rest is.
#[derive(askama::Template)]
#[template(path = "headline.html")]
struct Headline {
    rows: Vec<HeadlineRow>,
    /// `BuildInfo::text`: which obsim wrote the page.
    build: String,
}

/// The headline of `result`, written by `obsim`.
fn headline(result: &RunResult, obsim: &BuildInfo) -> Headline {
    let mut rows = vec![checks_row(result)];
    rows.extend(loss_rows(result));
    rows.extend(latency_rows(result));
    rows.push(recovery_row(result));
    rows.push(throughput_row(result));
    let bugs = if result.planted_bugs.is_empty() { "none".to_string() } else { result.planted_bugs.join(", ") };
    rows.push(HeadlineRow::new("planted_bugs", "planted bugs", bugs, result.planted_bugs.len().to_string(), None));
    Headline { rows, build: obsim.text() }
}

/// How many checks failed, and which.
fn checks_row(result: &RunResult) -> HeadlineRow {
    let failed: Vec<&str> =
        result.checks.iter().filter(|check| !check.passed).map(|check| check.name.as_str()).collect();
    let text = if failed.is_empty() {
        format!("all {} checks held", result.checks.len())
    } else {
        format!("{} of {} checks failed: {}", failed.len(), result.checks.len(), failed.join(", "))
    };
    HeadlineRow::new("checks", "verdict", text, failed.len().to_string(), Some(result.passed))
}

/// Whether the check `name` held, if the run judged it.
fn check_held(result: &RunResult, name: CheckName) -> Option<bool> {
    result.checks.iter().find(|check| check.name == name).map(|check| check.passed)
}

/// Records lost by cause (both signals) and records in flight at the end.
fn loss_rows(result: &RunResult) -> [HeadlineRow; 2] {
    let by_cause = super::result::losses_by_cause(result);
    let lost = result.lost_count();
    let text = if lost == 0 {
        "none".to_string()
    } else {
        let causes: Vec<String> = by_cause.iter().map(|(cause, count)| format!("{cause} {count}")).collect();
        format!("{lost} records: {}", causes.join(", "))
    };
    let lost_row = HeadlineRow::new("lost", "lost", text, lost.to_string(), check_held(result, CheckName::Delivery));
    let held = result.signals.log.in_flight_count + result.signals.span.in_flight_count;
    let held_text = if held == 0 { "none".to_string() } else { format!("{held} records held at the end") };
    let held_row = HeadlineRow::new(
        "in_flight",
        "in flight",
        held_text,
        held.to_string(),
        check_held(result, CheckName::Liveness),
    );
    [lost_row, held_row]
}

/// `measured` against an optional budget: "2.10s vs budget 30s" and whether it held.
fn against_budget(measured_micros: u64, budget_micros: Option<u64>) -> (String, Option<bool>) {
    match budget_micros {
        Some(budget) => (
            format!("{} vs budget {}", latency_text(measured_micros), time_text(budget)),
            Some(measured_micros <= budget),
        ),
        None => (format!("{} (no budget)", latency_text(measured_micros)), None),
    }
}

/// Log p99 and max against their budgets, and span p99 and max.
fn latency_rows(result: &RunResult) -> [HeadlineRow; 3] {
    let log = &result.signals.log.latency;
    let (p99_text, p99_within) = against_budget(log.p99_micros, result.budgets.latency_p99_micros);
    let (max_text, max_within) = against_budget(log.max_micros, result.budgets.latency_max_micros);
    let span = &result.signals.span.latency;
    [
        HeadlineRow::new("log_p99", "log latency p99", p99_text, log.p99_micros.to_string(), p99_within),
        HeadlineRow::new("log_max", "log latency max", max_text, log.max_micros.to_string(), max_within),
        HeadlineRow::new(
            "span_p99",
            "span latency p99 / max",
            format!("{} / {}", latency_text(span.p99_micros), latency_text(span.max_micros)),
            span.p99_micros.to_string(),
            None,
        ),
    ]
}

/// The slowest recovery of any fault (logs or spans) against `max_recovery`.
fn recovery_row(result: &RunResult) -> HeadlineRow {
    let slowest = result
        .faults
        .iter()
        .filter_map(|fault| fault.log_recovery_micros.max(fault.span_recovery_micros).map(|micros| (micros, fault)))
        .max_by_key(|&(micros, fault)| (micros, std::cmp::Reverse(fault.index)));
    let Some((micros, fault)) = slowest else {
        let text = if result.faults.is_empty() { "no faults" } else { "no fault held back a record" };
        return HeadlineRow::new("recovery", "slowest recovery", text.to_string(), String::new(), None);
    };
    let (text, within) = against_budget(micros, result.budgets.recovery_micros);
    let text = format!("{text} after #{} {}", fault.index, fault.kind);
    HeadlineRow::new("recovery", "slowest recovery", text, micros.to_string(), within)
}

/// The slowest judged throughput window against `min_throughput`.
fn throughput_row(result: &RunResult) -> HeadlineRow {
    let throughput = &result.throughput;
    let budget = result.budgets.min_throughput_per_second;
    let (Some(index), Some(rate)) = (throughput.min_window_index, throughput.min_window_per_second) else {
        return HeadlineRow::new("throughput", "minimum throughput", "no window judged".into(), String::new(), None);
    };
    let window = format!(
        "{rate} logs/s in [{}, {})",
        time_text(index * throughput.window_micros),
        time_text((index + 1) * throughput.window_micros)
    );
    let text = match budget {
        Some(budget) => format!("{window} vs budget {budget}/s"),
        None => format!("{window} (no budget)"),
    };
    HeadlineRow::new("throughput", "minimum throughput", text, rate.to_string(), budget.map(|budget| rate >= budget))
}
