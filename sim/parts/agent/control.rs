//! `AgentControl`: the harness's handle on the running Fluent Bits — a runtime override of
//! `mem_buf_limit` per host (the `backpressure` fault, `what = "agent_mem_buf"`) and the
//! gauges their buffers report to (the `bounds` check).
//!
//! Why one handle for every agent, keyed by host: a fault names its targets with a host
//! selector (`machines`, `machine:comfyui-*`, `api`), resolved by the injector outside every
//! host; each agent looks up its own host's override. The store reads it whenever it decides
//! whether the input is paused, so a shrink below what the agent buffers pauses its input at
//! once (records stay in the app's log pipe — the file tail has not read yet), and a restore
//! resumes it. The override outlives a restart of the host, like the others.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use crate::gauges::{BufferGauges, GaugeHandle, GaugeSpec};

/// A handle on the overrides and the gauges; clones share them. `AgentControl::new()` is
/// inert: every agent runs with its config, no gauge.
#[derive(Clone, Debug, Default)]
pub struct AgentControl {
    /// Host name → `mem_buf_limit` in force instead of the config's.
    mem_buf_bytes_limits: Arc<Mutex<BTreeMap<String, u64>>>,
    gauges: Option<BufferGauges>,
}

impl AgentControl {
    /// No override, no gauge.
    pub fn new() -> Self {
        AgentControl::default()
    }

    /// The same control, reporting every agent's buffer levels to `gauges`.
    pub(crate) fn with_gauges(mut self, gauges: BufferGauges) -> Self {
        self.gauges = Some(gauges);
        self
    }

    /// Overrides the agent on `host`'s `mem_buf_limit` with `bytes` (must be above 0), or
    /// restores its configured value (`None`).
    pub(crate) fn set_mem_buf_bytes_limit(&self, host: &str, bytes: Option<u64>) {
        assert!(bytes != Some(0), "a mem_buf_limit of 0 would pause the input for good; validated at load");
        let mut limits = self.mem_buf_bytes_limits.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        match bytes {
            Some(bytes) => {
                limits.insert(host.to_string(), bytes);
            }
            None => {
                limits.remove(host);
            }
        }
    }

    /// The override in force on `host`, if any.
    pub fn mem_buf_bytes_limit(&self, host: &str) -> Option<u64> {
        let limits = self.mem_buf_bytes_limits.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if limits.is_empty() { None } else { limits.get(host).copied() }
    }

    /// The gauge of `buffer` on `host` (inert without gauges).
    pub fn gauge(&self, host: &str, buffer: &'static str, spec: GaugeSpec) -> GaugeHandle {
        self.gauges.as_ref().map_or_else(GaugeHandle::inert, |gauges| gauges.register(host, buffer, spec))
    }
}
