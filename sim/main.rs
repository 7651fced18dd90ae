//! The `obsim` command line.
//!
//! `obsim probe` runs the world's determinism probe and prints its event-log hash; the
//! pipeline's `run`, `check`, `replay` and `chaos` commands build on the same world;
//! `obsim schema` prints the scenario files' JSON Schema for editors; `obsim report`
//! compares and merges what runs and sweeps wrote; `obsim bench` measures the simulation's
//! speed (README "Performance").

// The determinism rules (clippy.toml, ARCHITECTURE.md §2) hold here too: the wall clock is
// read only where a line says why (`determinism: ok`).
#![warn(clippy::disallowed_methods, clippy::disallowed_types)]

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use obsim::check::Verdict;
use obsim::pipeline::Pipeline;
use obsim::scenario::Scenario;
use obsim::units::parse_duration;
use obsim::world::probe::{self, ProbeConfig};

/// `print!` for this file: writes through [`write_stdout`], which stays quiet when the
/// reader has gone (`obsim run … | head`); std's `print!` panics on a broken pipe. Defined
/// before any use, so it shadows std's macro everywhere below.
macro_rules! print {
    ($($arg:tt)*) => { crate::write_stdout(format_args!($($arg)*)) };
}

/// `println!` for this file, as [`print!`] above.
macro_rules! println {
    () => { crate::write_stdout(format_args!("\n")) };
    ($($arg:tt)*) => { crate::write_stdout(format_args!("{}\n", format_args!($($arg)*))) };
}

/// Set once stdout's reader has gone: later output is dropped unwritten.
static STDOUT_CLOSED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Writes to stdout. A broken pipe (the reader closed, e.g. `| head`) ends all further
/// output quietly while the command finishes its work (reports are still written) and
/// exits with its own status; any other write error is reported once on stderr.
fn write_stdout(text: std::fmt::Arguments<'_>) {
    use std::io::Write as _;
    use std::sync::atomic::Ordering;
    if STDOUT_CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let mut stdout = std::io::stdout().lock();
    if let Err(error) = stdout.write_fmt(text).and_then(|()| stdout.flush()) {
        STDOUT_CLOSED.store(true, Ordering::Relaxed);
        if error.kind() != std::io::ErrorKind::BrokenPipe {
            eprintln!("obsim: writing to stdout: {error}");
        }
    }
}

/// The exit status of `run`, `chaos` and `report merge` when their reports (result files,
/// the sweep's index, failure files) could not be written: distinct from 1 (a check or run
/// failed) and 2 (invalid input), so a script can tell "the pipeline failed" from "obsim
/// could not say".
const EXIT_REPORTS_UNWRITTEN: u8 = 3;

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
    /// every check held, 1 when a check failed, 2 when the scenario is invalid, 3 when the
    /// reports could not be written (whatever the verdict; it is still printed).
    /// Writes reports/<scenario>/<seed>/: result.json, summary.md, report.html, events.log
    /// (and failure.toml when a check failed). Given a folder or several files, runs each
    /// scenario with its own seed and writes the library summary (summary.md, summary.html)
    /// into the reports folder; 1 when any failed, 2 (before running any) when one is invalid.
    Run {
        /// The scenario file, e.g. scenarios/baseline.toml; or folders of them, or several.
        #[arg(required = true)]
        scenarios: Vec<PathBuf>,
        /// Override the scenario's seed (every scenario's, given several).
        #[arg(long)]
        seed: Option<u64>,
        /// The folder reports go under (<reports>/<scenario>/<seed>/), and the library
        /// summary of several scenarios.
        #[arg(long, visible_alias = "out", default_value = "reports")]
        reports: PathBuf,
        /// Also write what Dash0 stored as OTLP JSON into this folder: logs.json,
        /// traces.json, metrics.json (README "Querying Dash0 and exporting what it stored");
        /// given several scenarios, into <export>/<scenario>/.
        #[arg(long)]
        export: Option<PathBuf>,
        /// Also write the runs as JUnit XML here: one test case per scenario, a failure
        /// carrying the failed checks and the replay command (README "CI results").
        #[arg(long)]
        junit: Option<PathBuf>,
    },
    /// Replay a failure file written by `obsim run`: same seed, same schedule; exits 0 when
    /// the run reproduces the recorded verdict and event-log hash, 1 when it does not.
    Replay {
        /// The failure file, e.g. reports/<scenario>/<seed>/failure.toml.
        failure: PathBuf,
    },
    /// Sweep seeds over scenario files with random fault schedules (each file's `[chaos]`
    /// table, or one derived from its config, says which kinds), shrink every failure to a small replayable scenario, and
    /// write the sweep's index as runs finish. Exit status: 0 when every run passed, 1 when
    /// a run failed, 2 when the input is invalid, 3 when the index or a run's files could
    /// not be written.
    Chaos {
        /// Scenario files or folders of them; files with `[chaos] skip` are listed, not swept.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Seeds per file.
        #[arg(long, default_value_t = 50)]
        seeds: u64,
        /// Stop starting new runs and shrinking after this much wall-clock time (e.g. 30m);
        /// with it, `--seeds` is the most the sweep may reach, and a failure whose shrinking
        /// the budget cut short keeps the smallest case so far and says so.
        #[arg(long, value_parser = parse_duration)]
        time: Option<Duration>,
        /// The first seed (the sweep runs first-seed .. first-seed + seeds).
        #[arg(long, default_value_t = 1)]
        first_seed: u64,
        /// Runs at once; results are the same for any value.
        #[arg(long, default_value_t = 1)]
        jobs: usize,
        /// This machine's part of the sweep, i/n (1-based); the parts of n shards union to
        /// the whole sweep.
        #[arg(long, value_parser = obsim::report::index::Shard::parse)]
        shard: Option<obsim::report::index::Shard>,
        /// Plant a bug (`[bugs]` name) in every case, e.g. aggregator_ack_before_buffer.
        #[arg(long = "bug")]
        bugs: Vec<String>,
        /// Most runs spent shrinking one failure (0: do not shrink).
        #[arg(long, default_value_t = 100)]
        shrink_runs: u32,
        /// Where the index and failure files go.
        #[arg(long, default_value = "reports/chaos")]
        out: PathBuf,
        /// Also write the sweep as JUnit XML here: one test case per scenario × seed
        /// (README "CI results").
        #[arg(long)]
        junit: Option<PathBuf>,
    },
    /// Promote a failure file (e.g. a shrunk chaos failure) into a regression scenario that
    /// every `cargo test` runs: written to fixtures/regressions/<name>.toml without the
    /// failure header, as scenario `regression-<name>` (its reports do not overwrite the
    /// scenario it came from). A failure with planted bugs (`--bug`) is refused: with them
    /// the regression could never pass. Run it after the fix: it must pass. Exit status: 0
    /// promoted, 2 refused (the message says why), 3 the file could not be written.
    Promote {
        /// The failure file.
        failure: PathBuf,
        /// The regression's file name (without .toml); its scenario name is
        /// `regression-<name>`.
        #[arg(long)]
        name: String,
        /// Remove the failure's planted bugs (`[bugs]`) instead of refusing, saying so.
        #[arg(long)]
        strip_bugs: bool,
        /// The folder of regression scenarios.
        #[arg(long, default_value = "fixtures/regressions")]
        into: PathBuf,
    },
    /// Compare or merge reports.
    Report {
        #[command(subcommand)]
        command: ReportCommand,
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
    /// Measure the simulation's speed on a fixed set of cases (the baseline, fleets of 25 to
    /// 1,000 machines, a 16,000 logs/s load), each in a process of its own: simulated seconds
    /// per wall second, records per CPU-second, peak memory; a table, and JSON with `--json`.
    /// `obsim bench compare OLD.json NEW.json` flags cases that got slower. Exit status: 0
    /// measured (or no regression), 1 a case failed (or a regression), 2 bad input.
    #[command(args_conflicts_with_subcommands = true)]
    Bench {
        #[command(subcommand)]
        command: Option<BenchCommand>,
        #[command(flatten)]
        args: BenchArgs,
    },
    /// Check that runs are deterministic: each case a chaos sweep draws (files × seeds, in
    /// the sweep's order and shards) runs twice, each time in a process of its own, and once
    /// more under `--compare-with` (another obsim build); the event logs are compared event by
    /// event. A divergence names the first event where two runs part (simulated time, host,
    /// both texts) and the command that checks that case again. Exit status: 0 every checked
    /// case equal, 1 a case diverged or a run gave nothing to compare, 2 bad input, 3 the
    /// report could not be written.
    Determinism(DeterminismArgs),
    /// One run of one case for `obsim determinism` (which starts it): writes the drawn case,
    /// the event log, the result and their digests into --dir.
    #[command(hide = true)]
    DeterminismCase(DeterminismCaseArgs),
    /// Run one part (aggregator, redis, dash0) or the log pipeline on real sockets and real
    /// time, for real clients (README "Live mode: `obsim serve`"). Prints one
    /// `obsim serve: <part> <protocol> listening on <ip:port>` line per listener, then
    /// `obsim serve: ready`; on Ctrl-C or SIGTERM stops the parts and prints what was stored.
    /// Exit status: 0 on a clean stop, 1 when a part failed, 2 on bad flags or config.
    Serve(obsim::live::ServeArgs),
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

/// `obsim bench`'s options.
#[derive(clap::Args)]
struct BenchArgs {
    /// Run only this case (repeatable): baseline, fleet-25, fleet-100, fleet-200,
    /// fleet-1000, load-16k.
    #[arg(long = "only")]
    only: Vec<String>,
    /// Simulated seconds each case runs.
    #[arg(long, default_value_t = obsim::bench::SIM_SECS_DEFAULT)]
    sim_secs: f64,
    /// Wall-clock seconds after which a case stops and reports what it measured so far.
    #[arg(long, default_value_t = obsim::bench::CASE_WALL_SECS_DEFAULT)]
    case_wall_secs: f64,
    /// Also write the report as JSON here (for `obsim bench compare`).
    #[arg(long)]
    json: Option<PathBuf>,
    /// Run one case in this process and print its result as JSON (what `obsim bench`
    /// starts for each case).
    #[arg(long, hide = true)]
    case: Option<String>,
}

/// `obsim determinism`'s options.
#[derive(clap::Args)]
struct DeterminismArgs {
    /// Scenario files or folders of them, as for `obsim chaos`; files without `[chaos]` are
    /// skipped.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Seeds per file.
    #[arg(long, default_value_t = 10)]
    seeds: u64,
    /// The first seed (cases run first-seed .. first-seed + seeds, as a sweep's).
    #[arg(long, default_value_t = 1)]
    first_seed: u64,
    /// This machine's part of the cases, i/n, as a sweep's.
    #[arg(long, value_parser = obsim::report::index::Shard::parse)]
    shard: Option<obsim::report::index::Shard>,
    /// Cases checked at once (each runs its processes one after another).
    #[arg(long, default_value_t = 1)]
    jobs: usize,
    /// Plant a bug (`[bugs]` name) in every case, as a sweep's --bug.
    #[arg(long = "bug")]
    bugs: Vec<String>,
    /// Another obsim binary (e.g. target/debug/obsim against target/release/obsim) that
    /// runs each case once more.
    #[arg(long)]
    compare_with: Option<PathBuf>,
    /// Most bytes of event lines each run writes and the check compares; past them only the
    /// hashes are compared.
    #[arg(long, default_value_t = obsim::determinism::EVENT_BYTES_LIMIT_DEFAULT)]
    event_bytes_limit: u64,
    /// Most cases this check may plan: more is refused (exit 2).
    #[arg(long, default_value_t = obsim::determinism::CASES_LIMIT_DEFAULT)]
    cases_limit: u64,
    /// Stop starting cases after this much wall-clock time (e.g. 30m).
    #[arg(long, value_parser = parse_duration)]
    time: Option<Duration>,
    /// Where the runs' files go (kept for cases that diverged) and determinism.json.
    #[arg(long, default_value = "reports/determinism")]
    out: PathBuf,
}

/// `obsim determinism-case`'s options (the child's side).
#[derive(clap::Args)]
struct DeterminismCaseArgs {
    /// The base scenario file.
    #[arg(long)]
    scenario: PathBuf,
    /// The seed.
    #[arg(long)]
    seed: u64,
    /// Which run: first, second or other.
    #[arg(long)]
    label: String,
    /// The folder the run's files go to.
    #[arg(long)]
    dir: PathBuf,
    /// Most bytes of event lines written.
    #[arg(long)]
    event_bytes_limit: u64,
    /// Planted bugs.
    #[arg(long = "bug")]
    bugs: Vec<String>,
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Compare two bench JSON files case by case; exit 1 when a case's speed (simulated s
    /// per wall s) fell by more than the threshold or a case that measured now fails, 2 on
    /// bad input.
    Compare {
        /// The earlier bench's JSON.
        old: PathBuf,
        /// The later bench's JSON.
        new: PathBuf,
        /// The fall in speed, in percent, beyond which a case is a regression.
        #[arg(long, default_value_t = obsim::bench::compare::THRESHOLD_PERCENT_DEFAULT)]
        threshold: f64,
    },
}

#[derive(Subcommand)]
enum ReportCommand {
    /// Compare two result.json files (or two chaos index.json files: run by run on
    /// (scenario, seed) when their seeds match, else per scenario as distributions — two
    /// nights) and flag regressions beyond the threshold: log p99 latency up, throughput
    /// down, a new loss cause or more records lost, a pass turned into a failure (for
    /// distributions: failure rate, p50/p99 of the runs' p99, loss and duplicates per run,
    /// slowest recovery, throughput over offered load). Says when the two were built from
    /// different commits. Exit status: 0 no regression, 1 a regression, 2 bad input.
    Compare {
        /// The baseline: result.json or index.json.
        old: PathBuf,
        /// The candidate, of the same kind.
        new: PathBuf,
        /// The change, in percent, beyond which a difference is a regression.
        #[arg(long, default_value_t = obsim::report::compare::THRESHOLD_PERCENT_DEFAULT)]
        threshold: f64,
        /// The same for two sweeps of different seeds, compared as distributions.
        #[arg(long, default_value_t = obsim::report::compare::DISTRIBUTION_THRESHOLD_PERCENT_DEFAULT)]
        distribution_threshold: f64,
    },
    /// Line up the last nights' sweeps: per scenario, the failure rate and the p99 of the
    /// runs' log p99, night by night, as trend.md, trend.svg and trend.html in --out. Each
    /// path is an index.json, a night's folder holding one, or a history folder whose
    /// subfolders (in name order) hold one each. Exit status: 0 written, 2 bad input, 3 the
    /// files could not be written.
    Trend {
        /// index.json files, night folders or history folders.
        #[arg(required = true)]
        history: Vec<PathBuf>,
        /// Where the trend goes.
        #[arg(long)]
        out: PathBuf,
        /// How many of the last nights to read.
        #[arg(long, default_value_t = obsim::report::trend::TREND_NIGHTS_DEFAULT)]
        nights: usize,
    },
    /// Merge the index.json files of a sweep's shards (`obsim chaos --shard i/n`) into one
    /// index (json, md, html), copying failure files and run folders along. The shards must
    /// be distinct, finished and cover 1..n (with `--partial`, missing and unfinished shards
    /// are listed instead). Exit status, like `obsim chaos`: 0 every merged run passed and the
    /// sweep is whole, 1 a merged run failed, 2 bad input — or, with `--partial`, shards
    /// missing or unfinished (the message names them), 3 the merged index could not be
    /// written.
    Merge {
        /// The shards' index.json files.
        #[arg(required = true)]
        indexes: Vec<PathBuf>,
        /// Where the merged index goes.
        #[arg(long)]
        out: PathBuf,
        /// Merge what there is when shards are missing or did not finish (a nightly shard
        /// that timed out): the index lists them and says INCOMPLETE; the exit status is
        /// still non-zero.
        #[arg(long)]
        partial: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run { scenarios, seed, reports, export, junit } => {
            run_command(&scenarios, seed, &reports, export.as_deref(), junit.as_deref())
        }
        Command::Report { command: ReportCommand::Compare { old, new, threshold, distribution_threshold } } => compare(
            &old,
            &new,
            obsim::report::compare::Thresholds { run_percent: threshold, distribution_percent: distribution_threshold },
        ),
        Command::Report { command: ReportCommand::Trend { history, out, nights } } => trend(&history, &out, nights),
        Command::Report { command: ReportCommand::Merge { indexes, out, partial } } => merge(&indexes, &out, partial),
        Command::Replay { failure } => replay(&failure),
        Command::Promote { failure, name, into, strip_bugs } => promote(&failure, &name, &into, strip_bugs),
        Command::Chaos { paths, seeds, time, first_seed, jobs, shard, bugs, shrink_runs, out, junit } => {
            let bugs = match obsim::chaos::case::bugs_named(&bugs) {
                Ok(bugs) => bugs,
                Err(error) => {
                    eprintln!("obsim chaos: {error}");
                    return ExitCode::from(2);
                }
            };
            let shard = shard.unwrap_or(obsim::report::index::Shard::WHOLE);
            let options = obsim::chaos::SweepOptions { seeds, first_seed, jobs, shard, bugs, shrink_runs };
            chaos(&paths, &options, time, &out, junit.as_deref())
        }
        Command::Determinism(args) => determinism(&args),
        Command::DeterminismCase(args) => determinism_case(&args),
        Command::Check { scenario } => check(&scenario),
        Command::Schema => {
            print!("{}", obsim::scenario::schema::json_schema_text());
            ExitCode::SUCCESS
        }
        Command::Probe { seed, nodes, duration, events } => probe_command(seed, nodes, duration, events),
        Command::Bench { command: Some(BenchCommand::Compare { old, new, threshold }), .. } => {
            bench_compare(&old, &new, threshold)
        }
        Command::Bench { command: None, args } => bench(&args),
        Command::Serve(args) => serve(&args),
    }
}

/// `obsim serve`: the live runtime (`obsim::live`) with stdout as its contract's output.
fn serve(args: &obsim::live::ServeArgs) -> ExitCode {
    let plan = obsim::live::Plan::from_args(args);
    if let Err(error) = plan {
        eprintln!("{error}");
        return ExitCode::from(2);
    }
    match obsim::live::serve(args, &mut std::io::stdout()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{error}");
            ExitCode::FAILURE
        }
    }
}

/// `obsim bench`: the selected cases, each in a child process (or, with the hidden
/// `--case`, one case here); the table on stdout, the JSON to `--json`.
fn bench(args: &BenchArgs) -> ExitCode {
    let options = match obsim::bench::CaseOptions::from_secs(args.sim_secs, args.case_wall_secs) {
        Ok(options) => options,
        Err(error) => {
            eprintln!("obsim bench: {error}");
            return ExitCode::from(2);
        }
    };
    if let Some(name) = &args.case {
        return match obsim::bench::run_case_here(name, options).and_then(|result| {
            serde_json::to_string(&result).map_err(|error| format!("cannot write the result: {error}"))
        }) {
            Ok(line) => {
                println!("{line}");
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("obsim bench: {error}");
                ExitCode::from(2)
            }
        };
    }
    let (cases, exe) = match (obsim::bench::cases_selected(&args.only), std::env::current_exe()) {
        (Ok(cases), Ok(exe)) => (cases, exe),
        (Err(error), _) => {
            eprintln!("obsim bench: {error}");
            return ExitCode::from(2);
        }
        (_, Err(error)) => {
            eprintln!("obsim bench: cannot find this program to run the cases: {error}");
            return ExitCode::from(EXIT_REPORTS_UNWRITTEN);
        }
    };
    let on_case = |result: &obsim::bench::CaseResult| {
        eprintln!(
            "obsim bench: {}: {:?}, {:.1} simulated s in {:.1} wall s",
            result.name, result.stop, result.sim_secs, result.wall_secs
        );
    };
    let report = obsim::bench::run_set(&exe, &cases, options, &on_case);
    print!("{}", obsim::bench::table(&report));
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&report).map(|text| text + "\n");
        if let Err(error) = text.map_err(std::io::Error::other).and_then(|text| std::fs::write(path, text)) {
            eprintln!("obsim bench: writing {}: {error}", path.display());
            return ExitCode::from(EXIT_REPORTS_UNWRITTEN);
        }
        println!("json: {}", path.display());
    }
    let failed =
        report.cases.iter().any(|case| matches!(case.stop, obsim::bench::Stop::Failed | obsim::bench::Stop::Killed));
    if failed { ExitCode::from(1) } else { ExitCode::SUCCESS }
}

/// `obsim bench compare`: print the comparison; exit 1 on a regression, 2 on bad input.
fn bench_compare(old: &std::path::Path, new: &std::path::Path, threshold: f64) -> ExitCode {
    use obsim::bench::compare;
    compare_files(
        "obsim bench compare",
        (old, new),
        compare::parse_report,
        |old, new| compare::compare(old, new, threshold),
        |comparison| (comparison.render(threshold), comparison.regressions_count()),
    )
}

/// Reads two result files with `parse`, compares them and prints the comparison: exit 0
/// with no regression, 1 with one, 2 when a file cannot be read or compared. Both
/// `bench compare` and `report compare` work this way.
fn compare_files<I, C>(
    command: &str,
    (old, new): (&std::path::Path, &std::path::Path),
    parse: impl Fn(&str, &str) -> Result<I, String>,
    compare: impl Fn(&I, &I) -> Result<C, String>,
    render: impl Fn(&C) -> (String, usize),
) -> ExitCode {
    let read = |path: &std::path::Path| -> Result<I, String> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|error| format!("{name}: {error}"))?;
        parse(&name, &text)
    };
    let comparison = match (read(old), read(new)) {
        (Ok(old), Ok(new)) => compare(&old, &new),
        (Err(error), _) | (_, Err(error)) => Err(error),
    };
    match comparison {
        Ok(comparison) => {
            let (text, regressions_count) = render(&comparison);
            print!("{text}");
            if regressions_count == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) }
        }
        Err(error) => {
            eprintln!("{command}: {error}");
            ExitCode::from(2)
        }
    }
}

/// `obsim check`: load the scenario and say what it holds, or why it is invalid.
fn check(scenario: &std::path::Path) -> ExitCode {
    match Scenario::load(scenario) {
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
    }
}

/// `obsim probe`: run the world's determinism probe and print its hash (and events).
fn probe_command(seed: u64, nodes: u32, duration: Duration, events: bool) -> ExitCode {
    if nodes == 0 {
        eprintln!("obsim probe: --nodes must be at least 1");
        return ExitCode::from(2);
    }
    let config = ProbeConfig { seed, nodes_count: nodes, duration, ..ProbeConfig::default() };
    match probe::run_with_log(config) {
        Ok((outcome, log)) => {
            if events {
                let mut stdout = std::io::stdout().lock();
                match log.write_text(&mut stdout) {
                    Ok(()) => {}
                    // The reader has gone (`| head`): the rest goes unwritten, quietly.
                    Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => {
                        STDOUT_CLOSED.store(true, std::sync::atomic::Ordering::Relaxed);
                    }
                    Err(error) => {
                        eprintln!("obsim probe: writing events: {error}");
                        return ExitCode::from(1);
                    }
                }
            }
            println!("seed {seed}");
            println!("simulated {:.3}s, {} events", outcome.elapsed.as_secs_f64(), outcome.events_count);
            println!("event-log hash {}", outcome.hash);
            println!(
                "replay: obsim probe --seed {seed} --nodes {nodes} --duration {}",
                obsim::units::format_duration(duration)
            );
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("obsim probe: {error} (seed {seed})");
            ExitCode::from(1)
        }
    }
}

/// `obsim run`: one scenario file as it always ran, or (a folder, several files) every
/// scenario of a library, each with its own seed, then the library summary; the JUnit file
/// when asked. Every file is loaded before any runs: one invalid file exits 2 at once.
fn run_command(
    paths: &[PathBuf],
    seed: Option<u64>,
    reports: &std::path::Path,
    export: Option<&std::path::Path>,
    junit: Option<&std::path::Path>,
) -> ExitCode {
    let library = paths.len() > 1 || paths.iter().any(|path| path.is_dir());
    let files = match obsim::chaos::files::found(paths) {
        Ok(files) if !files.is_empty() => files,
        Ok(_) => {
            eprintln!("obsim run: no scenario file (.toml) in {}", display_paths(paths));
            return ExitCode::from(2);
        }
        Err(error) => {
            eprintln!("obsim run: {error}");
            return ExitCode::from(2);
        }
    };
    let mut scenarios = Vec::new();
    for path in &files {
        match Scenario::load(path) {
            Ok(scenario) => scenarios.push((path, Arc::new(scenario))),
            Err(error) => eprintln!("obsim run: invalid scenario: {error}"),
        }
    }
    if scenarios.len() < files.len() {
        return ExitCode::from(2);
    }
    let mut status = 0u8;
    let mut rows = Vec::new();
    for (path, scenario) in scenarios {
        if library {
            println!("== {}", path.display());
        }
        let export = export.map(|dir| if library { dir.join(&scenario.name) } else { dir.to_path_buf() });
        let done = run(path, scenario, seed, reports, export.as_deref());
        status = status.max(done.status);
        rows.push(done.row);
    }
    if library {
        match obsim::report::library::write(reports, &rows) {
            Ok(()) => {
                print!("\n{}", obsim::report::library::markdown(&rows));
                println!("\nsummary: {}", reports.join(obsim::report::library::MARKDOWN_FILE).display());
            }
            Err(error) => {
                eprintln!("obsim run: could not write the library summary to {}: {error}", reports.display());
                status = EXIT_REPORTS_UNWRITTEN;
            }
        }
    }
    if let Some(junit) = junit
        && !write_junit("obsim run", junit, &[run_suite(&rows)])
    {
        status = EXIT_REPORTS_UNWRITTEN;
    }
    ExitCode::from(status)
}

/// `paths` joined for a message.
fn display_paths(paths: &[PathBuf]) -> String {
    paths.iter().map(|path| path.display().to_string()).collect::<Vec<_>>().join(", ")
}

/// The JUnit suite of `obsim run`: one case per scenario, under its file's folder.
fn run_suite(rows: &[obsim::report::library::LibraryRow]) -> obsim::report::junit::TestSuite {
    use obsim::report::junit;
    use obsim::report::library::RowRun;
    let cases = rows
        .iter()
        .map(|row| {
            let folder = std::path::Path::new(&row.file).parent().and_then(std::path::Path::file_name);
            let classname = folder.map_or_else(|| "scenarios".to_string(), |name| name.to_string_lossy().to_string());
            match &row.run {
                RowRun::Judged { result, .. } => {
                    junit::run_case(&classname, &row.scenario, result, row.report.as_deref())
                }
                RowRun::Stopped { error } => {
                    let replay = format!("cargo run --release -- run {}", row.file);
                    junit::error_case(&classname, &row.scenario, "world", error, Some(&replay))
                }
            }
        })
        .collect();
    junit::TestSuite { name: "obsim run".to_string(), cases }
}

/// Writes a JUnit file and says where; false (after saying why) when it could not.
fn write_junit(command: &str, path: &std::path::Path, suites: &[obsim::report::junit::TestSuite]) -> bool {
    match obsim::report::junit::write(path, suites) {
        Ok(()) => {
            println!("junit: {}", path.display());
            true
        }
        Err(error) => {
            eprintln!("{command}: could not write the JUnit file {}: {error}", path.display());
            false
        }
    }
}

/// One scenario's run: its exit status (0 passed, 1 failed or stopped, EXIT_REPORTS_UNWRITTEN)
/// and its row of the library summary.
struct RunDone {
    status: u8,
    row: obsim::report::library::LibraryRow,
}

/// One scenario: run, judge, print, write the reports (and the failure file when it failed).
fn run(
    path: &std::path::Path,
    scenario: Arc<Scenario>,
    seed: Option<u64>,
    reports: &std::path::Path,
    export: Option<&std::path::Path>,
) -> RunDone {
    use obsim::report::library::{Budgets, LibraryRow, RowRun};
    let seed = seed.unwrap_or(scenario.seed);
    let mut row = LibraryRow {
        file: path.display().to_string(),
        scenario: scenario.name.clone(),
        run: RowRun::Stopped { error: String::new() },
        report: None,
    };
    let mut pipeline = Pipeline::build(Arc::clone(&scenario), seed);
    let outcome = match pipeline.run() {
        Ok(outcome) => outcome,
        Err(error) => {
            eprintln!("obsim run: the simulation stopped: {error}");
            eprintln!("replay: cargo run --release -- run {} --seed {seed}", path.display());
            row.run = RowRun::Stopped { error: format!("the simulation stopped: {error} (seed {seed})") };
            return RunDone { status: 1, row };
        }
    };
    let mut verdict = obsim::check::Verdict::judge(&pipeline, outcome);
    verdict.set_scenario_path(path.display().to_string());
    print!("{}", verdict.render());
    let dir = reports.join(&scenario.name).join(seed.to_string());
    // Reports that could not be written end the run with EXIT_REPORTS_UNWRITTEN whatever
    // the verdict: a caller that keeps the reports (CI) must not read a missing folder as
    // a pass.
    let mut unwritten = false;
    match obsim::report::write_run(&dir, &verdict.result, Some(pipeline.world.events()), true) {
        Ok(()) => {
            println!("report: {}", dir.join(obsim::report::HTML_FILE).display());
            row.report = Some(format!("{}/{seed}/{}", scenario.name, obsim::report::HTML_FILE));
        }
        Err(error) => {
            eprintln!("obsim run: could not write the reports to {}: {error}", dir.display());
            unwritten = true;
        }
    }
    if let Some(export) = export {
        unwritten |= !write_export(export, &pipeline.dash0_store);
    }
    if !verdict.passed() {
        match write_failure(path, &dir, seed, &verdict) {
            Ok(failure) => println!("failure file: {} (obsim replay {0})", failure.display()),
            Err(error) => {
                eprintln!("obsim run: could not write the failure file: {error}");
                unwritten = true;
            }
        }
    }
    let status = match (unwritten, verdict.passed()) {
        (true, _) => EXIT_REPORTS_UNWRITTEN,
        (false, true) => 0,
        (false, false) => 1,
    };
    row.run = RowRun::Judged { result: Box::new(verdict.result), budgets: Budgets::of(&scenario.expect) };
    RunDone { status, row }
}

/// `obsim run --export DIR`: what Dash0 stored as OTLP JSON files; false when they could
/// not be written (the run then ends with EXIT_REPORTS_UNWRITTEN, as for the reports).
fn write_export(dir: &std::path::Path, store: &obsim::parts::dash0::Dash0Store) -> bool {
    match obsim::report::export::write_export(dir, store) {
        Ok(counts) => {
            println!(
                "export: {} ({} logs, {} spans, {} metric points as OTLP JSON)",
                dir.display(),
                counts.logs_count,
                counts.spans_count,
                counts.metric_points_count
            );
            true
        }
        Err(error) => {
            eprintln!("obsim run: could not write the export to {}: {error}", dir.display());
            false
        }
    }
}

/// Writes `<dir>/failure.toml` (dir: `reports/<scenario>/<seed>`): the scenario with its seed
/// inlined and the verdict and hash it produced.
fn write_failure(
    path: &std::path::Path,
    dir: &std::path::Path,
    seed: u64,
    verdict: &obsim::check::Verdict,
) -> std::io::Result<PathBuf> {
    let source = std::fs::read_to_string(path)?;
    std::fs::create_dir_all(dir)?;
    let failure = dir.join("failure.toml");
    std::fs::write(&failure, obsim::report::failure_file::failure_file_text(&source, seed, verdict))?;
    Ok(failure)
}

/// Plain progress lines (stderr not a terminal, e.g. CI): one after every this many
/// finished runs…
const PROGRESS_LINE_EVERY_RUNS: u64 = 25;

/// …and one at least this often while the sweep runs, so a shard shrinking a failure for an
/// hour still says what it is doing.
const PROGRESS_LINE_EVERY: Duration = Duration::from_secs(30);

/// How often the progress is refreshed (the bar's rate and ETA; the check for a due line).
const PROGRESS_TICK: Duration = Duration::from_secs(1);

/// The sweep's progress bar on a terminal: the bar and one line of text (runs, failures,
/// rate, ETA and the phase: never blank while shrinking). `None` when stderr is not a
/// terminal: then plain lines are printed instead (`ChaosProgress`).
fn progress_bar(planned: u64) -> Option<indicatif::ProgressBar> {
    use std::io::IsTerminal as _;

    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(planned);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:30} {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    Some(bar)
}

/// A running `obsim chaos`: it records each finished run in the sweep's folder, shows the
/// progress (a bar on a terminal, plain `obsim chaos: 120/800 runs, …` lines otherwise) and
/// holds the `--time` budget, which bounds new runs and shrinking alike.
///
/// Why here and not in `sim/chaos`: it reads the wall clock, which only the command line
/// may (ARCHITECTURE.md §2); the sweep only reports phases and asks whether to go on.
struct ChaosProgress {
    /// The bar on a terminal; `None`: plain lines.
    bar: Option<indicatif::ProgressBar>,
    /// When the sweep started (wall clock).
    started: std::time::Instant,
    /// `--time`.
    budget: Option<Duration>,
    /// Runs this shard plans.
    planned: u64,
    /// Runs finished so far.
    done: std::sync::atomic::AtomicU64,
    /// Runs failed so far.
    failures: std::sync::atomic::AtomicU64,
    /// The latest phase, as text.
    now: std::sync::Mutex<String>,
    /// Elapsed time at the last plain line.
    last_line: std::sync::Mutex<Duration>,
    /// The sweep's folder, written as runs finish.
    writer: std::sync::Mutex<obsim::chaos::output::SweepWriter>,
    /// The first error writing it: the sweep starts no new run after one.
    write_error: std::sync::Mutex<Option<String>>,
}

impl ChaosProgress {
    /// Wall-clock time since the sweep started.
    fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Whether the `--time` budget is spent.
    fn budget_spent(&self) -> bool {
        self.budget.is_some_and(|budget| self.elapsed() >= budget)
    }

    /// The progress line's text.
    fn text(&self) -> String {
        use std::sync::atomic::Ordering;

        let now = self.now.lock().unwrap_or_else(|p| p.into_inner()).clone();
        obsim::chaos::progress::line(&obsim::chaos::progress::Status {
            done: self.done.load(Ordering::Relaxed),
            planned: self.planned,
            failures: self.failures.load(Ordering::Relaxed),
            elapsed: self.elapsed(),
            budget: self.budget,
            now: &now,
        })
    }

    /// Shows the progress now: the bar's message, or a plain line.
    fn show(&self) {
        let text = self.text();
        match &self.bar {
            Some(bar) => bar.set_message(text),
            None => {
                *self.last_line.lock().unwrap_or_else(|p| p.into_inner()) = self.elapsed();
                eprintln!("obsim chaos: {text}");
            }
        }
    }

    /// Called every `PROGRESS_TICK`: refreshes the bar, or prints a plain line when none was
    /// printed for `PROGRESS_LINE_EVERY`.
    fn tick(&self) {
        let due = self.bar.is_some()
            || self.elapsed().saturating_sub(*self.last_line.lock().unwrap_or_else(|p| p.into_inner()))
                >= PROGRESS_LINE_EVERY;
        if due {
            self.show();
        }
    }
}

impl obsim::chaos::SweepObserver for ChaosProgress {
    fn keep_going(&self) -> bool {
        self.write_error.lock().unwrap_or_else(|p| p.into_inner()).is_none() && !self.budget_spent()
    }

    fn keep_shrinking(&self) -> bool {
        !self.budget_spent()
    }

    fn phase(&self, phase: obsim::chaos::Phase<'_>) {
        *self.now.lock().unwrap_or_else(|p| p.into_inner()) = phase.to_string();
        // A failure's shrinking begins: say so at once (it may run for long).
        let shrinking_begins = matches!(phase, obsim::chaos::Phase::Shrink { step: 1, .. });
        if shrinking_begins || self.bar.is_some() {
            self.show();
        }
    }

    fn finished(&self, run: &obsim::chaos::SweepRun) {
        use std::sync::atomic::Ordering;

        if !run.passed() {
            self.failures.fetch_add(1, Ordering::Relaxed);
            let fail =
                format!("FAIL {} seed {}: {}", run.base_path.display(), run.seed, run.failed_checks().join(", "));
            match &self.bar {
                Some(bar) => bar.suspend(|| eprintln!("{fail}")),
                None => eprintln!("{fail}"),
            }
        }
        if let Err(error) = self.writer.lock().unwrap_or_else(|p| p.into_inner()).add(run) {
            self.write_error.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert(error.to_string());
        }
        let done = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        if let Some(bar) = &self.bar {
            bar.inc(1);
        }
        if self.bar.is_some() || done.is_multiple_of(PROGRESS_LINE_EVERY_RUNS) {
            self.show();
        }
    }
}

/// Runs the sweep with `progress` watching it and a ticker thread refreshing it every
/// `PROGRESS_TICK`; returns the runs in (seed, file) order.
fn sweep_with_progress(
    files: &[(PathBuf, Arc<Scenario>)],
    options: &obsim::chaos::SweepOptions,
    progress: &ChaosProgress,
) -> Vec<obsim::chaos::SweepRun> {
    let (stop, stopped) = std::sync::mpsc::channel::<()>();
    std::thread::scope(|scope| {
        scope.spawn(move || {
            // Bounded by the sweep: it ends when `stop` is dropped, right after the sweep.
            while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(PROGRESS_TICK) {
                progress.tick();
            }
        });
        let runs = obsim::chaos::sweep_observed(files, options, progress);
        drop(stop);
        runs
    })
}

/// `obsim chaos`: gather the files, sweep with progress output, write the index.
fn chaos(
    paths: &[PathBuf],
    options: &obsim::chaos::SweepOptions,
    time: Option<Duration>,
    out: &std::path::Path,
    junit: Option<&std::path::Path>,
) -> ExitCode {
    let files = match obsim::chaos::files::gather(paths) {
        Ok(files) => files,
        Err(error) => {
            eprintln!("obsim chaos: {error}");
            return ExitCode::from(2);
        }
    };
    for (path, reason) in &files.opted_out {
        eprintln!("obsim chaos: {} opts out: {reason}", path.display());
    }
    if !files.derived.is_empty() {
        eprintln!("obsim chaos: {} files swept with a [chaos] table derived from their config", files.derived.len());
    }
    if files.chaos.is_empty() {
        eprintln!("obsim chaos: every one of {} files opts out", files.opted_out.len());
        return ExitCode::from(2);
    }
    let shard = options.shard;
    let planned = (0..options.seeds).filter(|index| shard.owns(*index)).count() as u64 * files.chaos.len() as u64;
    // The sweep's folder is written as runs finish: a sweep killed at its time limit still
    // leaves an index of the runs it did.
    let writer = match obsim::chaos::output::SweepWriter::new(out, shard, options.first_seed, options.seeds, planned) {
        Ok(writer) => std::sync::Mutex::new(writer),
        Err(error) => {
            eprintln!("obsim chaos: writing {}: {error}", out.display());
            return ExitCode::from(EXIT_REPORTS_UNWRITTEN);
        }
    };
    // The wall clock only decides how many runs start and how long shrinking goes on, never
    // what a run does.
    #[allow(clippy::disallowed_methods)] // determinism: ok, a sweep's time budget and its progress output
    let started = std::time::Instant::now();
    let progress = ChaosProgress {
        bar: progress_bar(planned),
        started,
        budget: time,
        planned,
        done: Default::default(),
        failures: Default::default(),
        now: Default::default(),
        last_line: Default::default(),
        writer,
        write_error: Default::default(),
    };
    let runs = sweep_with_progress(&files.chaos, options, &progress);
    finish_chaos(out, junit, runs.len() as u64, progress)
}

/// The end of `obsim chaos`: the last progress line, the index written, the totals printed,
/// and the JUnit file when `--junit` asked for one.
fn finish_chaos(
    out: &std::path::Path,
    junit: Option<&std::path::Path>,
    runs_count: u64,
    progress: ChaosProgress,
) -> ExitCode {
    match &progress.bar {
        Some(bar) => bar.finish_and_clear(),
        None => {
            *progress.now.lock().unwrap_or_else(|p| p.into_inner()) =
                if runs_count < progress.planned && progress.budget_spent() {
                    "stopped: the --time budget was spent".to_string()
                } else {
                    "done".to_string()
                };
            progress.show();
        }
    }
    if let Some(error) = progress.write_error.into_inner().unwrap_or_else(|p| p.into_inner()) {
        eprintln!("obsim chaos: writing {}: {error} (stopped after {runs_count} runs)", out.display());
        return ExitCode::from(EXIT_REPORTS_UNWRITTEN);
    }
    let index = match progress.writer.into_inner().unwrap_or_else(|p| p.into_inner()).finish() {
        Ok(index) => index,
        Err(error) => {
            eprintln!("obsim chaos: writing {}: {error}", out.display());
            return ExitCode::from(EXIT_REPORTS_UNWRITTEN);
        }
    };
    assert_eq!(index.runs_count, runs_count, "the index lists every run the sweep did");
    let markdown = obsim::report::index::markdown(&index);
    // The table of every run is for the file; the terminal gets the totals and failures.
    print!("{}", markdown.split("\n## Runs").next().unwrap_or_default());
    println!("\nindex: {} ({})", out.join("index.md").display(), out.join("index.html").display());
    if let Some(junit) = junit {
        let read = |run: &obsim::report::index::IndexRun| obsim::report::junit::read_run_result(out, run);
        let suites = obsim::report::junit::sweep(&index, &read);
        if !write_junit("obsim chaos", junit, &suites) {
            return ExitCode::from(EXIT_REPORTS_UNWRITTEN);
        }
    }
    if index.failures_count == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) }
}

/// `obsim determinism`: plan the sweep's cases, check each in child processes, print the
/// cases that diverged and the totals, write determinism.json.
fn determinism(args: &DeterminismArgs) -> ExitCode {
    let Some(options) = determinism_options(args) else { return ExitCode::from(2) };
    let files = match obsim::chaos::files::gather(&args.paths) {
        Ok(files) if !files.chaos.is_empty() => files,
        Ok(files) => {
            eprintln!("obsim determinism: no scenario to check: {} files opt out of sweeps", files.opted_out.len());
            return ExitCode::from(2);
        }
        Err(error) => {
            eprintln!("obsim determinism: {error}");
            return ExitCode::from(2);
        }
    };
    let cases = match obsim::determinism::plan(&files.chaos, &options) {
        Ok(cases) => cases,
        Err(error) => {
            eprintln!("obsim determinism: {error}");
            return ExitCode::from(2);
        }
    };
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(error) => {
            eprintln!("obsim determinism: cannot find this program to run the cases: {error}");
            return ExitCode::from(EXIT_REPORTS_UNWRITTEN);
        }
    };
    let on_case = |case: &obsim::determinism::CaseCheck| {
        if let Some(text) = obsim::determinism::render_case(case) {
            print!("{text}");
        }
    };
    let report = obsim::determinism::check(&exe, &cases, &options, &on_case);
    print!("{}", obsim::determinism::render_summary(&report));
    match obsim::determinism::write_report(&options.out, &report) {
        Ok(path) => println!("report: {}", path.display()),
        Err(error) => {
            eprintln!("obsim determinism: writing {}: {error}", options.out.display());
            return ExitCode::from(EXIT_REPORTS_UNWRITTEN);
        }
    }
    ExitCode::from(report.exit_status())
}

/// The check's options from the command line, or `None` after saying which flag is bad.
fn determinism_options(args: &DeterminismArgs) -> Option<obsim::determinism::DeterminismOptions> {
    use obsim::determinism::{CASES_LIMIT_MAX, EVENT_BYTES_LIMIT_MAX};
    let bad = |message: String| {
        eprintln!("obsim determinism: {message}");
        None
    };
    if let Err(error) = obsim::chaos::case::bugs_named(&args.bugs) {
        return bad(error);
    }
    if args.event_bytes_limit == 0 || args.event_bytes_limit > EVENT_BYTES_LIMIT_MAX {
        return bad(format!("--event-bytes-limit {} must be 1 ..= {EVENT_BYTES_LIMIT_MAX}", args.event_bytes_limit));
    }
    if args.cases_limit == 0 || args.cases_limit > CASES_LIMIT_MAX {
        return bad(format!("--cases-limit {} must be 1 ..= {CASES_LIMIT_MAX}", args.cases_limit));
    }
    if let Some(other) = args.compare_with.as_ref().filter(|other| !other.is_file()) {
        return bad(format!("--compare-with {}: no such program", other.display()));
    }
    Some(obsim::determinism::DeterminismOptions {
        seeds: args.seeds,
        first_seed: args.first_seed,
        shard: args.shard.unwrap_or(obsim::report::index::Shard::WHOLE),
        jobs: args.jobs,
        bugs: args.bugs.clone(),
        compare_with: args.compare_with.clone(),
        event_bytes_limit: args.event_bytes_limit,
        cases_limit: args.cases_limit,
        time: args.time,
        out: args.out.clone(),
    })
}

/// `obsim determinism-case`: one run of one case, its files into --dir (the summary last).
fn determinism_case(args: &DeterminismCaseArgs) -> ExitCode {
    use obsim::determinism::{RunLabel, child};
    let Some(label) = RunLabel::from_name(&args.label) else {
        eprintln!("obsim determinism-case: --label {:?} must be first, second or other", args.label);
        return ExitCode::from(2);
    };
    let perturb = std::env::var(child::PERTURB_ENV).ok();
    let perturb_event = match child::perturbation_for(label, perturb.as_deref()) {
        Ok(index) => index,
        Err(error) => {
            eprintln!("obsim determinism-case: {error}");
            return ExitCode::from(2);
        }
    };
    let request = obsim::determinism::ChildRequest {
        scenario: args.scenario.clone(),
        seed: args.seed,
        bugs: args.bugs.clone(),
        label,
        dir: args.dir.clone(),
        event_bytes_limit: args.event_bytes_limit,
        perturb_event,
    };
    match obsim::determinism::run_case_here(&request) {
        Ok(_) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("obsim determinism-case: {error}");
            ExitCode::from(2)
        }
    }
}

/// `obsim report compare`: print the comparison; exit 1 on a regression, 2 on bad input.
fn compare(old: &std::path::Path, new: &std::path::Path, thresholds: obsim::report::compare::Thresholds) -> ExitCode {
    use obsim::report::compare;
    for (flag, threshold) in
        [("--threshold", thresholds.run_percent), ("--distribution-threshold", thresholds.distribution_percent)]
    {
        if !(threshold.is_finite() && threshold >= 0.0) {
            eprintln!("obsim report compare: {flag} {threshold} must be a percentage ≥ 0");
            return ExitCode::from(2);
        }
    }
    compare_files(
        "obsim report compare",
        (old, new),
        compare::parse_input,
        |old, new| compare::compare(old, new, thresholds),
        |comparison| (comparison.render(thresholds.run_percent), comparison.regressions_count()),
    )
}

/// `obsim report trend`: read the last nights, write trend.{md,svg,html}, print trend.md.
fn trend(history: &[PathBuf], out: &std::path::Path, nights: usize) -> ExitCode {
    use obsim::report::trend;
    let loaded = match trend::load_nights(history, nights) {
        Ok(loaded) => loaded,
        Err(error) => {
            eprintln!("obsim report trend: {error}");
            return ExitCode::from(2);
        }
    };
    let trend = trend::trend(&loaded);
    if let Err(error) = trend::write(out, &trend) {
        eprintln!("obsim report trend: writing {}: {error}", out.display());
        return ExitCode::from(EXIT_REPORTS_UNWRITTEN);
    }
    print!("{}", trend::markdown(&trend));
    println!("\ntrend: {} ({})", out.join("trend.md").display(), out.join("trend.html").display());
    ExitCode::SUCCESS
}

/// `obsim report merge`: join shard indexes into one; the exit status is the merged
/// sweep's verdict (`merge_exit_status`).
fn merge(indexes: &[PathBuf], out: &std::path::Path, partial: bool) -> ExitCode {
    match obsim::report::merge::merge_files(indexes, out, partial) {
        Ok(index) => {
            // The table of every run is in index.md; the terminal gets totals and failures.
            let markdown = obsim::report::index::markdown(&index);
            print!("{}", markdown.split("\n## Runs").next().unwrap_or_default());
            println!("\nindex: {} ({})", out.join("index.md").display(), out.join("index.html").display());
            let status = obsim::report::merge::exit_status(&index);
            if let Some(incomplete) = obsim::report::index::incompleteness(&index) {
                eprintln!("obsim report merge: {incomplete}");
            }
            ExitCode::from(status)
        }
        Err(error @ obsim::report::merge::MergeError::Invalid(_)) => {
            eprintln!("obsim report merge: {error}");
            ExitCode::from(2)
        }
        Err(error) => {
            eprintln!("obsim report merge: {error}");
            ExitCode::from(EXIT_REPORTS_UNWRITTEN)
        }
    }
}

/// `obsim promote`: a failure file into a regression scenario.
fn promote(failure: &std::path::Path, name: &str, into: &std::path::Path, strip_bugs: bool) -> ExitCode {
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        eprintln!("obsim promote: --name {name:?} must use only letters, digits, - and _");
        return ExitCode::from(2);
    }
    let text = match std::fs::read_to_string(failure) {
        Ok(text) => text,
        Err(error) => {
            eprintln!("obsim promote: cannot read {}: {error}", failure.display());
            return ExitCode::from(2);
        }
    };
    let promoted = match obsim::chaos::output::promote(&text, &failure.display().to_string(), name, strip_bugs) {
        Ok(promoted) => promoted,
        Err(error) => {
            eprintln!("obsim promote: {error}");
            return ExitCode::from(2);
        }
    };
    if !promoted.stripped_bugs.is_empty() {
        eprintln!(
            "obsim promote: stripped the planted bugs {} (the regression runs the real pipeline)",
            promoted.stripped_bugs.join(", ")
        );
    }
    let target = into.join(format!("{name}.toml"));
    if let Err(error) = Scenario::parse(&target, &promoted.text) {
        eprintln!("obsim promote: the promoted scenario is not valid: {error}");
        return ExitCode::from(2);
    }
    if target.exists() {
        eprintln!("obsim promote: {} exists; choose another --name", target.display());
        return ExitCode::from(2);
    }
    if let Err(error) = std::fs::create_dir_all(into).and_then(|()| std::fs::write(&target, &promoted.text)) {
        eprintln!("obsim promote: writing {}: {error}", target.display());
        return ExitCode::from(EXIT_REPORTS_UNWRITTEN);
    }
    println!("promoted to {} as scenario {} (cargo test --test scenarios {name})", target.display(), promoted.name);
    ExitCode::SUCCESS
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
    let Some((recorded_hash, recorded_verdict)) = obsim::report::failure_file::recorded(&text) else {
        eprintln!(
            "obsim replay: {} is not a failure file (no `# obsim failure:` header); use obsim run",
            path.display()
        );
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
    match Verdict::run(scenario, seed) {
        Ok(mut verdict) => {
            verdict.set_scenario_path(path.display().to_string());
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
