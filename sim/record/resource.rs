//! The resource: who emitted a batch (service, machine, environment, region). Agents and
//! collectors attach it; Fluentd's enrichment fills in environment and region for logs, so
//! those two are optional here.

use serde::{Deserialize, Serialize};

use super::attributes::Attributes;

/// OTLP resource attributes obsim uses, plus ordered extras.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Resource {
    /// `service.name` (required, non-empty).
    pub service_name: String,
    /// `machine.id`: a machine id, or the host name for non-machine hosts (API, Railway).
    pub machine_id: Option<String>,
    /// `deployment.environment`.
    pub deployment_environment: Option<String>,
    /// `cloud.region`.
    pub cloud_region: Option<String>,
    /// Other resource attributes, in order.
    pub extras: Attributes,
}

impl Resource {
    /// A resource with only `service.name`.
    pub fn new(service_name: impl Into<String>) -> Self {
        let service_name = service_name.into();
        assert!(!service_name.is_empty(), "service.name must not be empty");
        Self {
            service_name,
            machine_id: None,
            deployment_environment: None,
            cloud_region: None,
            extras: Attributes::new(),
        }
    }

    /// Sets `machine.id`.
    pub fn with_machine_id(mut self, machine_id: impl Into<String>) -> Self {
        self.machine_id = Some(machine_id.into());
        self
    }

    /// Sets `deployment.environment`.
    pub fn with_environment(mut self, environment: impl Into<String>) -> Self {
        self.deployment_environment = Some(environment.into());
        self
    }

    /// Sets `cloud.region`.
    pub fn with_region(mut self, region: impl Into<String>) -> Self {
        self.cloud_region = Some(region.into());
        self
    }
}
