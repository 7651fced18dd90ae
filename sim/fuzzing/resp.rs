//! RESP entry points: the Redis model's request decoder, the client's reply parser, and the
//! round trip of each.
//!
//! Memory: a decoded request holds one `Bytes` (32 bytes) per argument and an argument takes
//! at least 2 wire bytes (`a ` inline), so the argument vector is at most 16 × the input (32 ×
//! as a vector doubles); a reply holds one 40-byte `Reply` per value of at least 3 wire
//! bytes, the same order. The budgets are those multiples of the input, which the read
//! buffer (at most the input plus a chunk, doubled as it grows) also fits in.

use std::hash::{DefaultHasher, Hasher};

use bytes::BytesMut;

use super::{Budget, chunked, chunks};
use crate::proto::resp::{
    Command, Decoder, ProtocolError, Reply, ReplyError, RequestLimits, encode_command, parse_reply,
};

/// The fuzzed request decoder's `client-query-buffer-limit`: 1 MiB, so a fuzzer reaches it.
const QUERY_BUFFER_BYTES_LIMIT: usize = 1 << 20;
/// The fuzzed request decoder's `proto-max-bulk-len`: 512 KiB.
const BULK_BYTES_LIMIT: u64 = 512 << 10;

/// Wire-to-heap multiple of a decoded request or reply, vector doubling included.
const DECODED_BYTES_PER_INPUT_BYTE: usize = 32;

/// The request limits every RESP entry point decodes under.
fn request_limits() -> RequestLimits {
    RequestLimits {
        query_buffer_bytes_limit: QUERY_BUFFER_BYTES_LIMIT,
        bulk_bytes_limit: BULK_BYTES_LIMIT,
        ..RequestLimits::default()
    }
}

/// What decoding `input_bytes` may cost (see the module doc).
fn budget(input_bytes: usize) -> Budget {
    let decoded_bytes = DECODED_BYTES_PER_INPUT_BYTE * (input_bytes + 256);
    Budget::new(decoded_bytes, 2 * decoded_bytes)
}

/// Requests in the chunks the input chooses (`super::chunked`); the top bit of the first
/// byte says the client has not authenticated yet (tighter bounds). Holds: the decoder's
/// postconditions, and that the chunked stream gives the same commands and error as the
/// same bytes at once.
pub(super) fn request(input: &[u8]) -> Budget {
    let auth_required = input.first().is_some_and(|&first| first & 0x80 != 0);
    let (sizes, data) = chunked(input);
    let in_chunks = decode_requests(chunks(&sizes, data), auth_required);
    // At once, more than the query buffer's limit is refused before any command is taken.
    if data.len() <= QUERY_BUFFER_BYTES_LIMIT {
        let at_once = decode_requests(chunks(&[], data), auth_required);
        assert_eq!(in_chunks, at_once, "resp: requests fed in chunks {sizes:?} decode differently from at once");
    }
    budget(input.len())
}

/// Feeds `pieces` to one decoder, taking every command after each, and returns a digest of
/// every outcome in order, up to the error that closes the connection.
fn decode_requests<'a>(pieces: impl Iterator<Item = &'a [u8]>, auth_required: bool) -> Vec<u64> {
    let mut decoder = Decoder::new(request_limits());
    decoder.set_auth_required(auth_required);
    let mut buf = BytesMut::new();
    let mut outcomes = Vec::new();
    for piece in pieces {
        buf.extend_from_slice(piece);
        loop {
            match decoder.decode(&mut buf) {
                Ok(None) => break,
                Ok(Some(command)) => outcomes.push(digest_command(&command)),
                Err(error) => {
                    outcomes.push(digest_protocol_error(&error));
                    return outcomes;
                }
            }
        }
    }
    outcomes
}

/// A digest of a command: its framing and every argument's bytes.
fn digest_command(command: &Command) -> u64 {
    let mut hasher = DefaultHasher::new();
    hasher.write(format!("{:?}", command.framing()).as_bytes());
    for arg in command.argv() {
        hasher.write_usize(arg.len());
        hasher.write(arg);
    }
    hasher.finish()
}

/// A digest of a protocol error and the reply it sends.
fn digest_protocol_error(error: &ProtocolError) -> u64 {
    let mut hasher = DefaultHasher::new();
    hasher.write(format!("{error:?} {:?}", error.reply()).as_bytes());
    hasher.finish()
}

/// Replies in the chunks the input chooses. Holds: every parsed reply keeps its type's
/// rules (no CR or LF in a status or error line), and the chunked stream gives the same
/// replies and error as the same bytes at once.
pub(super) fn reply(input: &[u8]) -> Budget {
    let (sizes, data) = chunked(input);
    let in_chunks = parse_replies(chunks(&sizes, data));
    let at_once = parse_replies(chunks(&[], data));
    assert_eq!(in_chunks, at_once, "resp: replies fed in chunks {sizes:?} parse differently from at once");
    budget(input.len())
}

/// Feeds `pieces` to one reply buffer, parsing every reply after each; a digest of every
/// outcome in order, up to the first error.
fn parse_replies<'a>(pieces: impl Iterator<Item = &'a [u8]>) -> Vec<u64> {
    let mut buf = BytesMut::new();
    let mut outcomes = Vec::new();
    for piece in pieces {
        buf.extend_from_slice(piece);
        loop {
            match parse_reply(&mut buf) {
                Ok(None) => break,
                Ok(Some(reply)) => {
                    assert_reply_rules(&reply);
                    outcomes.push(digest_reply(&reply));
                }
                Err(error) => {
                    outcomes.push(digest_reply_error(&error));
                    return outcomes;
                }
            }
        }
    }
    outcomes
}

/// A parsed reply obeys its type's rules: a status or error line holds no CR or LF (else
/// re-encoding it would write a different reply). Arrays are walked with an explicit stack.
fn assert_reply_rules(reply: &Reply) {
    let mut pending = vec![reply];
    while let Some(reply) = pending.pop() {
        match reply {
            Reply::Simple(line) | Reply::Error(line) => assert!(
                !line.iter().any(|&byte| byte == b'\r' || byte == b'\n'),
                "resp: a parsed status or error line holds CR or LF: {line:?}"
            ),
            Reply::Array(items) => pending.extend(items),
            Reply::Integer(_) | Reply::Bulk(_) | Reply::Null | Reply::NullArray => {}
        }
    }
}

/// A digest of a reply: its encoding.
fn digest_reply(reply: &Reply) -> u64 {
    let mut hasher = DefaultHasher::new();
    hasher.write(&reply.to_bytes());
    hasher.finish()
}

/// A digest of a reply error.
fn digest_reply_error(error: &ReplyError) -> u64 {
    let mut hasher = DefaultHasher::new();
    hasher.write(format!("{error:?}").as_bytes());
    hasher.finish()
}

/// Requests decoded from the whole input, re-encoded as multibulk: that encoding decodes
/// without error to the same arguments, and encodes to the same bytes again.
pub(super) fn roundtrip_request(input: &[u8]) -> Budget {
    let first_commands = decode_all(input);
    let first = encode_commands(&first_commands);
    let second_commands = decode_all(&first);
    assert_eq!(second_commands.len(), first_commands.len(), "resp: re-encoded requests decode to another count");
    for (again, command) in second_commands.iter().zip(&first_commands) {
        assert_eq!(again.argv(), command.argv(), "resp: a re-encoded request decodes to other arguments");
    }
    assert!(first == encode_commands(&second_commands), "resp: encode(decode(x)) is not stable");
    // Two decodings and two encodings (an inline argument grows from 2 to 7 bytes).
    let decoded = budget(input.len());
    Budget::new(decoded.allocation_bytes_limit, 4 * decoded.peak_bytes_limit)
}

/// Every command in `bytes` decoded at once, up to the first error.
fn decode_all(bytes: &[u8]) -> Vec<Command> {
    let mut decoder = Decoder::new(request_limits());
    let mut buf = BytesMut::from(bytes);
    let mut commands = Vec::new();
    let _closed = decoder.decode_all(&mut buf, &mut commands);
    commands
}

/// The commands as one multibulk pipeline.
fn encode_commands(commands: &[Command]) -> BytesMut {
    let mut out = BytesMut::new();
    for command in commands {
        encode_command(command.argv(), &mut out);
    }
    out
}

/// Replies parsed from the whole input, re-encoded: that encoding parses to the same
/// replies and encodes to the same bytes again.
pub(super) fn roundtrip_reply(input: &[u8]) -> Budget {
    let first_replies = parse_all(input);
    let mut first = BytesMut::new();
    Reply::encode_all(&first_replies, &mut first);
    let second_replies = parse_all(&first);
    assert_eq!(second_replies, first_replies, "resp: re-encoded replies parse to other replies");
    let mut second = BytesMut::new();
    Reply::encode_all(&second_replies, &mut second);
    assert!(first == second, "resp: encode(decode(x)) is not stable");
    let decoded = budget(input.len());
    Budget::new(decoded.allocation_bytes_limit, 4 * decoded.peak_bytes_limit)
}

/// Every reply in `bytes`, up to the first error or incomplete one.
fn parse_all(bytes: &[u8]) -> Vec<Reply> {
    let mut buf = BytesMut::from(bytes);
    let mut replies = Vec::new();
    while let Ok(Some(reply)) = parse_reply(&mut buf) {
        assert_reply_rules(&reply);
        replies.push(reply);
    }
    replies
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_and_multibulk_split_anywhere_decode_as_one() {
        let mut input = vec![3, 0, 4, 1];
        input.extend_from_slice(b"PING\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n");
        request(&input);
        let (_, data) = chunked(&input);
        assert_eq!(decode_requests(chunks(&[1, 5, 2], data), false).len(), 2);
        roundtrip_request(b"SET k \"a b\"\r\n");
        assert_eq!(decode_all(&encode_commands(&decode_all(b"SET k \"a b\"\r\n")))[0].argv()[2], &b"a b"[..]);
    }

    #[test]
    fn replies_split_anywhere_parse_as_one() {
        let mut input = vec![2, 0, 6];
        input.extend_from_slice(b"*2\r\n+OK\r\n$3\r\nabc\r\n:-4\r\n");
        reply(&input);
        roundtrip_reply(&input[3..]);
        assert_eq!(parse_replies(chunks(&[1], &input[3..])).len(), 2);
    }
}
