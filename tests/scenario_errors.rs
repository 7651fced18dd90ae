//! What `obsim check` accepts `obsim run` can run, and what it refuses it refuses naming the
//! exact key path and that key's own line.
//!
//! What is proven here:
//! - every file of the broken corpus (`fixtures/broken/*.toml`, one mistake each) is refused
//!   with the key path its first line states (`# key: fault[0].rate`) on the line marked
//!   `# <- error`, and every message is pinned (insta snapshot `broken_corpus`);
//! - the crashes the issue found (NaN/inf drift, 2^32-1 logs per job, `databases = 0`,
//!   `frame_bytes_limit = 0`, a 25 h run) are refused at load, by the same function
//!   `obsim check` and `obsim run` call, and their values just inside the range load;
//! - every number the schema accepts has a documented range, which the load enforces;
//! - every key the schema accepts reaches the config the run uses (`[app.workload]` and
//!   `[workload] submit_for`, which the run ignored, are refused);
//! - `obsim … | head` ends quietly on the broken pipe.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use obsim::scenario::{Scenario, ScenarioError};
use obsim::vocab::{LossCause, hosts};
use serde_json::Value;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The corpus files, sorted, as paths relative to the repository (stable in messages).
fn corpus() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("fixtures/broken"))
        .expect("fixtures/broken exists")
        .map(|entry| entry.expect("a readable folder").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
        .map(|path| path.strip_prefix(root()).expect("inside the repository").to_path_buf())
        .collect();
    files.sort();
    files
}

/// A small valid scenario with `extra` appended.
fn small(extra: &str) -> String {
    format!(
        "name = \"small\"\nduration = \"1m\"\n\n[topology]\nmachines = [{{ type = \"openai\", count = 2 }}]\n{extra}"
    )
}

fn parse(text: &str) -> Result<Scenario, ScenarioError> {
    Scenario::parse(Path::new("test.toml"), text)
}

/// The error `text` is refused with; panics if it loads.
fn refused(text: &str) -> ScenarioError {
    match parse(text) {
        Ok(_) => panic!("loaded, but must be refused:\n{text}"),
        Err(error) => error,
    }
}

#[test]
fn every_broken_file_names_its_exact_key_and_line_and_the_messages_are_pinned() {
    let files = corpus();
    assert!(files.len() >= 100, "the corpus holds {} files; at least 100 are promised", files.len());
    let mut listing = String::new();
    let mut wrong = Vec::new();
    for relative in &files {
        let text = std::fs::read_to_string(root().join(relative)).expect("a readable file");
        let expected_key = text
            .lines()
            .next()
            .and_then(|line| line.strip_prefix("# key: "))
            .unwrap_or_else(|| panic!("{} lacks its `# key:` line", relative.display()))
            .trim();
        let expected_key = (expected_key != "(none)").then_some(expected_key);
        let expected_line = text.lines().position(|line| line.ends_with("# <- error")).map(|index| index + 1);
        let error = match Scenario::parse(relative, &text) {
            Ok(_) => {
                wrong.push(format!("{}: loaded, but must be refused", relative.display()));
                continue;
            }
            Err(error) => error,
        };
        if error.key.as_deref() != expected_key || error.line_column.map(|(line, _)| line) != expected_line {
            wrong.push(format!(
                "{}: expected key {expected_key:?} on line {expected_line:?}, got key {:?} at {:?}: {}",
                relative.display(),
                error.key,
                error.line_column,
                error.message
            ));
        }
        listing.push_str(&format!("{error}\n"));
    }
    assert!(
        wrong.is_empty(),
        "{} of {} files are refused at the wrong place:\n{}",
        wrong.len(),
        files.len(),
        wrong.join("\n")
    );
    insta::assert_snapshot!("broken_corpus", listing);
}

#[test]
fn the_forms_the_issue_asks_for() {
    let error = refused(&small(
        "\n[[fault]]\nkind = \"packet_loss\"\nat = \"1s\"\nfor = \"5s\"\nfrom = \"openai-1\"\nto = \"railway\"\nrate = \"x\"\n",
    ));
    assert_eq!(
        (error.key.as_deref(), error.line_column.map(|(line, _)| line)),
        (Some("fault[0].rate"), Some(13)),
        "{error}"
    );
    let error = refused(
        "name = \"x\"\nduration = \"1m\"\n[topology]\nmachines = [\n  { type = \"openai\", count = 1 },\n  { type = \"comfyui\", count = \"2\" },\n]\n",
    );
    assert_eq!(
        (error.key.as_deref(), error.line_column.map(|(line, _)| line)),
        (Some("topology.machines[1].count"), Some(6)),
        "{error}"
    );
    let error = refused(&small("\n[workload]\njobs_per_second = -2.0\n"));
    assert_eq!(
        (error.key.as_deref(), error.line_column.map(|(line, _)| line)),
        (Some("workload.jobs_per_second"), Some(8)),
        "{error}"
    );
    let error = refused("duration = \"1m\"\n[topology]\nmachines = [{ type = \"openai\", count = 1 }]\n");
    assert_eq!((error.key, error.line_column), (None, None));
    assert_eq!(error.message, "missing field `name` (top level)");
}

/// `allow_loss` names loss causes, not strings: a misspelt cause (or `lost_silently`, an
/// outcome, not a cause) is refused at load on its own element, with every valid cause
/// listed; every valid cause loads, as the typed cause the delivery check compares.
#[test]
fn a_loss_cause_that_does_not_exist_is_refused_at_load_with_the_valid_causes() {
    let error = refused(&small("[expect]\nallow_loss = [\"agent_crash_unpersisted\", \"agent_retry_limt\"]\n"));
    assert_eq!(
        (error.key.as_deref(), error.line_column.map(|(line, _)| line)),
        (Some("expect.allow_loss[1]"), Some(7)),
        "{error}"
    );
    assert!(error.message.contains("`agent_retry_limt`"), "{error}");
    for name in LossCause::NAMES {
        assert!(error.message.contains(&format!("`{name}`")), "{name} is listed: {error}");
    }
    let error = refused(&small("[chaos]\nallow_loss = [\"lost_silently\"]\n"));
    assert_eq!(error.key.as_deref(), Some("chaos.allow_loss[0]"), "{error}");

    let every: Vec<String> = LossCause::NAMES.iter().map(|name| format!("\"{name}\"")).collect();
    let list = every.join(", ");
    let scenario = parse(&small(&format!("[expect]\nallow_loss = [{list}]\n[chaos]\nallow_loss = [{list}]\n")))
        .unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(scenario.expect.allow_loss, LossCause::ALL);
    assert_eq!(scenario.chaos.expect("a [chaos] table").allow_loss, LossCause::ALL);
}

/// The issue's repros that crashed `obsim run` after `obsim check` accepted them: each is now
/// refused by the load both commands share, naming its key; the edge of each range loads.
#[test]
fn what_crashed_the_run_is_refused_at_load_and_the_range_edges_load() {
    let clock_skew = |drift: &str| {
        small(&format!(
            "\n[[fault]]\nkind = \"clock_skew\"\nat = \"10s\"\nfor = \"5s\"\ntarget = \"openai-1\"\ndrift_ppm = {drift}\n"
        ))
    };
    for drift in ["nan", "inf", "-inf", "+nan"] {
        let error = refused(&clock_skew(drift));
        assert_eq!(error.key.as_deref(), Some("fault[0].drift_ppm"), "{error}");
        assert!(error.message.contains("not a finite number"), "{error}");
    }
    parse(&clock_skew("100000.0")).expect("the largest drift loads");
    assert_eq!(refused(&clock_skew("100000.5")).key.as_deref(), Some("fault[0].drift_ppm"));

    let error = refused(&small("\n[workload]\nlogs_per_job = 4294967295\n"));
    assert_eq!(error.key.as_deref(), Some("workload.logs_per_job"), "{error}");
    parse(&small("\n[workload]\nlogs_per_job = 10000\n")).expect("the most logs per job load");

    let error = refused(&small("\n[redis]\ndatabases = 0\n"));
    assert_eq!(error.key.as_deref(), Some("redis.databases"), "{error}");
    parse(&small("\n[redis]\ndatabases = 1\n")).expect("one database loads");

    let error = refused(&small("\n[aggregator]\nframe_bytes_limit = 0\n"));
    assert_eq!(error.key.as_deref(), Some("aggregator.frame_bytes_limit"), "{error}");
    parse(&small("\n[aggregator]\nframe_bytes_limit = 1\n"))
        .expect("a one-byte frame limit loads (every frame is refused, as configured)");

    let run = |duration: &str, drain: &str| {
        format!(
            "name = \"x\"\nduration = \"{duration}\"\ndrain = \"{drain}\"\n[topology]\nmachines = [{{ type = \"openai\", count = 1 }}]\n[workload]\njobs_per_second = 0.01\nlogs_per_job = 8\n"
        )
    };
    let error = refused(&run("25h", "3m"));
    assert_eq!(error.key.as_deref(), Some("duration"), "{error}");
    assert_eq!(refused(&run("23h59m", "2m")).key.as_deref(), Some("duration"));
    parse(&run("23h57m", "3m")).expect("a run of exactly 24 h loads");
}

/// The lower bound of each range the run relies on holds in the config the parts get, so a
/// value `obsim check` accepts never reaches the asserts that fired.
#[test]
fn the_ranges_the_run_relies_on_are_at_least_the_parts_own() {
    let scenario = parse(&small("\n[redis]\ndatabases = 1\n[aggregator]\nframe_bytes_limit = 1\n")).unwrap();
    assert!(scenario.redis.databases >= 1);
    assert!(scenario.aggregator.frame_bytes_limit >= 1);
    assert!(scenario.aggregator.validate().is_ok() && scenario.agent.validate().is_ok());
}

/// Every number in the schema has a documented range: floats both bounds, integers an upper
/// bound too, except the few counts that bound nothing the run holds.
#[test]
fn every_number_has_a_range() {
    // Counts in expectations and the seed: any value is harmless to the run.
    const UNBOUNDED: [&str; 4] = ["seed", "expect.lost", "expect.max_jobs_unfinished", "expect.max_jobs_duplicated"];
    let schema = obsim::scenario::json_schema();
    let mut missing = Vec::new();
    numbers(&schema, "", &mut |path, node| {
        let has = |key: &str| node.get(key).is_some();
        let bounded = (has("minimum") || has("exclusiveMinimum")) && (has("maximum") || has("exclusiveMaximum"));
        if !bounded
            && !UNBOUNDED.contains(&path)
            && !path.starts_with("expect.max_occupancy.")
            && path != "chaos.max_jobs_unfinished"
        {
            missing.push(path.to_string());
        }
    });
    assert!(missing.is_empty(), "numbers without a documented range: {missing:?}");
}

/// Calls `found(path, schema)` for every integer or number schema inside `schema`.
fn numbers(schema: &Value, path: &str, found: &mut dyn FnMut(&str, &Value)) {
    let Some(object) = schema.as_object() else { return };
    let is_number = |kind: &Value| kind == "integer" || kind == "number";
    if object
        .get("type")
        .is_some_and(|kind| is_number(kind) || kind.as_array().is_some_and(|kinds| kinds.iter().any(is_number)))
    {
        found(path, schema);
    }
    let join = |key: &str| if path.is_empty() { key.to_string() } else { format!("{path}.{key}") };
    if let Some(Value::Object(properties)) = object.get("properties") {
        for (key, property) in properties {
            numbers(property, &join(key), found);
        }
    }
    if let Some(extra) = object.get("additionalProperties").filter(|extra| extra.is_object()) {
        numbers(extra, &join("*"), found);
    }
    if let Some(items) = object.get("items") {
        numbers(items, path, found);
    }
    for key in ["anyOf", "oneOf", "allOf"] {
        if let Some(Value::Array(alternatives)) = object.get(key) {
            for alternative in alternatives {
                numbers(alternative, path, found);
            }
        }
    }
}

/// What the run is built from: each part's config as `Pipeline::build` hands it out.
fn run_view(scenario: &Scenario) -> String {
    format!(
        "{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}",
        scenario.agent_for(hosts::API),
        scenario.agent_for("openai-1"),
        scenario.aggregator,
        scenario.app_config(),
        scenario.collector_for("openai-1"),
        scenario.dash0,
        scenario.redis,
        scenario.shipper,
        (scenario.duration, scenario.drain, scenario.tick),
    )
}

/// A valid value for a key of `schema` other than `default`, or `None` when the test cannot
/// make one up (the key is then listed for the audit).
fn another_value(schema: &Value, default: Option<&Value>) -> Option<toml::Value> {
    if let Some(Value::Array(choices)) = schema.get("enum") {
        return choices
            .iter()
            .find(|choice| Some(*choice) != default)
            .and_then(|choice| choice.as_str())
            .map(|text| toml::Value::String(text.into()));
    }
    if let Some(constant) = schema.get("const") {
        return (Some(constant) != default)
            .then(|| constant.as_str().map(|text| toml::Value::String(text.into())))
            .flatten();
    }
    if let Some(Value::Array(alternatives)) = schema.get("anyOf").or(schema.get("oneOf")) {
        return alternatives.iter().find_map(|alternative| another_value(alternative, default));
    }
    let kind = schema.get("type")?.as_str()?;
    let pattern = schema.get("pattern").and_then(Value::as_str);
    Some(match (kind, default) {
        ("boolean", default) => toml::Value::Boolean(!default.and_then(Value::as_bool).unwrap_or(false)),
        ("string", _) if pattern == Some(obsim::scenario::schema::DURATION_PATTERN) => {
            let current = default
                .and_then(Value::as_str)
                .and_then(|text| obsim::units::parse_duration(text).ok())
                .unwrap_or_default();
            toml::Value::String(obsim::units::format_duration(current + std::time::Duration::from_secs(1)))
        }
        ("string", _) if pattern.is_some() => return None,
        ("array", _) if schema.pointer("/items/type") == Some(&Value::from("array")) => {
            // `routes`: pairs of strings.
            toml::Value::Array(vec![toml::Value::Array(vec![
                toml::Value::String("other.".into()),
                toml::Value::String("logs:other".into()),
            ])])
        }
        ("array", _) if schema.pointer("/items/type") == Some(&Value::from("object")) => {
            // `save_points`: one item, each field set to a valid value.
            let properties = schema.pointer("/items/properties")?.as_object()?;
            let item: Option<toml::Table> =
                properties.iter().map(|(key, property)| Some((key.clone(), another_value(property, None)?))).collect();
            toml::Value::Array(vec![toml::Value::Table(item?)])
        }
        ("string", default) => toml::Value::String(format!("{}-other", default.and_then(Value::as_str).unwrap_or("x"))),
        ("integer", default) => {
            let current = default.and_then(Value::as_i64).unwrap_or(0);
            let maximum = schema.get("maximum").and_then(Value::as_i64).unwrap_or(i64::MAX);
            let minimum = schema.get("minimum").and_then(Value::as_i64).unwrap_or(0);
            toml::Value::Integer(if current < maximum { (current + 1).max(minimum) } else { current - 1 })
        }
        ("number", default) => {
            let current = default.and_then(Value::as_f64).unwrap_or(0.0);
            let maximum = schema.get("maximum").and_then(Value::as_f64).unwrap_or(f64::MAX);
            toml::Value::Float(if current + 0.25 <= maximum { current + 0.25 } else { current - 0.25 })
        }
        _ => return None,
    })
}

/// Every leaf key of every part section, and of `[workload]`, reaches the config the run is
/// built from: setting it to another valid value changes what `Pipeline::build` hands out.
/// A key the run would ignore (as `[app.workload]` and `submit_for` were) fails here.
#[test]
fn every_key_the_schema_accepts_reaches_the_run() {
    let schema = obsim::scenario::json_schema();
    // Keys whose effect is outside the part configs, judged elsewhere: the seed, the
    // description (reports), the expectations (checks), planted bugs, chaos sweeps, faults,
    // the topology (host list) and overrides (tests below and `Pipeline::build`).
    let sections = ["agent", "aggregator", "app", "collector", "dash0", "redis", "shipper", "workload"];
    // Every machine type present, so no type's settings are moot.
    let base_text = "name = \"keys\"\nduration = \"1m\"\n[topology]\nmachines = [{ type = \"openai\", count = 1 }, { type = \"comfyui\", count = 1 }, { type = \"simulation\", count = 1 }]\n[workload]\njobs_per_second = 0.5\nlogs_per_job = 10\n".to_string();
    let base = parse(&base_text).unwrap();
    let mut unchanged = Vec::new();
    let mut untried = Vec::new();
    let mut tried = 0;
    for section in sections {
        let section_schema = &schema["properties"][section];
        let mut leaves = Vec::new();
        leaf_keys(section_schema, "", &mut leaves);
        for (key, leaf_schema) in leaves {
            let default = leaf_schema.get("default").or_else(|| lookup(&section_schema["default"], &key));
            let Some(value) = another_value(&leaf_schema, default) else {
                untried.push(format!("{section}.{key}"));
                continue;
            };
            let with_value = |value: &toml::Value| {
                let mut document: toml::Table = toml::from_str(&base_text).unwrap();
                let mut table =
                    document.entry(section.to_string()).or_insert_with(|| toml::Value::Table(Default::default()));
                let parts: Vec<&str> = key.split('.').collect();
                for part in &parts[..parts.len() - 1] {
                    table = table
                        .as_table_mut()
                        .unwrap()
                        .entry(part.to_string())
                        .or_insert_with(|| toml::Value::Table(Default::default()));
                }
                table.as_table_mut().unwrap().insert(parts[parts.len() - 1].to_string(), value.clone());
                toml::to_string(&document).unwrap()
            };
            let mut text = with_value(&value);
            // A rule between keys may want more than the next integer (`send_batch_max_size`
            // ≥ `send_batch_size`): then the range's maximum.
            if let (Err(_), toml::Value::Integer(_), Some(maximum)) =
                (parse(&text), &value, leaf_schema.get("maximum").and_then(Value::as_i64))
            {
                text = with_value(&toml::Value::Integer(maximum));
            }
            // Forward over TLS needs both ends: `tls` goes on in `[agent]` and `[aggregator]`.
            if key == "tls" && parse(&text).is_err() {
                let mut document: toml::Table = toml::from_str(&text).unwrap();
                for end in ["agent", "aggregator"] {
                    let table =
                        document.entry(end.to_string()).or_insert_with(|| toml::Value::Table(Default::default()));
                    table.as_table_mut().unwrap().insert("tls".to_string(), value.clone());
                }
                text = toml::to_string(&document).unwrap();
            }
            match parse(&text) {
                Ok(changed) if run_view(&changed) != run_view(&base) => tried += 1,
                Ok(_) => unchanged.push(format!("{section}.{key} = {value}")),
                Err(error) => untried.push(format!("{section}.{key} = {value} (refused: {error})")),
            }
        }
    }
    eprintln!("{tried} keys reach the run; not tried: {untried:#?}");
    assert!(unchanged.is_empty(), "keys the schema accepts that change nothing the run is built from: {unchanged:#?}");
    assert!(tried >= 100, "only {tried} keys were tried; untried: {untried:#?}");
    assert!(untried.is_empty(), "keys the test could not set to another valid value: {untried:#?}");
}

/// `(dotted key, schema)` of every leaf under an object schema.
fn leaf_keys(schema: &Value, prefix: &str, leaves: &mut Vec<(String, Value)>) {
    let Some(Value::Object(properties)) = schema.get("properties") else { return };
    for (key, property) in properties {
        let path = if prefix.is_empty() { key.clone() } else { format!("{prefix}.{key}") };
        if property.get("properties").is_some() {
            leaf_keys(property, &path, leaves);
        } else {
            leaves.push((path, property.clone()));
        }
    }
}

/// The value at dotted `key` inside a JSON object.
fn lookup<'a>(value: &'a Value, key: &str) -> Option<&'a Value> {
    key.split('.').try_fold(value, |value, part| value.get(part))
}

#[test]
fn app_workload_and_submit_for_are_refused() {
    let error = refused(&small("\n[app.workload]\njobs_per_second = 3.0\n"));
    assert_eq!(error.key.as_deref(), Some("app.workload"), "{error}");
    assert!(error.message.contains("unknown field `workload`"), "{error}");
    let error = refused(&small("\n[workload]\nsubmit_for = \"1m\"\n"));
    assert_eq!(error.key.as_deref(), Some("workload.submit_for"), "{error}");
    let schema = obsim::scenario::json_schema();
    assert!(schema["properties"]["app"]["properties"].get("workload").is_none());
    assert!(schema["properties"]["workload"]["properties"].get("submit_for").is_none());
}

#[test]
fn overrides_give_each_selected_host_its_merged_config() {
    let scenario = parse(&small(
        "\n[agent]\nshared_key = \"secret\"\nstorage = \"filesystem\"\n\n[[override]]\nhosts = \"openai-2\"\nagent = { shared_key = \"wrong\" }\n\n[[override]]\nhosts = \"machines\"\nagent = { storage = \"memory\" }\ncollector = { queue_size = 7 }\n",
    ))
    .unwrap();
    let (one, two, api) =
        (scenario.agent_for("openai-1"), scenario.agent_for("openai-2"), scenario.agent_for(hosts::API));
    assert_eq!(
        (one.shared_key.as_deref(), two.shared_key.as_deref(), api.shared_key.as_deref()),
        (Some("secret"), Some("wrong"), Some("secret"))
    );
    use obsim::parts::agent::StorageType;
    assert_eq!(
        (one.storage, two.storage, api.storage),
        (StorageType::Memory, StorageType::Memory, StorageType::Filesystem)
    );
    assert_eq!(
        (scenario.collector_for("openai-1").queue_size, scenario.collector_for(hosts::API).queue_size),
        (7, 1000)
    );
}

/// `obsim check … | head` / `obsim schema | head`: the reader is gone before obsim writes;
/// obsim exits with its own status and says nothing (std's `println!` panicked here).
#[test]
fn a_closed_stdout_ends_quietly() {
    for args in [vec!["schema"], vec!["check", "scenarios/baseline.toml"], vec!["probe", "--seed", "7", "--events"]] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_obsim"))
            .args(&args)
            .current_dir(root())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("obsim starts");
        // Close the read end at once: every write obsim makes meets a broken pipe.
        drop(child.stdout.take());
        let output = child.wait_with_output().expect("obsim ends");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "obsim {args:?}: {:?}\n{stderr}", output.status);
        assert!(stderr.is_empty(), "obsim {args:?} wrote to stderr:\n{stderr}");
    }
}

/// An `agent_mem_buf` squeeze needs memory storage on every agent it squeezes, overrides
/// included: a memory group of a filesystem fleet may be squeezed, a fleet with one
/// filesystem machine may not.
#[test]
fn an_agent_squeeze_judges_the_storage_each_squeezed_host_runs() {
    let squeeze = |target: &str| {
        format!(
            "\n[[fault]]\nkind = \"backpressure\"\nat = \"10s\"\nfor = \"5s\"\nwhat = \"agent_mem_buf\"\nbytes = 1000\ntarget = \"{target}\"\n"
        )
    };
    let memory_group = small(&format!(
        "\n[agent]\nstorage = \"filesystem\"\n\n[[override]]\nhosts = \"openai-2\"\nagent = {{ storage = \"memory\" }}\n{}",
        squeeze("openai-2")
    ));
    parse(&memory_group).expect("the memory host of a filesystem fleet may be squeezed");
    let one_on_disk = small(&format!(
        "\n[[override]]\nhosts = \"openai-1\"\nagent = {{ storage = \"filesystem\" }}\n{}",
        squeeze("machines")
    ));
    let error = refused(&one_on_disk);
    assert_eq!(error.key.as_deref(), Some("fault[0].what"), "{error}");
}
