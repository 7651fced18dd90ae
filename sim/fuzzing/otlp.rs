//! OTLP entry points: a request body decoded into records as the mock Dash0 does (the
//! decode-cost bound, prost, then the partial decoder that keeps good records and lists
//! refused ones), and the round trip records → request → bytes → records.
//!
//! Memory: the bound admits a body whose prost tree takes at most `expansion_limit` × its
//! bytes + `DECODED_BYTES_ALLOWANCE` (Dash0's defaults); that is the largest allocation
//! allowed, and twice it at once (the request and the records built from it).

use super::Budget;
use crate::proto::otlp::{
    self, Batch, DECODED_BYTES_ALLOWANCE, DecodeLimits, Decoded, ExportLogsServiceRequest, ExportMetricsServiceRequest,
    ExportTraceServiceRequest,
};

pub(super) use crate::proto::otlp::Signal;

/// The decode bounds every OTLP entry point checks first: Dash0's defaults.
fn decode_limits() -> DecodeLimits {
    DecodeLimits::default()
}

/// What decoding a body of `body_bytes` may cost, as one allocation and at once.
fn budget(body_bytes: usize) -> Budget {
    let tree_bytes = decode_limits().expansion_limit * body_bytes + DECODED_BYTES_ALLOWANCE as usize;
    Budget::new(tree_bytes, 2 * tree_bytes)
}

/// The body's request as Dash0 gets it: `None` when the decode bound or prost refuses it.
fn request<M: prost::Message + Default>(signal: Signal, body: &[u8]) -> Option<M> {
    otlp::check_decode_bounds(signal, body, &decode_limits()).ok()?;
    otlp::decode_message(signal, body).ok()
}

/// A body of `signal` decoded into records; the accounting of the partial decode adds up.
pub(super) fn decode(signal: Signal, body: &[u8]) -> Budget {
    match signal {
        Signal::Logs => check_accounting(decode_logs(body)),
        Signal::Traces => check_accounting(decode_spans(body)),
        Signal::Metrics => check_accounting(decode_metrics(body)),
    }
    budget(body.len())
}

/// The partial decode's books: accepted + refused records add up to what it saw, and
/// every refusal is listed.
fn check_accounting<T>(decoded: Option<Decoded<T>>) {
    if let Some(decoded) = decoded {
        assert!(decoded.rejected_records == 0 || !decoded.errors.is_empty(), "otlp: refused records without an error");
        assert!(decoded.missing_record_id_count() <= decoded.errors.len());
    }
}

/// A logs body as the mock Dash0 decodes it; `None` when the bound or prost refuses the bytes.
fn decode_logs(body: &[u8]) -> Option<Decoded<crate::record::LogRecord>> {
    let request: ExportLogsServiceRequest = request(Signal::Logs, body)?;
    Some(otlp::decode_logs_partial(request))
}

/// A traces body as the mock Dash0 decodes it; `None` when the bound or prost refuses the bytes.
fn decode_spans(body: &[u8]) -> Option<Decoded<crate::record::Span>> {
    let request: ExportTraceServiceRequest = request(Signal::Traces, body)?;
    Some(otlp::decode_spans_partial(request))
}

/// A metrics body as the mock Dash0 decodes it; `None` when the bound or prost refuses the bytes.
fn decode_metrics(body: &[u8]) -> Option<Decoded<crate::record::MetricPoint>> {
    let request: ExportMetricsServiceRequest = request(Signal::Metrics, body)?;
    Some(otlp::decode_metrics_partial(request))
}

/// The signal the round trip's first byte picks (modulo 3).
fn signal_of(byte: u8) -> Signal {
    match byte % 3 {
        0 => Signal::Logs,
        1 => Signal::Traces,
        _ => Signal::Metrics,
    }
}

/// Byte 0 picks the signal, the rest is a body: its accepted records are encoded as a
/// request; those bytes decode with nothing refused and encode to the same bytes again.
pub(super) fn roundtrip(input: &[u8]) -> Budget {
    let Some((&first, body)) = input.split_first() else {
        return budget(0);
    };
    let signal = signal_of(first);
    let Some((once, _)) = reencode(signal, body) else {
        return budget(input.len());
    };
    let (twice, refused) = reencode(signal, &once).expect("otlp: an encoded request must decode");
    assert_eq!(refused, 0, "otlp: the decoder refuses records its encoder wrote");
    assert!(once == twice, "otlp: encode(decode(x)) is not stable for {}", signal.as_str());
    // Two decodings, their requests and their encodings.
    let decoded = budget(input.len());
    Budget::new(decoded.allocation_bytes_limit, 4 * decoded.peak_bytes_limit)
}

/// The accepted records of `body` encoded again, and how many records were refused;
/// `None` when the bound or prost refuses the bytes.
fn reencode(signal: Signal, body: &[u8]) -> Option<(Vec<u8>, usize)> {
    let reencoded = match signal {
        Signal::Logs => {
            let decoded = decode_logs(body)?;
            (otlp::encode_to_vec(&otlp::encode_logs_batches(pairs(&decoded.batches))), decoded.rejected_records)
        }
        Signal::Traces => {
            let decoded = decode_spans(body)?;
            (otlp::encode_to_vec(&otlp::encode_spans_batches(pairs(&decoded.batches))), decoded.rejected_records)
        }
        Signal::Metrics => {
            let decoded = decode_metrics(body)?;
            (otlp::encode_to_vec(&otlp::encode_metrics_batches(pairs(&decoded.batches))), decoded.rejected_records)
        }
    };
    Some(reencoded)
}

/// The batches as the encoders take them.
fn pairs<T>(batches: &[Batch<T>]) -> impl Iterator<Item = (&crate::record::Resource, &[T])> {
    batches.iter().map(|batch| (&batch.resource, batch.records.as_slice()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_body_is_an_empty_request() {
        for signal in [Signal::Logs, Signal::Traces, Signal::Metrics] {
            decode(signal, &[]);
        }
        assert_eq!(reencode(Signal::Logs, &[]), Some((Vec::new(), 0)));
        roundtrip(&[0]);
        // Not protobuf: refused, nothing to re-encode.
        assert_eq!(reencode(Signal::Traces, &[0xff, 0xff]), None);
    }
}
