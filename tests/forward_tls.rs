//! Forward over TLS (agent → aggregator :24225 with `tls = true` on both ends): records flow
//! through real rustls handshakes on the simulated TCP; each certificate fault makes the
//! agents' handshakes fail with the error rustls gives, the agents retry with their scheduler,
//! and once the right certificate is back everything arrives; an agent's clock, not true
//! time, decides whether a certificate has expired; the certificates and the whole run are
//! the same for the same seed.

mod scenario_support;

use std::path::Path;
use std::sync::Arc;

use obsim::check::Verdict;
use obsim::ledger::Outcome;
use obsim::pipeline::Pipeline;
use obsim::scenario::Scenario;
use obsim::vocab::EventKind;
use obsim::world::Seed;
use obsim::world::tls::Pki;

/// 2 OpenAI machines of 2 workers, reliable agents (filesystem, no_limits, acks), Forward
/// over TLS with a new connection per flush (`keepalive = false`: every flush meets the
/// certificate in force; with keepalive a connection made before a swap keeps its
/// certificate), then `agent_extra` in `[agent]` and `rest`.
fn scenario_text(agent_extra: &str, rest: &str) -> String {
    format!(
        "{}tls = true\nkeepalive = false\n{agent_extra}[aggregator]\ntls = true\n{rest}",
        scenario_support::openai_header("tls", 11, "2m", "4m", 2, 2)
    )
}

fn run(agent_extra: &str, rest: &str) -> (Pipeline, Verdict) {
    let scenario = Scenario::parse(Path::new("tls.toml"), &scenario_text(agent_extra, rest)).unwrap();
    let mut pipeline = Pipeline::build(Arc::new(scenario), 11);
    pipeline.run().unwrap();
    let verdict = Verdict::judge(&pipeline, pipeline.world.outcome());
    (pipeline, verdict)
}

/// (second, host, detail) of every event of `kind`.
fn events_of(pipeline: &Pipeline, kind: EventKind) -> Vec<(u64, String, String)> {
    pipeline
        .world
        .events()
        .kept()
        .into_iter()
        .filter(|event| event.kind == kind)
        .map(|event| (event.true_nanos / 1_000_000_000, event.host.to_string(), event.detail.to_string()))
        .collect()
}

/// Nothing undelivered, under any outcome.
fn assert_nothing_lost(verdict: &Verdict) {
    let outcomes: Vec<&Outcome> = verdict.accounting.outcomes.keys().map(|(_, outcome)| outcome).collect();
    assert!(outcomes.is_empty(), "nothing lost or in flight: {outcomes:?}");
}

/// A certificate fault from 30 s for 30 s: handshakes fail with `reason` only inside it (a
/// retry due at its end may still meet it), the agents retry, the aggregator sees the alert,
/// and everything arrives.
fn assert_fault_refused_then_healed(pipeline: &Pipeline, verdict: &Verdict, reason: &str, alert: &str) {
    let failures = events_of(pipeline, EventKind::AgentTlsHandshakeFailed);
    assert!(!failures.is_empty(), "the agents' handshakes failed");
    for (second, host, detail) in &failures {
        assert!((30..=60).contains(second), "a failure outside the fault, at {second}s on {host}: {detail}");
        assert!(detail.contains(reason), "rustls's reason {reason:?}, got {detail:?}");
    }
    let retries = events_of(pipeline, EventKind::AgentRetry);
    assert!(
        retries.iter().any(|(_, _, detail)| detail.contains("TLS handshake failed")),
        "the failed handshake is a failed flush, retried: {retries:?}"
    );
    let refused = events_of(pipeline, EventKind::AggregatorTlsHandshakeFailed);
    assert!(refused.iter().any(|(_, _, detail)| detail.contains(alert)), "Fluentd sees the alert {alert}: {refused:?}");
    let acks = events_of(pipeline, EventKind::AgentAck);
    assert!(acks.iter().any(|(second, _, _)| *second > 60), "chunks acked after the renewal");
    assert!(verdict.passed(), "{}", verdict.render());
    assert_nothing_lost(verdict);
}

#[test]
fn records_flow_over_tls_with_every_handshake_accepted() {
    let (pipeline, verdict) = run("", "");
    assert!(events_of(&pipeline, EventKind::AgentTlsHandshakeFailed).is_empty());
    assert!(events_of(&pipeline, EventKind::AggregatorTlsHandshakeFailed).is_empty());
    let connects = events_of(&pipeline, EventKind::AgentConnect);
    assert!(connects.len() > 100, "a connection (and handshake) per flush: {}", connects.len());
    assert!(verdict.passed(), "{}", verdict.render());
    assert_nothing_lost(&verdict);
}

#[test]
fn an_expired_certificate_fails_new_handshakes_until_it_is_renewed() {
    let (pipeline, verdict) = run("", "[[fault]]\nat = \"30s\"\nkind = \"tls_cert_expired\"\nfor = \"30s\"\n");
    assert_fault_refused_then_healed(&pipeline, &verdict, "invalid peer certificate: Expired", "CertificateExpired");
}

#[test]
fn a_certificate_from_another_ca_fails_every_handshake_until_the_right_one_is_back() {
    let (pipeline, verdict) = run("", "[[fault]]\nat = \"30s\"\nkind = \"tls_wrong_ca\"\nfor = \"30s\"\n");
    assert_fault_refused_then_healed(&pipeline, &verdict, "invalid peer certificate: UnknownIssuer", "UnknownCA");
}

#[test]
fn a_certificate_for_another_name_fails_only_with_verify_hostname() {
    let fault = "[[fault]]\nat = \"30s\"\nkind = \"tls_hostname_mismatch\"\nfor = \"30s\"\n";
    // Fluent Bit's default: tls.verify_hostname off, the chain alone is checked.
    let (pipeline, verdict) = run("", fault);
    assert!(events_of(&pipeline, EventKind::AgentTlsHandshakeFailed).is_empty(), "the default accepts it");
    assert!(verdict.passed(), "{}", verdict.render());
    let (pipeline, verdict) = run("tls_verify_hostname = true\n", fault);
    assert_fault_refused_then_healed(
        &pipeline,
        &verdict,
        "invalid peer certificate: NotValidForName",
        "BadCertificate",
    );
}

#[test]
fn with_tls_verify_off_every_certificate_is_accepted() {
    let fault = "[[fault]]\nat = \"30s\"\nkind = \"tls_wrong_ca\"\nfor = \"30s\"\n";
    let (pipeline, verdict) = run("tls_verify = false\n", fault);
    assert!(events_of(&pipeline, EventKind::AgentTlsHandshakeFailed).is_empty());
    assert!(verdict.passed(), "{}", verdict.render());
}

/// The certificate expires at true 30 s; openai-1's clock runs 10 minutes behind, so for it
/// the certificate is still valid throughout the fault; openai-2's clock is right.
#[test]
fn whether_a_certificate_has_expired_is_the_agents_clock_to_say() {
    let (pipeline, verdict) = run(
        "",
        "[[fault]]\nat = \"30s\"\nkind = \"tls_cert_expired\"\nfor = \"30s\"\n\
         [[fault]]\nat = \"0s\"\nkind = \"clock_skew\"\ntarget = \"openai-1\"\noffset = \"10m\"\nbehind = true\n",
    );
    let failures = events_of(&pipeline, EventKind::AgentTlsHandshakeFailed);
    assert!(failures.iter().all(|(_, host, _)| host != "openai-1"), "openai-1's clock says valid: {failures:?}");
    assert!(failures.iter().any(|(_, host, _)| host == "openai-2"), "openai-2's clock says expired");
    assert!(verdict.passed(), "{}", verdict.render());
}

/// An agent whose clock is a week ahead sees a certificate expire when it does not: its clock
/// decides, not true time (a certificate valid until 9999 stays valid; this one is not).
#[test]
fn a_skewed_agent_clock_makes_a_certificate_not_yet_valid() {
    // The certificates are valid from a day before the epoch; a clock two days behind finds
    // the served one not valid yet.
    let (pipeline, _verdict) = run(
        "",
        "[[fault]]\nat = \"20s\"\nkind = \"clock_skew\"\ntarget = \"openai-1\"\noffset = \"48h\"\nbehind = true\nfor = \"30s\"\n",
    );
    let failures = events_of(&pipeline, EventKind::AgentTlsHandshakeFailed);
    assert!(!failures.is_empty(), "openai-1 refuses the certificate while its clock is behind");
    for (second, host, detail) in &failures {
        assert_eq!(host, "openai-1", "{detail}");
        assert!((20..=50).contains(second), "at {second}s: {detail}");
        assert!(detail.contains("NotValidYet"), "{detail}");
    }
}

#[test]
fn a_tls_run_twice_gives_the_same_event_log() {
    let fault = "[[fault]]\nat = \"30s\"\nkind = \"tls_cert_expired\"\nfor = \"30s\"\n";
    let (first, _) = run("", fault);
    let (second, _) = run("", fault);
    assert_eq!(first.world.outcome().hash, second.world.outcome().hash);
}

#[test]
fn the_run_certificates_are_the_seeds() {
    let epoch = obsim::world::EPOCH_UNIX_SECS_DEFAULT;
    let a = Pki::new(Seed(3), epoch, "railway-aggregator").unwrap();
    let b = Pki::new(Seed(3), epoch, "railway-aggregator").unwrap();
    let c = Pki::new(Seed(4), epoch, "railway-aggregator").unwrap();
    assert_eq!(a.ca_der(), b.ca_der());
    assert_eq!(a.valid().unwrap().chain, b.valid().unwrap().chain);
    assert_eq!(a.wrong_name().unwrap().chain, b.wrong_name().unwrap().chain);
    assert_ne!(a.ca_der(), c.ca_der());
    assert_ne!(a.valid().unwrap().key_pkcs8, c.valid().unwrap().key_pkcs8);
}

#[test]
fn a_tls_fault_without_tls_and_half_a_tls_hop_are_refused() {
    let plain = scenario_support::openai_header("tls", 11, "2m", "4m", 2, 2);
    let fault = format!("{plain}[[fault]]\nat = \"30s\"\nkind = \"tls_wrong_ca\"\nfor = \"30s\"\n");
    let error = Scenario::parse(Path::new("tls.toml"), &fault).unwrap_err().to_string();
    assert!(error.contains("fault[0].kind") && error.contains("[aggregator] tls is off"), "{error}");
    let half = format!("{plain}tls = true\n");
    let error = Scenario::parse(Path::new("tls.toml"), &half).unwrap_err().to_string();
    assert!(error.contains("agent.tls") && error.contains("needs both ends"), "{error}");
}

/// scenarios/tls-wrong-ca-retry-limit.toml: with Fluent Bit's default Retry_Limit of 1, two
/// refused handshakes discard a chunk, and the loss is named `agent_retry_limit`, nothing else.
#[test]
fn a_wrong_ca_against_retry_limit_1_loses_with_the_cause_named() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/tls-wrong-ca-retry-limit.toml");
    let scenario = Arc::new(Scenario::load(&path).unwrap());
    let seed = scenario.seed;
    let mut pipeline = Pipeline::build(scenario, seed);
    pipeline.run().unwrap();
    let verdict = Verdict::judge(&pipeline, pipeline.world.outcome());
    let outcomes: Vec<&Outcome> = verdict.accounting.outcomes.keys().map(|(_, outcome)| outcome).collect();
    assert!(!outcomes.is_empty(), "chunks were discarded");
    for outcome in outcomes {
        assert!(
            matches!(outcome, Outcome::Lost { cause: obsim::vocab::LossCause::AgentRetryLimit, .. }),
            "only agent_retry_limit: {outcome:?}"
        );
    }
    assert!(!events_of(&pipeline, EventKind::AgentGiveUp).is_empty(), "the agents gave up on chunks");
    assert!(verdict.passed(), "{}", verdict.render());
}
