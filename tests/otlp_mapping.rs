//! The OTLP mapping on fixed batches: round trips, determinism, the wire conventions other
//! parts rely on, and every refusal naming its field and record.

use obsim::proto::otlp::{
    self, Batch, DecodeError, ErrorKind, Signal, decode_logs, decode_logs_bytes, decode_logs_partial, decode_metrics,
    decode_metrics_partial, decode_spans, decode_spans_partial, encode_logs, encode_logs_batches, encode_metrics,
    encode_spans, encode_to_vec,
};
use obsim::record::{
    Attributes, HistogramData, JobId, LogRecord, MachineId, MachineType, MetricPoint, MetricValue, Number, RecordId,
    Resource, Severity, SourceId, Span, SpanId, SpanKind, SpanStatus, Temporality, TraceId, TraceParent,
    TraceParentError, WorkerId, keys,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{Summary, metric};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn resource() -> Resource {
    Resource::new("emp-worker").with_machine_id("comfyui-3").with_environment("staging").with_region("us-east-1")
}

fn logs(n: usize) -> Vec<LogRecord> {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let machine = MachineId::new(MachineType::Comfyui, "3").unwrap();
    let trace_id = TraceId::random(&mut rng);
    let span_id = SpanId::random(&mut rng);
    let job_id = JobId::random(&mut rng);
    (0..n)
        .map(|i| LogRecord {
            time_unix_nano: 1_700_000_000_000_000_000 + i as u64,
            observed_time_unix_nano: 1_700_000_000_000_000_000 + i as u64,
            severity: Severity::ALL[i % 6],
            body: format!("step {i}"),
            trace_id,
            span_id,
            job_id,
            machine_id: Some(machine.clone()),
            worker_id: (i % 2 == 0).then(|| WorkerId::new(&machine, 1)),
            id: RecordId::new(SourceId(7), i as u64),
            attributes: Attributes::new().with("step", i as i64),
        })
        .collect()
}

fn spans() -> Vec<Span> {
    let mut rng = ChaCha8Rng::seed_from_u64(12);
    let machine = MachineId::new(MachineType::Openai, "eu-1").unwrap();
    let trace_id = TraceId::random(&mut rng);
    let job_id = JobId::random(&mut rng);
    let root = SpanId::random(&mut rng);
    let child = SpanId::random(&mut rng);
    let base = Span {
        trace_id,
        span_id: root,
        parent_span_id: None,
        name: "job.submitted".into(),
        kind: SpanKind::Producer,
        start_time_unix_nano: 1_000,
        end_time_unix_nano: 2_000,
        status: SpanStatus::Ok,
        job_id,
        machine_id: None,
        worker_id: None,
        id: RecordId::new(SourceId(1), 0),
        attributes: Attributes::new(),
    };
    let executing = Span {
        span_id: child,
        parent_span_id: Some(root),
        name: "job.executing".into(),
        kind: SpanKind::Consumer,
        start_time_unix_nano: 3_000,
        end_time_unix_nano: 9_000,
        status: SpanStatus::Error { message: "model timeout".into() },
        worker_id: Some(WorkerId::new(&machine, 4)),
        machine_id: Some(machine),
        id: RecordId::new(SourceId(2), 0),
        attributes: Attributes::new().with("retry", true),
        ..base.clone()
    };
    vec![base, executing]
}

fn metrics() -> Vec<MetricPoint> {
    let point = |name: &str, value| MetricPoint {
        name: name.into(),
        unit: "{job}".into(),
        start_time_unix_nano: 100,
        time_unix_nano: 200,
        attributes: Attributes::new().with("machine.type", "comfyui"),
        value,
    };
    vec![
        point(
            "jobs.submitted",
            MetricValue::Sum { temporality: Temporality::Cumulative, monotonic: true, value: Number::Int(40) },
        ),
        point(
            "jobs.submitted",
            MetricValue::Sum { temporality: Temporality::Cumulative, monotonic: true, value: Number::Int(42) },
        ),
        point(
            "jobs.completed",
            MetricValue::Sum { temporality: Temporality::Delta, monotonic: true, value: Number::Int(3) },
        ),
        point("queue.depth", MetricValue::Gauge { value: Number::Int(17) }),
        point(
            "job.duration",
            MetricValue::Histogram {
                temporality: Temporality::Delta,
                data: HistogramData {
                    explicit_bounds: vec![100.0, 1000.0],
                    bucket_counts: vec![1, 2, 0],
                    count: 3,
                    sum: 1234.5,
                },
            },
        ),
    ]
}

fn kv_str(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(any_value::Value::StringValue(value.into())) }),
        ..Default::default()
    }
}

fn set_attr(attrs: &mut [KeyValue], key: &str, value: any_value::Value) {
    let kv = attrs.iter_mut().find(|kv| kv.key == key).expect("attribute present");
    kv.value = Some(AnyValue { value: Some(value) });
}

fn assert_error(error: DecodeError, signal: Signal, record: Option<usize>, field: &str, kind: ErrorKind) {
    assert_eq!(error.signal, signal, "{error}");
    assert_eq!(error.record_index, record, "{error}");
    assert_eq!(error.field, field, "{error}");
    assert_eq!(error.kind, kind, "{error}");
    // Display names the field.
    assert!(error.to_string().contains(field), "{error}");
}

#[test]
fn logs_round_trip_through_bytes() {
    let records = logs(6);
    let bytes = encode_to_vec(&encode_logs(&resource(), &records));
    let batches = decode_logs_bytes(&bytes).unwrap();
    assert_eq!(batches, vec![Batch { resource: resource(), records }]);
}

#[test]
fn spans_and_metrics_round_trip() {
    let s = spans();
    assert_eq!(decode_spans(encode_spans(&resource(), &s)).unwrap()[0].records, s);
    let m = metrics();
    let request = encode_metrics(&resource(), &m);
    // Consecutive points of one metric share a Metric: 5 points, 4 metrics.
    assert_eq!(request.resource_metrics[0].scope_metrics[0].metrics.len(), 4);
    assert_eq!(decode_metrics(request).unwrap()[0].records, m);
}

#[test]
fn encoding_is_deterministic() {
    let a = encode_to_vec(&encode_logs(&resource(), &logs(5)));
    let b = encode_to_vec(&encode_logs(&resource(), &logs(5)));
    assert_eq!(a, b);
}

#[test]
fn wire_conventions() {
    let request = encode_logs(&resource(), &logs(1));
    let rl = &request.resource_logs[0];
    let resource_keys: Vec<_> = rl.resource.as_ref().unwrap().attributes.iter().map(|kv| kv.key.as_str()).collect();
    assert_eq!(resource_keys, ["service.name", "machine.id", "deployment.environment", "cloud.region"]);
    assert_eq!(rl.scope_logs[0].scope.as_ref().unwrap().name, "obsim");
    let record = &rl.scope_logs[0].log_records[0];
    let keys_: Vec<_> = record.attributes.iter().map(|kv| kv.key.as_str()).collect();
    assert_eq!(keys_, ["obsim.source", "obsim.seq", "job_id", "machine_id", "worker_id", "step"]);
    assert_eq!(record.trace_id.len(), 16);
    assert_eq!(record.span_id.len(), 8);
    assert_eq!(record.severity_number, 1);
    assert_eq!(record.severity_text, "TRACE");
}

#[test]
fn several_resources_in_one_request() {
    let a = logs(2);
    let b = logs(3);
    let other = Resource::new("emp-api");
    let request = encode_logs_batches([(&resource(), a.as_slice()), (&other, b.as_slice())]);
    let batches = decode_logs(request).unwrap();
    assert_eq!(batches.len(), 2);
    assert_eq!(batches[1].resource, other);
    assert_eq!(batches[1].records, b);
}

#[test]
fn wrong_trace_id_length_names_field_and_record() {
    let mut request = encode_logs(&resource(), &logs(3));
    request.resource_logs[0].scope_logs[0].log_records[1].trace_id.truncate(15);
    let e = decode_logs(request).unwrap_err();
    assert_error(e, Signal::Logs, Some(1), "trace_id", ErrorKind::WrongLength { expected: 16, actual: 15 });
}

#[test]
fn zero_and_missing_ids() {
    let mut request = encode_logs(&resource(), &logs(3));
    request.resource_logs[0].scope_logs[0].log_records[2].span_id = vec![0; 8];
    assert_error(decode_logs(request).unwrap_err(), Signal::Logs, Some(2), "span_id", ErrorKind::ZeroId);

    let mut request = encode_spans(&resource(), &spans());
    request.resource_spans[0].scope_spans[0].spans[0].trace_id.clear();
    assert_error(decode_spans(request).unwrap_err(), Signal::Traces, Some(0), "trace_id", ErrorKind::Missing);

    let mut request = encode_spans(&resource(), &spans());
    request.resource_spans[0].scope_spans[0].spans[1].parent_span_id = vec![1; 4];
    assert_error(
        decode_spans(request).unwrap_err(),
        Signal::Traces,
        Some(1),
        "parent_span_id",
        ErrorKind::WrongLength { expected: 8, actual: 4 },
    );
}

#[test]
fn missing_obsim_id_is_a_distinct_error() {
    let mut request = encode_logs(&resource(), &logs(2));
    request.resource_logs[0].scope_logs[0].log_records[1].attributes.retain(|kv| kv.key != keys::OBSIM_SEQ);
    let e = decode_logs(request).unwrap_err();
    assert!(e.is_missing_record_id());
    assert_error(e, Signal::Logs, Some(1), "obsim.seq", ErrorKind::MissingRecordId);
}

#[test]
fn foreign_records_from_a_real_exporter_are_counted() {
    // What an OTel SDK sends: no obsim ids, no job id, a double attribute, empty trace id.
    let mut request = encode_logs(&resource(), &logs(3));
    let foreign = &mut request.resource_logs[0].scope_logs[0].log_records[1];
    foreign.attributes = vec![
        kv_str("http.method", "GET"),
        KeyValue {
            key: "ratio".into(),
            value: Some(AnyValue { value: Some(any_value::Value::DoubleValue(0.5)) }),
            ..Default::default()
        },
    ];
    foreign.trace_id.clear();
    let decoded = decode_logs_partial(request);
    assert_eq!(decoded.accepted_records(), 2);
    assert_eq!(decoded.rejected_records, 1);
    assert_eq!(decoded.missing_record_id_count(), 1);
    assert_eq!(decoded.errors[0].record_index, Some(1));
    assert_eq!(decoded.batches[0].records, [logs(3)[0].clone(), logs(3)[2].clone()]);
}

#[test]
fn missing_job_id() {
    let mut request = encode_spans(&resource(), &spans());
    request.resource_spans[0].scope_spans[0].spans[1].attributes.retain(|kv| kv.key != keys::JOB_ID);
    assert_error(decode_spans(request).unwrap_err(), Signal::Traces, Some(1), "job_id", ErrorKind::Missing);
}

#[test]
fn malformed_correlation_ids_are_named() {
    let cases = [
        (keys::JOB_ID, "job-123", "must be `job-` followed by a 36-character uuid"),
        (keys::MACHINE_ID, "gpu-3", "type must be comfyui, simulation or openai"),
        (keys::WORKER_ID, "comfyui-3-worker-007", "index must be a decimal u32 without leading zeros"),
    ];
    for (key, bad, rule) in cases {
        let mut request = encode_logs(&resource(), &logs(1));
        set_attr(
            &mut request.resource_logs[0].scope_logs[0].log_records[0].attributes,
            key,
            any_value::Value::StringValue(bad.into()),
        );
        assert_error(decode_logs(request).unwrap_err(), Signal::Logs, Some(0), key, ErrorKind::Invalid(rule.into()));
    }
    // And the parsers themselves.
    assert_eq!(JobId::parse("job-zz").unwrap_err().field, "job_id");
    assert_eq!(MachineId::parse("comfyui-").unwrap_err().field, "machine_id");
    assert_eq!(WorkerId::parse("comfyui-3").unwrap_err().field, "worker_id");
}

#[test]
fn wrong_typed_duplicate_and_reserved_attributes() {
    let mut request = encode_logs(&resource(), &logs(1));
    set_attr(
        &mut request.resource_logs[0].scope_logs[0].log_records[0].attributes,
        keys::OBSIM_SEQ,
        any_value::Value::StringValue("5".into()),
    );
    assert_error(
        decode_logs(request).unwrap_err(),
        Signal::Logs,
        Some(0),
        "obsim.seq",
        ErrorKind::WrongType { expected: "int", actual: "string" },
    );

    let mut request = encode_logs(&resource(), &logs(1));
    let attrs = &mut request.resource_logs[0].scope_logs[0].log_records[0].attributes;
    let dup = attrs.iter().find(|kv| kv.key == keys::JOB_ID).unwrap().clone();
    attrs.push(dup);
    assert_error(decode_logs(request).unwrap_err(), Signal::Logs, Some(0), "job_id", ErrorKind::Duplicate);

    let mut request = encode_logs(&resource(), &logs(1));
    request.resource_logs[0].scope_logs[0].log_records[0].attributes.push(kv_str("service.name", "x"));
    assert_error(decode_logs(request).unwrap_err(), Signal::Logs, Some(0), "service.name", ErrorKind::Reserved);

    let mut request = encode_logs(&resource(), &logs(1));
    set_attr(
        &mut request.resource_logs[0].scope_logs[0].log_records[0].attributes,
        "step",
        any_value::Value::BytesValue(vec![1]),
    );
    assert_error(
        decode_logs(request).unwrap_err(),
        Signal::Logs,
        Some(0),
        "step",
        ErrorKind::WrongType { expected: "string, int or bool", actual: "bytes" },
    );
}

#[test]
fn body_severity_kind_status_and_times() {
    let mut request = encode_logs(&resource(), &logs(1));
    request.resource_logs[0].scope_logs[0].log_records[0].body =
        Some(AnyValue { value: Some(any_value::Value::IntValue(1)) });
    assert_error(
        decode_logs(request).unwrap_err(),
        Signal::Logs,
        Some(0),
        "body",
        ErrorKind::WrongType { expected: "string", actual: "int" },
    );

    let mut request = encode_logs(&resource(), &logs(1));
    request.resource_logs[0].scope_logs[0].log_records[0].severity_number = 0;
    assert_eq!(decode_logs(request).unwrap_err().field, "severity_number");

    let mut request = encode_spans(&resource(), &spans());
    request.resource_spans[0].scope_spans[0].spans[0].kind = 0;
    assert_eq!(decode_spans(request).unwrap_err().field, "kind");

    let mut request = encode_spans(&resource(), &spans());
    request.resource_spans[0].scope_spans[0].spans[1].status.as_mut().unwrap().code = 7;
    assert_eq!(decode_spans(request).unwrap_err().field, "status.code");

    let mut request = encode_spans(&resource(), &spans());
    request.resource_spans[0].scope_spans[0].spans[1].end_time_unix_nano = 0;
    let e = decode_spans(request).unwrap_err();
    assert_eq!((e.field.as_ref(), e.record_index), ("end_time_unix_nano", Some(1)));
}

#[test]
fn resource_errors() {
    let mut request = encode_logs(&resource(), &logs(2));
    request.resource_logs[0].resource = None;
    let e = decode_logs(request).unwrap_err();
    assert_eq!((e.field.as_ref(), e.resource_index, e.record_index), ("resource", Some(0), None));

    let mut request = encode_spans(&resource(), &spans());
    request.resource_spans[0].resource.as_mut().unwrap().attributes.retain(|kv| kv.key != keys::SERVICE_NAME);
    let d = decode_spans_partial(request);
    assert_eq!(d.rejected_records, 2);
    assert_eq!(d.errors.len(), 1);
    assert_eq!(d.errors[0].field, "resource.service.name");
    assert_eq!(d.errors[0].kind, ErrorKind::Missing);
}

#[test]
fn metric_refusals() {
    let mut request = encode_metrics(&resource(), &metrics());
    let ms = &mut request.resource_metrics[0].scope_metrics[0].metrics;
    let Some(metric::Data::Sum(sum)) = &mut ms[1].data else { panic!("jobs.completed is a sum") };
    sum.aggregation_temporality = 0;
    // jobs.submitted has 2 points, so jobs.completed is point 2.
    assert_error(
        decode_metrics(request).unwrap_err(),
        Signal::Metrics,
        Some(2),
        "aggregation_temporality",
        ErrorKind::Invalid("must be 1 (delta) or 2 (cumulative)".into()),
    );

    let mut request = encode_metrics(&resource(), &metrics());
    let Some(metric::Data::Histogram(h)) = &mut request.resource_metrics[0].scope_metrics[0].metrics[3].data else {
        panic!("job.duration is a histogram")
    };
    h.data_points[0].bucket_counts.pop();
    assert_error(
        decode_metrics(request).unwrap_err(),
        Signal::Metrics,
        Some(4),
        "histogram",
        ErrorKind::Invalid("bucket_counts must have one more entry than explicit_bounds".into()),
    );

    let mut request = encode_metrics(&resource(), &metrics());
    request.resource_metrics[0].scope_metrics[0].metrics[2].data = Some(metric::Data::Summary(Summary::default()));
    let d = decode_metrics_partial(request);
    assert_eq!(d.accepted_records(), 4);
    assert_eq!(d.rejected_records, 1);
    assert_eq!((d.errors[0].field.as_ref(), &d.errors[0].kind), ("summary", &ErrorKind::Unsupported));
}

#[test]
fn garbage_bytes_are_a_protobuf_error() {
    let e = decode_logs_bytes(&[0xff, 0xff, 0xff]).unwrap_err();
    assert!(matches!(e.kind, ErrorKind::Protobuf(_)), "{e}");
    assert_eq!(e.field, "request");
    let e = otlp::decode_metrics_bytes(&[0x0a, 0x05, 0x01]).unwrap_err();
    assert!(matches!(e.kind, ErrorKind::Protobuf(_)), "{e}");
}

#[test]
fn malformed_traceparent_is_named() {
    let tp = TraceParent::new(logs(1)[0].trace_id, logs(1)[0].span_id, true);
    let text = tp.to_string();
    assert_eq!(TraceParent::parse(&text), Ok(tp));
    assert_eq!(TraceParent::parse(&text[..54]), Err(TraceParentError::TooShort { len: 54 }));
    assert_eq!(TraceParent::parse(&text.replace('-', "+")), Err(TraceParentError::MissingDelimiter { index: 2 }));
    let e = TraceParent::parse(&text.to_uppercase()).unwrap_err();
    assert!(e.to_string().contains("lowercase hex"), "{e}");
}
