//! List commands (Redis 7.0 `t_list.c`): LPUSH RPUSH LPOP RPOP LMOVE BLMOVE LREM LRANGE
//! LLEN LINDEX.

use bytes::Bytes;

use crate::proto::resp::{Command, Reply, errors};

use crate::parts::redis::args;
use crate::parts::redis::db::{Exec, Outcome};
use crate::parts::redis::keyspace::Keyspace;
use crate::parts::redis::value::{List, Value};

fn reply(reply: Reply) -> Outcome {
    Outcome::Reply(reply)
}

/// The list at `key`: `Ok(None)` if absent, `Err(WRONGTYPE)` if another type.
fn list<'a>(keyspace: &'a Keyspace, key: &[u8]) -> Result<Option<&'a List>, Reply> {
    match keyspace.get(key) {
        None => Ok(None),
        Some(Value::List(list)) => Ok(Some(list)),
        Some(_) => Err(errors::error(errors::WRONGTYPE)),
    }
}

fn list_mut(value: &mut Value) -> &mut List {
    match value {
        Value::List(list) => list,
        other => unreachable!("type checked before: {}", other.type_name()),
    }
}

fn push(exec: &mut Exec<'_>, command: &Command, left: bool) -> Outcome {
    let key = &command.argv()[1];
    if let Err(error) = list(exec.keyspace_ref(), key) {
        return reply(error);
    }
    if !exec.keyspace_ref().contains(key) {
        exec.keyspace().insert(key.clone(), Value::List(List::default()));
    }
    let values = &command.argv()[2..];
    for value in values {
        exec.stored(value);
    }
    let len = exec
        .keyspace()
        .update(key, |value| {
            let list = list_mut(value);
            for item in values {
                list.push(item.clone(), left);
            }
            list.len()
        })
        .expect("the list exists");
    exec.dirty(values.len() as u64);
    exec.signal_ready(key);
    reply(Reply::Integer(len as i64))
}

pub fn lpush(exec: &mut Exec<'_>, command: &Command) -> Outcome {
    push(exec, command, true)
}

pub fn rpush(exec: &mut Exec<'_>, command: &Command) -> Outcome {
    push(exec, command, false)
}

fn pop(exec: &mut Exec<'_>, command: &Command, left: bool) -> Outcome {
    let argv = command.argv();
    if argv.len() > 3 {
        return reply(errors::wrong_number_of_arguments(if left { "lpop" } else { "rpop" }));
    }
    let count = match argv.get(2) {
        Some(arg) => match args::positive_or_reply(arg) {
            Ok(count) => Some(count as usize),
            Err(error) => return reply(error),
        },
        None => None,
    };
    let key = &argv[1];
    match list(exec.keyspace_ref(), key) {
        Err(error) => return reply(error),
        Ok(None) => return reply(if count.is_some() { Reply::NullArray } else { Reply::Null }),
        Ok(Some(_)) => {}
    }
    if count == Some(0) {
        return reply(Reply::Array(Vec::new()));
    }
    let wanted = count.unwrap_or(1);
    let popped = exec
        .keyspace()
        .update(key, |value| {
            let list = list_mut(value);
            (0..wanted).map_while(|_| list.pop(left)).collect::<Vec<Bytes>>()
        })
        .expect("the list exists");
    for value in &popped {
        exec.removed(value);
    }
    exec.dirty(popped.len() as u64);
    match count {
        None => reply(Reply::Bulk(popped.into_iter().next().expect("a list is never empty"))),
        Some(_) => reply(Reply::bulks(popped)),
    }
}

pub(crate) fn lpop(exec: &mut Exec<'_>, command: &Command) -> Outcome {
    pop(exec, command, true)
}

pub(crate) fn rpop(exec: &mut Exec<'_>, command: &Command) -> Outcome {
    pop(exec, command, false)
}

/// `LEFT` → true, `RIGHT` → false, else a syntax error.
fn side(arg: &[u8]) -> Result<bool, Reply> {
    if arg.eq_ignore_ascii_case(b"left") {
        Ok(true)
    } else if arg.eq_ignore_ascii_case(b"right") {
        Ok(false)
    } else {
        Err(errors::error(errors::SYNTAX))
    }
}

/// LMOVE's body (`lmoveGenericCommand`): `None` when the source is absent.
fn move_one(
    exec: &mut Exec<'_>,
    source: &Bytes,
    destination: &Bytes,
    from_left: bool,
    to_left: bool,
) -> Result<Option<Bytes>, Reply> {
    if list(exec.keyspace_ref(), source)?.is_none() {
        return Ok(None);
    }
    list(exec.keyspace_ref(), destination)?;
    let value = exec
        .keyspace()
        .update(source, |value| list_mut(value).pop(from_left))
        .expect("the source exists")
        .expect("lists are never empty");
    if !exec.keyspace_ref().contains(destination) {
        exec.keyspace().insert(destination.clone(), Value::List(List::default()));
    }
    let pushed = value.clone();
    exec.keyspace().update(destination, |list| list_mut(list).push(pushed, to_left)).expect("the destination exists");
    exec.dirty(1);
    exec.signal_ready(destination);
    Ok(Some(value))
}

pub fn lmove(exec: &mut Exec<'_>, command: &Command) -> Outcome {
    let argv = command.argv();
    let sides = side(&argv[3]).and_then(|from| Ok((from, side(&argv[4])?)));
    let (from_left, to_left) = match sides {
        Ok(sides) => sides,
        Err(error) => return reply(error),
    };
    match move_one(exec, &argv[1], &argv[2], from_left, to_left) {
        Ok(value) => reply(Reply::bulk_or_null(value)),
        Err(error) => reply(error),
    }
}

/// BLMOVE: LMOVE when the source has data; otherwise block (or `$-1` inside MULTI, as
/// Redis 7.0 answers a client that may not block; a timeout answers `*-1`). The
/// AOF gets the LMOVE that happened, as Redis propagates it.
pub fn blmove(exec: &mut Exec<'_>, command: &Command) -> Outcome {
    let argv = command.argv();
    let parsed = side(&argv[3])
        .and_then(|from| Ok((from, side(&argv[4])?)))
        .and_then(|(from, to)| Ok((from, to, args::timeout_secs_or_reply(&argv[5])?)));
    let (from_left, to_left, timeout_ms) = match parsed {
        Ok(parsed) => parsed,
        Err(error) => return reply(error),
    };
    match move_one(exec, &argv[1], &argv[2], from_left, to_left) {
        Err(error) => reply(error),
        Ok(Some(value)) => {
            exec.rewrite(vec![
                Bytes::from_static(b"LMOVE"),
                argv[1].clone(),
                argv[2].clone(),
                argv[3].clone(),
                argv[4].clone(),
            ]);
            reply(Reply::Bulk(value))
        }
        Ok(None) if exec.deny_blocking => reply(Reply::Null),
        Ok(None) => Outcome::Block { db_index: exec.session.db_index, key: argv[1].clone(), timeout_ms },
    }
}

pub fn lrem(exec: &mut Exec<'_>, command: &Command) -> Outcome {
    let argv = command.argv();
    let count = match args::parse_i64(&argv[2]) {
        Some(count) => count,
        None => return reply(errors::error(errors::NOT_AN_INTEGER)),
    };
    match list(exec.keyspace_ref(), &argv[1]) {
        Err(error) => return reply(error),
        Ok(None) => return reply(Reply::Integer(0)),
        Ok(Some(_)) => {}
    }
    let element = argv[3].clone();
    let removed = exec
        .keyspace()
        .update(&argv[1], |value| list_mut(value).remove_equal(&element, count.unsigned_abs() as usize, count >= 0))
        .expect("the list exists");
    for value in &removed {
        exec.removed(value);
    }
    exec.dirty(removed.len() as u64);
    reply(Reply::Integer(removed.len() as i64))
}

pub fn lrange(exec: &mut Exec<'_>, command: &Command) -> Outcome {
    let argv = command.argv();
    let (Some(mut start), Some(mut end)) = (args::parse_i64(&argv[2]), args::parse_i64(&argv[3])) else {
        return reply(errors::error(errors::NOT_AN_INTEGER));
    };
    let list = match list(exec.keyspace_ref(), &argv[1]) {
        Err(error) => return reply(error),
        Ok(None) => return reply(Reply::Array(Vec::new())),
        Ok(Some(list)) => list,
    };
    let len = list.len() as i64;
    if start < 0 {
        start += len;
    }
    if end < 0 {
        end += len;
    }
    start = start.max(0);
    if start > end || start >= len {
        return reply(Reply::Array(Vec::new()));
    }
    end = end.min(len - 1);
    let items = list.iter().skip(start as usize).take((end - start + 1) as usize).cloned();
    reply(Reply::bulks(items))
}

pub fn llen(exec: &mut Exec<'_>, command: &Command) -> Outcome {
    match list(exec.keyspace_ref(), &command.argv()[1]) {
        Err(error) => reply(error),
        Ok(list) => reply(Reply::Integer(list.map_or(0, List::len) as i64)),
    }
}

pub(crate) fn lindex(exec: &mut Exec<'_>, command: &Command) -> Outcome {
    let argv = command.argv();
    let list = match list(exec.keyspace_ref(), &argv[1]) {
        Err(error) => return reply(error),
        Ok(None) => return reply(Reply::Null),
        Ok(Some(list)) => list,
    };
    let Some(index) = args::parse_i64(&argv[2]) else {
        return reply(errors::error(errors::NOT_AN_INTEGER));
    };
    let len = list.len() as i64;
    let index = if index < 0 { index + len } else { index };
    if index < 0 || index >= len {
        return reply(Reply::Null);
    }
    reply(Reply::Bulk(list.get(index as usize).expect("index in range").clone()))
}
