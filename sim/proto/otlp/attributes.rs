//! Attribute mapping shared by the three signals: extras ⇄ `KeyValue`, the correlation and
//! delivery attributes every log and span carries (`obsim.source`, `obsim.seq`, `job_id`,
//! `machine_id`, `worker_id`), and the resource.
//!
//! Encoding writes a fixed order (identity, correlation, extras) so that bytes are
//! deterministic; decoding accepts any order, one pass over the attributes, moving strings
//! out of the request rather than copying them.

use std::borrow::Cow;

use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource as ProtoResource;

use super::error::{ErrorKind, FieldError};
use crate::record::{
    AttrValue, AttributeError, Attributes, JobId, MachineId, RecordId, Resource, SourceId, WorkerId, keys,
};

/// The instrumentation scope of everything obsim encodes.
pub fn scope() -> InstrumentationScope {
    InstrumentationScope { name: keys::SCOPE_NAME.to_owned(), ..Default::default() }
}

/// A `KeyValue` holding `value`.
pub(crate) fn kv(key: impl Into<String>, value: any_value::Value) -> KeyValue {
    KeyValue { key: key.into(), value: Some(AnyValue { value: Some(value) }), ..Default::default() }
}

/// The OTLP value of an extra attribute.
pub(crate) fn to_any(value: &AttrValue) -> any_value::Value {
    match value {
        AttrValue::Str(s) => any_value::Value::StringValue(s.clone()),
        AttrValue::Int(i) => any_value::Value::IntValue(*i),
        AttrValue::Bool(b) => any_value::Value::BoolValue(*b),
    }
}

/// Appends the extras, in order.
pub(crate) fn push_extras(out: &mut Vec<KeyValue>, extras: &Attributes) {
    for (key, value) in extras.iter() {
        out.push(kv(key, to_any(value)));
    }
}

/// The name of a value's type, for errors.
pub(crate) fn type_name(value: &Option<AnyValue>) -> &'static str {
    match value.as_ref().and_then(|v| v.value.as_ref()) {
        None => "empty",
        Some(any_value::Value::StringValue(_)) => "string",
        Some(any_value::Value::BoolValue(_)) => "bool",
        Some(any_value::Value::IntValue(_)) => "int",
        Some(any_value::Value::DoubleValue(_)) => "double",
        Some(any_value::Value::ArrayValue(_)) => "array",
        Some(any_value::Value::KvlistValue(_)) => "kvlist",
        Some(any_value::Value::BytesValue(_)) => "bytes",
        Some(any_value::Value::StringValueStrindex(_)) => "string_strindex",
    }
}

fn wrong_type(field: Cow<'static, str>, expected: &'static str, value: &Option<AnyValue>) -> FieldError {
    FieldError::new(field, ErrorKind::WrongType { expected, actual: type_name(value) })
}

/// A string value or a WrongType error naming `field`.
pub(crate) fn take_string(field: &'static str, value: Option<AnyValue>) -> Result<String, FieldError> {
    match value {
        Some(AnyValue { value: Some(any_value::Value::StringValue(s)) }) => Ok(s),
        other => Err(wrong_type(Cow::Borrowed(field), "string", &other)),
    }
}

/// An int value or a WrongType error naming `field`.
pub(crate) fn take_int(field: &'static str, value: Option<AnyValue>) -> Result<i64, FieldError> {
    match value {
        Some(AnyValue { value: Some(any_value::Value::IntValue(i)) }) => Ok(i),
        other => Err(wrong_type(Cow::Borrowed(field), "int", &other)),
    }
}

/// Adds a decoded extra attribute, mapping the Attributes rules to decode errors.
fn push_extra(extras: &mut Attributes, key: String, value: Option<AnyValue>) -> Result<(), FieldError> {
    let value = match value {
        Some(AnyValue { value: Some(any_value::Value::StringValue(s)) }) => AttrValue::Str(s),
        Some(AnyValue { value: Some(any_value::Value::IntValue(i)) }) => AttrValue::Int(i),
        Some(AnyValue { value: Some(any_value::Value::BoolValue(b)) }) => AttrValue::Bool(b),
        other => return Err(wrong_type(Cow::Owned(key), "string, int or bool", &other)),
    };
    extras.try_push(key, value).map_err(|e| match e {
        AttributeError::Reserved(k) => FieldError::new(k, ErrorKind::Reserved),
        AttributeError::Duplicate(k) => FieldError::new(k, ErrorKind::Duplicate),
        AttributeError::EmptyKey => FieldError::invalid("attribute key", "must not be empty"),
    })
}

/// Decodes a list of plain attributes (metric data points): all extras.
pub(crate) fn take_extras(attributes: Vec<KeyValue>) -> Result<Attributes, FieldError> {
    let mut extras = Attributes::with_capacity(attributes.len());
    for KeyValue { key, value, .. } in attributes {
        push_extra(&mut extras, key, value)?;
    }
    Ok(extras)
}

/// Appends the identity and correlation attributes of a log record or span.
pub(crate) fn push_correlation(
    out: &mut Vec<KeyValue>,
    id: RecordId,
    job_id: &JobId,
    machine_id: Option<&MachineId>,
    worker_id: Option<&WorkerId>,
) {
    assert!(id.seq <= RecordId::MAX_SEQ, "RecordId invariant");
    out.push(kv(keys::OBSIM_SOURCE, any_value::Value::IntValue(i64::from(id.source.0))));
    out.push(kv(keys::OBSIM_SEQ, any_value::Value::IntValue(id.seq as i64)));
    out.push(kv(keys::JOB_ID, any_value::Value::StringValue(job_id.to_string())));
    if let Some(machine) = machine_id {
        out.push(kv(keys::MACHINE_ID, any_value::Value::StringValue(machine.as_str().to_owned())));
    }
    if let Some(worker) = worker_id {
        out.push(kv(keys::WORKER_ID, any_value::Value::StringValue(worker.as_str().to_owned())));
    }
}

/// The identity, correlation ids and extras read from a log record's or span's attributes.
pub(crate) struct Correlation {
    pub(crate) id: RecordId,
    pub(crate) job_id: JobId,
    pub(crate) machine_id: Option<MachineId>,
    pub(crate) worker_id: Option<WorkerId>,
    pub(crate) extras: Attributes,
}

/// Stores a decoded slot once; a second occurrence of the key is a Duplicate error.
fn set_once<T>(slot: &mut Option<T>, field: &'static str, value: Result<T, FieldError>) -> Result<(), FieldError> {
    if slot.is_some() {
        return Err(FieldError::new(field, ErrorKind::Duplicate));
    }
    *slot = Some(value?);
    Ok(())
}

/// Reads the correlation attributes in one pass. A record lacking `obsim.source` or
/// `obsim.seq` is reported as [`ErrorKind::MissingRecordId`] before any other problem, so
/// that records from real exporters are classified as foreign, not corrupt.
pub(crate) fn take_correlation(attributes: Vec<KeyValue>) -> Result<Correlation, FieldError> {
    let mut source: Option<u32> = None;
    let mut seq: Option<u64> = None;
    let (mut saw_source, mut saw_seq) = (false, false);
    let mut job_id: Option<JobId> = None;
    let mut machine_id: Option<MachineId> = None;
    let mut worker_id: Option<WorkerId> = None;
    let mut extras = Attributes::with_capacity(attributes.len().saturating_sub(5));
    let mut first_error: Option<FieldError> = None;

    for KeyValue { key, value, .. } in attributes {
        let result = match key.as_str() {
            keys::OBSIM_SOURCE => {
                saw_source = true;
                let v = take_int(keys::OBSIM_SOURCE, value).and_then(|i| {
                    u32::try_from(i).map_err(|_| FieldError::invalid(keys::OBSIM_SOURCE, "must be in 0..=u32::MAX"))
                });
                set_once(&mut source, keys::OBSIM_SOURCE, v)
            }
            keys::OBSIM_SEQ => {
                saw_seq = true;
                let v = take_int(keys::OBSIM_SEQ, value).and_then(|i| {
                    u64::try_from(i).map_err(|_| FieldError::invalid(keys::OBSIM_SEQ, "must not be negative"))
                });
                set_once(&mut seq, keys::OBSIM_SEQ, v)
            }
            keys::JOB_ID => {
                let v = take_string(keys::JOB_ID, value)
                    .and_then(|s| JobId::parse(&s).map_err(|e| FieldError::invalid(keys::JOB_ID, e.rule)));
                set_once(&mut job_id, keys::JOB_ID, v)
            }
            keys::MACHINE_ID => {
                let v = take_string(keys::MACHINE_ID, value)
                    .and_then(|s| MachineId::parse(&s).map_err(|e| FieldError::invalid(keys::MACHINE_ID, e.rule)));
                set_once(&mut machine_id, keys::MACHINE_ID, v)
            }
            keys::WORKER_ID => {
                let v = take_string(keys::WORKER_ID, value)
                    .and_then(|s| WorkerId::parse(&s).map_err(|e| FieldError::invalid(keys::WORKER_ID, e.rule)));
                set_once(&mut worker_id, keys::WORKER_ID, v)
            }
            _ => push_extra(&mut extras, key, value),
        };
        if let Err(e) = result {
            first_error.get_or_insert(e);
        }
    }

    if !saw_source {
        return Err(FieldError::new(keys::OBSIM_SOURCE, ErrorKind::MissingRecordId));
    }
    if !saw_seq {
        return Err(FieldError::new(keys::OBSIM_SEQ, ErrorKind::MissingRecordId));
    }
    if let Some(e) = first_error {
        return Err(e);
    }
    let (Some(source), Some(seq)) = (source, seq) else {
        unreachable!("present and without error implies decoded");
    };
    let job_id = job_id.ok_or_else(|| FieldError::missing(keys::JOB_ID))?;
    Ok(Correlation { id: RecordId::new(SourceId(source), seq), job_id, machine_id, worker_id, extras })
}

/// The OTLP resource: the four known attributes in a fixed order, then the extras.
pub fn encode_resource(resource: &Resource) -> ProtoResource {
    assert!(!resource.service_name.is_empty(), "service.name must not be empty");
    let mut attributes = Vec::with_capacity(4 + resource.extras.len());
    attributes.push(kv(keys::SERVICE_NAME, any_value::Value::StringValue(resource.service_name.clone())));
    let optional = [
        (keys::RESOURCE_MACHINE_ID, &resource.machine_id),
        (keys::DEPLOYMENT_ENVIRONMENT, &resource.deployment_environment),
        (keys::CLOUD_REGION, &resource.cloud_region),
    ];
    for (key, value) in optional {
        if let Some(v) = value {
            attributes.push(kv(key, any_value::Value::StringValue(v.clone())));
        }
    }
    push_extras(&mut attributes, &resource.extras);
    ProtoResource { attributes, ..Default::default() }
}

/// Reads a resource strictly: present, `service.name` a non-empty string, the other known
/// keys strings, extras string/int/bool and unique. Field names are prefixed `resource.`.
pub(crate) fn decode_resource(resource: Option<ProtoResource>) -> Result<Resource, FieldError> {
    let resource = resource.ok_or_else(|| FieldError::missing("resource"))?;
    let mut service_name: Option<String> = None;
    let mut machine_id: Option<String> = None;
    let mut environment: Option<String> = None;
    let mut region: Option<String> = None;
    let mut extras = Attributes::with_capacity(resource.attributes.len().saturating_sub(4));
    for KeyValue { key, value, .. } in resource.attributes {
        let (slot, field) = match key.as_str() {
            keys::SERVICE_NAME => (&mut service_name, "resource.service.name"),
            keys::RESOURCE_MACHINE_ID => (&mut machine_id, "resource.machine.id"),
            keys::DEPLOYMENT_ENVIRONMENT => (&mut environment, "resource.deployment.environment"),
            keys::CLOUD_REGION => (&mut region, "resource.cloud.region"),
            _ => {
                push_extra(&mut extras, key, value).map_err(|mut e| {
                    e.field = Cow::Owned(format!("resource.{}", e.field));
                    e
                })?;
                continue;
            }
        };
        set_once(slot, field, take_string(field, value))?;
    }
    let service_name = service_name.ok_or_else(|| FieldError::missing("resource.service.name"))?;
    if service_name.is_empty() {
        return Err(FieldError::missing("resource.service.name"));
    }
    Ok(Resource { service_name, machine_id, deployment_environment: environment, cloud_region: region, extras })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn int(key: &str, i: i64) -> KeyValue {
        kv(key, any_value::Value::IntValue(i))
    }

    fn string(key: &str, s: &str) -> KeyValue {
        kv(key, any_value::Value::StringValue(s.into()))
    }

    const JOB: &str = "job-123e4567-e89b-42d3-a456-426614174000";

    #[test]
    fn correlation_in_any_order() {
        let c = take_correlation(vec![
            string("extra", "x"),
            string(keys::JOB_ID, JOB),
            int(keys::OBSIM_SEQ, 9),
            int(keys::OBSIM_SOURCE, 2),
        ])
        .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(c.id, RecordId::new(SourceId(2), 9));
        assert_eq!(c.job_id.to_string(), JOB);
        assert_eq!(c.machine_id, None);
        assert_eq!(c.extras.len(), 1);
    }

    #[test]
    fn missing_identity_wins_over_other_errors() {
        // A foreign record with a bad job id is still classified as foreign.
        let e = take_correlation(vec![string(keys::JOB_ID, "nope"), int(keys::OBSIM_SOURCE, 1)]).err().unwrap();
        assert_eq!(e.kind, ErrorKind::MissingRecordId);
        assert_eq!(e.field, keys::OBSIM_SEQ);
        // A present but wrong-typed identity is a type error, not "missing".
        let e = take_correlation(vec![string(keys::OBSIM_SOURCE, "1"), int(keys::OBSIM_SEQ, 1)]).err().unwrap();
        assert_eq!(e.kind, ErrorKind::WrongType { expected: "int", actual: "string" });
        let e = take_correlation(vec![int(keys::OBSIM_SOURCE, -1), int(keys::OBSIM_SEQ, 1)]).err().unwrap();
        assert_eq!(e.field, keys::OBSIM_SOURCE);
    }

    #[test]
    fn resource_round_trip_and_strictness() {
        let r = Resource::new("svc").with_region("eu-west-1").with_machine_id("api-0");
        assert_eq!(decode_resource(Some(encode_resource(&r))), Ok(r));
        let e =
            decode_resource(Some(ProtoResource { attributes: vec![int(keys::SERVICE_NAME, 1)], ..Default::default() }))
                .unwrap_err();
        assert_eq!(e.field, "resource.service.name");
        let e = decode_resource(Some(ProtoResource {
            attributes: vec![string(keys::SERVICE_NAME, "s"), string(keys::JOB_ID, JOB)],
            ..Default::default()
        }))
        .unwrap_err();
        assert_eq!((e.field.as_ref(), e.kind), ("resource.job_id", ErrorKind::Reserved));
    }
}
