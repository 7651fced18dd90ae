//! The `bounds` check (always on) and `[expect] max_buffer_fill`: every bounded buffer —
//! Fluent Bit's memory buffer, Fluentd's buffer, Redis's memory under `maxmemory` — reports
//! its level and the limit in force, and a part that takes writes past its limit fails the
//! run naming the host, the buffer, the level, the limit and the moment. Proven with the
//! planted bug `aggregator_ignores_buffer_limit`; the same scenario without it passes.

mod scenario_support;

use std::path::Path;

use obsim::check::CheckName;
use obsim::check::{Check, Verdict};
use obsim::gauges::Gauge;
use obsim::scenario::Scenario;
use obsim::vocab::Part;
use obsim::vocab::hosts;

/// Two OpenAI machines, one job a second; Redis is cut off from Fluentd for 30 s, so its
/// small buffer (20 kB, chunks of 5 kB) fills and, correctly, refuses writes
/// (throw_exception) while the agents keep their chunks and retry.
const SMALL: &str = r#"
name = "bounded"
seed = 5
duration = "1m"
drain = "2m"
[topology]
machines = [{ type = "openai", count = 2, workers = 2 }]
[workload]
jobs_per_second = 1.0
logs_per_job = 10
[agent]
storage = "filesystem"
retry_limit = "no_limits"
require_ack = true
[aggregator]
chunk_bytes_limit = 5000
total_bytes_limit = 20000
[[fault]]
at = "10s"
kind = "link_drop"
for = "30s"
from = "railway-aggregator"
to = "railway-redis"
[expect]
# TCP delivers an RPUSH that timed out in the cut once it heals, while Fluentd retried the
# chunk: a few records stored twice are this run's truth (at-least-once).
max_duplicate_ratio = 0.02
"#;

fn run(text: &str) -> Verdict {
    scenario_support::judge("bounded.toml", text, None)
}

fn check(verdict: &Verdict, name: CheckName) -> &Check {
    verdict.check(name).unwrap_or_else(|| panic!("no {name} check:\n{}", verdict.render()))
}

fn gauge<'a>(verdict: &'a Verdict, host: &str, buffer: &str) -> &'a Gauge {
    verdict
        .buffers
        .iter()
        .find(|(id, _)| id.host == host && id.buffer == buffer)
        .map(|(_, gauge)| gauge)
        .unwrap_or_else(|| panic!("no gauge {host} {buffer}: {:?}", verdict.buffers.keys().collect::<Vec<_>>()))
}

#[test]
fn an_aggregator_ignoring_total_limit_size_fails_bounds_naming_host_buffer_and_limit() {
    let correct = run(SMALL);
    assert!(correct.passed(), "without the bug the scenario passes:\n{}", correct.render());
    let buffer = gauge(&correct, hosts::AGGREGATOR, "buffer_bytes");
    assert!(buffer.peak >= 20_000, "the buffer did fill: peak {}", buffer.peak);
    assert_eq!((buffer.violations_count, buffer.limit), (0, 20_000));
    assert!(
        check(&correct, CheckName::Bounds).detail.contains("railway-aggregator buffer_bytes peak"),
        "{}",
        correct.render()
    );

    let buggy = run(&format!("{SMALL}[bugs]\naggregator_ignores_buffer_limit = true\n"));
    let report = buggy.render();
    let bounds = check(&buggy, CheckName::Bounds);
    assert!(!bounds.passed, "the bounds check catches the bug:\n{report}");
    for needle in [
        "aggregator railway-aggregator buffer_bytes reached",
        "over total_limit_size 20000 in force then",
        "took a write while already over its limit",
        "the part does not refuse when full",
    ] {
        assert!(bounds.detail.contains(needle), "`{needle}` missing from the bounds check:\n{report}");
    }
    let buffer = gauge(&buggy, hosts::AGGREGATOR, "buffer_bytes");
    assert!(buffer.violations_count > 0 && buffer.peak > 2 * 20_000, "it kept taking: {buffer:?}");
    let first = buffer.first_violation.unwrap();
    assert!(first.before > first.limit && (10..40).contains(&first.at.as_secs()), "while Redis was cut off: {first:?}");
    // Nothing is lost (memory just grows): only the bounds check sees it.
    assert!(check(&buggy, CheckName::Delivery).passed, "{report}");
    assert!(
        report.contains("seed 5")
            && report.contains("replay: cargo run --release -- run scenarios/bounded.toml --seed 5"),
        "{report}"
    );
    assert!(report.contains("verdict FAIL"), "{report}");
}

#[test]
fn max_buffer_fill_fails_below_the_measured_fill_and_passes_at_it() {
    let measured = gauge(&run(SMALL), hosts::AGGREGATOR, "buffer_bytes").fullest.expect("admissions under a limit");
    let fill = measured.after as f64 / measured.limit as f64;
    assert!(fill > 0.5, "the cut-off filled the buffer: {measured:?}");

    let strict = run(&format!("{SMALL}max_buffer_fill = {{ aggregator = {:.3} }}\n", fill / 2.0));
    let failed = check(&strict, CheckName::BufferFill);
    assert!(!failed.passed, "{}", strict.render());
    let expected = format!(
        "railway-aggregator buffer_bytes filled to {fill:.3} of total_limit_size ({}/{} bytes)",
        measured.after, measured.limit
    );
    assert!(
        failed.detail.contains(&expected) && failed.detail.contains("above max_buffer_fill aggregator"),
        "{expected}\n{}",
        failed.detail
    );
    assert!(check(&strict, CheckName::Bounds).passed, "the part kept its bound; only the expectation is stricter");

    let loose = run(&format!("{SMALL}max_buffer_fill = {{ aggregator = {} }}\n", fill));
    assert!(loose.passed(), "{}", loose.render());
    assert!(check(&loose, CheckName::BufferFill).detail.contains("within max_buffer_fill"), "{}", loose.render());
}

#[test]
fn max_buffer_fill_must_be_a_positive_fraction_of_a_known_part() {
    let parse = |expect: &str| {
        Scenario::parse(Path::new("bounded.toml"), &format!("{SMALL}{expect}\n")).map_err(|e| e.to_string())
    };
    let error = parse("max_buffer_fill = { aggregator = 0.0 }").unwrap_err();
    assert!(
        error.contains("max_buffer_fill") && error.contains("aggregator = 0 must be a fraction of the limit above 0"),
        "{error}"
    );
    let error = parse("max_buffer_fill = { fluentd = 0.5 }").unwrap_err();
    assert!(error.contains("unknown variant `fluentd`"), "{error}");
    let scenario = parse("max_buffer_fill = { aggregator = 0.8, redis = 0.9 }").unwrap();
    assert_eq!(scenario.expect.max_buffer_fill.get(&Part::Aggregator), Some(&0.8));
}

/// Memory-storage agents, Fluentd and a Redis with `maxmemory` while Dash0 refuses
/// everything for a minute: each buffer reports against its own limit, and all keep their
/// bounds (Redis fills to its maxmemory and refuses with OOM; Fluentd retries).
#[test]
fn every_bounded_buffer_reports_its_level_against_its_limit() {
    let text = r#"
name = "bounded-all"
seed = 52
duration = "2m"
drain = "3m"
[topology]
machines = [{ type = "openai", count = 2, workers = 4 }]
[workload]
jobs_per_second = 1.0
logs_per_job = 20
[agent]
storage = "memory"
mem_buf_bytes_limit = 20000
retry_limit = "no_limits"
require_ack = true
[redis]
maxmemory_bytes = 1200000
[[fault]]
at = "20s"
kind = "dash0_errors"
status = 503
for = "60s"
[expect]
correlation = "skip"
metrics = "skip"
"#;
    let verdict = run(text);
    assert!(verdict.passed(), "{}", verdict.render());
    let redis = gauge(&verdict, hosts::REDIS, "used_memory_bytes");
    assert_eq!((redis.limit, redis.limit_name), (1_200_000, "maxmemory"));
    assert!(redis.peak > 1_000_000, "the log buffer filled Redis: {redis:?}");
    let agent = gauge(&verdict, "openai-1", "mem_buf_bytes");
    assert_eq!((agent.limit, agent.limit_name), (20_000, "mem_buf_limit"));
    assert!(agent.admissions_count > 0 && agent.violations_count == 0, "{agent:?}");
    let aggregator = gauge(&verdict, hosts::AGGREGATOR, "buffer_bytes");
    assert_eq!(aggregator.limit, 512 << 20);
    let detail = &check(&verdict, CheckName::Bounds).detail;
    for needle in [
        "railway-redis used_memory_bytes peak",
        "mem_buf_bytes peak",
        "(fullest of 3)",
        "railway-aggregator buffer_bytes peak",
    ] {
        assert!(detail.contains(needle), "`{needle}` missing:\n{detail}");
    }
}
