//! Event kinds: what the world's event log records, one variant per kind of event.
//!
//! Why an enum: the event log is read by tests, by people debugging a run and by the hash
//! that identifies a run; a kind misspelt at one call site would silently escape every
//! filter on it. As a type, every kind is declared once here with the part that records it
//! (ARCHITECTURE.md §10). The string form is what `events.log` prints and what
//! the run's hash covers: changing one changes every event-log hash, so it never changes
//! by accident.

named_enum! {
    /// A kind of event in the event log, as `<who>.<what>`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
    pub enum EventKind {
        // The world and the harness.
        /// A host's software started (or restarted): its incarnation.
        HostStart = "host.start",
        /// The harness sent a host SIGTERM (a restart): SIGKILL follows after the draining time.
        HostTerminate = "host.terminate",
        /// The harness SIGKILLed a host's software (its kernel and disk live on).
        HostKill = "host.kill",
        /// The harness cut a host's power (unsynced writes gone, peers half-open).
        HostPowerLoss = "host.power_loss",
        /// The harness started a host's software again (powered on if it was off).
        HostRestart = "host.restart",
        /// The harness partitioned two hosts.
        LinkPartition = "link.partition",
        /// The harness repaired a partition.
        LinkRepair = "link.repair",
        /// A kernel gave up: a SYN got no answer, or data stayed unacknowledged past the
        /// connection's user timeout (the connection is abandoned, its peer half-open).
        TcpTimeout = "tcp.timeout",
        /// A segment reached a kernel that had forgotten the connection: reset.
        TcpReset = "tcp.reset",
        /// A scheduled fault started.
        FaultStart = "fault.start",
        /// A scheduled fault ended.
        FaultEnd = "fault.end",
        /// A target's effective state while other faults also hold it.
        FaultCompose = "fault.compose",
        /// The load phase ended: faults healed, the drain began.
        DrainStart = "drain.start",
        /// `obsim probe` began.
        ProbeStart = "probe.start",
        /// The probe's hub accepted a node.
        ProbeAccept = "probe.accept",
        /// The probe's node got an echo back.
        ProbeEcho = "probe.echo",
        /// Recorded only by tests of the world itself, never by a part.
        Test = "test",

        // The app.
        /// The client finished submitting jobs.
        AppClientDone = "app.client_done",
        /// The API could not submit a job.
        AppSubmitFailed = "app.submit_failed",
        /// The API moved its unconsumed completions back after a restart.
        AppCompletionsRecovered = "app.completions_recovered",
        /// The API read a completion for a job it cannot find.
        AppCompletionUnknown = "app.completion_unknown",
        /// A worker's completion was confirmed in Redis.
        AppCompletionConfirmed = "app.completion_confirmed",
        /// A worker moved its in-progress jobs back to the queue after a restart.
        AppJobsRequeued = "app.jobs_requeued",
        /// A worker or the API got a Redis error and waits to retry.
        AppRedisError = "app.redis_error",
        /// A worker took a job without a valid job hash.
        AppJobInvalid = "app.job_invalid",
        /// A worker took a job that had already completed.
        AppJobAlreadyCompleted = "app.job_already_completed",
        /// A worker took a job another worker had claimed.
        AppJobClaimedElsewhere = "app.job_claimed_elsewhere",
        /// Rotation took log lines the agent had not read (`app_log_rotated`).
        AppLogRotated = "app.log_rotated",
        /// The app's span queue was full: spans dropped (`app_span_queue_full`).
        AppSpanQueueFull = "app.span_queue_full",
        /// The app's metrics queue was full: points dropped.
        AppMetricsQueueFull = "app.metrics_queue_full",
        /// A dev host's post failed on every attempt (`app_dev_http_failed`).
        AppDevHttpFailed = "app.dev_http_failed",
        /// A dev host finished emitting.
        AppDevDone = "app.dev_done",

        // The agent (Fluent Bit).
        /// The agent started, with its storage and retry settings.
        AgentStart = "agent.start",
        /// The agent paused its input at `mem_buf_limit`.
        AgentPause = "agent.pause",
        /// The agent resumed its input below `mem_buf_limit`.
        AgentResume = "agent.resume",
        /// The agent's `mem_buf_limit` changed (a backpressure fault).
        AgentMemBufLimit = "agent.mem_buf_limit",
        /// The agent loaded a chunk from disk at start.
        AgentLoad = "agent.load",
        /// The agent found a chunk file it cannot load, and removed it.
        AgentLoadCorrupt = "agent.load_corrupt",
        /// The agent's disk was full writing a chunk.
        AgentDiskFull = "agent.disk_full",
        /// The agent sealed a chunk.
        AgentFlush = "agent.flush",
        /// The agent dropped a chunk with a loss cause.
        AgentDrop = "agent.drop",
        /// The agent tries to send a chunk.
        AgentAttempt = "agent.attempt",
        /// The agent connected to the aggregator.
        AgentConnect = "agent.connect",
        /// The aggregator acknowledged a chunk (`Require_ack_response`).
        AgentAck = "agent.ack",
        /// The agent wrote a chunk without waiting for an acknowledgement.
        AgentSent = "agent.sent",
        /// A send failed; the agent retries later.
        AgentRetry = "agent.retry",
        /// A send failed and `Retry_Limit` is spent.
        AgentGiveUp = "agent.give_up",
        /// The agent closed an idle keepalive connection.
        AgentKeepaliveClose = "agent.keepalive_close",
        /// Fluent Bit warned about a setting at start and used its default instead.
        AgentConfigWarning = "agent.config_warning",
        /// The agent refused new data: `storage.total_limit_size` left no room for it.
        AgentRefused = "agent.refused",
        /// The agent received SIGTERM: its input stops, it flushes for up to `Grace`.
        AgentShutdown = "agent.shutdown",
        /// The agent exited after SIGTERM, naming what it left unsent.
        AgentExit = "agent.exit",

        // The collector (OTel Collector).
        /// The collector started, with its batch and queue settings.
        CollectorStart = "collector.start",
        /// The collector tries to export a batch.
        CollectorAttempt = "collector.attempt",
        /// An export failed; the collector retries later.
        CollectorRetry = "collector.retry",
        /// A batch was exported.
        CollectorExported = "collector.exported",
        /// A batch was given up with a loss cause.
        CollectorDropped = "collector.dropped",
        /// The collector resent a delivered metrics batch (a planted bug).
        CollectorResent = "collector.resent",
        /// The collector shuts down on SIGTERM (draining), or has drained and exits.
        CollectorShutdown = "collector.shutdown",
        /// The collector's gRPC channel changed state (connected, failed, backing off).
        CollectorChannel = "collector.channel",

        // The aggregator (Fluentd).
        /// The aggregator started, with its buffer settings.
        AggregatorStart = "aggregator.start",
        /// The aggregator's `total_limit_size` changed (a backpressure fault).
        AggregatorTotalLimit = "aggregator.total_limit",
        /// An agent authenticated.
        AggregatorAuth = "aggregator.auth",
        /// An agent's shared key was refused.
        AggregatorAuthRejected = "aggregator.auth_rejected",
        /// A connection's bytes are not a Forward stream.
        AggregatorBadStream = "aggregator.bad_stream",
        /// A Forward frame was malformed or out of place; the connection is closed.
        AggregatorBadFrame = "aggregator.bad_frame",
        /// Some entries of a frame are not log records.
        AggregatorBadRecords = "aggregator.bad_records",
        /// Events skipped as invalid (`skip_invalid_event`: a float time).
        AggregatorInvalidEvent = "aggregator.invalid_event",
        /// Events stored with an odd time (far in the future, or outside an EventTime).
        AggregatorOddTime = "aggregator.odd_time",
        /// A connection was closed after `connection_idle_timeout` of silence.
        AggregatorIdleClose = "aggregator.idle_close",
        /// The buffer refused records (`overflow_action throw_exception`).
        AggregatorOverflowRefused = "aggregator.overflow_refused",
        /// The buffer overflowed after the records were acknowledged (a planted bug).
        AggregatorOverflowAfterAck = "aggregator.overflow_after_ack",
        /// The buffer blocked its input (`overflow_action block`).
        AggregatorBlock = "aggregator.block",
        /// The buffer unblocked its input.
        AggregatorUnblock = "aggregator.unblock",
        /// The buffer had no queued chunk to drop for `drop_oldest_chunk`.
        AggregatorDropNone = "aggregator.drop_none",
        /// The buffer dropped a chunk with a loss cause.
        AggregatorDrop = "aggregator.drop",
        /// A dev host's HTTP post was accepted.
        AggregatorHttp = "aggregator.http",
        /// A dev host's HTTP post was malformed.
        AggregatorHttpBadRequest = "aggregator.http_bad_request",
        /// The HTTP input stopped.
        AggregatorHttpDown = "aggregator.http_down",
        /// The output connected to Redis.
        AggregatorRedisConnect = "aggregator.redis_connect",
        /// A chunk was written to Redis.
        AggregatorFlush = "aggregator.flush",
        /// A Redis write failed; the output retries later.
        AggregatorRetry = "aggregator.retry",
        /// The retries hit their limit: every queued chunk is dropped (`clear_queue!`).
        AggregatorRetryLimit = "aggregator.retry_limit",
        /// SIGTERM: the inputs closed; the buffer is flushed if `flush_at_shutdown`.
        AggregatorShutdown = "aggregator.shutdown",
        /// The aggregator exited after its shutdown, with what it left behind.
        AggregatorExit = "aggregator.exit",
        /// A file buffer chunk left by an earlier process was resumed.
        AggregatorResume = "aggregator.resume",
        /// A file buffer chunk could not be written or read back.
        AggregatorBufferFile = "aggregator.buffer_file",

        // Redis.
        /// Redis listens, with its persistence and `maxmemory`.
        RedisListen = "redis.listen",
        /// Redis replayed its append-only file at start.
        RedisAofLoad = "redis.aof_load",
        /// Redis loaded its snapshot (`dump.rdb`) at start.
        RedisRdbLoad = "redis.rdb_load",
        /// A save point fired: Redis saved a snapshot in the background.
        RedisBgsave = "redis.bgsave",
        /// Redis could not write a snapshot (disk full).
        RedisSaveError = "redis.save_error",
        /// Redis acted on SIGTERM: what it persists before it exits.
        RedisShutdown = "redis.shutdown",
        /// Redis exited after SIGTERM.
        RedisExit = "redis.exit",
        /// Redis could not write its append-only file (disk full).
        RedisAofWriteError = "redis.aof_write_error",
        /// Redis's `maxmemory` changed (a backpressure fault).
        RedisMaxmemory = "redis.maxmemory",
        /// Redis refused a connection at `maxclients`.
        RedisRefuse = "redis.refuse",
        /// A client connected to Redis.
        RedisConnect = "redis.connect",
        /// A client's connection to Redis ended.
        RedisDisconnect = "redis.disconnect",

        // The shipper.
        /// The shipper started.
        ShipperStart = "shipper.start",
        /// The shipper moved its unsettled values back to the buffer.
        ShipperRecover = "shipper.recover",
        /// The shipper could not move them back at `maxmemory`: left in place.
        ShipperRecoverOom = "shipper.recover_oom",
        /// The shipper read values in place at `maxmemory`.
        ShipperReadInPlace = "shipper.read_in_place",
        /// The shipper moved a value it cannot parse to the dead-letter list.
        ShipperDeadLetter = "shipper.dead_letter",
        /// A post to Dash0 failed; the shipper retries later.
        ShipperRetry = "shipper.retry",
        /// A batch reached Dash0.
        ShipperDelivered = "shipper.delivered",
        /// Dash0 refused a batch for good (`shipper_rejected_4xx`/`_5xx`).
        ShipperRejected = "shipper.rejected",
        /// Retries ran out; the batch went back to Redis.
        ShipperRetryExpired = "shipper.retry_expired",
        /// The shipper lost its Redis connection and reconnects.
        ShipperRedisDown = "shipper.redis_down",

        // Dash0.
        /// Dash0 listens on one protocol.
        Dash0Listen = "dash0.listen",
        /// Dash0 refused a connection over its connection limit.
        Dash0HttpConnectionRefused = "dash0.http_connection_refused",
        /// Dash0's behaviour changed (a Dash0 fault).
        Dash0Control = "dash0.control",
        /// Dash0 stored an export request.
        Dash0Ingest = "dash0.ingest",
        /// Dash0 refused an export request with a status.
        Dash0Refused = "dash0.refused",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_one_distinct_string_form() {
        let mut names: Vec<&str> = EventKind::NAMES.to_vec();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), EventKind::ALL.len(), "no two kinds share a name");
        for (&kind, &name) in EventKind::ALL.iter().zip(EventKind::NAMES) {
            assert_eq!((kind.as_str(), kind.to_string()), (name, name.to_string()));
            assert_eq!(EventKind::from_name(name), Some(kind));
            assert!(name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'.'));
        }
        assert_eq!(format!("[{:<12}]", EventKind::HostKill), "[host.kill   ]", "Display pads like a str");
    }
}
