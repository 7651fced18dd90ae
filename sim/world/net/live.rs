//! The live network: the same parts on the machine's own sockets and clock (`obsim serve`).
//!
//! Why here: the parts talk through `world::TcpStream` / `world::TcpListener` and read true
//! time through `world::true_elapsed_now`. When the live runtime (`crate::live`) installs a
//! [`LiveNet`] on its thread, those calls go to `tokio::net` and the machine's clock instead
//! of turmoil, and the part code does not change (ARCHITECTURE.md §14). Nothing in the
//! simulation installs it: a world's step never sees it, so the simulation stays
//! deterministic.
//!
//! What it holds: the listeners the runtime bound before the parts started (a part binding
//! its well-known port, e.g. 24225, takes the socket bound on the `--listen` address), and
//! the resolver (a peer's host and port as `ctx.peers` names them, e.g. `railway-redis:6379`
//! → the `--redis` address).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The live runtime's network and clock, installed on its thread for as long as it runs.
/// Behind locks (never contended: one thread) so that the futures holding it stay `Send`,
/// as tonic's and hyper's connectors require of a dial.
pub struct LiveNet {
    /// When the live run started: true elapsed time is measured from here.
    started: Instant,
    /// Sockets bound for (host, well-known port), waiting for the part to bind.
    prebound: Mutex<BTreeMap<(Arc<str>, u16), std::net::TcpListener>>,
    /// Where a dial to (host, port) goes.
    resolver: Mutex<BTreeMap<(Arc<str>, u16), SocketAddr>>,
}

std::thread_local! {
    /// The live network of this thread, if the live runtime runs on it.
    static LIVE: RefCell<Option<Arc<LiveNet>>> = const { RefCell::new(None) };
}

impl LiveNet {
    /// A live network starting its clock now.
    #[allow(clippy::disallowed_methods)] // determinism: ok, live mode runs on the machine's clock
    pub fn new() -> LiveNet {
        LiveNet {
            started: Instant::now(), // determinism: ok, live mode runs on the machine's clock
            prebound: Mutex::default(),
            resolver: Mutex::default(),
        }
    }

    /// Binds `addr` (port 0 allowed) for `host`'s well-known `port`; a dial to any of
    /// `names` on `port` reaches it. Returns the address bound.
    pub fn listen(&self, host: &str, port: u16, addr: SocketAddr, names: &[&str]) -> io::Result<SocketAddr> {
        let listener = std::net::TcpListener::bind(addr)
            .map_err(|error| io::Error::new(error.kind(), format!("binding {addr} for {host}:{port}: {error}")))?;
        listener.set_nonblocking(true)?;
        let bound = listener.local_addr()?;
        lock(&self.prebound).insert((Arc::from(host), port), listener);
        let dial = if bound.ip().is_unspecified() {
            SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), bound.port())
        } else {
            bound
        };
        for name in names.iter().copied().chain([host]) {
            lock(&self.resolver).insert((Arc::from(name), port), dial);
        }
        Ok(bound)
    }

    /// A dial to `host:port` goes to `addr` (a peer outside this process).
    pub fn resolve_to(&self, host: &str, port: u16, addr: SocketAddr) {
        lock(&self.resolver).insert((Arc::from(host), port), addr);
    }

    /// How many bound sockets no part has taken yet.
    pub fn waiting_listeners_count(&self) -> usize {
        lock(&self.prebound).len()
    }

    /// The true time elapsed since the live run started.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }
}

impl Default for LiveNet {
    fn default() -> Self {
        LiveNet::new()
    }
}

/// Runs `body` with `live` installed on this thread, removing it after.
pub fn with_live<T>(live: Arc<LiveNet>, body: impl FnOnce() -> T) -> T {
    let previous = LIVE.with(|slot| slot.replace(Some(live)));
    let result = body();
    LIVE.with(|slot| *slot.borrow_mut() = previous);
    result
}

/// The live network of this thread, if any.
pub(crate) fn current() -> Option<Arc<LiveNet>> {
    LIVE.with(|slot| slot.borrow().clone())
}

/// True time since the live run started, when it runs on this thread.
pub(crate) fn elapsed() -> Option<Duration> {
    current().map(|live| live.elapsed())
}

/// The socket for `host`'s bind of `addr`: the one the runtime bound for its port. A port
/// the runtime did not map is refused, so a live part never takes a port nobody asked for.
pub(crate) fn take_listener(live: &LiveNet, host: &Arc<str>, addr: SocketAddr) -> io::Result<tokio::net::TcpListener> {
    let taken = lock(&live.prebound).remove(&(Arc::clone(host), addr.port()));
    match taken {
        Some(listener) => tokio::net::TcpListener::from_std(listener),
        None => Err(io::Error::new(
            io::ErrorKind::AddrNotAvailable,
            format!("live mode: {host} binds port {}, which no command-line flag maps to an address", addr.port()),
        )),
    }
}

/// Connects to `host:port` as the resolver says, else to `host:port` by the system's
/// resolver (a peer named by address or DNS name).
pub(crate) async fn connect(live: &LiveNet, host: &str, port: u16) -> io::Result<tokio::net::TcpStream> {
    let mapped = lock(&live.resolver).get(&(Arc::from(host), port)).copied();
    let stream = match mapped {
        Some(addr) => tokio::net::TcpStream::connect(addr).await,
        None => tokio::net::TcpStream::connect((host, port)).await,
    };
    let stream = stream.map_err(|error| {
        let to = mapped.map_or_else(|| format!("{host}:{port}"), |addr| format!("{host}:{port} ({addr})"));
        io::Error::new(error.kind(), format!("live mode: connecting to {to}: {error}"))
    })?;
    // Parts write frames whole and wait for answers: no Nagle delay, as their real clients.
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// Locks one of the live network's maps (one thread: never contended; a panic while it was
/// held already ended the live run).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
