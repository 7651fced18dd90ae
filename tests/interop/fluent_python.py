"""Sends records to a Fluent Forward server with Debian's python3-fluent-logger (Message mode).

Run by tests/interop.rs with Debian's /usr/bin/python3 (the package installs there):
    python3 fluent_python.py HOST PORT SOURCE COUNT T0_SECONDS
Each record i is obsim's log record shape (FIDELITY.md "Interop clients") with EventTime
T0 + i + 0.25 s. Prints one JSON line {"sent": n}; exits 1 naming the first failed emit.
"""
import json
import sys

from fluent import sender


def record(source, i, t0):
    """Record i of SOURCE: distinct ids, its time in nanoseconds (same as the entry's)."""
    time_ns = (t0 + i) * 1_000_000_000 + 250_000_000
    return {
        "time_unix_nano": time_ns,
        "observed_time_unix_nano": time_ns,
        "severity": "INFO",
        "body": f"fluent-logger-python record {i}",
        "trace_id": f"{source:08x}{i:024x}",
        "span_id": f"{i + 1:016x}",
        "job_id": f"job-00000000-0000-4000-8000-{source:04x}{i:08x}",
        "obsim.source": source,
        "obsim.seq": i,
        "attributes": {"client": "fluent-logger-python", "n": i},
    }


def main():
    host, port, source, count, t0 = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    # README "Real clients" shows these lines.
    logger = sender.FluentSender("interop", host=host, port=port, nanosecond_precision=True)
    for i in range(count):
        if not logger.emit_with_time("python", t0 + i + 0.25, record(source, i, t0)):
            sys.exit(f"emit {i} failed: {logger.last_error!r}")
    logger.close()
    print(json.dumps({"sent": count}))


if __name__ == "__main__":
    main()
