//! The latency views and headline of `report.html` (README "Reports"): the Jepsen-style
//! scatter has one dot per sampled batch of `result.json`'s sample and marks every lost
//! record's emit time at the top; its y axis is logarithmic; its x axis ends at the last
//! delivery (plus a margin), not at the end of the drain; fault bands name their parameters;
//! the headline's numbers are `result.json`'s; the same seed writes the same page.

use std::path::Path;
use std::sync::Arc;

use obsim::check::RunResult;
use obsim::check::Verdict;
use obsim::report::build_info::BuildInfo;
use obsim::scenario::Scenario;

/// One machine for 40 s with Dash0 answering 503 for 8 s, then a 40 s drain: deliveries end
/// a few seconds into the drain.
const OUTAGE: &str = r#"
name = "scatter-outage"
seed = 5
duration = "40s"
drain = "40s"

[topology]
machines = [{ type = "openai", count = 1, workers = 2 }]

[workload]
jobs_per_second = 1.0
logs_per_job = 8

[agent]
storage = "filesystem"
retry_limit = "no_limits"
require_ack = true

[[fault]]
at = "10s"
kind = "dash0_errors"
status = 503
rate = 1.0
for = "8s"

[expect]
correlation = "complete"
latency_p99 = "30s"
"#;

/// One OpenAI machine's clock 7 hours behind for 20 s: Dash0 refuses its records
/// (`dash0_timestamp_range`), and a planted bug the headline must name.
const LOSSY: &str = r#"
name = "scatter-lossy"
seed = 16
duration = "1m"
drain = "1m"

[topology]
machines = [
  { type = "comfyui", count = 1, workers = 2 },
  { type = "openai", count = 1, workers = 2 },
]

[workload]
jobs_per_second = 0.5
logs_per_job = 10

[agent]
storage = "filesystem"
retry_limit = "no_limits"
require_ack = true

[[fault]]
at = "20s"
kind = "clock_skew"
for = "20s"
target = "openai-1"
offset = "7h"
behind = true

[bugs]
collector_drop_traceparent = true

[expect]
correlation = "skip"
min_throughput = "1000/s"
"#;

/// Runs `text` with its own seed.
fn run(text: &str) -> RunResult {
    let scenario = Arc::new(Scenario::parse(Path::new("scatter.toml"), text).unwrap());
    Verdict::run(Arc::clone(&scenario), scenario.seed).unwrap().result
}

/// The stamp tests pin pages with.
fn stamp() -> BuildInfo {
    BuildInfo { version: "0.0.0".into(), commit: BuildInfo::REDACTED.into() }
}

const SVG: &str = "http://www.w3.org/2000/svg";

fn parse(html: &str) -> roxmltree::Document<'_> {
    roxmltree::Document::parse_with_options(
        html,
        roxmltree::ParsingOptions { allow_dtd: true, ..roxmltree::ParsingOptions::default() },
    )
    .unwrap_or_else(|error| panic!("report.html is not well-formed XML: {error}"))
}

/// The plot whose `data-series` is `series`.
fn plot<'a>(document: &'a roxmltree::Document<'a>, series: &str) -> roxmltree::Node<'a, 'a> {
    document
        .descendants()
        .find(|node| node.has_tag_name((SVG, "svg")) && node.attribute("data-series") == Some(series))
        .unwrap_or_else(|| panic!("no plot {series}"))
}

/// The elements of `svg` whose `class` is `class`.
fn with_class<'a>(svg: roxmltree::Node<'a, 'a>, class: &str) -> Vec<roxmltree::Node<'a, 'a>> {
    svg.descendants().filter(|node| node.attribute("class") == Some(class)).collect()
}

/// Every text of `node` and below.
fn texts<'a>(node: roxmltree::Node<'a, 'a>) -> Vec<&'a str> {
    node.descendants().filter_map(|node| node.text()).collect()
}

/// The tick labels of `svg`'s axes: (x labels, y labels) told apart by their anchor.
fn tick_labels<'a>(svg: roxmltree::Node<'a, 'a>) -> (Vec<&'a str>, Vec<&'a str>) {
    let axis = svg.descendants().find(|node| node.attribute("class") == Some("axis")).unwrap();
    let labels = |anchor: &str| -> Vec<&'a str> {
        axis.children()
            .filter(|node| node.has_tag_name((SVG, "text")) && node.attribute("text-anchor") == Some(anchor))
            .filter(|node| node.attribute("class").is_none())
            .filter_map(|node| node.text())
            .collect()
    };
    (labels("middle"), labels("end"))
}

#[test]
fn the_scatter_has_one_dot_per_sampled_batch_on_a_log_axis_ending_after_the_last_delivery() {
    let result = run(OUTAGE);
    let html = obsim::report::html::render_stamped(&result, &stamp());
    let document = parse(&html);
    for (series, signal) in
        [("latency_scatter_log", &result.signals.log), ("latency_scatter_span", &result.signals.span)]
    {
        let sample = &signal.latency_sample;
        assert!(!sample.points.is_empty() && sample.points.len() as u64 <= sample.points_limit, "{sample:?}");
        let first_deliveries: u64 = sample.points.iter().map(|&[_, _, count]| count).sum();
        if sample.stride == 1 {
            assert_eq!(first_deliveries, signal.delivered_count, "every batch kept: every record counted");
        }
        let svg = plot(&document, series);
        assert_eq!(with_class(svg, "delivered").len(), sample.points.len(), "{series}: one dot per sampled batch");
        // Logarithmic: the y ticks are round latencies a decade apart.
        let (x_labels, y_labels) = tick_labels(svg);
        assert!(y_labels.len() >= 2, "{series}: {y_labels:?}");
        let decades = ["1ms", "10ms", "100ms", "1s", "10s", "1m", "10m", "1h"];
        assert!(y_labels.iter().all(|label| decades.contains(label)), "{series}: {y_labels:?}");
        assert!(y_labels.contains(&"1s") && y_labels.contains(&"10s"), "{series}: 2 s and 8 s: {y_labels:?}");
        // The x axis ends after the last delivery, well before the drain's end (1m20s).
        let last_delivery_seconds = sample.last_delivery_micros.unwrap() as f64 / 1e6;
        assert!(last_delivery_seconds < 60.0, "deliveries end early: {last_delivery_seconds}");
        let end = obsim::units::parse_duration(x_labels.last().unwrap()).unwrap().as_secs_f64();
        assert!(end >= last_delivery_seconds && end < 80.0, "{series}: x ends at {end}: {x_labels:?}");
        // The fault band names its parameters.
        assert!(texts(svg).contains(&"#0 dash0_errors for=8s status=503 rate=1.0"), "{:?}", texts(svg));
        assert!(with_class(svg, "lost").is_empty(), "nothing lost");
    }
    // The outage shows as a ramp: what was emitted during it waited for its end.
    let points = &result.signals.log.latency_sample.points;
    let during = points.iter().filter(|p| (10_000_000..18_000_000).contains(&p[0])).map(|p| p[1]).max().unwrap();
    assert!(during > 5_000_000, "records emitted during the 8 s outage waited for its end: {during} µs");
    // The per-window view: a log axis too, ending with the scatter's.
    let windows = plot(&document, "latency");
    assert_eq!(tick_labels(windows).0.last(), tick_labels(plot(&document, "latency_scatter_log")).0.last());
    assert!(tick_labels(windows).1.contains(&"1s"));
}

#[test]
fn lost_records_are_marked_at_the_top_at_their_emit_times_and_the_headline_matches_result_json() {
    let result = run(LOSSY);
    assert!(!result.passed);
    let lost: Vec<_> = result
        .signals
        .log
        .latency_sample
        .undelivered
        .iter()
        .filter(|outcome| outcome.outcome == "dash0_timestamp_range")
        .collect();
    assert_eq!(lost.len(), 1, "{:?}", result.signals.log.latency_sample.undelivered);
    let lost = lost[0];
    assert!(lost.lost && lost.count > 0);
    assert_eq!(lost.marks.iter().map(|&[_, count]| count).sum::<u64>(), lost.count, "every lost record is marked");
    let refused: u64 =
        result.signals.log.losses.iter().filter(|l| l.cause == "dash0_timestamp_range").map(|l| l.count).sum();
    assert_eq!(lost.count, refused);
    // Emitted while the clock was wrong (20 s .. 40 s, a few seconds of slack for batching).
    assert!(lost.marks.iter().all(|&[emit, _]| (15_000_000..45_000_000).contains(&emit)), "{:?}", lost.marks);

    let html = obsim::report::html::render_stamped(&result, &stamp());
    let document = parse(&html);
    let svg = plot(&document, "latency_scatter_log");
    assert_eq!(with_class(svg, "lost").len(), lost.marks.len(), "one lost mark per bin");
    let label = format!("lost: dash0_timestamp_range ({})", lost.count);
    assert!(texts(svg).contains(&label.as_str()), "{:?}", texts(svg));

    let headline = |key: &str| -> (String, String) {
        let row = document
            .descendants()
            .find(|node| node.attribute("data-headline") == Some(key))
            .unwrap_or_else(|| panic!("no headline row {key}"));
        let text: String = row.descendants().filter(|node| node.is_text()).filter_map(|node| node.text()).collect();
        (row.attribute("data-value").unwrap().to_string(), text)
    };
    let (value, text) = headline("lost");
    assert_eq!(value, result.lost_count().to_string());
    assert!(text.contains("dash0_timestamp_range") && text.contains('✗'), "{text}");
    assert_eq!(headline("log_p99").0, result.signals.log.latency.p99_micros.to_string());
    assert_eq!(headline("log_max").0, result.signals.log.latency.max_micros.to_string());
    let (value, text) = headline("throughput");
    let json: serde_json::Value = serde_json::from_str(&result.to_json()).unwrap();
    assert_eq!(value, json["throughput"]["min_window_per_second"].as_f64().unwrap().to_string());
    assert!(text.contains("vs budget 1000/s") && text.contains('✗'), "{text}");
    assert_eq!(result.budgets.min_throughput_per_second, Some(1000.0));
    assert_eq!(headline("planted_bugs").1, "planted bugscollector_drop_traceparent");
    assert_eq!(result.planted_bugs, vec!["collector_drop_traceparent".to_string()]);
    assert!(headline("checks").1.contains("delivery"), "{:?}", headline("checks"));
    // Which obsim, and where the rest is.
    assert!(html.contains("written by obsim 0.0.0 ([commit])"), "the stamp is on the page");
    for file in ["result.json", "events.log"] {
        assert!(
            document.descendants().any(|node| node.has_tag_name("a") && node.attribute("href") == Some(file)),
            "a link to {file}"
        );
    }
}

#[test]
fn the_same_seed_writes_the_same_page_and_result_json_says_which_obsim_wrote_it() {
    let (first, second) = (run(OUTAGE), run(OUTAGE));
    let html = obsim::report::html::render_stamped(&first, &stamp());
    assert_eq!(html, obsim::report::html::render_stamped(&second, &stamp()), "byte-identical per seed");
    assert_eq!(first.to_json(), second.to_json());
    let json = first.to_json();
    let stamped = obsim::report::result::build_info_of(&json).unwrap().unwrap();
    assert_eq!(stamped, BuildInfo::current());
    assert_eq!(RunResult::parse(&json).unwrap(), first, "the stamp does not disturb reading back");
    let unstamped = serde_json::to_string(&first).unwrap();
    assert_eq!(obsim::report::result::build_info_of(&unstamped).unwrap(), None, "older files have none");
}
