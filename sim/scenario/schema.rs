//! The JSON Schema of scenario files, for editors: `obsim schema > scenario.schema.json`,
//! then Taplo / Even Better TOML complete keys, show each key's doc comment and default, and
//! flag misspelt keys and malformed values while the file is being written.
//!
//! Why derived and not written by hand: the schema is generated from the very types serde
//! reads a scenario into (`schemars` follows the serde attributes: `deny_unknown_fields` →
//! `additionalProperties: false`, `default` → not required and its value shown, the
//! `kind`-tagged `[[fault]]` enum → one alternative per kind), so it cannot drift from what
//! `obsim check` accepts. What serde reads through custom code — durations (`"1h30m"`),
//! rates (`"500/s"`), `retry_limit` — gets its schema here, with patterns that accept
//! exactly the parser's grammar (tests/scenario_schema.rs holds them against the parsers).
//!
//! Dialect: JSON Schema draft-07 with every subschema inlined (no `$ref`). Taplo validates
//! with a draft-07 engine and, when following a `$ref`, drops the description and default
//! written beside it; inlined, every key carries its own documentation.
//!
//! What a schema cannot say, and `obsim check` still refuses: cross-field rules (a fault
//! ending after `duration`, selectors naming hosts of the topology, `scheduler_cap_secs ≥
//! scheduler_base_secs`, …) and numbers too large for their unit.

use std::borrow::Cow;

use schemars::generate::SchemaSettings;
use schemars::transform::{Transform, transform_subschemas};
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};

use crate::parts::agent::RetryLimit;
use crate::units::Rate;
use crate::units::duration_text;

/// What `parse_duration` accepts: (integer, unit) pairs with units h, m, s, ms, each at most
/// once, largest first, at least one; surrounding whitespace is trimmed. One alternative per
/// largest unit present keeps the order rule expressible without look-ahead (which Taplo's
/// regex engine lacks).
pub const DURATION_PATTERN: &str =
    r"^\s*([0-9]+h([0-9]+m)?([0-9]+s)?([0-9]+ms)?|[0-9]+m([0-9]+s)?([0-9]+ms)?|[0-9]+s([0-9]+ms)?|[0-9]+ms)\s*$";

/// What `Rate::from_str` accepts: a decimal number as Rust's `f64` parser reads it
/// (optional `+`, digits with an optional fraction, or a bare fraction, an optional
/// exponent), then `/s`, with whitespace around either. Not expressible, so still refused
/// only by the parser: exponents that overflow to infinity. Refused here but accepted by the
/// parser: a negative zero (`-0/s`), which is no rate anyone means.
pub const RATE_PATTERN: &str = r"^\s*\+?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?\s*/s\s*$";

/// The JSON Schema of a scenario file (draft-07), as `obsim schema` prints it.
pub fn json_schema() -> serde_json::Value {
    let settings = SchemaSettings::draft07()
        .with(|settings| settings.inline_subschemas = true)
        .with_transform(NoNulls)
        .with_transform(FaultFieldDocs);
    let schema = settings.into_generator().into_root_schema_for::<super::Scenario>();
    schema.to_value()
}

/// The schema, generated once per process: every load checks its numbers against the
/// ranges it states (`super::ranges`). A `OnceLock` holds a value computed from types only,
/// the same in every run, so it cannot make runs differ.
pub(crate) fn json_schema_cached() -> &'static serde_json::Value {
    static SCHEMA: std::sync::OnceLock<serde_json::Value> = std::sync::OnceLock::new();
    SCHEMA.get_or_init(json_schema)
}

/// The schema as pretty JSON, with a final newline: what `obsim schema` writes.
pub fn json_schema_text() -> String {
    let mut text = serde_json::to_string_pretty(&json_schema()).expect("a JSON value always serializes");
    text.push('\n');
    text
}

impl JsonSchema for duration_text {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> Cow<'static, str> {
        "Duration".into()
    }

    fn json_schema(_generator: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": DURATION_PATTERN,
            "description": "A duration: integers with units h, m, s, ms, largest first, e.g. \"45s\", \"2m\", \"1h30m\", \"250ms\".",
            "examples": ["45s", "1h30m", "250ms"],
        })
    }
}

impl JsonSchema for Rate {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> Cow<'static, str> {
        "Rate".into()
    }

    fn json_schema(_generator: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": RATE_PATTERN,
            "description": "Records per second, e.g. \"500/s\".",
            "examples": ["500/s"],
        })
    }
}

impl JsonSchema for RetryLimit {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> Cow<'static, str> {
        "RetryLimit".into()
    }

    fn json_schema(_generator: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "Fluent Bit's Retry_Limit, read as Fluent Bit 5.1 reads it: N ≥ 1 retries after the first attempt; \"no_limits\", \"false\" or \"off\" (any case) to retry forever; \"no_retries\" to give up at the first failure; anything whose atoi is ≤ 0 is warned about and means 1.",
            "anyOf": [
                { "type": "integer", "minimum": -2_147_483_648_i64, "maximum": i32::MAX, "description": "At most N retries after the first attempt (≤ 0: warned, 1)." },
                { "type": "boolean", "description": "false retries forever; true is atoi(\"true\") = 0: warned, 1." },
                { "type": "string", "description": "no_limits, false, off, no_retries (any case), or text read by atoi." },
            ],
        })
    }
}

/// TOML has no null: an `Option` field is written or left out. Drops the `null` schemars
/// adds for `Option` (from `type` lists, `anyOf`/`oneOf` alternatives, and `default: null`),
/// so editors neither offer nor accept a value TOML cannot hold.
#[derive(Clone)]
struct NoNulls;

impl Transform for NoNulls {
    fn transform(&mut self, schema: &mut Schema) {
        transform_subschemas(self, schema);
        let Some(object) = schema.as_object_mut() else { return };
        if object.get("default").is_some_and(serde_json::Value::is_null) {
            object.remove("default");
        }
        if let Some(default) = object.get_mut("default") {
            drop_null_entries(default);
        }
        if let Some(serde_json::Value::Array(types)) = object.get_mut("type") {
            types.retain(|kind| kind != "null");
            if types.len() == 1 {
                let single = types.remove(0);
                object.insert("type".into(), single);
            }
        }
        for key in ["anyOf", "oneOf"] {
            let Some(serde_json::Value::Array(alternatives)) = object.get_mut(key) else { continue };
            alternatives.retain(|alternative| alternative != &serde_json::json!({ "type": "null" }));
            if alternatives.len() == 1 {
                let serde_json::Value::Object(single) = alternatives.remove(0) else { continue };
                object.remove(key);
                for (name, value) in single {
                    object.entry(name).or_insert(value);
                }
            }
        }
    }
}

/// Removes the keys whose value is null from the tables inside `value` (a section's default
/// shows its `Option` keys as absent, as TOML writes them).
fn drop_null_entries(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(table) => {
            table.retain(|_, entry| !entry.is_null());
            table.values_mut().for_each(drop_null_entries);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(drop_null_entries),
        _ => {}
    }
}

/// The fields every fault kind shares mean the same in each, so they are described once
/// here rather than on each of the kinds that carry them.
#[derive(Clone)]
struct FaultFieldDocs;

impl FaultFieldDocs {
    const SHARED: [(&'static str, &'static str); 5] = [
        ("at", "When the fault starts, from the start of the run (true time), e.g. \"2m\"."),
        (
            "for",
            "How long the fault lasts, e.g. \"90s\"; it must end before `duration` (the drain then runs with faults healed).",
        ),
        (
            "from",
            "One end of the link: a host (`api`, `dash0`, `dev-1`, `comfyui-3`, `railway-redis`) or a group (`railway`, `machines`, `devs`, `machine:comfyui-*`).",
        ),
        ("to", "The other end of the link: a host or a group, as for `from`."),
        (
            "target",
            "The host or group hit: a host (`api`, `comfyui-3`, `railway-redis`) or a group (`railway`, `machines`, `devs`, `machine:comfyui-*`).",
        ),
    ];
}

impl Transform for FaultFieldDocs {
    fn transform(&mut self, schema: &mut Schema) {
        transform_subschemas(self, schema);
        let Some(object) = schema.as_object_mut() else { return };
        // A fault alternative is the object schema whose `kind` is a constant.
        let is_fault = object
            .get("properties")
            .and_then(|properties| properties.get("kind"))
            .is_some_and(|kind| kind.get("const").is_some());
        if !is_fault {
            return;
        }
        let kind_description = object.get("description").cloned();
        let Some(serde_json::Value::Object(properties)) = object.get_mut("properties") else { return };
        // Hovering `kind = "…"` tells what that kind of fault does.
        if let (Some(description), Some(serde_json::Value::Object(kind))) =
            (kind_description, properties.get_mut("kind"))
        {
            kind.insert("description".into(), description);
        }
        for (field, description) in Self::SHARED {
            // Replaces the duration type's generic text: these fields carry no doc comment.
            if let Some(serde_json::Value::Object(property)) = properties.get_mut(field) {
                property.insert("description".into(), description.into());
            }
        }
    }
}
