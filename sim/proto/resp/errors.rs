//! Redis 7.0's standard error replies, byte for byte.
//!
//! Why here: the Redis model will be compared byte for byte against a real `redis-server`
//! 7.0, and clients branch on these texts (redis-rs retries AUTH when it sees "wrong number
//! of arguments for 'auth' command"). The texts are copied from Redis 7.0.5's `server.c`
//! (shared objects), `networking.c`, `object.c`, `t_hash.c`, `multi.c`,
//! `timeout.c`, `db.c` and `acl.c`. Fixed texts are `&str` constants (the reply text without
//! the leading `-` and trailing CRLF); texts that embed client bytes are functions that
//! format them as Redis's `addReplyErrorFormat` does: a `%s` stops at a NUL byte, and
//! `\r`/`\n` become spaces.

use bytes::Bytes;

use super::reply::Reply;

/// `shared.wrongtypeerr`: a command against a key of another type.
pub const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";
/// `shared.oomerr`: a write refused under `maxmemory` with `noeviction`.
pub const OOM: &str = "OOM command not allowed when used memory > 'maxmemory'.";
/// `shared.syntaxerr`.
pub const SYNTAX: &str = "ERR syntax error";
/// `getLongLongFromObjectOrReply`'s default: an argument that must be an integer.
pub const NOT_AN_INTEGER: &str = "ERR value is not an integer or out of range";
/// `shared.noautherr`: a command before AUTH when a password is set.
pub(crate) const NOAUTH: &str = "NOAUTH Authentication required.";
/// AUTH with a wrong password.
pub(crate) const WRONGPASS: &str = "WRONGPASS invalid username-password pair or user is disabled.";
/// AUTH when no password is configured.
pub(crate) const AUTH_NOT_CONFIGURED: &str = "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?";
/// `shared.execaborterr`: EXEC after a command was refused while queueing.
pub const EXECABORT: &str = "EXECABORT Transaction discarded because of previous errors.";
/// MULTI inside MULTI.
pub(crate) const MULTI_NESTED: &str = "ERR MULTI calls can not be nested";
/// EXEC outside MULTI.
pub(crate) const EXEC_WITHOUT_MULTI: &str = "ERR EXEC without MULTI";
/// DISCARD outside MULTI.
pub(crate) const DISCARD_WITHOUT_MULTI: &str = "ERR DISCARD without MULTI";
/// SELECT beyond `databases`.
pub(crate) const DB_INDEX_OUT_OF_RANGE: &str = "ERR DB index is out of range";
/// A blocking command's timeout (seconds) that is not a number.
pub(crate) const TIMEOUT_NOT_FLOAT: &str = "ERR timeout is not a float or out of range";
/// A blocking command's negative timeout.
pub(crate) const TIMEOUT_NEGATIVE: &str = "ERR timeout is negative";
/// HINCRBY on a field that does not hold an integer.
pub(crate) const HASH_VALUE_NOT_INTEGER: &str = "ERR hash value is not an integer";
/// INCRBY / HINCRBY past i64.
pub(crate) const INCREMENT_OVERFLOW: &str = "ERR increment or decrement would overflow";

/// An error reply from a fixed text above.
pub fn error(text: &'static str) -> Reply {
    Reply::Error(Bytes::from_static(text.as_bytes()))
}

/// Bytes as C's `%s` prints them: up to the first NUL.
fn c_str(bytes: &[u8]) -> &[u8] {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    &bytes[..end]
}

/// Finishes a formatted error as `addReplyErrorFormat` does: trim CR/LF at both ends, then
/// map the remaining `\r` and `\n` to spaces.
fn formatted(mut text: Vec<u8>) -> Reply {
    while text.last().is_some_and(|&b| b == b'\r' || b == b'\n') {
        text.pop();
    }
    let leading = text.iter().take_while(|&&b| b == b'\r' || b == b'\n').count();
    text.drain(..leading);
    for byte in &mut text {
        if *byte == b'\r' || *byte == b'\n' {
            *byte = b' ';
        }
    }
    Reply::error(text)
}

/// `ERR wrong number of arguments for 'lpush' command`. `fullname` is the command's
/// canonical name as Redis 7 declares it, lower case, with `|` for subcommands
/// (`xgroup|create`); it is lower-cased here regardless of how the client spelled it.
pub fn wrong_number_of_arguments(fullname: &str) -> Reply {
    formatted(format!("ERR wrong number of arguments for '{}' command", fullname.to_ascii_lowercase()).into_bytes())
}

/// `ERR unknown command 'foo', with args beginning with: 'a' 'b' ` for `argv` (name first).
/// As Redis: the name is cut at 128 bytes; arguments are quoted and followed by a space
/// while the list is under 128 bytes, each cut to what remains of 128.
pub fn unknown_command(argv: &[Bytes]) -> Reply {
    let name = argv.first().map(|n| c_str(n)).unwrap_or(b"");
    let mut listed: Vec<u8> = Vec::new();
    for arg in argv.iter().skip(1) {
        if listed.len() >= 128 {
            break;
        }
        let room = 128 - listed.len();
        let arg = c_str(arg);
        listed.push(b'\'');
        listed.extend_from_slice(&arg[..arg.len().min(room)]);
        listed.extend_from_slice(b"' ");
    }
    let mut text = b"ERR unknown command '".to_vec();
    text.extend_from_slice(&name[..name.len().min(128)]);
    text.extend_from_slice(b"', with args beginning with: ");
    text.extend_from_slice(&listed);
    formatted(text)
}

/// `ERR unknown subcommand 'foo'. Try CONFIG HELP.` for a container command (`container`
/// as sent; Redis upper-cases it) and its unknown subcommand.
pub fn unknown_subcommand(container: &[u8], subcommand: &[u8]) -> Reply {
    let subcommand = c_str(subcommand);
    let mut text = b"ERR unknown subcommand '".to_vec();
    text.extend_from_slice(&subcommand[..subcommand.len().min(128)]);
    text.extend_from_slice(b"'. Try ");
    text.extend(c_str(container).iter().map(u8::to_ascii_uppercase));
    text.extend_from_slice(b" HELP.");
    formatted(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(reply: Reply) -> String {
        match reply {
            Reply::Error(text) => String::from_utf8(text.to_vec()).unwrap(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn formatted_texts() {
        assert_eq!(text(wrong_number_of_arguments("LPUSH")), "ERR wrong number of arguments for 'lpush' command");
        assert_eq!(
            text(unknown_command(&[Bytes::from("foo"), Bytes::from("a"), Bytes::from("b")])),
            "ERR unknown command 'foo', with args beginning with: 'a' 'b' "
        );
        assert_eq!(
            text(unknown_command(&[Bytes::from("foo")])),
            "ERR unknown command 'foo', with args beginning with: "
        );
        assert_eq!(
            text(unknown_command(&[Bytes::from("f\r\no"), Bytes::from("x\0y")])),
            "ERR unknown command 'f  o', with args beginning with: 'x' "
        );
        assert_eq!(text(unknown_subcommand(b"config", b"nope")), "ERR unknown subcommand 'nope'. Try CONFIG HELP.");
    }

    #[test]
    fn unknown_command_args_capped_at_128() {
        let long = Bytes::from(vec![b'a'; 200]);
        let reply = text(unknown_command(&[Bytes::from("foo"), long.clone(), long]));
        let listed = reply.split_once("beginning with: ").unwrap().1;
        assert_eq!(listed, format!("'{}' ", "a".repeat(128)));
    }
}
