//! When a Linux sender retries: the data retransmission timer (RTO) and the SYN timer, as
//! pure functions of time, so the model and its tests share one schedule.
//!
//! Why here and not in turmoil: turmoil 0.7.2 has no retransmission (a packet sent into a
//! partition is gone), so obsim decides, per write, when real TCP would have tried again
//! and when it would have given up (FIDELITY.md "Network / TCP").
//!
//! Data: the first retransmission fires one RTO after the oldest unacknowledged byte was
//! sent; each later one doubles the RTO, capped at `rto_max`. The connection gives up when
//! `user_timeout` has passed since that byte was sent (Linux's `TCP_USER_TIMEOUT`, or the
//! time `tcp_retries2` retransmissions take when none is set).
//!
//! SYN: attempts at 0, 1, 3, 7, … seconds (the initial SYN RTO doubling), `syn_retries`
//! retries, and the connect fails one more doubling after the last one.

use std::time::Duration;

/// Linux's `TCP_RTO_MIN` (include/net/tcp.h): the RTO on a fast path with no RTT history
/// worth more.
pub const RTO_MIN: Duration = Duration::from_millis(200);

/// Linux's `TCP_RTO_MAX` (include/net/tcp.h).
pub const RTO_MAX: Duration = Duration::from_secs(120);

/// Linux's `TCP_TIMEOUT_INIT` (include/net/tcp.h): the first SYN's retransmission timer.
pub const SYN_RTO_INITIAL: Duration = Duration::from_secs(1);

/// Linux's default `net.ipv4.tcp_retries2` (Documentation/networking/ip-sysctl.rst).
pub const RETRIES2_DEFAULT: u32 = 15;

/// Linux's default `net.ipv4.tcp_syn_retries` (Documentation/networking/ip-sysctl.rst).
pub const SYN_RETRIES_DEFAULT: u32 = 6;

/// Retransmissions are counted up to this many, a bound on every schedule loop (Linux
/// caps `tcp_retries2` at 255 too).
const RETRIES_LIMIT: u32 = 255;

/// How long `retries` retransmissions take from the first send, as Linux's
/// `tcp_model_timeout` (net/ipv4/tcp_timer.c) computes it: the RTO doubles from `RTO_MIN`
/// until it reaches `RTO_MAX`, then stays there. For the default 15 retries: 924.6 s.
pub fn retries_budget(retries: u32) -> Duration {
    assert!(retries <= RETRIES_LIMIT, "tcp_retries2 {retries} is above Linux's limit of {RETRIES_LIMIT}");
    // The last exponent at which the doubled RTO is still below RTO_MAX: ilog2(120 s / 200 ms) = 9.
    let linear_backoff_thresh = (RTO_MAX.as_millis() / RTO_MIN.as_millis()).ilog2();
    if retries <= linear_backoff_thresh {
        RTO_MIN * ((2u32 << retries) - 1)
    } else {
        RTO_MIN * ((2u32 << linear_backoff_thresh) - 1) + RTO_MAX * (retries - linear_backoff_thresh)
    }
}

/// The instant (as an offset from the first send) of retransmission number `attempt`
/// (1-based) of data, or `None` past the retry limit.
pub fn data_retransmission_at(attempt: u32) -> Option<Duration> {
    if attempt == 0 || attempt > RETRIES_LIMIT {
        return None;
    }
    let mut at = Duration::ZERO;
    let mut rto = RTO_MIN;
    for _ in 0..attempt {
        at += rto;
        rto = (rto * 2).min(RTO_MAX);
    }
    Some(at)
}

/// The instants (offsets from the first SYN) of every SYN attempt, the first at zero, and
/// the offset at which connect fails: 0, 1, 3, …, 63 s and 127 s for 6 retries.
pub fn syn_schedule(syn_retries: u32) -> (Vec<Duration>, Duration) {
    assert!(syn_retries <= RETRIES_LIMIT, "tcp_syn_retries {syn_retries} is above {RETRIES_LIMIT}");
    let mut attempts = Vec::with_capacity(syn_retries as usize + 1);
    let mut at = Duration::ZERO;
    let mut rto = SYN_RTO_INITIAL;
    for _ in 0..=syn_retries {
        attempts.push(at);
        at += rto;
        rto = (rto * 2).min(RTO_MAX);
    }
    (attempts, at)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The default budget is the 924.6 s Linux documents for `tcp_retries2 = 15`.
    #[test]
    fn the_default_retries_budget_is_924_6_seconds() {
        assert_eq!(retries_budget(RETRIES2_DEFAULT), Duration::from_millis(924_600));
        assert_eq!(retries_budget(0), RTO_MIN);
        assert_eq!(retries_budget(3), Duration::from_millis(3_000));
    }

    /// Data retransmissions double from 200 ms: 0.2, 0.6, 1.4, 3.0 s after the first send.
    #[test]
    fn data_retransmissions_double_from_rto_min() {
        let at: Vec<u128> = (1..=4).map(|n| data_retransmission_at(n).unwrap().as_millis()).collect();
        assert_eq!(at, [200, 600, 1_400, 3_000]);
        assert_eq!(data_retransmission_at(0), None);
        // The RTO stops doubling at 120 s: attempt 11 comes 120 s after attempt 10.
        let gap = data_retransmission_at(11).unwrap() - data_retransmission_at(10).unwrap();
        assert_eq!(gap, RTO_MAX);
    }

    /// Six SYN retries: attempts at 0, 1, 3, 7, 15, 31, 63 s, failure at 127 s.
    #[test]
    fn syn_attempts_follow_linux_defaults() {
        let (attempts, gives_up) = syn_schedule(SYN_RETRIES_DEFAULT);
        let secs: Vec<u64> = attempts.iter().map(Duration::as_secs).collect();
        assert_eq!(secs, [0, 1, 3, 7, 15, 31, 63]);
        assert_eq!(gives_up, Duration::from_secs(127));
    }
}
