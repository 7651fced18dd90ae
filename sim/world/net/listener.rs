//! A listening socket whose accepted connections are [`TcpStream`]s (see `socket.rs`): on
//! turmoil in the simulation, on the machine's kernel in live mode (`live.rs`).

use std::io;
use std::net::SocketAddr;

use super::{TcpStream, current_host, live};

/// A TCP listener on the running host.
pub struct TcpListener {
    inner: Backend,
}

/// Which network the listener is on.
enum Backend {
    /// The simulated network: turmoil's listener, connections wrapped in the kernel model.
    Sim(turmoil::net::TcpListener),
    /// The machine's network (`obsim serve`).
    Live(tokio::net::TcpListener),
}

impl TcpListener {
    /// Binds `addr` on the running host. In live mode the host takes the socket the live
    /// runtime bound for `addr`'s port (its command-line address).
    pub async fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
        let inner = match live::current() {
            Some(net) => Backend::Live(live::take_listener(&net, &current_host(), addr)?),
            None => Backend::Sim(turmoil::net::TcpListener::bind(addr).await?),
        };
        Ok(TcpListener { inner })
    }

    /// The next connection a client completed, with the client's address.
    pub async fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        match &self.inner {
            Backend::Sim(listener) => {
                let (stream, peer) = listener.accept().await?;
                Ok((TcpStream::sim(super::stream::SimStream::accepted(stream, peer)?), peer))
            }
            Backend::Live(listener) => {
                let (stream, peer) = listener.accept().await?;
                stream.set_nodelay(true)?;
                Ok((TcpStream::live(stream), peer))
            }
        }
    }

    /// The bound address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        match &self.inner {
            Backend::Sim(listener) => listener.local_addr(),
            Backend::Live(listener) => listener.local_addr(),
        }
    }
}
