// Sends records to a Fluent Forward server with npm fluent-logger 3.4.x (version pinned in
// package.json), run by tests/interop.rs:
//   node fluent_logger.js '{"host":…,"port":…,"source":…,"count":…,"t0":…,
//                           "mode":"PackedForward","ack":true,"time":"eventTime"}'
// "time" says how each entry's time is given: "eventTime" (EventTime t0 + i s + 250 ms),
// "float" (the number t0 + i + 0.25: msgpack-lite writes it as a float64 of seconds),
// "milliseconds" (the option milliseconds: true with the Date t0 + i s + 250 ms: the
// client sends the float64 of MILLIseconds) or "seconds" (the same Date without it: integer
// seconds). Record i is obsim's log record shape (FIDELITY.md "Interop clients");
// time_unix_nano is a uint64 (int64-buffer's Uint64BE, which msgpack-lite writes as such).
// Prints {"sent": n, "acked": bool} once every emit's callback came without error (with
// requireAckResponse: after its ack), or {"error": name, "message": …} and exits 3.
"use strict";
const logger = require("fluent-logger");
const { Uint64BE } = require("int64-buffer");

const config = JSON.parse(process.argv[2]);

/** Record i of the run: distinct ids; its time in nanoseconds. */
function record(i) {
  const hex = (n, width) => n.toString(16).padStart(width, "0");
  const timeNs = new Uint64BE(((BigInt(config.t0 + i) * 1000000000n) + 250000000n).toString(), 10);
  return {
    time_unix_nano: timeNs,
    observed_time_unix_nano: timeNs,
    severity: "INFO",
    body: `fluent-logger ${config.mode} record ${i}`,
    trace_id: hex(config.source, 8) + hex(i, 24),
    span_id: hex(i + 1, 16),
    job_id: `job-00000000-0000-4000-8000-${hex(config.source, 4)}${hex(i, 8)}`,
    "obsim.source": config.source,
    "obsim.seq": i,
    attributes: { client: "fluent-logger", n: i },
  };
}

/** Entry i's time as the run's "time" kind gives it to emit. */
function entryTime(i) {
  switch (config.time) {
    case "eventTime":
      return new logger.EventTime(config.t0 + i, 250000000);
    case "float":
      return config.t0 + i + 0.25;
    default:
      return new Date((config.t0 + i) * 1000 + 250);
  }
}

function fail(error) {
  console.log(JSON.stringify({ error: error.name, message: error.message }));
  process.exit(3);
}

// README "Real clients" shows these lines.
const sender = logger.createFluentSender("interop", {
  host: config.host,
  port: config.port,
  timeout: 10.0,
  eventMode: config.mode,
  requireAckResponse: !!config.ack,
  ackResponseTimeout: 10000,
  milliseconds: config.time === "milliseconds",
});
sender.on("error", fail);
let done = 0;
for (let i = 0; i < config.count; i++) {
  sender.emit("node", record(i), entryTime(i), error => {
    if (error) fail(error);
    done += 1;
    if (done === config.count) {
      sender.end(null, null, () => {
        console.log(JSON.stringify({ sent: done, acked: !!config.ack }));
        // The sender's flush timer would keep node alive.
        process.exit(0);
      });
    }
  });
}
