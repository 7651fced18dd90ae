//! The pipeline assembled: every part on its host in one simulated world, per scenario.
//!
//! Why one place: this is where "which part runs on which host" is decided (DESIGN.md §7
//! asks for one host map so that large fleets can later share hosts without touching the
//! parts). Parts only see their `PartCtx` and config; the harness keeps what must outlive a
//! crash (the ledger, Dash0's store, disks) outside the hosts.

mod inject;
mod plant;

pub use inject::{Injector, apply as apply_fault};

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crate::faults;
use crate::gauges::BufferGauges;
use crate::ledger::Ledger;
use crate::parts::app::{self, AppPipes, DevSpec, MachineSpec};
use crate::parts::dash0::{self, Dash0Control, Dash0Store};
use crate::parts::log_chunk::LogChunk;
use crate::parts::{PartCtx, agent, aggregator, collector, redis, shipper};
use crate::record::Resource;
use crate::scenario::Scenario;
use crate::vocab::EventKind;
use crate::vocab::hosts;
use crate::world::{HostCtx, RunOutcome, World, WorldBuilder, WorldError};

/// A built pipeline, ready to step.
pub struct Pipeline {
    pub world: World<'static>,
    pub ledger: Ledger,
    pub dash0_store: Dash0Store,
    pub dash0_control: Dash0Control,
    /// Runtime `maxmemory` override for Redis (the `backpressure` fault).
    pub redis_control: redis::RedisControl,
    /// Runtime `total_limit_size` override for the aggregator (the `backpressure` fault).
    pub aggregator_control: aggregator::AggregatorControl,
    /// Runtime `mem_buf_limit` overrides per agent host (the `backpressure` fault).
    pub agent_control: agent::AgentControl,
    /// Runtime multiplier on the client's job rate (the `backpressure` load burst).
    pub workload_control: app::WorkloadControl,
    /// Every bounded buffer's level against its limit (the `bounds` check); the controls
    /// above hand them to their parts.
    pub buffer_gauges: BufferGauges,
    /// Each job's fate as the app reported it (the jobs and metrics checks' ground truth).
    pub job_book: app::JobBook,
    pub scenario: Arc<Scenario>,
    pub seed: u64,
    /// The faults in force and the effective state applied per target (links, hosts,
    /// clocks, Dash0, limits): overlapping faults on one host crash it once and restart it
    /// once, when the last of them ends; the same for every other target.
    pub injector: Injector,
}

/// Runs `parts` of one host together: the first error stops the host, naming the part.
async fn together<A, B, C>(a: A, b: B, c: C) -> turmoil::Result
where
    A: Future<Output = turmoil::Result>,
    B: Future<Output = turmoil::Result>,
    C: Future<Output = turmoil::Result>,
{
    tokio::try_join!(a, b, c).map(|_| ())
}

impl Pipeline {
    /// Builds every host of `scenario` with `seed`.
    pub fn build(scenario: Arc<Scenario>, seed: u64) -> Pipeline {
        // Planted bugs reach the parts through their configs (see `crate::pipeline::plant`).
        let scenario = if scenario.bugs.any() { Arc::new(plant::plant(&scenario)) } else { scenario };
        let mut world =
            WorldBuilder::new(seed).tick(scenario.tick).duration(scenario.duration + scenario.drain).build();
        let ledger = Ledger::new();
        let dash0_store = Dash0Store::new();
        let dash0_control = Dash0Control::new();
        let buffer_gauges = BufferGauges::new();
        let redis_control = redis::RedisControl::new().with_gauges(buffer_gauges.clone());
        let aggregator_control = aggregator::AggregatorControl::new().with_gauges(buffer_gauges.clone());
        let agent_control = agent::AgentControl::new().with_gauges(buffer_gauges.clone());
        let workload_control = app::WorkloadControl::new();
        let part_ctx = {
            let ledger = ledger.clone();
            move |host: HostCtx| PartCtx { host, ledger: ledger.clone() }
        };

        // Railway and Dash0 first: registration order is turmoil's stepping order.
        {
            let (config, store, control, part_ctx) =
                (scenario.dash0.clone(), dash0_store.clone(), dash0_control.clone(), part_ctx.clone());
            world.host(hosts::DASH0, move |host| {
                dash0::run(part_ctx(host), config.clone(), control.clone(), store.clone())
            });
        }
        {
            let (config, control, part_ctx) = (scenario.redis.clone(), redis_control.clone(), part_ctx.clone());
            world.host(hosts::REDIS, move |host| {
                redis::run_with_control(part_ctx(host), config.clone(), LogChunk::record_ids, control.clone())
            });
        }
        {
            let (config, control, part_ctx) =
                (scenario.aggregator.clone(), aggregator_control.clone(), part_ctx.clone());
            world.host(hosts::AGGREGATOR, move |host| {
                aggregator::run_with_control(part_ctx(host), config.clone(), control.clone())
            });
        }
        {
            let (config, part_ctx) = (scenario.shipper.clone(), part_ctx.clone());
            world.host(hosts::SHIPPER, move |host| shipper::run(part_ctx(host), config.clone()));
        }

        let job_book = app::JobBook::new();
        let app_config = app::AppConfig { job_book: job_book.clone(), ..scenario.app_config() };
        // The API host: client + API, with its own agent and collector.
        {
            let scenario = Arc::clone(&scenario);
            let (app_config, control, part_ctx) = (app_config.clone(), workload_control.clone(), part_ctx.clone());
            let agent_control = agent_control.clone();
            world.host(hosts::API, move |host| {
                let ctx = part_ctx(host);
                let pipes = AppPipes::new(app_config.log_pipe_records_limit);
                let resource = Resource::new("emp-api");
                let agent_config = scenario.agent_for(hosts::API);
                together(
                    agent::run_with_control(
                        ctx.clone(),
                        agent_config,
                        pipes.logs.clone(),
                        "api".to_string(),
                        agent_control.clone(),
                    ),
                    collector::run(
                        ctx.clone(),
                        scenario.collector_for(hosts::API),
                        pipes.spans.clone(),
                        pipes.metrics.clone(),
                        resource,
                    ),
                    app::run_api_with_control(ctx, app_config.clone(), pipes, control.clone()),
                )
            });
        }
        for (machine_id, workers) in scenario.machine_hosts() {
            let scenario = Arc::clone(&scenario);
            let (app_config, part_ctx, agent_control) = (app_config.clone(), part_ctx.clone(), agent_control.clone());
            let host_name = machine_id.as_str().to_string();
            world.host(&host_name, move |host| {
                let ctx = part_ctx(host);
                let pipes = AppPipes::new(app_config.log_pipe_records_limit);
                let resource = Resource::new("emp-machine").with_machine_id(machine_id.as_str());
                let tag = format!("machine.{}", machine_id.machine_type().as_str());
                let spec = MachineSpec { machine_id: machine_id.clone(), workers };
                together(
                    agent::run_with_control(
                        ctx.clone(),
                        scenario.agent_for(machine_id.as_str()),
                        pipes.logs.clone(),
                        tag,
                        agent_control.clone(),
                    ),
                    collector::run(
                        ctx.clone(),
                        scenario.collector_for(machine_id.as_str()),
                        pipes.spans.clone(),
                        pipes.metrics.clone(),
                        resource,
                    ),
                    app::run_machine(ctx, app_config.clone(), spec, pipes),
                )
            });
        }
        for index in 1..=scenario.topology.dev_hosts {
            let (app_config, part_ctx) = (app_config.clone(), part_ctx.clone());
            let name = format!("dev-{index}");
            world.host(&name, move |host| {
                let spec = DevSpec { logs_per_second: None };
                app::run_dev(part_ctx(host), app_config.clone(), spec)
            });
        }

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

    /// Crashes `host`: its software stops, unsynced disk writes are lost, and whatever its
    /// parts held only in memory becomes `<part>_crash_unpersisted` in the ledger.
    pub fn crash(&mut self, host: &str) {
        self.world.crash(host);
        self.ledger.crash(host);
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

/// How long the run simulates in total.
pub fn simulated_duration(scenario: &Scenario) -> Duration {
    scenario.duration + scenario.drain
}
