//! Loss causes: why a part dropped records, one variant per reason a part records.
//!
//! Why an enum: a loss is accepted or not by its cause (`[expect] allow_loss`), so a cause
//! misspelt in a part or in a scenario file would silently turn an accepted loss into a
//! failure or, worse, a scenario into one that accepts nothing it names. As a type, a part
//! cannot record a cause that does not exist, and a scenario naming one is refused at load
//! with the list of valid causes (ARCHITECTURE.md §10).
//!
//! A silent loss (`lost_silently`: no part recorded a cause) is not a cause but an outcome
//! of the ledger's accounting; it has no variant here.

named_enum! {
    /// Why a part dropped records. Its string form (`as_str`, serde, `Display`) is what
    /// scenario files, result.json and reports spell.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub enum LossCause {
        /// The app's host crashed while records were still in its memory queues.
        AppCrashUnpersisted = "app_crash_unpersisted",
        /// A dev host's HTTP post to the aggregator failed on every attempt.
        AppDevHttpFailed = "app_dev_http_failed",
        /// The agent fell so far behind the app's log file that rotation took lines it had
        /// not read yet.
        AppLogRotated = "app_log_rotated",
        /// The app's span queue to the collector was full: the spans it could not take.
        AppSpanQueueFull = "app_span_queue_full",
        /// The agent's host crashed while chunks were only in its memory buffer.
        AgentCrashUnpersisted = "agent_crash_unpersisted",
        /// The agent could not encode a record as a msgpack map (Fluent Bit's parser drops it).
        AgentUnencodable = "agent_unencodable",
        /// `storage.total_limit_size`: the agent evicted its oldest chunk to make room for
        /// new data, or refused new data it could not make room for.
        AgentStorageLimit = "agent_storage_limit",
        /// The agent spent `Retry_Limit` on connection or I/O failures.
        AgentRetryLimit = "agent_retry_limit",
        /// The agent spent `Retry_Limit` because the aggregator refused its shared key.
        AuthRejected = "auth_rejected",
        /// The agent wrote a chunk without `Require_ack_response` and no next hop took it.
        AgentUnackedWrite = "agent_unacked_write",
        /// The agent (memory storage) exited after SIGTERM and `Grace` with chunks unsent.
        AgentGraceExpired = "agent_grace_expired",
        /// The collector's host crashed while batches were in its memory queue.
        CollectorCrashUnpersisted = "collector_crash_unpersisted",
        /// The collector's sending queue was full: the batch was refused.
        CollectorQueueFull = "collector_queue_full",
        /// The collector's retries ran out (`max_elapsed_time`).
        CollectorRetryExpired = "collector_retry_expired",
        /// Dash0 refused the collector's batch with a non-retryable code.
        CollectorRejected = "collector_rejected",
        /// A retryable failure at the collector while `retry_on_failure` is disabled.
        CollectorRetryDisabled = "collector_retry_disabled",
        /// The collector shut down (SIGTERM) before the batch was sent: its last attempt
        /// failed or it was waiting to retry.
        CollectorShutdown = "collector_shutdown",
        /// The aggregator's host crashed while chunks were only in its memory buffer.
        AggregatorCrashUnpersisted = "aggregator_crash_unpersisted",
        /// The aggregator discarded its oldest chunk over `total_limit_size`
        /// (`overflow_action drop_oldest_chunk`).
        AggregatorOverflow = "aggregator_overflow",
        /// The aggregator's in_forward skipped an event it judged invalid
        /// (`skip_invalid_event`: a float time, as fluent-logger's `milliseconds` sends).
        AggregatorInvalidEvent = "aggregator_invalid_event",
        /// The aggregator's retries of a Redis write ran out (server or connection errors).
        AggregatorRetryExpired = "aggregator_retry_expired",
        /// The aggregator's retries ran out while Redis refused writes at `maxmemory` (OOM).
        RedisOom = "redis_oom",
        /// Redis crashed holding values it had not persisted (per its `appendfsync`).
        RedisCrashUnpersisted = "redis_crash_unpersisted",
        /// The shipper's host crashed while a batch was only in its memory.
        ShipperCrashUnpersisted = "shipper_crash_unpersisted",
        /// Dash0 answered the shipper with a non-retryable 4xx: the batch is removed.
        ShipperRejected4xx = "shipper_rejected_4xx",
        /// Dash0 answered the shipper with a non-retryable 5xx (500, 501, 505…).
        ShipperRejected5xx = "shipper_rejected_5xx",
        /// Dash0's host crashed while records were only in its memory.
        Dash0CrashUnpersisted = "dash0_crash_unpersisted",
        /// Dash0 refused records for a timestamp outside its accepted range.
        Dash0TimestampRange = "dash0_timestamp_range",
    }
}

/// Ordered by the string form, so everything listed by cause (the ledger's outcomes, the
/// verdict's lines, reports) keeps the alphabetical order it had when causes were strings.
impl Ord for LossCause {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl PartialOrd for LossCause {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// In the JSON Schema a cause is a string from the list of valid causes (`obsim schema`).
impl schemars::JsonSchema for LossCause {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "LossCause".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A loss cause: why a part dropped records (README, \"Set-up\": how losses are named).",
            "type": "string",
            "enum": LossCause::NAMES,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_cause_has_one_distinct_string_form_everywhere() {
        let mut names: Vec<&str> = LossCause::NAMES.to_vec();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), LossCause::ALL.len(), "no two causes share a name");
        for (&cause, &name) in LossCause::ALL.iter().zip(LossCause::NAMES) {
            assert_eq!(cause.as_str(), name);
            assert_eq!(cause.to_string(), name);
            assert_eq!(serde_json::to_value(cause).unwrap(), serde_json::Value::String(name.to_string()));
            assert_eq!(serde_json::from_value::<LossCause>(name.into()).unwrap(), cause);
            assert_eq!(LossCause::from_name(name), Some(cause));
            assert!(name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'), "{name}");
        }
        assert_eq!(LossCause::from_name("lost_silently"), None, "a silent loss is an outcome, not a cause");
    }

    #[test]
    fn causes_sort_by_their_names() {
        let mut sorted = LossCause::ALL.to_vec();
        sorted.sort();
        let names: Vec<&str> = sorted.iter().map(|cause| cause.as_str()).collect();
        let mut expected = LossCause::NAMES.to_vec();
        expected.sort_unstable();
        assert_eq!(names, expected);
    }
}
