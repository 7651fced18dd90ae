//! Golden fixtures: a fixed batch of each signal (fixed RNG seed) encoded to OTLP protobuf.
//! The bytes are pinned by insta under `fixtures/otlp/` (binary `.pb`, a hex dump for
//! reviewable diffs, and the records as JSON for readability). A change here is a wire
//! change: Dash0's ingest and every stored fixture depend on these bytes.
//!
//! Regenerate with `INSTA_UPDATE=always cargo test --test otlp_golden`; CI runs with
//! `INSTA_UPDATE=no CI=true`.

use std::fmt::Write as _;

use obsim::proto::otlp::{
    decode_logs_bytes, decode_metrics_bytes, decode_spans_bytes, encode_logs, encode_metrics, encode_spans,
    encode_to_vec,
};
use obsim::record::{
    Attributes, HistogramData, JobId, LogRecord, MachineId, MachineType, MetricPoint, MetricValue, Number, RecordId,
    Resource, Severity, SourceId, Span, SpanId, SpanKind, SpanStatus, Temporality, TraceId, TraceParent, WorkerId,
};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

const SEED: u64 = 42;
const T0: u64 = 1_767_225_600_000_000_000; // 2026-01-01T00:00:00Z

fn resource() -> Resource {
    Resource::new("emp-worker").with_machine_id("comfyui-3").with_environment("production").with_region("us-east-1")
}

/// One job on comfyui-3, worker 1: its trace ids, spans and logs, all from seed 42.
struct Job {
    trace_id: TraceId,
    submitted: SpanId,
    executing: SpanId,
    job_id: JobId,
    machine: MachineId,
    worker: WorkerId,
}

fn job() -> Job {
    let mut rng = ChaCha8Rng::seed_from_u64(SEED);
    let machine = MachineId::new(MachineType::Comfyui, "3").unwrap();
    Job {
        trace_id: TraceId::random(&mut rng),
        submitted: SpanId::random(&mut rng),
        executing: SpanId::random(&mut rng),
        job_id: JobId::random(&mut rng),
        worker: WorkerId::new(&machine, 1),
        machine,
    }
}

fn golden_logs(job: &Job) -> Vec<LogRecord> {
    let bodies = [
        (Severity::Info, "Processing started"),
        (Severity::Debug, "loaded workflow"),
        (Severity::Warn, "progress 50%"),
        (Severity::Info, "Job completed"),
    ];
    bodies
        .iter()
        .enumerate()
        .map(|(i, (severity, body))| LogRecord {
            time_unix_nano: T0 + 1_000_000 * i as u64,
            observed_time_unix_nano: T0 + 1_000_000 * i as u64,
            severity: *severity,
            body: (*body).into(),
            trace_id: job.trace_id,
            span_id: job.executing,
            job_id: job.job_id,
            machine_id: Some(job.machine.clone()),
            worker_id: Some(job.worker.clone()),
            id: RecordId::new(SourceId(3), i as u64),
            attributes: if i == 2 { Attributes::new().with("progress", 50i64) } else { Attributes::new() },
        })
        .collect()
}

fn golden_spans(job: &Job) -> Vec<Span> {
    vec![
        Span {
            trace_id: job.trace_id,
            span_id: job.submitted,
            parent_span_id: None,
            name: "job.submitted".into(),
            kind: SpanKind::Producer,
            start_time_unix_nano: T0,
            end_time_unix_nano: T0 + 2_000_000,
            status: SpanStatus::Ok,
            job_id: job.job_id,
            machine_id: None,
            worker_id: None,
            id: RecordId::new(SourceId(1), 0),
            attributes: Attributes::new().with("job.type", "comfyui"),
        },
        Span {
            trace_id: job.trace_id,
            span_id: job.executing,
            parent_span_id: Some(job.submitted),
            name: "job.executing".into(),
            kind: SpanKind::Consumer,
            start_time_unix_nano: T0 + 5_000_000,
            end_time_unix_nano: T0 + 905_000_000,
            status: SpanStatus::Error { message: "service returned 500".into() },
            job_id: job.job_id,
            machine_id: Some(job.machine.clone()),
            worker_id: Some(job.worker.clone()),
            id: RecordId::new(SourceId(3), 4),
            attributes: Attributes::new(),
        },
    ]
}

fn golden_metrics() -> Vec<MetricPoint> {
    let point = |name: &str, unit: &str, value| MetricPoint {
        name: name.into(),
        unit: unit.into(),
        start_time_unix_nano: T0,
        time_unix_nano: T0 + 60_000_000_000,
        attributes: Attributes::new().with("machine.type", "comfyui"),
        value,
    };
    vec![
        point(
            "jobs.submitted",
            "{job}",
            MetricValue::Sum { temporality: Temporality::Cumulative, monotonic: true, value: Number::Int(12) },
        ),
        point(
            "jobs.completed",
            "{job}",
            MetricValue::Sum { temporality: Temporality::Delta, monotonic: true, value: Number::Int(3) },
        ),
        point(
            "job.duration",
            "ms",
            MetricValue::Histogram {
                temporality: Temporality::Cumulative,
                data: HistogramData {
                    explicit_bounds: vec![100.0, 1000.0, 10000.0],
                    bucket_counts: vec![0, 2, 1, 0],
                    count: 3,
                    sum: 4250.5,
                },
            },
        ),
        point("queue.depth", "{job}", MetricValue::Gauge { value: Number::Int(7) }),
    ]
}

/// 16 bytes a line: offset, hex, ASCII.
fn hex_dump(bytes: &[u8]) -> String {
    let mut out = String::new();
    for (line, chunk) in bytes.chunks(16).enumerate() {
        write!(out, "{:06x} ", line * 16).unwrap();
        for i in 0..16 {
            match chunk.get(i) {
                Some(b) => write!(out, " {b:02x}").unwrap(),
                None => out.push_str("   "),
            }
        }
        out.push_str("  ");
        out.extend(chunk.iter().map(|&b| if b.is_ascii_graphic() || b == b' ' { b as char } else { '.' }));
        out.push('\n');
    }
    out
}

/// Pins `bytes` (binary, hex, records as JSON), then checks that the stored `.pb` fixture
/// itself decodes to `records` (guards the fixture file, which other tests may read).
macro_rules! golden {
    ($name:literal, $bytes:expr, $records:expr, $decode:path) => {
        insta::with_settings!({ snapshot_path => "../fixtures/otlp", prepend_module_to_snapshot => false }, {
            insta::assert_binary_snapshot!(concat!($name, ".pb"), $bytes.clone());
            insta::assert_snapshot!(concat!($name, "_hex"), hex_dump(&$bytes));
            insta::assert_snapshot!(concat!($name, "_records"), serde_json::to_string_pretty(&$records).unwrap());
        });
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(concat!("fixtures/otlp/", $name, ".snap.pb"));
        let stored = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(stored, $bytes, "stored fixture differs from the encoding");
        assert_eq!($decode(&stored).unwrap()[0].records, $records);
    };
}

#[test]
fn golden_logs_request() {
    let job = job();
    let records = golden_logs(&job);
    let bytes = encode_to_vec(&encode_logs(&resource(), &records));
    assert_eq!(decode_logs_bytes(&bytes).unwrap()[0].records, records);
    golden!("logs", bytes, records, decode_logs_bytes);
}

#[test]
fn golden_traces_request() {
    let job = job();
    let spans = golden_spans(&job);
    let bytes = encode_to_vec(&encode_spans(&resource(), &spans));
    assert_eq!(decode_spans_bytes(&bytes).unwrap()[0].records, spans);
    golden!("traces", bytes, spans, decode_spans_bytes);
}

#[test]
fn golden_metrics_request() {
    let points = golden_metrics();
    let bytes = encode_to_vec(&encode_metrics(&resource(), &points));
    assert_eq!(decode_metrics_bytes(&bytes).unwrap()[0].records, points);
    golden!("metrics", bytes, points, decode_metrics_bytes);
}

/// The ids seed 42 gives, and the traceparent the API would store for this job: pinned so
/// that a change in how ids are drawn from the RNG (which reshuffles every scenario) is seen.
#[test]
fn golden_ids() {
    let job = job();
    let text = format!(
        "trace_id    {}\nsubmitted   {}\nexecuting   {}\njob_id      {}\nworker_id   {}\ntraceparent {}\n",
        job.trace_id,
        job.submitted,
        job.executing,
        job.job_id,
        job.worker,
        TraceParent::new(job.trace_id, job.submitted, true),
    );
    insta::with_settings!({ snapshot_path => "../fixtures/otlp", prepend_module_to_snapshot => false }, {
        insta::assert_snapshot!("ids", text);
    });
}
