//! Every number in a scenario file is checked against the range its key documents, at load,
//! before anything runs: NaN and infinities are refused everywhere, and each integer or
//! float must lie within the `minimum` / `maximum` (or exclusive bounds) of its key's JSON
//! Schema.
//!
//! Why the schema is the source: the ranges are written once, as `#[schemars(range(..))]`
//! on the config fields, and both editors (through `obsim schema`) and `obsim check` /
//! `obsim run` (through this walk) hold files to them, so the two cannot disagree. A value
//! no range documents is a bug of the field's declaration, not of the file: the test
//! `every_number_has_a_range` in tests/scenario_errors.rs walks the schema for such fields.

use serde_json::Value;
use toml::de::{DeTable, DeValue};

/// A number outside its key's range: the key path and the rule.
pub(crate) type RangeError = (String, String);

/// Checks every number of `document` against `schema` (the scenario's JSON Schema).
pub fn check(document: &DeTable<'_>, schema: &Value) -> Result<(), RangeError> {
    check_table(document, schema, "")
}

/// Checks the entries of a table, each against its property's schema.
fn check_table(table: &DeTable<'_>, schema: &Value, prefix: &str) -> Result<(), RangeError> {
    let schema = pick_alternative(schema, Some(table), None);
    for (key, value) in table.iter() {
        let path = if prefix.is_empty() { key.get_ref().to_string() } else { format!("{prefix}.{}", key.get_ref()) };
        let property = schema
            .get("properties")
            .and_then(|properties| properties.get(key.get_ref().as_ref()))
            .or_else(|| schema.get("additionalProperties").filter(|extra| extra.is_object()));
        check_value(value.get_ref(), property.unwrap_or(&Value::Null), &path)?;
    }
    Ok(())
}

/// Checks one value against `schema` (`Null`: no schema known; only finiteness is checked).
fn check_value(value: &DeValue<'_>, schema: &Value, path: &str) -> Result<(), RangeError> {
    match value {
        DeValue::Table(table) => check_table(table, schema, path),
        DeValue::Array(items) => {
            let schema = pick_alternative(schema, None, Some("array"));
            let item_schema = schema.get("items").unwrap_or(&Value::Null);
            for (index, item) in items.iter().enumerate() {
                check_value(item.get_ref(), item_schema, &format!("{path}[{index}]"))?;
            }
            Ok(())
        }
        DeValue::Float(float) => {
            let text = float.as_str().replace('_', "");
            let number: f64 = text.parse().unwrap_or(f64::NAN);
            if !number.is_finite() {
                return Err((
                    path.to_string(),
                    format!("{text} is not a finite number (NaN and infinities are refused)"),
                ));
            }
            check_bounds(number, &text, pick_alternative(schema, None, Some("number")), path)
        }
        DeValue::Integer(integer) => {
            // `as_str` is already `from_str_radix`-ready (no prefix, no underscores).
            let Ok(number) = i128::from_str_radix(integer.as_str(), integer.radix()) else { return Ok(()) };
            check_bounds(number as f64, &number.to_string(), pick_alternative(schema, None, Some("integer")), path)
        }
        _ => Ok(()),
    }
}

/// Holds `number` (written `text`) to the bounds `schema` states, naming them.
fn check_bounds(number: f64, text: &str, schema: &Value, path: &str) -> Result<(), RangeError> {
    let bound = |key: &str| schema.get(key).and_then(Value::as_f64);
    let (minimum, maximum) = (bound("minimum"), bound("maximum"));
    let (above, below) = (bound("exclusiveMinimum"), bound("exclusiveMaximum"));
    let fits = minimum.is_none_or(|low| number >= low)
        && maximum.is_none_or(|high| number <= high)
        && above.is_none_or(|low| number > low)
        && below.is_none_or(|high| number < high);
    if fits {
        return Ok(());
    }
    let low = minimum.map(|low| format!("≥ {}", show(low))).or(above.map(|low| format!("> {}", show(low))));
    let high = maximum.map(|high| format!("≤ {}", show(high))).or(below.map(|high| format!("< {}", show(high))));
    let rule = [low, high].into_iter().flatten().collect::<Vec<_>>().join(" and ");
    Err((path.to_string(), format!("{text} is out of range: must be {rule}")))
}

/// A bound as written in the schema: integers without a fraction.
fn show(bound: f64) -> String {
    if bound.fract() == 0.0 && bound.abs() < 1e18 { format!("{}", bound as i128) } else { format!("{bound}") }
}

/// The alternative of an `anyOf` / `oneOf` schema that applies: for a table, the one whose
/// `kind` constant matches the table's `kind` (a `[[fault]]`), else the first object one; for
/// a scalar, the first alternative of its JSON type. Without alternatives, `schema` itself.
fn pick_alternative<'a>(schema: &'a Value, table: Option<&DeTable<'_>>, scalar_type: Option<&str>) -> &'a Value {
    let alternatives = ["anyOf", "oneOf"].iter().find_map(|key| schema.get(key).and_then(Value::as_array));
    let Some(alternatives) = alternatives else { return schema };
    let kind = table.and_then(|table| table.get("kind")).and_then(|kind| kind.get_ref().as_str());
    let matches = |alternative: &&Value| match (kind, scalar_type) {
        (Some(kind), _) => alternative.pointer("/properties/kind/const").and_then(Value::as_str) == Some(kind),
        (None, Some(wanted)) => {
            let kinds = alternative.get("type");
            let of_type = |name: &str| {
                kinds.is_some_and(|kinds| {
                    kinds == name || kinds.as_array().is_some_and(|list| list.iter().any(|item| item == name))
                })
            };
            of_type(wanted) || (wanted == "integer" && of_type("number"))
        }
        (None, None) => alternative.get("properties").is_some(),
    };
    alternatives.iter().find(matches).unwrap_or(&Value::Null)
}
