//! The agent's upstream: the one Forward connection out_forward keeps to the aggregator,
//! handled like Fluent Bit's `flb_upstream` (FIDELITY.md, Agent: keepalive rows).
//!
//! Why this exists: a connection is kept between chunks (`net.keepalive`, on by default)
//! and must never be used once it is dead. Fluent Bit
//! - hands a connection back after each chunk and, with keepalive, keeps it available;
//!   without keepalive, or after an error, it is closed;
//! - closes an available connection idle for `net.keepalive_idle_timeout` (30 s) — its
//!   timer sweep runs every 1.5 s;
//! - watches every available connection for a close by the server and drops it at once,
//!   so a chunk never goes into a connection the server closed;
//! - closes a connection handed back more than `net.keepalive_max_recycle` (2000) times.
//!
//! Each close is an event (`agent.keepalive_close`) with its reason.

use std::time::Duration;

use tokio::time::Instant;

use crate::parts::PartCtx;

use super::config::AgentConfig;
use super::forward_client::ForwardConnection;
use crate::vocab::EventKind;

/// The connection, when one is open, and its keepalive bookkeeping.
pub(crate) struct Upstream {
    ctx: PartCtx,
    keepalive: bool,
    idle_timeout: Duration,
    max_recycle: u32,
    connection: Option<Open>,
}

/// An open connection.
struct Open {
    connection: ForwardConnection,
    /// When it was last handed back (Fluent Bit's `ts_available`).
    available_since: Instant,
    /// How many times it was handed back after a chunk (Fluent Bit's `ka_count`).
    recycled_count: u32,
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
            connection: None,
        }
    }

    /// Whether an open connection may carry the next chunk: one idle past the timeout or
    /// closed by the server is closed first (and `false` returned: connect afresh).
    pub(crate) fn ready_for_chunk(&mut self, now: Instant) -> bool {
        let Some(open) = self.connection.as_mut() else { return false };
        let reason = if now >= open.available_since + self.idle_timeout {
            Some(format!("idle for {}s (keepalive_idle_timeout)", self.idle_timeout.as_secs()))
        } else {
            open.connection.closed_by_peer_now()
        };
        match reason {
            Some(reason) => {
                self.close(&reason);
                false
            }
            None => true,
        }
    }

    /// The connection in use, if any.
    pub(crate) fn connection_mut(&mut self) -> Option<&mut ForwardConnection> {
        self.connection.as_mut().map(|open| &mut open.connection)
    }

    /// A connection was just made: it is the one in use.
    pub fn connected(&mut self, connection: ForwardConnection, now: Instant) {
        assert!(self.connection.is_none(), "one connection at a time");
        self.connection = Some(Open { connection, available_since: now, recycled_count: 0 });
    }

    /// The chunk went through: the connection is handed back. Kept for the next chunk with
    /// keepalive, unless it has now been recycled more than `keepalive_max_recycle` times.
    pub(crate) fn handed_back(&mut self, now: Instant) {
        let Some(open) = self.connection.as_mut() else { return };
        if !self.keepalive {
            self.connection = None;
            return;
        }
        open.recycled_count = open.recycled_count.saturating_add(1);
        open.available_since = now;
        if self.max_recycle > 0 && open.recycled_count > self.max_recycle {
            let reason =
                format!("handed back {} times (keepalive_max_recycle {})", open.recycled_count, self.max_recycle);
            self.close(&reason);
        }
    }

    /// The attempt failed: the connection is in error and is closed (no event: the failure
    /// is recorded by the caller).
    pub fn failed(&mut self) {
        self.connection = None;
    }

    /// Resolves when the open, idle connection must be closed — its idle timeout passed or
    /// the server closed it — with the reason; never without an open connection. Cancel-safe.
    pub(crate) async fn idle_close_due(&mut self) -> String {
        let Some(open) = self.connection.as_mut() else {
            return std::future::pending().await;
        };
        let deadline = open.available_since + self.idle_timeout;
        let idle_for = self.idle_timeout.as_secs();
        tokio::select! {
            biased;
            reason = open.connection.closed_by_peer() => reason,
            _ = tokio::time::sleep_until(deadline) => format!("idle for {idle_for}s (keepalive_idle_timeout)"),
        }
    }

    /// Closes the open connection for `reason` (recorded).
    pub fn close(&mut self, reason: &str) {
        if self.connection.take().is_some() {
            self.ctx.host.record(EventKind::AgentKeepaliveClose, reason.to_string());
        }
    }
}
