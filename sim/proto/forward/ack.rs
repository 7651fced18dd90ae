//! The server's acknowledgement `{"ack": chunk}`: sent once a frame that carried the
//! `chunk` option is safely in the server's buffer, so the client may forget the chunk.

use super::error::ForwardError;
use super::reader::Reader;
use super::write::{write_map_len, write_str};

/// A decoded ack.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ack {
    /// The chunk id echoed from the acknowledged frame's options.
    pub chunk: String,
}

/// Appends `{"ack": chunk}`.
pub fn encode_ack(out: &mut Vec<u8>, chunk: &str) {
    write_map_len(out, 1);
    write_str(out, "ack");
    write_str(out, chunk);
}

/// Parses one complete ack frame; other keys are skipped, a missing `ack` is an error.
pub fn parse_ack(frame: &[u8]) -> Result<Ack, ForwardError> {
    let mut reader = Reader::new(frame);
    let pairs = reader.read_map_len("ack response")?;
    let mut chunk = None;
    // Bounded: each pair consumes at least two bytes of the frame.
    for _ in 0..pairs {
        if reader.read_str("ack response key")? == "ack" {
            let value = reader.read_str_or_bin("ack")?;
            let value = std::str::from_utf8(value).map_err(|_| ForwardError::InvalidUtf8 { what: "ack" })?;
            chunk = Some(value.to_owned());
        } else {
            reader.skip_value("ack response value")?;
        }
    }
    reader.expect_end("ack response")?;
    let chunk = chunk
        .ok_or(ForwardError::UnexpectedMessage { expected: "ack", got: "a map without the key \"ack\"".to_owned() })?;
    Ok(Ack { chunk })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ack_round_trips() {
        let mut out = Vec::new();
        encode_ack(&mut out, "p8n9gmxTQVC8/nh2wlKKeQ==");
        assert_eq!(out[..5], [0x81, 0xa3, b'a', b'c', b'k']);
        assert_eq!(parse_ack(&out), Ok(Ack { chunk: "p8n9gmxTQVC8/nh2wlKKeQ==".to_owned() }));
    }

    #[test]
    fn map_without_ack_is_refused() {
        let bytes = [0x81, 0xa1, b'x', 0x01];
        assert!(matches!(parse_ack(&bytes), Err(ForwardError::UnexpectedMessage { expected: "ack", .. })));
    }
}
