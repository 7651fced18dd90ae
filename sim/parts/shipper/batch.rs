//! One POST's worth of chunks: decoded, grouped into OTLP resources, encoded once.
//!
//! Resource attributes (what Dash0 shows as the origin of each log):
//! - `service.name`: `emp-machine` for records a machine wrote (they carry a machine_id),
//!   otherwise by the chunk's tag: `emp-dev` for tags starting with `dev`, `emp-api` for
//!   everything else (the API host's records);
//! - `machine.id`: the record's machine_id, when it has one;
//! - `deployment.environment` and `cloud.region`: the aggregator's enrichment of the chunk.
//!
//! Records are grouped by these four values (a BTreeMap, so resource order is
//! deterministic) and keep their order within a group.

use std::collections::BTreeMap;

use bytes::Bytes;

use crate::parts::log_chunk::LogChunk;
use crate::proto::otlp::{encode_logs_batches, encode_to_vec};
use crate::record::{LogRecord, RecordId, Resource};

/// A chunk taken from the buffer: the exact bytes (for LREM) and its decoded records.
#[derive(Clone, Debug)]
pub struct TakenChunk {
    pub value: Bytes,
    pub chunk: LogChunk,
}

/// Where a batch's values are in Redis while it is out, which decides how it is settled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TakenFrom {
    /// Moved to the processing list by this shipper (the reliable queue's normal path):
    /// LREM from processing once settled; given back to the buffer's tail if retries expire.
    Moved,
    /// Read in place from the processing list (left there by a recovery or give-back that
    /// Redis refused at `maxmemory`): LREM from processing once settled; left where they are
    /// if retries expire.
    ReadInProcessing,
    /// Read in place from the buffer's head at `maxmemory`: LREM from the buffer once
    /// settled; left at the head if retries expire.
    ReadInBuffer,
}

/// The chunks of one POST and their request body.
#[derive(Clone, Debug)]
pub struct Batch {
    /// Where the values are while the batch is out.
    pub taken_from: TakenFrom,
    /// The values to LREM once Dash0 answered (in take order).
    pub values: Vec<Bytes>,
    /// Every record's identity, in request order (for the ledger).
    pub ids: Vec<RecordId>,
    /// The ExportLogsServiceRequest, protobuf-encoded.
    pub body: Bytes,
}

/// The service name of a record from a chunk tagged `tag` (see the module docs).
pub fn service_name(tag: &str, record: &LogRecord) -> &'static str {
    if record.machine_id.is_some() {
        "emp-machine"
    } else if tag.starts_with("dev") {
        "emp-dev"
    } else {
        "emp-api"
    }
}

/// Builds the request for `chunks`, consuming their records.
pub fn build(chunks: Vec<TakenChunk>, taken_from: TakenFrom) -> Batch {
    assert!(!chunks.is_empty(), "a batch holds at least one chunk");
    type Key = (&'static str, Option<String>, String, String);
    let mut groups: BTreeMap<Key, Vec<LogRecord>> = BTreeMap::new();
    let mut values = Vec::with_capacity(chunks.len());
    for taken in chunks {
        values.push(taken.value);
        let LogChunk { tag, environment, region, records } = taken.chunk;
        for record in records {
            let key = (
                service_name(&tag, &record),
                record.machine_id.as_ref().map(|m| m.as_str().to_string()),
                environment.clone(),
                region.clone(),
            );
            groups.entry(key).or_default().push(record);
        }
    }
    let resources: Vec<(Resource, Vec<LogRecord>)> = groups
        .into_iter()
        .map(|((service, machine, environment, region), records)| {
            let mut resource = Resource::new(service);
            if let Some(machine) = machine {
                resource = resource.with_machine_id(machine);
            }
            if !environment.is_empty() {
                resource = resource.with_environment(environment);
            }
            if !region.is_empty() {
                resource = resource.with_region(region);
            }
            (resource, records)
        })
        .collect();
    let ids: Vec<RecordId> = resources.iter().flat_map(|(_, records)| records.iter().map(|r| r.id)).collect();
    let request = encode_logs_batches(resources.iter().map(|(resource, records)| (resource, records.as_slice())));
    Batch { taken_from, values, ids, body: Bytes::from(encode_to_vec(&request)) }
}
