//! Extra attributes of a record or resource: a small ordered list of key → string/int/bool.
//!
//! A Vec, not a map: records carry a handful of extras, order must be deterministic (it
//! reaches the wire bytes), and a linear scan of five keys beats hashing. Keys are unique and
//! never one of the keys the mappings themselves own ([`keys`]), so an encoded record can
//! never carry an ambiguous duplicate.

use std::fmt;

use serde::de::{self, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Attribute and field names the mappings own. Shared by OTLP and msgpack/JSON so that every
/// hop spells them the same way.
pub mod keys {
    /// Delivery identity: the source id (int).
    pub(crate) const OBSIM_SOURCE: &str = "obsim.source";
    /// Delivery identity: the sequence number (int).
    pub const OBSIM_SEQ: &str = "obsim.seq";
    /// The job a record belongs to (string, `job-{uuid}`).
    pub const JOB_ID: &str = "job_id";
    /// The machine that emitted the record (string, `{type}-{identifier}`).
    pub const MACHINE_ID: &str = "machine_id";
    /// The worker that emitted the record (string, `{machine_id}-worker-{index}`).
    pub const WORKER_ID: &str = "worker_id";
    /// msgpack/JSON field for the trace id (OTLP has a dedicated field).
    pub(crate) const TRACE_ID: &str = "trace_id";
    /// msgpack/JSON field for the span id (OTLP has a dedicated field).
    pub(crate) const SPAN_ID: &str = "span_id";
    /// Resource: the service name.
    pub const SERVICE_NAME: &str = "service.name";
    /// Resource: the machine (or host) id.
    pub(crate) const RESOURCE_MACHINE_ID: &str = "machine.id";
    /// Resource: the deployment environment.
    pub(crate) const DEPLOYMENT_ENVIRONMENT: &str = "deployment.environment";
    /// Resource: the cloud region.
    pub(crate) const CLOUD_REGION: &str = "cloud.region";
    /// The OTLP instrumentation scope name of everything obsim emits.
    pub(crate) const SCOPE_NAME: &str = "obsim";
}

/// Whether `key` belongs to the mappings (any `obsim.*` key or one of [`keys`]) and so may not
/// be used as an extra attribute.
pub fn is_reserved_key(key: &str) -> bool {
    key.starts_with("obsim.")
        || matches!(
            key,
            keys::JOB_ID
                | keys::MACHINE_ID
                | keys::WORKER_ID
                | keys::TRACE_ID
                | keys::SPAN_ID
                | keys::SERVICE_NAME
                | keys::RESOURCE_MACHINE_ID
                | keys::DEPLOYMENT_ENVIRONMENT
                | keys::CLOUD_REGION
        )
}

/// An attribute value: the three types the pipeline's records use.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AttrValue {
    /// A string.
    Str(String),
    /// A signed 64-bit integer (OTLP `int_value`).
    Int(i64),
    /// A boolean.
    Bool(bool),
}

impl AttrValue {}

impl From<&str> for AttrValue {
    fn from(v: &str) -> Self {
        AttrValue::Str(v.to_owned())
    }
}
impl From<String> for AttrValue {
    fn from(v: String) -> Self {
        AttrValue::Str(v)
    }
}
impl From<i64> for AttrValue {
    fn from(v: i64) -> Self {
        AttrValue::Int(v)
    }
}
impl From<bool> for AttrValue {
    fn from(v: bool) -> Self {
        AttrValue::Bool(v)
    }
}

impl Serialize for AttrValue {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            AttrValue::Str(s) => serializer.serialize_str(s),
            AttrValue::Int(i) => serializer.serialize_i64(*i),
            AttrValue::Bool(b) => serializer.serialize_bool(*b),
        }
    }
}

impl<'de> Deserialize<'de> for AttrValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ValueVisitor;
        impl Visitor<'_> for ValueVisitor {
            type Value = AttrValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string, integer or boolean attribute value")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<AttrValue, E> {
                Ok(AttrValue::Str(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<AttrValue, E> {
                Ok(AttrValue::Str(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<AttrValue, E> {
                Ok(AttrValue::Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<AttrValue, E> {
                i64::try_from(v)
                    .map(AttrValue::Int)
                    .map_err(|_| E::custom(format!("integer attribute {v} exceeds i64")))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<AttrValue, E> {
                Ok(AttrValue::Bool(v))
            }
        }
        deserializer.deserialize_any(ValueVisitor)
    }
}

/// Why an attribute could not be added.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttributeError {
    /// The key is owned by a mapping (see [`is_reserved_key`]).
    Reserved(String),
    /// The key is already present.
    Duplicate(String),
    /// The key is empty.
    EmptyKey,
}

impl fmt::Display for AttributeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AttributeError::Reserved(k) => write!(f, "attribute key {k:?} is reserved"),
            AttributeError::Duplicate(k) => write!(f, "attribute key {k:?} appears twice"),
            AttributeError::EmptyKey => f.write_str("attribute key is empty"),
        }
    }
}

impl std::error::Error for AttributeError {}

/// An ordered list of unique, non-reserved attributes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Attributes(Vec<(String, AttrValue)>);

impl Attributes {
    /// No attributes (does not allocate).
    pub const fn new() -> Self {
        Self(Vec::new())
    }

    /// Room for `n` attributes.
    pub fn with_capacity(n: usize) -> Self {
        Self(Vec::with_capacity(n))
    }

    /// Appends `key = value`, refusing reserved, duplicate and empty keys.
    pub fn try_push(&mut self, key: impl Into<String>, value: impl Into<AttrValue>) -> Result<(), AttributeError> {
        let key = key.into();
        if key.is_empty() {
            return Err(AttributeError::EmptyKey);
        }
        if is_reserved_key(&key) {
            return Err(AttributeError::Reserved(key));
        }
        if self.get(&key).is_some() {
            return Err(AttributeError::Duplicate(key));
        }
        self.0.push((key, value.into()));
        Ok(())
    }

    /// Appends `key = value`; a reserved, duplicate or empty key is a programming error.
    pub fn push(&mut self, key: impl Into<String>, value: impl Into<AttrValue>) {
        if let Err(e) = self.try_push(key, value) {
            panic!("{e}");
        }
    }

    /// Builder form of [`push`](Self::push).
    pub fn with(mut self, key: impl Into<String>, value: impl Into<AttrValue>) -> Self {
        self.push(key, value);
        self
    }

    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&AttrValue> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// Attributes in insertion order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &AttrValue)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// How many.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Serialize for Attributes {
    /// A map in insertion order (msgpack map / JSON object).
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Attributes {
    /// Reads a map keeping its order; the same rules as [`Attributes::try_push`].
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MapVisitor;
        impl<'de> Visitor<'de> for MapVisitor {
            type Value = Attributes;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of attributes")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Attributes, A::Error> {
                let mut attrs = Attributes::with_capacity(access.size_hint().unwrap_or(0).min(64));
                while let Some((k, v)) = access.next_entry::<String, AttrValue>()? {
                    attrs.try_push(k, v).map_err(de::Error::custom)?;
                }
                Ok(attrs)
            }
        }
        deserializer.deserialize_map(MapVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_order_and_refuses_bad_keys() {
        let mut a = Attributes::new().with("b", 1i64).with("a", "x");
        assert_eq!(a.iter().map(|(k, _)| k).collect::<Vec<_>>(), ["b", "a"]);
        assert_eq!(a.try_push("a", true), Err(AttributeError::Duplicate("a".into())));
        assert_eq!(a.try_push("job_id", "x"), Err(AttributeError::Reserved("job_id".into())));
        assert_eq!(a.try_push("obsim.anything", 1i64), Err(AttributeError::Reserved("obsim.anything".into())));
        assert_eq!(a.try_push("", 1i64), Err(AttributeError::EmptyKey));
    }
}
