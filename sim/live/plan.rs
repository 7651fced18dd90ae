//! What one `obsim serve` command runs: its live hosts with their configs, the sockets to
//! bind for them, where their peers are, and Dash0's script. Built from the command line and
//! the optional config file, checked before anything binds.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::cli::{CommonArgs, Dash0Script, ServeArgs, ServePart};
use crate::parts::aggregator::AggregatorConfig;
use crate::parts::dash0::{Dash0Config, Dash0Control, ScriptedErrors};
use crate::parts::redis::RedisConfig;
use crate::parts::shipper::ShipperConfig;
use crate::vocab::{Part, hosts, ports};

/// One socket to bind before the parts start, and the line that announces it.
#[derive(Clone, Debug)]
pub struct PlannedListener {
    /// The part's name in the announcement (`aggregator`, `redis`, `dash0`).
    pub part: &'static str,
    /// The protocol in the announcement: `forward`, `http`, `resp`, `otlp-http`, `otlp-grpc`.
    pub protocol: &'static str,
    /// The live host that binds it (the part's name).
    pub host: &'static str,
    /// The well-known port the part binds (its code binds `0.0.0.0:<port>`).
    pub port: u16,
    /// Where it really listens (port 0: the kernel picks).
    pub addr: SocketAddr,
    /// Further host names a dial to `port` may use for it (the pipeline's, from `ctx.peers`).
    pub names: Vec<&'static str>,
}

/// One live host and the software it runs.
#[derive(Clone, Debug)]
pub struct HostPlan {
    /// The host's name: its part's name.
    pub name: &'static str,
    pub software: PartPlan,
}

/// A part with its config.
#[derive(Clone, Debug)]
pub enum PartPlan {
    Redis(RedisConfig),
    Aggregator(AggregatorConfig),
    Shipper(ShipperConfig),
    Dash0(Dash0Config),
}

impl HostPlan {
    /// The part it runs.
    pub fn part(&self) -> Part {
        match self.software {
            PartPlan::Redis(_) => Part::Redis,
            PartPlan::Aggregator(_) => Part::Aggregator,
            PartPlan::Shipper(_) => Part::Shipper,
            PartPlan::Dash0(_) => Part::Dash0,
        }
    }
}

/// Everything one `obsim serve` runs.
#[derive(Clone, Debug)]
pub struct Plan {
    pub listeners: Vec<PlannedListener>,
    /// Peers outside the process: a dial to (host, port) goes to the address.
    pub resolves: Vec<(&'static str, u16, SocketAddr)>,
    /// Hosts in start order.
    pub hosts: Vec<HostPlan>,
    pub grace: Duration,
    pub events: Option<PathBuf>,
    script: Option<Dash0Script>,
}

/// The config file: the parts' tables as a scenario file spells them.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PartsFile {
    aggregator: Option<AggregatorConfig>,
    redis: Option<RedisConfig>,
    shipper: Option<ShipperConfig>,
    dash0: Option<Dash0Config>,
}

impl PartsFile {
    /// Reads `path` (none: every part's defaults); errors name the file and the key.
    fn read(path: Option<&Path>) -> Result<PartsFile, String> {
        let Some(path) = path else { return Ok(PartsFile::default()) };
        let text = std::fs::read_to_string(path)
            .map_err(|error| format!("obsim serve: reading --config {}: {error}", path.display()))?;
        toml::from_str(&text).map_err(|error| format!("obsim serve: --config {}: {error}", path.display()))
    }
}

impl Plan {
    /// The plan of `args`, every setting checked; errors name the flag or key.
    pub fn from_args(args: &ServeArgs) -> Result<Plan, String> {
        match &args.part {
            ServePart::Redis(a) => {
                let file = PartsFile::read(a.common.config.as_deref())?;
                let mut plan = Plan::empty(&a.common);
                plan.add_redis(a.listen, file.redis.unwrap_or_default());
                Ok(plan)
            }
            ServePart::Aggregator(a) => {
                let file = PartsFile::read(a.common.config.as_deref())?;
                let mut plan = Plan::empty(&a.common);
                plan.add_aggregator((a.listen, a.http), file.aggregator.unwrap_or_default(), a.shared_key.as_ref())?;
                plan.resolves.push((hosts::REDIS, ports::REDIS, resolve("--redis", &a.redis)?));
                Ok(plan)
            }
            ServePart::Dash0(a) => {
                let file = PartsFile::read(a.common.config.as_deref())?;
                let mut plan = Plan::empty(&a.common);
                plan.add_dash0((a.listen, a.grpc), file.dash0.unwrap_or_default(), &a.script)?;
                Ok(plan)
            }
            ServePart::Pipeline(a) => {
                let file = PartsFile::read(a.common.config.as_deref())?;
                let mut plan = Plan::empty(&a.common);
                // Start order as the pipeline's hosts: dash0, redis, aggregator, shipper.
                plan.add_dash0((a.otlp_http, a.grpc), file.dash0.unwrap_or_default(), &a.script)?;
                plan.add_redis(a.redis, file.redis.unwrap_or_default());
                plan.add_aggregator((a.listen, a.http), file.aggregator.unwrap_or_default(), a.shared_key.as_ref())?;
                let shipper = file.shipper.unwrap_or_default();
                shipper.validate().map_err(|error| format!("obsim serve: {error}"))?;
                plan.hosts.push(HostPlan { name: "shipper", software: PartPlan::Shipper(shipper) });
                Ok(plan)
            }
        }
    }

    fn empty(common: &CommonArgs) -> Plan {
        Plan {
            listeners: Vec::new(),
            resolves: Vec::new(),
            hosts: Vec::new(),
            grace: common.grace,
            events: common.events.clone(),
            script: None,
        }
    }

    fn add_redis(&mut self, listen: SocketAddr, config: RedisConfig) {
        self.listen("redis", "resp", ports::REDIS, listen, hosts::REDIS);
        self.hosts.push(HostPlan { name: "redis", software: PartPlan::Redis(config) });
    }

    fn add_aggregator(
        &mut self,
        (forward, http): (SocketAddr, SocketAddr),
        mut config: AggregatorConfig,
        shared_key: Option<&String>,
    ) -> Result<(), String> {
        if let Some(key) = shared_key {
            config.shared_key = Some(key.clone());
        }
        config.validate().map_err(|error| format!("obsim serve: {error}"))?;
        self.listen("aggregator", "forward", ports::AGGREGATOR_FORWARD, forward, hosts::AGGREGATOR);
        self.listen("aggregator", "http", ports::AGGREGATOR_HTTP, http, hosts::AGGREGATOR);
        self.hosts.push(HostPlan { name: "aggregator", software: PartPlan::Aggregator(config) });
        Ok(())
    }

    fn add_dash0(
        &mut self,
        (otlp_http, otlp_grpc): (SocketAddr, SocketAddr),
        mut config: Dash0Config,
        script: &Dash0Script,
    ) -> Result<(), String> {
        match &script.token {
            Some(token) => config.token = token.clone(),
            // No token asked for: accept any (README "Live mode"), unless the file set one.
            None => config.accept_any_token = config.token == Dash0Config::default().token,
        }
        config.check().map_err(|error| format!("obsim serve: {error}"))?;
        check_script(script)?;
        self.listen("dash0", "otlp-http", ports::DASH0_HTTP, otlp_http, hosts::DASH0);
        self.listen("dash0", "otlp-grpc", ports::DASH0_GRPC, otlp_grpc, hosts::DASH0);
        self.hosts.push(HostPlan { name: "dash0", software: PartPlan::Dash0(config) });
        self.script = Some(script.clone());
        Ok(())
    }

    fn listen(&mut self, part: &'static str, protocol: &'static str, port: u16, addr: SocketAddr, name: &'static str) {
        self.listeners.push(PlannedListener { part, protocol, host: part, port, addr, names: vec![name] });
    }

    /// Dash0's control with the script of the command line applied.
    pub(crate) fn dash0_control(&self) -> Result<Dash0Control, String> {
        self.script.as_ref().map_or_else(|| Ok(Dash0Control::new()), control_of)
    }

    /// When `--fail` ends, if it does.
    pub(crate) fn dash0_fail_for(&self) -> Option<Duration> {
        self.script.as_ref().filter(|script| script.fail.is_some()).and_then(|script| script.fail_for)
    }
}

/// The flags that only mean something with `--fail` need it; the rest is checked by the
/// control itself.
fn check_script(script: &Dash0Script) -> Result<(), String> {
    if script.fail.is_none() {
        for (flag, set) in [
            ("--retry-after", script.retry_after.is_some()),
            ("--fail-for", script.fail_for.is_some()),
            ("--fail-rate", script.fail_rate != 1.0),
        ] {
            if set {
                return Err(format!("obsim serve: {flag} needs --fail STATUS"));
            }
        }
    }
    // The control's own rules, checked before anything binds.
    control_of(script).map(drop)
}

/// A Dash0 control scripted as `script` says; errors name the flag.
fn control_of(script: &Dash0Script) -> Result<Dash0Control, String> {
    let control = Dash0Control::new();
    if let Some(status) = script.fail {
        let errors = ScriptedErrors { status, rate: script.fail_rate, retry_after: script.retry_after };
        control.set_errors(Some(errors)).map_err(|error| format!("obsim serve: --fail: {error}"))?;
    }
    control.set_slow(script.slow);
    control.set_rate_limit(script.rate_limit).map_err(|error| format!("obsim serve: --rate-limit: {error}"))?;
    Ok(control)
}

/// The first address `text` (`host:port`) resolves to; the error names `flag`.
fn resolve(flag: &str, text: &str) -> Result<SocketAddr, String> {
    text.to_socket_addrs()
        .map_err(|error| format!("obsim serve: {flag} {text}: {error}"))?
        .next()
        .ok_or_else(|| format!("obsim serve: {flag} {text}: no address"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    /// `obsim serve …` as the binary parses it.
    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        serve: ServeArgs,
    }

    fn plan(args: &[&str]) -> Result<Plan, String> {
        let cli =
            Cli::try_parse_from(std::iter::once("serve").chain(args.iter().copied())).map_err(|e| e.to_string())?;
        Plan::from_args(&cli.serve)
    }

    #[test]
    fn the_pipeline_runs_four_hosts_on_five_listeners() {
        let plan = plan(&["pipeline", "--listen", "127.0.0.1:0", "--redis", "127.0.0.1:0"]).unwrap();
        let names: Vec<&str> = plan.hosts.iter().map(|host| host.name).collect();
        assert_eq!(names, ["dash0", "redis", "aggregator", "shipper"]);
        let protocols: Vec<&str> = plan.listeners.iter().map(|l| l.protocol).collect();
        assert_eq!(protocols, ["otlp-http", "otlp-grpc", "resp", "forward", "http"]);
    }

    #[test]
    fn the_aggregator_dials_the_redis_flag_and_takes_the_shared_key() {
        let plan = plan(&["aggregator", "--redis", "127.0.0.1:7000", "--shared-key", "k"]).unwrap();
        assert_eq!(plan.resolves, [(hosts::REDIS, ports::REDIS, "127.0.0.1:7000".parse().unwrap())]);
        let PartPlan::Aggregator(config) = &plan.hosts[0].software else { panic!("not the aggregator") };
        assert_eq!(config.shared_key.as_deref(), Some("k"));
    }

    #[test]
    fn dash0_without_a_token_accepts_any_and_with_one_checks_it() {
        let open = plan(&["dash0"]).unwrap();
        let PartPlan::Dash0(config) = &open.hosts[0].software else { panic!("not dash0") };
        assert!(config.accept_any_token);
        let closed = plan(&["dash0", "--token", "t"]).unwrap();
        let PartPlan::Dash0(config) = &closed.hosts[0].software else { panic!("not dash0") };
        assert!(!config.accept_any_token);
        assert_eq!(config.token, "t");
    }

    #[test]
    fn a_broken_script_is_refused_naming_the_flag() {
        let error = plan(&["dash0", "--fail", "200"]).unwrap_err();
        assert!(error.contains("--fail") && error.contains("4xx or 5xx"), "{error}");
        let error = plan(&["dash0", "--retry-after", "5s"]).unwrap_err();
        assert!(error.contains("--retry-after needs --fail"), "{error}");
        let error = plan(&["dash0", "--rate-limit", "0"]).unwrap_err();
        assert!(error.contains("--rate-limit"), "{error}");
        let script = plan(&["dash0", "--fail", "503", "--retry-after", "5s", "--fail-for", "2s"]).unwrap();
        assert_eq!(script.dash0_fail_for(), Some(Duration::from_secs(2)));
    }

    #[test]
    fn a_config_file_with_an_unknown_table_is_refused_naming_the_file() {
        let dir = std::env::temp_dir().join(format!("obsim-live-plan-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("bad.toml");
        std::fs::write(&path, "[agregator]\nshared_key = \"k\"\n").unwrap();
        let error = plan(&["aggregator", "--config", path.to_str().unwrap()]).unwrap_err();
        assert!(error.contains("bad.toml") && error.contains("agregator"), "{error}");
        std::fs::write(&path, "[aggregator]\nredis_key = \"live:logs\"\n").unwrap();
        let good = plan(&["aggregator", "--config", path.to_str().unwrap()]).unwrap();
        let PartPlan::Aggregator(config) = &good.hosts[0].software else { panic!("not the aggregator") };
        assert_eq!(config.redis_key, "live:logs");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
