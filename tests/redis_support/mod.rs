//! The real `redis-server` side shared by the differential tests (`redis_differential`,
//! `redis_persistence_differential`): where the binary is, and a blocking RESP client.
//!
//! Included by test files with `mod redis_support;`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::BytesMut;

use obsim::proto::resp::{Reply, encode_command, parse_reply};

/// Debian's `redis-server` (`.ci/run` installs it); without it the test fails saying so.
pub fn redis_server_binary() -> PathBuf {
    let candidates = ["/usr/bin/redis-server", "/usr/local/bin/redis-server"];
    for candidate in candidates {
        if Path::new(candidate).exists() {
            return PathBuf::from(candidate);
        }
    }
    panic!(
        "redis-server is not installed (looked in {candidates:?}): install Debian's package \
         (`apt-get install redis-server`, as .ci/run does) to run the differential tests"
    );
}

/// One connection to a real server: a command in, its whole reply out.
pub struct RespClient {
    stream: TcpStream,
    buffer: BytesMut,
}

impl RespClient {
    /// Connects to the server on loopback `port`; a read waits at most 5 s.
    pub fn connect(port: u16) -> RespClient {
        let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        RespClient { stream, buffer: BytesMut::new() }
    }

    /// Sends `argv` and reads until one whole reply has arrived.
    pub fn call(&mut self, argv: &[&str]) -> Reply {
        let mut request = BytesMut::new();
        encode_command(argv, &mut request);
        self.stream.write_all(&request).unwrap();
        loop {
            if let Some(reply) = parse_reply(&mut self.buffer).expect("the real server speaks RESP2") {
                return reply;
            }
            let mut chunk = [0u8; 65536];
            let read = self.stream.read(&mut chunk).expect("the real server replies within 5 s");
            assert!(read > 0, "the real server closed the connection after {argv:?}");
            self.buffer.extend_from_slice(&chunk[..read]);
        }
    }
}
