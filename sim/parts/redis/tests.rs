//! Unit tests of the executor per command family: reply shapes and Redis's error texts.

use bytes::Bytes;

use crate::proto::resp::Reply;

use super::config::RedisConfig;
use super::db::{Db, command};

fn run(db: &mut Db, line: &str) -> Reply {
    let argv: Vec<&str> = line.split_whitespace().collect();
    let reply = db.execute(&command(&argv));
    assert_eq!(db.used_memory(), db.recount_memory(), "memory estimate drifted after {line}");
    reply
}

fn bulk(text: &str) -> Reply {
    Reply::Bulk(Bytes::copy_from_slice(text.as_bytes()))
}

fn err(text: &str) -> Reply {
    Reply::Error(Bytes::copy_from_slice(text.as_bytes()))
}

fn bulks(items: &[&str]) -> Reply {
    Reply::Array(items.iter().map(|item| bulk(item)).collect())
}

#[test]
fn lists_push_pop_move_rem_range() {
    let mut db = Db::new(RedisConfig::default());
    assert_eq!(run(&mut db, "RPUSH l a b c a"), Reply::Integer(4));
    assert_eq!(run(&mut db, "LPUSH l z"), Reply::Integer(5));
    assert_eq!(run(&mut db, "LRANGE l 0 -1"), bulks(&["z", "a", "b", "c", "a"]));
    assert_eq!(run(&mut db, "LRANGE l -2 100"), bulks(&["c", "a"]));
    assert_eq!(run(&mut db, "LINDEX l -1"), bulk("a"));
    assert_eq!(run(&mut db, "LREM l -1 a"), Reply::Integer(1));
    assert_eq!(run(&mut db, "LRANGE l 0 -1"), bulks(&["z", "a", "b", "c"]));
    assert_eq!(run(&mut db, "LMOVE l dst RIGHT LEFT"), bulk("c"));
    assert_eq!(run(&mut db, "LMOVE l dst UP LEFT"), err("ERR syntax error"));
    assert_eq!(run(&mut db, "LPOP l 2"), bulks(&["z", "a"]));
    assert_eq!(run(&mut db, "RPOP l"), bulk("b"));
    assert_eq!(run(&mut db, "EXISTS l"), Reply::Integer(0), "an emptied list is deleted");
    assert_eq!(run(&mut db, "LPOP l"), Reply::Null);
    assert_eq!(run(&mut db, "LPOP l 1"), Reply::NullArray);
    assert_eq!(run(&mut db, "LPOP dst -1"), err("ERR value is out of range, must be positive"));
    assert_eq!(run(&mut db, "BLMOVE empty dst LEFT LEFT 0"), Reply::Null, "the single-client executor never blocks");
    assert_eq!(run(&mut db, "BLMOVE empty dst LEFT LEFT x"), err("ERR timeout is not a float or out of range"));
    assert_eq!(run(&mut db, "LLEN dst"), Reply::Integer(1));
}

#[test]
fn hashes() {
    let mut db = Db::new(RedisConfig::default());
    assert_eq!(run(&mut db, "HSET h b 1 a 2"), Reply::Integer(2));
    assert_eq!(run(&mut db, "HSET h b 3"), Reply::Integer(0));
    assert_eq!(run(&mut db, "HGETALL h"), bulks(&["b", "3", "a", "2"]), "insertion order, as listpack");
    assert_eq!(run(&mut db, "HMSET h c 1"), Reply::ok());
    assert_eq!(run(&mut db, "HSET h c"), err("ERR wrong number of arguments for 'hset' command"));
    assert_eq!(run(&mut db, "HINCRBY h c 41"), Reply::Integer(42));
    assert_eq!(run(&mut db, "HINCRBY h c x"), err("ERR value is not an integer or out of range"));
    assert_eq!(run(&mut db, "HSET h s text"), Reply::Integer(1));
    assert_eq!(run(&mut db, "HINCRBY h s 1"), err("ERR hash value is not an integer"));
    assert_eq!(run(&mut db, "HDEL h a nope"), Reply::Integer(1));
    assert_eq!(run(&mut db, "HLEN h"), Reply::Integer(3));
    assert_eq!(run(&mut db, "HEXISTS h a"), Reply::Integer(0));
    assert_eq!(run(&mut db, "HGET h nope"), Reply::Null);
    assert_eq!(run(&mut db, "LPUSH h x"), err("WRONGTYPE Operation against a key holding the wrong kind of value"));
}

/// Streams are not modelled (the pipeline buffers in lists): a stream command must get the
/// answer real Redis gives a command it does not know, never a made-up success, and inside
/// MULTI it must abort the transaction as any unknown command does.
#[test]
fn stream_commands_are_answered_as_unknown_commands() {
    let mut db = Db::new(RedisConfig::default());
    let cases = [
        ("XADD s 1-1 f v1", "ERR unknown command 'XADD', with args beginning with: 's' '1-1' 'f' 'v1' "),
        ("XGROUP CREATE s g 0", "ERR unknown command 'XGROUP', with args beginning with: 'CREATE' 's' 'g' '0' "),
        ("xreadgroup GROUP g c", "ERR unknown command 'xreadgroup', with args beginning with: 'GROUP' 'g' 'c' "),
        ("XLEN s", "ERR unknown command 'XLEN', with args beginning with: 's' "),
    ];
    for (line, expected) in cases {
        assert_eq!(run(&mut db, line), err(expected), "{line}");
    }
    assert_eq!(run(&mut db, "EXISTS s"), Reply::Integer(0), "nothing was stored");
    assert!(db.take_effects().propagate.is_empty(), "nothing reaches the AOF");
    assert_eq!(run(&mut db, "MULTI"), Reply::ok());
    assert!(matches!(run(&mut db, "XADD s * f v"), Reply::Error(_)));
    assert_eq!(run(&mut db, "EXEC"), err("EXECABORT Transaction discarded because of previous errors."));
}

#[test]
fn arity_unknown_and_subcommand_errors() {
    let mut db = Db::new(RedisConfig::default());
    assert_eq!(run(&mut db, "LPUSH l"), err("ERR wrong number of arguments for 'lpush' command"));
    assert_eq!(run(&mut db, "NOPE a b"), err("ERR unknown command 'NOPE', with args beginning with: 'a' 'b' "));
    assert_eq!(run(&mut db, "CLIENT SETINFO lib-name x"), err("ERR unknown subcommand 'SETINFO'. Try CLIENT HELP."));
    assert_eq!(run(&mut db, "CONFIG"), err("ERR wrong number of arguments for 'config' command"));
    assert_eq!(run(&mut db, "CONFIG GET"), err("ERR wrong number of arguments for 'config|get' command"));
}

#[test]
fn oom_refuses_denyoom_writes_only_and_deletes_free_memory() {
    let mut db =
        Db::new(RedisConfig { maxmemory_bytes: super::memory::BASELINE_BYTES + 2_000, ..RedisConfig::default() });
    let value = "x".repeat(500);
    let mut accepted = 0;
    let oom = err("OOM command not allowed when used memory > 'maxmemory'.");
    loop {
        match run(&mut db, &format!("RPUSH l {value}")) {
            Reply::Integer(_) => accepted += 1,
            reply => {
                assert_eq!(reply, oom);
                break;
            }
        }
        assert!(accepted < 100, "maxmemory never refused");
    }
    assert_eq!(accepted, 4, "2000 bytes of room, 512-byte elements, refused once over");
    assert_eq!(run(&mut db, "HSET h f v"), oom);
    assert_eq!(run(&mut db, "LLEN l"), Reply::Integer(4), "reads still work");
    assert_eq!(run(&mut db, "LPOP l"), bulk(&value), "LPOP is not denyoom");
    assert_eq!(run(&mut db, "LREM l 1 nothing"), Reply::Integer(0), "LREM is not denyoom");
    assert_eq!(run(&mut db, "DEL l"), Reply::Integer(1));
    assert_eq!(db.used_memory(), super::memory::BASELINE_BYTES, "deletes free memory");
    assert_eq!(run(&mut db, "RPUSH l a"), Reply::Integer(1));
}

#[test]
fn multi_exec_discard_and_auth() {
    let mut db = Db::new(RedisConfig { requirepass: Some("pw".into()), ..RedisConfig::default() });
    assert_eq!(run(&mut db, "PING"), err("NOAUTH Authentication required."));
    assert_eq!(run(&mut db, "AUTH bad"), err("WRONGPASS invalid username-password pair or user is disabled."));
    assert_eq!(run(&mut db, "AUTH pw"), Reply::ok());
    assert_eq!(run(&mut db, "MULTI"), Reply::ok());
    assert_eq!(run(&mut db, "RPUSH l a"), Reply::queued());
    assert_eq!(run(&mut db, "LLEN l"), Reply::queued());
    assert_eq!(run(&mut db, "EXEC"), Reply::Array(vec![Reply::Integer(1), Reply::Integer(1)]));
    assert_eq!(run(&mut db, "MULTI"), Reply::ok());
    assert_eq!(run(&mut db, "LPUSH l"), err("ERR wrong number of arguments for 'lpush' command"));
    assert_eq!(run(&mut db, "EXEC"), err("EXECABORT Transaction discarded because of previous errors."));
    assert_eq!(run(&mut db, "DISCARD"), err("ERR DISCARD without MULTI"));
    assert_eq!(run(&mut db, "SELECT 16"), err("ERR DB index is out of range"));
    assert_eq!(run(&mut db, "SELECT 1"), Reply::ok());
    assert_eq!(run(&mut db, "DBSIZE"), Reply::Integer(0));
}

#[test]
fn replaying_what_was_propagated_rebuilds_the_same_dataset_at_a_later_time() {
    let mut original = Db::new(RedisConfig::default());
    let script = [
        "RPUSH jobs a b c",
        "BLMOVE jobs processing LEFT RIGHT 0",
        "HSET job:1 status running",
        "MULTI",
        "LREM processing 1 a",
        "SELECT 2",
        "RPUSH other x",
        "EXEC",
        "SELECT 0",
        "LLEN jobs",
    ];
    let mut propagated = Vec::new();
    for line in &script {
        let argv: Vec<&str> = line.split_whitespace().collect();
        original.execute(&command(&argv));
        propagated.extend(original.take_effects().propagate);
    }
    let mut replayed = Db::new(RedisConfig::default());
    let mut session = super::db::Session::new(0, replayed.config());
    let mut selected = 0;
    for (db_index, argv) in &propagated {
        if *db_index != selected {
            replayed.replay(&mut session, &command(&["SELECT", &db_index.to_string()]));
            selected = *db_index;
        }
        replayed.replay(&mut session, &super::db::command(argv));
    }
    let reads = ["LRANGE jobs 0 -1", "LRANGE processing 0 -1", "HGETALL job:1"];
    for read in reads {
        let argv: Vec<&str> = read.split_whitespace().collect();
        let expected = original.execute(&command(&argv));
        assert_eq!(replayed.execute(&command(&argv)), expected, "{read} after replay");
    }
    assert_eq!(original.execute(&command(&["SELECT", "2"])), Reply::ok());
    assert_eq!(replayed.execute(&command(&["SELECT", "2"])), Reply::ok());
    assert_eq!(replayed.execute(&command(&["LRANGE", "other", "0", "-1"])), bulks(&["x"]));
    let names: Vec<String> = propagated.iter().map(|(_, argv)| String::from_utf8_lossy(&argv[0]).to_string()).collect();
    assert_eq!(
        names,
        ["RPUSH", "LMOVE", "HSET", "MULTI", "LREM", "RPUSH", "EXEC"],
        "BLMOVE is logged as LMOVE, the transaction wrapped"
    );
}

/// `save` takes seconds ≥ 1 and changes ≥ 0 (the ranges); the rules between keys refuse
/// an empty list (that is `persistence = "none"`), too many points, and points under AOF.
#[test]
fn save_points_rules() {
    use super::config::{Persistence, SAVE_POINTS_LIMIT, SavePoint};
    let point = SavePoint { after_secs: 1, changes: 0 };
    let with = |persistence, points: Option<Vec<SavePoint>>| RedisConfig {
        persistence,
        save_points: points,
        ..RedisConfig::default()
    };
    assert_eq!(with(Persistence::Rdb, Some(vec![point])).check_rules(), Ok(()));
    assert_eq!(with(Persistence::AofEverysec, None).check_rules(), Ok(()));
    let (key, message) = with(Persistence::Rdb, Some(Vec::new())).check_rules().unwrap_err();
    assert_eq!(key, "save_points");
    assert!(message.contains("persistence = \"none\""), "{message}");
    let (_, message) = with(Persistence::Rdb, Some(vec![point; SAVE_POINTS_LIMIT + 1])).check_rules().unwrap_err();
    assert!(message.contains("at most 16"), "{message}");
    let (_, message) = with(Persistence::AofAlways, Some(vec![point])).check_rules().unwrap_err();
    assert_eq!(message, "applies to persistence = \"rdb\" only, not \"aof_always\"");
}

/// SIGTERM's SAVE takes time in proportion to the snapshot (FIDELITY.md "Redis", UNKNOWN).
#[test]
fn save_duration_is_proportional() {
    use super::server::{SAVE_BYTES_PER_SEC, save_duration};
    assert_eq!(save_duration(0), std::time::Duration::ZERO);
    assert_eq!(save_duration(SAVE_BYTES_PER_SEC as usize), std::time::Duration::from_secs(1));
    assert_eq!(save_duration(SAVE_BYTES_PER_SEC as usize / 100), std::time::Duration::from_millis(10));
}
