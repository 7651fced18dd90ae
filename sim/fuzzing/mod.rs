//! The fuzzing entry points: one function per fuzz target, called by the cargo-fuzz
//! targets in `fuzz/fuzz_targets/` (nightly, libFuzzer) and by `tests/fuzz_corpus.rs`
//! (stable, replaying every file of `fuzz/corpus/<target>/`), so both exercise the SAME code
//! with the same limits and the same assertions (README "Fuzzing").
//!
//! Why in the library: a decoder bug found by the fuzzer must stay found. Each input that
//! found one is kept in the corpus, and `cargo test` replays it on every build.
//!
//! What every entry point holds, beyond "no panic":
//! - the decoders' own postconditions (they assert in code) and the properties written in
//!   each entry (a frame split anywhere decodes as one piece; a round trip is stable:
//!   `encode(decode(x)) == encode(decode(encode(decode(x))))`);
//! - a memory [`Budget`] it returns, computed from the limits it configured and the input's
//!   length: the largest single allocation and the peak of live heap during the call.
//!   [`run`] measures both with the harness's counting allocator (a [`Meter`]) and panics,
//!   naming the target and the numbers, when either is over.
//!
//! Determinism (ARCHITECTURE.md §2): nothing here reads a clock or draws randomness; an
//! input gives the same outcome every time.

mod forward;
mod otlp;
mod resp;
mod scenario;

use std::fmt;

/// Room every budget allows above its computed bound: allocator rounding, error texts, the
/// entry point's own bookkeeping (a few small vectors). 64 KiB.
pub const SLACK_BYTES: usize = 64 << 10;

/// The fuzz targets, one per file in `fuzz/fuzz_targets/` and one corpus folder each.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Target {
    /// Forward frames from a client, fed to the streaming decoder in chunks the input chooses.
    ForwardStream,
    /// One Forward handshake frame: HELO, PING or PONG, parsed, judged and re-encoded.
    ForwardHandshake,
    /// RESP requests to the Redis model's decoder, in chunks the input chooses.
    RespRequest,
    /// RESP replies to the client-side reply parser, in chunks the input chooses.
    RespReply,
    /// An OTLP/HTTP logs body as the mock Dash0 decodes it into records.
    OtlpLogs,
    /// An OTLP/HTTP traces body as the mock Dash0 decodes it into records.
    OtlpTraces,
    /// An OTLP/HTTP metrics body as the mock Dash0 decodes it into records.
    OtlpMetrics,
    /// Scenario TOML text loaded (parsed and validated) from a string.
    Scenario,
    /// Forward frames decoded and re-encoded by the encoder of their mode.
    RoundtripForward,
    /// RESP requests decoded and re-encoded as multibulk.
    RoundtripRespRequest,
    /// RESP replies decoded and re-encoded.
    RoundtripRespReply,
    /// OTLP bodies (the first byte picks the signal) decoded into records and re-encoded.
    RoundtripOtlp,
}

impl Target {
    /// Every target, in the order above.
    pub const ALL: &'static [Target] = &[
        Target::ForwardStream,
        Target::ForwardHandshake,
        Target::RespRequest,
        Target::RespReply,
        Target::OtlpLogs,
        Target::OtlpTraces,
        Target::OtlpMetrics,
        Target::Scenario,
        Target::RoundtripForward,
        Target::RoundtripRespRequest,
        Target::RoundtripRespReply,
        Target::RoundtripOtlp,
    ];

    /// The target's name: its file in `fuzz/fuzz_targets/` and its corpus folder.
    pub const fn as_str(self) -> &'static str {
        match self {
            Target::ForwardStream => "forward_stream",
            Target::ForwardHandshake => "forward_handshake",
            Target::RespRequest => "resp_request",
            Target::RespReply => "resp_reply",
            Target::OtlpLogs => "otlp_logs",
            Target::OtlpTraces => "otlp_traces",
            Target::OtlpMetrics => "otlp_metrics",
            Target::Scenario => "scenario",
            Target::RoundtripForward => "roundtrip_forward",
            Target::RoundtripRespRequest => "roundtrip_resp_request",
            Target::RoundtripRespReply => "roundtrip_resp_reply",
            Target::RoundtripOtlp => "roundtrip_otlp",
        }
    }

    /// The target named `name`, if any.
    pub fn from_name(name: &str) -> Option<Target> {
        Target::ALL.iter().copied().find(|target| target.as_str() == name)
    }

    /// Runs the target's entry point on `input` and returns the budget it must stay within.
    fn enter(self, input: &[u8]) -> Budget {
        match self {
            Target::ForwardStream => forward::stream(input),
            Target::ForwardHandshake => forward::handshake(input),
            Target::RespRequest => resp::request(input),
            Target::RespReply => resp::reply(input),
            Target::OtlpLogs => otlp::decode(otlp::Signal::Logs, input),
            Target::OtlpTraces => otlp::decode(otlp::Signal::Traces, input),
            Target::OtlpMetrics => otlp::decode(otlp::Signal::Metrics, input),
            Target::Scenario => scenario::load(input),
            Target::RoundtripForward => forward::roundtrip(input),
            Target::RoundtripRespRequest => resp::roundtrip_request(input),
            Target::RoundtripRespReply => resp::roundtrip_reply(input),
            Target::RoundtripOtlp => otlp::roundtrip(input),
        }
    }

    /// Does, before the measurement, the one-time work the target's code caches for the
    /// process (the scenario schema), so that a first input is not charged for it.
    fn warm_up(self) {
        if self == Target::Scenario {
            scenario::warm_up();
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// How much heap one call of an entry point may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    /// The largest single allocation allowed: the configured limit guarding that buffer
    /// plus [`SLACK_BYTES`].
    pub allocation_bytes_limit: usize,
    /// The most heap the call may hold at once above what was live when it began.
    pub peak_bytes_limit: usize,
}

impl Budget {
    /// A budget of `allocation_bytes` for one allocation and `peak_bytes` at once, each plus
    /// [`SLACK_BYTES`].
    pub(crate) fn new(allocation_bytes: usize, peak_bytes: usize) -> Self {
        Self {
            allocation_bytes_limit: allocation_bytes.saturating_add(SLACK_BYTES),
            peak_bytes_limit: peak_bytes.saturating_add(SLACK_BYTES),
        }
    }
}

/// What a [`Meter`] measured over one call.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// The largest single allocation.
    pub largest_bytes: usize,
    /// The most heap live at once above what was live at the start.
    pub peak_bytes: usize,
}

/// The harness's counting allocator, seen from here (the crate forbids `unsafe`, so the
/// allocator itself lives in `tools/counting-alloc` and each harness wraps it).
pub trait Meter {
    /// Starts a measurement.
    fn reset(&self);
    /// Bytes live now.
    fn live_bytes(&self) -> usize;
    /// The most bytes live at once since `reset`.
    fn peak_bytes(&self) -> usize;
    /// The largest single allocation since `reset`.
    fn largest_bytes(&self) -> usize;
}

/// Runs `target` on `input`, measuring it with `meter`, and panics (naming the target, the
/// budget and the usage) if the call used more heap than its budget. Returns both, for a
/// harness that reports them.
pub fn run(target: Target, input: &[u8], meter: &dyn Meter) -> (Budget, Usage) {
    target.warm_up();
    let live_before = meter.live_bytes();
    meter.reset();
    let budget = target.enter(input);
    let usage =
        Usage { largest_bytes: meter.largest_bytes(), peak_bytes: meter.peak_bytes().saturating_sub(live_before) };
    assert_within(target, input.len(), budget, usage);
    (budget, usage)
}

/// The memory postcondition of every entry point.
pub fn assert_within(target: Target, input_bytes: usize, budget: Budget, usage: Usage) {
    assert!(
        usage.largest_bytes <= budget.allocation_bytes_limit,
        "fuzzing {target}: one allocation of {} bytes for a {input_bytes}-byte input, over the limit of {} bytes",
        usage.largest_bytes,
        budget.allocation_bytes_limit
    );
    assert!(
        usage.peak_bytes <= budget.peak_bytes_limit,
        "fuzzing {target}: peak heap of {} bytes for a {input_bytes}-byte input, over the limit of {} bytes",
        usage.peak_bytes,
        budget.peak_bytes_limit
    );
}

/// Most chunk sizes an input may list.
const CHUNK_SIZES_LIMIT: usize = 16;

/// Splits a chunked target's input into the chunk sizes it carries and the stream.
///
/// Format: byte 0 is `k` (taken modulo 17); the next `k` bytes are chunk sizes, each
/// `byte + 1` (1 to 256); the rest is the stream, fed in chunks cycling through those sizes,
/// or in one piece when `k` is 0. An input too short for its sizes is all stream, one piece.
pub(crate) fn chunked(input: &[u8]) -> (Vec<usize>, &[u8]) {
    let Some((&first, rest)) = input.split_first() else {
        return (Vec::new(), input);
    };
    let count = usize::from(first) % (CHUNK_SIZES_LIMIT + 1);
    if rest.len() < count {
        return (Vec::new(), rest);
    }
    let (sizes, stream) = rest.split_at(count);
    (sizes.iter().map(|&size| usize::from(size) + 1).collect(), stream)
}

/// The chunks of `stream` cut at `sizes` (cycling), or the whole stream when `sizes` is empty.
pub(crate) fn chunks<'a>(sizes: &'a [usize], stream: &'a [u8]) -> impl Iterator<Item = &'a [u8]> + 'a {
    let mut at = 0usize;
    let mut turn = 0usize;
    std::iter::from_fn(move || {
        if at >= stream.len() {
            return None;
        }
        let size = if sizes.is_empty() { stream.len() } else { sizes[turn % sizes.len()] };
        turn += 1;
        let end = (at + size).min(stream.len());
        let chunk = &stream[at..end];
        at = end;
        Some(chunk)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for &target in Target::ALL {
            assert_eq!(Target::from_name(target.as_str()), Some(target));
        }
        assert_eq!(Target::from_name("forward"), None);
    }

    #[test]
    fn chunk_sizes_come_from_the_input() {
        let (sizes, stream) = chunked(&[2, 0, 2, b'a', b'b', b'c', b'd', b'e']);
        assert_eq!(sizes, [1, 3]);
        let pieces: Vec<&[u8]> = chunks(&sizes, stream).collect();
        assert_eq!(pieces, [&b"a"[..], b"bcd", b"e"]);
        let (sizes, stream) = chunked(&[0, b'x', b'y']);
        assert!(sizes.is_empty());
        assert_eq!(chunks(&sizes, stream).collect::<Vec<_>>(), [&b"xy"[..]]);
        // Too short for its sizes: all stream.
        let (sizes, stream) = chunked(&[5, 1]);
        assert!(sizes.is_empty());
        assert_eq!(stream, [1]);
        assert_eq!(chunked(&[]).1, &[] as &[u8]);
    }

    #[test]
    #[should_panic(expected = "one allocation of 200000 bytes")]
    fn a_usage_over_the_budget_panics() {
        assert_within(
            Target::ForwardStream,
            3,
            Budget::new(1000, 1000),
            Usage { largest_bytes: 200_000, peak_bytes: 0 },
        );
    }
}
