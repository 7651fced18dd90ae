//! Fluent Forward protocol v1: the wire between the agents (Fluent Bit) and the aggregator
//! (Fluentd). Decodes all four carrier modes (Message, Forward, PackedForward,
//! CompressedPackedForward) from a byte stream under size limits, encodes what an agent
//! sends, and speaks the ack and the HELO/PING/PONG shared-key handshake.
//!
//! Typical server loop: `StreamDecoder::feed` the bytes read, then drain
//! `next_client_frame` until `None`; answer a frame whose `ack_chunk()` is set with
//! `encode_ack` once its entries are safely buffered.

mod ack;
mod check;
mod decoder;
mod encode;
mod error;
mod event_time;
mod frame;
mod handshake;
mod limits;
mod reader;
mod write;

pub use ack::{Ack, encode_ack, parse_ack};
pub use check::{Check, CheckState, check_value, check_value_resume};
pub use decoder::{ClientFrame, ServerFrame, StreamDecoder, parse_client_frame, parse_server_frame};
pub(crate) use encode::encode_message_raw;
pub use encode::{
    EntryBatch, encode_compressed_packed_forward, encode_forward, encode_message, encode_packed_forward, gzip,
};
pub use error::ForwardError;
pub use event_time::{
    EVENT_TIME_ENCODED_BYTES, EVENT_TIME_EXT_TYPE, EventTime, NANOSECONDS_PER_SECOND, TimeForm, WireTime,
};
pub use frame::{Compression, ENTRY_BYTES, Entry, EventFrame, Mode, Options, inflate, parse_event_frame};
pub use handshake::{
    ClientAuth, Helo, INVALID_PING, Ping, Pong, SHARED_KEY_MISMATCH, ServerAuth, USER_MISMATCH, password_hexdigest,
    shared_key_hexdigest,
};
pub use limits::{
    DECOMPRESSED_BYTES_LIMIT_DEFAULT, ENTRIES_BYTES_LIMIT_DEFAULT, ENTRIES_COUNT_LIMIT_DEFAULT,
    FRAME_BYTES_LIMIT_DEFAULT, Limits,
};
