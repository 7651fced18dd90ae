//! How overlapping faults compose: the effective state of every target (a link, a host, a
//! clock, a Dash0 behaviour, a buffer limit, the job rate) is a pure function of the faults
//! in force on it, never the result of undoing one fault's change when it ends.
//!
//! Why: a short fault nested in a long one on the same target used to end the long one
//! early (the inner link drop's end repaired the link the outer one still held down). Each
//! fault is first resolved into what it contributes to each target it touches (`contribute`,
//! one arm per kind), and `compose` folds the contributions of every fault in force on one
//! target into its state, by the rule of its kind (README "How overlapping faults compose",
//! FIDELITY.md "Faults"):
//!
//! - link drops: down while any holds, per direction (`oneway` counts for its direction);
//! - link stalls: held while any holds; a drop beats a stall (the direction is down);
//! - latency: the largest `latency` and the largest `latency + jitter` in force;
//! - packet loss: independent loss processes, 1 − Π(1 − rate);
//! - restart / crash: down while any holds;
//! - clock skews and steps: offsets add, drifts add; each skew's own accumulated drift
//!   leaves with it;
//! - Dash0 errors: every script in force applies, the first (in schedule order) that covers
//!   a request and fires gives the status; slowness: the largest delay; rate limit: the
//!   smallest;
//! - buffer limits: the smallest per buffer (per agent host for `agent_mem_buf`);
//! - job-rate factors multiply;
//! - the aggregator's certificate: the latest-scheduled swap in force.

use std::fmt;
use std::time::Duration;

use super::spec::{BackpressureWhat, Dash0Protocol, Dash0Signal, FaultSpec, SlowStores};
use crate::parts::dash0::{ErrorScope, ErrorScript, ScriptedErrors, Slowness, Transport};
use crate::proto::otlp::Signal;
use crate::world::tls::CertChoice;

/// One thing faults act on.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Target {
    /// The link between two hosts, `a` < `b` by name (directions are relative to that order).
    Link {
        a: String,
        b: String,
    },
    /// A host that `restart` / `crash` take down.
    Host(String),
    /// A host's clock.
    Clock(String),
    Dash0Errors,
    Dash0Slow,
    Dash0RateLimit,
    RedisMaxmemory,
    AggregatorBuffer,
    /// One agent host's `mem_buf_limit`.
    AgentMemBuf(String),
    /// The client's job-rate factor.
    JobRate,
    /// The certificate the aggregator's in_forward serves.
    AggregatorCert,
}

/// What one fault does to one target.
#[derive(Clone, Debug, PartialEq)]
pub enum Contribution {
    /// Drops packets a → b (`ab`) and/or b → a (`ba`).
    Drop {
        ab: bool,
        ba: bool,
    },
    /// Holds packets both ways.
    Stall,
    /// Per-packet delay between `min` and `max`.
    Latency {
        min: Duration,
        max: Duration,
    },
    /// Loses this fraction of packets.
    Loss(f64),
    /// Keeps the host down, lost this way.
    HostDown(Outage),
    /// Bends the clock by `offset_nanos`, drifting `drift_ppm` from the fault's start.
    Skew {
        offset_nanos: i64,
        drift_ppm: f64,
    },
    /// Steps the clock by `step_nanos`.
    Step {
        step_nanos: i64,
    },
    Errors(ErrorScript),
    Slow(Slowness),
    RateLimit(u64),
    /// A buffer limit in bytes.
    Limit(u64),
    /// A job-rate multiplier.
    Factor(f64),
    /// Serves this certificate.
    Cert(CertChoice),
}

/// How a host is down, weakest first: a fault that loses more wins when several hold one
/// host (a power loss during a restart still takes the unsynced writes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Outage {
    /// SIGTERM, then SIGKILL after `draining` (a restart).
    Terminated { draining: Duration },
    /// SIGKILL (a kill, a crash).
    Killed,
    /// The power is off.
    PoweredOff,
}

/// The effective state of one link.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LinkState {
    /// Packets a → b are dropped.
    pub down_ab: bool,
    /// Packets b → a are dropped.
    pub down_ba: bool,
    /// Packets are held (in the directions not down).
    pub held: bool,
    /// Per-packet delay bounds in force (`None`: the world's default).
    pub latency: Option<(Duration, Duration)>,
    /// Fraction of packets lost.
    pub loss_rate: f64,
}

/// A clock's bend: the offset it reads off true time now, and its drift rate.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ClockBend {
    pub offset_nanos: i64,
    pub drift_ppm: f64,
}

/// The effective state of one target.
#[derive(Clone, Debug, PartialEq)]
pub enum State {
    Link(LinkState),
    /// `None`: up.
    Down(Option<Outage>),
    /// `None`: straight.
    Clock(Option<ClockBend>),
    Errors(Vec<ErrorScript>),
    Slow(Option<Slowness>),
    RateLimit(Option<u64>),
    Limit(Option<u64>),
    Factor(f64),
    /// `None`: the valid certificate.
    Cert(Option<CertChoice>),
}

/// One fault in force on a target: when it is scheduled (for order), when it really
/// started (for drift), and what it contributes.
#[derive(Clone, Debug)]
pub struct InForce<'a> {
    /// (`at`, index in the schedule): "earliest-scheduled" order.
    pub order: (Duration, usize),
    /// True time at which it started.
    pub started: Duration,
    pub contribution: &'a Contribution,
}

/// The state of `target` with no fault in force.
pub fn healthy(target: &Target) -> State {
    match target {
        Target::Link { .. } => State::Link(LinkState::default()),
        Target::Host(_) => State::Down(None),
        Target::Clock(_) => State::Clock(None),
        Target::Dash0Errors => State::Errors(Vec::new()),
        Target::Dash0Slow => State::Slow(None),
        Target::Dash0RateLimit => State::RateLimit(None),
        Target::RedisMaxmemory | Target::AggregatorBuffer | Target::AgentMemBuf(_) => State::Limit(None),
        Target::JobRate => State::Factor(1.0),
        Target::AggregatorCert => State::Cert(None),
    }
}

/// The effective state of `target` at true time `now` under the faults `in_force` on it
/// (any order; they are sorted into schedule order here). `factor_max` caps the product of
/// job-rate factors (the workload's bound).
pub fn compose(target: &Target, in_force: &[InForce<'_>], now: Duration, factor_max: f64) -> State {
    let mut sorted: Vec<&InForce<'_>> = in_force.iter().collect();
    sorted.sort_by_key(|fault| fault.order);
    let mut state = healthy(target);
    for fault in sorted {
        fold(&mut state, fault, now, factor_max);
    }
    state
}

/// Adds one fault's contribution to `state` by its kind's rule.
fn fold(state: &mut State, fault: &InForce<'_>, now: Duration, factor_max: f64) {
    match (state, fault.contribution) {
        (State::Link(link), Contribution::Drop { ab, ba }) => {
            link.down_ab |= *ab;
            link.down_ba |= *ba;
        }
        (State::Link(link), Contribution::Stall) => link.held = true,
        (State::Link(link), Contribution::Latency { min, max }) => {
            let (old_min, old_max) = link.latency.unwrap_or_default();
            link.latency = Some(((*min).max(old_min), (*max).max(old_max)));
        }
        (State::Link(link), Contribution::Loss(rate)) => {
            link.loss_rate = 1.0 - (1.0 - link.loss_rate) * (1.0 - rate.clamp(0.0, 1.0));
        }
        // The outage that loses most; among restarts, the shortest draining (the first SIGKILL).
        (State::Down(down), Contribution::HostDown(outage)) => {
            *down = Some(match *down {
                None => *outage,
                Some(Outage::Terminated { draining: a }) if matches!(outage, Outage::Terminated { .. }) => {
                    let Outage::Terminated { draining: b } = outage else { unreachable!("matched above") };
                    Outage::Terminated { draining: a.min(*b) }
                }
                Some(old) => old.max(*outage),
            });
        }
        (State::Clock(bend), Contribution::Skew { offset_nanos, drift_ppm }) => {
            let accumulated = crate::world::drift_nanos_over(*drift_ppm, now.saturating_sub(fault.started));
            let own = i128::from(*offset_nanos) + accumulated;
            add_bend(bend, own, *drift_ppm);
        }
        (State::Clock(bend), Contribution::Step { step_nanos }) => add_bend(bend, i128::from(*step_nanos), 0.0),
        (State::Errors(scripts), Contribution::Errors(script)) => scripts.push(script.clone()),
        (State::Slow(slow), Contribution::Slow(new)) => {
            *slow = Some(match slow {
                None => *new,
                Some(old) => Slowness {
                    delay: old.delay.max(new.delay),
                    stores_before_delay: old.stores_before_delay || new.stores_before_delay,
                },
            });
        }
        (State::RateLimit(limit), Contribution::RateLimit(new)) => {
            *limit = Some(limit.map_or(*new, |old| old.min(*new)))
        }
        (State::Limit(limit), Contribution::Limit(new)) => *limit = Some(limit.map_or(*new, |old| old.min(*new))),
        (State::Factor(factor), Contribution::Factor(new)) => *factor = (*factor * new).min(factor_max),
        // One certificate is served: the latest-scheduled swap in force (folded in order).
        (State::Cert(served), Contribution::Cert(choice)) => *served = Some(*choice),
        (state, contribution) => {
            unreachable!("contribution {contribution:?} does not act on a target in state {state:?}")
        }
    }
}

/// Adds an offset and a drift to a clock's bend, saturating the offset.
fn add_bend(bend: &mut Option<ClockBend>, offset_nanos: i128, drift_ppm: f64) {
    let old = bend.unwrap_or(ClockBend { offset_nanos: 0, drift_ppm: 0.0 });
    let offset = (i128::from(old.offset_nanos) + offset_nanos).clamp(i128::from(i64::MIN), i128::from(i64::MAX));
    *bend = Some(ClockBend { offset_nanos: offset as i64, drift_ppm: old.drift_ppm + drift_ppm });
}

/// Every target `fault` acts on and what it contributes to each, in the order its hosts
/// resolve (so events of one fault keep their order). `hosts_of` resolves a host selector.
/// Adding a fault kind adds one arm here.
pub fn contribute(fault: &FaultSpec, hosts_of: &dyn Fn(&str) -> Vec<String>) -> Vec<(Target, Contribution)> {
    let mut out: Vec<(Target, Contribution)> = Vec::new();
    let per_host = |selector: &str, make: &dyn Fn(String) -> Target, what: Contribution| {
        hosts_of(selector).into_iter().map(|host| (make(host), what.clone())).collect::<Vec<_>>()
    };
    match fault {
        FaultSpec::LinkDrop { from, to, oneway, .. } => {
            for (x, y) in pairs(&hosts_of(from), &hosts_of(to)) {
                let forward = x < y;
                let (ab, ba) = if *oneway { (forward, !forward) } else { (true, true) };
                merge(&mut out, link(&x, &y), Contribution::Drop { ab, ba });
            }
        }
        FaultSpec::LinkStall { from, to, .. } => links(&mut out, from, to, hosts_of, Contribution::Stall),
        FaultSpec::Latency { from, to, latency, jitter, .. } => {
            links(&mut out, from, to, hosts_of, Contribution::Latency { min: *latency, max: *latency + *jitter })
        }
        FaultSpec::PacketLoss { from, to, rate, .. } => links(&mut out, from, to, hosts_of, Contribution::Loss(*rate)),
        FaultSpec::Restart { target, draining, .. } => {
            out = per_host(target, &Target::Host, Contribution::HostDown(Outage::Terminated { draining: *draining }));
        }
        FaultSpec::Kill { target, .. } | FaultSpec::Crash { target, .. } => {
            out = per_host(target, &Target::Host, Contribution::HostDown(Outage::Killed));
        }
        FaultSpec::PowerLoss { target, .. } => {
            out = per_host(target, &Target::Host, Contribution::HostDown(Outage::PoweredOff));
        }
        FaultSpec::ClockStep { target, step, behind, .. } => {
            let step_nanos = signed_nanos(*step, *behind);
            out = per_host(target, &Target::Clock, Contribution::Step { step_nanos });
        }
        FaultSpec::ClockSkew { target, offset, behind, drift_ppm, .. } => {
            let offset_nanos = signed_nanos(*offset, *behind);
            out = per_host(target, &Target::Clock, Contribution::Skew { offset_nanos, drift_ppm: *drift_ppm });
        }
        FaultSpec::Dash0Errors { status, rate, retry_after, signal, protocol, .. } => {
            let errors = ScriptedErrors { status: *status, rate: *rate, retry_after: *retry_after };
            let scope = ErrorScope { signal: signal.map(otlp_signal), transport: protocol.map(transport) };
            out.push((Target::Dash0Errors, Contribution::Errors(ErrorScript { errors, scope })));
        }
        FaultSpec::Dash0Slow { delay, stores, .. } => {
            let stores_before_delay = *stores == SlowStores::BeforeDelay;
            out.push((Target::Dash0Slow, Contribution::Slow(Slowness { delay: *delay, stores_before_delay })));
        }
        FaultSpec::Dash0RateLimit { records_per_second, .. } => {
            out.push((Target::Dash0RateLimit, Contribution::RateLimit(*records_per_second)));
        }
        FaultSpec::Backpressure { what, bytes, factor, target, .. } => {
            let limit = || Contribution::Limit(bytes.expect("validated at load: bytes"));
            match what {
                BackpressureWhat::RedisMaxmemory => out.push((Target::RedisMaxmemory, limit())),
                BackpressureWhat::AggregatorBuffer => out.push((Target::AggregatorBuffer, limit())),
                BackpressureWhat::AgentMemBuf => {
                    let selector = target.as_deref().unwrap_or(super::AGENT_MEM_BUF_TARGET_DEFAULT);
                    out = per_host(selector, &Target::AgentMemBuf, limit());
                }
                BackpressureWhat::JobsPerSecond => {
                    out.push((Target::JobRate, Contribution::Factor(factor.expect("validated at load: factor"))));
                }
            }
        }
        FaultSpec::TlsCertExpired { .. } | FaultSpec::TlsWrongCa { .. } | FaultSpec::TlsHostnameMismatch { .. } => {
            out.push((Target::AggregatorCert, Contribution::Cert(served_cert(fault))));
        }
    }
    dedup_hosts(out)
}

/// The certificate a `tls_*` fault has the aggregator serve (`tls_cert_expired`: one whose
/// `not_after` is the fault's start).
fn served_cert(fault: &FaultSpec) -> CertChoice {
    match fault {
        FaultSpec::TlsCertExpired { at, .. } => CertChoice::ExpiredAt { true_elapsed: *at },
        FaultSpec::TlsWrongCa { .. } => CertChoice::WrongCa,
        FaultSpec::TlsHostnameMismatch { .. } => CertChoice::WrongName,
        other => unreachable!("{} swaps no certificate", other.kind()),
    }
}

/// One contribution per target: a selector pair naming a link twice (`from` and `to`
/// overlapping) merges its directions; any other repeat is the same contribution.
fn merge(out: &mut Vec<(Target, Contribution)>, target: Target, contribution: Contribution) {
    match out.iter_mut().find(|(seen, _)| *seen == target) {
        Some((_, Contribution::Drop { ab, ba })) => {
            if let Contribution::Drop { ab: more_ab, ba: more_ba } = contribution {
                *ab |= more_ab;
                *ba |= more_ba;
            }
        }
        Some(_) => {}
        None => out.push((target, contribution)),
    }
}

/// Keeps the first of repeated targets (a selector resolving a host twice).
fn dedup_hosts(out: Vec<(Target, Contribution)>) -> Vec<(Target, Contribution)> {
    let mut kept: Vec<(Target, Contribution)> = Vec::with_capacity(out.len());
    for (target, contribution) in out {
        merge(&mut kept, target, contribution);
    }
    kept
}

/// The same contribution on every link between `from` and `to`.
fn links(
    out: &mut Vec<(Target, Contribution)>,
    from: &str,
    to: &str,
    hosts_of: &dyn Fn(&str) -> Vec<String>,
    contribution: Contribution,
) {
    for (x, y) in pairs(&hosts_of(from), &hosts_of(to)) {
        merge(out, link(&x, &y), contribution.clone());
    }
}

/// The link target between two hosts, in name order.
fn link(x: &str, y: &str) -> Target {
    let (a, b) = if x < y { (x, y) } else { (y, x) };
    Target::Link { a: a.to_string(), b: b.to_string() }
}

/// Every (x, y) with x in `from`, y in `to`, x ≠ y, in order.
pub fn pairs(from: &[String], to: &[String]) -> Vec<(String, String)> {
    from.iter().flat_map(|a| to.iter().filter(move |b| *b != a).map(move |b| (a.clone(), b.clone()))).collect()
}

fn signed_nanos(duration: Duration, behind: bool) -> i64 {
    let nanos = i64::try_from(duration.as_nanos()).unwrap_or(i64::MAX);
    if behind { -nanos } else { nanos }
}

fn otlp_signal(signal: Dash0Signal) -> Signal {
    match signal {
        Dash0Signal::Logs => Signal::Logs,
        Dash0Signal::Spans => Signal::Traces,
        Dash0Signal::Metrics => Signal::Metrics,
    }
}

fn transport(protocol: Dash0Protocol) -> Transport {
    match protocol {
        Dash0Protocol::Http => Transport::Http,
        Dash0Protocol::Grpc => Transport::Grpc,
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Link { a, b } => write!(f, "link {a} <-> {b}"),
            Target::Host(host) => write!(f, "host {host}"),
            Target::Clock(host) => write!(f, "clock {host}"),
            Target::Dash0Errors => f.write_str("dash0 errors"),
            Target::Dash0Slow => f.write_str("dash0 slowness"),
            Target::Dash0RateLimit => f.write_str("dash0 rate limit"),
            Target::RedisMaxmemory => f.write_str("redis maxmemory"),
            Target::AggregatorBuffer => f.write_str("aggregator total_limit_size"),
            Target::AgentMemBuf(host) => write!(f, "agent mem_buf_limit on {host}"),
            Target::JobRate => f.write_str("job rate"),
            Target::AggregatorCert => f.write_str("aggregator certificate"),
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = |d: Duration| d.as_millis();
        match self {
            State::Link(link) => {
                let down = match (link.down_ab, link.down_ba) {
                    (true, true) => "down both ways",
                    (true, false) => "down a->b",
                    (false, true) => "down b->a",
                    (false, false) if link.held => "held",
                    (false, false) => "up",
                };
                write!(f, "{down}")?;
                if link.held && (link.down_ab || link.down_ba) {
                    f.write_str(", held the other way")?;
                }
                if let Some((min, max)) = link.latency {
                    write!(f, ", latency {}..{}ms", ms(min), ms(max))?;
                }
                if link.loss_rate > 0.0 {
                    write!(f, ", loss {}", link.loss_rate)?;
                }
                Ok(())
            }
            State::Down(None) => f.write_str("up"),
            State::Down(Some(Outage::Terminated { draining })) => {
                write!(f, "down (SIGTERM, SIGKILL after {})", crate::units::format_duration(*draining))
            }
            State::Down(Some(Outage::Killed)) => f.write_str("down (killed)"),
            State::Down(Some(Outage::PoweredOff)) => f.write_str("down (power off)"),
            State::Clock(None) => f.write_str("straight"),
            State::Clock(Some(bend)) => write!(f, "offset {}ns drift {}ppm", bend.offset_nanos, bend.drift_ppm),
            State::Errors(scripts) if scripts.is_empty() => f.write_str("off"),
            State::Errors(scripts) => {
                let statuses: Vec<String> =
                    scripts.iter().map(|s| format!("{} rate {}", s.errors.status, s.errors.rate)).collect();
                write!(f, "{}", statuses.join(" + "))
            }
            State::Slow(None) => f.write_str("off"),
            State::Slow(Some(slow)) => write!(f, "{}ms", ms(slow.delay)),
            State::RateLimit(None) | State::Limit(None) => f.write_str("off"),
            State::RateLimit(Some(limit)) => write!(f, "{limit}/s"),
            State::Limit(Some(bytes)) => write!(f, "{bytes} bytes"),
            State::Factor(factor) => write!(f, "x{factor}"),
            State::Cert(None) => f.write_str("valid"),
            State::Cert(Some(choice)) => write!(f, "{choice:?}"),
        }
    }
}
