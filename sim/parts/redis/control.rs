//! `RedisControl`: a runtime override of `maxmemory`, shared between the harness and the
//! server, so a fault can shrink Redis's memory at a moment (ARCHITECTURE.md §3, `backpressure`)
//! the way an operator's `CONFIG SET maxmemory <bytes>` would.
//!
//! Why a shared knob and not a CONFIG SET over the network: the fault injector runs between
//! turmoil steps, outside every host; a client on some host would need a route (partitions
//! could cut it) and the password. The server consults the knob before each command and
//! applies a change exactly as `CONFIG SET maxmemory` does (`Db::set_maxmemory_bytes`).
//! The override outlives a restart of the host (the fault is the environment's, not a
//! setting Redis forgets): a restarted server applies it before its first command.
//!
//! The control also carries the gauges (the `bounds` check): the server reports
//! `used_memory` against the `maxmemory` in force whenever a command changes it, once a
//! `maxmemory` above 0 has been in force.

use std::sync::{Arc, Mutex};

use crate::gauges::{BufferGauges, GaugeHandle, GaugeSpec};

/// A handle on the override and the gauges; clones share them. `RedisControl::new()` is
/// inert.
#[derive(Clone, Debug, Default)]
pub struct RedisControl {
    inner: Arc<Mutex<ControlState>>,
    gauges: Option<BufferGauges>,
}

#[derive(Debug, Default)]
struct ControlState {
    /// `Some(bytes)` overrides `[redis] maxmemory_bytes`; `None` restores it.
    maxmemory_bytes: Option<u64>,
    /// Bumped on every change, so the server applies each change once.
    generation: u64,
}

impl RedisControl {
    /// No override: the server runs with its config.
    pub fn new() -> Self {
        RedisControl::default()
    }

    /// The same control, reporting `used_memory` to `gauges`.
    pub(crate) fn with_gauges(mut self, gauges: BufferGauges) -> Self {
        self.gauges = Some(gauges);
        self
    }

    /// The gauge of `buffer` on `host` (inert without gauges).
    pub fn gauge(&self, host: &str, buffer: &'static str, spec: GaugeSpec) -> GaugeHandle {
        self.gauges.as_ref().map_or_else(GaugeHandle::inert, |gauges| gauges.register(host, buffer, spec))
    }

    /// Overrides `maxmemory` with `bytes` (0 = no limit, as in redis.conf), or restores the
    /// configured value (`None`).
    pub fn set_maxmemory_bytes(&self, bytes: Option<u64>) {
        let mut state = self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        state.maxmemory_bytes = bytes;
        state.generation += 1;
    }

    /// The current override and its generation.
    pub fn maxmemory_bytes(&self) -> (Option<u64>, u64) {
        let state = self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        (state.maxmemory_bytes, state.generation)
    }
}
