//! RESP2 server side, tested against the bytes the real `redis` crate client writes.
//!
//! Why: the simulated Redis is only useful if the unchanged `redis` client (used by the
//! aggregator and shipper models) talks to it. Every command ARCHITECTURE.md's redis row lists is
//! built with the `redis` crate and decoded here; our replies are parsed by the `redis`
//! crate's own parser; and a real `MultiplexedConnection` runs its connection handshake and
//! a few commands against a tiny server made of this module's decoder and encoder.

use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use obsim::proto::resp::errors;
use obsim::proto::resp::{
    Check, Command, Decoder, Framing, ProtocolError, Reply, RequestLimits, check_request, parse_reply,
};
use proptest::prelude::*;
use redis::Value;

/// Decodes every command in `bytes` (one buffer, like one read), failing on leftovers.
fn decode_all(bytes: &[u8]) -> Vec<Command> {
    let mut buf = BytesMut::from(bytes);
    let mut out = Vec::new();
    Decoder::default().decode_all(&mut buf, &mut out).expect("valid request bytes");
    assert!(buf.is_empty(), "left over: {:?}", String::from_utf8_lossy(&buf));
    out
}

fn argv_of(command: &Command) -> Vec<Vec<u8>> {
    command.argv().iter().map(|a| a.to_vec()).collect()
}

fn words(argv: &[&str]) -> Vec<Vec<u8>> {
    argv.iter().map(|w| w.as_bytes().to_vec()).collect()
}

/// Asserts that the `redis` crate's packed bytes of `cmd` decode to exactly `expected`.
#[track_caller]
fn assert_cmd(cmd: &redis::Cmd, expected: &[&str]) {
    let packed = cmd.get_packed_command();
    let commands = decode_all(&packed);
    assert_eq!(commands.len(), 1);
    assert_eq!(argv_of(&commands[0]), words(expected), "packed: {:?}", String::from_utf8_lossy(&packed));
    assert_eq!(commands[0].framing(), Framing::Multibulk);
    // Our own encoder writes the same bytes as the client.
    let mut ours = BytesMut::new();
    commands[0].encode(&mut ours);
    assert_eq!(&ours[..], &packed[..]);
}

#[test]
fn list_commands_from_the_redis_crate() {
    assert_cmd(redis::cmd("LPUSH").arg("jobs").arg("job-1").arg("job-2"), &["LPUSH", "jobs", "job-1", "job-2"]);
    assert_cmd(redis::cmd("RPUSH").arg("logs").arg(&b"batch"[..]), &["RPUSH", "logs", "batch"]);
    assert_cmd(
        redis::cmd("LMOVE").arg("logs").arg("logs:processing").arg("LEFT").arg("RIGHT"),
        &["LMOVE", "logs", "logs:processing", "LEFT", "RIGHT"],
    );
    assert_cmd(
        redis::cmd("BLMOVE").arg("jobs").arg("proc").arg("LEFT").arg("RIGHT").arg(5.0),
        &["BLMOVE", "jobs", "proc", "LEFT", "RIGHT", "5.0"],
    );
    assert_cmd(
        redis::cmd("BLMOVE").arg("jobs").arg("proc").arg("RIGHT").arg("LEFT").arg(0.25_f64),
        &["BLMOVE", "jobs", "proc", "RIGHT", "LEFT", "0.25"],
    );
    assert_cmd(
        redis::cmd("LREM").arg("logs:processing").arg(1).arg("batch-7"),
        &["LREM", "logs:processing", "1", "batch-7"],
    );
    assert_cmd(redis::cmd("LRANGE").arg("jobs").arg(0).arg(-1), &["LRANGE", "jobs", "0", "-1"]);
    assert_cmd(redis::cmd("LLEN").arg("jobs"), &["LLEN", "jobs"]);
    // The typed helpers the models may use write the same shape.
    assert_cmd(&redis::Cmd::lpush("jobs", "job-3"), &["LPUSH", "jobs", "job-3"]);
    assert_cmd(&redis::Cmd::rpush("jobs", &["a", "b"]), &["RPUSH", "jobs", "a", "b"]);
    assert_cmd(&redis::Cmd::llen("jobs"), &["LLEN", "jobs"]);
    assert_cmd(&redis::Cmd::lrange("jobs", 0, 9), &["LRANGE", "jobs", "0", "9"]);
    assert_cmd(&redis::Cmd::lrem("jobs", 0, "x"), &["LREM", "jobs", "0", "x"]);
}

#[test]
fn hash_commands_from_the_redis_crate() {
    assert_cmd(
        redis::cmd("HSET")
            .arg("job:job-1")
            .arg("status")
            .arg("queued")
            .arg("traceparent")
            .arg("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
        &[
            "HSET",
            "job:job-1",
            "status",
            "queued",
            "traceparent",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        ],
    );
    assert_cmd(redis::cmd("HGET").arg("job:job-1").arg("status"), &["HGET", "job:job-1", "status"]);
    assert_cmd(redis::cmd("HGETALL").arg("job:job-1"), &["HGETALL", "job:job-1"]);
    assert_cmd(
        redis::cmd("HDEL").arg("job:job-1").arg("worker").arg("machine"),
        &["HDEL", "job:job-1", "worker", "machine"],
    );
    assert_cmd(
        redis::cmd("HINCRBY").arg("job:job-1").arg("progress").arg(-5i64),
        &["HINCRBY", "job:job-1", "progress", "-5"],
    );
    assert_cmd(redis::cmd("HMGET").arg("job:job-1").arg("a").arg("b"), &["HMGET", "job:job-1", "a", "b"]);
    assert_cmd(redis::cmd("HEXISTS").arg("job:job-1").arg("a"), &["HEXISTS", "job:job-1", "a"]);
    assert_cmd(redis::cmd("HLEN").arg("job:job-1"), &["HLEN", "job:job-1"]);
    assert_cmd(&redis::Cmd::hset("h", "f", 7), &["HSET", "h", "f", "7"]);
    assert_cmd(&redis::Cmd::hget("h", "f"), &["HGET", "h", "f"]);
    assert_cmd(&redis::Cmd::hgetall("h"), &["HGETALL", "h"]);
    assert_cmd(&redis::Cmd::hdel("h", "f"), &["HDEL", "h", "f"]);
    assert_cmd(&redis::Cmd::hincr("h", "f", 3), &["HINCRBY", "h", "f", "3"]);
    assert_cmd(&redis::Cmd::hset_multiple("h", &[("a", "1"), ("b", "2")]), &["HMSET", "h", "a", "1", "b", "2"]);
}

#[test]
fn connection_and_key_commands_from_the_redis_crate() {
    assert_cmd(&redis::cmd("PING"), &["PING"]);
    assert_cmd(redis::cmd("PING").arg("hello"), &["PING", "hello"]);
    assert_cmd(redis::cmd("SELECT").arg(2), &["SELECT", "2"]);
    assert_cmd(redis::cmd("AUTH").arg("s3cret"), &["AUTH", "s3cret"]);
    assert_cmd(redis::cmd("AUTH").arg("default").arg("s3cret"), &["AUTH", "default", "s3cret"]);
    assert_cmd(
        redis::cmd("HELLO").arg("3").arg("AUTH").arg("default").arg("pw"),
        &["HELLO", "3", "AUTH", "default", "pw"],
    );
    assert_cmd(
        redis::cmd("CLIENT").arg("SETINFO").arg("LIB-NAME").arg("redis-rs"),
        &["CLIENT", "SETINFO", "LIB-NAME", "redis-rs"],
    );
    assert_cmd(
        redis::cmd("CLIENT").arg("SETINFO").arg("LIB-VER").arg("1.8.1"),
        &["CLIENT", "SETINFO", "LIB-VER", "1.8.1"],
    );
    assert_cmd(redis::cmd("EXPIRE").arg("job:job-1").arg(86400), &["EXPIRE", "job:job-1", "86400"]);
    assert_cmd(&redis::Cmd::expire("k", 10), &["EXPIRE", "k", "10"]);
    assert_cmd(redis::cmd("DEL").arg("a").arg("b"), &["DEL", "a", "b"]);
    assert_cmd(&redis::Cmd::del(&["a", "b", "c"]), &["DEL", "a", "b", "c"]);
    assert_cmd(redis::cmd("EXISTS").arg("a"), &["EXISTS", "a"]);
    assert_cmd(&redis::Cmd::exists("a"), &["EXISTS", "a"]);
    assert_cmd(&redis::cmd("MULTI"), &["MULTI"]);
    assert_cmd(&redis::cmd("EXEC"), &["EXEC"]);
    assert_cmd(&redis::cmd("DISCARD"), &["DISCARD"]);
}

#[test]
fn binary_safe_arguments() {
    let payload: &[u8] = b"\r\n*1\r\n$4\r\nPING\r\n\0\xff\x00end";
    let packed = redis::cmd("RPUSH").arg("logs").arg(payload).arg(&b""[..]).get_packed_command();
    let commands = decode_all(&packed);
    assert_eq!(argv_of(&commands[0]), vec![b"RPUSH".to_vec(), b"logs".to_vec(), payload.to_vec(), Vec::new()]);
}

#[test]
fn arguments_are_slices_of_the_read_buffer() {
    let packed = redis::cmd("RPUSH").arg("logs").arg(vec![7u8; 4096]).get_packed_command();
    let mut buf = BytesMut::from(&packed[..]);
    let start = buf.as_ptr() as usize;
    let command = Decoder::default().decode(&mut buf).unwrap().unwrap();
    let arg = command.arg(2).unwrap().as_ptr() as usize;
    assert!(arg > start && arg < start + packed.len(), "argument was copied");
}

/// The connection setup pipeline redis-rs 1.x writes (its `connection_setup_pipeline` is
/// crate-private, so this rebuilds it; `the_real_client_handshake` checks the real bytes).
fn setup_pipeline(password: Option<&str>, db: i64) -> redis::Pipeline {
    let mut pipe = redis::pipe();
    if let Some(password) = password {
        pipe.cmd("AUTH").arg(password);
    }
    if db != 0 {
        pipe.cmd("SELECT").arg(db);
    }
    pipe.cmd("CLIENT").arg("SETINFO").arg("LIB-NAME").arg("redis-rs").ignore();
    pipe.cmd("CLIENT").arg("SETINFO").arg("LIB-VER").arg("1.8.1").ignore();
    pipe
}

#[test]
fn pipelines_and_transactions_in_one_write() {
    let setup = setup_pipeline(Some("pw"), 3).get_packed_pipeline();
    let names: Vec<Vec<Vec<u8>>> = decode_all(&setup).iter().map(argv_of).collect();
    assert_eq!(
        names,
        vec![
            words(&["AUTH", "pw"]),
            words(&["SELECT", "3"]),
            words(&["CLIENT", "SETINFO", "LIB-NAME", "redis-rs"]),
            words(&["CLIENT", "SETINFO", "LIB-VER", "1.8.1"]),
        ]
    );

    let packed = redis::pipe()
        .cmd("LMOVE")
        .arg("logs")
        .arg("logs:processing")
        .arg("LEFT")
        .arg("RIGHT")
        .cmd("LLEN")
        .arg("logs")
        .cmd("HINCRBY")
        .arg("stats")
        .arg("shipped")
        .arg(1)
        .get_packed_pipeline();
    let commands = decode_all(&packed);
    assert_eq!(commands.iter().map(|c| c.argc()).collect::<Vec<_>>(), vec![5, 2, 4]);

    let packed = redis::pipe()
        .atomic()
        .cmd("LREM")
        .arg("logs:processing")
        .arg(1)
        .arg("batch")
        .cmd("HSET")
        .arg("job:1")
        .arg("status")
        .arg("done")
        .get_packed_pipeline();
    let commands = decode_all(&packed);
    let names: Vec<&[u8]> = commands.iter().map(|c| c.name()).collect();
    assert_eq!(names, vec![&b"MULTI"[..], b"LREM", b"HSET", b"EXEC"]);
}

#[test]
fn split_at_every_boundary_yields_the_same_commands() {
    let packed = redis::pipe()
        .atomic()
        .cmd("BLMOVE")
        .arg("jobs")
        .arg("proc")
        .arg("LEFT")
        .arg("RIGHT")
        .arg(5.0)
        .cmd("RPUSH")
        .arg("logs")
        .arg("r")
        .arg(&b"a\r\nb\0"[..])
        .get_packed_pipeline();
    let mut inline = b"PING\r\nSET a \"b c\"\n".to_vec();
    inline.extend_from_slice(&packed);
    let whole = decode_all(&inline);
    assert_eq!(whole.len(), 6);
    for cut in 0..=inline.len() {
        let mut decoder = Decoder::default();
        let mut buf = BytesMut::from(&inline[..cut]);
        let mut got = Vec::new();
        decoder.decode_all(&mut buf, &mut got).unwrap();
        buf.extend_from_slice(&inline[cut..]);
        decoder.decode_all(&mut buf, &mut got).unwrap();
        assert_eq!(got, whole, "cut at {cut}");
    }
}

#[test]
fn inline_commands() {
    let commands = decode_all(b"PING\r\nset greeting \"hello world\\n\" 'it\\'s'\r\n\r\nLLEN jobs\n");
    assert_eq!(argv_of(&commands[0]), words(&["PING"]));
    assert_eq!(argv_of(&commands[1]), words(&["set", "greeting", "hello world\n", "it's"]));
    assert!(commands[1].is("SET"));
    assert_eq!(argv_of(&commands[2]), words(&["LLEN", "jobs"]));
    assert!(commands.iter().all(|c| c.framing() == Framing::Inline));
}

fn error_text(error: &ProtocolError) -> String {
    match error.reply() {
        Some(Reply::Error(text)) => String::from_utf8_lossy(&text).into_owned(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn protocol_errors_carry_redis_texts_and_close() {
    let cases: &[(&[u8], &str)] = &[
        (b"*abc\r\n", "ERR Protocol error: invalid multibulk length"),
        (b"*99999999999\r\n", "ERR Protocol error: invalid multibulk length"),
        (b"*3\r\n$3\r\nSET\r\n$1\r\nx\r\nfooz\r\n", "ERR Protocol error: expected '$', got 'f'"),
        (b"*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$-10\r\n", "ERR Protocol error: invalid bulk length"),
        (b"*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$2000000000\r\n", "ERR Protocol error: invalid bulk length"),
        (b"*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$blabla\r\n", "ERR Protocol error: invalid bulk length"),
        (b"*1\r\nfoo\r\n", "ERR Protocol error: expected '$', got 'f'"),
        (b"SET a \"b\r\n", "ERR Protocol error: unbalanced quotes in request"),
    ];
    for (bytes, text) in cases {
        let error = Decoder::default().decode(&mut BytesMut::from(*bytes)).unwrap_err();
        assert_eq!(error_text(&error), *text, "{:?}", String::from_utf8_lossy(bytes));
        assert!(error.must_close());
        assert!(error.to_string().contains("connection must close"));
    }
    // The Redis test suite's "out of range multibulk length": *20000000 is accepted (waits).
    assert_eq!(check_request(b"*20000000\r\n", &RequestLimits::default(), false), Check::Incomplete);
}

/// Renders reply bytes readably for golden files: CRLF shown as `\r\n` and a line break.
fn show(bytes: &[u8]) -> String {
    let mut out = String::new();
    for &b in bytes {
        match b {
            b'\r' => out.push_str("\\r"),
            b'\n' => out.push_str("\\n\n"),
            b' '..=b'~' if b != b'\\' => out.push(b as char),
            other => out.push_str(&format!("\\x{other:02x}")),
        }
    }
    out
}

fn sample_replies() -> Vec<(&'static str, Reply, Value)> {
    vec![
        ("simple_ok", Reply::ok(), Value::Okay),
        ("simple_pong", Reply::pong(), Value::SimpleString("PONG".into())),
        ("simple_queued", Reply::queued(), Value::SimpleString("QUEUED".into())),
        ("integer_zero", Reply::Integer(0), Value::Int(0)),
        ("integer_negative", Reply::Integer(-9_223_372_036_854_775_808), Value::Int(i64::MIN)),
        ("integer_max", Reply::Integer(i64::MAX), Value::Int(i64::MAX)),
        ("bulk", Reply::bulk("job-1"), Value::BulkString(b"job-1".to_vec())),
        ("bulk_empty", Reply::bulk(""), Value::BulkString(Vec::new())),
        ("bulk_binary", Reply::bulk(&b"a\r\nb\0\xff"[..]), Value::BulkString(b"a\r\nb\0\xff".to_vec())),
        ("null_bulk", Reply::Null, Value::Nil),
        ("null_array", Reply::NullArray, Value::Nil),
        ("array_empty", Reply::Array(vec![]), Value::Array(vec![])),
        (
            "array_hgetall",
            Reply::bulks([Bytes::from("status"), Bytes::from("queued"), Bytes::from("progress"), Bytes::from("40")]),
            Value::Array(vec![
                Value::BulkString(b"status".to_vec()),
                Value::BulkString(b"queued".to_vec()),
                Value::BulkString(b"progress".to_vec()),
                Value::BulkString(b"40".to_vec()),
            ]),
        ),
        (
            "array_exec_mixed",
            Reply::Array(vec![Reply::Integer(1), Reply::Null, Reply::error(errors::WRONGTYPE), Reply::ok()]),
            Value::Array(vec![
                Value::Int(1),
                Value::Nil,
                redis::parse_redis_value(format!("-{}\r\n", errors::WRONGTYPE).as_bytes()).unwrap(),
                Value::Okay,
            ]),
        ),
        (
            "array_xreadgroup_nested",
            Reply::Array(vec![Reply::Array(vec![
                Reply::bulk("logs"),
                Reply::Array(vec![Reply::Array(vec![
                    Reply::bulk("1-0"),
                    Reply::bulks([Bytes::from("record"), Bytes::from("r1")]),
                ])]),
            ])]),
            Value::Array(vec![Value::Array(vec![
                Value::BulkString(b"logs".to_vec()),
                Value::Array(vec![Value::Array(vec![
                    Value::BulkString(b"1-0".to_vec()),
                    Value::Array(vec![Value::BulkString(b"record".to_vec()), Value::BulkString(b"r1".to_vec())]),
                ])]),
            ])]),
        ),
    ]
}

fn sample_errors() -> Vec<(&'static str, Reply)> {
    vec![
        ("error_wrong_arity", errors::wrong_number_of_arguments("lpush")),
        ("error_wrongtype", errors::error(errors::WRONGTYPE)),
        ("error_oom", errors::error(errors::OOM)),
        ("error_unknown_command", errors::unknown_command(&[Bytes::from("foo"), Bytes::from("a"), Bytes::from("b")])),
        ("error_not_integer", errors::error(errors::NOT_AN_INTEGER)),
        ("error_syntax", errors::error(errors::SYNTAX)),
        ("error_execabort", errors::error(errors::EXECABORT)),
    ]
}

#[test]
fn reply_golden_bytes() {
    let mut all = Vec::new();
    for (name, reply, _) in sample_replies() {
        all.push((name, reply));
    }
    all.extend(sample_errors());
    for (name, reply) in all {
        let bytes = reply.to_bytes();
        insta::with_settings!({snapshot_path => "../fixtures/resp", prepend_module_to_snapshot => false}, {
            insta::assert_snapshot!(name, show(&bytes));
        });
    }
}

#[test]
fn the_redis_crate_parses_our_replies() {
    for (name, reply, expected) in sample_replies() {
        let bytes = reply.to_bytes();
        assert_eq!(redis::parse_redis_value(&bytes).unwrap(), expected, "{name}");
        // And our client-side parser reads back what we wrote.
        let mut buf = BytesMut::from(&bytes[..]);
        assert_eq!(parse_reply(&mut buf).unwrap(), Some(reply), "{name}");
        assert!(buf.is_empty());
    }
    for (name, reply) in sample_errors() {
        let Reply::Error(text) = &reply else { panic!() };
        let value = redis::parse_redis_value(&reply.to_bytes()).unwrap();
        let Value::ServerError(error) = value else { panic!("{name}: {value:?}") };
        let code = std::str::from_utf8(text).unwrap().split(' ').next().unwrap();
        assert_eq!(error.code(), code, "{name}");
    }
    // Many replies in one buffer (one pipeline answer) parse one after another.
    let replies: Vec<Reply> = sample_replies().into_iter().map(|(_, r, _)| r).collect();
    let mut out = BytesMut::new();
    Reply::encode_all(&replies, &mut out);
    let mut parser = redis::Parser::new();
    let mut reader = &out[..];
    for (_, _, expected) in sample_replies() {
        assert_eq!(parser.parse_value(&mut reader).unwrap(), expected);
    }
    assert!(reader.is_empty());
}

/// A tiny server made of this module: decodes requests from the client half of a duplex
/// stream and answers them. Records every byte the client wrote.
async fn tiny_server(
    stream: tokio::io::DuplexStream,
    received: Arc<Mutex<Vec<u8>>>,
    commands: Arc<Mutex<Vec<Vec<Vec<u8>>>>>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (mut reader, mut writer) = tokio::io::split(stream);
    let mut decoder = Decoder::default();
    let mut buf = BytesMut::new();
    let mut read = [0u8; 4096];
    loop {
        let n = match reader.read(&mut read).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        received.lock().unwrap().extend_from_slice(&read[..n]);
        buf.extend_from_slice(&read[..n]);
        let mut out = BytesMut::new();
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(command)) => {
                    commands.lock().unwrap().push(argv_of(&command));
                    let reply = if command.is("PING") {
                        Reply::pong()
                    } else if command.is("LPUSH") {
                        Reply::Integer(command.args().len() as i64 - 1)
                    } else if command.is("BLMOVE") {
                        Reply::NullArray
                    } else if command.is("HGETALL") {
                        Reply::bulks([Bytes::from("status"), Bytes::from("queued")])
                    } else if command.is("LLEN") {
                        Reply::error(errors::WRONGTYPE)
                    } else if command.is("CLIENT") {
                        // Redis 7.0 has no CLIENT SETINFO (it came in 7.2): this is its
                        // answer, and the client must shrug it off.
                        errors::unknown_subcommand(command.name(), &command.args()[0])
                    } else if command.is("AUTH") || command.is("SELECT") {
                        Reply::ok()
                    } else {
                        errors::unknown_command(command.argv())
                    };
                    reply.encode(&mut out);
                }
                Ok(None) => break,
                Err(error) => {
                    if let Some(reply) = error.reply() {
                        reply.encode(&mut out);
                    }
                    let _ = writer.write_all(&out).await;
                    return;
                }
            }
        }
        if writer.write_all(&out).await.is_err() {
            return;
        }
    }
}

#[tokio::test]
async fn the_real_client_handshake_and_commands() {
    let (client_half, server_half) = tokio::io::duplex(1 << 16);
    let received = Arc::new(Mutex::new(Vec::new()));
    let commands = Arc::new(Mutex::new(Vec::new()));
    tokio::spawn(tiny_server(server_half, received.clone(), commands.clone()));

    // The `redis` crate's driver future borrows the info for 'static.
    let info: &'static redis::RedisConnectionInfo =
        Box::leak(Box::new(redis::RedisConnectionInfo::default().set_password("pw").set_db(2)));
    let (mut connection, driver) = redis::aio::MultiplexedConnection::new(info, client_half).await.expect("handshake");
    tokio::spawn(driver);

    // What the client wrote on connect: one pipeline, byte-identical to our rebuild.
    let handshake = received.lock().unwrap().clone();
    assert_eq!(handshake, setup_pipeline(Some("pw"), 2).get_packed_pipeline());

    let pong: String = redis::cmd("PING").query_async(&mut connection).await.unwrap();
    assert_eq!(pong, "PONG");
    let pushed: i64 = redis::cmd("LPUSH").arg("jobs").arg("a").arg("b").query_async(&mut connection).await.unwrap();
    assert_eq!(pushed, 2);
    let moved: Option<String> = redis::cmd("BLMOVE")
        .arg("jobs")
        .arg("proc")
        .arg("LEFT")
        .arg("RIGHT")
        .arg(1.0)
        .query_async(&mut connection)
        .await
        .unwrap();
    assert_eq!(moved, None);
    let job: std::collections::BTreeMap<String, String> =
        redis::cmd("HGETALL").arg("job:1").query_async(&mut connection).await.unwrap();
    assert_eq!(job.get("status").map(String::as_str), Some("queued"));
    let error = redis::cmd("LLEN").arg("jobs").query_async::<i64>(&mut connection).await.unwrap_err();
    assert_eq!(error.code(), Some("WRONGTYPE"));
    let error = redis::cmd("FOO").arg("a").query_async::<()>(&mut connection).await.unwrap_err();
    assert!(error.to_string().contains("unknown command 'FOO', with args beginning with: 'a'"), "{error}");

    let names: Vec<Vec<u8>> = commands.lock().unwrap().iter().map(|argv| argv[0].clone()).collect();
    assert_eq!(
        names,
        words(&["AUTH", "SELECT", "CLIENT", "CLIENT", "PING", "LPUSH", "BLMOVE", "HGETALL", "LLEN", "FOO"])
    );
}

/// The RESP2 replies proptest explores (nesting bounded so the `redis` crate's depth limit
/// of 100 is far away).
fn arb_reply() -> impl Strategy<Value = Reply> {
    let text = proptest::collection::vec(any::<u8>().prop_filter("no CR/LF", |b| *b != b'\r' && *b != b'\n'), 0..24);
    let leaf = prop_oneof![
        text.clone().prop_map(|t| Reply::Simple(Bytes::from(t))),
        text.prop_map(|mut t| {
            t.insert(0, b'E');
            Reply::Error(Bytes::from(t))
        }),
        any::<i64>().prop_map(Reply::Integer),
        proptest::collection::vec(any::<u8>(), 0..64).prop_map(|b| Reply::Bulk(Bytes::from(b))),
        Just(Reply::Null),
        Just(Reply::NullArray),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| proptest::collection::vec(inner, 0..8).prop_map(Reply::Array))
}

fn lines_are_utf8(reply: &Reply) -> bool {
    match reply {
        Reply::Simple(text) | Reply::Error(text) => std::str::from_utf8(text).is_ok(),
        Reply::Array(items) => items.iter().all(lines_are_utf8),
        _ => true,
    }
}

fn arb_argv() -> impl Strategy<Value = Vec<Vec<u8>>> {
    proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 1..6)
}

/// Fragments that make near-valid RESP, to reach deeper states than uniform random bytes.
const GARBAGE_PARTS: &[&[u8]] = &[
    b"*",
    b"$",
    b"\r\n",
    b"\r",
    b"\n",
    b"-1",
    b"0",
    b"3",
    b"99999999999999999999",
    b"abc",
    b"\"",
    b"'",
    b" ",
    b"\\x4",
    b"\0",
    b"+",
    b":",
    b"-",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn any_split_gives_the_same_commands(pipeline in proptest::collection::vec(arb_argv(), 1..5), cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..6)) {
        let mut wire = BytesMut::new();
        for argv in &pipeline {
            obsim::proto::resp::encode_command(argv, &mut wire);
        }
        let mut positions: Vec<usize> = cuts.iter().map(|i| i.index(wire.len() + 1)).collect();
        positions.sort_unstable();
        let mut decoder = Decoder::default();
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        let mut from = 0;
        for at in positions.into_iter().chain([wire.len()]) {
            buf.extend_from_slice(&wire[from..at]);
            from = at;
            decoder.decode_all(&mut buf, &mut got).unwrap();
        }
        prop_assert!(buf.is_empty());
        let got: Vec<Vec<Vec<u8>>> = got.iter().map(argv_of).collect();
        prop_assert_eq!(got, pipeline);
    }

    #[test]
    fn reply_round_trips(reply in arb_reply()) {
        let bytes = reply.to_bytes();
        prop_assert_eq!(bytes.len(), reply.encoded_bytes());
        let mut buf = BytesMut::from(&bytes[..]);
        prop_assert_eq!(parse_reply(&mut buf).unwrap(), Some(reply.clone()));
        prop_assert!(buf.is_empty());
        // Every strict prefix is Incomplete, never an error.
        for cut in 0..bytes.len() {
            prop_assert_eq!(parse_reply(&mut BytesMut::from(&bytes[..cut])).unwrap(), None);
        }
        // The real client parses it too — when status and error lines are UTF-8: the `redis`
        // crate refuses other bytes there (real Redis can send them, e.g. echoing a binary
        // command name in "unknown command").
        if lines_are_utf8(&reply) {
            prop_assert!(redis::parse_redis_value(&bytes).is_ok());
        } else {
            prop_assert!(redis::parse_redis_value(&bytes).is_err());
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256), auth in any::<bool>()) {
        let mut decoder = Decoder::default();
        decoder.set_auth_required(auth);
        let mut buf = BytesMut::from(&bytes[..]);
        let mut out = Vec::new();
        let _ = decoder.decode_all(&mut buf, &mut out);
        let _ = parse_reply(&mut BytesMut::from(&bytes[..]));
        for cut in 0..bytes.len() {
            let _ = check_request(&bytes[..cut], &RequestLimits::default(), auth);
            let _ = obsim::proto::resp::check_reply(&bytes[..cut]);
        }
    }

    #[test]
    fn structured_garbage_never_panics(parts in proptest::collection::vec(proptest::sample::select(GARBAGE_PARTS), 0..40)) {
        let bytes: Vec<u8> = parts.concat();
        let mut out = Vec::new();
        let _ = Decoder::default().decode_all(&mut BytesMut::from(&bytes[..]), &mut out);
        let _ = parse_reply(&mut BytesMut::from(&bytes[..]));
    }

    #[test]
    fn huge_declared_lengths_are_refused_at_once(extra in 1u64..=u32::MAX as u64, prefix in arb_argv()) {
        let limits = RequestLimits::default();
        // A huge bulk length after some valid arguments: refused as soon as its line is in.
        let mut wire = BytesMut::new();
        wire.extend_from_slice(format!("*{}\r\n", prefix.len() + 1).as_bytes());
        for arg in &prefix {
            wire.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
            wire.extend_from_slice(arg);
            wire.extend_from_slice(b"\r\n");
        }
        wire.extend_from_slice(format!("${}\r\n", limits.bulk_bytes_limit + extra).as_bytes());
        let error = Decoder::default().decode(&mut wire).unwrap_err();
        prop_assert_eq!(error_text(&error), "ERR Protocol error: invalid bulk length");
        // A huge multibulk count.
        let count = format!("*{}\r\n", limits.multibulk_count_limit as u64 + extra);
        let error = Decoder::default().decode(&mut BytesMut::from(count.as_bytes())).unwrap_err();
        prop_assert_eq!(error_text(&error), "ERR Protocol error: invalid multibulk length");
    }
}
