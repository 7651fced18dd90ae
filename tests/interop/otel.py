"""Sends spans, logs and metrics to an OTLP endpoint with the OpenTelemetry Python SDK's
exporters (versions pinned in requirements.txt), run by tests/interop.rs from .venv:
    .venv/bin/python otel.py http|grpc ENDPOINT COUNT PREFIX [TOKEN]
ENDPOINT is the base URL (http://127.0.0.1:4318 or, for gRPC, http://127.0.0.1:4317).
COUNT spans named PREFIX-span-i, COUNT log records with body PREFIX-log-i, and a counter
PREFIX.requests added to COUNT times (one sum point). Each signal is flushed on its own and
its outcome printed as one JSON line:
    {"spans": {"ok": true, "exports": 1}, "logs": {...}, "metrics": {...}}
exports = the exporter's export() calls (each may retry inside; the requests on the wire
are counted by the server); ok = every one returned SUCCESS.
Exits 0 when the script ran (the test judges the outcome), 1 on a crash.
"""
import json
import sys

from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

# Long enough for a Retry-After of 5 s to be honoured (the exporters' default is 10 s).
EXPORT_TIMEOUT_SECONDS = 20
# Nothing is exported on a timer: each signal is sent once, by its force_flush.
NEVER_MILLIS = 3_600_000


def recorded(exporter, results):
    """EXPORTER whose every export() result (after the exporter's own retries) is appended
    to RESULTS: the exporters report a failure only in their log otherwise."""
    export = exporter.export

    def export_and_record(*args, **kwargs):
        result = export(*args, **kwargs)
        results.append(result.name)
        return result

    exporter.export = export_and_record
    return exporter


def outcome(results):
    """A signal's outcome: whether every export succeeded, and how many there were."""
    outcome = {"ok": bool(results) and all(name == "SUCCESS" for name in results), "exports": len(results)}
    results.clear()
    return outcome


def exporters(protocol, endpoint, token):
    """The span, log and metric exporters of PROTOCOL."""
    # README "Real clients" shows these lines.
    headers = {"authorization": f"Bearer {token}"} if token else None
    if protocol == "http":
        from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        def make(kind, path):
            return kind(endpoint=f"{endpoint}/v1/{path}", headers=headers, timeout=EXPORT_TIMEOUT_SECONDS)
    else:
        from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        def make(kind, _path):
            return kind(endpoint=endpoint, insecure=True, headers=headers, timeout=EXPORT_TIMEOUT_SECONDS)
    return make(OTLPSpanExporter, "traces"), make(OTLPLogExporter, "logs"), make(OTLPMetricExporter, "metrics")


def main():
    protocol, endpoint, count, prefix = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    token = sys.argv[5] if len(sys.argv) > 5 else None
    results = []
    resource = Resource.create({"service.name": "obsim-interop"})
    span_exporter, log_exporter, metric_exporter = (
        recorded(exporter, results) for exporter in exporters(protocol, endpoint, token)
    )
    result = {}

    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(BatchSpanProcessor(span_exporter, schedule_delay_millis=NEVER_MILLIS))
    tracer = tracer_provider.get_tracer("obsim-interop")
    for i in range(count):
        with tracer.start_as_current_span(f"{prefix}-span-{i}", attributes={"n": i}):
            pass
    tracer_provider.force_flush()
    result["spans"] = outcome(results)

    logger_provider = LoggerProvider(resource=resource)
    logger_provider.add_log_record_processor(BatchLogRecordProcessor(log_exporter, schedule_delay_millis=NEVER_MILLIS))
    logger = logger_provider.get_logger("obsim-interop")
    for i in range(count):
        logger.emit(body=f"{prefix}-log-{i}", severity_text="INFO", attributes={"n": i})
    logger_provider.force_flush()
    result["logs"] = outcome(results)

    reader = PeriodicExportingMetricReader(metric_exporter, export_interval_millis=NEVER_MILLIS)
    meter_provider = MeterProvider(resource=resource, metric_readers=[reader])
    counter = meter_provider.get_meter("obsim-interop").create_counter(f"{prefix}.requests")
    for _ in range(count):
        counter.add(1)
    # Shutdown collects and exports once (a force_flush then shutdown would send the
    # cumulative sum twice).
    meter_provider.shutdown()
    result["metrics"] = outcome(results)

    for provider in (tracer_provider, logger_provider):
        provider.shutdown()
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
