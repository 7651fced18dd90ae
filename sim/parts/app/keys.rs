//! The Redis keys of the job queue, in one place.
//!
//! - `job:{job_id}`: the job hash (`traceparent`, `status`, `type`, `submitted_at`,
//!   `progress`, `machine_id`, `worker_id`, `completed_at`);
//! - `jobs:pending:{type}`: one queue per machine type, RPUSHed by the API;
//! - `jobs:active:{worker_id}`: the worker's reliable-queue processing list;
//! - `jobs:completed`: completion events (job ids), RPUSHed by workers;
//! - `jobs:completed:processing`: the API's processing list for completion events.

use crate::record::{JobId, MachineType, WorkerId};

/// Completion events.
pub(crate) const COMPLETED: &str = "jobs:completed";
/// The API's processing list of completion events.
pub(crate) const COMPLETED_PROCESSING: &str = "jobs:completed:processing";

/// The job hash.
pub fn job(job_id: &JobId) -> String {
    format!("job:{job_id}")
}

/// The pending queue of a machine type.
pub fn pending(machine_type: MachineType) -> String {
    format!("jobs:pending:{}", machine_type.as_str())
}

/// A worker's processing list.
pub fn active(worker_id: &WorkerId) -> String {
    format!("jobs:active:{worker_id}")
}
