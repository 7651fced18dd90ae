//! A listening socket whose accepted connections are [`TcpStream`]s (see `stream.rs`).

use std::io;
use std::net::SocketAddr;

use super::TcpStream;

/// A TCP listener on the running host.
pub struct TcpListener {
    inner: turmoil::net::TcpListener,
}

impl TcpListener {
    /// Binds `addr` on the running host.
    pub async fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
        Ok(TcpListener { inner: turmoil::net::TcpListener::bind(addr).await? })
    }

    /// The next connection a client completed, with the client's address.
    pub async fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let (stream, peer) = self.inner.accept().await?;
        Ok((TcpStream::accepted(stream, peer)?, peer))
    }

    /// The bound address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}
