//! One TCP connection as an application sees it: writes that succeed into a send buffer
//! while the link is down, delivery at the first retransmission after it heals, an error
//! when the budget runs out, and a reset for the peer that writes to a forgotten connection.
//!
//! Why a wrapper: turmoil's stream has no retransmission (see `mod.rs`). The wrapper
//! decides, per call, whether turmoil may carry the bytes now; when it may not, it keeps
//! them and a retransmitter task (one per stream at most, only while data is
//! unacknowledged) retries on Linux's schedule (`retransmit.rs`).

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use turmoil::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

use super::retransmit::{data_retransmission_at, syn_schedule};
use super::{ConnKey, Keepalive, Net, Path, current, current_host, millis};
use crate::vocab::EventKind;
use crate::world::true_elapsed_now;

/// Which end of a connection: the index into `ConnShared::abandoned`.
const CLIENT: usize = 0;
const SERVER: usize = 1;

/// A TCP connection with the kernel's retransmission semantics (module docs).
pub struct SimStream {
    /// turmoil's read half; `None` once the kernel abandoned the connection.
    read: Option<OwnedReadHalf>,
    end: Arc<Mutex<End>>,
    link: Link,
    /// Keepalive is on: reads note when a segment last came in.
    keepalive: bool,
}

/// Where a stream's packets go: its network, host names and connection key.
#[derive(Clone)]
struct Link {
    net: Net,
    local: Arc<str>,
    peer: Arc<str>,
    key: ConnKey,
    side: usize,
}

/// This end's kernel state, shared with its retransmitter.
struct End {
    /// turmoil's write half; `None` while the retransmitter writes, or once abandoned.
    write: Option<OwnedWriteHalf>,
    /// Bytes the application wrote that turmoil has not carried yet (the link is down, or
    /// they queue behind bytes that wait).
    send_buffer: Vec<u8>,
    /// True time the oldest unacknowledged byte was first sent; `None` when all is acked.
    unacked_since: Option<Duration>,
    /// A retransmitter task is running for this end.
    retransmitting: bool,
    /// The error every later call returns (`TimedOut` after the budget, `ConnectionReset`).
    error: Option<io::ErrorKind>,
    /// The application shut its write side down while bytes waited: FIN after them.
    shutdown_requested: bool,
    read_waker: Option<Waker>,
    write_waker: Option<Waker>,
    /// `TCP_USER_TIMEOUT`: how long data may stay unacknowledged.
    user_timeout: Duration,
    send_buffer_bytes_limit: usize,
    /// `SO_KEEPALIVE` settings, when the part enabled it.
    keepalive: Option<Keepalive>,
    /// True time a segment last came in from the peer (data, or the acknowledgement of
    /// ours); kept only while keepalive is on.
    last_received: Duration,
}

impl End {
    /// Fails this end with `kind`, waking whoever waits on it.
    fn fail(&mut self, kind: io::ErrorKind) {
        self.error.get_or_insert(kind);
        self.send_buffer = Vec::new();
        for waker in [self.read_waker.take(), self.write_waker.take()].into_iter().flatten() {
            waker.wake();
        }
    }
}

fn lock(end: &Mutex<End>) -> MutexGuard<'_, End> {
    end.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl SimStream {
    /// Connects to `host:port` as the running host. While either direction of the link is
    /// down, the SYN is retried on Linux's schedule (1, 2, 4 … s apart); a link that heals
    /// in time connects at the next attempt, otherwise connect fails with `TimedOut` after
    /// `tcp_syn_retries` (127 s for 6). A part's own connect timeout may end it sooner.
    pub async fn connect((host, port): (&str, u16)) -> io::Result<SimStream> {
        let net = current();
        let local = current_host();
        if net.is_up(&local, host) && net.is_up(host, &local) && net.refuses(host) {
            // A killed process's kernel lives on and answers the SYN with a reset.
            return Err(io::Error::new(io::ErrorKind::ConnectionRefused, format!("{host}:{port}: connection refused")));
        }
        // A SYN needs both ways (its SYN-ACK comes back); loss may take it like any segment.
        let both_up = |net: &Net| net.is_up(&local, host) && net.is_up(host, &local) && !net.lose_syn(&local, host);
        if !both_up(&net) {
            let (attempts, gives_up) = syn_schedule(net.config().syn_retries);
            let start = true_elapsed_now();
            let mut answered = false;
            for at in attempts.iter().skip(1) {
                // A SYN held by a stall arrives when it ends; one sent into a drop waits
                // for the next attempt.
                tokio::select! {
                    biased;
                    () = sleep_until(start + *at) => {}
                    () = net.released() => {}
                }
                if both_up(&net) {
                    answered = true;
                    break;
                }
            }
            if !answered {
                sleep_until(start + gives_up).await;
                let detail = format!("{local} -> {host}:{port}: no SYN-ACK in {} ms", millis(gives_up));
                net.record(&local, EventKind::TcpTimeout, detail.clone());
                return Err(io::Error::new(io::ErrorKind::TimedOut, detail));
            }
        }
        let stream = turmoil::net::TcpStream::connect((host, port)).await?;
        let key = (stream.local_addr()?, stream.peer_addr()?);
        Ok(SimStream::wrap(stream, Link { net, local, peer: Arc::from(host), key, side: CLIENT }))
    }

    /// Wraps a stream turmoil's listener accepted on the running host.
    pub(crate) fn accepted(stream: turmoil::net::TcpStream, peer: SocketAddr) -> io::Result<SimStream> {
        let net = current();
        let local = current_host();
        let peer_name: Arc<str> =
            Arc::from(turmoil::reverse_lookup(peer.ip()).unwrap_or_else(|| peer.ip().to_string()));
        let key = (peer, stream.local_addr()?);
        Ok(SimStream::wrap(stream, Link { net, local, peer: peer_name, key, side: SERVER }))
    }

    fn wrap(stream: turmoil::net::TcpStream, link: Link) -> SimStream {
        let config = link.net.config();
        link.net.lock().conns.entry(link.key).or_default().ends_open += 1;
        let (read, write) = stream.into_split();
        let end = End {
            write: Some(write),
            send_buffer: Vec::new(),
            unacked_since: None,
            retransmitting: false,
            error: None,
            shutdown_requested: false,
            read_waker: None,
            write_waker: None,
            user_timeout: config.user_timeout,
            send_buffer_bytes_limit: config.send_buffer_bytes_limit,
            keepalive: None,
            last_received: Duration::ZERO,
        };
        SimStream { read: Some(read), end: Arc::new(Mutex::new(end)), link, keepalive: false }
    }

    /// Closes abortively (`SO_LINGER` 0, or a process whose state is gone): with the way
    /// out up the close reaches the peer at once (turmoil sends a FIN, where a kernel would
    /// send RST: FIDELITY.md "Network / TCP"); with it down the RST is lost, this end's
    /// kernel forgets the connection, and the peer stays half-open until it writes and is
    /// reset.
    pub fn abort(mut self) {
        if self.link.is_up_out() {
            return;
        }
        let mut end = lock(&self.end);
        self.link.forget(&mut end);
        drop(end);
        if let Some(read) = self.read.take() {
            self.link.net.keep_abandoned(Box::new(read));
        }
    }

    /// Sets `TCP_USER_TIMEOUT` on this connection, as a part that sets the option does.
    pub fn set_user_timeout(&self, timeout: Duration) {
        assert!(!timeout.is_zero(), "a zero TCP_USER_TIMEOUT means the system default: leave it unset");
        lock(&self.end).user_timeout = timeout;
    }

    /// Turns `SO_KEEPALIVE` on with `keepalive`'s settings, as a part that sets the
    /// options does (`keepalive.rs`): an idle connection whose peer is gone fails after
    /// `keepalive.fails_after()`, or at the first probe that meets a reset.
    pub fn set_keepalive(&mut self, keepalive: Keepalive) {
        let mut end = lock(&self.end);
        end.last_received = true_elapsed_now();
        let first = end.keepalive.replace(keepalive).is_none();
        self.keepalive = true;
        if first {
            let (link, end_weak) = (self.link.clone(), Arc::downgrade(&self.end));
            drop(crate::world::spawn(async move { link.keep_alive(end_weak).await }));
        }
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        Ok(if self.link.side == CLIENT { self.link.key.1 } else { self.link.key.0 })
    }

    /// This end's address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(if self.link.side == CLIENT { self.link.key.0 } else { self.link.key.1 })
    }
}

impl Link {
    /// One look at the path (one lock); `draw_loss` when a segment is about to go out.
    fn look(&self, draw_loss: bool) -> Path {
        self.net.look(&self.local, &self.peer, (self.key, self.side), draw_loss)
    }

    fn is_up_out(&self) -> bool {
        self.net.is_up(&self.local, &self.peer)
    }

    /// A segment reached a peer whose kernel forgot the connection: it answered RST.
    fn reset(&self, end: &mut End) {
        self.net.record(
            &self.local,
            EventKind::TcpReset,
            format!("{} -> {}: connection reset by peer", self.local, self.peer),
        );
        end.fail(io::ErrorKind::ConnectionReset);
    }

    /// This end's kernel gives up: the error is the application's, the socket is kept
    /// silent (no FIN or RST crosses a dead link) and the peer is left half-open.
    fn abandon(&self, end: &mut End, unacked_for: Duration) {
        let detail = format!(
            "{} -> {}: data unacknowledged for {} ms (user timeout {} ms): connection abandoned",
            self.local,
            self.peer,
            millis(unacked_for),
            millis(end.user_timeout)
        );
        self.net.record(&self.local, EventKind::TcpTimeout, detail);
        self.forget(end);
        end.fail(io::ErrorKind::TimedOut);
    }

    /// Keepalive gave up: `probes` probes went unanswered (the reset Linux sends then is
    /// lost on the dead path), so the connection fails with `TimedOut`.
    fn abandon_idle(&self, end: &mut End, keepalive: Keepalive) {
        let detail = format!(
            "{} -> {}: {} keepalive probes unanswered (idle {} ms, interval {} ms): connection abandoned",
            self.local,
            self.peer,
            keepalive.probes,
            millis(keepalive.idle),
            millis(keepalive.interval)
        );
        self.net.record(&self.local, EventKind::TcpTimeout, detail);
        self.forget(end);
        end.fail(io::ErrorKind::TimedOut);
    }

    /// Probes an idle connection on Linux's keepalive schedule until it fails or the
    /// stream is gone. Bounded: every pass sleeps until an instant at least one second
    /// (the least idle or interval) ahead, and a run lasts a bounded time.
    async fn keep_alive(self, end_weak: Weak<Mutex<End>>) {
        let mut probes_out = 0u32;
        let mut next = Duration::ZERO;
        let mut last_probe = Duration::ZERO;
        loop {
            if next > Duration::ZERO {
                sleep_until(next).await;
            }
            let Some(end_arc) = end_weak.upgrade() else { return };
            let mut end = lock(&end_arc);
            let Some(keepalive) = end.keepalive else { return };
            if end.error.is_some() {
                return;
            }
            let now = true_elapsed_now();
            if end.retransmitting || !end.send_buffer.is_empty() {
                // Data in flight: the retransmission timer watches the peer.
                (probes_out, next) = (0, now + keepalive.idle);
                continue;
            }
            if probes_out > 0 && end.last_received > last_probe {
                probes_out = 0;
            }
            if probes_out == 0 && now < end.last_received + keepalive.idle {
                next = end.last_received + keepalive.idle;
                continue;
            }
            if probes_out >= keepalive.probes {
                self.abandon_idle(&mut end, keepalive);
                return;
            }
            let path = self.look(false);
            if path.out && path.peer_abandoned {
                self.reset(&mut end);
                return;
            }
            if path.out && path.back {
                end.last_received = now;
                (probes_out, next) = (0, now + keepalive.idle);
            } else {
                probes_out += 1;
                (last_probe, next) = (now, now + keepalive.interval);
            }
        }
    }

    /// This end's kernel forgets the connection without a word reaching the peer: its
    /// socket is kept silent and the peer, when it next writes, is reset.
    fn forget(&self, end: &mut End) {
        if let Some(write) = end.write.take() {
            self.net.keep_abandoned(Box::new(write));
        }
        if let Some(conn) = self.net.lock().conns.get_mut(&self.key) {
            conn.abandoned[self.side] = true;
        }
    }

    /// Starts the retransmitter unless one runs.
    fn ensure_retransmitter(&self, end_arc: &Arc<Mutex<End>>, end: &mut End) {
        if !end.retransmitting {
            end.retransmitting = true;
            let (link, end_arc) = (self.clone(), Arc::clone(end_arc));
            drop(crate::world::spawn(async move { link.retransmit(end_arc).await }));
        }
    }

    /// Retries this end's unacknowledged data at each RTO until it is delivered and
    /// acknowledged, or the user timeout passes. Bounded: each pass advances to the next
    /// retransmission instant, and the instants end at the timeout.
    async fn retransmit(self, end_arc: Arc<Mutex<End>>) {
        let mut attempt = 1u32;
        // Bounded: every pass either advances `attempt` (instants end at the deadline) or
        // follows a stall's release, and stalls are finitely many faults.
        loop {
            let (since, user_timeout) = {
                let end = lock(&end_arc);
                (end.unacked_since.expect("a retransmitter runs only for unacknowledged data"), end.user_timeout)
            };
            let deadline = since + user_timeout;
            let next = data_retransmission_at(attempt).map_or(deadline, |offset| (since + offset).min(deadline));
            tokio::select! {
                biased;
                () = sleep_until(next) => attempt = attempt.saturating_add(1),
                // A stall ended: what it held arrives now, the rest follows it.
                () = self.net.released() => {}
            }
            if lock(&end_arc).error.is_some() {
                break;
            }
            let path = self.look(true);
            if path.out && path.peer_abandoned {
                let mut end = lock(&end_arc);
                self.reset(&mut end);
                end.retransmitting = false;
                break;
            }
            if path.out && !path.lost && !self.deliver_buffered(&end_arc).await {
                break;
            }
            match self.settle(&end_arc, since, deadline) {
                Settled::Waiting => {}
                Settled::Abandoned => break,
                Settled::Acknowledged(shutdown) => {
                    if let Some(mut write) = shutdown {
                        // The FIN the application asked for, after its data.
                        let _ = write.shutdown().await;
                        lock(&end_arc).write = Some(write);
                    }
                    break;
                }
            }
        }
    }

    /// After a retransmission instant: acknowledged if both ways are up and nothing waits
    /// (with the write half to shut down if the application asked), abandoned at the
    /// deadline, or still waiting.
    fn settle(&self, end_arc: &Arc<Mutex<End>>, since: Duration, deadline: Duration) -> Settled {
        let path = self.look(false);
        let mut end = lock(end_arc);
        if path.out && path.back && end.send_buffer.is_empty() {
            if end.keepalive.is_some() {
                end.last_received = true_elapsed_now();
            }
            end.unacked_since = None;
            end.retransmitting = false;
            if let Some(waker) = end.write_waker.take() {
                waker.wake();
            }
            let shutdown = if std::mem::take(&mut end.shutdown_requested) { end.write.take() } else { None };
            return Settled::Acknowledged(shutdown);
        }
        let now = true_elapsed_now();
        if now >= deadline {
            self.abandon(&mut end, now - since);
            end.retransmitting = false;
            return Settled::Abandoned;
        }
        Settled::Waiting
    }

    /// Hands every buffered byte to turmoil (the link is up). Returns false if the
    /// connection failed meanwhile.
    async fn deliver_buffered(&self, end_arc: &Arc<Mutex<End>>) -> bool {
        // Bounded: each pass empties the buffer; the application can refill it only up to
        // its limit between passes, and passes stop once it stays empty.
        loop {
            let (bytes, write) = {
                let mut end = lock(end_arc);
                if end.send_buffer.is_empty() {
                    return true;
                }
                let Some(write) = end.write.take() else { return false };
                (std::mem::take(&mut end.send_buffer), write)
            };
            let mut write = write;
            let result = write.write_all(&bytes).await;
            let mut end = lock(end_arc);
            end.write = Some(write);
            if let Some(waker) = end.write_waker.take() {
                waker.wake();
            }
            if let Err(error) = result {
                end.fail(error.kind());
                return false;
            }
        }
    }
}

/// What a retransmission instant ended in.
enum Settled {
    Waiting,
    Abandoned,
    /// Everything acknowledged; the write half if a FIN was asked for.
    Acknowledged(Option<OwnedWriteHalf>),
}

/// Sleeps until true time `at` (now if it passed).
async fn sleep_until(at: Duration) {
    let now = true_elapsed_now();
    if at > now {
        tokio::time::sleep(at - now).await;
    }
}

impl SimStream {
    /// Peeks at received bytes without consuming them (an idle client watching for the
    /// server's FIN or reset); errors as a read would.
    pub fn poll_peek(&mut self, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<usize>> {
        {
            let mut end = lock(&self.end);
            if let Some(kind) = end.error {
                return Poll::Ready(Err(kind.into()));
            }
            if !end.read_waker.as_ref().is_some_and(|waker| waker.will_wake(cx.waker())) {
                end.read_waker = Some(cx.waker().clone());
            }
        }
        match self.read.as_mut() {
            Some(read) => Pin::new(read).poll_peek(cx, buf),
            None => Poll::Ready(Err(io::ErrorKind::NotConnected.into())),
        }
    }
}

impl AsyncRead for SimStream {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        {
            let mut end = lock(&this.end);
            if let Some(kind) = end.error {
                return Poll::Ready(Err(kind.into()));
            }
            if !end.read_waker.as_ref().is_some_and(|waker| waker.will_wake(cx.waker())) {
                end.read_waker = Some(cx.waker().clone());
            }
        }
        let filled_before = buf.filled().len();
        let read = match this.read.as_mut() {
            Some(read) => Pin::new(read).poll_read(cx, buf),
            None => Poll::Ready(Err(io::ErrorKind::NotConnected.into())),
        };
        if this.keepalive && matches!(read, Poll::Ready(Ok(()))) && buf.filled().len() > filled_before {
            lock(&this.end).last_received = true_elapsed_now();
        }
        read
    }
}

impl AsyncWrite for SimStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = &*self;
        let link = &this.link;
        let mut end = lock(&this.end);
        if let Some(kind) = end.error {
            return Poll::Ready(Err(kind.into()));
        }
        let queued = end.retransmitting || !end.send_buffer.is_empty();
        let path = link.look(!queued);
        let (up_out, up_back) = (path.out, path.back);
        if up_out && path.peer_abandoned {
            // The segment reaches a kernel that forgot the connection; the write itself
            // succeeded, the RST fails every later call.
            link.reset(&mut end);
            return Poll::Ready(Ok(buf.len()));
        }
        if up_out && !queued && !path.lost {
            let Some(write) = end.write.as_mut() else { return Poll::Ready(Err(io::ErrorKind::NotConnected.into())) };
            let written = Pin::new(write).poll_write(cx, buf);
            if up_back && end.keepalive.is_some() {
                // Its acknowledgement comes straight back: a received segment.
                end.last_received = true_elapsed_now();
            }
            if !up_back && matches!(written, Poll::Ready(Ok(n)) if n > 0) {
                // Delivered, but no acknowledgement can come back: the budget runs.
                end.unacked_since.get_or_insert_with(true_elapsed_now);
                link.ensure_retransmitter(&this.end, &mut end);
            }
            return written;
        }
        let room = end.send_buffer_bytes_limit.saturating_sub(end.send_buffer.len());
        if room == 0 {
            end.write_waker = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let accepted = room.min(buf.len());
        end.send_buffer.extend_from_slice(&buf[..accepted]);
        end.unacked_since.get_or_insert_with(true_elapsed_now);
        link.ensure_retransmitter(&this.end, &mut end);
        assert!(end.send_buffer.len() <= end.send_buffer_bytes_limit, "send buffer past its limit");
        Poll::Ready(Ok(accepted))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut end = lock(&self.end);
        if let Some(kind) = end.error {
            return Poll::Ready(Err(kind.into()));
        }
        if !end.send_buffer.is_empty() {
            // A socket's flush never waits for the network.
            return Poll::Ready(Ok(()));
        }
        match end.write.as_mut() {
            Some(write) => Pin::new(write).poll_flush(cx),
            None => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut end = lock(&self.end);
        if let Some(kind) = end.error {
            return Poll::Ready(Err(kind.into()));
        }
        if end.retransmitting || !end.send_buffer.is_empty() {
            // The FIN queues behind the waiting bytes; the retransmitter sends it.
            end.shutdown_requested = true;
            return Poll::Ready(Ok(()));
        }
        match end.write.as_mut() {
            Some(write) => Pin::new(write).poll_shutdown(cx),
            None => Poll::Ready(Err(io::ErrorKind::NotConnected.into())),
        }
    }
}

impl Drop for SimStream {
    fn drop(&mut self) {
        let timed_out = lock(&self.end).error == Some(io::ErrorKind::TimedOut);
        let powered_off = self.link.net.lock().is_powered_off(&self.link.local);
        if timed_out || powered_off {
            // Dropping them would send a FIN or RST that the dead link (or a host without
            // power) never sends.
            if let Some(read) = self.read.take() {
                self.link.net.keep_abandoned(Box::new(read));
            }
            if let Some(write) = lock(&self.end).write.take() {
                self.link.net.keep_abandoned(Box::new(write));
            }
        }
        let mut state = self.link.net.lock();
        if let Some(conn) = state.conns.get_mut(&self.link.key) {
            // Closed (by the application, or by turmoil when the host's software died): a
            // segment the peer sends from now on meets no socket and draws a reset.
            conn.abandoned[self.link.side] = true;
            conn.ends_open -= 1;
            if conn.ends_open == 0 {
                state.conns.remove(&self.link.key);
            }
        }
    }
}

impl std::fmt::Debug for SimStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TcpStream({} -> {})", self.link.local, self.link.peer)
    }
}
