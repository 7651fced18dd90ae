//! Reports (ARCHITECTURE.md §5): `result.json` and `summary.md` of a fixed scenario and seed are
//! pinned by snapshots; `report.html` parses as XML, is self-contained and has one plot per
//! series; `obsim run` writes every file; `obsim report compare` flags a planted regression
//! and passes an identical pair; `obsim report merge` of a sweep's shards equals the index
//! of the whole sweep.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use obsim::chaos::SweepOptions;
use obsim::check::CheckName;
use obsim::check::RunResult;
use obsim::check::Verdict;
use obsim::report::build_info::BuildInfo;
use obsim::report::index::Index;
use obsim::report::index::Shard;
use obsim::scenario::Scenario;

/// One machine for 40 s with Dash0 down for 8 s, then a 40 s drain: short, with one fault
/// so fault windows show in every report.
const SMALL: &str = r#"
name = "report-small"
description = "one machine, Dash0 answers 503 for 8 s: reports show the fault"
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

/// The same with a `[chaos]` table, for sweeps.
fn chaos_text() -> String {
    format!(
        "{SMALL}\n[chaos]\nkinds = [\"link_drop\", \"dash0_errors\", \"latency\"]\nfaults_max = 2\nfault_for_max = \"5s\"\ndrain = \"40s\"\n"
    )
}

fn obsim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_obsim")).args(args).output().expect("the obsim binary runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).to_string()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).to_string()
}

/// A fresh folder of its own under the target directory.
fn fresh_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("report_output").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs the small scenario in this process, as `obsim run report-small.toml` would.
fn small_verdict() -> Verdict {
    let scenario = Arc::new(Scenario::parse(Path::new("report-small.toml"), SMALL).unwrap());
    let mut verdict = Verdict::run(Arc::clone(&scenario), scenario.seed).unwrap();
    verdict.set_scenario_path("report-small.toml".to_string());
    verdict
}

#[test]
fn result_json_and_summary_md_are_pinned_for_a_fixed_seed() {
    let verdict = small_verdict();
    assert!(verdict.passed(), "{}", verdict.render());
    let result = verdict.result.clone();
    assert_eq!(result.schema_version, 1);
    assert_eq!(result.faults.len(), 1);
    let fault = &result.faults[0];
    assert_eq!((fault.kind.as_str(), fault.start_micros, fault.end_micros), ("dash0_errors", 10_000_000, 18_000_000));
    // 80 s of true time in 10 s windows: every series has 8 windows.
    assert_eq!(result.signals.log.windows.len(), 8);
    assert_eq!(result.signals.span.windows.len(), 8);
    assert!(result.occupancy.parts.iter().all(|part| part.peak_count_per_window.len() == 8));
    let delivered_in_windows: u64 = result.signals.log.windows.iter().map(|w| w.delivered_count).sum();
    assert_eq!(delivered_in_windows, result.signals.log.delivered_count, "every first delivery lands in a window");
    assert_eq!(result.signals.log.latency_curve.len(), 13);
    assert_eq!(result.signals.log.latency_curve.last().unwrap().micros, result.signals.log.latency.max_micros);
    // The stamp's commit changes with every build: pinned bytes carry it redacted.
    let stamp = BuildInfo { commit: BuildInfo::REDACTED.to_string(), ..BuildInfo::current() };
    let json = result.to_json_stamped(&stamp);
    assert_eq!(RunResult::parse(&json).unwrap(), result, "result.json reads back as written");
    assert!(
        json.ends_with(&format!(
            "\"obsim\": {{\n    \"version\": \"{}\",\n    \"commit\": \"[commit]\"\n  }}\n}}\n",
            stamp.version
        )),
        "{json}"
    );
    insta::assert_snapshot!("result_json", json);
    insta::assert_snapshot!("summary_md", obsim::report::summary::render(&result));
}

/// One result model: the printed verdict renders from the model that is result.json, so a
/// result read back from its file prints the very same text, and the model's checks are
/// the verdict's (looked up by name).
#[test]
fn the_printed_verdict_renders_from_the_model_that_result_json_holds() {
    let text = SMALL.replace("latency_p99 = \"30s\"", "latency_p99 = \"30s\"\nlatency_max = \"100ms\"");
    let scenario = Arc::new(Scenario::parse(Path::new("report-small.toml"), &text).unwrap());
    let verdict = Verdict::run(Arc::clone(&scenario), 5).unwrap();
    let read_back = RunResult::parse(&verdict.result.to_json()).unwrap();
    assert_eq!(read_back.render(), verdict.render(), "the text is a function of result.json alone");
    let latency_max = read_back.checks.iter().find(|check| check.name == CheckName::LatencyMax).unwrap();
    assert!(!latency_max.passed && !read_back.passed);
    assert_eq!(verdict.check(CheckName::LatencyMax), Some(latency_max));
    assert!(verdict.check(CheckName::Throughput).is_none(), "a check the scenario does not ask for is not judged");
}

#[test]
fn a_failed_run_reports_its_failed_checks_with_their_details() {
    let text = SMALL.replace("latency_p99 = \"30s\"", "latency_p99 = \"30s\"\nlatency_max = \"100ms\"");
    let scenario = Arc::new(Scenario::parse(Path::new("report-small.toml"), &text).unwrap());
    let verdict = Verdict::run(Arc::clone(&scenario), 5).unwrap();
    let result = verdict.result.clone();
    assert!(!result.passed);
    let summary = obsim::report::summary::render(&result);
    assert!(summary.starts_with("# report-small — seed 5: FAIL"), "{summary}");
    assert!(summary.contains("## Failed checks\n\n### latency_max\n\n```text\nlog latency 9s"), "{summary}");
    assert!(summary.contains("vs budget 100ms\n```"), "{summary}");
    assert!(!summary.contains("### latency_p99"), "only failed checks are detailed: {summary}");
    let html = obsim::report::html::render(&result);
    assert!(html.contains("<span class=\"fail\">FAIL</span>"), "the page shows the verdict");
}

/// Every element of `document` whose tag is `svg`.
fn svgs<'a>(document: &'a roxmltree::Document<'a>) -> Vec<roxmltree::Node<'a, 'a>> {
    document.descendants().filter(|node| node.has_tag_name(("http://www.w3.org/2000/svg", "svg"))).collect()
}

/// Fails when `html` refers to anything outside itself (the SVG namespace is a name, not
/// a fetch).
fn assert_self_contained(html: &str) {
    let outside = html.replace("http://www.w3.org/2000/svg", "");
    for forbidden in ["http://", "https://", "<script", "<link", "@import", "url("] {
        assert!(!outside.contains(forbidden), "the page refers to {forbidden}");
    }
}

#[test]
fn the_html_report_parses_and_has_one_plot_per_series() {
    let result = small_verdict().result;
    let html = obsim::report::html::render(&result);
    let document = roxmltree::Document::parse_with_options(
        &html,
        roxmltree::ParsingOptions { allow_dtd: true, ..roxmltree::ParsingOptions::default() },
    )
    .unwrap_or_else(|error| panic!("report.html is not well-formed XML: {error}"));
    let plots = svgs(&document);
    let series: Vec<&str> = plots.iter().map(|svg| svg.attribute("data-series").unwrap_or("")).collect();
    assert_eq!(
        series,
        vec!["latency_scatter_log", "latency_scatter_span", "latency", "percentiles", "throughput", "occupancy"]
    );
    for svg in &plots {
        let texts: Vec<&str> = svg.descendants().filter_map(|node| node.text()).collect();
        let legend = svg.descendants().find(|node| node.attribute("class") == Some("legend"));
        assert!(
            legend.is_some_and(|legend| legend.children().count() >= 2),
            "a legend in {:?}",
            svg.attribute("data-series")
        );
        let axis = svg.descendants().find(|node| node.attribute("class") == Some("axis")).unwrap();
        assert!(
            axis.descendants().filter(|node| node.has_tag_name(("http://www.w3.org/2000/svg", "text"))).count() >= 6
        );
        let scatter = svg.attribute("data-series").is_some_and(|series| series.starts_with("latency_scatter"));
        let mark = if scatter { "circle" } else { "path" };
        assert!(svg.descendants().any(|node| node.has_tag_name(("http://www.w3.org/2000/svg", mark))), "a {mark}");
        if svg.attribute("data-series") != Some("percentiles") {
            assert!(
                texts.contains(&"#0 dash0_errors for=8s status=503 rate=1.0"),
                "the fault window is labelled with its parameters: {texts:?}"
            );
            assert!(texts.contains(&"drain"), "the drain is marked");
        }
    }
    let latency = plots[2];
    assert!(latency.descendants().any(|node| node.attribute("class") == Some("fault")), "the fault window is shaded");
    assert_self_contained(&html);
}

#[test]
fn obsim_run_writes_every_report_file_and_keeps_its_verdict_text() {
    let dir = fresh_dir("run");
    let path = dir.join("report-small.toml");
    std::fs::write(&path, SMALL).unwrap();
    let reports = dir.join("reports");
    let output = obsim(&["run", path.to_str().unwrap(), "--reports", reports.to_str().unwrap()]);
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{text}{}", stderr(&output));
    assert!(text.contains("verdict PASS") && text.contains("event-log hash "), "{text}");
    let run_dir = reports.join("report-small/5");
    assert!(text.contains(&format!("report: {}", run_dir.join("report.html").display())), "{text}");
    let result = RunResult::parse(&std::fs::read_to_string(run_dir.join("result.json")).unwrap()).unwrap();
    let hash = text.lines().find_map(|line| line.strip_prefix("event-log hash ")).unwrap();
    assert_eq!(result.event_log.hash, hash);
    let summary = std::fs::read_to_string(run_dir.join("summary.md")).unwrap();
    assert!(summary.starts_with("# report-small — seed 5: PASS"), "{summary}");
    let events = std::fs::read_to_string(run_dir.join("events.log")).unwrap();
    assert!(
        events.starts_with(&format!("# event log: {} events, hash {hash}", result.event_log.events_count)),
        "{events}"
    );
    assert!(events.contains("fault.start"), "the fault is in the event log");
    assert_self_contained(&std::fs::read_to_string(run_dir.join("report.html")).unwrap());
}

/// Writes `value` as JSON to `path`.
fn write_json(path: &Path, value: &serde_json::Value) {
    std::fs::write(path, serde_json::to_string_pretty(value).unwrap()).unwrap();
}

#[test]
fn compare_flags_a_planted_regression_and_passes_an_identical_pair() {
    let dir = fresh_dir("compare");
    let result = small_verdict().result;
    let old = dir.join("old.json");
    std::fs::write(&old, result.to_json()).unwrap();
    let same = obsim(&["report", "compare", old.to_str().unwrap(), old.to_str().unwrap()]);
    assert_eq!(same.status.code(), Some(0), "{}{}", stdout(&same), stderr(&same));
    assert!(stdout(&same).contains("no regression beyond the 10% threshold"), "{}", stdout(&same));

    // Log p99 up by 50 %: a regression.
    let mut slower: serde_json::Value = serde_json::from_str(&result.to_json()).unwrap();
    let p99 = slower["signals"]["log"]["latency"]["p99_micros"].as_u64().unwrap();
    slower["signals"]["log"]["latency"]["p99_micros"] = (p99 * 3 / 2).into();
    let new = dir.join("slower.json");
    write_json(&new, &slower);
    let output = obsim(&["report", "compare", old.to_str().unwrap(), new.to_str().unwrap()]);
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    let row = text.lines().find(|line| line.contains("log p99")).unwrap();
    assert!(row.starts_with("REGRESSION") && row.contains("+50.0%"), "{text}");
    assert!(text.contains("1 regression beyond the 10% threshold"), "{text}");
    // A 60 % threshold lets it pass.
    let lenient = obsim(&["report", "compare", old.to_str().unwrap(), new.to_str().unwrap(), "--threshold", "60"]);
    assert_eq!(lenient.status.code(), Some(0), "{}", stdout(&lenient));

    // A new loss cause: a regression whatever the threshold.
    let mut lossy: serde_json::Value = serde_json::from_str(&result.to_json()).unwrap();
    lossy["signals"]["log"]["losses"] = serde_json::json!([{ "cause": "aggregator_overflow", "part": "aggregator", "host": "railway-aggregator", "count": 3 }]);
    lossy["signals"]["log"]["lost_count"] = 3.into();
    let lossy_path = dir.join("lossy.json");
    write_json(&lossy_path, &lossy);
    let output =
        obsim(&["report", "compare", old.to_str().unwrap(), lossy_path.to_str().unwrap(), "--threshold", "1000"]);
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(text.contains("new loss cause aggregator_overflow") && text.contains("lost records"), "{text}");

    // Bad input exits 2 naming the file.
    let garbage = dir.join("garbage.json");
    std::fs::write(&garbage, "{ not json").unwrap();
    let output = obsim(&["report", "compare", old.to_str().unwrap(), garbage.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("garbage.json: not JSON"), "{}", stderr(&output));
    let mut future = serde_json::from_str::<serde_json::Value>(&result.to_json()).unwrap();
    future["schema_version"] = 2.into();
    let future_path = dir.join("future.json");
    write_json(&future_path, &future);
    let output = obsim(&["report", "compare", old.to_str().unwrap(), future_path.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("schema_version 2"), "{}", stderr(&output));
}

/// Runs the chaos sweep of `path` for `shard` (3 seeds, no shrinking) and writes it to `out`.
fn sweep_into(path: &Path, shard: &str, out: &Path) -> Index {
    let scenario = Arc::new(Scenario::load(path).unwrap());
    let files = vec![(path.to_path_buf(), scenario)];
    let options = SweepOptions {
        seeds: 3,
        first_seed: 1,
        jobs: 1,
        shard: Shard::parse(shard).unwrap(),
        shrink_runs: 0,
        ..SweepOptions::default()
    };
    let runs = obsim::chaos::sweep(&files, &options, &|| true, &|_| {});
    obsim::chaos::output::write(out, &runs, options.shard, options.first_seed, options.seeds).unwrap()
}

#[test]
fn merging_a_sweeps_shards_gives_the_index_of_the_whole_sweep() {
    let dir = fresh_dir("merge");
    let path = dir.join("report-chaos.toml");
    std::fs::write(&path, chaos_text()).unwrap();
    let (first, second, whole_dir, merged_dir) =
        (dir.join("shard-1"), dir.join("shard-2"), dir.join("whole"), dir.join("merged"));
    let shard_1 = sweep_into(&path, "1/2", &first);
    let shard_2 = sweep_into(&path, "2/2", &second);
    let whole = sweep_into(&path, "1/1", &whole_dir);
    assert_eq!((shard_1.runs_count, shard_2.runs_count, whole.runs_count), (2, 1, 3));

    let output = obsim(&[
        "report",
        "merge",
        second.join("index.json").to_str().unwrap(),
        first.join("index.json").to_str().unwrap(),
        "--out",
        merged_dir.to_str().unwrap(),
    ]);
    // The merge's exit status is the merged sweep's verdict: 1 when a merged run failed.
    let expected = if whole.failures_count > 0 { 1 } else { 0 };
    assert_eq!(output.status.code(), Some(expected), "{}{}", stdout(&output), stderr(&output));
    // The same bytes as the whole sweep's index, but for where failure files live.
    let merged_json = std::fs::read_to_string(merged_dir.join("index.json")).unwrap();
    let whole_json = std::fs::read_to_string(whole_dir.join("index.json")).unwrap();
    // Replay commands name folders relative to the current one when they are inside it.
    let display = obsim::report::index::display_path;
    let relocated = merged_json.replace(&display(&merged_dir), &display(&whole_dir));
    assert_eq!(relocated, whole_json);
    for run in &whole.runs {
        let report_dir = merged_dir.join(run.report_dir.as_ref().unwrap());
        assert!(report_dir.join("result.json").exists() && report_dir.join("case.toml").exists());
        assert_eq!(
            report_dir.join("report.html").exists(),
            run.full_report,
            "full reports as the whole sweep has them"
        );
        if let Some(failure) = &run.failure_file {
            assert!(merged_dir.join(failure).exists(), "the failure file is copied along");
        }
    }
    // The library merge agrees, and in-memory indexes of the shards merge the same way.
    let merged = obsim::report::merge::merge(&[("a".into(), shard_1.clone()), ("b".into(), shard_2)]).unwrap();
    assert_eq!(merged.runs.iter().map(|run| run.seed).collect::<Vec<_>>(), vec![1, 2, 3]);
    assert_eq!(merged.failures_count, whole.failures_count);

    // A missing shard is refused by name.
    let output = obsim(&[
        "report",
        "merge",
        first.join("index.json").to_str().unwrap(),
        "--out",
        dir.join("partial").to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("missing shards 2/2 of the sweep"), "{}", stderr(&output));

    // The index page: self-contained XML with the p99 distribution across seeds.
    let html = std::fs::read_to_string(merged_dir.join("index.html")).unwrap();
    let document = roxmltree::Document::parse_with_options(
        &html,
        roxmltree::ParsingOptions { allow_dtd: true, ..roxmltree::ParsingOptions::default() },
    )
    .unwrap();
    let series: Vec<&str> = svgs(&document).iter().filter_map(|svg| svg.attribute("data-series")).collect();
    assert_eq!(series, vec!["p99_distribution"]);
    assert!(html.contains("Worst seeds by log p99"));
    assert_self_contained(&html);

    // Indexes compare too: identical passes, a run's p99 up by half is flagged.
    let whole_index = whole_dir.join("index.json");
    let same = obsim(&["report", "compare", whole_index.to_str().unwrap(), whole_index.to_str().unwrap()]);
    assert_eq!(same.status.code(), Some(0), "{}", stdout(&same));
    let mut slower: serde_json::Value = serde_json::from_str(&whole_json).unwrap();
    let p99 = slower["runs"][1]["log_latency_p99_micros"].as_u64().unwrap();
    slower["runs"][1]["log_latency_p99_micros"] = (p99 * 3 / 2).into();
    let slower_path = dir.join("slower-index.json");
    write_json(&slower_path, &slower);
    let output = obsim(&["report", "compare", whole_index.to_str().unwrap(), slower_path.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1), "{}", stdout(&output));
    assert!(stdout(&output).contains("report-small seed 2"), "{}", stdout(&output));
}
