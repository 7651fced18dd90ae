//! `obsim run --export DIR`: what Dash0 stored, written as OTLP JSON files a person or an
//! OTLP tool can read — `logs.json` (an `ExportLogsServiceRequest`), `traces.json`
//! (`ExportTraceServiceRequest`) and `metrics.json` (`ExportMetricsServiceRequest`).
//!
//! Why these shapes: they are what OTLP/HTTP JSON exporters POST, so any OTLP reader
//! (opentelemetry-proto's serde types, the Collector's `otlpjsonfile` receiver) parses them.
//! The JSON mapping is opentelemetry-proto's `with-serde` (hex trace/span ids, camelCase
//! names, 64-bit integers as strings, enums as numbers: README "Querying Dash0 and
//! exporting what it stored").
//!
//! One ResourceX per stored batch, in ingest order (the order Dash0 stored them), so the
//! bytes are the same for the same scenario and seed. Written streaming: one batch encoded
//! at a time, never the whole request in memory beside the store.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use serde::Serialize;

use crate::parts::dash0::{Dash0Store, StoredBatch};
use crate::proto::otlp;

/// The files `--export` writes.
pub const LOGS_FILE: &str = "logs.json";
pub const TRACES_FILE: &str = "traces.json";
pub const METRICS_FILE: &str = "metrics.json";

/// How many records each file holds: the counts a reader finds again.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExportCounts {
    pub logs_count: usize,
    pub spans_count: usize,
    pub metric_points_count: usize,
}

/// Writes the three files into `dir` (created if missing); the error names the file.
pub fn write_export(dir: &Path, store: &Dash0Store) -> io::Result<ExportCounts> {
    std::fs::create_dir_all(dir).map_err(|error| in_file(dir, error))?;
    let logs_count = store.with_logs(|batches| {
        write_request(&dir.join(LOGS_FILE), "resourceLogs", batches, |batch| {
            otlp::encode_logs(&batch.resource, &batch.records).resource_logs
        })
    })?;
    let spans_count = store.with_spans(|batches| {
        write_request(&dir.join(TRACES_FILE), "resourceSpans", batches, |batch| {
            otlp::encode_spans(&batch.resource, &batch.records).resource_spans
        })
    })?;
    let metric_points_count = store.with_metric_points(|batches| {
        write_request(&dir.join(METRICS_FILE), "resourceMetrics", batches, |batch| {
            otlp::encode_metrics(&batch.resource, &batch.records).resource_metrics
        })
    })?;
    Ok(ExportCounts { logs_count, spans_count, metric_points_count })
}

/// Writes `{"<field>":[<one element per batch>]}` to `path`, encoding one batch at a time;
/// gives the records written.
fn write_request<T, R: Serialize>(
    path: &Path,
    field: &str,
    batches: &[StoredBatch<T>],
    encode: impl Fn(&StoredBatch<T>) -> Vec<R>,
) -> io::Result<usize> {
    let write = || -> io::Result<usize> {
        let mut out = BufWriter::new(File::create(path)?);
        write!(out, "{{\"{field}\":[")?;
        let mut records = 0;
        let mut first = true;
        for batch in batches {
            records += batch.records.len();
            for element in encode(batch) {
                if !first {
                    out.write_all(b",")?;
                }
                first = false;
                serde_json::to_writer(&mut out, &element)?;
            }
        }
        out.write_all(b"]}\n")?;
        out.flush()?;
        Ok(records)
    };
    write().map_err(|error| in_file(path, error))
}

/// The error with the path it happened at.
fn in_file(path: &Path, error: io::Error) -> io::Error {
    io::Error::new(error.kind(), format!("{}: {error}", path.display()))
}
