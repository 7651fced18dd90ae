#!/usr/bin/env python3
"""Seeds fuzz/corpus/<target>/ from the repository's fixtures (README "Fuzzing").

Run from the repository root: python3 fuzz/seed.py. It only adds files (named seed-*); the
fuzzer's own finds and kept crashes are left alone. Chunked targets (forward_stream,
resp_request, resp_reply) read byte 0 as the number of chunk sizes that follow
(obsim::fuzzing's `chunked`): each seed is written whole (0) and in chunks of 1, 7, 17.
"""
import glob
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(ROOT, "fuzz", "corpus")
WHOLE = bytes([0])
CHUNKS = bytes([3, 0, 6, 16])


def read(path):
    with open(os.path.join(ROOT, path), "rb") as f:
        return f.read()


def write(target, name, data):
    os.makedirs(os.path.join(CORPUS, target), exist_ok=True)
    with open(os.path.join(CORPUS, target, "seed-" + name), "wb") as f:
        f.write(data)


def unshow(snap):
    """The bytes of an insta snapshot written by tests/resp_protocol.rs's `show`."""
    body = snap.decode().split("---\n", 2)[2]
    text = body.replace("\n", "")
    out = bytearray()
    i = 0
    while i < len(text):
        if text.startswith("\\r", i):
            out += b"\r"; i += 2
        elif text.startswith("\\n", i):
            out += b"\n"; i += 2
        elif text.startswith("\\x", i):
            out.append(int(text[i + 2:i + 4], 16)); i += 4
        else:
            out += text[i].encode(); i += 1
    return bytes(out)


def stem(path):
    return re.sub(r"(\.snap)?\.(bin|pb|resp|aof|snap|toml)$", "", os.path.basename(path))


def chunked(target, name, data):
    write(target, name + "-whole", WHOLE + data)
    write(target, name + "-chunks", CHUNKS + data)


def main():
    client = ["message", "forward", "packed_forward", "compressed_packed_forward", "ping"]
    frames = [("fixture-" + n, read(f"fixtures/forward/{n}.snap.bin")) for n in client]
    frames += [("real-" + stem(p), read(p)) for p in sorted(glob.glob(os.path.join(ROOT, "fixtures/forward/real_clients/*.bin")))]
    for name, data in frames:
        chunked("forward_stream", name, data)
        write("roundtrip_forward", name, data)
    chunked("forward_stream", "all-frames", b"".join(data for _, data in frames))
    for n in ["helo", "ping", "pong", "pong_refused", "ack"]:
        write("forward_handshake", n, read(f"fixtures/forward/{n}.snap.bin"))

    requests = [("rpush-chunk", read("fixtures/aggregator/rpush_chunk.resp")),
                ("appendonly-aof", read("fixtures/redis/appendonly.aof")),
                ("inline", b"PING\r\nSET k \"a b\\x41\"\r\n  \r\nGET 'k'\n")]
    for name, data in requests:
        chunked("resp_request", name, data)
        write("roundtrip_resp_request", name, data)

    replies = [(stem(p), unshow(read(p))) for p in sorted(glob.glob(os.path.join(ROOT, "fixtures/resp/*.snap")))]
    for name, data in replies:
        write("resp_reply", name + "-whole", WHOLE + data)
        write("roundtrip_resp_reply", name, data)
    chunked("resp_reply", "all-replies", b"".join(data for _, data in replies))

    otlp = [("otlp_logs", 0, "fixtures/otlp/logs.snap.pb"),
            ("otlp_logs", 0, "fixtures/shipper/export_logs_request.snap.pb"),
            ("otlp_traces", 1, "fixtures/otlp/traces.snap.pb"),
            ("otlp_metrics", 2, "fixtures/otlp/metrics.snap.pb")]
    for target, signal, path in otlp:
        name = os.path.basename(os.path.dirname(path)) + "-" + stem(path)
        write(target, name, read(path))
        write("roundtrip_otlp", name, bytes([signal]) + read(path))

    for path in sorted(glob.glob(os.path.join(ROOT, "scenarios/*.toml"))) + \
            sorted(glob.glob(os.path.join(ROOT, "fixtures/broken/*.toml"))) + \
            sorted(glob.glob(os.path.join(ROOT, "fixtures/regressions/*.toml"))):
        folder = os.path.basename(os.path.dirname(path))
        write("scenario", folder + "-" + stem(path), read(path))


if __name__ == "__main__":
    main()
