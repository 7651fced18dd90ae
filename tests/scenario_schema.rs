//! `obsim schema`: the JSON Schema editors use to complete and check scenario files.
//!
//! What is proven here: the schema is closed (a misspelt key is an error, as it is for
//! `obsim check`), offers every fault kind, accepts every scenario in the library, refuses
//! what the parser refuses (misspelt keys, unknown kinds, bad durations, bad enum values),
//! and its patterns accept exactly what the parsers accept. The schema is checked by the
//! `jsonschema` crate (draft-07, as `$schema` says; its regex engine for `pattern`), as an
//! editor's validator would check it: what it refuses here, an editor refuses.

use std::path::{Path, PathBuf};

use obsim::scenario::Scenario;
use serde_json::{Value, json};

// ---------------------------------------------------------------------------------------
// Validation with the `jsonschema` crate.
// ---------------------------------------------------------------------------------------

/// A validator of the node at `pointer` (`""`: the whole schema) of `root`: the root with a
/// `$ref` to the node, so `$ref`s inside the node resolve against the root's definitions (in
/// draft-07 a `$ref` overrides its siblings, so only the node is checked).
fn validator_at(root: &Value, pointer: &str) -> jsonschema::Validator {
    let mut schema = root.clone();
    if !pointer.is_empty() {
        schema["$ref"] = Value::String(format!("#{pointer}"));
    }
    jsonschema::validator_for(&schema)
        .unwrap_or_else(|error| panic!("the schema at {pointer:?} does not compile: {error}"))
}

/// Ok, or every error the validator finds, each as `/instance/path: message`.
fn validate_with(validator: &jsonschema::Validator, value: &Value) -> Result<(), String> {
    let errors: Vec<String> =
        validator.iter_errors(value).map(|error| format!("{}: {error}", error.instance_path())).collect();
    if errors.is_empty() { Ok(()) } else { Err(errors.join("; ")) }
}

/// `value` against the node at `pointer` of `root`.
fn validate(root: &Value, pointer: &str, value: &Value) -> Result<(), String> {
    validate_with(&validator_at(root, pointer), value)
}

/// Whether `text` matches the schema `pattern`, as the validator's regex engine sees it.
fn pattern_matcher(pattern: &str) -> impl Fn(&str) -> bool {
    let validator = jsonschema::validator_for(&json!({ "type": "string", "pattern": pattern }))
        .unwrap_or_else(|error| panic!("the pattern {pattern} does not compile: {error}"));
    move |text| validator.is_valid(&json!(text))
}

fn schema() -> Value {
    obsim::scenario::json_schema()
}

/// Validates TOML text as an editor would: parsed as TOML, seen as JSON.
fn validate_toml(schema: &Value, text: &str) -> Result<(), String> {
    let toml: toml::Value = toml::from_str(text).map_err(|error| format!("not TOML: {error}"))?;
    let json = serde_json::to_value(&toml).expect("TOML values convert to JSON");
    validate(schema, "", &json)
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Every scenario the library and the regression fixtures hold.
fn scenario_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    for dir in ["scenarios", "fixtures/regressions"] {
        let Ok(entries) = std::fs::read_dir(root().join(dir)) else { continue };
        for entry in entries {
            let path = entry.expect("a readable folder").path();
            if path.extension().is_some_and(|ext| ext == "toml") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

fn baseline() -> toml::Table {
    let text = std::fs::read_to_string(root().join("scenarios/baseline.toml")).expect("scenarios/baseline.toml exists");
    toml::from_str(&text).expect("the baseline is TOML")
}

// ---------------------------------------------------------------------------------------
// The schema's shape.
// ---------------------------------------------------------------------------------------

#[test]
fn the_schema_is_draft07_closed_and_names_every_section() {
    let schema = schema();
    assert_eq!(schema["$schema"], "http://json-schema.org/draft-07/schema#");
    assert_eq!(schema["type"], "object");
    assert_eq!(schema["additionalProperties"], false, "an unknown top-level key must be an error");
    let properties = schema["properties"].as_object().expect("the scenario's keys");
    let sections = [
        "name",
        "description",
        "seed",
        "duration",
        "drain",
        "tick",
        "topology",
        "workload",
        "app",
        "agent",
        "collector",
        "aggregator",
        "redis",
        "shipper",
        "dash0",
        "expect",
        "bugs",
        "fault",
        "chaos",
        "override",
    ];
    let named: Vec<&str> = properties.keys().map(String::as_str).collect();
    for section in sections {
        assert!(named.contains(&section), "the schema lacks `{section}`; it names {named:?}");
    }
    assert_eq!(named.len(), sections.len(), "a key was added to Scenario: list it here ({named:?})");
    assert_eq!(schema["required"], json!(["name", "duration", "topology"]));
    // Every table section is closed too, as `deny_unknown_fields` makes the parser.
    for section in [
        "topology",
        "workload",
        "app",
        "agent",
        "collector",
        "aggregator",
        "redis",
        "shipper",
        "dash0",
        "expect",
        "bugs",
        "chaos",
    ] {
        assert_eq!(properties[section]["additionalProperties"], false, "[{section}] must refuse unknown keys");
    }
    // The planted bugs' plumbing field is never a key of a part's section.
    assert!(properties["agent"]["properties"].get("bugs").is_none());
}

/// The fault kinds serde knows, read from its own error for an unknown kind (so a new kind
/// needs no change here).
fn serde_fault_kinds() -> Vec<String> {
    let error =
        toml::from_str::<obsim::faults::FaultSpec>("kind = \"no_such_kind\"\nat = \"1m\"").unwrap_err().to_string();
    let list = error.split("expected one of ").nth(1).unwrap_or_else(|| panic!("serde lists the kinds: {error}"));
    let kinds: Vec<String> = list.split('`').skip(1).step_by(2).map(String::from).collect();
    assert!(!kinds.is_empty(), "no kinds in {error}");
    kinds
}

#[test]
fn every_fault_kind_is_an_alternative_tagged_by_its_kind() {
    let schema = schema();
    let fault = &schema["properties"]["fault"];
    assert_eq!(fault["type"], "array");
    let alternatives = fault["items"]["oneOf"].as_array().expect("[[fault]] is one of the kinds");
    let mut kinds = Vec::new();
    for alternative in alternatives {
        let kind = alternative["properties"]["kind"]["const"].as_str().expect("each alternative fixes its kind");
        assert_eq!(alternative["additionalProperties"], false, "{kind}: unknown fields are refused");
        let required: Vec<&str> =
            alternative["required"].as_array().unwrap().iter().map(|key| key.as_str().unwrap()).collect();
        assert!(required.contains(&"kind") && required.contains(&"at"), "{kind} requires kind and at: {required:?}");
        assert!(alternative["properties"]["at"]["description"].is_string(), "{kind}: `at` is described");
        kinds.push(kind.to_string());
    }
    assert_eq!(kinds, serde_fault_kinds(), "the schema offers exactly the kinds serde reads, in order");
    for design_kind in [
        "link_drop",
        "link_stall",
        "latency",
        "packet_loss",
        "restart",
        "crash",
        "dash0_errors",
        "dash0_slow",
        "dash0_rate_limit",
        "clock_skew",
        "clock_step",
        "backpressure",
    ] {
        assert!(
            kinds.iter().any(|kind| kind == design_kind),
            "ARCHITECTURE.md §3's {design_kind} is missing from {kinds:?}"
        );
    }
}

#[test]
fn every_default_the_schema_shows_is_valid_under_its_own_schema() {
    let schema = schema();
    let mut checked = 0;
    let mut pending = vec![("".to_string(), &schema)];
    while let Some((path, node)) = pending.pop() {
        let Value::Object(object) = node else { continue };
        if let Some(default) = object.get("default") {
            validate(&schema, &path, default)
                .unwrap_or_else(|error| panic!("the default at {path} is invalid: {error}"));
            checked += 1;
        }
        for (key, child) in object {
            match child {
                Value::Object(_) => pending.push((format!("{path}/{key}"), child)),
                Value::Array(children) => pending
                    .extend(children.iter().enumerate().map(|(index, child)| (format!("{path}/{key}/{index}"), child))),
                _ => {}
            }
        }
    }
    assert!(checked > 100, "expected the defaults of every section, checked {checked}");
}

// ---------------------------------------------------------------------------------------
// The schema agrees with the parser on real files and on broken ones.
// ---------------------------------------------------------------------------------------

#[test]
fn every_scenario_file_is_valid_under_the_schema() {
    let schema = schema();
    let files = scenario_files();
    assert!(files.len() >= 14, "the scenario library has at least 14 files, found {}", files.len());
    let mut failures = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        Scenario::parse(file, &text)
            .unwrap_or_else(|error| panic!("{} is not a valid scenario: {error}", file.display()));
        if let Err(error) = validate_toml(&schema, &text) {
            failures.push(format!("{}: {error}", file.display()));
        }
    }
    assert!(failures.is_empty(), "scenario files the schema refuses:\n{}", failures.join("\n"));
}

#[test]
fn what_obsim_writes_back_is_valid_under_the_schema() {
    // A scenario serialized by obsim (as failure files inline it) reads back under the schema:
    // every key the types write is a key the schema knows, durations as text.
    let schema = schema();
    for file in scenario_files() {
        let scenario = Scenario::load(&file).unwrap();
        let text = toml::to_string(&scenario).unwrap_or_else(|error| panic!("{}: {error}", file.display()));
        validate_toml(&schema, &text)
            .unwrap_or_else(|error| panic!("{} as written back: {error}\n{text}", file.display()));
    }
}

/// The baseline with one change, as TOML text.
fn mutated(change: impl FnOnce(&mut toml::Table)) -> String {
    let mut table = baseline();
    change(&mut table);
    toml::to_string(&table).unwrap()
}

fn section<'a>(table: &'a mut toml::Table, name: &str) -> &'a mut toml::Table {
    table.entry(name).or_insert_with(|| toml::Value::Table(toml::Table::new())).as_table_mut().unwrap()
}

fn fault(entries: &[(&str, toml::Value)]) -> toml::Value {
    toml::Value::Table(entries.iter().map(|(key, value)| (key.to_string(), value.clone())).collect())
}

/// A string TOML value.
fn string(text: &str) -> toml::Value {
    toml::Value::String(text.into())
}

/// A `link_drop` fault with every field it needs.
fn link_drop() -> toml::Value {
    fault(&[
        ("kind", string("link_drop")),
        ("at", string("1m")),
        ("for", string("30s")),
        ("from", string("machines")),
        ("to", string("railway")),
    ])
}

/// Mutations of keys, sections and faults: (what, scenario text, expected error).
fn key_and_fault_cases() -> Vec<(&'static str, String, &'static str)> {
    vec![
        (
            "a misspelt key",
            mutated(|t| {
                section(t, "agent").insert("mem_buf_limt".into(), 1.into());
            }),
            "'mem_buf_limt' was unexpected",
        ),
        (
            "an unknown section",
            mutated(|t| {
                t.insert("agnet".into(), toml::Value::Table(Default::default()));
            }),
            "'agnet' was unexpected",
        ),
        (
            "an unknown fault kind",
            mutated(|t| {
                t.insert(
                    "fault".into(),
                    toml::Value::Array(vec![fault(&[("kind", string("meteor")), ("at", string("1m"))])]),
                );
            }),
            "not valid under any of the schemas listed in the 'oneOf' keyword",
        ),
        (
            "a field of another kind",
            mutated(|t| {
                let mut f = link_drop();
                f.as_table_mut().unwrap().insert("status".into(), 503.into());
                t.insert("fault".into(), toml::Value::Array(vec![f]));
            }),
            "not valid under any of the schemas listed in the 'oneOf' keyword",
        ),
        (
            "a fault without its `for`",
            mutated(|t| {
                let mut f = link_drop();
                f.as_table_mut().unwrap().remove("for");
                t.insert("fault".into(), toml::Value::Array(vec![f]));
            }),
            "not valid under any of the schemas listed in the 'oneOf' keyword",
        ),
    ]
}

/// Mutations of durations: (what, scenario text, expected error).
fn duration_cases() -> Vec<(&'static str, String, &'static str)> {
    vec![
        (
            "a day unit",
            mutated(|t| {
                t.insert("drain".into(), string("1d"));
            }),
            "does not match",
        ),
        (
            "a bare number of seconds",
            mutated(|t| {
                t.insert("drain".into(), string("90"));
            }),
            "does not match",
        ),
        (
            "units smallest first",
            mutated(|t| {
                t.insert("drain".into(), string("30s2m"));
            }),
            "does not match",
        ),
        (
            "a duration as an integer",
            mutated(|t| {
                t.insert("drain".into(), 90.into());
            }),
            r#"is not of type "string""#,
        ),
    ]
}

/// Mutations of values inside the sections: (what, scenario text, expected error).
fn section_value_cases() -> Vec<(&'static str, String, &'static str)> {
    vec![
        (
            "an unknown storage type",
            mutated(|t| {
                section(t, "agent").insert("storage".into(), string("disk"));
            }),
            "not valid under any of the schemas listed in the 'oneOf' keyword",
        ),
        (
            "retry_limit beyond Fluent Bit's int",
            mutated(|t| {
                section(t, "agent").insert("retry_limit".into(), 3_000_000_000_i64.into());
            }),
            "not valid under any of the schemas listed in the 'anyOf' keyword",
        ),
        (
            "retry_limit as a list",
            mutated(|t| {
                section(t, "agent").insert("retry_limit".into(), toml::Value::Array(vec![1.into()]));
            }),
            "not valid under any of the schemas listed in the 'anyOf' keyword",
        ),
        (
            "a rate per minute",
            mutated(|t| {
                section(t, "expect").insert("min_throughput".into(), string("500/m"));
            }),
            "does not match",
        ),
        (
            "an unknown part in max_occupancy",
            mutated(|t| {
                let mut parts = toml::Table::new();
                parts.insert("fluentd".into(), 5.into());
                section(t, "expect").insert("max_occupancy".into(), parts.into());
            }),
            "'fluentd' was unexpected",
        ),
        (
            "a machine group without count",
            mutated(|t| {
                section(t, "topology")
                    .insert("machines".into(), toml::Value::Array(vec![fault(&[("type", string("comfyui"))])]));
            }),
            r#""count" is a required property"#,
        ),
        (
            "a float where an integer goes",
            mutated(|t| {
                section(t, "workload").insert("logs_per_job".into(), 20.5.into());
            }),
            r#"is not of type "integer""#,
        ),
        (
            "a negative count",
            mutated(|t| {
                section(t, "redis").insert("databases".into(), (-1).into());
            }),
            "is less than the minimum of",
        ),
        (
            "a planted bug misspelt",
            mutated(|t| {
                section(t, "bugs").insert("agent_no_retries".into(), true.into());
            }),
            "'agent_no_retries' was unexpected",
        ),
    ]
}

#[test]
fn the_schema_refuses_what_the_parser_refuses() {
    let schema = schema();
    let mut cases = key_and_fault_cases();
    cases.extend(duration_cases());
    cases.extend(section_value_cases());
    for (what, text, expected) in cases {
        let error = validate_toml(&schema, &text).expect_err(what);
        assert!(error.contains(expected), "{what}: expected {expected:?} in {error}");
        assert!(
            Scenario::parse(Path::new("mutated.toml"), &text).is_err(),
            "{what}: the parser accepts what the schema refuses:\n{text}"
        );
    }
    // And the unchanged baseline passes both, so the refusals above are the changes'.
    let text = mutated(|_| {});
    validate_toml(&schema, &text).unwrap();
    Scenario::parse(Path::new("baseline.toml"), &text).unwrap();
}

// ---------------------------------------------------------------------------------------
// The patterns accept exactly the parsers' grammar.
// ---------------------------------------------------------------------------------------

/// Every string of `alphabet` up to `length_max` characters.
fn all_strings(alphabet: &[char], length_max: usize) -> Vec<String> {
    let mut all = vec![String::new()];
    let mut last = vec![String::new()];
    for _ in 0..length_max {
        last = last.iter().flat_map(|prefix| alphabet.iter().map(move |c| format!("{prefix}{c}"))).collect();
        all.extend(last.iter().cloned());
    }
    all
}

#[test]
fn the_duration_pattern_accepts_exactly_what_parse_duration_accepts() {
    let pattern = obsim::scenario::schema::DURATION_PATTERN;
    let pattern_matches = pattern_matcher(pattern);
    // Short numbers only: overflow ("the duration is too large") and the upper bound of a
    // year (`DURATION_MAX`) are the rules a pattern cannot state; the pattern accepts the
    // forms and `obsim check` refuses what is too long.
    let mut inputs = all_strings(&['1', '0', 'h', 'm', 's', ' ', 'd'], 6);
    inputs.extend(
        [
            "1h30m",
            "1h1m1s1ms",
            "250ms",
            "1m5s250ms",
            "2h500ms",
            "30s2m",
            "1m1m",
            "1ms1s",
            "-5s",
            "1.5s",
            "\t45s\n",
            "1 h",
        ]
        .map(String::from),
    );
    let mut accepted = 0;
    for input in &inputs {
        let parsed = obsim::units::parse_duration(input);
        let well_formed = parsed.as_ref().map_or_else(|error| error.reason.starts_with("it is longer than"), |_| true);
        assert_eq!(pattern_matches(input), well_formed, "{input:?}: parse_duration says {parsed:?}");
        accepted += usize::from(parsed.is_ok());
    }
    assert!(accepted > 1_000, "the alphabet reaches many valid durations ({accepted})");
}

#[test]
fn the_rate_pattern_accepts_exactly_what_the_rate_parser_accepts() {
    let pattern = obsim::scenario::schema::RATE_PATTERN;
    let pattern_matches = pattern_matcher(pattern);
    let mut inputs: Vec<String> =
        all_strings(&['5', '0', '.', 'e', '-', '+', ' '], 5).into_iter().map(|number| format!("{number}/s")).collect();
    inputs.extend(all_strings(&['5', '/', 's', 'm', ' '], 5));
    inputs.extend(
        ["500/s", " 2.5 /s", "1e3/s", ".5/s", "5./s", "+5/s", "inf/s", "NaN/s", "500/m", "500", "/s", "1e400/s"]
            .map(String::from),
    );
    let mut accepted = 0;
    for input in &inputs {
        let parsed = input.parse::<obsim::units::Rate>();
        // Two documented differences: a negative zero (the parser reads it as 0) and an
        // exponent that overflows to infinity (the parser refuses it) are beyond the pattern.
        let overflows = !input.to_lowercase().contains("inf")
            && input
                .trim()
                .strip_suffix("/s")
                .and_then(|number| number.trim().parse::<f64>().ok())
                .is_some_and(f64::is_infinite);
        if parsed.as_ref().is_ok_and(|rate| rate.per_second.is_sign_negative()) || overflows {
            continue;
        }
        assert_eq!(pattern_matches(input), parsed.is_ok(), "{input:?}: the parser says {parsed:?}");
        accepted += usize::from(parsed.is_ok());
    }
    assert!(accepted > 100, "the alphabet reaches many valid rates ({accepted})");
}

#[test]
fn the_retry_limit_schema_accepts_exactly_what_the_agent_config_accepts() {
    let schema = schema();
    let retry_limit = validator_at(&schema, "/properties/agent/properties/retry_limit");
    let mut values: Vec<String> =
        ["0", "1", "3", "-1", "4294967295", "true", "false", "1.5"].map(String::from).to_vec();
    values.extend(all_strings(&['0', '1', '+', '-', 'x'], 3).iter().map(|text| format!("{text:?}")));
    values.extend(
        ["\"no_limits\"", "\"no_retries\"", "\"false\"", "\"False\"", "\"FALSE\"", "\"no_limit\""].map(String::from),
    );
    for value in &values {
        let text = format!("retry_limit = {value}");
        let parsed = toml::from_str::<obsim::parts::agent::AgentConfig>(&text);
        let json = serde_json::to_value(toml::from_str::<toml::Table>(&text).unwrap()["retry_limit"].clone()).unwrap();
        let valid = validate_with(&retry_limit, &json);
        assert_eq!(valid.is_ok(), parsed.is_ok(), "{text}: schema says {valid:?}, parser says {:?}", parsed.err());
    }
}

// ---------------------------------------------------------------------------------------
// The printed schema.
// ---------------------------------------------------------------------------------------

#[test]
fn the_schema_is_pinned() {
    // A change to the scenario format shows up here, in review.
    insta::assert_snapshot!("scenario_schema", obsim::scenario::schema::json_schema_text());
}

#[test]
fn obsim_schema_prints_the_schema_and_exits_0() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_obsim")).arg("schema").output().expect("obsim runs");
    assert!(
        output.status.success(),
        "obsim schema exited {:?}: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let printed = String::from_utf8(output.stdout).expect("UTF-8 JSON");
    assert_eq!(printed, obsim::scenario::schema::json_schema_text());
    let parsed: Value = serde_json::from_str(&printed).expect("obsim schema prints JSON");
    assert_eq!(parsed, schema());
}
