//! Scenario files: the topology, each part's config (real defaults), the workload, the
//! fault schedule and what must hold (ARCHITECTURE.md §3).
//!
//! Why TOML with `deny_unknown_fields` everywhere: a misspelt key that silently falls back
//! to a default makes a scenario test something other than what its author believes. Every
//! unknown key, bad duration or impossible value is refused with file, line and key.

pub mod chaos;
mod error;
mod overrides;
mod ranges;
pub mod schema;

pub use error::ScenarioError;
pub use overrides::Override;
pub use schema::json_schema;

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::parts::agent::AgentConfig;
use crate::parts::aggregator::AggregatorConfig;
use crate::parts::app::{AppConfig, WorkloadConfig};
use crate::parts::collector::CollectorConfig;
use crate::parts::dash0::Dash0Config;
use crate::parts::redis::RedisConfig;
use crate::parts::shipper::ShipperConfig;
use crate::record::MachineType;
use crate::units::duration_text;

/// Most machines a scenario may declare: turmoil's cost grows with the square of hosts
/// (ARCHITECTURE.md §7), and past this a run stops being a test.
pub(crate) const MACHINES_LIMIT: u32 = 500;

/// Most dev hosts a scenario may declare.
pub(crate) const DEV_HOSTS_LIMIT: u32 = 50;

/// Most workers one machine may run.
pub(crate) const WORKERS_PER_MACHINE_LIMIT: u32 = 64;

/// Longest `duration` + `drain` (and `duration` + `[chaos] drain`): the report's timeline
/// and latency histograms hold one day.
pub(crate) const RUN_LIMIT: Duration = Duration::from_secs(24 * 3600);

/// A whole scenario.
#[derive(Clone, Debug, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Short name; reports go to `reports/<name>/<seed>/`.
    pub name: String,
    /// What the scenario tests, for reports.
    #[serde(default)]
    pub description: String,
    /// The seed; `--seed` overrides it.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Load and faults run for this long…
    #[serde(with = "duration_text")]
    pub duration: Duration,
    /// …then the drain phase, with faults healed, lets everything in flight arrive.
    #[serde(with = "duration_text", default = "default_drain")]
    pub drain: Duration,
    /// The simulation step (ARCHITECTURE.md §7: 10 ms by default).
    #[serde(with = "duration_text", default = "default_tick")]
    pub tick: Duration,
    pub topology: Topology,
    /// How many jobs and how chatty; the client submits for `duration`.
    #[serde(default)]
    pub workload: WorkloadConfig,
    #[serde(default)]
    pub app: AppConfig,
    #[serde(default)]
    pub agent: AgentConfig,
    #[serde(default)]
    pub collector: CollectorConfig,
    #[serde(default)]
    pub aggregator: AggregatorConfig,
    #[serde(default)]
    pub redis: RedisConfig,
    #[serde(default)]
    pub shipper: ShipperConfig,
    #[serde(default)]
    pub dash0: Dash0Config,
    #[serde(default)]
    pub expect: Expect,
    /// Planted bugs (`crate::parts::bugs`), all off unless switched on here; tests switch them on.
    #[serde(default)]
    pub bugs: crate::parts::Bugs,
    /// The fault schedule: `[[fault]]` tables (ARCHITECTURE.md §3); all end before `duration`,
    /// except `crash`, which the drain heals.
    #[serde(default, rename = "fault", skip_serializing_if = "Vec::is_empty")]
    pub faults: Vec<crate::faults::FaultSpec>,
    /// `[chaos]`: this file takes part in `obsim chaos` sweeps, with the fault kinds and
    /// expectations given there (`crate::scenario::chaos::ChaosConfig`). Absent: sweeps
    /// derive one from the config (`crate::chaos::derive`); `skip = "reason"` opts out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chaos: Option<chaos::ChaosConfig>,
    /// `[[override]]` tables: part settings that differ on some hosts (one rogue machine
    /// with a wrong `shared_key`, one group on memory storage), applied in file order on top
    /// of the sections above.
    #[serde(default, rename = "override", skip_serializing_if = "Vec::is_empty")]
    pub overrides: Vec<Override>,
}

/// A part's rule error with an owned key, so every part's errors share one type.
fn keyed(result: Result<(), (&'static str, String)>) -> Result<(), (String, String)> {
    result.map_err(|(key, message)| (key.to_string(), message))
}

fn default_seed() -> u64 {
    1
}

fn default_drain() -> Duration {
    Duration::from_secs(180)
}

fn default_tick() -> Duration {
    crate::world::TICK_DEFAULT
}

/// Which hosts exist.
#[derive(Clone, Debug, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Topology {
    /// Machine groups: `{ type = "comfyui", count = 6, workers = 2 }`.
    pub machines: Vec<MachineGroup>,
    /// Dev hosts posting JSON logs straight to the aggregator (at most 50).
    #[schemars(range(max = DEV_HOSTS_LIMIT))]
    #[serde(default)]
    pub dev_hosts: u32,
}

/// `count` machines of one type.
#[derive(Clone, Debug, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MachineGroup {
    /// The machine type: `comfyui`, `simulation` or `openai`.
    #[serde(rename = "type")]
    pub(crate) machine_type: MachineType,
    /// How many machines of this type, 1 to 500 (all groups together at most
    /// `MACHINES_LIMIT`, 500).
    #[schemars(range(min = 1, max = MACHINES_LIMIT))]
    pub count: u32,
    /// Workers per machine, 1 to 64; default 1.
    #[schemars(range(min = 1, max = WORKERS_PER_MACHINE_LIMIT))]
    #[serde(default = "default_workers")]
    pub workers: u32,
}

fn default_workers() -> u32 {
    1
}

/// What must hold at the end of the run.
#[derive(Clone, Debug, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Expect {
    /// Most records (logs + spans) that may be lost with an accepted cause; absent: any
    /// number. A loss with any other cause, or with none, always fails.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lost: Option<u64>,
    /// Causes under which loss is accepted, e.g. `redis_crash_unpersisted`; a name that is
    /// not a loss cause is refused at load. Default none: every record must be delivered.
    pub allow_loss: Vec<crate::vocab::LossCause>,
    /// Most duplicated records / delivered records, 0 to 1.
    #[schemars(range(min = 0.0, max = 1.0))]
    pub max_duplicate_ratio: f64,
    /// `complete`: every correlation rule holds; `skip`: not checked.
    pub correlation: CorrelationExpectation,
    /// Submitted jobs that may never complete (e.g. a Redis without persistence loses its
    /// queued jobs on a restart). Default 0.
    pub max_jobs_unfinished: u64,
    /// Jobs that may run more than once (e.g. Redis with `appendfsync everysec` loses a
    /// completion on a crash and the job runs again). Default 0.
    pub max_jobs_duplicated: u64,
    /// Budget on the 99th percentile of logs' emit → Dash0 latency (true time).
    #[schemars(with = "Option<crate::units::duration_text>")]
    #[serde(with = "option_duration", skip_serializing_if = "Option::is_none")]
    pub latency_p99: Option<Duration>,
    /// Budget on the slowest log's emit → Dash0 latency (true time).
    #[schemars(with = "Option<crate::units::duration_text>")]
    #[serde(with = "option_duration", skip_serializing_if = "Option::is_none")]
    pub latency_max: Option<Duration>,
    /// Longest any fault may take to recover from: the time from its end until every
    /// record emitted while it lasted reached Dash0 (`crate::check::recovery`).
    #[schemars(with = "Option<crate::units::duration_text>")]
    #[serde(with = "option_duration", skip_serializing_if = "Option::is_none")]
    pub(crate) max_recovery: Option<Duration>,
    /// Least logs stored by Dash0 per second in every 10 s window of the load phase (after
    /// the first window with a delivery), e.g. `"500/s"`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_throughput: Option<crate::units::Rate>,
    /// Most records one custodian of a part may hold at once, by part name
    /// (`{ aggregator = 5000 }`): a bound on buffering per hop.
    pub max_occupancy: std::collections::BTreeMap<crate::vocab::Part, u64>,
    /// Fullest a part's bounded buffers may get, as a fraction of the limit in force, by
    /// part name (`{ aggregator = 0.8 }`): judged on every write a buffer admitted (level
    /// after the write / limit then). Without it only the `bounds` check (always on) holds
    /// buffers to their limits. Fluent Bit and Redis may legitimately pass 1.0 by one write.
    #[schemars(with = "std::collections::BTreeMap<crate::vocab::Part, BufferFill>")]
    pub max_buffer_fill: std::collections::BTreeMap<crate::vocab::Part, f64>,
    /// `agree`: Dash0's metric totals must agree with the jobs that ran; `skip`: not checked.
    pub metrics: MetricsExpectation,
}

/// A `max_buffer_fill` value: a fraction of the limit above 0 (Fluent Bit and Redis may
/// pass 1.0 by one write, so up to 100).
#[derive(schemars::JsonSchema)]
#[schemars(transparent)]
#[allow(dead_code)]
struct BufferFill(#[schemars(range(min = 0.0, max = 100.0))] f64);

/// Whether metric totals are checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MetricsExpectation {
    Agree,
    Skip,
}

impl Default for Expect {
    fn default() -> Self {
        Expect {
            lost: None,
            allow_loss: Vec::new(),
            max_duplicate_ratio: 0.0,
            correlation: CorrelationExpectation::Complete,
            max_jobs_unfinished: 0,
            max_jobs_duplicated: 0,
            latency_p99: None,
            latency_max: None,
            max_recovery: None,
            min_throughput: None,
            max_occupancy: Default::default(),
            max_buffer_fill: Default::default(),
            metrics: MetricsExpectation::Agree,
        }
    }
}

/// How strictly correlation is checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CorrelationExpectation {
    Complete,
    Skip,
}

/// `Option<Duration>` as optional duration text.
mod option_duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(value: &Option<Duration>, serializer: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(duration) => serializer.serialize_str(&crate::units::format_duration(*duration)),
            None => serializer.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Duration>, D::Error> {
        let text = String::deserialize(deserializer)?;
        crate::units::parse_duration(&text).map(Some).map_err(serde::de::Error::custom)
    }
}

impl Scenario {
    /// Reads and validates a scenario file.
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let source = std::fs::read_to_string(path)
            .map_err(|error| ScenarioError::whole_file(path, format!("cannot read: {error}")))?;
        Scenario::parse(path, &source)
    }

    /// Parses and validates scenario text; `path` names it in errors. Everything this
    /// accepts can run: every number is within its documented range (`ranges`), every rule
    /// between keys holds (`validate`), and every error names the key path and its line.
    pub fn parse(path: &Path, source: &str) -> Result<Scenario, ScenarioError> {
        let reparse = |text: &str| toml::from_str::<Scenario>(text).err();
        let scenario: Scenario =
            toml::from_str(source).map_err(|error| ScenarioError::from_toml(path, source, &error, &reparse))?;
        let document = toml::de::DeTable::parse(source)
            .map_err(|error| ScenarioError::from_toml(path, source, &error, &reparse))?;
        ranges::check(document.get_ref(), schema::json_schema_cached())
            .map_err(|(key, message)| ScenarioError::at_path(path, source, &key, message))?;
        scenario.validate(path, source)?;
        Ok(scenario)
    }

    /// Rules serde and the schema's ranges cannot express; each error names its key path.
    /// Checked in this order, so the first rule broken is the one reported.
    fn validate(&self, path: &Path, source: &str) -> Result<(), ScenarioError> {
        self.validate_run(path, source)?;
        self.validate_parts(path, source)?;
        self.validate_faults(path, source)?;
        self.validate_chaos_and_expect(path, source)?;
        self.validate_overrides(path, source)?;
        self.validate_tls(path, source)?;
        Ok(())
    }

    /// Forward over TLS needs both ends: every agent's `tls` says what `[aggregator] tls`
    /// says (a TLS client never gets a plain server's HELO, nor the reverse), and a `tls_*`
    /// fault needs TLS on. Runs after the overrides are checked (`agent_for` reads them).
    fn validate_tls(&self, path: &Path, source: &str) -> Result<(), ScenarioError> {
        let fail = |key: &str, message: String| Err(ScenarioError::at_path(path, source, key, message));
        let server = self.aggregator.tls;
        let mut agent_hosts = vec![crate::vocab::hosts::API.to_string()];
        agent_hosts.extend(self.machine_hosts().into_iter().map(|(id, _)| id.as_str().to_string()));
        for host in &agent_hosts {
            if self.agent_for(host).tls != server {
                return fail(
                    "agent.tls",
                    format!(
                        "the agent on {host} has tls = {} but [aggregator] tls = {server}: Forward over TLS needs both ends",
                        !server
                    ),
                );
            }
        }
        for (index, fault) in self.faults.iter().enumerate() {
            if let Err((key, message)) = fault.check_tls(server) {
                return fail(&format!("fault[{index}].{key}"), message);
            }
        }
        Ok(())
    }

    /// The run's shape: its name, durations, tick, machines and the records it would emit.
    fn validate_run(&self, path: &Path, source: &str) -> Result<(), ScenarioError> {
        let fail = |key: &str, message: String| Err(ScenarioError::at_path(path, source, key, message));
        if self.name.is_empty() || !self.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            return fail(
                "name",
                format!("{:?} must be non-empty and use only letters, digits, - and _ (it names a folder)", self.name),
            );
        }
        if self.duration.is_zero() {
            return fail("duration", "must be longer than 0s".into());
        }
        if self.duration + self.drain > RUN_LIMIT {
            let key = if self.drain > self.duration { "drain" } else { "duration" };
            return fail(
                key,
                format!(
                    "duration {} + drain {} exceed {}, the longest run the report's timeline holds",
                    crate::units::format_duration(self.duration),
                    crate::units::format_duration(self.drain),
                    crate::units::format_duration(RUN_LIMIT)
                ),
            );
        }
        if self.tick.is_zero() || self.tick > Duration::from_secs(1) {
            return fail("tick", format!("{} must be between 1ms and 1s", crate::units::format_duration(self.tick)));
        }
        // Summed in u64: u32 counts cannot wrap it (a wrapped u32 sum once let 2^32 + 1
        // machines pass as 1).
        let machines: u64 = self.topology.machines.iter().map(|group| u64::from(group.count)).sum();
        if machines == 0 {
            return fail("topology.machines", "the topology needs at least one machine".into());
        }
        if machines > u64::from(MACHINES_LIMIT) {
            return fail("topology.machines", format!("{machines} machines exceed the limit of {MACHINES_LIMIT}"));
        }
        let records =
            self.workload.jobs_per_second * self.duration.as_secs_f64() * f64::from(self.workload.logs_per_job);
        if records > RECORDS_EXPECTED_LIMIT as f64 {
            return fail(
                "workload.logs_per_job",
                format!(
                    "jobs_per_second {} × duration {} × logs_per_job {} ≈ {records:.0} log records, more than the {RECORDS_EXPECTED_LIMIT} one run can hold",
                    self.workload.jobs_per_second,
                    crate::units::format_duration(self.duration),
                    self.workload.logs_per_job
                ),
            );
        }
        Ok(())
    }

    /// Each part's own rules (its `check_rules`), the key named from the part's section.
    fn validate_parts(&self, path: &Path, source: &str) -> Result<(), ScenarioError> {
        let fail = |key: &str, message: String| Err(ScenarioError::at_path(path, source, key, message));
        // Each part's own rules, checked at load so a bad value exits 2 naming its key
        // instead of stopping the run when the host starts.
        for (section, result) in [
            ("agent", keyed(self.agent.check_rules())),
            ("aggregator", keyed(self.aggregator.check_rules())),
            ("app", self.app_config().check_rules()),
            ("collector", keyed(self.collector.check_rules())),
            ("dash0", keyed(self.dash0.check_rules())),
            ("redis", keyed(self.redis.check_rules())),
            ("shipper", keyed(self.shipper.check_rules())),
        ] {
            if let Err((key, message)) = result {
                // `[workload]` is its own section though the app holds it.
                let key = match key.as_str() {
                    "" => section.to_string(),
                    key if key.starts_with("workload.") => key.to_string(),
                    key => format!("{section}.{key}"),
                };
                return fail(&key, message);
            }
        }
        Ok(())
    }

    /// The `[chaos]` table's rules and drain, and `[expect]`'s buffer fills.
    fn validate_chaos_and_expect(&self, path: &Path, source: &str) -> Result<(), ScenarioError> {
        let fail = |key: &str, message: String| Err(ScenarioError::at_path(path, source, key, message));
        if let Some(chaos) = &self.chaos {
            if let Err((key, message)) = chaos.validate() {
                return fail(&format!("chaos.{key}"), message);
            }
            let (key, drain) = match chaos.drain {
                Some(drain) => ("chaos.drain", drain),
                None => ("chaos.drain_max", chaos.drain_max),
            };
            if self.duration + drain > RUN_LIMIT {
                return fail(
                    key,
                    format!(
                        "duration {} + chaos drain {} exceed {}, the longest run the report's timeline holds",
                        crate::units::format_duration(self.duration),
                        crate::units::format_duration(drain),
                        crate::units::format_duration(RUN_LIMIT)
                    ),
                );
            }
        }
        for (part, fill) in &self.expect.max_buffer_fill {
            if !(fill.is_finite() && *fill > 0.0) {
                return fail(
                    &format!("expect.max_buffer_fill.{}", part.as_str()),
                    format!("{} = {fill} must be a fraction of the limit above 0", part.as_str()),
                );
            }
        }
        Ok(())
    }

    /// The app's config as the parts get it: `[app]` with `[workload]` inside, submitting for
    /// `duration` only, and job types restricted to the machine types present (a job of a
    /// type with no machine would never complete).
    pub fn app_config(&self) -> AppConfig {
        let mut workload = self.workload.clone();
        workload.submit_for = self.duration;
        let types: Vec<MachineType> = self.topology.machines.iter().map(|group| group.machine_type).collect();
        AppConfig { workload, ..self.app.clone() }.only_types(&types)
    }

    /// Every host of the run, in registration order: Dash0, Railway, the API, machines, dev hosts.
    pub(crate) fn host_names(&self) -> Vec<String> {
        self.placed_hosts().into_iter().map(|host| host.name).collect()
    }

    /// Every host of the run with its plan, in registration order: `vocab::pipeline::HOSTS`
    /// expanded for this topology (one host per machine, one per dev host).
    pub(crate) fn placed_hosts(&self) -> Vec<PlacedHost> {
        use crate::vocab::pipeline::{HOSTS, HostRole};
        let mut placed = Vec::new();
        for plan in HOSTS {
            match plan.role {
                HostRole::Service(_) | HostRole::Api => {
                    let name = plan.single_host().expect("services and the API are single hosts").to_string();
                    placed.push(PlacedHost { name, plan, machine: None });
                }
                HostRole::Machine => placed.extend(self.machine_hosts().into_iter().map(|(id, workers)| PlacedHost {
                    name: id.as_str().to_string(),
                    plan,
                    machine: Some((id, workers)),
                })),
                HostRole::Dev => placed.extend((1..=self.topology.dev_hosts).map(|index| PlacedHost {
                    name: format!("dev-{index}"),
                    plan,
                    machine: None,
                })),
            }
        }
        placed
    }

    /// The storage of the agents a backpressure fault squeezes, overrides included: memory
    /// only if every one of them buffers in memory.
    fn squeezed_storage(
        &self,
        fault: &crate::faults::FaultSpec,
        hosts: &[String],
        machines: &[String],
    ) -> crate::parts::agent::StorageType {
        let squeezed = match fault {
            crate::faults::FaultSpec::Backpressure { target, .. } => {
                let selector = target.as_deref().unwrap_or(crate::faults::AGENT_MEM_BUF_TARGET_DEFAULT);
                crate::faults::resolve(selector, hosts, machines).unwrap_or_default()
            }
            _ => Vec::new(),
        };
        if squeezed.iter().all(|host| self.agent_for(host).storage == crate::parts::agent::StorageType::Memory) {
            crate::parts::agent::StorageType::Memory
        } else {
            crate::parts::agent::StorageType::Filesystem
        }
    }

    /// Each fault names known hosts, ends before the drain, and asks Dash0 for something valid.
    fn validate_faults(&self, path: &Path, source: &str) -> Result<(), ScenarioError> {
        if self.faults.len() > crate::faults::FAULTS_LIMIT {
            return Err(ScenarioError::at_path(
                path,
                source,
                "fault",
                format!("{} faults exceed the limit of {}", self.faults.len(), crate::faults::FAULTS_LIMIT),
            ));
        }
        let hosts = self.host_names();
        let machines: Vec<String> = self.machine_hosts().into_iter().map(|(id, _)| id.as_str().to_string()).collect();
        for (index, fault) in self.faults.iter().enumerate() {
            let fail = |key: &str, message: String| {
                Err(ScenarioError::at_path(path, source, &format!("fault[{index}].{key}"), message))
            };
            for (key, selector) in fault.selectors() {
                if crate::faults::resolve(selector, &hosts, &machines).is_none() {
                    return fail(
                        key,
                        format!(
                            "{selector:?} names no host of this topology (hosts: {}; groups: railway, machines, devs, machine:<type>-*)",
                            hosts.join(", ")
                        ),
                    );
                }
            }
            if let Some(end) = fault.end()
                && end > self.duration
            {
                return fail(
                    "at",
                    format!(
                        "the {} fault ends at {}, after duration {}: faults must end before the drain",
                        fault.kind(),
                        crate::units::format_duration(end),
                        crate::units::format_duration(self.duration)
                    ),
                );
            }
            if fault.at() >= self.duration {
                return fail(
                    "at",
                    format!(
                        "the {} fault starts at or after duration {}",
                        fault.kind(),
                        crate::units::format_duration(self.duration)
                    ),
                );
            }
            if let Err((key, message)) = fault.check_heal() {
                return fail(key, message);
            }
            if let Err((key, message)) = fault.check_backpressure() {
                return fail(key, message);
            }
            let storage = self.squeezed_storage(fault, &hosts, &machines);
            if let Err((key, message)) = fault.check_backpressure_targets(&hosts, &machines, storage) {
                return fail(key, message);
            }
            if let Err(message) = crate::faults::check_dash0(fault) {
                return fail("status", message);
            }
        }
        Ok(())
    }

    /// Machine ids in topology order: `comfyui-1`, `comfyui-2`, …, numbered per type.
    pub(crate) fn machine_hosts(&self) -> Vec<(crate::record::MachineId, u32)> {
        let mut next_per_type: std::collections::BTreeMap<MachineType, u32> = Default::default();
        let mut hosts = Vec::new();
        for group in &self.topology.machines {
            for _ in 0..group.count {
                let index = next_per_type.entry(group.machine_type).or_insert(0);
                *index += 1;
                let id = crate::record::MachineId::new(group.machine_type, &index.to_string())
                    .expect("a type and a number form a valid machine_id");
                hosts.push((id, group.workers));
            }
        }
        hosts
    }
}

/// Most log records one run may be asked to emit (`jobs_per_second` × `duration` ×
/// `logs_per_job`): the ledger holds every record, about a hundred bytes each.
pub(crate) const RECORDS_EXPECTED_LIMIT: u64 = 20_000_000;

// Every worker may hold a Redis connection; the world's backlog must outgrow the largest fleet.
const _: () = assert!((MACHINES_LIMIT * WORKERS_PER_MACHINE_LIMIT) as usize * 2 <= crate::world::TCP_CAPACITY);

/// One host of a run: its name, its entry in `vocab::pipeline::HOSTS`, and for a machine
/// its id and worker count.
#[derive(Clone, Debug)]
pub(crate) struct PlacedHost {
    pub name: String,
    pub(crate) plan: crate::vocab::pipeline::HostPlan,
    pub machine: Option<(crate::record::MachineId, u32)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each group's count is in range, but their total passes u32: the old u32 sum wrapped
    /// (a panic in a debug build, 1 machine in a release build, which then built 2^32). The
    /// total is refused with the key named.
    #[test]
    fn a_machine_total_past_u32_is_refused_not_wrapped() {
        let path = Path::new("wrap.toml");
        let source = "name = \"wrap\"\nduration = \"1m\"\n\n[topology]\nmachines = [{ type = \"comfyui\", count = 1 }, { type = \"comfyui\", count = 2 }]\n";
        let mut scenario = Scenario::parse(path, source).unwrap();
        scenario.topology.machines[0].count = u32::MAX;
        let error = scenario.validate_run(path, source).unwrap_err().to_string();
        assert!(error.contains("key `topology.machines`: 4294967297 machines exceed the limit of 500"), "{error}");
    }
}
