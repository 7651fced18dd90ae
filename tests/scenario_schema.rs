//! `obsim schema`: the JSON Schema editors use to complete and check scenario files.
//!
//! What is proven here: the schema is closed (a misspelt key is an error, as it is for
//! `obsim check`), offers every fault kind, accepts every scenario in the library, refuses
//! what the parser refuses (misspelt keys, unknown kinds, bad durations, bad enum values),
//! and its patterns accept exactly what the parsers accept. The schema is checked by a small
//! validator written below (draft-07 keywords as schemars emits them, with a tiny regex
//! matcher for `pattern`), so the test needs no JSON Schema or regex crate; the validator
//! panics on a keyword it does not know, so a constraint cannot be skipped silently.

use std::path::{Path, PathBuf};

use obsim::scenario::Scenario;
use serde_json::{Map, Value, json};

// ---------------------------------------------------------------------------------------
// A tiny regex matcher: the subset the schema's patterns use (anchors, groups, alternation,
// `? * +`, classes, `\s \d \w`, escaped literals). Anything else panics, naming the pattern.
// ---------------------------------------------------------------------------------------

#[derive(Debug)]
enum Node {
    Start,
    End,
    Char(CharTest),
    Group(Vec<Vec<Node>>),
    Repeat(Box<Node>, usize, Option<usize>),
}

#[derive(Debug)]
enum CharTest {
    Literal(char),
    Any,
    Whitespace,
    Digit,
    Word,
    Class { negated: bool, ranges: Vec<(char, char)> },
}

impl CharTest {
    fn accepts(&self, c: char) -> bool {
        match self {
            CharTest::Literal(l) => c == *l,
            CharTest::Any => c != '\n',
            CharTest::Whitespace => c.is_whitespace(),
            CharTest::Digit => c.is_ascii_digit(),
            CharTest::Word => c.is_ascii_alphanumeric() || c == '_',
            CharTest::Class { negated, ranges } => {
                ranges.iter().any(|(low, high)| (*low..=*high).contains(&c)) != *negated
            }
        }
    }
}

struct PatternParser<'a> {
    pattern: &'a str,
    chars: Vec<char>,
    at: usize,
}

impl PatternParser<'_> {
    fn unsupported(&self, what: &str) -> ! {
        panic!(
            "the test's regex matcher does not support {what} (pattern {:?}, at {}); extend it",
            self.pattern, self.at
        )
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.at).copied()
    }

    fn next(&mut self) -> char {
        let Some(c) = self.peek() else { self.unsupported("a pattern ending here") };
        self.at += 1;
        c
    }

    fn alternatives(&mut self) -> Vec<Vec<Node>> {
        let mut alternatives = vec![self.sequence()];
        while self.peek() == Some('|') {
            self.at += 1;
            alternatives.push(self.sequence());
        }
        alternatives
    }

    fn sequence(&mut self) -> Vec<Node> {
        let mut nodes = Vec::new();
        while let Some(c) = self.peek() {
            if c == '|' || c == ')' {
                break;
            }
            let atom = self.atom();
            let quantified = match self.peek() {
                Some('?') => Some((0, Some(1))),
                Some('*') => Some((0, None)),
                Some('+') => Some((1, None)),
                Some('{') => self.unsupported("counted repetition"),
                _ => None,
            };
            nodes.push(match quantified {
                Some((min, max)) => {
                    self.at += 1;
                    if matches!(self.peek(), Some('?' | '+')) {
                        self.unsupported("lazy or possessive quantifiers");
                    }
                    Node::Repeat(Box::new(atom), min, max)
                }
                None => atom,
            });
        }
        nodes
    }

    fn atom(&mut self) -> Node {
        match self.next() {
            '^' => Node::Start,
            '$' => Node::End,
            '.' => Node::Char(CharTest::Any),
            '(' => {
                if self.peek() == Some('?') {
                    self.unsupported("(?…) groups");
                }
                let group = self.alternatives();
                if self.next() != ')' {
                    self.unsupported("an unclosed group");
                }
                Node::Group(group)
            }
            '[' => self.class(),
            '\\' => Node::Char(self.escape()),
            '{' | '}' | ')' | '?' | '*' | '+' => self.unsupported("a quantifier or bracket here"),
            literal => Node::Char(CharTest::Literal(literal)),
        }
    }

    fn escape(&mut self) -> CharTest {
        match self.next() {
            's' => CharTest::Whitespace,
            'd' => CharTest::Digit,
            'w' => CharTest::Word,
            c if c.is_ascii_punctuation() => CharTest::Literal(c),
            _ => self.unsupported("this escape"),
        }
    }

    fn class(&mut self) -> Node {
        let negated = self.peek() == Some('^');
        if negated {
            self.at += 1;
        }
        let mut ranges = Vec::new();
        loop {
            let low = match self.next() {
                ']' => break,
                '\\' => match self.escape() {
                    CharTest::Literal(c) => c,
                    _ => self.unsupported("class escapes other than literals"),
                },
                c => c,
            };
            if self.peek() == Some('-') && self.chars.get(self.at + 1).is_some_and(|c| *c != ']') {
                self.at += 1;
                let high = self.next();
                ranges.push((low, high));
            } else {
                ranges.push((low, low));
            }
        }
        Node::Char(CharTest::Class { negated, ranges })
    }
}

fn compile(pattern: &str) -> Vec<Vec<Node>> {
    let mut parser = PatternParser { pattern, chars: pattern.chars().collect(), at: 0 };
    let alternatives = parser.alternatives();
    if parser.at != parser.chars.len() {
        parser.unsupported("an unbalanced `)`");
    }
    alternatives
}

fn match_sequence(nodes: &[Node], text: &[char], at: usize, then: &mut dyn FnMut(usize) -> bool) -> bool {
    let Some((first, rest)) = nodes.split_first() else { return then(at) };
    match_node(first, text, at, &mut |next| match_sequence(rest, text, next, then))
}

fn match_node(node: &Node, text: &[char], at: usize, then: &mut dyn FnMut(usize) -> bool) -> bool {
    match node {
        Node::Start => at == 0 && then(at),
        Node::End => at == text.len() && then(at),
        Node::Char(test) => at < text.len() && test.accepts(text[at]) && then(at + 1),
        Node::Group(alternatives) => alternatives.iter().any(|sequence| match_sequence(sequence, text, at, then)),
        Node::Repeat(inner, min, max) => match_repeat(inner, *min, *max, 0, text, at, then),
    }
}

/// Greedy: one more repetition first, then what follows.
fn match_repeat(
    inner: &Node,
    min: usize,
    max: Option<usize>,
    count: usize,
    text: &[char],
    at: usize,
    then: &mut dyn FnMut(usize) -> bool,
) -> bool {
    if max.is_none_or(|max| count < max)
        && match_node(inner, text, at, &mut |next| {
            (next != at || count < min) && match_repeat(inner, min, max, count + 1, text, next, then)
        })
    {
        return true;
    }
    count >= min && then(at)
}

/// JSON Schema `pattern` semantics: the regex matches somewhere in the text (ECMA-262
/// `search`); the schema's patterns anchor themselves.
fn pattern_matches(pattern: &str, text: &str) -> bool {
    let compiled = compile(pattern);
    let chars: Vec<char> = text.chars().collect();
    (0..=chars.len())
        .any(|start| compiled.iter().any(|sequence| match_sequence(sequence, &chars, start, &mut |_| true)))
}

#[test]
fn the_regex_matcher_matches_and_refuses() {
    assert!(pattern_matches("^a(b|cd)*e?$", "abcdb"));
    assert!(!pattern_matches("^a(b|cd)*e?$", "abce"));
    assert!(pattern_matches("^[0-9]+ms$", "250ms"));
    assert!(!pattern_matches("^[0-9]+ms$", "ms"));
    assert!(pattern_matches("b+", "aabbc"), "unanchored patterns search");
    assert!(pattern_matches(r"^\s*\+?x$", " +x"));
    assert!(!pattern_matches("^[^a-c]$", "b"));
}

// ---------------------------------------------------------------------------------------
// The validator: walks a JSON value against a (draft-07) schema.
// ---------------------------------------------------------------------------------------

/// Keywords that only annotate.
const ANNOTATIONS: &[&str] = &[
    "$schema",
    "$id",
    "$comment",
    "title",
    "description",
    "default",
    "examples",
    "format",
    "definitions",
    "$defs",
    "deprecated",
];

/// Keywords the validator checks.
const ASSERTIONS: &[&str] = &[
    "$ref",
    "type",
    "enum",
    "const",
    "pattern",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "properties",
    "required",
    "additionalProperties",
    "items",
    "minItems",
    "maxItems",
    "oneOf",
    "anyOf",
    "allOf",
];

/// Ok, or what broke and where (`/agent/mem_buf_limt: …`).
fn validate(root: &Value, schema: &Value, value: &Value, path: &str) -> Result<(), String> {
    let object = match schema {
        Value::Bool(true) => return Ok(()),
        Value::Bool(false) => return Err(format!("{path}: no value is allowed here")),
        Value::Object(object) => object,
        other => panic!("a schema is an object or a boolean, not {other}"),
    };
    for keyword in object.keys() {
        assert!(
            ANNOTATIONS.contains(&keyword.as_str()) || ASSERTIONS.contains(&keyword.as_str()),
            "the test's validator does not understand the keyword {keyword:?} (at {path}); teach it"
        );
    }
    if let Some(reference) = object.get("$ref").and_then(Value::as_str) {
        let pointer =
            reference.strip_prefix('#').unwrap_or_else(|| panic!("only local $ref are resolved, not {reference}"));
        let target = root.pointer(pointer).unwrap_or_else(|| panic!("$ref {reference} points nowhere"));
        validate(root, target, value, path)?;
    }
    validate_value(object, value, path)?;
    validate_object(root, object, value, path)?;
    validate_array(root, object, value, path)?;
    validate_combinators(root, object, value, path)
}

/// The keywords on the value itself: `type`, `enum`, `const`, `pattern`, numeric bounds.
fn validate_value(object: &Map<String, Value>, value: &Value, path: &str) -> Result<(), String> {
    if let Some(kinds) = object.get("type") {
        let kinds: Vec<&str> = match kinds {
            Value::String(kind) => vec![kind.as_str()],
            Value::Array(kinds) => kinds.iter().map(|kind| kind.as_str().expect("type names are strings")).collect(),
            other => panic!("type is a name or a list, not {other}"),
        };
        if !kinds.iter().any(|kind| has_type(value, kind)) {
            return Err(format!("{path}: {value} is not of type {}", kinds.join(" or ")));
        }
    }
    if let Some(Value::Array(allowed)) = object.get("enum")
        && !allowed.contains(value)
    {
        return Err(format!("{path}: {value} is not one of {}", Value::Array(allowed.clone())));
    }
    if let Some(constant) = object.get("const")
        && constant != value
    {
        return Err(format!("{path}: {value} is not {constant}"));
    }
    if let (Some(pattern), Value::String(text)) = (object.get("pattern").and_then(Value::as_str), value)
        && !pattern_matches(pattern, text)
    {
        return Err(format!("{path}: {text:?} does not match {pattern}"));
    }
    if let Some(number) = value.as_f64() {
        let bound = |keyword: &str| object.get(keyword).map(|bound| bound.as_f64().expect("bounds are numbers"));
        for (keyword, holds) in [
            ("minimum", bound("minimum").is_none_or(|min| number >= min)),
            ("maximum", bound("maximum").is_none_or(|max| number <= max)),
            ("exclusiveMinimum", bound("exclusiveMinimum").is_none_or(|min| number > min)),
            ("exclusiveMaximum", bound("exclusiveMaximum").is_none_or(|max| number < max)),
        ] {
            if !holds {
                return Err(format!("{path}: {value} breaks {keyword} {}", object[keyword]));
            }
        }
    }
    Ok(())
}

/// A table's `required` keys and each entry against `properties` / `additionalProperties`.
fn validate_object(root: &Value, object: &Map<String, Value>, value: &Value, path: &str) -> Result<(), String> {
    if let Value::Object(table) = value {
        let properties = object.get("properties").and_then(Value::as_object);
        for required in object.get("required").and_then(Value::as_array).into_iter().flatten() {
            let key = required.as_str().expect("required names are strings");
            if !table.contains_key(key) {
                return Err(format!("{path}: the required key `{key}` is missing"));
            }
        }
        for (key, entry) in table {
            let entry_path = format!("{path}/{key}");
            match properties.and_then(|properties| properties.get(key)) {
                Some(property) => validate(root, property, entry, &entry_path)?,
                None => match object.get("additionalProperties") {
                    None => {}
                    Some(Value::Bool(false)) => return Err(format!("{path}: unknown key `{key}`")),
                    Some(additional) => validate(root, additional, entry, &entry_path)?,
                },
            }
        }
    }
    Ok(())
}

/// An array's item counts and items (`items`, or one schema per position).
fn validate_array(root: &Value, object: &Map<String, Value>, value: &Value, path: &str) -> Result<(), String> {
    if let Value::Array(items) = value {
        let count_bound =
            |keyword: &str| object.get(keyword).map(|bound| bound.as_u64().expect("item counts are integers") as usize);
        if count_bound("minItems").is_some_and(|min| items.len() < min)
            || count_bound("maxItems").is_some_and(|max| items.len() > max)
        {
            return Err(format!("{path}: {} items is outside minItems/maxItems", items.len()));
        }
        match object.get("items") {
            None => {}
            // Draft-07 tuples: one schema per position.
            Some(Value::Array(positions)) => {
                for (index, (item, position)) in items.iter().zip(positions).enumerate() {
                    validate(root, position, item, &format!("{path}/{index}"))?;
                }
            }
            Some(each) => {
                for (index, item) in items.iter().enumerate() {
                    validate(root, each, item, &format!("{path}/{index}"))?;
                }
            }
        }
    }
    Ok(())
}

/// `allOf`, `anyOf`, `oneOf`.
fn validate_combinators(root: &Value, object: &Map<String, Value>, value: &Value, path: &str) -> Result<(), String> {
    if let Some(Value::Array(all)) = object.get("allOf") {
        for schema in all {
            validate(root, schema, value, path)?;
        }
    }
    if let Some(Value::Array(any)) = object.get("anyOf") {
        let failures: Vec<String> = any.iter().filter_map(|schema| validate(root, schema, value, path).err()).collect();
        if failures.len() == any.len() {
            return Err(format!("{path}: matches none of anyOf: {}", failures.join("; ")));
        }
    }
    if let Some(Value::Array(one)) = object.get("oneOf") {
        let failures: Vec<String> = one.iter().filter_map(|schema| validate(root, schema, value, path).err()).collect();
        match one.len() - failures.len() {
            1 => {}
            0 => return Err(format!("{path}: matches none of oneOf: {}", failures.join("; "))),
            matched => return Err(format!("{path}: matches {matched} alternatives of oneOf, not exactly one")),
        }
    }
    Ok(())
}

/// JSON types as TOML produces them: a TOML integer is an `integer`, a float is only a `number`.
fn has_type(value: &Value, kind: &str) -> bool {
    match kind {
        "null" => value.is_null(),
        "boolean" => value.is_boolean(),
        "string" => value.is_string(),
        "array" => value.is_array(),
        "object" => value.is_object(),
        "number" => value.is_number(),
        "integer" => value.is_i64() || value.is_u64(),
        other => panic!("unknown JSON type {other}"),
    }
}

fn schema() -> Value {
    obsim::scenario::json_schema()
}

/// Validates TOML text as an editor would: parsed as TOML, seen as JSON.
fn validate_toml(schema: &Value, text: &str) -> Result<(), String> {
    let toml: toml::Value = toml::from_str(text).map_err(|error| format!("not TOML: {error}"))?;
    let json = serde_json::to_value(&toml).expect("TOML values convert to JSON");
    validate(schema, schema, &json, "")
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
            validate(&schema, node, default, &path)
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
            "unknown key `mem_buf_limt`",
        ),
        (
            "an unknown section",
            mutated(|t| {
                t.insert("agnet".into(), toml::Value::Table(Default::default()));
            }),
            "unknown key `agnet`",
        ),
        (
            "an unknown fault kind",
            mutated(|t| {
                t.insert(
                    "fault".into(),
                    toml::Value::Array(vec![fault(&[("kind", string("meteor")), ("at", string("1m"))])]),
                );
            }),
            "matches none of oneOf",
        ),
        (
            "a field of another kind",
            mutated(|t| {
                let mut f = link_drop();
                f.as_table_mut().unwrap().insert("status".into(), 503.into());
                t.insert("fault".into(), toml::Value::Array(vec![f]));
            }),
            "matches none of oneOf",
        ),
        (
            "a fault without its `for`",
            mutated(|t| {
                let mut f = link_drop();
                f.as_table_mut().unwrap().remove("for");
                t.insert("fault".into(), toml::Value::Array(vec![f]));
            }),
            "matches none of oneOf",
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
            "is not of type string",
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
            "matches none of oneOf",
        ),
        (
            "retry_limit beyond Fluent Bit's int",
            mutated(|t| {
                section(t, "agent").insert("retry_limit".into(), 3_000_000_000_i64.into());
            }),
            "matches none of anyOf",
        ),
        (
            "retry_limit as a list",
            mutated(|t| {
                section(t, "agent").insert("retry_limit".into(), toml::Value::Array(vec![1.into()]));
            }),
            "matches none of anyOf",
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
            "unknown key `fluentd`",
        ),
        (
            "a machine group without count",
            mutated(|t| {
                section(t, "topology")
                    .insert("machines".into(), toml::Value::Array(vec![fault(&[("type", string("comfyui"))])]));
            }),
            "required key `count`",
        ),
        (
            "a float where an integer goes",
            mutated(|t| {
                section(t, "workload").insert("logs_per_job".into(), 20.5.into());
            }),
            "is not of type integer",
        ),
        (
            "a negative count",
            mutated(|t| {
                section(t, "redis").insert("databases".into(), (-1).into());
            }),
            "breaks minimum",
        ),
        (
            "a planted bug misspelt",
            mutated(|t| {
                section(t, "bugs").insert("agent_no_retries".into(), true.into());
            }),
            "unknown key `agent_no_retries`",
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
        assert_eq!(pattern_matches(pattern, input), well_formed, "{input:?}: parse_duration says {parsed:?}");
        accepted += usize::from(parsed.is_ok());
    }
    assert!(accepted > 1_000, "the alphabet reaches many valid durations ({accepted})");
}

#[test]
fn the_rate_pattern_accepts_exactly_what_the_rate_parser_accepts() {
    let pattern = obsim::scenario::schema::RATE_PATTERN;
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
        assert_eq!(pattern_matches(pattern, input), parsed.is_ok(), "{input:?}: the parser says {parsed:?}");
        accepted += usize::from(parsed.is_ok());
    }
    assert!(accepted > 100, "the alphabet reaches many valid rates ({accepted})");
}

#[test]
fn the_retry_limit_schema_accepts_exactly_what_the_agent_config_accepts() {
    let schema = schema();
    let retry_limit = &schema["properties"]["agent"]["properties"]["retry_limit"];
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
        let valid = validate(&schema, retry_limit, &json, "/agent/retry_limit");
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
