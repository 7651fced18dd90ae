//! The `obsim` command line.
//!
//! `obsim probe` runs the world's determinism probe and prints its event-log hash; the
//! pipeline's `run`, `check`, `replay` and `chaos` commands build on the same world;
//! `obsim schema` prints the scenario files' JSON Schema for editors.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use obsim::pipeline::Pipeline;
use obsim::scenario::Scenario;
use obsim::units::parse_duration;
use obsim::world::probe::{self, ProbeConfig};

/// Deterministic simulation and chaos testing of a Fluent Bit → Fluentd → Redis → Dash0
/// observability pipeline.
#[derive(Parser)]
#[command(name = "obsim", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a scenario through the simulated pipeline and judge it. Exit status: 0 when
    /// every check held, 1 when a check failed, 2 when the scenario is invalid.
    Run {
        /// The scenario file, e.g. scenarios/baseline.toml.
        scenario: PathBuf,
        /// Override the scenario's seed.
        #[arg(long)]
        seed: Option<u64>,
    },
    /// Replay a failure file written by `obsim run`: same seed, same schedule; exits 0 when
    /// the run reproduces the recorded verdict and event-log hash, 1 when it does not.
    Replay {
        /// The failure file, e.g. reports/<scenario>/<seed>/failure.toml.
        failure: PathBuf,
    },
    /// Validate a scenario file without running it. Exit status 0 when valid, 2 when not
    /// (the error names file, line and key).
    Check {
        /// The scenario file.
        scenario: PathBuf,
    },
    /// Print the JSON Schema of scenario files (draft-07) for editors:
    /// `obsim schema > scenario.schema.json`, then put `#:schema ./scenario.schema.json` at
    /// the top of a scenario (Taplo / Even Better TOML) to get completion and validation.
    Schema,
    /// Run the world's determinism probe (hosts exchanging messages over the simulated
    /// network with skewed clocks) and print the event-log hash. The same seed prints the
    /// same hash in any process on any machine.
    Probe {
        /// The seed of the run.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Node hosts besides the hub.
        #[arg(long, default_value_t = 4)]
        nodes: u32,
        /// Simulated time to run, e.g. 30s, 2m.
        #[arg(long, default_value = "30s", value_parser = parse_duration)]
        duration: Duration,
        /// Print every event, not only the hash.
        #[arg(long)]
        events: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run { scenario, seed } => run(&scenario, seed),
        Command::Replay { failure } => replay(&failure),
        Command::Check { scenario } => match Scenario::load(&scenario) {
            Ok(loaded) => {
                let machines: u32 = loaded.topology.machines.iter().map(|group| group.count).sum();
                println!(
                    "{}: valid — {machines} machines, {} dev hosts, {} faults, {} + {} drain",
                    scenario.display(),
                    loaded.topology.dev_hosts,
                    loaded.faults.len(),
                    obsim::units::format_duration(loaded.duration),
                    obsim::units::format_duration(loaded.drain)
                );
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("obsim check: invalid scenario: {error}");
                ExitCode::from(2)
            }
        },
        Command::Schema => {
            print!("{}", obsim::scenario::schema::json_schema_text());
            ExitCode::SUCCESS
        }
        Command::Probe { seed, nodes, duration, events } => {
            if nodes == 0 {
                eprintln!("obsim probe: --nodes must be at least 1");
                return ExitCode::from(2);
            }
            let config = ProbeConfig { seed, nodes_count: nodes, duration, ..ProbeConfig::default() };
            match probe::run_with_log(config) {
                Ok((outcome, log)) => {
                    if events {
                        let mut stdout = std::io::stdout().lock();
                        if let Err(error) = log.write_text(&mut stdout) {
                            eprintln!("obsim probe: writing events: {error}");
                            return ExitCode::from(1);
                        }
                    }
                    println!("seed {seed}");
                    println!("simulated {:.3}s, {} events", outcome.elapsed.as_secs_f64(), outcome.events_count);
                    println!("event-log hash {}", outcome.hash);
                    println!("replay: obsim probe --seed {seed} --nodes {nodes} --duration {}", obsim::units::format_duration(duration));
                    ExitCode::SUCCESS
                }
                Err(error) => {
                    eprintln!("obsim probe: {error} (seed {seed})");
                    ExitCode::from(1)
                }
            }
        }
    }
}

/// `obsim run`: load, run, judge, print.
fn run(path: &std::path::Path, seed: Option<u64>) -> ExitCode {
    let scenario = match Scenario::load(path) {
        Ok(scenario) => Arc::new(scenario),
        Err(error) => {
            eprintln!("obsim run: invalid scenario: {error}");
            return ExitCode::from(2);
        }
    };
    let seed = seed.unwrap_or(scenario.seed);
    match Pipeline::run_and_judge(Arc::clone(&scenario), seed) {
        Ok(mut verdict) => {
            verdict.scenario_path = Some(path.display().to_string());
            print!("{}", verdict.render());
            if verdict.passed() {
                return ExitCode::SUCCESS;
            }
            match write_failure(path, &scenario.name, seed, &verdict) {
                Ok(failure) => println!("failure file: {} (obsim replay {0})", failure.display()),
                Err(error) => eprintln!("obsim run: could not write the failure file: {error}"),
            }
            ExitCode::from(1)
        }
        Err(error) => {
            eprintln!("obsim run: the simulation stopped: {error}");
            eprintln!("replay: cargo run --release -- run {} --seed {seed}", path.display());
            ExitCode::from(1)
        }
    }
}

/// Writes `reports/<scenario>/<seed>/failure.toml`: the scenario with its seed inlined and the
/// verdict and hash it produced.
fn write_failure(path: &std::path::Path, name: &str, seed: u64, verdict: &obsim::pipeline::Verdict) -> std::io::Result<PathBuf> {
    let source = std::fs::read_to_string(path)?;
    let dir = PathBuf::from("reports").join(name).join(seed.to_string());
    std::fs::create_dir_all(&dir)?;
    let failure = dir.join("failure.toml");
    std::fs::write(&failure, obsim::replay::failure_file_text(&source, seed, verdict))?;
    Ok(failure)
}

/// `obsim replay`: run a failure file and compare with what it recorded.
fn replay(path: &std::path::Path) -> ExitCode {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) => {
            eprintln!("obsim replay: cannot read {}: {error}", path.display());
            return ExitCode::from(2);
        }
    };
    let Some((recorded_hash, recorded_verdict)) = obsim::replay::recorded(&text) else {
        eprintln!("obsim replay: {} is not a failure file (no `# obsim failure:` header); use obsim run", path.display());
        return ExitCode::from(2);
    };
    let scenario = match Scenario::parse(path, &text) {
        Ok(scenario) => Arc::new(scenario),
        Err(error) => {
            eprintln!("obsim replay: invalid scenario: {error}");
            return ExitCode::from(2);
        }
    };
    let seed = scenario.seed;
    match Pipeline::run_and_judge(scenario, seed) {
        Ok(mut verdict) => {
            verdict.scenario_path = Some(path.display().to_string());
            print!("{}", verdict.render());
            let verdict_text = if verdict.passed() { "PASS" } else { "FAIL" };
            let hash = verdict.outcome.hash.to_string();
            if hash == recorded_hash && verdict_text == recorded_verdict {
                println!("replayed: same verdict ({verdict_text}), same event-log hash");
                ExitCode::SUCCESS
            } else {
                println!("NOT REPRODUCED: recorded {recorded_verdict} {recorded_hash}, got {verdict_text} {hash}");
                ExitCode::from(1)
            }
        }
        Err(error) => {
            eprintln!("obsim replay: the simulation stopped: {error}");
            ExitCode::from(1)
        }
    }
}
