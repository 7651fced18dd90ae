//! The streaming decoder: bytes go in as they arrive from the network, whole frames come
//! out. `check_value` finds a frame's end without allocating (and refuses an oversized frame
//! from its headers); only then is the frame split off the buffer and parsed. A frame split
//! at any byte boundary therefore decodes exactly as if it arrived in one piece.

use bytes::{Bytes, BytesMut};
use rmp::Marker;

use super::ack::{Ack, parse_ack};
use super::check::{Check, CheckState, check_value_resume};
use super::error::ForwardError;
use super::frame::{EventFrame, parse_event_frame};
use super::handshake::{Helo, Ping, Pong};
use super::limits::Limits;
use super::reader::{Reader, type_name};

/// What a server receives from a client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientFrame {
    /// Events in any of the four carrier modes.
    Events(EventFrame),
    /// The handshake answer.
    Ping(Ping),
}

/// What a client receives from a server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServerFrame {
    /// The handshake greeting.
    Helo(Helo),
    /// The handshake verdict.
    Pong(Pong),
    /// An acknowledgement of a chunk.
    Ack(Ack),
}

/// Elements of a PING array; no event frame has more than 4, so this tells them apart.
const PING_ELEMENTS: u32 = 6;

/// Parses a complete frame a client sent: a PING (a 6-element array led by "PING") or
/// events.
pub fn parse_client_frame(frame: &Bytes, limits: &Limits) -> Result<ClientFrame, ForwardError> {
    let mut reader = Reader::new(frame);
    if reader.read_array_len("Forward frame")? == PING_ELEMENTS {
        return Ok(ClientFrame::Ping(Ping::parse(frame)?));
    }
    Ok(ClientFrame::Events(parse_event_frame(frame, limits)?))
}

/// Parses a complete frame a server sent: a map is an ack; an array is HELO or PONG.
pub fn parse_server_frame(frame: &[u8]) -> Result<ServerFrame, ForwardError> {
    let mut reader = Reader::new(frame);
    let marker = reader.peek_marker("server frame")?;
    match marker {
        Marker::FixMap(_) | Marker::Map16 | Marker::Map32 => Ok(ServerFrame::Ack(parse_ack(frame)?)),
        Marker::FixArray(_) | Marker::Array16 | Marker::Array32 => {
            reader.read_array_len("server frame")?;
            match reader.read_str("server message type")? {
                "HELO" => Ok(ServerFrame::Helo(Helo::parse(frame)?)),
                "PONG" => Ok(ServerFrame::Pong(Pong::parse(frame)?)),
                other => Err(ForwardError::UnexpectedMessage { expected: "HELO or PONG", got: other.to_owned() }),
            }
        }
        other => Err(ForwardError::WrongType {
            what: "server frame",
            expected: "map (ack) or array (HELO, PONG)",
            got: type_name(other),
        }),
    }
}

/// Buffers incoming bytes and yields whole frames.
///
/// A framing error (a frame over the limit, a reserved byte) poisons the decoder: the
/// stream can no longer be resynchronised and the connection must close. A parse error in
/// a whole frame consumes that frame and leaves the decoder usable.
#[derive(Debug)]
pub struct StreamDecoder {
    buffer: BytesMut,
    limits: Limits,
    poisoned: bool,
    /// Where the walk of the frame at the front of the buffer stopped for lack of bytes.
    check_state: CheckState,
}

impl StreamDecoder {
    /// A decoder enforcing `limits`.
    pub fn new(limits: Limits) -> Self {
        assert!(limits.buffered_bytes_limit >= limits.frame_bytes_limit);
        Self { buffer: BytesMut::new(), limits, poisoned: false, check_state: CheckState::default() }
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Bytes received and not yet returned as frames.
    pub fn buffered_bytes(&self) -> usize {
        self.buffer.len()
    }

    /// Appends bytes as they arrive; refused beyond `buffered_bytes_limit`.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<(), ForwardError> {
        if self.poisoned {
            return Err(ForwardError::DecoderPoisoned);
        }
        let buffered_bytes = self.buffer.len() + bytes.len();
        if buffered_bytes > self.limits.buffered_bytes_limit {
            self.poisoned = true;
            return Err(ForwardError::BufferFull {
                buffered_bytes: buffered_bytes as u64,
                buffered_bytes_limit: self.limits.buffered_bytes_limit as u64,
            });
        }
        self.buffer.extend_from_slice(bytes);
        assert!(
            self.buffer.len() <= self.limits.buffered_bytes_limit,
            "forward decoder: {} bytes buffered over the limit {}",
            self.buffer.len(),
            self.limits.buffered_bytes_limit
        );
        Ok(())
    }

    /// The next whole frame's bytes, `None` until one has fully arrived.
    pub fn next_frame(&mut self) -> Result<Option<Bytes>, ForwardError> {
        if self.poisoned {
            return Err(ForwardError::DecoderPoisoned);
        }
        if self.buffer.is_empty() {
            return Ok(None);
        }
        match check_value_resume(&self.buffer, self.limits.frame_bytes_limit, &mut self.check_state) {
            Ok(Check::Incomplete) => Ok(None),
            Ok(Check::Complete { frame_bytes }) => {
                assert!(frame_bytes >= 1 && frame_bytes <= self.buffer.len());
                assert!(frame_bytes <= self.limits.frame_bytes_limit);
                Ok(Some(self.buffer.split_to(frame_bytes).freeze()))
            }
            Err(error) => {
                self.poisoned = true;
                Err(error)
            }
        }
    }

    /// The next frame from a client (server side), parsed.
    pub fn next_client_frame(&mut self) -> Result<Option<ClientFrame>, ForwardError> {
        match self.next_frame()? {
            Some(frame) => parse_client_frame(&frame, &self.limits).map(Some),
            None => Ok(None),
        }
    }

    /// The next frame from a server (client side), parsed.
    pub fn next_server_frame(&mut self) -> Result<Option<ServerFrame>, ForwardError> {
        match self.next_frame()? {
            Some(frame) => parse_server_frame(&frame).map(Some),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::proto::forward::ack::encode_ack;
    use crate::proto::forward::encode::encode_message;
    use crate::proto::forward::event_time::EventTime;
    use crate::proto::forward::frame::Options;

    fn message(text: &str) -> Vec<u8> {
        let mut out = Vec::new();
        let record = BTreeMap::from([("message", text)]);
        encode_message(&mut out, "app.log", EventTime { seconds: 5, nanoseconds: 0 }, &record, &Options::default())
            .unwrap();
        out
    }

    #[test]
    fn byte_at_a_time_gives_the_same_frames() {
        let mut wire = message("one");
        wire.extend_from_slice(&message("two"));
        let mut decoder = StreamDecoder::new(Limits::default());
        let mut frames = Vec::new();
        for byte in &wire {
            decoder.feed(std::slice::from_ref(byte)).unwrap();
            while let Some(frame) = decoder.next_frame().unwrap() {
                frames.push(frame);
            }
        }
        assert_eq!(frames, vec![Bytes::from(message("one")), Bytes::from(message("two"))]);
        assert_eq!(decoder.buffered_bytes(), 0);
    }

    #[test]
    fn oversized_frame_poisons_the_decoder() {
        let mut decoder = StreamDecoder::new(Limits::with_frame_bytes_limit(64));
        // [tag, bin32 of 65536 bytes, one more element]: 1 + 2 + 5 + 65536 + 1 bytes at least.
        decoder.feed(&[0x93, 0xa1, b't', 0xc6, 0x00, 0x01, 0x00, 0x00]).unwrap();
        assert_eq!(
            decoder.next_frame(),
            Err(ForwardError::FrameTooLarge { frame_bytes_at_least: 65_545, frame_bytes_limit: 64 })
        );
        assert_eq!(decoder.next_frame(), Err(ForwardError::DecoderPoisoned));
        assert_eq!(decoder.feed(&[0x00]), Err(ForwardError::DecoderPoisoned));
    }

    #[test]
    fn feeding_beyond_the_buffer_bound_is_refused() {
        let limits = Limits { buffered_bytes_limit: 100, ..Limits::with_frame_bytes_limit(64) };
        let mut decoder = StreamDecoder::new(limits);
        decoder.feed(&[0u8; 60]).unwrap();
        assert!(matches!(decoder.feed(&[0u8; 41]), Err(ForwardError::BufferFull { buffered_bytes: 101, .. })));
    }

    #[test]
    fn server_and_client_frames_dispatch_by_shape() {
        let mut decoder = StreamDecoder::new(Limits::default());
        let mut wire = Vec::new();
        encode_ack(&mut wire, "c1");
        decoder.feed(&wire).unwrap();
        assert_eq!(decoder.next_server_frame(), Ok(Some(ServerFrame::Ack(Ack { chunk: "c1".to_owned() }))));
        decoder.feed(&message("x")).unwrap();
        assert!(matches!(decoder.next_client_frame(), Ok(Some(ClientFrame::Events(_)))));
        assert_eq!(decoder.next_client_frame(), Ok(None));
        // A whole but invalid frame is consumed; the decoder stays usable.
        decoder.feed(&[0x91, 0x01]).unwrap();
        assert!(decoder.next_client_frame().is_err());
        decoder.feed(&message("y")).unwrap();
        assert!(matches!(decoder.next_client_frame(), Ok(Some(ClientFrame::Events(_)))));
        assert!(matches!(parse_server_frame(&[0x01]), Err(ForwardError::WrongType { got: "int", .. })));
    }
}
