//! The client's writing and the server's reading of a [`Schedule`] inside a simulation, shared
//! by the plain turmoil side and obsim's side: the two differ only in the network under
//! them (how they connect, accept and forget), so the applications are written once.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::schedule::{Observed, RECORD_BYTES, Schedule, ServerEnd};

/// The server's port.
pub const SERVER_PORT: u16 = 24_224;

/// An observation with nothing seen yet.
pub fn nothing_observed() -> Arc<Mutex<Observed>> {
    Arc::new(Mutex::new(Observed {
        connected_ms: None,
        written_bytes: 0,
        delivered_bytes: 0,
        error: None,
        server: ServerEnd::NeverAccepted,
        longest_read_gap_ms: 0,
    }))
}

/// Simulated milliseconds since the simulation started.
pub fn now_ms() -> u64 {
    let elapsed = turmoil::sim_elapsed().expect("called inside the simulation");
    u64::try_from(elapsed.as_millis()).expect("a run lasts less than u64 ms")
}

/// Sleeps (simulated time) until `at_ms`.
pub async fn sleep_until(at_ms: u64) {
    let now_ms = now_ms();
    if at_ms > now_ms {
        tokio::time::sleep(Duration::from_millis(at_ms - now_ms)).await;
    }
}

/// The client's connect under the schedule's connect timeout; records a failure.
pub async fn connect<S>(
    schedule: &Schedule,
    observed: &Mutex<Observed>,
    connecting: impl Future<Output = std::io::Result<S>>,
) -> Option<S> {
    sleep_until(schedule.connect_at_ms).await;
    let timeout = Duration::from_millis(schedule.connect_timeout_ms);
    match tokio::time::timeout(timeout, connecting).await.unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into())) {
        Ok(stream) => Some(stream),
        Err(error) => {
            observed.lock().expect("lock").error = Some((error.kind(), now_ms()));
            None
        }
    }
}

/// The client after connecting: a record at each due time until one write fails.
pub async fn write_records(schedule: &Schedule, observed: &Mutex<Observed>, stream: &mut (impl AsyncWrite + Unpin)) {
    observed.lock().expect("lock").connected_ms = Some(now_ms());
    let record = [b'r'; RECORD_BYTES];
    for index in 0..schedule.records() {
        sleep_until(schedule.due_ms(index)).await;
        if let Err(error) = stream.write_all(&record).await {
            observed.lock().expect("lock").error = Some((error.kind(), now_ms()));
            break;
        }
        observed.lock().expect("lock").written_bytes += RECORD_BYTES as u64;
    }
}

/// The server after accepting: reads until EOF, an error, or the time it stops (the
/// schedule's `server_forgets_at_ms`, else the end of observation). Returns whether the
/// connection ended by itself (EOF or error).
pub async fn read_records(
    schedule: &Schedule,
    observed: &Mutex<Observed>,
    stream: &mut (impl AsyncRead + Unpin),
) -> bool {
    observed.lock().expect("lock").server = ServerEnd::Open;
    let stop_ms = schedule.server_forgets_at_ms.unwrap_or(schedule.observe_until_ms).min(schedule.observe_until_ms);
    let (mut last_read_ms, mut buffer) = (None, [0_u8; 4096]);
    while now_ms() < stop_ms {
        let wait = Duration::from_millis(stop_ms - now_ms());
        let Ok(read) = tokio::time::timeout(wait, stream.read(&mut buffer)).await else { return false };
        let mut seen = observed.lock().expect("lock");
        match read {
            Ok(0) => {
                seen.server = ServerEnd::Eof { at_ms: now_ms() };
                return true;
            }
            Ok(read) => {
                if let Some(last_ms) = last_read_ms {
                    seen.longest_read_gap_ms = seen.longest_read_gap_ms.max(now_ms() - last_ms);
                }
                last_read_ms = Some(now_ms());
                seen.delivered_bytes += read as u64;
            }
            Err(error) => {
                seen.server = ServerEnd::Error { kind: error.kind(), at_ms: now_ms() };
                return true;
            }
        }
    }
    false
}

/// Whether the schedule has the server forget the connection before observation ends.
pub fn server_forgets(schedule: &Schedule) -> bool {
    schedule.server_forgets_at_ms.is_some_and(|at_ms| at_ms < schedule.observe_until_ms)
}
