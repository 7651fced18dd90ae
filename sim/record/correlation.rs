//! The EMP correlation ids every log and span carries, as validated newtypes:
//! `job_id` = `job-{uuid}`, `machine_id` = `{type}-{identifier}` with type in
//! comfyui|simulation|openai, `worker_id` = `{machine_id}-worker-{index}`.
//!
//! The checkers validate these formats on what reached Dash0, so the parsers here are the
//! single definition of "well formed". Each text form is canonical (parse ∘ display is the
//! identity), which lets the checkers compare ids as strings.

use std::fmt;
use std::str::FromStr;

use rand::RngCore;
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::ids::{hex_value, write_hex};

/// Why a correlation id was refused: which id, the offending text, and the rule broken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorrelationError {
    /// "job_id", "machine_id" or "worker_id".
    pub field: &'static str,
    /// The refused text (cut to 100 bytes so that errors stay small).
    pub value: String,
    /// The rule broken, in words.
    pub rule: &'static str,
}

impl CorrelationError {
    fn new(field: &'static str, value: &str, rule: &'static str) -> Self {
        let mut end = value.len().min(100);
        while !value.is_char_boundary(end) {
            end -= 1;
        }
        Self { field, value: value[..end].to_owned(), rule }
    }
}

impl fmt::Display for CorrelationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid {} {:?}: {}", self.field, self.value, self.rule)
    }
}

impl std::error::Error for CorrelationError {}

/// Implements Display/FromStr/serde for a string-backed id via its `parse` and `as_str`.
macro_rules! string_id_impls {
    ($name:ident, $expecting:expr) => {
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = CorrelationError;
            fn from_str(text: &str) -> Result<Self, CorrelationError> {
                Self::parse(text)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct IdVisitor;
                impl Visitor<'_> for IdVisitor {
                    type Value = $name;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str($expecting)
                    }
                    fn visit_str<E: de::Error>(self, text: &str) -> Result<$name, E> {
                        $name::parse(text).map_err(E::custom)
                    }
                }
                deserializer.deserialize_str(IdVisitor)
            }
        }
    };
}

/// A job id, `job-{uuid}` with the uuid in lowercase hyphenated form. Stored as the 16 uuid
/// bytes: copying a job id is free.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct JobId([u8; 16]);

impl JobId {
    /// Length of the text form: "job-" + 36.
    pub(crate) const TEXT_LEN: usize = 40;

    /// A uuid v4 job id drawn from the caller's RNG (version and variant bits set as RFC 9562
    /// requires, the other 122 bits random).
    pub fn random(rng: &mut impl RngCore) -> Self {
        let mut bytes = [0u8; 16];
        rng.fill_bytes(&mut bytes);
        bytes[6] = (bytes[6] & 0x0f) | 0x40;
        bytes[8] = (bytes[8] & 0x3f) | 0x80;
        Self(bytes)
    }

    /// Wraps uuid bytes as they are (any version).
    pub fn from_uuid_bytes(bytes: [u8; 16]) -> Self {
        Self(bytes)
    }

    /// The text form in a stack buffer.
    pub(crate) fn to_text(self) -> [u8; Self::TEXT_LEN] {
        let mut out = [0u8; Self::TEXT_LEN];
        out[..4].copy_from_slice(b"job-");
        // uuid groups: 4-2-2-2-6 bytes.
        let mut pos = 4;
        let mut at = 0;
        for (group, len) in [4usize, 2, 2, 2, 6].into_iter().enumerate() {
            if group > 0 {
                out[pos] = b'-';
                pos += 1;
            }
            write_hex(&self.0[at..at + len], &mut out[pos..pos + 2 * len]);
            pos += 2 * len;
            at += len;
        }
        assert_eq!(pos, Self::TEXT_LEN);
        out
    }

    /// Parses `job-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` (lowercase hex). Any uuid version is
    /// accepted: the format rule is the shape, not how the uuid was made.
    pub fn parse(text: &str) -> Result<Self, CorrelationError> {
        let err = |rule| CorrelationError::new("job_id", text, rule);
        let bytes = text.as_bytes();
        if !bytes.starts_with(b"job-") {
            return Err(err("must start with `job-`"));
        }
        if bytes.len() != Self::TEXT_LEN {
            return Err(err("must be `job-` followed by a 36-character uuid"));
        }
        let uuid = &bytes[4..];
        let mut out = [0u8; 16];
        let mut nibbles = 0usize;
        for (i, &c) in uuid.iter().enumerate() {
            if matches!(i, 8 | 13 | 18 | 23) {
                if c != b'-' {
                    return Err(err("uuid must be hyphenated 8-4-4-4-12"));
                }
                continue;
            }
            let v = hex_value(c).ok_or_else(|| err("uuid must be lowercase hex"))?;
            out[nibbles / 2] |= if nibbles.is_multiple_of(2) { v << 4 } else { v };
            nibbles += 1;
        }
        assert_eq!(nibbles, 32);
        Ok(Self(out))
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self.to_text();
        f.write_str(std::str::from_utf8(&text).expect("ASCII"))
    }
}

impl fmt::Debug for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "JobId({self})")
    }
}

impl FromStr for JobId {
    type Err = CorrelationError;
    fn from_str(text: &str) -> Result<Self, CorrelationError> {
        Self::parse(text)
    }
}

impl Serialize for JobId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let text = self.to_text();
        serializer.serialize_str(std::str::from_utf8(&text).expect("ASCII"))
    }
}

impl<'de> Deserialize<'de> for JobId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct JobVisitor;
        impl Visitor<'_> for JobVisitor {
            type Value = JobId;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a job id `job-{uuid}`")
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<JobId, E> {
                JobId::parse(text).map_err(E::custom)
            }
        }
        deserializer.deserialize_str(JobVisitor)
    }
}

/// The three kinds of machine in the EMP fleet; the first segment of a machine id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum MachineType {
    /// ComfyUI image-generation machines.
    Comfyui,
    /// Simulation machines.
    Simulation,
    /// OpenAI-backed machines.
    Openai,
}

impl MachineType {
    /// All types, in a fixed order (for generators and reports).
    pub const ALL: [MachineType; 3] = [MachineType::Comfyui, MachineType::Simulation, MachineType::Openai];

    /// The id prefix: "comfyui", "simulation", "openai".
    pub fn as_str(self) -> &'static str {
        match self {
            MachineType::Comfyui => "comfyui",
            MachineType::Simulation => "simulation",
            MachineType::Openai => "openai",
        }
    }

    /// The type named by `text`, exactly as `as_str` writes it.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == text)
    }
}

/// A machine id, `{type}-{identifier}`. The identifier is 1–63 characters of `[a-z0-9-]`,
/// neither starting nor ending with `-`, without `--`, and without a `worker` segment (so
/// that a worker id splits back into its machine id unambiguously).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MachineId(String);

impl MachineId {
    /// Longest identifier part.
    pub(crate) const MAX_IDENTIFIER_LEN: usize = 63;

    /// Builds `{machine_type}-{identifier}`, checking the identifier rules.
    pub fn new(machine_type: MachineType, identifier: &str) -> Result<Self, CorrelationError> {
        let text = format!("{}-{}", machine_type.as_str(), identifier);
        check_identifier(&text, identifier)?;
        Ok(Self(text))
    }

    /// Parses and validates a machine id.
    pub fn parse(text: &str) -> Result<Self, CorrelationError> {
        let (prefix, identifier) = text
            .split_once('-')
            .ok_or_else(|| CorrelationError::new("machine_id", text, "must be `{type}-{identifier}`"))?;
        if MachineType::parse(prefix).is_none() {
            return Err(CorrelationError::new("machine_id", text, "type must be comfyui, simulation or openai"));
        }
        check_identifier(text, identifier)?;
        Ok(Self(text.to_owned()))
    }

    /// The text form.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The machine's type (the part before the first `-`).
    pub(crate) fn machine_type(&self) -> MachineType {
        let prefix = self.0.split_once('-').expect("validated").0;
        MachineType::parse(prefix).expect("validated")
    }

    /// The identifier (the part after the type).
    pub fn identifier(&self) -> &str {
        self.0.split_once('-').expect("validated").1
    }
}

fn check_identifier(whole: &str, identifier: &str) -> Result<(), CorrelationError> {
    let err = |rule| Err(CorrelationError::new("machine_id", whole, rule));
    if identifier.is_empty() || identifier.len() > MachineId::MAX_IDENTIFIER_LEN {
        return err("identifier must be 1 to 63 characters");
    }
    if !identifier.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-') {
        return err("identifier must be lowercase letters, digits and '-'");
    }
    if identifier.starts_with('-') || identifier.ends_with('-') || identifier.contains("--") {
        return err("identifier must not start or end with '-' or contain '--'");
    }
    if identifier.split('-').any(|segment| segment == "worker") {
        return err("identifier must not contain a `worker` segment");
    }
    Ok(())
}

string_id_impls!(MachineId, "a machine id `{type}-{identifier}`");

/// A worker id, `{machine_id}-worker-{index}` with a decimal index (no leading zeros).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WorkerId(String);

impl WorkerId {
    /// The separator between machine id and index.
    pub(crate) const SEPARATOR: &'static str = "-worker-";

    /// The id of worker `index` on `machine` (cannot fail: both parts are valid).
    pub fn new(machine: &MachineId, index: u32) -> Self {
        Self(format!("{}{}{}", machine.as_str(), Self::SEPARATOR, index))
    }

    /// Parses and validates a worker id, including its machine id part.
    pub fn parse(text: &str) -> Result<Self, CorrelationError> {
        let err = |rule| CorrelationError::new("worker_id", text, rule);
        let (machine, index) =
            text.rsplit_once(Self::SEPARATOR).ok_or_else(|| err("must be `{machine_id}-worker-{index}`"))?;
        MachineId::parse(machine).map_err(|_| err("machine_id part is invalid"))?;
        let canonical =
            !index.is_empty() && index.bytes().all(|c| c.is_ascii_digit()) && (index == "0" || !index.starts_with('0'));
        if !canonical || index.parse::<u32>().is_err() {
            return Err(err("index must be a decimal u32 without leading zeros"));
        }
        Ok(Self(text.to_owned()))
    }

    /// The text form.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The machine id part, as text (no allocation).
    pub(crate) fn machine_id_str(&self) -> &str {
        self.0.rsplit_once(Self::SEPARATOR).expect("validated").0
    }

    /// The machine id part (allocates).
    pub fn machine_id(&self) -> MachineId {
        MachineId(self.machine_id_str().to_owned())
    }

    /// The worker's index on its machine.
    pub fn index(&self) -> u32 {
        self.0.rsplit_once(Self::SEPARATOR).expect("validated").1.parse().expect("validated")
    }

    /// Whether this worker belongs to `machine` (a correlation check: a log's worker_id and
    /// machine_id must agree).
    pub(crate) fn belongs_to(&self, machine: &MachineId) -> bool {
        self.machine_id_str() == machine.as_str()
    }
}

string_id_impls!(WorkerId, "a worker id `{machine_id}-worker-{index}`");

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn job_id_round_trip_and_v4() {
        let job = JobId::random(&mut ChaCha8Rng::seed_from_u64(3));
        let text = job.to_string();
        assert_eq!(text.len(), JobId::TEXT_LEN);
        assert_eq!(&text[18..19], "4", "uuid version nibble");
        assert!(matches!(&text[23..24], "8" | "9" | "a" | "b"), "uuid variant");
        assert_eq!(JobId::parse(&text), Ok(job));
    }

    #[test]
    fn job_id_rules() {
        let ok = "job-123e4567-e89b-42d3-a456-426614174000";
        assert!(JobId::parse(ok).is_ok());
        assert_eq!(JobId::parse("task-1").unwrap_err().rule, "must start with `job-`");
        assert_eq!(JobId::parse("job-123").unwrap_err().rule, "must be `job-` followed by a 36-character uuid");
        assert_eq!(
            JobId::parse(&ok.to_uppercase().replace("JOB-", "job-")).unwrap_err().rule,
            "uuid must be lowercase hex"
        );
        assert_eq!(
            JobId::parse(&ok.replacen('-', "_", 2).replacen('_', "-", 1)).unwrap_err().rule,
            "uuid must be hyphenated 8-4-4-4-12"
        );
    }

    #[test]
    fn machine_and_worker_ids() {
        let m = MachineId::new(MachineType::Comfyui, "3").unwrap();
        assert_eq!(m.as_str(), "comfyui-3");
        assert_eq!(m.machine_type(), MachineType::Comfyui);
        let w = WorkerId::new(&m, 12);
        assert_eq!(w.as_str(), "comfyui-3-worker-12");
        assert_eq!(WorkerId::parse("comfyui-3-worker-12"), Ok(w.clone()));
        assert_eq!(w.machine_id(), m);
        assert_eq!(w.index(), 12);
        assert!(w.belongs_to(&m));
        assert!(MachineId::parse("openai-us-east-7").is_ok());
        assert_eq!(MachineId::parse("gpu-1").unwrap_err().rule, "type must be comfyui, simulation or openai");
        assert_eq!(MachineId::parse("comfyui").unwrap_err().rule, "must be `{type}-{identifier}`");
        assert!(MachineId::parse("comfyui-").is_err());
        assert!(MachineId::parse("comfyui-A").is_err());
        assert!(MachineId::parse("comfyui-a--b").is_err());
        assert!(MachineId::parse("comfyui-worker-1").is_err());
        assert_eq!(
            WorkerId::parse("comfyui-3-worker-01").unwrap_err().rule,
            "index must be a decimal u32 without leading zeros"
        );
        assert_eq!(WorkerId::parse("comfyui-3-w-1").unwrap_err().rule, "must be `{machine_id}-worker-{index}`");
        assert_eq!(WorkerId::parse("gpu-3-worker-1").unwrap_err().rule, "machine_id part is invalid");
    }
}
