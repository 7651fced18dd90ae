//! A connection that is plain TCP or TLS over it, for the parts that may speak either.
//!
//! Why a wrapper: every poll of a TLS stream may draw randomness (rustls), so its seeded
//! stream is installed around each poll (`provider::with_rng`); and a TLS write is only on
//! its way once rustls has handed its records to the socket, so a write here returns only
//! after the flush — a plaintext byte accepted but left in rustls's buffer would never be
//! retransmitted after a link heals, where the kernel's send buffer would be.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use rand_chacha::ChaCha8Rng;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::provider::with_rng;
use crate::world::TcpStream;

/// Plain TCP, or TLS (`T`: tokio-rustls's client or server stream) over it.
pub enum Transport<T> {
    /// Bytes as they are.
    Plain(TcpStream),
    /// TLS records.
    Tls(Box<Seeded<T>>),
}

/// A TLS stream with the randomness it draws from.
pub struct Seeded<T> {
    inner: T,
    rng: Option<ChaCha8Rng>,
    /// Bytes of a write rustls accepted whose records are not all on the socket yet: the
    /// write reports them once the flush is done.
    accepted_count: Option<usize>,
}

impl<T> Seeded<T> {
    /// `inner` drawing from `rng`.
    pub fn new(inner: T, rng: Option<ChaCha8Rng>) -> Seeded<T> {
        Seeded { inner, rng, accepted_count: None }
    }

    /// The TLS stream.
    pub fn get_ref(&self) -> &T {
        &self.inner
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> Transport<T> {
    /// With TLS, reads what the peer sent without waiting, for an idle connection's watch:
    /// `Ready(Ok(0))` when the peer closed (close_notify or FIN), `Ready(Ok(n))` when
    /// application bytes came. Plain TCP peeks instead. TLS records that carry no
    /// application data (alerts, handshake messages) are consumed.
    pub fn poll_watch(&mut self, context: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let mut byte = [0u8; 1];
        let mut buffer = ReadBuf::new(&mut byte);
        match self {
            Transport::Plain(stream) => stream.poll_peek(context, &mut buffer),
            Transport::Tls(seeded) => {
                ready!(Pin::new(seeded.as_mut()).poll_read(context, &mut buffer))?;
                Poll::Ready(Ok(buffer.filled().len()))
            }
        }
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncRead for Seeded<T> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let inner = &mut this.inner;
        with_rng(&mut this.rng, || Pin::new(inner).poll_read(cx, buf))
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Seeded<T> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let (inner, accepted) = (&mut this.inner, &mut this.accepted_count);
        with_rng(&mut this.rng, || {
            if accepted.is_none() {
                *accepted = Some(ready!(Pin::new(&mut *inner).poll_write(cx, buf))?);
            }
            let flushed = Pin::new(inner).poll_flush(cx);
            match flushed {
                Poll::Pending => Poll::Pending,
                Poll::Ready(result) => {
                    let count = accepted.take().expect("set above");
                    Poll::Ready(result.map(|()| count))
                }
            }
        })
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let inner = &mut this.inner;
        with_rng(&mut this.rng, || Pin::new(inner).poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let inner = &mut this.inner;
        with_rng(&mut this.rng, || Pin::new(inner).poll_shutdown(cx))
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncRead for Transport<T> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(stream) => Pin::new(stream).poll_read(cx, buf),
            Transport::Tls(seeded) => Pin::new(seeded.as_mut()).poll_read(cx, buf),
        }
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Transport<T> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Transport::Plain(stream) => Pin::new(stream).poll_write(cx, buf),
            Transport::Tls(seeded) => Pin::new(seeded.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(stream) => Pin::new(stream).poll_flush(cx),
            Transport::Tls(seeded) => Pin::new(seeded.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(stream) => Pin::new(stream).poll_shutdown(cx),
            Transport::Tls(seeded) => Pin::new(seeded.as_mut()).poll_shutdown(cx),
        }
    }
}
