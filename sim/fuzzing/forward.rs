//! Forward entry points: the streaming decoder, the handshake frames, the round trip.
//!
//! The limits are the aggregator's kinds of limits at sizes a fuzzer reaches in a few KB of
//! input: a 256 KiB frame, 1 MiB inflated, a 1 MiB entry table, and the real default
//! entries count (1 Mi).

use std::hash::{DefaultHasher, Hasher};

use super::{Budget, chunked, chunks};
use crate::proto::forward::{
    ClientAuth, ClientFrame, Entry, EntryBatch, EventFrame, ForwardError, Helo, Limits, Mode, Ping, Pong, ServerAuth,
    ServerFrame, StreamDecoder, encode_compressed_packed_forward, encode_forward, encode_message_raw,
    encode_packed_forward, parse_client_frame, parse_server_frame,
};

/// The fuzzed decoder's frame limit.
const FRAME_BYTES_LIMIT: usize = 256 << 10;
/// The fuzzed decoder's inflation limit.
const DECOMPRESSED_BYTES_LIMIT: usize = 1 << 20;
/// The fuzzed decoder's entry table limit (one frame's `Vec<Entry>`).
const ENTRIES_BYTES_LIMIT: usize = 1 << 20;
/// Bytes the fuzzed decoder may hold beyond one frame (a chunk is at most 256 bytes).
const FEED_BYTES_SLACK: usize = 64 << 10;

/// The limits every Forward entry point decodes under.
fn limits() -> Limits {
    let mut limits = Limits::with_frame_bytes_limit(FRAME_BYTES_LIMIT);
    limits.decompressed_bytes_limit = DECOMPRESSED_BYTES_LIMIT;
    limits.entries_bytes_limit = ENTRIES_BYTES_LIMIT;
    limits.buffered_bytes_limit = FRAME_BYTES_LIMIT + FEED_BYTES_SLACK;
    limits
}

/// What decoding under `limits` may cost: one allocation at most the largest of the
/// buffer, inflation and entry table limits; at once, the buffer (doubled as it grows), one
/// frame split off it, its inflated stream and its entry table: twice their limits' sum.
fn decode_budget(limits: &Limits) -> Budget {
    decode_budget_plus(limits, 0)
}

/// `decode_budget` with `extra_bytes` more allowed, as one allocation and at once.
fn decode_budget_plus(limits: &Limits, extra_bytes: usize) -> Budget {
    let bytes_limits = limits.buffered_bytes_limit + limits.decompressed_bytes_limit + limits.entries_bytes_limit;
    let allocation_bytes = limits
        .buffered_bytes_limit
        .max(limits.decompressed_bytes_limit)
        .max(limits.entries_bytes_limit)
        .max(extra_bytes);
    Budget::new(allocation_bytes, 2 * bytes_limits + extra_bytes)
}

/// Forward frames from a client in the chunks the input chooses (`super::chunked`). Holds:
/// the decoder's own postconditions, and that the chunked stream yields the same frames and
/// errors as the same bytes fed at once (when they fit in its buffer).
pub(super) fn stream(input: &[u8]) -> Budget {
    let limits = limits();
    let (sizes, data) = chunked(input);
    let in_chunks = decode_stream(chunks(&sizes, data), limits);
    if data.len() <= limits.buffered_bytes_limit {
        let at_once = decode_stream(chunks(&[], data), limits);
        assert_eq!(in_chunks, at_once, "forward: a stream fed in chunks {sizes:?} decodes differently from at once");
    }
    decode_budget(&limits)
}

/// Feeds `pieces` to one decoder, draining client frames after each, and returns a digest
/// of every outcome (frame or error) in order; stops where the decoder is poisoned.
fn decode_stream<'a>(pieces: impl Iterator<Item = &'a [u8]>, limits: Limits) -> Vec<u64> {
    let mut decoder = StreamDecoder::new(limits);
    let mut outcomes = Vec::new();
    for piece in pieces {
        if let Err(error) = decoder.feed(piece) {
            outcomes.push(digest_error(&error));
            return outcomes;
        }
        loop {
            match decoder.next_client_frame() {
                Ok(None) => break,
                Ok(Some(frame)) => outcomes.push(digest_client_frame(&frame)),
                Err(error) => {
                    outcomes.push(digest_error(&error));
                    // Feeding nothing fails only on a poisoned decoder (a framing error).
                    if decoder.feed(&[]).is_err() {
                        return outcomes;
                    }
                }
            }
        }
        assert!(decoder.buffered_bytes() <= limits.buffered_bytes_limit);
    }
    outcomes
}

/// A digest of an error (its text names the variant and its values).
fn digest_error(error: &ForwardError) -> u64 {
    let mut hasher = DefaultHasher::new();
    hasher.write(error.to_string().as_bytes());
    hasher.finish()
}

/// A digest of a decoded client frame: every field, every entry's time and record bytes.
fn digest_client_frame(frame: &ClientFrame) -> u64 {
    let mut hasher = DefaultHasher::new();
    match frame {
        ClientFrame::Ping(ping) => hasher.write(format!("{ping:?}").as_bytes()),
        ClientFrame::Events(events) => {
            hasher.write(events.tag.as_bytes());
            hasher.write(events.mode.name().as_bytes());
            hasher.write(format!("{:?}", events.options).as_bytes());
            for Entry { time, time_form, time_saturated, record } in &events.entries {
                hasher.write_u32(time.seconds);
                hasher.write_u32(time.nanoseconds);
                hasher.write(format!("{time_form:?}{time_saturated}").as_bytes());
                hasher.write(record);
            }
        }
    }
    hasher.finish()
}

/// One handshake frame: parsed as a server frame (HELO, PONG, ack) and as a client frame
/// (PING). Whatever parses is judged by the other side's rules (a PING answered, a PONG
/// verified) and must re-encode to bytes that parse back to the same value.
pub(super) fn handshake(input: &[u8]) -> Budget {
    let server = ServerAuth { hostname: "aggregator".into(), shared_key: "key".into(), users: Vec::new() };
    let client = ClientAuth {
        hostname: "agent".into(),
        shared_key: "key".into(),
        username: "user".into(),
        password: "secret".into(),
    };
    let helo = Helo::parse(&[0x92, 0xa4, b'H', b'E', b'L', b'O', 0x81, 0xa5, b'n', b'o', b'n', b'c', b'e', 0xa1, b'n'])
        .expect("a fixed HELO parses");
    match parse_server_frame(input) {
        Ok(ServerFrame::Helo(parsed)) => {
            assert_eq!(Helo::parse(&encoded(|out| parsed.encode(out))), Ok(parsed));
        }
        Ok(ServerFrame::Pong(pong)) => {
            assert_eq!(Pong::parse(&encoded(|out| pong.encode(out))).as_ref(), Ok(&pong));
            let ping = Ping::parse(&encoded(|out| client.ping(&helo, &mut FixedRng).encode(out))).expect("own PING");
            let _verdict = client.verify_pong(&helo, &ping, &pong);
        }
        Ok(ServerFrame::Ack(_)) | Err(_) => {}
    }
    if let Ok(ClientFrame::Ping(ping)) = parse_client_frame(&bytes::Bytes::copy_from_slice(input), &limits()) {
        assert_eq!(Ping::parse(&encoded(|out| ping.encode(out))).as_ref(), Ok(&ping));
        let pong = server.answer_ping(&helo, &ping);
        assert_eq!(Pong::parse(&encoded(|out| pong.encode(out))), Ok(pong));
    }
    // As a client frame it may be events, decoded under `limits()` (a Forward array reserves
    // its entry table up front); copies and re-encodings are a few times the input.
    decode_budget_plus(&limits(), 16 * input.len())
}

/// The bytes `write` appends to an empty buffer.
fn encoded(write: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut out = Vec::new();
    write(&mut out);
    out
}

/// A fixed "random" source: the handshake's salts need bytes, not randomness, here.
struct FixedRng;

impl rand::RngCore for FixedRng {
    fn next_u32(&mut self) -> u32 {
        0x5eed_5eed
    }
    fn next_u64(&mut self) -> u64 {
        0x5eed_5eed_5eed_5eed
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        dest.fill(0x5e);
    }
}

/// Forward frames decoded from the input (whole), each re-encoded by the encoder of its mode
/// (PING frames by `Ping::encode`); that encoding must decode without error to frames that
/// encode to the same bytes again.
pub(super) fn roundtrip(input: &[u8]) -> Budget {
    let limits = limits();
    let data = &input[..input.len().min(limits.buffered_bytes_limit)];
    let (first, _) = reencode(data, limits);
    let (second, refused) = reencode(&first, limits);
    assert_eq!(refused, 0, "forward: an encoder wrote a frame its decoder refuses");
    assert!(first == second, "forward: encode(decode(x)) is not stable ({} vs {} bytes)", first.len(), second.len());
    // The re-encoding: an integer time grows to a 10-byte EventTime (a 3-byte entry becomes
    // 12), so one frame's batch holds up to 4 × its inflated stream (8 × as its vector
    // doubles); the encodings, a re-gzipped stream compressing worse than the input's, are
    // bounded by a multiple of the input.
    decode_budget_plus(&limits, 8 * limits.decompressed_bytes_limit + 64 * data.len())
}

/// Decodes every frame of `data` and appends each good one's encoding; returns the
/// encodings and how many frames were refused.
fn reencode(data: &[u8], limits: Limits) -> (Vec<u8>, usize) {
    let mut decoder = StreamDecoder::new(limits);
    let mut out = Vec::new();
    let mut refused = 0;
    if decoder.feed(data).is_err() {
        return (out, 1);
    }
    loop {
        match decoder.next_client_frame() {
            Ok(None) => break,
            Ok(Some(ClientFrame::Ping(ping))) => ping.encode(&mut out),
            Ok(Some(ClientFrame::Events(frame))) => {
                encode_events(&frame, &mut out).expect("forward: a decoded frame must encode");
            }
            Err(ForwardError::DecoderPoisoned) => return (out, refused + 1),
            Err(_) => refused += 1,
        }
    }
    (out, refused)
}

/// Appends `frame` encoded in its own mode, with its own options.
fn encode_events(frame: &EventFrame, out: &mut Vec<u8>) -> Result<(), ForwardError> {
    if frame.mode == Mode::Message {
        let [entry] = frame.entries.as_slice() else {
            panic!("forward: a Message frame carries {} entries", frame.entries.len());
        };
        return encode_message_raw(out, &frame.tag, entry.time, &entry.record, &frame.options);
    }
    let mut batch = EntryBatch::new();
    for entry in &frame.entries {
        batch.push_raw(entry.time, &entry.record)?;
    }
    match frame.mode {
        Mode::Forward => encode_forward(out, &frame.tag, &batch, &frame.options),
        Mode::PackedForward => encode_packed_forward(out, &frame.tag, &batch, &frame.options),
        Mode::CompressedPackedForward | Mode::Message => {
            encode_compressed_packed_forward(out, &frame.tag, &batch, &frame.options)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_split_anywhere_decodes_as_one() {
        let mut wire = vec![4, 0, 1, 2, 6];
        wire.extend_from_slice(&[0x93, 0xa1, b't', 0x05, 0x81, 0xa1, b'k', 0xa1, b'v']);
        wire.extend_from_slice(&[0x93, 0xa1, b't', 0x06, 0x80]);
        stream(&wire);
        let (_, data) = chunked(&wire);
        assert_eq!(decode_stream(chunks(&[], data), limits()).len(), 2);
    }

    #[test]
    fn a_message_round_trips_with_an_event_time() {
        let wire = [0x93, 0xa1, b't', 0x05, 0x81, 0xa1, b'k', 0xa1, b'v'];
        roundtrip(&wire);
        let (first, refused) = reencode(&wire, limits());
        assert_eq!(refused, 0);
        // The integer time became an EventTime (fixext8, type 0).
        assert_eq!(&first[..5], &[0x93, 0xa1, b't', 0xd7, 0x00]);
    }
}
