// Sends records to a Fluent Forward server with npm @fluent-org/logger (version pinned in
// package.json), run by tests/interop.rs:
//   node fluent_org.js '{"host":…,"port":…,"source":…,"count":…,"t0":…,"mode":"PackedForward",
//                        "ack":true,"sharedKey":null,"bigTime":false}'
// Record i is obsim's log record shape (FIDELITY.md "Interop clients") with EventTime
// t0 + i s + 250 ms. @msgpack/msgpack 2.8 writes integers past 2^53 as float64, so
// time_unix_nano is written as milliseconds since t0 in a safe integer unless "bigTime"
// asks for the real nanoseconds (which arrive as a float: obsim keeps no such record).
// Prints one JSON line: {"sent": n, "acked": bool} (exit 0 once every emit resolved, with
// ack: once every ack came), or {"error": name, "message": …} (exit 3) on a socket error.
"use strict";
const { FluentClient, EventTime } = require("@fluent-org/logger");

const config = JSON.parse(process.argv[2]);

/** Record i of the run: distinct ids; its time in nanoseconds. */
function record(i) {
  const hex = (n, width) => n.toString(16).padStart(width, "0");
  const seconds = config.t0 + i;
  const timeNs = config.bigTime ? seconds * 1e9 + 250e6 : i * 1000 + 250;
  return {
    time_unix_nano: timeNs,
    observed_time_unix_nano: timeNs,
    severity: "INFO",
    body: `fluent-org-logger ${config.mode} record ${i}`,
    trace_id: hex(config.source, 8) + hex(i, 24),
    span_id: hex(i + 1, 16),
    job_id: `job-00000000-0000-4000-8000-${hex(config.source, 4)}${hex(i, 8)}`,
    "obsim.source": config.source,
    "obsim.seq": i,
    attributes: { client: "fluent-org-logger", n: i },
  };
}

async function main() {
  // README "Real clients" shows these lines.
  const logger = new FluentClient("interop", {
    socket: { host: config.host, port: config.port, timeout: 10000 },
    eventMode: config.mode,
    ack: config.ack ? { ackTimeout: 10000 } : undefined,
    security: config.sharedKey ? { clientHostname: "interop-client", sharedKey: config.sharedKey } : undefined,
  });
  logger.socketOn("error", error => {
    console.log(JSON.stringify({ error: error.name, message: error.message }));
    process.exit(3);
  });
  const emits = [];
  for (let i = 0; i < config.count; i++) {
    emits.push(logger.emit("node", record(i), new EventTime(config.t0 + i, 250000000)));
  }
  await Promise.all(emits);
  await logger.shutdown();
  console.log(JSON.stringify({ sent: config.count, acked: !!config.ack }));
  // The client's reconnect timer would keep node alive.
  process.exit(0);
}

main().catch(error => {
  console.log(JSON.stringify({ error: error.name, message: error.message }));
  process.exit(1);
});
