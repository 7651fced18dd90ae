//! in_forward on :24225: where the agents' chunks arrive, where the shared key is checked,
//! and where the aggregator acks.
//!
//! Per connection: with a shared key, send HELO (nonce from the host's seeded stream),
//! judge the PING (`ServerAuth::answer_ping`), answer PONG; a wrong key gets PONG false
//! "shared_key mismatch" and the connection is closed before any frame is read. Then frames
//! are decoded from the stream under the decoder's limits, their records written to the
//! buffer, and only once the buffer holds them is `{"ack": chunk}` sent. When the buffer
//! refuses (throw_exception), Fluentd's emit raises: no ack, the connection is closed, and
//! the agent retries. With `block` the connection is simply not read until there is room.
//! On SIGTERM every connection closes (Fluentd shuts its inputs down before its outputs).

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use crate::world::TcpListener;
use crate::world::tls::ServerStream;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::proto::forward::{
    ClientFrame, EVENT_TIME_ENCODED_BYTES, EventFrame, INVALID_PING, Limits, ServerAuth, StreamDecoder, encode_ack,
};
use crate::record::{LogRecord, RecordId};
use crate::vocab::{LossCause, ports};

use super::{Shared, fluent_event};
use crate::vocab::EventKind;

/// Bytes read from a socket at a time.
const READ_BYTES: usize = 64 * 1024;

/// Accepts agents forever.
pub async fn serve(shared: Arc<Shared>) -> turmoil::Result {
    let listener =
        TcpListener::bind(std::net::SocketAddr::new(IpAddr::from(Ipv4Addr::UNSPECIFIED), ports::AGGREGATOR_FORWARD))
            .await?;
    let mut connections_count = 0u64;
    loop {
        let (stream, peer) = listener.accept().await?;
        connections_count += 1;
        let peer_name = crate::world::net::peer_name(peer);
        crate::world::spawn(connection(Arc::clone(&shared), stream, peer_name, connections_count));
    }
}

/// Serves one agent connection until it closes, fails, or is refused.
async fn connection(shared: Arc<Shared>, stream: crate::world::TcpStream, peer: String, index: u64) {
    let Some(mut stream) = super::tls::accept(&shared, stream, &peer, index).await else { return };
    let host = &shared.ctx.host;
    let config = &shared.config;
    let mut decoder = StreamDecoder::new(Limits::with_frame_bytes_limit(config.frame_bytes_limit));
    let auth = config.shared_key.as_ref().map(|shared_key| ServerAuth {
        hostname: config.self_hostname.clone().unwrap_or_else(|| host.name().to_string()),
        shared_key: shared_key.clone(),
        users: Vec::new(),
    });
    let mut out = Vec::new();
    let helo = auth.as_ref().map(|auth| auth.helo(&mut host.rng(&format!("aggregator/helo/{index}")), true));
    if let Some(helo) = &helo {
        helo.encode(&mut out);
        if stream.write_all(&out).await.is_err() {
            return;
        }
    }
    let mut authenticated = auth.is_none();
    let mut buffer = vec![0u8; READ_BYTES];
    loop {
        let Some(count) = read_some(&shared, &mut stream, &mut buffer, &peer).await else {
            return;
        };
        if let Err(error) = decoder.feed(&buffer[..count]) {
            host.record(EventKind::AggregatorBadStream, format!("{peer}: {error}"));
            return;
        }
        // Bounded: each pass consumes one whole frame of the fed bytes.
        loop {
            let frame = match decoder.next_client_frame() {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                // In_forward's `pingpong` state hands whatever message comes first to
                // `check_ping`: anything but a PING is refused with a PONG, then closed.
                Err(error) if !authenticated => {
                    refuse_invalid_ping(host, &mut stream, &mut out, &peer, &error.to_string()).await;
                    return;
                }
                Err(error) => {
                    // Fluentd closes a connection that sent a frame it cannot read.
                    host.record(EventKind::AggregatorBadFrame, format!("{peer}: {error}"));
                    return;
                }
            };
            match frame {
                ClientFrame::Ping(ping) => {
                    let (Some(auth), Some(helo), false) = (&auth, &helo, authenticated) else {
                        host.record(EventKind::AggregatorBadFrame, format!("{peer}: PING outside the handshake"));
                        return;
                    };
                    if !answer_ping(host, &mut stream, &mut out, &peer, (auth, helo), &ping).await {
                        return;
                    }
                    authenticated = true;
                }
                ClientFrame::Events(frame) => {
                    if !authenticated {
                        refuse_invalid_ping(host, &mut stream, &mut out, &peer, "events before the handshake").await;
                        return;
                    }
                    if !take_events(&shared, &mut stream, &mut out, &peer, frame).await {
                        return;
                    }
                }
            }
        }
    }
}

/// Reads what the agent sent next; `None`: the connection is over — closed by the agent,
/// failed, silent for `connection_idle_timeout`, or SIGTERM (Fluentd's shutdown stops the
/// inputs first: the server closes its connections).
async fn read_some(shared: &Shared, stream: &mut ServerStream, buffer: &mut [u8], peer: &str) -> Option<usize> {
    let (host, idle_timeout) = (&shared.ctx.host, shared.config.connection_idle_timeout);
    let read = tokio::select! {
        biased;
        () = host.sigterm().received() => return None,
        read = tokio::time::timeout(idle_timeout, stream.read(buffer)) => read,
    };
    match read {
        Ok(Ok(0)) | Ok(Err(_)) => None,
        Ok(Ok(count)) => Some(count),
        Err(_) => {
            host.record(EventKind::AggregatorIdleClose, format!("{peer} silent for {idle_timeout:?}"));
            None
        }
    }
}

/// Refuses a client whose first message after HELO is not a PING, as Fluentd's in_forward
/// does: `['PONG', false, 'invalid ping message', '', '']`, then the connection closes
/// once it is written (`close_after_write_complete`).
async fn refuse_invalid_ping(
    host: &crate::world::HostCtx,
    stream: &mut ServerStream,
    out: &mut Vec<u8>,
    peer: &str,
    what: &str,
) {
    out.clear();
    ServerAuth::refuse(INVALID_PING).encode(out);
    let _ = stream.write_all(out).await;
    let _ = stream.flush().await;
    host.record(EventKind::AggregatorAuthRejected, format!("{peer}: {INVALID_PING} ({what})"));
}

/// Answers the handshake's PING with a PONG. `true`: the client is authenticated; `false`:
/// it was refused or the PONG was not written, and the connection must close.
async fn answer_ping(
    host: &crate::world::HostCtx,
    stream: &mut ServerStream,
    out: &mut Vec<u8>,
    peer: &str,
    (auth, helo): (&ServerAuth, &crate::proto::forward::Helo),
    ping: &crate::proto::forward::Ping,
) -> bool {
    let pong = auth.answer_ping(helo, ping);
    out.clear();
    pong.encode(out);
    let written = stream.write_all(out).await;
    if !pong.auth_result {
        host.record(EventKind::AggregatorAuthRejected, format!("{peer} ({}): {}", ping.client_hostname, pong.reason));
        return false;
    }
    if written.is_err() {
        return false;
    }
    host.record(EventKind::AggregatorAuth, format!("{peer} as {}", ping.client_hostname));
    true
}

/// Decodes an event frame's records, buffers them and acks the chunk if asked. `false`:
/// the connection must close (the buffer refused the records, or the ack was not written).
async fn take_events(
    shared: &Arc<Shared>,
    stream: &mut ServerStream,
    out: &mut Vec<u8>,
    peer: &str,
    frame: EventFrame,
) -> bool {
    let (records, bytes) = decode_records(shared, peer, &frame);
    let count = records.len();
    if shared.config.bugs.aggregator_ack_before_buffer {
        // Planted bug (`crate::parts::bugs`): ack first, buffer after.
        return ack_before_buffer(shared, stream, out, peer, &frame, records, bytes).await;
    }
    if let Err(overflow) = shared.buffer_records(&frame.tag, records, bytes).await {
        shared.ctx.host.record(
            EventKind::AggregatorOverflowRefused,
            format!("{peer} tag {} records {count}: {overflow}", frame.tag),
        );
        return false;
    }
    if let Some(chunk) = frame.ack_chunk() {
        out.clear();
        encode_ack(out, chunk);
        if stream.write_all(out).await.is_err() {
            return false;
        }
    }
    true
}

/// The frame's entries as log records, and their bytes as Fluentd counts them (record
/// plus event time), judged one event at a time as Fluentd 1.19's `on_message` does
/// (`fluent_event.rs`): with `skip_invalid_event` an event with a float time is skipped
/// (its records lost with cause `aggregator_invalid_event`, the frame still acked); a zero
/// time reads as now; an odd time is stored and recorded. A record that is not obsim's
/// own is mapped onto the pipeline's log record; one that cannot be is counted and
/// recorded, not kept (FIDELITY.md, Aggregator — Fluentd).
fn decode_records(shared: &Shared, peer: &str, frame: &EventFrame) -> (Vec<LogRecord>, u64) {
    let host = &shared.ctx.host;
    let now_unix_nanos = host.clock().now_unix_nanos();
    let mut records: Vec<LogRecord> = Vec::with_capacity(frame.entries.len());
    let mut bytes = 0u64;
    let mut invalid_ids = Vec::new();
    let mut invalid_count = 0usize;
    let mut odd: Option<(usize, String)> = None;
    let mut unmapped: Option<(usize, String)> = None;
    for entry in &frame.entries {
        let own = entry.deserialize_record::<LogRecord>();
        if shared.config.skip_invalid_event && fluent_event::is_invalid(entry) {
            invalid_count += 1;
            invalid_ids.extend(own.ok().map(|record| record.id));
            continue;
        }
        let time_nanos = fluent_event::stored_time_nanos(entry, now_unix_nanos);
        let record = match own {
            Ok(record) => record,
            Err(_) => match fluent_event::foreign_record(&entry.record, time_nanos, now_unix_nanos) {
                Ok(mut record) => {
                    let (source, seq) = shared.foreign_ids(peer, 1);
                    record.id = RecordId::new(source, seq);
                    record
                }
                Err(why) => {
                    let count = unmapped.as_ref().map_or(0, |(count, _)| *count) + 1;
                    unmapped = Some((count, why));
                    continue;
                }
            },
        };
        if let Some(why) = fluent_event::odd_time(entry, time_nanos, now_unix_nanos) {
            let count = odd.as_ref().map_or(0, |(count, _)| *count) + 1;
            odd = Some((count, why));
        }
        bytes += (entry.record.len() + EVENT_TIME_ENCODED_BYTES) as u64;
        records.push(record);
    }
    if invalid_count > 0 {
        // Fluentd logs "skip invalid event" and goes on; the records were never its own,
        // so the loss is named at the aggregator, where they died.
        let custodian = shared.ctx.custodian(crate::vocab::Part::Aggregator);
        shared.ctx.ledger.drop_records(&custodian, LossCause::AggregatorInvalidEvent, &invalid_ids);
        host.record(
            EventKind::AggregatorInvalidEvent,
            format!("{peer} tag {}: {invalid_count} events with a float time skipped (skip_invalid_event)", frame.tag),
        );
    }
    if let Some((count, why)) = odd {
        host.record(
            EventKind::AggregatorOddTime,
            format!("{peer} tag {}: {count} events stored, e.g. {why}", frame.tag),
        );
    }
    if let Some((count, why)) = unmapped {
        host.record(
            EventKind::AggregatorBadRecords,
            format!("{peer} tag {}: {count} entries are not log records of the pipeline, e.g. {why}", frame.tag),
        );
    }
    (records, bytes)
}

/// Planted bug `aggregator_ack_before_buffer`: the ack goes out as soon as the frame is
/// decoded. The ack claims custody (the agent releases on it), so the ledger sees the
/// aggregator take the records then; when the buffer refuses them, they are gone with no
/// cause: the aggregator was their last custodian. Returns whether the connection lives on.
async fn ack_before_buffer(
    shared: &Shared,
    stream: &mut ServerStream,
    out: &mut Vec<u8>,
    peer: &str,
    frame: &crate::proto::forward::EventFrame,
    records: Vec<LogRecord>,
    bytes: u64,
) -> bool {
    let ids: Vec<crate::record::RecordId> = records.iter().map(|record| record.id).collect();
    let custodian = shared.ctx.custodian(crate::vocab::Part::Aggregator);
    shared.ctx.ledger.hold(&custodian, &ids, crate::ledger::Durability::Volatile);
    if let Some(chunk) = frame.ack_chunk() {
        out.clear();
        encode_ack(out, chunk);
        if stream.write_all(out).await.is_err() {
            // Not acknowledged after all: the agent keeps them and retries.
            shared.ctx.ledger.release(&custodian, &ids);
            return false;
        }
    }
    if let Err(overflow) = shared.buffer_records(&frame.tag, records, bytes).await {
        // Acknowledged, refused, forgotten: custody ends with no one holding them.
        shared.ctx.ledger.release(&custodian, &ids);
        shared.ctx.host.record(
            EventKind::AggregatorOverflowAfterAck,
            format!("{peer} tag {} records {}: {overflow}", frame.tag, ids.len()),
        );
    }
    true
}
