//! A parsed request: the argument vector Redis calls `argv`.
//!
//! Why a view rather than a typed enum per command: the Redis model dispatches on the name
//! and validates arity and argument syntax itself, with Redis's own error texts; keeping the
//! raw arguments (as cheap `Bytes` slices of the read buffer) loses nothing and copies
//! nothing.

use bytes::{BufMut, Bytes, BytesMut};

/// How a request was framed on the wire. Why kept: Redis handles both, and a test or a
/// trace may want to know which one a client used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// `*N\r\n$len\r\narg\r\n...`: what every real client library, `redis` included, sends.
    Multibulk,
    /// A text line split on blanks with `sdssplitargs` quoting: what telnet users send.
    Inline,
}

/// One request: its arguments, the first being the command name. Never empty (empty
/// requests — `*0\r\n`, `*-1\r\n`, blank inline lines — are skipped by the decoder exactly
/// as Redis skips them, without a reply).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Command {
    argv: Vec<Bytes>,
    framing: Framing,
}

impl Command {
    /// Builds a command from its argument vector. Why public: tests and the model build
    /// commands directly (e.g. to replay a journal). Panics if `argv` is empty, which is a
    /// programming error: the wire never yields an empty command.
    pub fn new(argv: Vec<Bytes>, framing: Framing) -> Command {
        assert!(!argv.is_empty(), "a command has at least its name");
        Command { argv, framing }
    }

    /// The command name as sent (any case). Why raw: Redis echoes it verbatim in
    /// `unknown command` errors.
    pub fn name(&self) -> &[u8] {
        &self.argv[0]
    }

    /// Whether the name is `name`, ASCII case-insensitively, as Redis looks commands up.
    pub fn is(&self, name: &str) -> bool {
        self.argv[0].eq_ignore_ascii_case(name.as_bytes())
    }

    /// Whether argument `index` (0 = the name) equals `word` ASCII case-insensitively:
    /// for subcommands and options (`XGROUP CREATE`, `LEFT`, `MKSTREAM`).
    pub(crate) fn arg_is(&self, index: usize, word: &str) -> bool {
        self.argv.get(index).is_some_and(|a| a.eq_ignore_ascii_case(word.as_bytes()))
    }

    /// The arguments after the name.
    pub fn args(&self) -> &[Bytes] {
        &self.argv[1..]
    }

    /// All arguments, the name first (Redis's `argv`), for arity checks by index.
    pub fn argv(&self) -> &[Bytes] {
        &self.argv
    }

    /// Argument `index` of `argv` (0 = the name), if present.
    pub fn arg(&self, index: usize) -> Option<&Bytes> {
        self.argv.get(index)
    }

    /// The number of arguments including the name (Redis's `argc`), compared against
    /// command arity.
    pub fn argc(&self) -> usize {
        self.argv.len()
    }

    /// How the request was framed.
    pub fn framing(&self) -> Framing {
        self.framing
    }

    /// Writes this command as a multibulk request, as a client would. Why: round-trip tests
    /// and a future client-side model need the inverse of the decoder.
    pub fn encode(&self, out: &mut BytesMut) {
        encode_command(&self.argv, out);
    }
}

/// Writes `argv` as one multibulk request (`*N\r\n` then `$len\r\narg\r\n` per argument),
/// byte-identical to what the `redis` crate's `get_packed_command` writes.
pub fn encode_command<A: AsRef<[u8]>>(argv: &[A], out: &mut BytesMut) {
    let payload_bytes: usize = argv.iter().map(|a| a.as_ref().len() + 24).sum();
    out.reserve(16 + payload_bytes);
    out.put_u8(b'*');
    put_decimal(out, argv.len() as i64);
    out.put_slice(b"\r\n");
    for arg in argv {
        let arg = arg.as_ref();
        out.put_u8(b'$');
        put_decimal(out, arg.len() as i64);
        out.put_slice(b"\r\n");
        out.put_slice(arg);
        out.put_slice(b"\r\n");
    }
}

/// Writes `value` in decimal without allocating. Why not `format!`: this runs once per
/// reply and per argument on the hot path.
pub(crate) fn put_decimal(out: &mut BytesMut, value: i64) {
    let mut digits = [0u8; 20];
    let mut magnitude = value.unsigned_abs();
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (magnitude % 10) as u8;
        magnitude /= 10;
        if magnitude == 0 {
            break;
        }
    }
    if value < 0 {
        out.put_u8(b'-');
    }
    out.put_slice(&digits[at..]);
}
