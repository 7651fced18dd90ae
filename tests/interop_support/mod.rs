//! The interop harness: which real clients are installed (and what to do when one is not),
//! running a client script under a timeout, and `obsim serve` children that are killed
//! when the test ends however it ends.
//!
//! Why a harness of its own: the clients are other programs (node, Debian's python3, the
//! OTel SDK's venv) that `.ci/run` installs; a test must say exactly which one is missing
//! and fail in CI (`OBSIM_INTEROP=require`) but not on a developer's machine without them.
#![allow(dead_code)]

pub mod capture;
pub mod records;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

/// How long one client script may run before it is killed and the test fails.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(60);
/// How long an `obsim serve` child may take to print `obsim serve: ready`.
pub const SERVE_READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long an `obsim serve` child may take to exit after SIGTERM.
pub const SERVE_STOP_TIMEOUT: Duration = Duration::from_secs(30);
/// The environment variable that turns a missing client into a failure.
pub const INTEROP_ENV: &str = "OBSIM_INTEROP";
/// Debian's interpreter: python3-fluent-logger installs for it, not for a pyenv `python3`.
pub const DEBIAN_PYTHON: &str = "/usr/bin/python3";

/// `tests/interop/`: the client scripts, their pinned dependencies and installs.
pub fn interop_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("interop")
}

/// Whether a missing client fails the test (`OBSIM_INTEROP=require`, as `.ci/run` sets).
pub fn required() -> bool {
    std::env::var(INTEROP_ENV).is_ok_and(|value| value == "require")
}

/// `Ok(())` when `what` is usable; otherwise prints why the test is skipped and returns
/// `false`, or panics when `OBSIM_INTEROP=require`.
pub fn available(what: &str, check: Result<(), String>) -> bool {
    match check {
        Ok(()) => true,
        Err(why) if required() => panic!("{what} is required ({INTEROP_ENV}=require) but missing: {why}"),
        Err(why) => {
            println!("skipped: {what} is missing ({why}); `bash .ci/run` installs it, and fails without it");
            false
        }
    }
}

/// node with the npm clients `npm ci` installed under tests/interop/node_modules.
pub fn node_clients() -> Result<(), String> {
    let modules = interop_dir().join("node_modules");
    for package in ["@fluent-org/logger", "fluent-logger", "int64-buffer"] {
        if !modules.join(package).join("package.json").is_file() {
            return Err(format!("{} has no {package} (run `npm ci` in tests/interop)", modules.display()));
        }
    }
    probe(Command::new("node").arg("--version"), "node")
}

/// Debian's python3 with python3-fluent-logger (`apt-get install python3-fluent-logger`).
pub fn debian_fluent_logger() -> Result<(), String> {
    probe(Command::new(DEBIAN_PYTHON).args(["-c", "import fluent.sender"]), "python3-fluent-logger")
}

/// The OTel SDK venv `.ci/run` makes at tests/interop/.venv from requirements.txt.
pub fn otel_sdk() -> Result<(), String> {
    let imports = "import opentelemetry.sdk, opentelemetry.exporter.otlp.proto.http.trace_exporter, \
                   opentelemetry.exporter.otlp.proto.grpc.trace_exporter";
    probe(Command::new(otel_python()).args(["-c", imports]), "the OTel SDK venv (tests/interop/.venv)")
}

/// The venv's interpreter.
pub fn otel_python() -> PathBuf {
    interop_dir().join(".venv").join("bin").join("python")
}

/// `obsim serve` exists in this build (helper "live"'s subcommand).
pub fn obsim_serve() -> Result<(), String> {
    probe(Command::new(env!("CARGO_BIN_EXE_obsim")).args(["serve", "--help"]), "obsim serve")
}

/// Runs a quick command; `Err` says what failed and its stderr.
fn probe(command: &mut Command, what: &str) -> Result<(), String> {
    match command.stdout(Stdio::null()).stderr(Stdio::piped()).output() {
        Ok(output) if output.status.success() => Ok(()),
        Ok(output) => Err(format!("{what}: {} ({})", output.status, String::from_utf8_lossy(&output.stderr).trim())),
        Err(error) => Err(format!("{what}: cannot run {:?}: {error}", command.get_program())),
    }
}

/// What a client script did.
#[derive(Debug)]
pub struct ClientRun {
    /// Its exit status.
    pub status: ExitStatus,
    /// Everything it printed on stdout.
    pub stdout: String,
    /// Everything it printed on stderr (named in every failure message).
    pub stderr: String,
}

impl ClientRun {
    /// The last stdout line as JSON (each script's one result line).
    pub fn result(&self) -> serde_json::Value {
        let line = self.stdout.lines().last().unwrap_or_else(|| panic!("client printed nothing\n{self}"));
        serde_json::from_str(line).unwrap_or_else(|error| panic!("client result {line:?} is not JSON: {error}\n{self}"))
    }

    /// Panics, with the client's output, unless it exited 0.
    pub fn assert_success(&self) -> &Self {
        assert!(self.status.success(), "client failed: {}\n{self}", self.status);
        self
    }
}

impl std::fmt::Display for ClientRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "--- stdout\n{}--- stderr\n{}---", self.stdout, self.stderr)
    }
}

/// Runs a client to its end within `CLIENT_TIMEOUT`; kills it and panics, with its stderr,
/// past that.
pub fn run_client(command: &mut Command) -> ClientRun {
    let mut child = command
        .current_dir(interop_dir())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| panic!("cannot start client {:?}: {error}", command.get_program()));
    let stdout = drain(child.stdout.take().expect("piped stdout"));
    let stderr = drain(child.stderr.take().expect("piped stderr"));
    let deadline = Instant::now() + CLIENT_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("client wait") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            let stderr = stderr.join().unwrap_or_default();
            panic!("client {command:?} still running after {CLIENT_TIMEOUT:?}, killed; stderr:\n{stderr}");
        }
        thread::sleep(Duration::from_millis(20));
    };
    ClientRun { status, stdout: stdout.join().unwrap_or_default(), stderr: stderr.join().unwrap_or_default() }
}

/// Reads a pipe to its end on a thread (so a chatty child never blocks on a full pipe).
fn drain(mut pipe: impl Read + Send + 'static) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut text = String::new();
        let _ = pipe.read_to_string(&mut text);
        text
    })
}

/// A running `obsim serve` child: its listeners by `(part, protocol)`, killed on drop.
pub struct Served {
    child: Child,
    /// `(part, protocol)` → address, from the `obsim serve: <part> <protocol> listening on`
    /// lines.
    pub listeners: BTreeMap<(String, String), SocketAddr>,
    lines: Receiver<String>,
    stderr: Option<thread::JoinHandle<String>>,
}

impl Served {
    /// Starts `obsim serve ARGS` and waits for `obsim serve: ready`.
    pub fn start(args: &[&str]) -> Served {
        let mut child = Command::new(env!("CARGO_BIN_EXE_obsim"))
            .arg("serve")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start obsim serve {args:?}: {error}"));
        let lines = line_reader(child.stdout.take().expect("piped stdout"));
        let stderr = Some(drain(child.stderr.take().expect("piped stderr")));
        let mut served = Served { child, listeners: BTreeMap::new(), lines, stderr };
        served.wait_ready(args);
        served
    }

    /// Reads the listening lines until `ready`.
    fn wait_ready(&mut self, args: &[&str]) {
        let deadline = Instant::now() + SERVE_READY_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match self.lines.recv_timeout(left) {
                Ok(line) => line,
                Err(_) => panic!(
                    "obsim serve {args:?} printed no `obsim serve: ready` within {SERVE_READY_TIMEOUT:?}; stderr:\n{}",
                    self.stderr_text()
                ),
            };
            if line.trim() == "obsim serve: ready" {
                return;
            }
            if let Some((key, address)) = parse_listening(&line) {
                self.listeners.insert(key, address);
            }
        }
    }

    /// The address of `part`'s `protocol` listener.
    pub fn address(&self, part: &str, protocol: &str) -> SocketAddr {
        *self.listeners.get(&(part.to_owned(), protocol.to_owned())).unwrap_or_else(|| {
            panic!("obsim serve printed no `{part} {protocol} listening on` line: {:?}", self.listeners)
        })
    }

    /// SIGTERM, then the lines it printed until it exited (the `stopped; stored ...` summary).
    pub fn stop(mut self) -> String {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status();
        assert!(sent.is_ok_and(|status| status.success()), "kill -TERM {pid} failed");
        let deadline = Instant::now() + SERVE_STOP_TIMEOUT;
        let mut printed = String::new();
        loop {
            match self.lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(line) => {
                    printed.push_str(&line);
                    printed.push('\n');
                }
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => {
                    panic!("obsim serve did not exit within {SERVE_STOP_TIMEOUT:?} of SIGTERM; printed:\n{printed}")
                }
            }
        }
        let status = self.child.wait().expect("obsim serve wait");
        assert!(
            status.success(),
            "obsim serve exited {status} after SIGTERM; printed:\n{printed}\nstderr:\n{}",
            self.stderr_text()
        );
        printed
    }

    /// What the child wrote on stderr so far (all of it once it has exited).
    fn stderr_text(&mut self) -> String {
        let _ = self.child.kill();
        self.stderr.take().map(|handle| handle.join().unwrap_or_default()).unwrap_or_default()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends each stdout line of a child into a channel, from a thread.
fn line_reader(stdout: ChildStdout) -> Receiver<String> {
    let (sender, receiver) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    receiver
}

/// `obsim serve: <part> <protocol> listening on <ip:port>` → `((part, protocol), address)`.
pub fn parse_listening(line: &str) -> Option<((String, String), SocketAddr)> {
    let rest = line.trim().strip_prefix("obsim serve: ")?;
    let (names, address) = rest.split_once(" listening on ")?;
    let (part, protocol) = names.split_once(' ')?;
    Some(((part.to_owned(), protocol.to_owned()), address.trim().parse().ok()?))
}

/// The count printed just before the first word starting with `label` in a summary line:
/// `count_before("stored 0 records in redis lists, 4 logs", "log")` is `Some(4)`.
pub fn count_before(text: &str, label: &str) -> Option<u64> {
    let words: Vec<&str> = text.split(|c: char| c.is_whitespace() || c == ',' || c == ';').collect();
    words.windows(2).find(|pair| pair[1].starts_with(label)).and_then(|pair| pair[0].parse().ok())
}
