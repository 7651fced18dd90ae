//! The app: the EMP job lifecycle that produces every log, span and metric the pipeline
//! carries (ARCHITECTURE.md §1, the `app` row; the seed's "Job Lifecycle Flow").
//!
//! client → API (`job.submitted`, job hash with `traceparent`, `jobs:pending:{type}`) →
//! machine workers (BLMOVE, `job.executing`, service span, progress, completion) →
//! `jobs:completed` → API (`job.completed`, "Job completed").
//!
//! Where to look:
//! - [`api`]: client and API, submission and the completion consumer;
//! - [`machine`]: machines and their workers;
//! - [`dev`]: dev hosts POSTing JSON to Fluentd's in_http (and the correlation exemption);
//! - [`emit`]: identity, custody and the pipes to the host's agent and collector;
//! - [`book`]: the job book, each job's fate as the harness's ground truth;
//! - [`keys`]: the Redis keys; [`link`]: reconnecting Redis access; [`metrics`]: points;
//! - [`config`]: `[workload]` and `[app]`; [`control`]: the runtime load multiplier
//!   (a burst fault).
//!
//! Log lines per job (`logs_per_job` = L ≥ 8): API 2 at submission ("Job created", "Job
//! queued"), worker 4 in `job.executing` (received, started, progress, completed), service
//! L − 7 in the service span, API 1 in `job.completed`.

pub mod api;
pub mod book;
pub mod config;
pub mod control;
pub mod dev;
pub mod emit;
pub mod keys;
pub mod link;
pub mod machine;
pub mod metrics;

pub use api::{run_api, run_api_with_control};
pub use book::{JobBook, JobFate};
pub use config::{AppConfig, DevConfig, MachineTypeConfig, MetricsTemporality, WorkloadConfig};
pub use control::WorkloadControl;
pub use dev::{DevSpec, is_dev_log, run_dev};
pub use emit::{AppPipes, Emitter};
pub use machine::{MachineSpec, run_machine};
