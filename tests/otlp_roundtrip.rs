//! Property tests: record → OTLP bytes → record for logs, spans and metrics; traceparent and
//! correlation id text round trips; msgpack (to_vec_named) and JSON round trips of log
//! records; arbitrary bytes and strings never panic a decoder or parser.

use obsim::proto::otlp::{
    self, decode_logs_bytes, decode_metrics_bytes, decode_spans_bytes, encode_logs_batches, encode_metrics_batches,
    encode_spans_batches, encode_to_vec,
};
use obsim::record::{
    AttrValue, Attributes, HistogramData, JobId, LogRecord, MachineId, MachineType, MetricPoint, MetricValue, Number,
    RecordId, Resource, Severity, SourceId, Span, SpanId, SpanKind, SpanStatus, Temporality, TraceId, TraceParent,
    WorkerId, is_reserved_key,
};
use proptest::collection::vec;
use proptest::prelude::*;

fn trace_id() -> impl Strategy<Value = TraceId> {
    any::<[u8; 16]>().prop_filter_map("non-zero", |b| TraceId::from_bytes(b).ok())
}

fn span_id() -> impl Strategy<Value = SpanId> {
    any::<[u8; 8]>().prop_filter_map("non-zero", |b| SpanId::from_bytes(b).ok())
}

fn job_id() -> impl Strategy<Value = JobId> {
    any::<[u8; 16]>().prop_map(JobId::from_uuid_bytes)
}

fn machine_id() -> impl Strategy<Value = MachineId> {
    (prop::sample::select(MachineType::ALL.to_vec()), "[a-z0-9]{1,8}(-[a-z0-9]{1,6}){0,2}")
        .prop_filter_map("valid identifier", |(t, ident)| MachineId::new(t, &ident).ok())
}

/// Machine and worker ids that agree, or neither, or only the machine.
fn placement() -> impl Strategy<Value = (Option<MachineId>, Option<WorkerId>)> {
    prop_oneof![
        Just((None, None)),
        machine_id().prop_map(|m| (Some(m), None)),
        (machine_id(), any::<u32>()).prop_map(|(m, i)| {
            let w = WorkerId::new(&m, i);
            (Some(m), Some(w))
        }),
    ]
}

fn record_id() -> impl Strategy<Value = RecordId> {
    (any::<u32>(), 0..=RecordId::MAX_SEQ).prop_map(|(s, q)| RecordId::new(SourceId(s), q))
}

fn attr_value() -> impl Strategy<Value = AttrValue> {
    prop_oneof![
        ".{0,12}".prop_map(AttrValue::Str),
        any::<i64>().prop_map(AttrValue::Int),
        any::<bool>().prop_map(AttrValue::Bool)
    ]
}

fn attributes() -> impl Strategy<Value = Attributes> {
    vec(("[a-z][a-z0-9_.]{0,10}", attr_value()), 0..4).prop_map(|pairs| {
        let mut attrs = Attributes::new();
        for (k, v) in pairs {
            if !is_reserved_key(&k) {
                let _ = attrs.try_push(k, v); // duplicates are skipped
            }
        }
        attrs
    })
}

fn severity() -> impl Strategy<Value = Severity> {
    prop::sample::select(Severity::ALL.to_vec())
}

prop_compose! {
    fn log_record()(
        time_unix_nano in any::<u64>(), observed_time_unix_nano in any::<u64>(), severity in severity(),
        body in ".{0,40}", trace_id in trace_id(), span_id in span_id(), job_id in job_id(),
        (machine_id, worker_id) in placement(), id in record_id(), attributes in attributes(),
    ) -> LogRecord {
        LogRecord {
            time_unix_nano, observed_time_unix_nano, severity, body, trace_id, span_id, job_id,
            machine_id, worker_id, id, attributes,
        }
    }
}

fn status() -> impl Strategy<Value = SpanStatus> {
    prop_oneof![
        Just(SpanStatus::Unset),
        Just(SpanStatus::Ok),
        ".{0,20}".prop_map(|message| SpanStatus::Error { message })
    ]
}

prop_compose! {
    fn span()(
        trace_id in trace_id(), span_id in span_id(), parent_span_id in prop::option::of(span_id()),
        name in "[a-z.]{0,16}", kind in prop::sample::select(SpanKind::ALL.to_vec()),
        start in any::<u64>(), length in any::<u64>(), status in status(), job_id in job_id(),
        (machine_id, worker_id) in placement(), id in record_id(), attributes in attributes(),
    ) -> Span {
        let end = start.saturating_add(length);
        Span {
            trace_id, span_id, parent_span_id, name, kind, start_time_unix_nano: start,
            end_time_unix_nano: end, status, job_id, machine_id, worker_id, id, attributes,
        }
    }
}

fn number() -> impl Strategy<Value = Number> {
    prop_oneof![any::<i64>().prop_map(Number::Int), (-1e15f64..1e15).prop_map(Number::Double)]
}

fn temporality() -> impl Strategy<Value = Temporality> {
    prop_oneof![Just(Temporality::Delta), Just(Temporality::Cumulative)]
}

fn histogram() -> impl Strategy<Value = HistogramData> {
    (vec(-1000i32..1000, 0..6), -1e9f64..1e9).prop_flat_map(|(mut bounds, sum)| {
        bounds.sort_unstable();
        bounds.dedup();
        let explicit_bounds: Vec<f64> = bounds.into_iter().map(|b| f64::from(b) * 2.5).collect();
        let n = explicit_bounds.len() + 1;
        vec(0u64..1_000_000, n..=n).prop_map(move |bucket_counts| HistogramData {
            count: bucket_counts.iter().sum(),
            explicit_bounds: explicit_bounds.clone(),
            bucket_counts,
            sum,
        })
    })
}

fn metric_value() -> impl Strategy<Value = MetricValue> {
    prop_oneof![
        (temporality(), any::<bool>(), number())
            .prop_map(|(temporality, monotonic, value)| { MetricValue::Sum { temporality, monotonic, value } }),
        number().prop_map(|value| MetricValue::Gauge { value }),
        (temporality(), histogram()).prop_map(|(temporality, data)| MetricValue::Histogram { temporality, data }),
    ]
}

prop_compose! {
    fn metric_point()(
        // Few names, so that consecutive points often share a Metric.
        name in prop::sample::select(vec!["jobs.submitted", "jobs.completed", "job.duration", "queue.depth"]),
        unit in prop::sample::select(vec!["", "1", "ms"]),
        start_time_unix_nano in any::<u64>(), time_unix_nano in any::<u64>(),
        attributes in attributes(), value in metric_value(),
    ) -> MetricPoint {
        MetricPoint {
            name: name.to_owned(), unit: unit.to_owned(), start_time_unix_nano, time_unix_nano,
            attributes, value,
        }
    }
}

fn resource() -> impl Strategy<Value = Resource> {
    (
        "[a-z][a-z-]{0,12}",
        prop::option::of("[a-z0-9-]{1,12}"),
        prop::option::of("[a-z]{1,8}"),
        prop::option::of("[a-z0-9-]{1,12}"),
        attributes(),
    )
        .prop_map(|(service_name, machine_id, deployment_environment, cloud_region, extras)| Resource {
            service_name,
            machine_id,
            deployment_environment,
            cloud_region,
            extras,
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn logs_round_trip(batches in vec((resource(), vec(log_record(), 0..6)), 0..3)) {
        let request = encode_logs_batches(batches.iter().map(|(r, l)| (r, l.as_slice())));
        let bytes = encode_to_vec(&request);
        let decoded = decode_logs_bytes(&bytes).unwrap();
        prop_assert_eq!(decoded.len(), batches.len());
        for (got, (resource, records)) in decoded.iter().zip(&batches) {
            prop_assert_eq!(&got.resource, resource);
            prop_assert_eq!(&got.records, records);
        }
    }

    #[test]
    fn spans_round_trip(batches in vec((resource(), vec(span(), 0..6)), 0..3)) {
        let request = encode_spans_batches(batches.iter().map(|(r, s)| (r, s.as_slice())));
        let decoded = decode_spans_bytes(&encode_to_vec(&request)).unwrap();
        prop_assert_eq!(decoded.len(), batches.len());
        for (got, (resource, spans)) in decoded.iter().zip(&batches) {
            prop_assert_eq!(&got.resource, resource);
            prop_assert_eq!(&got.records, spans);
        }
    }

    #[test]
    fn metrics_round_trip(batches in vec((resource(), vec(metric_point(), 0..8)), 0..3)) {
        let request = encode_metrics_batches(batches.iter().map(|(r, p)| (r, p.as_slice())));
        let decoded = decode_metrics_bytes(&encode_to_vec(&request)).unwrap();
        prop_assert_eq!(decoded.len(), batches.len());
        for (got, (resource, points)) in decoded.iter().zip(&batches) {
            prop_assert_eq!(&got.resource, resource);
            prop_assert_eq!(&got.records, points);
        }
    }

    /// The pipeline's own requests pass Dash0's decode bounds with room to spare: each
    /// decodes to at most half the default multiple (plus the fixed allowance).
    #[test]
    fn own_requests_fit_well_inside_the_decode_bounds(
        logs in vec((resource(), vec(log_record(), 1..40)), 1..3),
        spans in vec((resource(), vec(span(), 1..40)), 1..3),
        points in vec((resource(), vec(metric_point(), 1..40)), 1..3),
    ) {
        let bodies = [
            (otlp::Signal::Logs, encode_to_vec(&encode_logs_batches(logs.iter().map(|(r, l)| (r, l.as_slice()))))),
            (otlp::Signal::Traces, encode_to_vec(&encode_spans_batches(spans.iter().map(|(r, s)| (r, s.as_slice()))))),
            (otlp::Signal::Metrics, encode_to_vec(&encode_metrics_batches(points.iter().map(|(r, p)| (r, p.as_slice()))))),
        ];
        for (signal, body) in bodies {
            let cost = otlp::check_decode_bounds(signal, &body, &otlp::DecodeLimits::default()).unwrap();
            let half = body.len() as u64 * otlp::DECODED_EXPANSION_LIMIT_DEFAULT as u64 / 2 + otlp::bounds::DECODED_BYTES_ALLOWANCE;
            prop_assert!(cost.decoded_bytes <= half, "{signal:?}: {} bytes decode to {}", body.len(), cost.decoded_bytes);
        }
    }

    #[test]
    fn log_record_msgpack_and_json_round_trip(record in log_record()) {
        let packed = rmp_serde::to_vec_named(&record).unwrap();
        prop_assert_eq!(rmp_serde::from_slice::<LogRecord>(&packed).unwrap(), record.clone());
        let json = serde_json::to_string(&record).unwrap();
        prop_assert_eq!(serde_json::from_str::<LogRecord>(&json).unwrap(), record);
    }

    #[test]
    fn traceparent_round_trip(trace in trace_id(), parent in span_id(), flags in any::<u8>()) {
        let tp = TraceParent { trace_id: trace, parent_id: parent, flags };
        let text = tp.to_string();
        prop_assert_eq!(text.len(), TraceParent::LEN);
        prop_assert_eq!(TraceParent::parse(&text), Ok(tp));
    }

    #[test]
    fn correlation_ids_round_trip(job in job_id(), machine in machine_id(), index in any::<u32>()) {
        prop_assert_eq!(JobId::parse(&job.to_string()), Ok(job));
        prop_assert_eq!(MachineId::parse(machine.as_str()), Ok(machine.clone()));
        let worker = WorkerId::new(&machine, index);
        let parsed = WorkerId::parse(worker.as_str()).unwrap();
        prop_assert_eq!(parsed.machine_id(), machine);
        prop_assert_eq!(parsed.index(), index);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in vec(any::<u8>(), 0..512)) {
        let _ = decode_logs_bytes(&bytes);
        let _ = decode_spans_bytes(&bytes);
        let _ = decode_metrics_bytes(&bytes);
        if let Ok(request) = otlp::decode_message::<otlp::ExportLogsServiceRequest>(otlp::Signal::Logs, &bytes) {
            let total: usize = request.resource_logs.iter()
                .flat_map(|r| r.scope_logs.iter()).map(|s| s.log_records.len()).sum();
            let d = otlp::decode_logs_partial(request);
            prop_assert_eq!(d.accepted_records() + d.rejected_records, total);
        }
        let _ = rmp_serde::from_slice::<LogRecord>(&bytes);
    }

    /// Mutating valid request bytes (the likelier corruption) never panics either.
    #[test]
    fn corrupted_requests_never_panic(
        records in vec(log_record(), 1..4),
        flips in vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
    ) {
        let mut bytes = encode_to_vec(&otlp::encode_logs(&Resource::new("svc"), &records));
        for (at, value) in flips {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        let _ = decode_logs_bytes(&bytes);
        let _ = decode_spans_bytes(&bytes);
        let _ = decode_metrics_bytes(&bytes);
    }

    #[test]
    fn arbitrary_text_never_panics(text in ".{0,80}") {
        if let Ok(tp) = TraceParent::parse(&text)
            && text.starts_with("00")
        {
            prop_assert_eq!(tp.to_string(), text.clone());
        }
        let canonical = [
            JobId::parse(&text).map(|j| j.to_string()),
            MachineId::parse(&text).map(|m| m.to_string()),
            WorkerId::parse(&text).map(|w| w.to_string()),
        ];
        for parsed in canonical.into_iter().flatten() {
            prop_assert_eq!(parsed, text.clone());
        }
        let _ = text.parse::<TraceId>();
        let _ = serde_json::from_str::<LogRecord>(&text);
    }

    /// Near-valid traceparents (one byte changed) never panic and, when accepted, print back.
    #[test]
    fn mutated_traceparent(trace in trace_id(), parent in span_id(), at in 0usize..55, c in any::<char>()) {
        let mut text = TraceParent::new(trace, parent, true).to_string();
        text.replace_range(at..at + 1, c.encode_utf8(&mut [0; 4]));
        if let Ok(tp) = TraceParent::parse(&text) {
            // A changed version digit is a future version: accepted, printed back as 00.
            prop_assert_eq!(&tp.to_string()[2..], &text[2..]);
        }
    }
}
