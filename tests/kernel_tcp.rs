//! The kernel TCP differential: what a real Linux TCP connection shows its applications when
//! the link between them is cut, so obsim's network can be held to it (FIDELITY.md, "Network /
//! TCP").
//!
//! A client and a server run on threads in two network namespaces joined by a veth pair
//! (tests/kernel_tcp/netns.rs); the link is cut by dropping every packet silently. Each
//! schedule is run on the kernel and its observations are asserted here (the numbers are in
//! FIDELITY.md). The same schedules run on plain turmoil show why obsim needs a TCP model of
//! its own: turmoil disagrees. obsim's network (`obsim::world::net`) runs every schedule too and
//! is held to [`schedule::expected_obsim_agreement`]: delivered bytes exact, the same error at
//! a time within ±(1 s + 20 %), the same end seen by the server.
//!
//! Needs root (or CAP_SYS_ADMIN + CAP_NET_ADMIN) and iproute2; without them every kernel test
//! fails with a message saying so — never a silent skip. The kernel tests run in parallel and
//! take about 9 s of wall time.

#[path = "kernel_tcp/kernel.rs"]
mod kernel;
#[path = "kernel_tcp/netns.rs"]
mod netns;
#[path = "kernel_tcp/obsim_side.rs"]
mod obsim_side;
#[path = "kernel_tcp/schedule.rs"]
mod schedule;
#[path = "kernel_tcp/sim_app.rs"]
mod sim_app;
#[path = "kernel_tcp/turmoil_side.rs"]
mod turmoil_side;

use std::io::ErrorKind;

use schedule::{Observed, RECORD_BYTES, Schedule, ServerEnd, expected_obsim_agreement};

/// `TCP_USER_TIMEOUT` in every schedule: 3 s.
const USER_TIMEOUT_MS: u32 = 3_000;
/// The kernel's initial SYN retransmission timeout (`TCP_TIMEOUT_INIT`, 1 s).
const SYN_RTO_MS: u64 = 1_000;

/// The common schedule: connect at 0.1 s, a record every 100 ms until 6 s, the link cut at
/// 1.15 s (between two writes, so which records went out before the cut is certain).
const BASE: Schedule = Schedule {
    tag: "base",
    user_timeout_ms: USER_TIMEOUT_MS,
    connect_at_ms: 100,
    connect_timeout_ms: 2_000,
    write_every_ms: 100,
    write_until_ms: 6_000,
    cut_from_ms: 1_150,
    cut_until_ms: 2_650,
    server_forgets_at_ms: None,
    observe_until_ms: 8_000,
};

/// A cut of 1.5 s, shorter than the user timeout.
const SHORT_CUT: Schedule = Schedule { tag: "shrt", ..BASE };
/// A cut of 5.35 s, longer than the user timeout; observation goes on 1.5 s after the repair.
const LONG_CUT: Schedule = Schedule { tag: "long", cut_until_ms: 6_500, ..BASE };
/// A 1.5 s cut during which the server drops the connection abortively (its RST is lost):
/// the peer's state is gone, as after a restart.
const PEER_FORGOT: Schedule = Schedule { tag: "rst", server_forgets_at_ms: Some(1_500), ..BASE };
/// A connect while the link is cut for longer than the connect timeout (2 s).
const CONNECT_LONG_CUT: Schedule = Schedule { tag: "cl", cut_from_ms: 50, cut_until_ms: 4_000, ..BASE };
/// A connect while the link is cut for 0.7 s more, with a 4 s connect timeout.
const CONNECT_SHORT_CUT: Schedule =
    Schedule { tag: "cs", cut_from_ms: 50, cut_until_ms: 800, connect_timeout_ms: 4_000, ..BASE };

/// Runs `schedule` on the kernel; a harness failure (no namespaces) fails the test with its
/// message.
fn kernel(schedule: &Schedule) -> Observed {
    // One kernel run at a time: two tests run the same schedule, whose namespaces share a
    // name (tag and pid), and timings are cleaner without a neighbour on the CPU.
    static ONE_KERNEL_RUN_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _turn = ONE_KERNEL_RUN_AT_A_TIME.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let saw = kernel::run_kernel(schedule).unwrap_or_else(|error| panic!("kernel run {}: {error}", schedule.tag));
    // The measured numbers (FIDELITY.md, "Network / TCP"), shown with `--nocapture`.
    eprintln!("kernel {}: {saw:?}", schedule.tag);
    saw
}

/// Bytes of the records due before `at_ms`.
fn bytes_due_before(schedule: &Schedule, at_ms: u64) -> u64 {
    let records = (0..schedule.records()).filter(|&index| schedule.due_ms(index) < at_ms).count();
    records as u64 * RECORD_BYTES as u64
}

#[test]
fn a_cut_shorter_than_the_user_timeout_stalls_then_delivers_every_byte() {
    let saw = kernel(&SHORT_CUT);
    let cut_ms = SHORT_CUT.cut_until_ms - SHORT_CUT.cut_from_ms;
    assert_eq!(saw.error, None, "{saw:?}");
    assert_eq!(saw.delivered_bytes, SHORT_CUT.records() * RECORD_BYTES as u64, "{saw:?}");
    assert_eq!(saw.written_bytes, saw.delivered_bytes, "{saw:?}");
    assert_eq!(saw.server, ServerEnd::Open, "{saw:?}");
    // The stall lasts at least the cut and ends at the first backed-off retransmission after
    // the repair, not at the repair itself.
    assert!(saw.longest_read_gap_ms >= cut_ms, "stall {} ms < cut {cut_ms} ms: {saw:?}", saw.longest_read_gap_ms);
    assert!(saw.longest_read_gap_ms < cut_ms + 1_500, "stall far beyond the cut: {saw:?}");
}

#[test]
fn a_cut_longer_than_the_user_timeout_fails_the_next_write_and_leaves_the_server_half_open() {
    let saw = kernel(&LONG_CUT);
    let (kind, at_ms) = saw.error.unwrap_or_else(|| panic!("no client error: {saw:?}"));
    assert_eq!(kind, ErrorKind::TimedOut, "ETIMEDOUT: {saw:?}");
    let timeout_ms = LONG_CUT.cut_from_ms + u64::from(USER_TIMEOUT_MS);
    assert!(
        (timeout_ms..timeout_ms + 1_500).contains(&at_ms),
        "ETIMEDOUT at {at_ms} ms, expected within 1.5 s after cut + user timeout: {saw:?}"
    );
    assert_eq!(saw.delivered_bytes, bytes_due_before(&LONG_CUT, LONG_CUT.cut_from_ms), "{saw:?}");
    assert!(saw.written_bytes > saw.delivered_bytes, "writes during the cut are accepted: {saw:?}");
    // The server hears nothing, not even after the repair: its connection stays half-open.
    assert_eq!(saw.server, ServerEnd::Open, "{saw:?}");
}

#[test]
fn a_write_to_a_peer_that_lost_the_connection_is_reset_after_the_repair() {
    let saw = kernel(&PEER_FORGOT);
    let (kind, at_ms) = saw.error.unwrap_or_else(|| panic!("no client error: {saw:?}"));
    assert_eq!(kind, ErrorKind::ConnectionReset, "ECONNRESET: {saw:?}");
    assert!(
        (PEER_FORGOT.cut_until_ms..PEER_FORGOT.cut_until_ms + 2_000).contains(&at_ms),
        "reset at {at_ms} ms, expected within 2 s after the repair: {saw:?}"
    );
    assert_eq!(saw.delivered_bytes, bytes_due_before(&PEER_FORGOT, PEER_FORGOT.cut_from_ms), "{saw:?}");
    assert_eq!(saw.server, ServerEnd::ClosedByServer, "{saw:?}");
}

#[test]
fn a_connect_during_a_cut_longer_than_its_timeout_times_out_at_the_timeout() {
    let schedule = CONNECT_LONG_CUT;
    let saw = kernel(&schedule);
    let (kind, at_ms) = saw.error.unwrap_or_else(|| panic!("connect did not fail: {saw:?}"));
    assert_eq!(kind, ErrorKind::TimedOut, "{saw:?}");
    let deadline_ms = schedule.connect_at_ms + schedule.connect_timeout_ms;
    assert!((deadline_ms..deadline_ms + 300).contains(&at_ms), "timed out at {at_ms} ms: {saw:?}");
    assert_eq!((saw.connected_ms, saw.delivered_bytes, saw.server), (None, 0, ServerEnd::NeverAccepted));
}

#[test]
fn a_connect_during_a_short_cut_succeeds_on_the_first_syn_retransmission() {
    let schedule = CONNECT_SHORT_CUT;
    let saw = kernel(&schedule);
    let connected_ms = saw.connected_ms.unwrap_or_else(|| panic!("connect failed: {saw:?}"));
    let retransmit_ms = schedule.connect_at_ms + SYN_RTO_MS;
    assert!((retransmit_ms..retransmit_ms + 300).contains(&connected_ms), "connected at {connected_ms} ms: {saw:?}");
    assert_eq!(saw.error, None, "{saw:?}");
    assert_eq!(
        saw.delivered_bytes,
        schedule.records() * RECORD_BYTES as u64,
        "records due before connecting go out late"
    );
}

#[test]
fn plain_turmoil_disagrees_with_the_kernel_on_a_short_cut() {
    let real = kernel(&SHORT_CUT);
    let simulated = turmoil_side::run_turmoil(&SHORT_CUT).expect("the turmoil run");
    assert_eq!(expected_obsim_agreement(&real, &real), Ok(()), "the rule accepts the kernel itself");
    let disagreement = expected_obsim_agreement(&real, &simulated).expect_err("turmoil should disagree");
    assert!(disagreement.contains("delivered bytes"), "{disagreement}");
    // Why: turmoil drops the segments sent across the partition and never retransmits them;
    // every later segment waits for the missing one. The connection is silently dead.
    assert_eq!(simulated.delivered_bytes, bytes_due_before(&SHORT_CUT, SHORT_CUT.cut_from_ms), "{simulated:?}");
    assert_eq!((simulated.error, simulated.server), (None, ServerEnd::Open), "{simulated:?}");
    assert_eq!(simulated.written_bytes, real.written_bytes, "the client wrote alike");
}

#[test]
fn plain_turmoil_never_times_out_a_connection_across_a_long_cut() {
    let simulated = turmoil_side::run_turmoil(&LONG_CUT).expect("the turmoil run");
    // The kernel reports ETIMEDOUT (the test above); turmoil reports nothing at all.
    assert_eq!(simulated.error, None, "{simulated:?}");
    assert_eq!(simulated.delivered_bytes, bytes_due_before(&LONG_CUT, LONG_CUT.cut_from_ms), "{simulated:?}");
}

#[test]
fn plain_turmoil_refuses_a_connect_across_a_cut_at_once() {
    let simulated = turmoil_side::run_turmoil(&CONNECT_SHORT_CUT).expect("the turmoil run");
    // The kernel retransmits the SYN and connects after the repair (the test above).
    let (kind, at_ms) = simulated.error.unwrap_or_else(|| panic!("connect did not fail: {simulated:?}"));
    assert_eq!((kind, simulated.connected_ms), (ErrorKind::ConnectionRefused, None), "{simulated:?}");
    assert!(at_ms < CONNECT_SHORT_CUT.cut_until_ms, "refused during the cut: {simulated:?}");
}

/// Runs `schedule` on the kernel and on obsim's network and holds obsim to the kernel.
fn obsim_agrees(schedule: &Schedule) {
    let real = kernel(schedule);
    let simulated = obsim_side::run_obsim(schedule).expect("the obsim run");
    eprintln!("obsim  {}: {simulated:?}", schedule.tag);
    if let Err(disagreement) = expected_obsim_agreement(&real, &simulated) {
        panic!(
            "obsim disagrees with the kernel on {}: {disagreement}\nkernel {real:?}\nobsim  {simulated:?}",
            schedule.tag
        );
    }
}

#[test]
fn obsim_agrees_with_the_kernel_on_a_short_cut() {
    obsim_agrees(&SHORT_CUT);
}

#[test]
fn obsim_agrees_with_the_kernel_on_a_long_cut() {
    obsim_agrees(&LONG_CUT);
}

#[test]
fn obsim_agrees_with_the_kernel_on_a_peer_that_forgot_the_connection() {
    obsim_agrees(&PEER_FORGOT);
}

#[test]
fn obsim_agrees_with_the_kernel_on_a_connect_during_a_long_cut() {
    obsim_agrees(&CONNECT_LONG_CUT);
}

#[test]
fn obsim_agrees_with_the_kernel_on_a_connect_during_a_short_cut() {
    obsim_agrees(&CONNECT_SHORT_CUT);
}

/// An observation for the agreement rule's own tests.
fn observed(delivered_bytes: u64, error: Option<(ErrorKind, u64)>) -> Observed {
    Observed {
        connected_ms: Some(100),
        written_bytes: 2_400,
        delivered_bytes,
        error,
        server: ServerEnd::Open,
        longest_read_gap_ms: 100,
    }
}

#[test]
fn the_agreement_rule_holds_bytes_exact_kinds_equal_and_times_within_tolerance() {
    let kernel = observed(1_100, Some((ErrorKind::TimedOut, 4_900)));
    // ±(1 s + 20 % of 4.9 s) = ±1.98 s.
    assert_eq!(expected_obsim_agreement(&kernel, &observed(1_100, Some((ErrorKind::TimedOut, 6_880)))), Ok(()));
    assert_eq!(expected_obsim_agreement(&kernel, &observed(1_100, Some((ErrorKind::TimedOut, 2_920)))), Ok(()));
    let late = expected_obsim_agreement(&kernel, &observed(1_100, Some((ErrorKind::TimedOut, 6_881))));
    assert!(late.is_err_and(|why| why.contains("error time")));
    let bytes = expected_obsim_agreement(&kernel, &observed(1_000, Some((ErrorKind::TimedOut, 4_900))));
    assert!(bytes.is_err_and(|why| why.contains("delivered bytes")));
    let kind = expected_obsim_agreement(&kernel, &observed(1_100, Some((ErrorKind::BrokenPipe, 4_900))));
    assert!(kind.is_err_and(|why| why.contains("error kind")));
    let silent = expected_obsim_agreement(&kernel, &observed(1_100, None));
    assert!(silent.is_err_and(|why| why.contains("error:")));
    let half_open = Observed { server: ServerEnd::Eof { at_ms: 5_000 }, ..kernel };
    assert!(expected_obsim_agreement(&kernel, &half_open).is_err_and(|why| why.contains("server saw")));
}

#[test]
fn namespaces_that_cannot_be_made_fail_with_a_message_naming_the_need() {
    // `ip netns add` rejects a name with a slash, standing in for a missing privilege.
    let error = netns::LinkedNamespaces::create("a/b").expect_err("an invalid namespace name");
    assert!(error.contains("kernel_tcp needs to create network namespaces"), "{error}");
    assert!(error.contains("create the client namespace"), "names the step: {error}");
}

#[test]
fn the_namespaces_are_removed_even_when_a_test_panics() {
    let mut names = None;
    let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let link = netns::LinkedNamespaces::create("pan").unwrap_or_else(|error| panic!("{error}"));
        names = Some(link.names());
        assert!(names.iter().flatten().all(|name| std::path::Path::new("/run/netns").join(name).exists()));
        panic!("a test failing while it holds the namespaces");
    }));
    assert!(unwound.is_err(), "the closure panics");
    let names = names.expect("the namespaces were made before the panic");
    for name in names {
        assert!(!std::path::Path::new("/run/netns").join(&name).exists(), "{name} left behind");
    }
}
