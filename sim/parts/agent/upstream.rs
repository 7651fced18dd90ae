//! The agent's upstream: the Forward connections one out_forward worker keeps to the
//! aggregator, handled like Fluent Bit's `flb_upstream` (FIDELITY.md, Agent: keepalive and
//! workers rows).
//!
//! Why this exists: every flush takes a connection of its worker's pool for itself — an
//! available keepalive connection, oldest first, or a new one — so chunks in flight at the
//! same time each have their own connection. A connection is kept between chunks
//! (`net.keepalive`, on by default) and must never be used once it is dead. Fluent Bit
//! - hands a connection back after each chunk and, with keepalive, keeps it available (at
//!   the back of the queue); without keepalive, or after an error, it is closed;
//! - closes an available connection idle for `net.keepalive_idle_timeout` (30 s) — its
//!   timer sweep runs every 1.5 s;
//! - watches every available connection for a close by the server and drops it at once,
//!   so a chunk never goes into a connection the server closed;
//! - closes a connection handed back more than `net.keepalive_max_recycle` (2000) times;
//! - with `net.max_worker_connections` N > 0, refuses a new connection while the worker
//!   has N (busy + available), and the flush is retried.
//!
//! Each close is an event (`agent.keepalive_close`) with its reason.

use std::collections::VecDeque;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::Instant;

use crate::parts::PartCtx;

use super::config::AgentConfig;
use super::forward_client::ForwardConnection;
use crate::vocab::EventKind;

/// One worker's connections: the available ones (oldest first) and a count of the busy ones
/// (each owned by the flush using it).
pub(crate) struct Upstream {
    ctx: PartCtx,
    keepalive: bool,
    idle_timeout: Duration,
    max_recycle: u32,
    /// `net.max_worker_connections`: 0 = unlimited.
    connections_max: u32,
    available: VecDeque<Open>,
    busy_count: u32,
}

/// An open connection.
pub(crate) struct Open {
    pub(crate) connection: ForwardConnection,
    /// When it was last handed back (Fluent Bit's `ts_available`).
    available_since: Instant,
    /// How many times it was handed back after a chunk (Fluent Bit's `ka_count`).
    recycled_count: u32,
}

/// Why a flush got no connection from its worker's pool.
pub(crate) enum NoConnection {
    /// None available, but a new one may be made.
    Connect,
    /// `net.max_worker_connections` reached: the flush fails and is retried.
    Limit(u32),
}

impl Upstream {
    /// No connection yet; Fluent Bit connects on demand.
    pub fn new(ctx: PartCtx, config: &AgentConfig) -> Upstream {
        assert!(!config.keepalive_idle_timeout.is_zero(), "validated at load");
        Upstream {
            ctx,
            keepalive: config.keepalive,
            idle_timeout: config.keepalive_idle_timeout,
            max_recycle: config.keepalive_max_recycle,
            connections_max: config.max_worker_connections,
            available: VecDeque::new(),
            busy_count: 0,
        }
    }

    /// A connection for one flush: the oldest available one that is still good (those idle
    /// past the timeout or closed by the server are closed on the way), else a new one may
    /// be made unless the worker is at `net.max_worker_connections`.
    pub(crate) fn take(&mut self, now: Instant) -> Result<Open, NoConnection> {
        // Bounded: each pass removes one available connection.
        while let Some(mut open) = self.available.pop_front() {
            let reason = if now >= open.available_since + self.idle_timeout {
                Some(format!("idle for {}s (keepalive_idle_timeout)", self.idle_timeout.as_secs()))
            } else {
                open.connection.closed_by_peer_now()
            };
            match reason {
                Some(reason) => self.record_close(&reason),
                None => {
                    self.busy_count += 1;
                    return Ok(open);
                }
            }
        }
        let total = self.busy_count + self.available.len() as u32;
        if self.connections_max > 0 && total >= self.connections_max {
            return Err(NoConnection::Limit(self.connections_max));
        }
        Err(NoConnection::Connect)
    }

    /// A connection was just made for a flush (after `take` said `Connect`): it is busy.
    pub fn connected(&mut self, connection: ForwardConnection, now: Instant) -> Open {
        self.busy_count += 1;
        Open { connection, available_since: now, recycled_count: 0 }
    }

    /// The chunk went through: the connection is handed back. Kept for a later chunk with
    /// keepalive, unless it has now been recycled more than `keepalive_max_recycle` times.
    pub(crate) fn handed_back(&mut self, mut open: Open, now: Instant) {
        self.release_busy();
        if !self.keepalive {
            return;
        }
        open.recycled_count = open.recycled_count.saturating_add(1);
        open.available_since = now;
        if self.max_recycle > 0 && open.recycled_count > self.max_recycle {
            let reason =
                format!("handed back {} times (keepalive_max_recycle {})", open.recycled_count, self.max_recycle);
            self.record_close(&reason);
            return;
        }
        self.available.push_back(open);
    }

    /// The attempt failed on a connection (`Some`) or while making one (`None`): a
    /// connection in error is closed (no event: the failure is recorded by the caller).
    pub fn failed(&mut self, open: Option<Open>) {
        if open.is_some() {
            self.release_busy();
        }
    }

    fn release_busy(&mut self) {
        assert!(self.busy_count > 0, "a connection handed back that was never taken");
        self.busy_count -= 1;
    }

    /// When the oldest available connection's idle timeout runs out, if any is available.
    pub(crate) fn idle_deadline(&self) -> Option<Instant> {
        self.available.iter().map(|open| open.available_since + self.idle_timeout).min()
    }

    /// Polls every available connection for a close by the server: ready once one was
    /// closed (and recorded). Cancel-safe: it only peeks.
    pub(crate) fn poll_closed_by_peer(&mut self, context: &mut Context<'_>) -> Poll<()> {
        let mut index = 0;
        let mut closed = false;
        // Bounded: one look per available connection.
        while index < self.available.len() {
            match self.available[index].connection.poll_closed_by_peer(context) {
                Poll::Ready(reason) => {
                    self.available.remove(index);
                    self.record_close(&reason);
                    closed = true;
                }
                Poll::Pending => index += 1,
            }
        }
        if closed { Poll::Ready(()) } else { Poll::Pending }
    }

    /// Closes every available connection idle for `keepalive_idle_timeout` at `now`.
    pub(crate) fn close_idle(&mut self, now: Instant) {
        let idle_timeout = self.idle_timeout;
        let before = self.available.len();
        self.available.retain(|open| now < open.available_since + idle_timeout);
        for _ in self.available.len()..before {
            self.record_close(&format!("idle for {}s (keepalive_idle_timeout)", idle_timeout.as_secs()));
        }
    }

    /// Closes every available connection (the agent exits).
    pub(crate) fn close_all(&mut self, reason: &str) {
        for _ in 0..self.available.len() {
            self.record_close(reason);
        }
        self.available.clear();
    }

    fn record_close(&self, reason: &str) {
        self.ctx.host.record(EventKind::AgentKeepaliveClose, reason.to_string());
    }
}
