//! The app's settings: `[workload]` (how many jobs, how chatty) and `[app]` (machine
//! types, service times, metrics, dev hosts, Redis timeouts). The integrator reads both
//! sections and puts the workload into [`AppConfig::workload`].
//!
//! EMP's services are not off-the-shelf software, so the defaults are plausible figures,
//! documented per field: ComfyUI renders take tens of seconds, simulations a few seconds,
//! OpenAI calls around a second. The design sketch's workload (`logs_per_job = 30`) is the
//! default.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::record::MachineType;

/// The smallest `logs_per_job`: the fixed lines of a job (API: created, queued, completed;
/// worker: received, started, progress, completed) plus one service line.
pub(crate) const LOGS_PER_JOB_MIN: u32 = 8;

/// Most `logs_per_job`: beyond it one job's lines alone would crowd a run.
pub(crate) const LOGS_PER_JOB_MAX: u32 = 10_000;

/// Most jobs submitted per second (before a `backpressure` burst multiplies it).
pub(crate) const JOBS_PER_SECOND_MAX: f64 = 1_000.0;

/// `[workload]`.
#[derive(Clone, Debug, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct WorkloadConfig {
    /// Mean job submissions per second (Poisson arrivals): 1. Above 0, at most 1000.
    #[schemars(range(min = 0.000001, max = JOBS_PER_SECOND_MAX))]
    pub jobs_per_second: f64,
    /// Log lines one job produces in total across API, worker and service: 30 (at least
    /// [`LOGS_PER_JOB_MIN`], 8, and at most [`LOGS_PER_JOB_MAX`], 10000; the service writes
    /// the lines beyond the fixed ones).
    #[schemars(range(min = LOGS_PER_JOB_MIN, max = LOGS_PER_JOB_MAX))]
    pub logs_per_job: u32,
    /// The client submits for this long, then stops so the drain phase can finish: 10m.
    /// Set by the integrator to the scenario's `duration`, never a key of `[workload]` (a
    /// key the run would overwrite is refused instead).
    #[serde(skip)]
    pub submit_for: Duration,
}

impl Default for WorkloadConfig {
    fn default() -> Self {
        WorkloadConfig { jobs_per_second: 1.0, logs_per_job: 30, submit_for: Duration::from_secs(600) }
    }
}

/// One machine type's jobs.
#[derive(Clone, Debug, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct MachineTypeConfig {
    /// Relative share of submitted jobs of this type (0: none are submitted), at most 1000.
    #[schemars(range(min = 0, max = 1_000))]
    pub(crate) weight: u32,
    /// Service time is drawn uniformly in [min, max].
    #[serde(with = "crate::units::duration_text")]
    pub service_time_min: Duration,
    /// The longest service time (at least `service_time_min`).
    #[serde(with = "crate::units::duration_text")]
    pub service_time_max: Duration,
}

/// A type section that names only some keys gets these for the rest: weight 1, 1–10 s.
impl Default for MachineTypeConfig {
    fn default() -> Self {
        MachineTypeConfig::new(1, 1_000, 10_000)
    }
}

impl MachineTypeConfig {
    fn new(weight: u32, min_ms: u64, max_ms: u64) -> Self {
        MachineTypeConfig {
            weight,
            service_time_min: Duration::from_millis(min_ms),
            service_time_max: Duration::from_millis(max_ms),
        }
    }
}

/// A dev host's logging.
#[derive(Clone, Debug, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct DevConfig {
    /// Log lines per second: 5 (1 to 10000).
    #[schemars(range(min = 1, max = 10_000))]
    pub logs_per_second: u32,
    /// How often the dev app POSTs what it logged (one JSON array): 1s.
    #[serde(with = "crate::units::duration_text")]
    pub(crate) flush_interval: Duration,
    /// POST attempts per batch before it is dropped with `app_dev_http_failed`: 5 (1 to 1000).
    #[schemars(range(min = 1, max = 1_000))]
    pub retry_limit: u32,
    /// Timeout of one POST: 5s.
    #[serde(with = "crate::units::duration_text")]
    pub request_timeout: Duration,
    /// First retry delay (doubling, jittered, capped at 30 s): 1s.
    #[serde(with = "crate::units::duration_text")]
    pub retry_initial: Duration,
}

impl Default for DevConfig {
    fn default() -> Self {
        DevConfig {
            logs_per_second: 5,
            flush_interval: Duration::from_secs(1),
            retry_limit: 5,
            request_timeout: Duration::from_secs(5),
            retry_initial: Duration::from_secs(1),
        }
    }
}

/// `[app]` (with the workload folded in).
#[derive(Clone, Debug, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct AppConfig {
    /// The top-level `[workload]`, put here by the integrator; never a key of `[app]`
    /// (`[app.workload]` is refused as an unknown key: the run would ignore it).
    #[serde(skip)]
    pub workload: WorkloadConfig,
    /// ComfyUI jobs: weight 5, 5–30 s.
    pub comfyui: MachineTypeConfig,
    /// Simulation jobs: weight 3, 2–10 s.
    pub simulation: MachineTypeConfig,
    /// OpenAI jobs: weight 2, 0.5–5 s.
    pub openai: MachineTypeConfig,
    /// Dev hosts.
    pub dev: DevConfig,
    /// How often each host writes its metric points: 10s (the OTel SDK's periodic reader
    /// default is 60 s; 10 s keeps short scenarios informative).
    #[serde(with = "crate::units::duration_text")]
    pub metrics_interval: Duration,
    /// Bound of each host's span and metric export queue to its collector (the integrator
    /// builds the queues with it): 10000 records.
    #[schemars(range(min = 1, max = 1_000_000))]
    pub log_pipe_records_limit: usize,
    /// Unread lines a host's log file keeps before rotation takes the oldest: 250000, about
    /// 50 MiB of 200-byte lines — kubelet's rotation (10 MiB × 5 files). The pipeline's
    /// rotation is not documented: FIDELITY.md "App".
    #[schemars(range(min = 1, max = 10_000_000))]
    pub log_file_records_limit: usize,
    /// BLMOVE server-side timeout for workers and the API's completion consumer: 1s.
    #[serde(with = "crate::units::duration_text")]
    pub(crate) blmove_timeout: Duration,
    /// Connect and round-trip timeout for Redis (beyond the BLMOVE timeout): 5s.
    #[serde(with = "crate::units::duration_text")]
    pub(crate) redis_timeout: Duration,
    /// Attempts of one Redis step (with reconnects and backoff) before the app gives up on
    /// it: 10.
    #[schemars(range(min = 1, max = 1_000))]
    pub(crate) redis_attempts_max: u32,
    /// How the app's counters and histogram are exported: `cumulative` (default; each
    /// point carries the total since the host started, so a point stored twice or lost is
    /// harmless once a later one arrives) or `delta` (each point carries the change since
    /// the previous export; Dash0 sums them, so a retried batch it had already stored is
    /// counted twice and a lost one is missing for good).
    pub metrics_temporality: MetricsTemporality,
    /// Planted bugs (`crate::parts::bugs`): set by the pipeline from the scenario's `[bugs]`, never
    /// a key of this section.
    #[serde(skip)]
    pub bugs: crate::parts::Bugs,
    /// The run's job book (the job flow's ground truth for the jobs and metrics checks):
    /// set by the pipeline, never a key of this section.
    #[serde(skip)]
    pub(crate) job_book: super::book::JobBook,
}

/// The aggregation temporality of the app's sums and histograms (OTLP
/// `AggregationTemporality`; see FIDELITY.md, "App").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MetricsTemporality {
    /// Totals since the host (its process) started; a restart starts a new stream.
    #[default]
    Cumulative,
    /// Changes since the previous export.
    Delta,
}

impl MetricsTemporality {
    /// The record-level temporality the points carry.
    pub(crate) fn as_record(self) -> crate::record::Temporality {
        match self {
            MetricsTemporality::Cumulative => crate::record::Temporality::Cumulative,
            MetricsTemporality::Delta => crate::record::Temporality::Delta,
        }
    }
}

impl Default for AppConfig {
    fn default() -> Self {
        AppConfig {
            workload: WorkloadConfig::default(),
            comfyui: MachineTypeConfig::new(5, 5_000, 30_000),
            simulation: MachineTypeConfig::new(3, 2_000, 10_000),
            openai: MachineTypeConfig::new(2, 500, 5_000),
            dev: DevConfig::default(),
            metrics_interval: Duration::from_secs(10),
            log_pipe_records_limit: 10_000,
            log_file_records_limit: 250_000,
            blmove_timeout: Duration::from_secs(1),
            redis_timeout: Duration::from_secs(5),
            redis_attempts_max: 10,
            metrics_temporality: MetricsTemporality::Cumulative,
            bugs: crate::parts::Bugs::default(),
            job_book: super::book::JobBook::default(),
        }
    }
}

impl AppConfig {
    /// The settings of `machine_type`'s jobs.
    pub(crate) fn machine_type(&self, machine_type: MachineType) -> &MachineTypeConfig {
        match machine_type {
            MachineType::Comfyui => &self.comfyui,
            MachineType::Simulation => &self.simulation,
            MachineType::Openai => &self.openai,
        }
    }

    /// Zeroes the weight of every type not in `present`: jobs of a type without machines
    /// would never complete. The integrator calls this with the topology's types.
    pub fn only_types(mut self, present: &[MachineType]) -> Self {
        for machine_type in MachineType::ALL {
            if !present.contains(&machine_type) {
                match machine_type {
                    MachineType::Comfyui => self.comfyui.weight = 0,
                    MachineType::Simulation => self.simulation.weight = 0,
                    MachineType::Openai => self.openai.weight = 0,
                }
            }
        }
        self
    }

    /// Checks the bounds the loops rely on; the error names the key.
    pub fn validate(&self) -> Result<(), String> {
        self.check_rules().map_err(|(key, message)| format!("[app] {key}: {message}"))
    }

    /// The rules the run relies on, as `(key, message)` (keys under `workload.` belong to
    /// `[workload]`); the numbers' ranges are also in the scenario schema.
    pub(crate) fn check_rules(&self) -> Result<(), (String, String)> {
        let w = &self.workload;
        if !(w.jobs_per_second.is_finite() && w.jobs_per_second > 0.0 && w.jobs_per_second <= JOBS_PER_SECOND_MAX) {
            return Err((
                "workload.jobs_per_second".into(),
                format!("{} must be above 0 and at most {JOBS_PER_SECOND_MAX}", w.jobs_per_second),
            ));
        }
        if !(LOGS_PER_JOB_MIN..=LOGS_PER_JOB_MAX).contains(&w.logs_per_job) {
            return Err((
                "workload.logs_per_job".into(),
                format!("{} must be {LOGS_PER_JOB_MIN} to {LOGS_PER_JOB_MAX}", w.logs_per_job),
            ));
        }
        if MachineType::ALL.iter().all(|t| self.machine_type(*t).weight == 0) {
            // About the section as a whole (the key is empty): no one weight is wrong.
            return Err((
                String::new(),
                "at least one machine type of the topology needs a weight above 0".to_string(),
            ));
        }
        for machine_type in MachineType::ALL {
            let t = self.machine_type(machine_type);
            if t.service_time_min > t.service_time_max {
                return Err((
                    format!("{}.service_time_min", machine_type.as_str()),
                    "exceeds service_time_max".to_string(),
                ));
            }
        }
        for (key, value) in [
            ("metrics_interval", self.metrics_interval),
            ("blmove_timeout", self.blmove_timeout),
            ("redis_timeout", self.redis_timeout),
            ("dev.flush_interval", self.dev.flush_interval),
            ("dev.request_timeout", self.dev.request_timeout),
            ("dev.retry_initial", self.dev.retry_initial),
        ] {
            if value.is_zero() {
                return Err((key.to_string(), "must be more than zero".to_string()));
            }
        }
        for (key, value) in [
            ("log_pipe_records_limit", self.log_pipe_records_limit as u64),
            ("log_file_records_limit", self.log_file_records_limit as u64),
            ("redis_attempts_max", u64::from(self.redis_attempts_max)),
            ("dev.retry_limit", u64::from(self.dev.retry_limit)),
            ("dev.logs_per_second", u64::from(self.dev.logs_per_second)),
        ] {
            if value == 0 {
                return Err((key.to_string(), "must be at least 1".to_string()));
            }
        }
        Ok(())
    }
}
