//! The simulated world: one seeded turmoil simulation, a `Clock` per host, named random
//! streams, and the event log whose hash identifies the run.
//!
//! Why one place: ARCHITECTURE.md §2 makes determinism the rule everything else rests on, and
//! §7 asks that the mapping from pipeline parts to turmoil hosts live in one place (large
//! fleets will later share hosts). Parts never build turmoil themselves; they get a
//! [`HostCtx`] with their name, clock, randomness and event log, and talk only through
//! turmoil's network.
//!
//! ```
//! use obsim::vocab::EventKind;
//! use obsim::world::WorldBuilder;
//! use std::time::Duration;
//!
//! let mut world = WorldBuilder::new(7).duration(Duration::from_secs(5)).build();
//! world.host("api", |ctx| async move {
//!     ctx.record(EventKind::Test, format!("host time {}", ctx.clock().now_unix_nanos()));
//!     Ok(())
//! });
//! let outcome = world.run_for(Duration::from_secs(1)).unwrap();
//! assert_eq!(outcome.events_count, 2); // host.start and test
//! ```

mod clock;
mod disk;
mod events;
pub mod net;
pub mod probe;
mod seed;
mod spawn;

pub use clock::{Clock, drift_nanos_over, true_elapsed_now};
pub use disk::{DISK_BYTES_LIMIT_DEFAULT, Disk, DiskFull};
pub use events::{EVENTS_KEPT_LIMIT_DEFAULT, Event, EventLog, EventLogHash};
pub use net::{Keepalive, Net, TcpConfig, TcpListener, TcpStream};
pub use seed::Seed;
pub use spawn::{LocalExec, spawn};

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::future::Future;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use crate::vocab::EventKind;
use rand_chacha::ChaCha8Rng;

/// The fixed epoch every run starts at unless a scenario says otherwise:
/// 2026-01-01T00:00:00Z. Fixed because turmoil's default is the machine's clock.
pub const EPOCH_UNIX_SECS_DEFAULT: u64 = 1_767_225_600;

/// The default tick: ARCHITECTURE.md §7 measured turmoil's cost per tick per host pair; budgets
/// are in seconds, so 10 ms resolution is plenty and ten times cheaper than 1 ms.
pub(crate) const TICK_DEFAULT: Duration = Duration::from_millis(10);

/// turmoil's per-socket queue bound, which is also a listener's accept backlog. turmoil
/// *panics* when a backlog overflows (its default is 64), and a fleet reconnecting at once
/// (every worker of every machine dials Redis after a partition) reaches thousands, so the
/// bound sits above the largest topology a scenario may declare (500 machines × 64 workers).
pub(crate) const TCP_CAPACITY: usize = 65_536;

/// How a host lost its software, and with it what it held (FIDELITY.md "Hosts").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostLoss {
    /// The process died (SIGKILL, or SIGTERM then SIGKILL after the draining time): its
    /// memory is gone; the kernel keeps what it wrote and closes its sockets (peers see the
    /// close at once).
    Process,
    /// The power went: memory and every unsynced write are gone, and its sockets die without
    /// a word (peers are left half-open).
    Power,
}

/// Called when a host loses its software (the pipeline tells the ledger).
type HostLostHook<'a> = Box<dyn FnMut(&str, HostLoss) + 'a>;

/// The name under which the harness itself records events (faults, crashes).
pub(crate) const WORLD_HOST: &str = "world";

/// Builds a [`World`]: seed first, everything else has a deterministic default.
#[derive(Clone, Debug)]
pub struct WorldBuilder {
    seed: Seed,
    epoch_unix_secs: u64,
    tick: Duration,
    duration: Duration,
    message_latency_min: Duration,
    message_latency_max: Duration,
    events_kept_limit: usize,
    tcp: TcpConfig,
}

impl WorldBuilder {
    /// A world for `seed` with the default epoch, tick and latencies, running at most 10 min.
    pub fn new(seed: u64) -> Self {
        WorldBuilder {
            seed: Seed(seed),
            epoch_unix_secs: EPOCH_UNIX_SECS_DEFAULT,
            tick: TICK_DEFAULT,
            duration: Duration::from_secs(600),
            message_latency_min: Duration::from_millis(1),
            message_latency_max: Duration::from_millis(20),
            events_kept_limit: EVENTS_KEPT_LIMIT_DEFAULT,
            tcp: TcpConfig::default(),
        }
    }

    /// The simulation step. Every host runs once per tick.
    pub fn tick(&mut self, value: Duration) -> &mut Self {
        assert!(!value.is_zero(), "a tick of zero never advances time");
        self.tick = value;
        self
    }

    /// The longest the world may run; turmoil is told the same (its default is 10 s).
    pub fn duration(&mut self, value: Duration) -> &mut Self {
        self.duration = value;
        self
    }

    /// The kernel settings every connection starts with (Linux's defaults unless set).
    pub fn tcp(&mut self, config: TcpConfig) -> &mut Self {
        self.tcp = config;
        self
    }

    /// Builds the world. turmoil always gets a seed and the fixed epoch (ARCHITECTURE.md §2).
    pub fn build<'a>(&self) -> World<'a> {
        let epoch = UNIX_EPOCH + Duration::from_secs(self.epoch_unix_secs);
        let sim = turmoil::Builder::new()
            .rng_seed(self.seed.derive_u64("turmoil"))
            .epoch(epoch)
            .tick_duration(self.tick)
            .simulation_duration(self.duration)
            .min_message_latency(self.message_latency_min)
            .max_message_latency(self.message_latency_max)
            .tcp_capacity(TCP_CAPACITY)
            .build();
        let events = EventLog::new(self.events_kept_limit);
        let events_for_net = events.clone();
        World {
            sim,
            seed: self.seed,
            epoch_unix_nanos: self.epoch_unix_secs.saturating_mul(1_000_000_000),
            duration: self.duration,
            events,
            message_latency: (self.message_latency_min, self.message_latency_max),
            hosts: BTreeMap::new(),
            sigterms: Rc::default(),
            kills_pending: Vec::new(),
            on_host_lost: None,
            world_host: Arc::from(WORLD_HOST),
            net: Net::new(self.tcp, events_for_net, self.seed.stream("net/loss")),
        }
    }
}

/// A running simulated world.
pub struct World<'a> {
    sim: turmoil::Sim<'a>,
    seed: Seed,
    epoch_unix_nanos: u64,
    duration: Duration,
    events: EventLog,
    /// The configured (min, max) message latency, to restore a link after a latency fault.
    message_latency: (Duration, Duration),
    /// Every host's clock and disk by name: the one host map; a BTreeMap so any walk is in
    /// name order.
    hosts: BTreeMap<Arc<str>, (Clock, Disk)>,
    /// Each host's SIGTERM for its current incarnation (a fresh one per start).
    sigterms: Rc<RefCell<BTreeMap<Arc<str>, tokio::sync::watch::Sender<bool>>>>,
    /// SIGKILLs due: (true time, host), after a SIGTERM's draining time.
    kills_pending: Vec<(Duration, Arc<str>)>,
    /// Told of every host loss (the pipeline's ledger).
    on_host_lost: Option<HostLostHook<'a>>,
    world_host: Arc<str>,
    /// Link states and every connection's kernel state (TCP's semantics over turmoil).
    net: Net,
}

/// What a host's software gets each time it (re)starts.
#[derive(Clone)]
pub struct HostCtx {
    name: Arc<str>,
    incarnation: u32,
    seed: Seed,
    clock: Clock,
    disk: Disk,
    events: EventLog,
    sigterm: Sigterm,
}

/// The SIGTERM of one host incarnation: a part that shuts down gracefully waits on it, does
/// what the real component does on SIGTERM, and returns (its process exits). Parts that
/// ignore it run on until the SIGKILL that follows the draining time.
#[derive(Clone, Debug)]
pub struct Sigterm {
    receiver: tokio::sync::watch::Receiver<bool>,
}

impl Sigterm {
    /// Resolves once SIGTERM has been sent (at once if it already was).
    pub async fn received(&self) {
        let mut receiver = self.receiver.clone();
        // The sender lives in the world until the host restarts; a closed channel means
        // this incarnation is over, which a part cannot observe (its task is gone).
        let _ = receiver.wait_for(|sent| *sent).await;
    }

    /// Whether SIGTERM has been sent.
    pub fn is_received(&self) -> bool {
        *self.receiver.borrow()
    }
}

impl HostCtx {
    /// The host's name, which is also its network name.
    pub fn name(&self) -> &Arc<str> {
        &self.name
    }

    /// How many times this host has started before (0 on first boot).
    pub fn incarnation(&self) -> u32 {
        self.incarnation
    }

    /// The host's clock: stamp everything this host writes with it.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// The host's disk: what survives a crash once synced.
    pub fn disk(&self) -> &Disk {
        &self.disk
    }

    /// The event log, to record what this host does.
    pub fn events(&self) -> &EventLog {
        &self.events
    }

    /// This incarnation's SIGTERM (`World::terminate`).
    pub fn sigterm(&self) -> &Sigterm {
        &self.sigterm
    }

    /// A random stream for `purpose` on this host in this incarnation. A restarted host
    /// draws fresh numbers (new incarnation), yet the same seed replays the same restart.
    pub fn rng(&self, purpose: &str) -> ChaCha8Rng {
        self.seed.stream(&format!("{}/{}/{purpose}", self.name, self.incarnation))
    }

    /// Record an event on this host at the current true time.
    pub fn record(&self, kind: EventKind, detail: String) {
        self.events.record(&self.name, kind, detail);
    }

    /// A host of the live runtime (`obsim serve`, `crate::live`): its clock reads
    /// `epoch_unix_nanos` (the machine's time when the live run started) plus the real time
    /// since, and the returned sender is its SIGTERM (Ctrl-C / SIGTERM of the process).
    pub(crate) fn live(
        name: &str,
        seed: Seed,
        epoch_unix_nanos: u64,
        events: EventLog,
    ) -> (HostCtx, tokio::sync::watch::Sender<bool>) {
        let (sender, receiver) = tokio::sync::watch::channel(false);
        let name: Arc<str> = Arc::from(name);
        let ctx = HostCtx {
            disk: Disk::new(Arc::clone(&name), DISK_BYTES_LIMIT_DEFAULT),
            name,
            incarnation: 0,
            seed,
            clock: Clock::new(epoch_unix_nanos),
            events,
            sigterm: Sigterm { receiver },
        };
        (ctx, sender)
    }
}

/// How a run ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunOutcome {
    /// True simulated time reached.
    pub elapsed: Duration,
    /// The event log's hash: the run's identity.
    pub hash: EventLogHash,
    /// Events recorded.
    pub events_count: u64,
}

/// Why a world could not go on.
#[derive(Debug)]
pub enum WorldError {
    /// A host's software returned an error; the message names the host.
    HostFailed { true_elapsed: Duration, message: String },
    /// `run_for` was asked to go past the world's configured duration.
    DurationExceeded { requested: Duration, duration: Duration },
}

impl std::fmt::Display for WorldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WorldError::HostFailed { true_elapsed, message } => {
                write!(f, "host failed at {:.3}s: {message}", true_elapsed.as_secs_f64())
            }
            WorldError::DurationExceeded { requested, duration } => {
                write!(f, "asked to run until {requested:?}, past the world's duration {duration:?}")
            }
        }
    }
}

impl std::error::Error for WorldError {}

impl<'a> World<'a> {
    /// The run's seed.
    pub fn seed(&self) -> Seed {
        self.seed
    }

    /// True simulated time since the run began.
    pub fn elapsed(&self) -> Duration {
        self.sim.elapsed()
    }

    /// The configured (min, max) per-message latency of every link.
    pub(crate) fn message_latency(&self) -> (Duration, Duration) {
        self.message_latency
    }

    /// The event log (shared with every host).
    pub fn events(&self) -> &EventLog {
        &self.events
    }

    /// Record an event as the harness (faults, checks), at the current true time.
    pub fn record(&self, kind: EventKind, detail: String) {
        self.events.record_at(self.sim.elapsed(), &self.world_host, kind, detail);
    }

    /// Adds a host named `name` whose software `software` builds; it is called again on
    /// every restart with a fresh [`HostCtx`] (same clock, next incarnation).
    pub fn host<F, Fut>(&mut self, name: &str, software: F) -> Clock
    where
        F: Fn(HostCtx) -> Fut + 'a,
        Fut: Future<Output = turmoil::Result> + 'static,
    {
        let name: Arc<str> = Arc::from(name);
        assert!(
            !self.hosts.contains_key(&name),
            "host {name} is registered twice: host names are the world's addresses"
        );
        let clock = Clock::new(self.epoch_unix_nanos);
        let disk = Disk::new(Arc::clone(&name), DISK_BYTES_LIMIT_DEFAULT);
        self.hosts.insert(Arc::clone(&name), (clock.clone(), disk.clone()));
        let incarnations = Rc::new(Cell::new(0u32));
        let (seed, events) = (self.seed, self.events.clone());
        let host_name = Arc::clone(&name);
        let sigterms = Rc::clone(&self.sigterms);
        self.sim.host(&*name, move || {
            let incarnation = incarnations.get();
            incarnations.set(incarnation + 1);
            let (sender, receiver) = tokio::sync::watch::channel(false);
            sigterms.borrow_mut().insert(Arc::clone(&host_name), sender);
            let ctx = HostCtx {
                sigterm: Sigterm { receiver },
                name: Arc::clone(&host_name),
                incarnation,
                seed,
                clock: clock.clone(),
                disk: disk.clone(),
                events: events.clone(),
            };
            let software = software(ctx.clone());
            let host = Some(Arc::clone(&ctx.name));
            net::scoped(host, async move {
                ctx.record(EventKind::HostStart, format!("incarnation {}", ctx.incarnation));
                let result = software.await;
                // The process exited: its other tasks end with it (and their sockets close).
                spawn::end_tasks_of(&ctx.name).await;
                // Errors name their host: turmoil reports them without it.
                result.map_err(|error| format!("host {}: {error}", ctx.name).into())
            })
        });
        self.hosts[&name].0.clone()
    }

    /// The clock of host `name`, for the fault injector.
    pub fn clock(&self, name: &str) -> Option<&Clock> {
        self.hosts.get(name).map(|(clock, _)| clock)
    }

    /// The disk of host `name`.
    pub fn disk(&self, name: &str) -> Option<&Disk> {
        self.hosts.get(name).map(|(_, disk)| disk)
    }

    /// Every host's name, in order.
    pub(crate) fn host_names(&self) -> impl Iterator<Item = &Arc<str>> {
        self.hosts.keys()
    }

    /// Tells the world whom to tell of every host loss (the pipeline's ledger).
    pub fn on_host_lost(&mut self, hook: impl FnMut(&str, HostLoss) + 'a) {
        self.on_host_lost = Some(Box::new(hook));
    }

    /// SIGKILLs host `name`'s software: in-memory state is gone; its kernel closes its
    /// connections (peers see the close) and keeps every write, synced or not.
    pub fn kill(&mut self, name: &str) {
        self.record(EventKind::HostKill, name.to_string());
        self.kills_pending.retain(|(_, host)| &**host != name);
        self.net.set_software_down(name, true);
        self.sim.crash(name);
        self.host_lost(name, HostLoss::Process);
    }

    /// Cuts host `name`'s power: its software stops, its sockets die without a FIN (peers
    /// are half-open and retransmit into silence), and its disk loses every unsynced write.
    pub fn power_loss(&mut self, name: &str) {
        self.record(EventKind::HostPowerLoss, name.to_string());
        self.kills_pending.retain(|(_, host)| &**host != name);
        self.net.set_power(name, false);
        self.net.set_software_down(name, true);
        self.sim.crash(name);
        if let Some((_, disk)) = self.hosts.get(name) {
            disk.power_loss();
        }
        self.host_lost(name, HostLoss::Power);
    }

    /// Sends host `name` SIGTERM and SIGKILLs it `draining` later (at once for zero), as
    /// Railway stops a deployment: the parts do their own shutdown in between.
    pub fn terminate(&mut self, name: &str, draining: Duration) {
        self.record(
            EventKind::HostTerminate,
            format!("{name}: SIGTERM, SIGKILL in {}", crate::units::format_duration(draining)),
        );
        if let Some(sender) = self.sigterms.borrow().get(name) {
            sender.send_replace(true);
        }
        if draining.is_zero() {
            self.kill(name);
        } else {
            let at = self.sim.elapsed() + draining;
            self.kills_pending.push((at, Arc::from(name)));
        }
    }

    /// Tells the hook of a host loss.
    fn host_lost(&mut self, name: &str, loss: HostLoss) {
        if let Some(hook) = self.on_host_lost.as_mut() {
            hook(name, loss);
        }
    }

    /// Starts host `name`'s software again (powering it on if its power was off): a new
    /// incarnation, whose kernel knows none of the old connections.
    pub fn restart(&mut self, name: &str) {
        self.record(EventKind::HostRestart, name.to_string());
        self.kills_pending.retain(|(_, host)| &**host != name);
        self.net.set_power(name, true);
        self.net.set_software_down(name, false);
        self.sim.bounce(name);
    }

    /// Drop all packets between `a` and `b` (both ways) until repaired. Connections see
    /// what real TCP shows: a stall, then either a catch-up or an error (`net`).
    pub fn partition(&mut self, a: &str, b: &str) {
        self.record(EventKind::LinkPartition, format!("{a} <-> {b}"));
        self.net.set_link(a, b, true, true);
    }

    /// Heal a partition between `a` and `b`.
    pub fn repair(&mut self, a: &str, b: &str) {
        self.record(EventKind::LinkRepair, format!("{a} <-> {b}"));
        self.net.set_link(a, b, false, false);
    }

    /// Holds packets between `a` and `b` in turmoil (a stall's in-flight part; the fault
    /// injector pairs it with `Net::set_held`).
    pub fn sim_hold(&mut self, a: &str, b: &str) {
        self.sim.hold(a, b);
    }

    /// Releases what `sim_hold` held.
    pub fn sim_release(&mut self, a: &str, b: &str) {
        self.sim.release(a, b);
    }

    /// The network's link states and kernel settings.
    pub fn net(&self) -> &Net {
        &self.net
    }

    /// Direct access to turmoil for fault kinds the world does not wrap yet.
    pub(crate) fn sim_mut(&mut self) -> &mut turmoil::Sim<'a> {
        &mut self.sim
    }

    /// Advance one tick (after the SIGKILLs that are due).
    pub fn step(&mut self) -> Result<(), WorldError> {
        self.kill_due();
        let (sim, net) = (&mut self.sim, &self.net);
        net::enter(net, || sim.step())
            .map(|_| ())
            .map_err(|error| WorldError::HostFailed { true_elapsed: self.sim.elapsed(), message: error.to_string() })
    }

    /// Step until true time reaches `until` (at most the world's duration).
    pub fn run_for(&mut self, until: Duration) -> Result<RunOutcome, WorldError> {
        if until > self.duration {
            return Err(WorldError::DurationExceeded { requested: until, duration: self.duration });
        }
        // Bounded: each step advances time by one non-zero tick.
        while self.sim.elapsed() < until {
            self.step()?;
        }
        Ok(self.outcome())
    }

    /// SIGKILLs every host whose draining time is over.
    fn kill_due(&mut self) {
        if self.kills_pending.is_empty() {
            return;
        }
        let now = self.sim.elapsed();
        let due: Vec<Arc<str>> =
            self.kills_pending.iter().filter(|(at, _)| *at <= now).map(|(_, host)| Arc::clone(host)).collect();
        for host in due {
            self.kill(&host);
        }
    }

    /// The outcome so far.
    pub fn outcome(&self) -> RunOutcome {
        RunOutcome { elapsed: self.sim.elapsed(), hash: self.events.hash(), events_count: self.events.events_count() }
    }
}
