//! The schedule both sides of the differential run, what each application observed, and the
//! rule by which obsim's network must agree with the kernel.
//!
//! Why plain data: the kernel run (real sockets in namespaces), a plain turmoil run and
//! obsim's TCP model each turn one [`Schedule`] into one [`Observed`]; the comparison is a
//! pure function of two `Observed`s, so it is testable on its own.

use std::io::ErrorKind;

/// Size of one record the client writes.
pub const RECORD_BYTES: usize = 100;

/// One run: a client connects, sets `TCP_USER_TIMEOUT`, writes a record every
/// `write_every_ms` while `write_until_ms`; the link is cut over `[cut_from_ms, cut_until_ms)`.
/// All times are ms from the run's start.
#[derive(Clone, Copy, Debug)]
pub struct Schedule {
    /// Short name, used in namespace names (at most 4 bytes) and messages.
    pub tag: &'static str,
    /// The client's `TCP_USER_TIMEOUT` (tcp(7)): how long sent data may stay unacknowledged.
    pub user_timeout_ms: u32,
    /// When the client calls connect.
    pub connect_at_ms: u64,
    /// How long the client waits for connect to finish before giving up.
    pub connect_timeout_ms: u64,
    /// Period of the client's writes; record k is due at `connect_at_ms + k * write_every_ms`.
    pub write_every_ms: u64,
    /// No record is due at or after this time.
    pub write_until_ms: u64,
    /// When the link is cut.
    pub cut_from_ms: u64,
    /// When the link is repaired.
    pub cut_until_ms: u64,
    /// When, if ever, the server application drops its connection with no FIN or RST reaching
    /// the client (an abortive close during the cut: the peer's state is gone, as after a
    /// restart).
    pub server_forgets_at_ms: Option<u64>,
    /// Both applications stop observing at this time.
    pub observe_until_ms: u64,
}

impl Schedule {
    /// Checks the schedule's own invariants; the message names the broken one.
    pub fn validate(&self) -> Result<(), String> {
        let checks = [
            (self.cut_from_ms < self.cut_until_ms, "cut_from_ms < cut_until_ms"),
            (self.write_every_ms > 0, "write_every_ms > 0"),
            (self.connect_at_ms < self.write_until_ms, "connect_at_ms < write_until_ms"),
            (self.write_until_ms < self.observe_until_ms, "write_until_ms < observe_until_ms"),
            (self.cut_until_ms < self.observe_until_ms, "cut_until_ms < observe_until_ms"),
            (self.observe_until_ms <= 20_000, "observe_until_ms <= 20 s (keep the test fast)"),
            (self.user_timeout_ms > 0, "user_timeout_ms > 0"),
        ];
        match checks.iter().find(|(holds, _)| !holds) {
            Some((_, what)) => Err(format!("schedule {}: {what} does not hold", self.tag)),
            None => Ok(()),
        }
    }

    /// How many records the client writes if nothing fails.
    pub fn records(&self) -> u64 {
        (self.write_until_ms - self.connect_at_ms).div_ceil(self.write_every_ms)
    }

    /// When record `index` is due.
    pub fn due_ms(&self, index: u64) -> u64 {
        self.connect_at_ms + index * self.write_every_ms
    }
}

/// How the server application's connection ended, as it saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerEnd {
    /// Nothing was ever accepted.
    NeverAccepted,
    /// Still open when observation stopped: no EOF, no error (half-open if the client is gone).
    Open,
    /// A read returned 0 (FIN) at this time.
    Eof {
        /// When.
        at_ms: u64,
    },
    /// A read failed with this kind at this time (e.g. RST: `ConnectionReset`).
    Error {
        /// What the read returned.
        kind: ErrorKind,
        /// When.
        at_ms: u64,
    },
    /// The server application itself dropped the connection (the schedule's
    /// `server_forgets_at_ms`).
    ClosedByServer,
}

/// What the applications saw in one run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Observed {
    /// When connect returned successfully, if it did.
    pub connected_ms: Option<u64>,
    /// Bytes the client's writes accepted.
    pub written_bytes: u64,
    /// Bytes the server application read.
    pub delivered_bytes: u64,
    /// The client application's first error (connect or write) and when it returned.
    pub error: Option<(ErrorKind, u64)>,
    /// How the server application's connection ended.
    pub server: ServerEnd,
    /// The longest time between two successful reads by the server (the stall a cut caused),
    /// 0 with fewer than two reads.
    pub longest_read_gap_ms: u64,
}

/// The tolerance on an error's time: ±(1 s + 20 % of the kernel's time).
pub fn error_time_tolerance_ms(kernel_ms: u64) -> u64 {
    1_000 + kernel_ms / 5
}

/// Whether obsim's network agrees with the kernel on one schedule: connect succeeds or not
/// alike, delivered bytes exactly equal, the client's error of the same kind (or none on both)
/// at a time within [`error_time_tolerance_ms`], and the server's view of the end of the same
/// kind. `Err` lists every disagreement.
pub fn expected_obsim_agreement(kernel: &Observed, obsim: &Observed) -> Result<(), String> {
    let mut disagreements = Vec::new();
    if kernel.connected_ms.is_some() != obsim.connected_ms.is_some() {
        disagreements.push(format!("connected: kernel {:?}, obsim {:?}", kernel.connected_ms, obsim.connected_ms));
    }
    if kernel.delivered_bytes != obsim.delivered_bytes {
        disagreements
            .push(format!("delivered bytes: kernel {}, obsim {}", kernel.delivered_bytes, obsim.delivered_bytes));
    }
    match (kernel.error, obsim.error) {
        (None, None) => {}
        (Some((kernel_kind, kernel_ms)), Some((obsim_kind, obsim_ms))) => {
            if kernel_kind != obsim_kind {
                disagreements.push(format!("error kind: kernel {kernel_kind:?}, obsim {obsim_kind:?}"));
            }
            let tolerance_ms = error_time_tolerance_ms(kernel_ms);
            if kernel_ms.abs_diff(obsim_ms) > tolerance_ms {
                disagreements
                    .push(format!("error time: kernel {kernel_ms} ms, obsim {obsim_ms} ms (±{tolerance_ms} ms)"));
            }
        }
        (kernel_error, obsim_error) => {
            disagreements.push(format!("error: kernel {kernel_error:?}, obsim {obsim_error:?}"));
        }
    }
    if std::mem::discriminant(&kernel.server) != std::mem::discriminant(&obsim.server) {
        disagreements.push(format!("server saw: kernel {:?}, obsim {:?}", kernel.server, obsim.server));
    }
    if disagreements.is_empty() { Ok(()) } else { Err(disagreements.join("; ")) }
}
