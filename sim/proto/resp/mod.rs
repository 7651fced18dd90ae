//! RESP2, the Redis protocol, from the server's side.
//!
//! Why this exists: the simulated Redis (ARCHITECTURE.md §1, the `redis` row) must speak the real
//! wire protocol well enough that the real `redis` crate client, used unchanged by the
//! aggregator and shipper models, talks to it; and its bytes must later match a real
//! `redis-server` 7.0 byte for byte in a differential test.
//!
//! Layout:
//! - [`limits`]: the request bounds, with Redis 7.0's defaults (`proto-max-bulk-len`, ...).
//! - [`frame`]: the streaming request decoder — a cheap, allocation-free [`check_request`]
//!   (Incomplete / Complete / Error) and a [`Decoder`] that splits whole frames off a
//!   `BytesMut` and parses them into [`Command`]s whose arguments are slices of the read
//!   buffer. Multibulk (`*N\r\n$len\r\n...`) and inline (`PING\r\n`) requests, with the exact
//!   acceptance rules and error texts of Redis 7.0's `processMultibulkBuffer` /
//!   `processInlineBuffer`.
//! - [`command`]: the parsed request view and the multibulk encoder (the client's side).
//! - [`reply`]: the [`Reply`] enum covering every RESP2 type, its encoder (many replies into
//!   one buffer), and the client-side reply decoder ([`check_reply`], [`parse_reply`]).
//! - [`errors`]: constructors for the standard Redis 7.0 error replies, byte-exact.
//!
//! Determinism (ARCHITECTURE.md §2): nothing here reads a clock, uses randomness or iterates a
//! hash map; output depends on input bytes only.

pub mod command;
pub mod errors;
pub mod frame;
pub mod limits;
pub mod reply;

pub use command::{Command, Framing, encode_command};
pub use frame::{Check, CheckProgress, Decoder, ProtocolError, check_request, check_request_resume};
pub use limits::RequestLimits;
pub use reply::{Reply, ReplyCheck, ReplyError, check_reply, parse_reply};
