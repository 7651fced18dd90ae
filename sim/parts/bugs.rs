//! Planted bugs: faults in the parts themselves, switched on by a scenario's `[bugs]`
//! section, so that each checker can be shown to catch the failure it exists for.
//!
//! Why planted bugs: a checker that never failed proves nothing. Each flag below makes one
//! part do a real, known-bad thing (ack before buffering, delete before 2xx, …) through its
//! normal code path; the ledger's instrumentation stays truthful, so the checkers must find
//! the damage the way they would find a real regression.
//!
//! How the parts learn the flags: every affected part's config struct carries a
//! `bugs: Bugs` field marked `#[serde(skip)]` (so it is never a key of that part's TOML
//! section, and every existing `..XConfig::default()` call site keeps compiling). The
//! pipeline copies the scenario's `[bugs]` into each config (`pipeline::plant`) before it builds
//! the hosts. A part tests its flag where the bug lives, and nowhere else.

use serde::{Deserialize, Serialize};

/// Which bugs are planted. All off by default: a scenario without `[bugs]` runs the
/// correct pipeline.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Bugs {
    /// The aggregator (in_forward) sends `{"ack": chunk}` as soon as a frame is decoded,
    /// before the buffer has taken it; when the buffer then refuses the records
    /// (`overflow_action` throw_exception), the acknowledged records are gone.
    pub aggregator_ack_before_buffer: bool,
    /// The shipper LREMs a batch from the processing list before Dash0 answered 2xx; when
    /// the export then fails for good (retries expired), there is nothing to give back.
    pub shipper_delete_before_2xx: bool,
    /// The agent gives a chunk up at its first failed flush, whatever `retry_limit` says
    /// (cause `agent_retry_limit`).
    pub agent_no_retry: bool,
    /// The collector exports spans with their parent link dropped: every span becomes a
    /// root of its trace.
    pub collector_drop_traceparent: bool,
    /// The worker (the API's job flow at the Redis hop) starts a fresh trace instead of
    /// continuing the `traceparent` stored in the job hash.
    pub api_new_trace_at_redis_hop: bool,
    /// Dash0 answers 200 to one log batch but stores none of it (and tells nobody).
    pub dash0_drop_one_batch: bool,
    /// The aggregator writes one chunk to Redis with its first record missing, and records
    /// no cause for it.
    pub silent_record_loss: bool,
    /// The aggregator's buffer never asks `storable?`: it accepts chunks beyond
    /// `total_limit_size` (nothing is lost, memory just grows; the `bounds` check names it).
    pub aggregator_ignores_buffer_limit: bool,
    /// The collector exports every metric batch Dash0 accepted once more (as a retry after
    /// a lost answer would): Dash0 stores it twice. Cumulative points are unharmed; delta
    /// points are counted twice (the `metrics` check names them).
    pub(crate) collector_resends_delivered_metrics: bool,
}

impl Bugs {
    /// Whether any bug is planted.
    pub fn any(&self) -> bool {
        self.names().next().is_some()
    }

    /// The planted bugs' names, as `[bugs]` spells them.
    pub fn names(&self) -> impl Iterator<Item = &'static str> {
        [
            (self.aggregator_ack_before_buffer, "aggregator_ack_before_buffer"),
            (self.shipper_delete_before_2xx, "shipper_delete_before_2xx"),
            (self.agent_no_retry, "agent_no_retry"),
            (self.collector_drop_traceparent, "collector_drop_traceparent"),
            (self.api_new_trace_at_redis_hop, "api_new_trace_at_redis_hop"),
            (self.dash0_drop_one_batch, "dash0_drop_one_batch"),
            (self.silent_record_loss, "silent_record_loss"),
            (self.aggregator_ignores_buffer_limit, "aggregator_ignores_buffer_limit"),
            (self.collector_resends_delivered_metrics, "collector_resends_delivered_metrics"),
        ]
        .into_iter()
        .filter_map(|(on, name)| on.then_some(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bugs_parse_from_toml_refuse_unknown_keys_and_default_off() {
        let bugs: Bugs = toml::from_str("agent_no_retry = true").unwrap();
        assert_eq!(bugs.names().collect::<Vec<_>>(), vec!["agent_no_retry"]);
        assert!(!Bugs::default().any());
        let error = toml::from_str::<Bugs>("agent_no_retries = true").unwrap_err();
        assert!(error.to_string().contains("unknown field `agent_no_retries`"), "{error}");
    }
}
