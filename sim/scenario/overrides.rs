//! `[[override]]`: part settings that differ on some hosts.
//!
//! ```toml
//! [[override]]
//! hosts = "openai-1"                # any host selector the faults accept
//! agent = { shared_key = "wrong" }  # any [agent] key
//!
//! [[override]]
//! hosts = "machine:comfyui-*"
//! agent = { storage = "memory" }
//! collector = { queue_size = 10 }   # any [collector] key
//! ```
//!
//! Why: some truths need a fleet that is not uniform: one rogue machine with a wrong
//! `shared_key` must lose its own records (`auth_rejected`) while the others deliver; one
//! group on memory storage loses what it buffers on a crash while the filesystem group
//! does not. A host's config is its section with the keys of every override that selects
//! it laid on top, in file order (a later override wins a key both set).
//!
//! Why raw tables merged key by key rather than partial structs: the override is read
//! exactly as the section is (same types, same defaults, same errors), with no second
//! declaration of every field to keep in step.

use std::path::Path;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::{Scenario, ScenarioError};
use crate::parts::agent::AgentConfig;
use crate::parts::collector::CollectorConfig;

/// One `[[override]]` table.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Override {
    /// The hosts it applies to: a host selector as the faults take (`openai-1`, `api`,
    /// `machines`, `machine:comfyui-*`); only hosts that run an agent and a collector
    /// (machines and `api`) may be selected.
    pub hosts: String,
    /// `[agent]` keys that differ on these hosts (an inline table: `agent = { storage =
    /// "memory" }`). The defaults shown are `[agent]`'s; an override left out keeps
    /// `[agent]`'s value.
    #[schemars(with = "Option<AgentConfig>")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<toml::Table>,
    /// `[collector]` keys that differ on these hosts, as for `agent`.
    #[schemars(with = "Option<CollectorConfig>")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collector: Option<toml::Table>,
}

/// `base` with `layers`' keys on top, read back as `T`; `Err((key, message))` names the
/// first layer key that does not read, or `("", message)` for the merged whole.
fn merged<T: Serialize + DeserializeOwned>(base: &T, layers: &[&toml::Table]) -> Result<T, (String, String)> {
    let Ok(mut table) = toml::Table::try_from(base) else {
        unreachable!("every part config serializes to a TOML table");
    };
    for layer in layers {
        for (key, value) in layer.iter() {
            // Each key alone first, so an error names it.
            let mut single = table.clone();
            single.insert(key.clone(), value.clone());
            if let Err(error) = toml::Value::Table(single).try_into::<T>() {
                return Err((key.clone(), error.message().trim_end().to_string()));
            }
            table.insert(key.clone(), value.clone());
        }
    }
    toml::Value::Table(table).try_into::<T>().map_err(|error| (String::new(), error.message().trim_end().to_string()))
}

/// `section.key`, or `section` for an error about the section as a whole (empty key).
fn join(section: &str, key: &str) -> String {
    if key.is_empty() { section.to_string() } else { format!("{section}.{key}") }
}

impl Scenario {
    /// The overrides that select `host`, in file order.
    fn overrides_of(&self, host: &str) -> Vec<&Override> {
        let hosts = self.host_names();
        let machines: Vec<String> = self.machine_hosts().into_iter().map(|(id, _)| id.as_str().to_string()).collect();
        self.overrides
            .iter()
            .filter(|rule| {
                crate::faults::resolve(&rule.hosts, &hosts, &machines)
                    .is_some_and(|selected| selected.iter().any(|name| name == host))
            })
            .collect()
    }

    /// The agent config `host` runs: `[agent]` with the overrides that select it on top
    /// (planted bugs kept). Load has checked every override, so the merge cannot fail.
    pub fn agent_for(&self, host: &str) -> AgentConfig {
        let layers: Vec<&toml::Table> =
            self.overrides_of(host).into_iter().filter_map(|rule| rule.agent.as_ref()).collect();
        if layers.is_empty() {
            return self.agent.clone();
        }
        let mut config = merged(&self.agent, &layers).unwrap_or_else(|(key, message)| {
            unreachable!("override agent.{key} of {host} was checked at load: {message}")
        });
        config.bugs = self.agent.bugs;
        config
    }

    /// The collector config `host` runs, as [`Scenario::agent_for`].
    pub fn collector_for(&self, host: &str) -> CollectorConfig {
        let layers: Vec<&toml::Table> =
            self.overrides_of(host).into_iter().filter_map(|rule| rule.collector.as_ref()).collect();
        if layers.is_empty() {
            return self.collector.clone();
        }
        let mut config = merged(&self.collector, &layers).unwrap_or_else(|(key, message)| {
            unreachable!("override collector.{key} of {host} was checked at load: {message}")
        });
        config.bugs = self.collector.bugs;
        config
    }

    /// Each override selects hosts of this topology that run an agent and a collector, and
    /// its keys read and keep their section's rules (checked on `[agent]`'s values with the
    /// override on top, once per override, and again per host where overrides stack).
    pub(super) fn validate_overrides(&self, path: &Path, source: &str) -> Result<(), ScenarioError> {
        let hosts = self.host_names();
        let machines: Vec<String> = self.machine_hosts().into_iter().map(|(id, _)| id.as_str().to_string()).collect();
        for (index, rule) in self.overrides.iter().enumerate() {
            let fail = |key: &str, message: String| {
                ScenarioError::at_path(path, source, &format!("override[{index}].{key}"), message)
            };
            let Some(selected) = crate::faults::resolve(&rule.hosts, &hosts, &machines) else {
                return Err(fail(
                    "hosts",
                    format!(
                        "{:?} names no host of this topology (hosts: {}; groups: machines, machine:<type>-*)",
                        rule.hosts,
                        hosts.join(", ")
                    ),
                ));
            };
            if let Some(host) =
                selected.iter().find(|host| host.as_str() != crate::vocab::hosts::API && !machines.contains(host))
            {
                return Err(fail(
                    "hosts",
                    format!(
                        "{:?} selects {host}, which runs no agent or collector (they run on the machines and on api)",
                        rule.hosts
                    ),
                ));
            }
            if rule.agent.is_none() && rule.collector.is_none() {
                return Err(fail("hosts", "the override sets nothing: give it `agent` or `collector` keys".into()));
            }
            if let Some(layer) = &rule.agent {
                let config =
                    merged(&self.agent, &[layer]).map_err(|(key, message)| fail(&join("agent", &key), message))?;
                if let Err((key, message)) = config.check_rules() {
                    return Err(fail(&join("agent", key), message));
                }
            }
            if let Some(layer) = &rule.collector {
                let config = merged(&self.collector, &[layer])
                    .map_err(|(key, message)| fail(&join("collector", &key), message))?;
                if let Err((key, message)) = config.check_rules() {
                    return Err(fail(&join("collector", key), message));
                }
            }
        }
        // Stacked overrides: every host's merged configs keep the rules too.
        for host in hosts.iter().filter(|host| host.as_str() == crate::vocab::hosts::API || machines.contains(host)) {
            let rules = self.overrides_of(host);
            if rules.len() < 2 {
                continue;
            }
            let agents: Vec<&toml::Table> = rules.iter().filter_map(|rule| rule.agent.as_ref()).collect();
            let collectors: Vec<&toml::Table> = rules.iter().filter_map(|rule| rule.collector.as_ref()).collect();
            let agent = merged(&self.agent, &agents)
                .map_err(|(_, message)| message)
                .and_then(|config| config.check_rules().map_err(|(key, message)| format!("agent.{key} {message}")));
            let collector = merged(&self.collector, &collectors)
                .map_err(|(_, message)| message)
                .and_then(|config| config.check_rules().map_err(|(key, message)| format!("collector.{key} {message}")));
            if let Err(message) = agent.and(collector) {
                return Err(ScenarioError::at_path(
                    path,
                    source,
                    "override",
                    format!("the overrides selecting {host} together break a rule: {message}"),
                ));
            }
        }
        Ok(())
    }
}
