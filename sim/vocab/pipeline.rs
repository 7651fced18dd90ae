//! The pipeline written down once: its parts in custody order, the hosts they run on in
//! registration order, and the hops between them. Everything else that depends on the
//! pipeline's shape is derived from these three lists (ARCHITECTURE.md §9):
//!
//! - the ledger's custody order, which names the last custodian of a silently lost record
//!   ([`custody_rank`], also `Part`'s `Ord`);
//! - the timeline's per-part series and the reports' part order ([`PARTS`]);
//! - the check layer's "next hop" in a silent-loss message ([`next_hops_text`]);
//! - the wiring: which parts run on which host, in which order ([`HOSTS`]), and where each
//!   part dials its peers ([`Peers`], handed to every part by the wiring).
//!
//! Why at the bottom: these are names and facts, not behaviour; the ledger (below the
//! parts), the parts, the wiring and the reports all read them, so they must sit under all
//! of those.

use std::fmt;
use std::sync::Arc;

use super::{Part, hosts, ports};

/// The parts in custody order: every log or span hop goes from an earlier part to a later
/// one (a test holds that), so of the parts that ever released a record, the latest one in
/// this order held it last.
///
/// Why this order: a record is born at the app and ends at Dash0. The span path (the
/// collector) and the log path (agent, aggregator, Redis, shipper) share only those two
/// ends, so where the collector sits between them does not change any blame; it sits next
/// to the agent because both run beside the app.
pub(crate) const PARTS: [Part; 7] =
    [Part::App, Part::Agent, Part::Collector, Part::Aggregator, Part::Redis, Part::Shipper, Part::Dash0];

/// A part's place in [`PARTS`]: the custody rank (0 = the app, where records are born).
pub(crate) fn custody_rank(part: Part) -> usize {
    // A linear search of 7: cheaper than a table that could drift from `PARTS`.
    let rank = PARTS.iter().position(|listed| *listed == part);
    rank.unwrap_or_else(|| panic!("part {part:?} is missing from vocab::pipeline::PARTS"))
}

/// The part spelled `name` (`Part::as_str`), if any.
#[cfg(test)]
pub(crate) fn part_named(name: &str) -> Option<Part> {
    PARTS.iter().copied().find(|part| part.as_str() == name)
}

/// What flows over a hop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Flow {
    /// Log records (accounted by the ledger).
    Logs,
    /// Spans (accounted by the ledger).
    Spans,
    /// Metric points (counted by the metrics check, not the ledger).
    Metrics,
    /// The job queue: the API pushes jobs, the machines' workers pull them. Not telemetry.
    Jobs,
}

impl Flow {
    /// Whether the ledger accounts this flow's records (so custody follows the hop).
    pub(crate) fn accounted(self) -> bool {
        matches!(self, Flow::Logs | Flow::Spans)
    }
}

/// Which end of a network hop opens the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dialer {
    /// The sending part pushes (Fluent Bit's out_forward, the collector's exporter…).
    Sender,
    /// The receiving part pulls (the shipper drains Redis).
    Receiver,
}

/// How records cross a hop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Via {
    /// In memory on one host: the app's pipes to its agent and collector.
    Pipe,
    /// Over the simulated network to the listener's `port`, opened by `dialer`.
    Dial { port: u16, dialer: Dialer },
}

/// One hop of the pipeline: `flows` go from `from` to `to`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Hop {
    pub from: Part,
    pub to: Part,
    pub(crate) flows: &'static [Flow],
    pub via: Via,
}

impl Hop {
    /// The part that opens the connection and the part that listens, for a network hop.
    pub(crate) fn dial(&self) -> Option<(Part, Part, u16)> {
        match self.via {
            Via::Pipe => None,
            Via::Dial { port, dialer: Dialer::Sender } => Some((self.from, self.to, port)),
            Via::Dial { port, dialer: Dialer::Receiver } => Some((self.to, self.from, port)),
        }
    }
}

/// Every hop. A part's hops are listed in the order its "next hop" is named (the app's:
/// agent, collector, aggregator).
pub(crate) const HOPS: [Hop; 9] = [
    Hop { from: Part::App, to: Part::Agent, flows: &[Flow::Logs], via: Via::Pipe },
    Hop { from: Part::App, to: Part::Collector, flows: &[Flow::Spans, Flow::Metrics], via: Via::Pipe },
    // Dev hosts post their log lines to Fluentd's in_http.
    Hop {
        from: Part::App,
        to: Part::Aggregator,
        flows: &[Flow::Logs],
        via: Via::Dial { port: ports::AGGREGATOR_HTTP, dialer: Dialer::Sender },
    },
    Hop {
        from: Part::App,
        to: Part::Redis,
        flows: &[Flow::Jobs],
        via: Via::Dial { port: ports::REDIS, dialer: Dialer::Sender },
    },
    Hop {
        from: Part::Agent,
        to: Part::Aggregator,
        flows: &[Flow::Logs],
        via: Via::Dial { port: ports::AGGREGATOR_FORWARD, dialer: Dialer::Sender },
    },
    Hop {
        from: Part::Collector,
        to: Part::Dash0,
        flows: &[Flow::Spans, Flow::Metrics],
        via: Via::Dial { port: ports::DASH0_GRPC, dialer: Dialer::Sender },
    },
    Hop {
        from: Part::Aggregator,
        to: Part::Redis,
        flows: &[Flow::Logs],
        via: Via::Dial { port: ports::REDIS, dialer: Dialer::Sender },
    },
    Hop {
        from: Part::Redis,
        to: Part::Shipper,
        flows: &[Flow::Logs],
        via: Via::Dial { port: ports::REDIS, dialer: Dialer::Receiver },
    },
    Hop {
        from: Part::Shipper,
        to: Part::Dash0,
        flows: &[Flow::Logs],
        via: Via::Dial { port: ports::DASH0_HTTP, dialer: Dialer::Sender },
    },
];

/// The parts `part` hands ledger-accounted records to, in hop order, deduplicated.
pub(crate) fn next_hops(part: Part) -> Vec<Part> {
    let mut next: Vec<Part> = Vec::new();
    for hop in HOPS.iter().filter(|hop| hop.from == part && hop.flows.iter().any(|flow| flow.accounted())) {
        if !next.contains(&hop.to) {
            next.push(hop.to);
        }
    }
    next
}

/// [`next_hops`] as a verdict names them: "agent, collector or aggregator", or
/// "none (dash0 is the end)".
pub(crate) fn next_hops_text(part: Part) -> String {
    let names: Vec<&str> = next_hops(part).into_iter().map(Part::as_str).collect();
    match names.split_last() {
        None => format!("none ({part} is the end)"),
        Some((last, [])) => (*last).to_string(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
    }
}

/// Which hosts an entry of [`HOSTS`] stands for, and so what the app does there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum HostRole {
    /// One named host running a service (Dash0, Railway's Redis, aggregator, shipper).
    Service(&'static str),
    /// The API host ([`hosts::API`]): the client and the API, with their agent and collector.
    Api,
    /// One host per machine of the topology (named by its machine id): the workers.
    Machine,
    /// One host per dev host of the topology (`dev-1`…): posts logs to in_http.
    Dev,
}

/// One kind of host and the parts running on it, in the order they are started (and
/// polled together).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct HostPlan {
    pub(crate) role: HostRole,
    pub parts: &'static [Part],
}

impl HostPlan {
    /// The host's name when the entry stands for exactly one host.
    pub(crate) fn single_host(&self) -> Option<&'static str> {
        match self.role {
            HostRole::Service(name) => Some(name),
            HostRole::Api => Some(hosts::API),
            HostRole::Machine | HostRole::Dev => None,
        }
    }
}

/// The hosts in registration order, which is turmoil's stepping order (changing it changes
/// every event log): Dash0 and Railway first, then the API, the machines, the dev hosts.
pub(crate) const HOSTS: [HostPlan; 7] = [
    HostPlan { role: HostRole::Service(hosts::DASH0), parts: &[Part::Dash0] },
    HostPlan { role: HostRole::Service(hosts::REDIS), parts: &[Part::Redis] },
    HostPlan { role: HostRole::Service(hosts::AGGREGATOR), parts: &[Part::Aggregator] },
    HostPlan { role: HostRole::Service(hosts::SHIPPER), parts: &[Part::Shipper] },
    HostPlan { role: HostRole::Api, parts: &[Part::Agent, Part::Collector, Part::App] },
    HostPlan { role: HostRole::Machine, parts: &[Part::Agent, Part::Collector, Part::App] },
    HostPlan { role: HostRole::Dev, parts: &[Part::App] },
];

/// The one host `part` listens on, if it runs on exactly one host (a part that can be
/// dialed must).
pub(crate) fn host_of(part: Part) -> Option<&'static str> {
    let mut plans = HOSTS.iter().filter(|plan| plan.parts.contains(&part));
    let plan = plans.next()?;
    if plans.next().is_some() {
        return None;
    }
    plan.single_host()
}

/// A listener's address in the simulated network.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Address {
    pub host: Arc<str>,
    pub port: u16,
}

impl Address {
    /// `host:port`.
    pub fn new(host: &str, port: u16) -> Address {
        assert!(port > 0, "port 0 is no listener's port ({host})");
        Address { host: Arc::from(host), port }
    }

    /// The pair turmoil's `TcpStream::connect` takes.
    pub fn pair(&self) -> (&str, u16) {
        (&self.host, self.port)
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

/// Where each part dials each peer: (dialer, listener) → address. The wiring resolves it
/// from [`HOPS`] and [`HOSTS`] and hands it to every part in its `PartCtx`; a part asks for
/// the peer it talks to and never names a host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Peers {
    dials: Vec<(Part, Part, Address)>,
}

impl Peers {
    /// The pipeline's own: every network hop of [`HOPS`], to the listener's one host.
    pub fn of_pipeline() -> Peers {
        let mut dials = Vec::new();
        for (dialer, listener, port) in HOPS.iter().filter_map(Hop::dial) {
            let host = host_of(listener)
                .unwrap_or_else(|| panic!("{listener} is dialed, so it must run on exactly one host in HOSTS"));
            if !dials.iter().any(|(d, l, _)| (*d, *l) == (dialer, listener)) {
                dials.push((dialer, listener, Address::new(host, port)));
            }
        }
        Peers { dials }
    }

    /// Where `dialer` reaches `listener`. Panics when the pipeline has no such hop: a part
    /// asking for a peer it has no hop to is a wiring bug, not bad input.
    pub(crate) fn address(&self, dialer: Part, listener: Part) -> &Address {
        self.dials
            .iter()
            .find(|(d, l, _)| (*d, *l) == (dialer, listener))
            .map(|(_, _, address)| address)
            .unwrap_or_else(|| panic!("the pipeline has no hop on which {dialer} dials {listener}"))
    }

    /// The same, with `dialer` reaching `listener` at `address` instead (a test pointing a
    /// part at a fake, a scenario overriding an endpoint).
    pub fn with(mut self, dialer: Part, listener: Part, address: Address) -> Peers {
        self.dials.retain(|(d, l, _)| (*d, *l) != (dialer, listener));
        self.dials.push((dialer, listener, address));
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// How many variants `Part` has, by an exhaustive match: a new part fails to compile
    /// here until it is counted (and the test below then asks for it in `PARTS`).
    fn variants_count() -> usize {
        let _every_variant = |part: Part| match part {
            Part::App
            | Part::Agent
            | Part::Collector
            | Part::Aggregator
            | Part::Redis
            | Part::Shipper
            | Part::Dash0 => {}
        };
        7
    }

    #[test]
    fn every_part_is_listed_once_and_ranks_follow_the_list() {
        assert_eq!(PARTS.len(), variants_count(), "every part is in PARTS");
        for (rank, part) in PARTS.iter().enumerate() {
            assert_eq!(custody_rank(*part), rank, "{part} is listed once");
            assert_eq!(part_named(part.as_str()), Some(*part));
        }
        let mut sorted = PARTS;
        sorted.reverse();
        sorted.sort();
        assert_eq!(sorted, PARTS, "Part's Ord is the custody order");
    }

    #[test]
    fn every_accounted_hop_goes_forward_in_custody_order() {
        for hop in HOPS.iter().filter(|hop| hop.flows.iter().any(|flow| flow.accounted())) {
            assert!(custody_rank(hop.from) < custody_rank(hop.to), "{hop:?} goes backward in PARTS");
        }
        assert_eq!(PARTS[0], Part::App, "records are born at the app");
        assert!(next_hops(Part::Dash0).is_empty(), "records end at Dash0");
    }

    #[test]
    fn every_part_runs_somewhere_and_every_listener_on_one_host() {
        for part in PARTS {
            assert!(HOSTS.iter().any(|plan| plan.parts.contains(&part)), "{part} runs on no host");
        }
        let peers = Peers::of_pipeline();
        assert_eq!(peers.address(Part::Agent, Part::Aggregator), &Address::new("railway-aggregator", 24225));
        assert_eq!(peers.address(Part::App, Part::Aggregator), &Address::new("railway-aggregator", 24224));
        assert_eq!(peers.address(Part::Shipper, Part::Redis), &Address::new("railway-redis", 6379));
        assert_eq!(peers.address(Part::Shipper, Part::Dash0), &Address::new("dash0", 4318));
        assert_eq!(peers.address(Part::Collector, Part::Dash0), &Address::new("dash0", 4317));
    }

    #[test]
    fn next_hops_are_named_as_the_verdict_always_named_them() {
        let named: Vec<String> = PARTS.iter().map(|part| next_hops_text(*part)).collect();
        assert_eq!(
            named,
            [
                "agent, collector or aggregator",
                "aggregator",
                "dash0",
                "redis",
                "shipper",
                "dash0",
                "none (dash0 is the end)"
            ]
        );
    }

    #[test]
    fn an_override_replaces_one_dial_only() {
        let peers = Peers::of_pipeline().with(Part::Collector, Part::Dash0, Address::new("dash0", 9));
        assert_eq!(peers.address(Part::Collector, Part::Dash0).port, 9);
        assert_eq!(peers.address(Part::Shipper, Part::Dash0).port, 4318);
    }
}
