//! `AggregatorControl`: the harness's handle on a running Fluentd — a runtime override of
//! the buffer's `total_limit_size` (the `backpressure` fault, `what = "aggregator_buffer"`)
//! and the gauge its buffer reports to (the `bounds` check).
//!
//! Why a shared knob: the fault injector runs between turmoil steps, outside every host.
//! The buffer reads the knob on every admission, so a shrink takes effect at the next write
//! (as a reloaded Fluentd would judge `storable?` against its new limit); what it already
//! holds stays (Fluentd never drops buffered chunks for a smaller limit: `overflow_action`
//! only decides the fate of *new* writes). The override outlives a restart of the host
//! (the squeeze is the environment's): a restarted aggregator applies it from its first write.

use std::sync::{Arc, Mutex};

use crate::gauges::{BufferGauges, GaugeHandle, GaugeSpec};

/// A handle on the override and the gauges; clones share them. `AggregatorControl::new()`
/// is inert: the configured limit, no gauge.
#[derive(Clone, Debug, Default)]
pub struct AggregatorControl {
    total_bytes_limit: Arc<Mutex<Option<u64>>>,
    /// The certificate in_forward presents with `tls` on (the `tls_*` faults flip it; read
    /// at every handshake, so connections already made keep theirs).
    cert: crate::world::tls::CertSwitch,
    gauges: Option<BufferGauges>,
}

impl AggregatorControl {
    /// No override, no gauge.
    pub fn new() -> Self {
        AggregatorControl::default()
    }

    /// The same control, reporting the buffer's level to `gauges`.
    pub(crate) fn with_gauges(mut self, gauges: BufferGauges) -> Self {
        self.gauges = Some(gauges);
        self
    }

    /// Overrides `total_limit_size` with `bytes` (must be above 0), or restores the
    /// configured value (`None`).
    pub(crate) fn set_total_bytes_limit(&self, bytes: Option<u64>) {
        assert!(bytes != Some(0), "a total_limit_size of 0 would refuse every write; validated at load");
        *self.total_bytes_limit.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = bytes;
    }

    /// The override in force, if any.
    pub fn total_bytes_limit(&self) -> Option<u64> {
        *self.total_bytes_limit.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Presents `choice` at in_forward's next TLS handshakes.
    pub(crate) fn set_served_cert(&self, choice: crate::world::tls::CertChoice) {
        self.cert.set(choice);
    }

    /// The switch in_forward's certificate resolver reads.
    pub(crate) fn cert_switch(&self) -> crate::world::tls::CertSwitch {
        self.cert.clone()
    }

    /// The gauge of `buffer` on `host` (inert without gauges).
    pub fn gauge(&self, host: &str, buffer: &'static str, spec: GaugeSpec) -> GaugeHandle {
        self.gauges.as_ref().map_or_else(GaugeHandle::inert, |gauges| gauges.register(host, buffer, spec))
    }
}
