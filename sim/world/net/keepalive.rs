//! `SO_KEEPALIVE`: how a kernel finds out that an idle connection's peer is gone.
//!
//! Why: a peer that dies silently (its power fails, a link drops while nothing is sent)
//! leaves an idle connection half-open for ever — no data is unacknowledged, so no
//! retransmission timer runs. A part that enables keepalive (Redis does by default:
//! `tcp-keepalive 300`) has its kernel probe the peer after `idle` without a received
//! segment, then every `interval`; after `probes` unanswered probes the connection fails
//! with `ETIMEDOUT`, and a probe that reaches a kernel which forgot the connection draws a
//! reset. Linux's `tcp_keepalive_timer` (net/ipv4/tcp_timer.c) probes only while nothing is
//! in flight: unacknowledged data is the retransmission timer's (FIDELITY.md "Network / TCP").

use std::time::Duration;

/// Keepalive probes sent at most before the connection fails (Linux caps `TCP_KEEPCNT`
/// at 127, `MAX_TCP_KEEPCNT` in include/net/tcp.h).
pub const KEEPALIVE_PROBES_LIMIT: u32 = 127;

/// One socket's keepalive settings: `TCP_KEEPIDLE`, `TCP_KEEPINTVL`, `TCP_KEEPCNT`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Keepalive {
    /// Time without a received segment before the first probe (`TCP_KEEPIDLE`).
    pub idle: Duration,
    /// Time between unanswered probes (`TCP_KEEPINTVL`).
    pub interval: Duration,
    /// Unanswered probes after which the connection fails (`TCP_KEEPCNT`).
    pub probes: u32,
}

impl Keepalive {
    /// Settings as a part sets them; each time is whole seconds of at least one, as the
    /// socket options take them, and `probes` is 1..=127.
    pub fn new(idle: Duration, interval: Duration, probes: u32) -> Keepalive {
        assert!(idle >= Duration::from_secs(1), "TCP_KEEPIDLE is at least 1 s");
        assert!(interval >= Duration::from_secs(1), "TCP_KEEPINTVL is at least 1 s");
        assert!((1..=KEEPALIVE_PROBES_LIMIT).contains(&probes), "TCP_KEEPCNT {probes} is not 1..=127");
        Keepalive { idle, interval, probes }
    }

    /// How long after the last received segment an unanswered connection fails: the idle
    /// time, then one interval per probe (the timer that finds `probes` probes out fails it).
    pub fn fails_after(&self) -> Duration {
        self.idle + self.interval * self.probes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Redis's `tcp-keepalive 300` sets idle 300 s, interval 100 s, 3 probes: a dead
    /// client is found 600 s after it last sent.
    #[test]
    fn redis_default_keepalive_fails_after_ten_minutes() {
        let keepalive = Keepalive::new(Duration::from_secs(300), Duration::from_secs(100), 3);
        assert_eq!(keepalive.fails_after(), Duration::from_secs(600));
    }
}
