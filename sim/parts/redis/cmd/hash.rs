//! Hash commands (Redis 7.0 `t_hash.c`): HSET HMSET HGET HGETALL HDEL HINCRBY HLEN HEXISTS.

use bytes::Bytes;

use crate::proto::resp::{Command, Reply, errors};

use crate::parts::redis::args;
use crate::parts::redis::db::{Exec, Outcome};
use crate::parts::redis::keyspace::Keyspace;
use crate::parts::redis::value::{Hash, Value};

fn reply(reply: Reply) -> Outcome {
    Outcome::Reply(reply)
}

fn hash<'a>(keyspace: &'a Keyspace, key: &[u8]) -> Result<Option<&'a Hash>, Reply> {
    match keyspace.get(key) {
        None => Ok(None),
        Some(Value::Hash(hash)) => Ok(Some(hash)),
        Some(_) => Err(errors::error(errors::WRONGTYPE)),
    }
}

fn hash_mut(value: &mut Value) -> &mut Hash {
    match value {
        Value::Hash(hash) => hash,
        other => unreachable!("type checked before: {}", other.type_name()),
    }
}

/// `hashTypeLookupWriteOrCreate`: type check, then create if absent.
fn lookup_write_or_create(exec: &mut Exec<'_>, key: &Bytes) -> Result<(), Reply> {
    if hash(exec.keyspace_ref(), key)?.is_none() {
        exec.keyspace().insert(key.clone(), Value::Hash(Hash::default()));
    }
    Ok(())
}

/// HSET and HMSET (which differ only in the reply).
pub fn hset(exec: &mut Exec<'_>, command: &Command) -> Outcome {
    let argv = command.argv();
    let is_hset = command.is("hset");
    if argv.len() % 2 == 1 {
        return reply(errors::wrong_number_of_arguments(if is_hset { "hset" } else { "hmset" }));
    }
    if let Err(error) = lookup_write_or_create(exec, &argv[1]) {
        return reply(error);
    }
    let pairs = &argv[2..];
    let created = exec
        .keyspace()
        .update(&argv[1], |value| {
            let hash = hash_mut(value);
            pairs.chunks(2).filter(|pair| hash.set(pair[0].clone(), pair[1].clone())).count()
        })
        .expect("the hash exists");
    exec.dirty((pairs.len() / 2) as u64);
    reply(if is_hset { Reply::Integer(created as i64) } else { Reply::ok() })
}

/// HSETNX key field value: sets the field only when the hash does not have it yet; replies
/// 1 when it set it, 0 when the field was there (t_hash.c `hsetnxCommand`).
pub(crate) fn hsetnx(exec: &mut Exec<'_>, command: &Command) -> Outcome {
    let argv = command.argv();
    if let Err(error) = lookup_write_or_create(exec, &argv[1]) {
        return reply(error);
    }
    let set = exec
        .keyspace()
        .update(&argv[1], |value| {
            let hash = hash_mut(value);
            hash.get(&argv[2]).is_none() && hash.set(argv[2].clone(), argv[3].clone())
        })
        .expect("the hash exists");
    if set {
        exec.dirty(1);
    }
    reply(Reply::Integer(i64::from(set)))
}

pub fn hget(exec: &mut Exec<'_>, command: &Command) -> Outcome {
    match hash(exec.keyspace_ref(), &command.argv()[1]) {
        Err(error) => reply(error),
        Ok(hash) => reply(Reply::bulk_or_null(hash.and_then(|h| h.get(&command.argv()[2]).cloned()))),
    }
}

pub fn hgetall(exec: &mut Exec<'_>, command: &Command) -> Outcome {
    match hash(exec.keyspace_ref(), &command.argv()[1]) {
        Err(error) => reply(error),
        Ok(None) => reply(Reply::Array(Vec::new())),
        Ok(Some(hash)) => {
            let items = hash.entries().into_iter().flat_map(|(field, value)| [field.clone(), value.clone()]);
            reply(Reply::bulks(items))
        }
    }
}

pub fn hdel(exec: &mut Exec<'_>, command: &Command) -> Outcome {
    let argv = command.argv();
    match hash(exec.keyspace_ref(), &argv[1]) {
        Err(error) => return reply(error),
        Ok(None) => return reply(Reply::Integer(0)),
        Ok(Some(_)) => {}
    }
    let fields = &argv[2..];
    let deleted = exec
        .keyspace()
        .update(&argv[1], |value| {
            let hash = hash_mut(value);
            fields.iter().filter(|field| hash.remove(field)).count()
        })
        .expect("the hash exists");
    exec.dirty(deleted as u64);
    reply(Reply::Integer(deleted as i64))
}

pub(crate) fn hincrby(exec: &mut Exec<'_>, command: &Command) -> Outcome {
    let argv = command.argv();
    let increment = match args::i64_or_reply(&argv[3]) {
        Ok(increment) => increment,
        Err(error) => return reply(error),
    };
    let current = match hash(exec.keyspace_ref(), &argv[1]) {
        Err(error) => return reply(error),
        Ok(hash) => hash.and_then(|h| h.get(&argv[2]).cloned()),
    };
    let current = match current {
        None => 0,
        Some(text) => match args::parse_i64(&text) {
            Some(value) => value,
            None => return reply(errors::error(errors::HASH_VALUE_NOT_INTEGER)),
        },
    };
    let Some(updated) = current.checked_add(increment) else {
        return reply(errors::error(errors::INCREMENT_OVERFLOW));
    };
    if let Err(error) = lookup_write_or_create(exec, &argv[1]) {
        return reply(error);
    }
    let field = argv[2].clone();
    exec.keyspace()
        .update(&argv[1], |value| hash_mut(value).set(field, Bytes::from(updated.to_string())))
        .expect("the hash exists");
    exec.dirty(1);
    reply(Reply::Integer(updated))
}

pub(crate) fn hlen(exec: &mut Exec<'_>, command: &Command) -> Outcome {
    match hash(exec.keyspace_ref(), &command.argv()[1]) {
        Err(error) => reply(error),
        Ok(hash) => reply(Reply::Integer(hash.map_or(0, Hash::len) as i64)),
    }
}

pub(crate) fn hexists(exec: &mut Exec<'_>, command: &Command) -> Outcome {
    match hash(exec.keyspace_ref(), &command.argv()[1]) {
        Err(error) => reply(error),
        Ok(hash) => reply(Reply::Integer(i64::from(hash.is_some_and(|h| h.get(&command.argv()[2]).is_some())))),
    }
}
