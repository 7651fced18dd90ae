//! Dash0's queries as a person uses them: a small run's store served by Dash0 over the
//! simulated network and asked with `GET /api/...` (the right spans and logs for a job, the
//! 400/401/404/405 answers), the correlation checker failing through the same queries, and
//! `obsim run --export` files that parse back as OTLP JSON with exactly the stored counts,
//! byte-identical across two runs of one seed.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use obsim::check::{CheckName, Verdict};
use obsim::ledger::Ledger;
use obsim::parts::PartCtx;
use obsim::parts::dash0::{self, Dash0Config, Dash0Control, Dash0Store};
use obsim::pipeline::Pipeline;
use obsim::proto::otlp;
use obsim::record::{JobId, TraceId};
use obsim::report::export::{self, LOGS_FILE, METRICS_FILE, TRACES_FILE};
use obsim::scenario::Scenario;
use obsim::vocab::{hosts, ports};
use obsim::world::WorldBuilder;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use serde_json::Value;

/// Two OpenAI machines, one job a second for 20 s, metrics on: a small run with every signal.
const SMALL: &str = r#"
name = "query-small"
seed = 11
duration = "20s"
drain = "1m"
[topology]
machines = [{ type = "openai", count = 2, workers = 2 }]
[workload]
jobs_per_second = 1.0
logs_per_job = 8
"#;

/// Runs `toml` (with `bug` switched on under `[bugs]`, if any) and judges it.
fn run(toml: &str, bug: Option<&str>) -> (Pipeline, Verdict) {
    let text = match bug {
        Some(bug) => format!("{toml}\n[bugs]\n{bug} = true\n"),
        None => toml.to_string(),
    };
    let scenario = Arc::new(Scenario::parse(Path::new("query-small.toml"), &text).unwrap());
    let seed = scenario.seed;
    let mut pipeline = Pipeline::build(scenario, seed);
    let outcome = pipeline.run().unwrap();
    let verdict = Verdict::judge(&pipeline, outcome);
    (pipeline, verdict)
}

/// One answer of the query routes.
#[derive(Clone, Debug)]
struct Answer {
    path: String,
    status: u16,
    content_type: String,
    json: Value,
}

/// GETs `path` from Dash0's HTTP server over a fresh connection of the simulated network.
async fn get(path: &str, token: Option<&str>, method: http::Method) -> Answer {
    let stream = turmoil::net::TcpStream::connect((hosts::DASH0, ports::DASH0_HTTP)).await.expect("dash0 listens");
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.unwrap();
    tokio::spawn(connection);
    let mut request = http::Request::builder().method(method).uri(path).header(http::header::HOST, hosts::DASH0);
    if let Some(token) = token {
        request = request.header(http::header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let response = sender.send_request(request.body(Empty::<Bytes>::new()).unwrap()).await.unwrap();
    let status = response.status().as_u16();
    let content_type =
        response.headers().get(http::header::CONTENT_TYPE).map_or(String::new(), |v| v.to_str().unwrap().to_string());
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let json = serde_json::from_slice(&body).unwrap_or_else(|error| panic!("{path}: not JSON ({error}): {body:?}"));
    Answer { path: path.to_string(), status, content_type, json }
}

/// Serves `store` from a Dash0 host of a fresh world and asks it `requests` (path, token,
/// method) from a client host, in order; gives the answers.
fn ask(
    store: &Dash0Store,
    config: Dash0Config,
    requests: Vec<(String, Option<&'static str>, http::Method)>,
) -> Vec<Answer> {
    let mut world = WorldBuilder::new(7).duration(Duration::from_secs(60)).build();
    let (ledger, control, served) = (Ledger::new(), Dash0Control::new(), store.clone());
    world.host(hosts::DASH0, move |host| {
        dash0::run(PartCtx::new(host, ledger.clone()), config.clone(), control.clone(), served.clone())
    });
    let seen: Arc<Mutex<Vec<Answer>>> = Arc::default();
    let seen_in = Arc::clone(&seen);
    world.host("person", move |_| {
        let (requests, seen) = (requests.clone(), Arc::clone(&seen_in));
        async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            for (path, token, method) in requests {
                let answer = get(&path, token, method).await;
                seen.lock().unwrap().push(answer);
            }
            Ok(())
        }
    });
    world.run_for(Duration::from_secs(30)).unwrap();
    seen.lock().unwrap().clone()
}

/// The first job Dash0 stored logs of, with its trace id (from its spans).
fn a_job(store: &Dash0Store) -> (JobId, TraceId) {
    store.query(|queries| {
        let job = queries.job_ids().into_iter().find(|job| !queries.logs_of_job(*job, 1).logs.is_empty()).unwrap();
        let traces: Vec<TraceId> = queries.trace_ids_of_job(job).collect();
        assert_eq!(traces.len(), 1, "job {job} has one trace");
        (job, traces[0])
    })
}

/// Every `key` string found under `field` of each element of `array` of `resource_field`:
/// e.g. the `spanId`s of `resourceSpans[*].scopeSpans[*].spans[*]`.
fn strings(json: &Value, path: [&str; 3], key: &str) -> Vec<String> {
    let mut found = Vec::new();
    for resource in json[path[0]].as_array().unwrap() {
        for scope in resource[path[1]].as_array().unwrap() {
            for record in scope[path[2]].as_array().unwrap() {
                found.push(record[key].as_str().unwrap_or_else(|| panic!("{key} in {record}")).to_string());
            }
        }
    }
    found
}

#[test]
fn queries_over_the_network_give_a_jobs_logs_and_its_trace() {
    let (pipeline, verdict) = run(SMALL, None);
    assert!(verdict.passed(), "{}", verdict.render());
    let store = pipeline.dash0_store.clone();
    let (job, trace) = a_job(&store);
    let (want_logs, want_spans, want_trace_logs) = store.query(|queries| {
        let logs = queries.logs_of_job(job, usize::MAX).logs;
        let answer = queries.trace(trace, usize::MAX);
        let span_ids: BTreeSet<String> = answer.spans.hits.iter().map(|hit| hit.record.span_id.to_string()).collect();
        (logs.hits.len(), span_ids, answer.logs.hits.len())
    });
    assert!(want_logs >= 8 && want_spans.len() >= 3, "{want_logs} logs, {} spans", want_spans.len());
    let token = Some("obsim-token");
    let answers = ask(
        &store,
        Dash0Config::default(),
        vec![
            (format!("/api/logs?job_id={job}"), token, http::Method::GET),
            (format!("/api/traces/{trace}"), token, http::Method::GET),
            (format!("/api/logs?job_id={job}&limit=1"), token, http::Method::GET),
        ],
    );
    let (logs, traced, limited) = (&answers[0], &answers[1], &answers[2]);
    assert_eq!((logs.status, logs.content_type.as_str()), (200, "application/json"), "{logs:?}");
    let log_traces = strings(&logs.json, ["resourceLogs", "scopeLogs", "logRecords"], "traceId");
    assert_eq!(log_traces.len(), want_logs, "every log of the job: {}", logs.json);
    assert!(log_traces.iter().all(|t| *t == trace.to_string()), "hex trace ids of the job's trace: {log_traces:?}");
    let times = strings(&logs.json, ["resourceLogs", "scopeLogs", "logRecords"], "timeUnixNano");
    let times: Vec<u64> = times.iter().map(|t| t.parse().expect("int64 as a decimal string")).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "oldest first: {times:?}");
    assert_eq!(logs.json["truncated"], false);

    assert_eq!(traced.status, 200, "{traced:?}");
    let span_ids: BTreeSet<String> =
        strings(&traced.json, ["resourceSpans", "scopeSpans", "spans"], "spanId").into_iter().collect();
    assert_eq!(span_ids, want_spans, "the trace's spans, hex span ids");
    let trace_logs = strings(&traced.json, ["resourceLogs", "scopeLogs", "logRecords"], "spanId");
    assert_eq!(trace_logs.len(), want_trace_logs);
    assert!(trace_logs.iter().all(|id| span_ids.contains(id)), "each log's span is in the trace");

    assert_eq!(limited.status, 200);
    assert_eq!(strings(&limited.json, ["resourceLogs", "scopeLogs", "logRecords"], "traceId").len(), 1);
    assert_eq!(
        (limited.json["truncated"].as_bool(), limited.json["logsMatched"].as_u64()),
        (Some(true), Some(want_logs as u64))
    );
}

#[test]
fn a_metric_query_groups_points_into_series_by_time() {
    let (pipeline, _) = run(SMALL, None);
    let store = pipeline.dash0_store.clone();
    let name = store.metric_points().first().map(|(point, _)| point.name.clone()).expect("the run stores metrics");
    let answers = ask(
        &store,
        Dash0Config::default(),
        vec![(format!("/api/metrics?name={name}"), Some("obsim-token"), http::Method::GET)],
    );
    assert_eq!(answers[0].status, 200, "{:?}", answers[0]);
    let request: ExportMetricsServiceRequest = serde_json::from_value(answers[0].json.clone()).unwrap();
    let mut points = 0;
    for resource in &request.resource_metrics {
        let metrics = &resource.scope_metrics[0].metrics;
        assert_eq!(metrics.len(), 1, "one series, one metric");
        assert_eq!(metrics[0].name, name);
        let times: Vec<u64> = match metrics[0].data.as_ref().unwrap() {
            Data::Sum(sum) => sum.data_points.iter().map(|p| p.time_unix_nano).collect(),
            Data::Gauge(gauge) => gauge.data_points.iter().map(|p| p.time_unix_nano).collect(),
            Data::Histogram(histogram) => histogram.data_points.iter().map(|p| p.time_unix_nano).collect(),
            other => panic!("obsim stores no {other:?}"),
        };
        assert!(times.windows(2).all(|w| w[0] <= w[1]), "each series by time: {times:?}");
        points += times.len();
    }
    let stored = store.metric_points().iter().filter(|(point, _)| point.name == name).count();
    assert_eq!(points as u64, answers[0].json["pointsMatched"].as_u64().unwrap());
    assert_eq!(points, stored.min(Dash0Config::default().query_results_limit));
}

#[test]
fn unknown_ids_are_404_bad_parameters_400_and_queries_need_the_token() {
    let (pipeline, _) = run(SMALL, None);
    let (job, _) = a_job(&pipeline.dash0_store);
    let token = Some("obsim-token");
    let get = http::Method::GET;
    let answers = ask(
        &pipeline.dash0_store,
        Dash0Config::default(),
        vec![
            (format!("/api/traces/{}", "ab".repeat(16)), token, get.clone()),
            ("/api/traces/not-a-trace".to_string(), token, get.clone()),
            ("/api/logs".to_string(), token, get.clone()),
            ("/api/logs?job_id=job-12".to_string(), token, get.clone()),
            (format!("/api/logs?job_id={job}&limit=ten"), token, get.clone()),
            (format!("/api/logs?job_id={job}&limit=0"), token, get.clone()),
            ("/api/logs?job_id=job-00000000-0000-4000-8000-000000000000".to_string(), token, get.clone()),
            ("/api/metrics?name=no.such.metric".to_string(), token, get.clone()),
            ("/api/spans".to_string(), token, get.clone()),
            (format!("/api/logs?job_id={job}"), None, get.clone()),
            (format!("/api/logs?job_id={job}"), Some("stolen"), get.clone()),
            (format!("/api/logs?job_id={job}"), token, http::Method::POST),
        ],
    );
    let expected: [(u16, &str); 12] = [
        (404, "no span or log of trace abab"),
        (400, "parameter `trace_id`"),
        (400, "parameter `job_id`: is required"),
        (400, "parameter `job_id`"),
        (400, "parameter `limit`: \"ten\" is not a whole number"),
        (400, "parameter `limit`: must be at least 1"),
        (404, "no log of job job-00000000"),
        (404, "no point of metric \"no.such.metric\""),
        (404, "no query route at /api/spans"),
        (401, "missing `Authorization: Bearer <token>`"),
        (401, "the bearer token is not valid"),
        (405, "POST is not GET"),
    ];
    assert_eq!(answers.len(), expected.len());
    for (answer, (status, needle)) in answers.iter().zip(expected) {
        let message = answer.json["error"]["message"].as_str().unwrap_or_default();
        assert_eq!(answer.status, status, "{}: {}", answer.path, answer.json);
        assert_eq!(answer.json["error"]["code"], status, "{}", answer.path);
        assert!(message.contains(needle), "{}: {message:?} lacks {needle:?}", answer.path);
    }
}

#[test]
fn the_limit_is_capped_by_query_results_limit() {
    let (pipeline, _) = run(SMALL, None);
    let (job, _) = a_job(&pipeline.dash0_store);
    let mut config = Dash0Config::default();
    config.query_results_limit = 2;
    let answers = ask(
        &pipeline.dash0_store,
        config,
        vec![(format!("/api/logs?job_id={job}&limit=50"), Some("obsim-token"), http::Method::GET)],
    );
    let logs = strings(&answers[0].json, ["resourceLogs", "scopeLogs", "logRecords"], "traceId");
    assert_eq!((logs.len(), answers[0].json["truncated"].as_bool()), (2, Some(true)), "{}", answers[0].json);
}

#[test]
fn the_checker_fails_through_the_queries_when_a_job_splits_over_two_traces() {
    let (pipeline, verdict) = run(SMALL, Some("api_new_trace_at_redis_hop"));
    let check = verdict.check(CheckName::Correlation).unwrap();
    assert!(!check.passed, "{}", verdict.render());
    assert!(check.detail.contains("all spans of a job share one trace_id"), "{}", check.detail);
    // What the checker saw is what a person sees: a job whose logs and spans name two traces.
    let split = pipeline.dash0_store.query(|queries| {
        queries.job_ids().into_iter().filter(|job| queries.trace_ids_of_job(*job).count() == 2).count()
    });
    assert!(split > 0, "a job's spans are in two traces");
}

/// A fresh folder under the target dir for one test's files.
fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn the_export_parses_back_with_exactly_what_dash0_stored() {
    let (pipeline, _) = run(SMALL, None);
    let store = &pipeline.dash0_store;
    let dir = scratch("dash0_query_export");
    let counts = export::write_export(&dir, store).unwrap();
    assert_eq!(
        (counts.logs_count, counts.spans_count, counts.metric_points_count),
        (store.logs_count(), store.spans_count(), store.metric_points_count())
    );
    let read = |file: &str| std::fs::read_to_string(dir.join(file)).unwrap();
    let logs: ExportLogsServiceRequest = serde_json::from_str(&read(LOGS_FILE)).unwrap();
    let traces: ExportTraceServiceRequest = serde_json::from_str(&read(TRACES_FILE)).unwrap();
    let metrics: ExportMetricsServiceRequest = serde_json::from_str(&read(METRICS_FILE)).unwrap();
    // Read back through obsim's strict OTLP decoder: the very records Dash0 stored.
    let logs: Vec<_> = otlp::decode_logs(logs).unwrap().into_iter().flat_map(|batch| batch.records).collect();
    let spans: Vec<_> = otlp::decode_spans(traces).unwrap().into_iter().flat_map(|batch| batch.records).collect();
    let points: Vec<_> = otlp::decode_metrics(metrics).unwrap().into_iter().flat_map(|batch| batch.records).collect();
    assert_eq!(logs, store.logs().into_iter().map(|(log, _)| log).collect::<Vec<_>>());
    assert_eq!(spans, store.spans().into_iter().map(|(span, _)| span).collect::<Vec<_>>());
    // Metric points: the stored count (their values' exact round trip is not pinned here).
    assert_eq!(points.len(), store.metric_points_count());
    assert!(!logs.is_empty() && !spans.is_empty() && !points.is_empty());
    // The OTLP JSON encoding: hex ids, camelCase names, 64-bit integers as strings.
    let text = read(TRACES_FILE);
    let json: Value = serde_json::from_str(&text).unwrap();
    let span = &json["resourceSpans"][0]["scopeSpans"][0]["spans"][0];
    assert_eq!(span["traceId"].as_str().unwrap().len(), 32, "{span}");
    assert!(span["startTimeUnixNano"].is_string(), "{span}");
}

#[test]
fn obsim_run_export_is_byte_identical_across_two_runs_of_one_seed() {
    let scenario = scratch("dash0_query_cli").join("query-small.toml");
    std::fs::write(&scenario, SMALL).unwrap();
    let export_once = |name: &str| {
        let dir = scenario.with_file_name(name);
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_obsim"))
            .args(["run", scenario.to_str().unwrap(), "--reports"])
            .arg(dir.join("reports"))
            .arg("--export")
            .arg(dir.join("export"))
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout).to_string();
        assert!(output.status.success(), "{stdout}{}", String::from_utf8_lossy(&output.stderr));
        assert!(stdout.contains("export: "), "{stdout}");
        [LOGS_FILE, TRACES_FILE, METRICS_FILE].map(|file| std::fs::read(dir.join("export").join(file)).unwrap())
    };
    let (first, second) = (export_once("a"), export_once("b"));
    for (index, file) in [LOGS_FILE, TRACES_FILE, METRICS_FILE].iter().enumerate() {
        assert!(first[index].len() > 100, "{file} holds records");
        assert!(first[index] == second[index], "{file} differs between two runs of one seed");
    }
}
