//! The connection every part uses: the simulated kernel's (`stream.rs`, over turmoil) or
//! the machine's (`tokio::net`, in live mode). One type, so the parts are written once and
//! run on either network (ARCHITECTURE.md §14); each call dispatches on the backend.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::Keepalive;
use super::live;
use super::stream::SimStream;

/// A TCP connection of the running host.
pub struct TcpStream {
    inner: Backend,
}

/// Which network the connection is on.
enum Backend {
    /// The simulated network with the kernel's semantics (`stream.rs`).
    Sim(SimStream),
    /// The machine's network (`obsim serve`).
    Live(tokio::net::TcpStream),
}

impl TcpStream {
    /// A simulated connection.
    pub(crate) fn sim(stream: SimStream) -> TcpStream {
        TcpStream { inner: Backend::Sim(stream) }
    }

    /// A live connection.
    pub(crate) fn live(stream: tokio::net::TcpStream) -> TcpStream {
        TcpStream { inner: Backend::Live(stream) }
    }

    /// Connects to `host:port` as the running host: in the simulation with the kernel's
    /// SYN retries over turmoil (`SimStream::connect`); live, to the address the live
    /// runtime maps `host:port` to (else `host:port` as the system resolves it).
    pub async fn connect((host, port): (&str, u16)) -> io::Result<TcpStream> {
        match live::current() {
            Some(net) => Ok(TcpStream::live(live::connect(&net, host, port).await?)),
            None => Ok(TcpStream::sim(SimStream::connect((host, port)).await?)),
        }
    }

    /// Closes abortively (`SO_LINGER` 0): see `SimStream::abort`. Live, the socket is
    /// closed with a reset.
    pub fn abort(self) {
        match self.inner {
            Backend::Sim(stream) => stream.abort(),
            Backend::Live(stream) => {
                // A failed option still closes the socket (with a FIN): nothing to report.
                let _ = socket_linger_zero(&stream);
                drop(stream);
            }
        }
    }

    /// Sets `TCP_USER_TIMEOUT` on this connection. Live: not set (tokio has no such
    /// option; the machine's kernel keeps its own budget: FIDELITY.md "Live mode").
    pub fn set_user_timeout(&self, timeout: Duration) {
        if let Backend::Sim(stream) = &self.inner {
            stream.set_user_timeout(timeout);
        }
    }

    /// Turns `SO_KEEPALIVE` on with `keepalive`'s settings. Live: not set (FIDELITY.md
    /// "Live mode"): an idle dead peer is found when the part next writes.
    pub fn set_keepalive(&mut self, keepalive: Keepalive) {
        if let Backend::Sim(stream) = &mut self.inner {
            stream.set_keepalive(keepalive);
        }
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        match &self.inner {
            Backend::Sim(stream) => stream.peer_addr(),
            Backend::Live(stream) => stream.peer_addr(),
        }
    }

    /// This end's address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        match &self.inner {
            Backend::Sim(stream) => stream.local_addr(),
            Backend::Live(stream) => stream.local_addr(),
        }
    }

    /// Peeks at received bytes without consuming them (an idle client watching for the
    /// server's FIN or reset); errors as a read would.
    pub fn poll_peek(&mut self, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<usize>> {
        match &mut self.inner {
            Backend::Sim(stream) => stream.poll_peek(cx, buf),
            Backend::Live(stream) => stream.poll_peek(cx, buf),
        }
    }
}

/// `SO_LINGER` 0 on a live socket, so that its close sends a reset.
fn socket_linger_zero(stream: &tokio::net::TcpStream) -> io::Result<()> {
    stream.set_zero_linger()
}

impl AsyncRead for TcpStream {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match &mut self.inner {
            Backend::Sim(stream) => Pin::new(stream).poll_read(cx, buf),
            Backend::Live(stream) => Pin::new(stream).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for TcpStream {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match &mut self.inner {
            Backend::Sim(stream) => Pin::new(stream).poll_write(cx, buf),
            Backend::Live(stream) => Pin::new(stream).poll_write(cx, buf),
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.inner {
            Backend::Sim(stream) => Pin::new(stream).poll_flush(cx),
            Backend::Live(stream) => Pin::new(stream).poll_flush(cx),
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.inner {
            Backend::Sim(stream) => Pin::new(stream).poll_shutdown(cx),
            Backend::Live(stream) => Pin::new(stream).poll_shutdown(cx),
        }
    }
}

impl std::fmt::Debug for TcpStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.inner {
            Backend::Sim(stream) => stream.fmt(f),
            Backend::Live(stream) => write!(f, "TcpStream(live {:?} -> {:?})", stream.local_addr(), stream.peer_addr()),
        }
    }
}

/// The name of the peer at `addr` for logs: its host name in the simulation, its address
/// live.
pub fn peer_name(addr: SocketAddr) -> String {
    if live::current().is_some() {
        return addr.to_string();
    }
    turmoil::reverse_lookup(addr.ip()).unwrap_or_else(|| addr.ip().to_string())
}
