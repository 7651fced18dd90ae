//! TCP as the kernel gives it to an application, over turmoil's network.
//!
//! Why: turmoil 0.7.2 carries bytes between hosts but has no retransmission — a segment
//! sent into a partition is gone and the connection is silently dead. Real TCP keeps
//! unacknowledged bytes in the socket's send buffer and retransmits them with backoff until
//! its budget runs out, so a link drop shorter than the budget is a stall that catches up
//! with nothing lost, and a longer one ends in an error the application sees (ETIMEDOUT),
//! while the silent peer is left half-open until it writes and gets a reset.
//! (ARCHITECTURE.md §13, FIDELITY.md "Network / TCP".)
//!
//! How: every connection a part makes or accepts is a [`TcpStream`] wrapping turmoil's.
//! Link drops are not turmoil partitions any more; they are the state of this registry
//! ([`Net::set_link`]), which each stream reads as it writes. A write into a direction that
//! is down waits in the stream's send buffer; a retransmitter task retries it on Linux's
//! RTO schedule (`retransmit.rs`) and delivers it at the first retry after the link
//! heals, or gives up at the budget. Connects retry their SYN on Linux's schedule.
//! Healthy traffic takes the direct path: one registry look-up per call, nothing queued.

mod keepalive;
mod listener;
pub mod live;
pub mod retransmit;
mod scope;
mod socket;
mod stream;

pub use keepalive::{KEEPALIVE_PROBES_LIMIT, Keepalive};
pub use listener::TcpListener;
pub use live::LiveNet;
pub use scope::{current_host, scoped};
pub use socket::{TcpStream, peer_name};

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::world::EventLog;

/// The kernel settings every connection starts with. Linux defaults
/// (Documentation/networking/ip-sysctl.rst); a part that sets a socket option overrides
/// its own connections' (`TcpStream::set_user_timeout`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpConfig {
    /// How long unacknowledged data may wait before the connection fails: the time
    /// `net.ipv4.tcp_retries2` retransmissions take (924.6 s for the default 15).
    pub user_timeout: Duration,
    /// `net.ipv4.tcp_syn_retries`: a connect with no answer fails after 127 s for 6.
    pub syn_retries: u32,
    /// The send buffer an application may fill while its data is unacknowledged; a write
    /// past it blocks. Linux autotunes `SO_SNDBUF` up to `tcp_wmem`'s maximum (4 MiB).
    pub send_buffer_bytes_limit: usize,
}

impl Default for TcpConfig {
    fn default() -> Self {
        TcpConfig {
            user_timeout: retransmit::retries_budget(retransmit::RETRIES2_DEFAULT),
            syn_retries: retransmit::SYN_RETRIES_DEFAULT,
            send_buffer_bytes_limit: 4 * 1024 * 1024,
        }
    }
}

/// One connection, named by its two ends as (client, server) addresses.
pub(crate) type ConnKey = (SocketAddr, SocketAddr);

/// What both ends of one connection know of each other: which end's kernel gave up on it
/// (its peer is then half-open: nothing tells it until it sends and meets a reset).
#[derive(Debug, Default)]
pub(crate) struct ConnShared {
    /// `[client, server]`: that end's kernel no longer knows the connection — it gave up
    /// after its budget, its application closed it, or its host's software died (turmoil
    /// closes a crashed host's sockets) — so a segment from the peer draws a reset.
    pub(crate) abandoned: [bool; 2],
    /// Ends still open (0, 1 or 2); the entry goes when none is.
    pub(crate) ends_open: u8,
}

/// The network's state: which directions of which links are down, what every connection's
/// ends know, and the sockets of connections a kernel abandoned.
#[derive(Default)]
pub(crate) struct NetState {
    /// Directions (from host, to host) whose packets are dropped.
    down: BTreeSet<(Arc<str>, Arc<str>)>,
    /// Directions whose packets are held in the network (a stall): not lost, delivered
    /// when the stall ends.
    held: BTreeSet<(Arc<str>, Arc<str>)>,
    /// Hosts whose power is off: nothing they sent is answered, nothing reaches them, and
    /// their sockets died without a FIN or RST (their peers are half-open).
    powered_off: BTreeSet<Arc<str>>,
    /// Hosts whose software is down while their kernel runs (killed, not restarted yet):
    /// a SYN to them is answered with a reset (connection refused) at once.
    software_down: BTreeSet<Arc<str>>,
    /// Directions whose segments are lost at random, with the fraction lost.
    loss: BTreeMap<(Arc<str>, Arc<str>), f64>,
    /// Draws which segments a lossy direction loses (seeded: the same run loses the same).
    loss_rng: Option<ChaCha8Rng>,
    /// Every open connection by its ends' addresses.
    pub(crate) conns: BTreeMap<ConnKey, ConnShared>,
    /// Turmoil socket halves of connections whose kernel gave up: kept (not dropped) until
    /// the world ends, because dropping them inside a host would send a FIN or RST that the
    /// real kernel, on a dead link, never gets through.
    pub(crate) abandoned_sockets: Vec<Box<dyn std::any::Any + Send>>,
    /// The kernel settings new connections start with.
    pub(crate) config: TcpConfig,
}

/// Abandoned sockets kept at most: one per connection that timed out, a few hundred bytes
/// each; a run reaching it has a connection churn no scenario is meant to produce.
const ABANDONED_SOCKETS_LIMIT: usize = 1 << 20;

impl NetState {
    /// Whether a drop or a stall blocks `from` → `to` (the sets hold the few links faults
    /// name, so a walk is cheap; empty when no fault is in force).
    fn blocked(&self, from: &str, to: &str) -> bool {
        let names = |set: &BTreeSet<(Arc<str>, Arc<str>)>| set.iter().any(|(f, t)| &**f == from && &**t == to);
        names(&self.down) || names(&self.held) || self.is_powered_off(from) || self.is_powered_off(to)
    }

    /// Whether `host`'s power is off (the set holds the few hosts a fault names).
    pub(crate) fn is_powered_off(&self, host: &str) -> bool {
        self.powered_off.iter().any(|off| &**off == host)
    }

    /// Draws whether loss on `from` → `to` takes the next segment.
    fn lose(&mut self, from: &str, to: &str) -> bool {
        let Some(rate) = self.loss.iter().find(|((f, t), _)| &**f == from && &**t == to).map(|(_, rate)| *rate) else {
            return false;
        };
        self.loss_rng.as_mut().is_some_and(|rng| rng.random_bool(rate))
    }
}

/// What one look at a connection's path saw.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Path {
    /// Packets from this end reach the peer.
    pub(crate) out: bool,
    /// Packets from the peer reach this end (acknowledgements come back).
    pub(crate) back: bool,
    /// The peer's kernel no longer knows the connection.
    pub(crate) peer_abandoned: bool,
    /// Loss took the next segment out (drawn only when asked).
    pub(crate) lost: bool,
}

/// The registry, shared by the world (which sets link states between steps) and every
/// stream (which reads them). Cloning shares it.
#[derive(Clone, Default)]
pub struct Net {
    state: Arc<Mutex<NetState>>,
    events: Option<EventLog>,
    /// Wakes every retransmitter and connecting socket when a stall ends: what the network
    /// held arrives at once, so the waiting bytes need no further RTO.
    released: Arc<tokio::sync::Notify>,
}

impl Net {
    /// A network with `config` whose streams record what their kernels do into `events`.
    pub fn new(config: TcpConfig, events: EventLog, loss_rng: ChaCha8Rng) -> Net {
        let state = NetState { config, loss_rng: Some(loss_rng), ..NetState::default() };
        Net { state: Arc::new(Mutex::new(state)), events: Some(events), released: Arc::default() }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, NetState> {
        // Everything runs on turmoil's one thread: the lock is never contended, and a
        // panic while it is held already failed the run.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The kernel settings new connections start with.
    pub fn config(&self) -> TcpConfig {
        self.lock().config
    }

    /// Sets the kernel settings connections made from now on start with (a sysctl changed
    /// while the world runs; existing connections keep theirs).
    pub fn set_config(&self, config: TcpConfig) {
        self.lock().config = config;
    }

    /// Sets the directions of link a ↔ b that drop packets: `down_ab` (a → b), `down_ba`.
    pub fn set_link(&self, a: &str, b: &str, down_ab: bool, down_ba: bool) {
        let mut state = self.lock();
        for (from, to, down) in [(a, b, down_ab), (b, a, down_ba)] {
            let key = (Arc::from(from), Arc::from(to));
            if down {
                state.down.insert(key);
            } else {
                state.down.remove(&key);
            }
        }
    }

    /// Turns `host`'s power off or on. Off: its sockets die silently as its software stops
    /// (`TcpStream`'s drop keeps them from sending a FIN), and packets to or from it go
    /// nowhere, so peers retransmit into silence, and SYNs to it go unanswered. On again: its
    /// new kernel knows none of the old connections, so a peer's next segment is reset.
    pub fn set_power(&self, host: &str, on: bool) {
        let mut state = self.lock();
        if on {
            state.powered_off.retain(|off| &**off != host);
        } else {
            state.powered_off.insert(Arc::from(host));
        }
    }

    /// Marks `host`'s software as down (or up again) while its kernel runs.
    pub fn set_software_down(&self, host: &str, down: bool) {
        let mut state = self.lock();
        if down {
            state.software_down.insert(Arc::from(host));
        } else {
            state.software_down.retain(|name| &**name != host);
        }
    }

    /// Whether a SYN to `host` meets a live kernel with no listener: refused at once.
    pub(crate) fn refuses(&self, host: &str) -> bool {
        let state = self.lock();
        !state.is_powered_off(host) && state.software_down.iter().any(|name| &**name == host)
    }

    /// Holds (or releases) packets both ways on link a ↔ b: a stall. For a connection it
    /// looks like a drop — no acknowledgement comes back, the budget runs — except that at
    /// the release what the network held arrives at once, so waiting bytes go then.
    pub fn set_held(&self, a: &str, b: &str, held: bool) {
        {
            let mut state = self.lock();
            for key in [(Arc::from(a), Arc::from(b)), (Arc::from(b), Arc::from(a))] {
                if held {
                    state.held.insert(key);
                } else {
                    state.held.remove(&key);
                }
            }
        }
        if !held {
            self.released.notify_waiters();
        }
    }

    /// Resolves when some stall ends (see `set_held`).
    pub(crate) async fn released(&self) {
        self.released.notified().await;
    }

    /// Sets the fraction of segments lost on link a ↔ b, both ways (0 heals it). A lost
    /// segment is not lost data: the sender retransmits it at its next RTO.
    pub fn set_loss(&self, a: &str, b: &str, rate: f64) {
        assert!((0.0..=1.0).contains(&rate), "loss rate {rate} is not a fraction");
        let mut state = self.lock();
        for key in [(Arc::from(a), Arc::from(b)), (Arc::from(b), Arc::from(a))] {
            if rate > 0.0 {
                state.loss.insert(key, rate);
            } else {
                state.loss.remove(&key);
            }
        }
    }

    /// Whether loss takes a SYN from `from` to `to` (one draw on a lossy direction).
    pub(crate) fn lose_syn(&self, from: &str, to: &str) -> bool {
        self.lock().lose(from, to)
    }

    /// Whether packets from `from` to `to` get through now.
    pub fn is_up(&self, from: &str, to: &str) -> bool {
        !self.lock().blocked(from, to)
    }

    /// One look at a connection's path under one lock (a write makes one): both ways, the
    /// peer's kernel, and — with `draw_loss` — whether loss takes the next segment out
    /// (one seeded draw on a lossy direction, none elsewhere).
    pub(crate) fn look(&self, local: &str, peer: &str, conn: (ConnKey, usize), draw_loss: bool) -> Path {
        let mut state = self.lock();
        let (key, side) = conn;
        let out = !state.blocked(local, peer);
        Path {
            out,
            back: !state.blocked(peer, local),
            peer_abandoned: state.conns.get(&key).is_some_and(|conn| conn.abandoned[1 - side]),
            lost: out && draw_loss && state.lose(local, peer),
        }
    }

    /// Records what a kernel did on `host`.
    pub(crate) fn record(&self, host: &str, kind: crate::vocab::EventKind, detail: String) {
        if let Some(events) = &self.events {
            events.record(&Arc::from(host), kind, detail);
        }
    }

    /// Keeps an abandoned socket half until the world ends (see `abandoned_sockets`).
    pub(crate) fn keep_abandoned(&self, socket: Box<dyn std::any::Any + Send>) {
        let mut state = self.lock();
        assert!(
            state.abandoned_sockets.len() < ABANDONED_SOCKETS_LIMIT,
            "more than {ABANDONED_SOCKETS_LIMIT} connections timed out in one run"
        );
        state.abandoned_sockets.push(socket);
    }
}

std::thread_local! {
    /// The network of the world being stepped on this thread (set by `World::step`).
    static CURRENT: std::cell::RefCell<Option<Net>> = const { std::cell::RefCell::new(None) };
}

/// Runs `step` with `net` as the current network, restoring the previous one after (a
/// test may step two worlds on one thread in turn).
pub(crate) fn enter<T>(net: &Net, step: impl FnOnce() -> T) -> T {
    let previous = CURRENT.with(|current| current.replace(Some(net.clone())));
    let result = step();
    CURRENT.with(|current| *current.borrow_mut() = previous);
    result
}

/// The network of the world being stepped. Panics outside a step: a socket exists only
/// inside a host's software.
pub(crate) fn current() -> Net {
    CURRENT.with(|current| current.borrow().clone()).expect("obsim's network is used only inside a world's step")
}

/// Duration as milliseconds for event details.
pub(crate) fn millis(duration: Duration) -> u128 {
    duration.as_millis()
}
