//! The pipeline assembled: every part on its host in one simulated world, per scenario.
//!
//! Why one place: this is where the pipeline's list (`vocab::pipeline`: which parts run on
//! which host, in which order, and where each dials its peers) becomes running software
//! (ARCHITECTURE.md §9). Parts only see their `PartCtx` (with
//! their peers' addresses) and config; the harness keeps what must outlive a
//! crash (the ledger, Dash0's store, disks) outside the hosts.

mod inject;
mod plant;

pub use inject::{Injector, apply as apply_fault};

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::faults;
use crate::gauges::BufferGauges;
use crate::ledger::Ledger;
use crate::parts::app::{self, AppPipes, DevSpec, MachineSpec};
use crate::parts::dash0::{self, Dash0Control, Dash0Store};
use crate::parts::log_chunk::LogChunk;
use crate::parts::pipe::RecordPipe;
use crate::parts::{PartCtx, agent, aggregator, collector, redis, shipper};
use crate::record::LogRecord;
use crate::record::Resource;
use crate::scenario::{PlacedHost, Scenario};
use crate::vocab::pipeline::{HostRole, Peers};
use crate::vocab::{EventKind, Part};
use crate::world::{HostCtx, HostLoss, RunOutcome, World, WorldBuilder, WorldError};

/// A built pipeline, ready to step.
pub struct Pipeline {
    pub world: World<'static>,
    pub ledger: Ledger,
    /// What Dash0 stored: the checks, `obsim run --export` and tests read it (its queries:
    /// `parts::dash0::query`).
    pub dash0_store: Dash0Store,
    pub dash0_control: Dash0Control,
    /// Runtime `maxmemory` override for Redis (the `backpressure` fault).
    pub(crate) redis_control: redis::RedisControl,
    /// Runtime `total_limit_size` override for the aggregator (the `backpressure` fault).
    pub(crate) aggregator_control: aggregator::AggregatorControl,
    /// Runtime `mem_buf_limit` overrides per agent host (the `backpressure` fault).
    pub(crate) agent_control: agent::AgentControl,
    /// Runtime multiplier on the client's job rate (the `backpressure` load burst).
    pub workload_control: app::WorkloadControl,
    /// Every bounded buffer's level against its limit (the `bounds` check); the controls
    /// above hand them to their parts.
    pub(crate) buffer_gauges: BufferGauges,
    /// Each job's fate as the app reported it (the jobs and metrics checks' ground truth).
    pub(crate) job_book: app::JobBook,
    pub scenario: Arc<Scenario>,
    pub seed: u64,
    /// The faults in force and the effective state applied per target (links, hosts,
    /// clocks, Dash0, limits): overlapping faults on one host crash it once and restart it
    /// once, when the last of them ends; the same for every other target.
    pub injector: Injector,
}

/// A part's software for one incarnation of its host.
type Software = Pin<Box<dyn Future<Output = turmoil::Result>>>;

/// Runs the parts of one host together, polled in `HOSTS` order: the first error stops the
/// host. One part runs alone; several run under one `tokio::try_join!` (whose polling order
/// the event logs depend on).
fn together(mut parts: Vec<Software>) -> Software {
    assert!(!parts.is_empty(), "a host runs at least one part");
    match parts.len() {
        1 => parts.pop().expect("one part"),
        2 => {
            let (b, a) = (parts.pop().expect("two"), parts.pop().expect("two"));
            Box::pin(async move { tokio::try_join!(a, b).map(|_| ()) })
        }
        3 => {
            let (c, b, a) = (parts.pop().expect("three"), parts.pop().expect("three"), parts.pop().expect("three"));
            Box::pin(async move { tokio::try_join!(a, b, c).map(|_| ()) })
        }
        count => panic!("a host runs at most 3 parts, not {count}: extend `together`"),
    }
}

/// What the wiring hands the parts: the run's shared handles (they outlive every host
/// incarnation) and where each part dials its peers.
#[derive(Clone)]
struct Wiring {
    scenario: Arc<Scenario>,
    ledger: Ledger,
    peers: Arc<Peers>,
    dash0_store: Dash0Store,
    dash0_control: Dash0Control,
    redis_control: redis::RedisControl,
    aggregator_control: aggregator::AggregatorControl,
    agent_control: agent::AgentControl,
    workload_control: app::WorkloadControl,
    app_config: app::AppConfig,
}

impl Wiring {
    /// The software of `host` for one incarnation: its parts, in their plan's order. The
    /// host's `log_file` outlives the incarnation (the agent reads on where it stopped); the
    /// export queues to its collector die with it.
    fn software(&self, host: &PlacedHost, host_ctx: HostCtx, log_file: &RecordPipe<LogRecord>) -> Software {
        let ctx = PartCtx { host: host_ctx, ledger: self.ledger.clone(), peers: Arc::clone(&self.peers) };
        let pipes = AppPipes::with_log_file(log_file.clone(), self.app_config.log_pipe_records_limit);
        together(host.plan.parts.iter().map(|part| self.start(*part, host, ctx.clone(), &pipes)).collect())
    }

    /// `part` started on `host`; `pipes` join the app to its agent and collector.
    fn start(&self, part: Part, host: &PlacedHost, ctx: PartCtx, pipes: &AppPipes) -> Software {
        let scenario = &self.scenario;
        match part {
            Part::Dash0 => {
                Box::pin(dash0::run(ctx, scenario.dash0.clone(), self.dash0_control.clone(), self.dash0_store.clone()))
            }
            Part::Redis => Box::pin(redis::run_with_control(
                ctx,
                scenario.redis.clone(),
                LogChunk::record_ids,
                self.redis_control.clone(),
            )),
            Part::Aggregator => Box::pin(aggregator::run_with_control(
                ctx,
                scenario.aggregator.clone(),
                self.aggregator_control.clone(),
            )),
            Part::Shipper => Box::pin(shipper::run(ctx, scenario.shipper.clone())),
            Part::Agent => Box::pin(agent::run_with_control(
                ctx,
                scenario.agent_for(&host.name),
                pipes.logs.clone(),
                agent_tag(host),
                self.agent_control.clone(),
            )),
            Part::Collector => Box::pin(collector::run(
                ctx,
                scenario.collector_for(&host.name),
                pipes.spans.clone(),
                pipes.metrics.clone(),
                resource(host),
            )),
            Part::App => self.start_app(host, ctx, pipes),
        }
    }

    /// The app as its host's role runs it: the client and API, a machine's workers, or a
    /// dev host's log lines.
    fn start_app(&self, host: &PlacedHost, ctx: PartCtx, pipes: &AppPipes) -> Software {
        let config = self.app_config.clone();
        match (host.plan.role, &host.machine) {
            (HostRole::Api, _) => {
                Box::pin(app::run_api_with_control(ctx, config, pipes.clone(), self.workload_control.clone()))
            }
            (HostRole::Machine, Some((machine_id, workers))) => {
                let spec = MachineSpec { machine_id: machine_id.clone(), workers: *workers };
                Box::pin(app::run_machine(ctx, config, spec, pipes.clone()))
            }
            (HostRole::Dev, _) => Box::pin(app::run_dev(ctx, config, DevSpec { logs_per_second: None })),
            (role, _) => panic!("host {} ({role:?}) has no app to run", host.name),
        }
    }
}

/// The agent's default tag on `host`: `api`, or `machine.<type>`.
fn agent_tag(host: &PlacedHost) -> String {
    match &host.machine {
        Some((machine_id, _)) => format!("machine.{}", machine_id.machine_type().as_str()),
        None => "api".to_string(),
    }
}

/// The resource the collector on `host` describes.
fn resource(host: &PlacedHost) -> Resource {
    match &host.machine {
        Some((machine_id, _)) => Resource::new("emp-machine").with_machine_id(machine_id.as_str()),
        None => Resource::new("emp-api"),
    }
}

impl Pipeline {
    /// Builds every host of `scenario` with `seed`: the hosts of `vocab::pipeline::HOSTS`,
    /// in that order (turmoil's stepping order), each running its plan's parts.
    pub fn build(scenario: Arc<Scenario>, seed: u64) -> Pipeline {
        // Planted bugs reach the parts through their configs (see `crate::pipeline::plant`).
        let scenario = if scenario.bugs.any() { Arc::new(plant::plant(&scenario)) } else { scenario };
        let mut world =
            WorldBuilder::new(seed).tick(scenario.tick).duration(scenario.duration + scenario.drain).build();
        let buffer_gauges = BufferGauges::new();
        let job_book = app::JobBook::new();
        let wiring = Wiring {
            ledger: Ledger::new(),
            peers: Arc::new(Peers::of_pipeline()),
            dash0_store: Dash0Store::new(),
            dash0_control: Dash0Control::new(),
            redis_control: redis::RedisControl::new().with_gauges(buffer_gauges.clone()),
            aggregator_control: aggregator::AggregatorControl::new().with_gauges(buffer_gauges.clone()),
            agent_control: agent::AgentControl::new().with_gauges(buffer_gauges.clone()),
            workload_control: app::WorkloadControl::new(),
            app_config: app::AppConfig { job_book: job_book.clone(), ..scenario.app_config() },
            scenario: Arc::clone(&scenario),
        };
        let mut log_files: BTreeMap<String, RecordPipe<LogRecord>> = BTreeMap::new();
        for host in scenario.placed_hosts() {
            let wiring = wiring.clone();
            let name = host.name.clone();
            let log_file = RecordPipe::log_file(scenario.app_config().log_file_records_limit);
            log_files.insert(name.clone(), log_file.clone());
            world.host(&name, move |host_ctx| wiring.software(&host, host_ctx, &log_file));
        }
        let ledger = wiring.ledger.clone();
        world.on_host_lost(move |host, loss| {
            // The ledger takes what the loss took; a power loss also takes the log file's
            // unread lines (never fsynced: FIDELITY.md "App"), which the ledger held as written.
            ledger.host_lost(host, loss);
            if loss == HostLoss::Power
                && let Some(file) = log_files.get(host)
            {
                file.clear();
            }
        });
        let Wiring {
            ledger,
            dash0_store,
            dash0_control,
            redis_control,
            aggregator_control,
            agent_control,
            workload_control,
            ..
        } = wiring;
        Pipeline {
            world,
            ledger,
            dash0_store,
            dash0_control,
            redis_control,
            aggregator_control,
            agent_control,
            workload_control,
            buffer_gauges,
            job_book,
            scenario,
            seed,
            injector: Default::default(),
        }
    }

    /// Runs load and the fault schedule for the scenario's duration, heals every fault, then
    /// runs the drain phase.
    pub fn run(&mut self) -> Result<RunOutcome, WorldError> {
        let scenario = Arc::clone(&self.scenario);
        for action in faults::plan(&scenario.faults, scenario.duration) {
            self.world.run_for(action.at)?;
            inject::apply(self, &scenario.faults, action.fault_index, action.phase);
        }
        self.world.run_for(scenario.duration)?;
        let unhealed: Vec<String> = (0..scenario.faults.len())
            .filter(|index| self.injector.in_force(*index))
            .map(|i| format!("fault[{i}]"))
            .collect();
        let healed = if unhealed.is_empty() {
            "faults healed".to_string()
        } else {
            format!("faults healed except {} (heal = \"never\")", unhealed.join(", "))
        };
        self.world.record(
            EventKind::DrainStart,
            format!("{healed}; draining for {}", crate::units::format_duration(scenario.drain)),
        );
        self.world.run_for(scenario.duration + scenario.drain)
    }
}
