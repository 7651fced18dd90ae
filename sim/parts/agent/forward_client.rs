//! out_forward's connection to the aggregator: connect (under `net.connect_timeout`), the
//! shared-key handshake when a key is set (read HELO, send PING, read and verify PONG),
//! then one chunk per call: write its frame and, with `Require_ack_response`, wait for
//! `{"ack": chunk}` under the io timeout. With `tls` the TLS handshake comes first, in the
//! same `net.connect_timeout` as the TCP connect (Fluent Bit's `flb_tls_session_create`
//! counts the handshake against the connect timeout), and a failed handshake is a failed
//! connect (FIDELITY.md "Forward over TLS").
//!
//! Between chunks the connection is an idle keepalive connection: [`Upstream`](super)
//! watches it with [`ForwardConnection::closed_by_peer`] and never uses one the server
//! closed.
//!
//! Why every read has a timeout: a turmoil partition kills a TCP connection for good and a
//! write to a crashed peer vanishes; only a timeout notices, and the caller then drops the
//! connection and reconnects for the next attempt.

use std::sync::Arc;
use std::time::Duration;

use crate::world::TcpStream;
use crate::world::tls::{ClientStream, Transport};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::proto::forward::{ClientAuth, Helo, Limits, ServerFrame, StreamDecoder};
use crate::vocab::LossCause;

/// Largest frame the agent accepts from the server (HELO, PONG, acks are small).
const SERVER_FRAME_BYTES_LIMIT: usize = 64 * 1024;
/// Bytes read from the socket at a time.
const READ_BYTES: usize = 4096;

/// Why an attempt failed.
#[derive(Debug)]
pub(crate) enum SendError {
    /// The connection could not be made (refused, timed out).
    Connect(String),
    /// The TLS handshake failed (the reason as rustls gives it: the certificate error, the
    /// alert received).
    Tls(String),
    /// The server refused the shared key (PONG auth_result false) or its PONG did not prove
    /// the key.
    AuthRejected(String),
    /// The connection broke or a read timed out.
    Io(String),
}

impl SendError {
    /// The drop cause when the retries for this failure run out.
    pub fn give_up_cause(&self) -> LossCause {
        match self {
            SendError::AuthRejected(_) => LossCause::AuthRejected,
            SendError::Connect(_) | SendError::Tls(_) | SendError::Io(_) => LossCause::AgentRetryLimit,
        }
    }
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendError::Connect(reason) => write!(f, "connect failed: {reason}"),
            SendError::Tls(reason) => write!(f, "TLS handshake failed: {reason}"),
            SendError::AuthRejected(reason) => write!(f, "handshake rejected: {reason}"),
            SendError::Io(reason) => write!(f, "connection failed: {reason}"),
        }
    }
}

/// One established, authenticated connection.
pub(crate) struct ForwardConnection {
    stream: ClientStream,
    decoder: StreamDecoder,
    io_timeout: Duration,
}

/// Where and how to connect.
pub(crate) struct ConnectSettings<'a> {
    pub host: &'a str,
    pub port: u16,
    pub connect_timeout: Duration,
    pub io_timeout: Duration,
    /// `Some` when a shared key is configured.
    pub auth: Option<&'a ClientAuth>,
    /// `Some` with `tls` on.
    pub tls: Option<&'a ClientTls>,
}

/// The agent's TLS settings, made once per start.
pub(crate) struct ClientTls {
    pub config: Arc<rustls::ClientConfig>,
    /// `tls.vhost`, or the host dialled.
    pub vhost: String,
}

/// The TCP connection and, with TLS, its handshake (drawing its randomness from a stream
/// seeded by `rng`).
async fn connect_stream(
    settings: &ConnectSettings<'_>,
    rng: &mut rand_chacha::ChaCha8Rng,
) -> Result<ClientStream, SendError> {
    let stream = TcpStream::connect((settings.host, settings.port))
        .await
        .map_err(|error| SendError::Connect(error.to_string()))?;
    let Some(tls) = settings.tls else { return Ok(Transport::Plain(stream)) };
    let seed: [u8; 32] = rand::Rng::random(rng);
    let tls_rng = <rand_chacha::ChaCha8Rng as rand::SeedableRng>::from_seed(seed);
    crate::world::tls::connect(Arc::clone(&tls.config), &tls.vhost, stream, tls_rng).await.map_err(|error| {
        match crate::world::tls::rustls_error(&error) {
            Some(_) => SendError::Tls(crate::world::tls::failure_reason(&error)),
            None => SendError::Io(format!("during the TLS handshake: {error}")),
        }
    })
}

impl ForwardConnection {
    /// Connects and, with a shared key, completes the handshake.
    pub async fn connect(
        settings: &ConnectSettings<'_>,
        rng: &mut rand_chacha::ChaCha8Rng,
    ) -> Result<ForwardConnection, SendError> {
        let stream = match tokio::time::timeout(settings.connect_timeout, connect_stream(settings, rng)).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(error)) => return Err(error),
            Err(_) => {
                return Err(SendError::Connect(format!("no answer within {:?}", settings.connect_timeout)));
            }
        };
        let mut connection = ForwardConnection {
            stream,
            decoder: StreamDecoder::new(Limits::with_frame_bytes_limit(SERVER_FRAME_BYTES_LIMIT)),
            io_timeout: settings.io_timeout,
        };
        if let Some(auth) = settings.auth {
            connection.handshake(auth, rng).await?;
        }
        Ok(connection)
    }

    async fn handshake(&mut self, auth: &ClientAuth, rng: &mut rand_chacha::ChaCha8Rng) -> Result<(), SendError> {
        let helo: Helo = match self.read_frame().await? {
            ServerFrame::Helo(helo) => helo,
            other => return Err(SendError::Io(format!("expected HELO, got {other:?}"))),
        };
        let ping = auth.ping(&helo, rng);
        let mut wire = Vec::new();
        ping.encode(&mut wire);
        self.write(&wire).await?;
        let pong = match self.read_frame().await? {
            ServerFrame::Pong(pong) => pong,
            other => return Err(SendError::Io(format!("expected PONG, got {other:?}"))),
        };
        auth.verify_pong(&helo, &ping, &pong).map_err(|error| SendError::AuthRejected(error.to_string()))
    }

    /// Writes a chunk's frame; with `require_ack`, waits for its ack.
    pub async fn send(&mut self, frame: &[u8], chunk_id: &str, require_ack: bool) -> Result<(), SendError> {
        self.write(frame).await?;
        if !require_ack {
            return Ok(());
        }
        // One chunk is in flight per connection, so the next frame must be its ack.
        match self.read_frame().await? {
            ServerFrame::Ack(ack) if ack.chunk == chunk_id => Ok(()),
            other => Err(SendError::Io(format!("expected ack for {chunk_id}, got {other:?}"))),
        }
    }

    /// Whether the server has closed (or reset) this idle connection, looking without
    /// waiting: Fluent Bit's event loop watches every idle keepalive connection for a
    /// close and drops it at once (FIDELITY.md, Agent: keepalive). `Some(reason)` when it
    /// must not be used for a chunk.
    pub(crate) fn closed_by_peer_now(&mut self) -> Option<String> {
        let mut context = std::task::Context::from_waker(std::task::Waker::noop());
        match self.poll_closed_by_peer(&mut context) {
            std::task::Poll::Ready(reason) => Some(reason),
            std::task::Poll::Pending => None,
        }
    }

    /// Peeks at the socket: a FIN or a reset closes it; bytes from the server while no
    /// chunk is outstanding mean the stream is out of step (nothing in the Forward protocol
    /// sends them), so it is not reused either.
    pub(crate) fn poll_closed_by_peer(&mut self, context: &mut std::task::Context<'_>) -> std::task::Poll<String> {
        match self.stream.poll_watch(context) {
            std::task::Poll::Pending => std::task::Poll::Pending,
            std::task::Poll::Ready(Ok(0)) => std::task::Poll::Ready("closed by the server".into()),
            std::task::Poll::Ready(Ok(_)) => {
                std::task::Poll::Ready("unexpected bytes from the server while idle".into())
            }
            std::task::Poll::Ready(Err(error)) => std::task::Poll::Ready(format!("reset: {error}")),
        }
    }

    /// Writes `bytes` under the io timeout; with `net.io_timeout` 0 (Fluent Bit's default)
    /// the write waits as long as the kernel does (FIDELITY.md, Agent: net.io_timeout).
    async fn write(&mut self, bytes: &[u8]) -> Result<(), SendError> {
        if self.io_timeout.is_zero() {
            return self.stream.write_all(bytes).await.map_err(|error| SendError::Io(format!("write: {error}")));
        }
        match tokio::time::timeout(self.io_timeout, self.stream.write_all(bytes)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(SendError::Io(format!("write: {error}"))),
            Err(_) => Err(SendError::Io(format!("write timed out after {:?}", self.io_timeout))),
        }
    }

    /// Reads until one whole server frame has arrived, under the io timeout; with
    /// `net.io_timeout` 0 it waits until the frame comes or the kernel fails the connection —
    /// on a half-open connection with nothing left to retransmit, for ever.
    async fn read_frame(&mut self) -> Result<ServerFrame, SendError> {
        let now = tokio::time::Instant::now(); // determinism: ok (tokio time, simulated by turmoil)
        let deadline = (!self.io_timeout.is_zero()).then(|| now + self.io_timeout);
        let mut buffer = [0u8; READ_BYTES];
        loop {
            match self.decoder.next_server_frame() {
                Ok(Some(frame)) => return Ok(frame),
                Ok(None) => {}
                Err(error) => return Err(SendError::Io(format!("server frame: {error}"))),
            }
            let read = match deadline {
                Some(deadline) => tokio::time::timeout_at(deadline, self.stream.read(&mut buffer)).await,
                None => Ok(self.stream.read(&mut buffer).await),
            };
            match read {
                Ok(Ok(0)) => return Err(SendError::Io("closed by the server".into())),
                Ok(Ok(count)) => self
                    .decoder
                    .feed(&buffer[..count])
                    .map_err(|error| SendError::Io(format!("server bytes: {error}")))?,
                Ok(Err(error)) => return Err(SendError::Io(format!("read: {error}"))),
                Err(_) => {
                    return Err(SendError::Io(format!("no answer within {:?}", self.io_timeout)));
                }
            }
        }
    }
}
