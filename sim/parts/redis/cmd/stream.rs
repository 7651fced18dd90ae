//! Stream commands (Redis 7.0 `t_stream.c`): XADD XLEN XRANGE XDEL XTRIM, consumer groups
//! XGROUP CREATE/CREATECONSUMER/DELCONSUMER/DESTROY, XREADGROUP (with BLOCK), XACK,
//! XPENDING (summary and extended), XAUTOCLAIM.

use bytes::Bytes;

use crate::proto::resp::{Command, Reply, errors};

use crate::parts::redis::args::{self, ParsedId};
use crate::parts::redis::db::{Exec, Outcome};
use crate::parts::redis::keyspace::Keyspace;
use crate::parts::redis::stream::{Group, Stream, StreamId};
use crate::parts::redis::value::Value;

fn reply(reply: Reply) -> Outcome {
    Outcome::Reply(reply)
}

fn stream<'a>(keyspace: &'a Keyspace, key: &[u8]) -> Result<Option<&'a Stream>, Reply> {
    match keyspace.get(key) {
        None => Ok(None),
        Some(Value::Stream(stream)) => Ok(Some(stream)),
        Some(_) => Err(errors::error(errors::WRONGTYPE)),
    }
}

fn stream_mut(value: &mut Value) -> &mut Stream {
    match value {
        Value::Stream(stream) => stream,
        other => unreachable!("type checked before: {}", other.type_name()),
    }
}

fn id_reply(id: StreamId) -> Reply {
    Reply::Bulk(id.to_bytes())
}

fn entry_reply(id: StreamId, items: &[Bytes]) -> Reply {
    Reply::Array(vec![id_reply(id), Reply::bulks(items.iter().cloned())])
}

/// The trimming part of XADD / XTRIM arguments (`streamAddTrimArgs`).
#[derive(Default)]
struct TrimArgs {
    maxlen: Option<u64>,
    minid: Option<StreamId>,
    approx: bool,
    limit: u64,
    limit_given: bool,
    no_mkstream: bool,
    id: Option<ParsedId>,
}

/// `streamParseAddOrTrimArgsOrReply`: returns the args and the index after them (XADD:
/// the index of the id).
fn parse_add_or_trim(argv: &[Bytes], xadd: bool) -> Result<(TrimArgs, usize), Reply> {
    let mut parsed = TrimArgs::default();
    let mut i = 2;
    let mut strategy_given = false;
    while i < argv.len() {
        let more = argv.len() - 1 - i;
        let opt = &argv[i];
        if xadd && opt.as_ref() == b"*" {
            break;
        } else if (opt.eq_ignore_ascii_case(b"maxlen") || opt.eq_ignore_ascii_case(b"minid")) && more > 0 {
            if strategy_given {
                return Err(errors::error(
                    "ERR syntax error, MAXLEN and MINID options at the same time are not compatible",
                ));
            }
            strategy_given = true;
            parsed.approx = false;
            let next = &argv[i + 1];
            if more >= 2 && next.as_ref() == b"~" {
                parsed.approx = true;
                i += 1;
            } else if more >= 2 && next.as_ref() == b"=" {
                i += 1;
            }
            if opt.eq_ignore_ascii_case(b"maxlen") {
                let maxlen = args::i64_or_reply(&argv[i + 1])?;
                if maxlen < 0 {
                    return Err(errors::error("ERR The MAXLEN argument must be >= 0."));
                }
                parsed.maxlen = Some(maxlen as u64);
            } else {
                parsed.minid = Some(args::stream_id(&argv[i + 1], 0, true, false)?.id);
            }
            i += 1;
        } else if opt.eq_ignore_ascii_case(b"limit") && more > 0 {
            parsed.limit = args::positive_or_reply(&argv[i + 1])? as u64;
            parsed.limit_given = true;
            i += 1;
        } else if xadd && opt.eq_ignore_ascii_case(b"nomkstream") {
            parsed.no_mkstream = true;
        } else if xadd {
            parsed.id = Some(args::stream_id(opt, 0, true, true)?);
            break;
        } else {
            return Err(errors::error(errors::SYNTAX));
        }
        i += 1;
    }
    if parsed.limit_given {
        if !parsed.approx {
            return Err(errors::error("ERR syntax error, LIMIT cannot be used without the special ~ option"));
        }
    } else if parsed.approx {
        // 100 × stream-node-max-entries (100).
        parsed.limit = 10_000;
    }
    Ok((parsed, i))
}

/// Trims per `parsed`, releasing custody of removed values; returns the count removed.
fn trim(exec: &mut Exec<'_>, key: &Bytes, parsed: &TrimArgs) -> usize {
    let (maxlen, minid, approx, limit) = (parsed.maxlen, parsed.minid, parsed.approx, parsed.limit);
    let removed = exec
        .keyspace()
        .update(key, |value| {
            let stream = stream_mut(value);
            match (maxlen, minid) {
                (Some(maxlen), _) => stream.trim_maxlen(maxlen, approx, limit),
                (None, Some(minid)) => stream.trim_minid(minid, approx, limit),
                (None, None) => Vec::new(),
            }
        })
        .unwrap_or_default();
    for items in &removed {
        for value in items.iter().skip(1).step_by(2) {
            exec.removed(value);
        }
    }
    removed.len()
}

pub fn xadd(exec: &mut Exec<'_>, command: &Command) -> Outcome {
    let argv = command.argv();
    let (parsed, field_pos) = match parse_add_or_trim(argv, true) {
        Ok(parsed) => parsed,
        Err(error) => return reply(error),
    };
    // The fields start after the id (`*` or explicit).
    let fields_start = field_pos + 1;
    if argv.len() < fields_start || (argv.len() - fields_start) < 2 || (argv.len() - fields_start) % 2 == 1 {
        return reply(errors::wrong_number_of_arguments("xadd"));
    }
    if let Some(ParsedId { id, seq_given: true }) = parsed.id
        && id == StreamId::MIN
    {
        return reply(errors::error(errors::XADD_ID_ZERO));
    }
    let key = &argv[1];
    match stream(exec.keyspace_ref(), key) {
        Err(error) => return reply(error),
        Ok(None) if parsed.no_mkstream => return reply(Reply::Null),
        Ok(None) => exec.keyspace().insert(key.clone(), Value::Stream(Box::default())),
        Ok(Some(_)) => {}
    }
    let last = stream(exec.keyspace_ref(), key).ok().flatten().expect("the stream exists").last_id;
    if last == StreamId::MAX {
        return reply(errors::error("ERR The stream has exhausted the last possible ID, unable to add more items"));
    }
    let id = match parsed.id {
        None => {
            let ms = exec.now_ms;
            if ms > last.ms { StreamId { ms, seq: 0 } } else { last.incr().expect("below MAX") }
        }
        Some(ParsedId { id, seq_given: true }) => id,
        Some(ParsedId { id, seq_given: false }) => {
            if id.ms == last.ms {
                match last.incr() {
                    Some(next) if next.ms == last.ms => next,
                    _ => return reply(errors::error(errors::XADD_ID_TOO_SMALL)),
                }
            } else {
                id
            }
        }
    };
    if id <= last {
        return reply(errors::error(errors::XADD_ID_TOO_SMALL));
    }
    let items: Vec<Bytes> = argv[fields_start..].to_vec();
    for value in items.iter().skip(1).step_by(2) {
        exec.stored(value);
    }
    exec.keyspace().update(key, |value| stream_mut(value).append(id, items)).expect("the stream exists");
    exec.dirty(1);
    if parsed.maxlen.is_some() || parsed.minid.is_some() {
        trim(exec, key, &parsed);
    }
    // The AOF gets the id that was chosen, as Redis rewrites `*`.
    let mut rewritten = argv.to_vec();
    rewritten[field_pos] = id.to_bytes();
    exec.rewrite(rewritten);
    exec.signal_ready(key);
    reply(id_reply(id))
}

pub fn xlen(exec: &mut Exec<'_>, command: &Command) -> Outcome {
    match stream(exec.keyspace_ref(), &command.argv()[1]) {
        Err(error) => reply(error),
        Ok(stream) => reply(Reply::Integer(stream.map_or(0, Stream::len) as i64)),
    }
}

pub fn xrange(exec: &mut Exec<'_>, command: &Command) -> Outcome {
    let argv = command.argv();
    let start = match args::interval_id(&argv[2], false) {
        Ok(id) => id,
        Err(error) => return reply(error),
    };
    let end = match args::interval_id(&argv[3], true) {
        Ok(id) => id,
        Err(error) => return reply(error),
    };
    let mut count: Option<u64> = None;
    let mut j = 4;
    while j < argv.len() {
        if argv[j].eq_ignore_ascii_case(b"count") && j + 1 < argv.len() {
            match args::i64_or_reply(&argv[j + 1]) {
                Ok(value) => count = Some(value.max(0) as u64),
                Err(error) => return reply(error),
            }
            j += 2;
        } else {
            return reply(errors::error(errors::SYNTAX));
        }
    }
    if count == Some(0) {
        return reply(Reply::NullArray);
    }
    let stream = match stream(exec.keyspace_ref(), &argv[1]) {
        Err(error) => return reply(error),
        Ok(None) => return reply(Reply::Array(Vec::new())),
        Ok(Some(stream)) => stream,
    };
    if start > end {
        return reply(Reply::Array(Vec::new()));
    }
    let limit = count.unwrap_or(u64::MAX) as usize;
    let entries = stream.entries.range(start..=end).take(limit).map(|(id, items)| entry_reply(*id, items));
    reply(Reply::Array(entries.collect()))
}

pub fn xdel(exec: &mut Exec<'_>, command: &Command) -> Outcome {
    let argv = command.argv();
    match stream(exec.keyspace_ref(), &argv[1]) {
        Err(error) => return reply(error),
        Ok(None) => return reply(Reply::Integer(0)),
        Ok(Some(_)) => {}
    }
    let mut ids = Vec::with_capacity(argv.len() - 2);
    for arg in &argv[2..] {
        match args::stream_id(arg, 0, true, false) {
            Ok(parsed) => ids.push(parsed.id),
            Err(error) => return reply(error),
        }
    }
    let removed = exec
        .keyspace()
        .update(&argv[1], |value| {
            let stream = stream_mut(value);
            ids.iter().filter_map(|id| stream.delete(*id)).collect::<Vec<_>>()
        })
        .expect("the stream exists");
    for items in &removed {
        for value in items.iter().skip(1).step_by(2) {
            exec.removed(value);
        }
    }
    exec.dirty(removed.len() as u64);
    reply(Reply::Integer(removed.len() as i64))
}

pub fn xtrim(exec: &mut Exec<'_>, command: &Command) -> Outcome {
    let argv = command.argv();
    match stream(exec.keyspace_ref(), &argv[1]) {
        Err(error) => return reply(error),
        Ok(None) => return reply(Reply::Integer(0)),
        Ok(Some(_)) => {}
    }
    let (parsed, _) = match parse_add_or_trim(argv, false) {
        Ok(parsed) => parsed,
        Err(error) => return reply(error),
    };
    if parsed.maxlen.is_none() && parsed.minid.is_none() {
        return reply(errors::error(errors::XTRIM_NO_STRATEGY));
    }
    let removed = trim(exec, &argv[1], &parsed);
    exec.dirty(removed as u64);
    reply(Reply::Integer(removed as i64))
}

/// `ERR unknown subcommand or wrong number of arguments for 'X'. Try XGROUP HELP.`
fn subcommand_syntax_error(command: &Command) -> Reply {
    let mut text = b"ERR unknown subcommand or wrong number of arguments for '".to_vec();
    text.extend_from_slice(&command.argv()[1]);
    text.extend_from_slice(b"'. Try XGROUP HELP.");
    Reply::error(text)
}

/// XGROUP's common checks: the stream must exist (unless MKSTREAM), and for all but
/// CREATE and DESTROY the group too.
fn xgroup_stream<'a>(
    exec: &'a Exec<'_>,
    command: &Command,
    mkstream: bool,
    needs_group: bool,
) -> Result<Option<&'a Stream>, Reply> {
    let argv = command.argv();
    let stream = stream(exec.keyspace_ref(), &argv[2])?;
    if !mkstream {
        let Some(found) = stream else { return Err(errors::error(errors::XGROUP_KEY_MISSING)) };
        if needs_group && !found.groups.contains_key(&argv[3]) {
            return Err(errors::nogroup_for_key(&argv[3], &argv[2]));
        }
    }
    Ok(stream)
}

pub fn xgroup_create(exec: &mut Exec<'_>, command: &Command) -> Outcome {
    let argv = command.argv();
    let mut mkstream = false;
    let mut i = 5;
    while i < argv.len() {
        if argv[i].eq_ignore_ascii_case(b"mkstream") {
            mkstream = true;
            i += 1;
        } else if argv[i].eq_ignore_ascii_case(b"entriesread") && i + 1 < argv.len() {
            match args::i64_or_reply(&argv[i + 1]) {
                Ok(value) if value < 0 && value != -1 => {
                    return reply(errors::error("ERR value for ENTRIESREAD must be positive or -1"));
                }
                Ok(_) => {}
                Err(error) => return reply(error),
            }
            i += 2;
        } else {
            return reply(subcommand_syntax_error(command));
        }
    }
    let existing = match xgroup_stream(exec, command, mkstream, false) {
        Ok(stream) => stream.map(|s| s.last_id),
        Err(error) => return reply(error),
    };
    let id = if argv[4].as_ref() == b"$" {
        existing.unwrap_or(StreamId::MIN)
    } else {
        match args::stream_id(&argv[4], 0, true, false) {
            Ok(parsed) => parsed.id,
            Err(error) => return reply(error),
        }
    };
    let (key, name) = (argv[2].clone(), argv[3].clone());
    if existing.is_none() {
        exec.keyspace().insert(key.clone(), Value::Stream(Box::default()));
        exec.dirty(1);
    }
    let created = exec
        .keyspace()
        .update(&key, |value| {
            let stream = stream_mut(value);
            if stream.groups.contains_key(&name) {
                return false;
            }
            stream.groups.insert(name, Group { last_id: id, ..Group::default() });
            true
        })
        .expect("the stream exists");
    if !created {
        return reply(errors::error(errors::BUSYGROUP));
    }
    exec.dirty(1);
    reply(Reply::ok())
}

pub fn xgroup_setid(exec: &mut Exec<'_>, command: &Command) -> Outcome {
    let argv = command.argv();
    let mut i = 5;
    while i < argv.len() {
        if argv[i].eq_ignore_ascii_case(b"entriesread") && i + 1 < argv.len() {
            match args::i64_or_reply(&argv[i + 1]) {
                Ok(value) if value < 0 && value != -1 => {
                    return reply(errors::error("ERR value for ENTRIESREAD must be positive or -1"));
                }
                Ok(_) => {}
                Err(error) => return reply(error),
            }
            i += 2;
        } else {
            return reply(subcommand_syntax_error(command));
        }
    }
    let last = match xgroup_stream(exec, command, false, true) {
        Ok(stream) => stream.expect("checked").last_id,
        Err(error) => return reply(error),
    };
    let id = if argv[4].as_ref() == b"$" {
        last
    } else {
        match args::stream_id(&argv[4], 0, true, false) {
            Ok(parsed) => parsed.id,
            Err(error) => return reply(error),
        }
    };
    let group = argv[3].clone();
    exec.keyspace()
        .update(&argv[2], |value| stream_mut(value).groups.get_mut(&group).expect("checked").last_id = id)
        .expect("the stream exists");
    exec.dirty(1);
    reply(Reply::ok())
}

pub fn xgroup_destroy(exec: &mut Exec<'_>, command: &Command) -> Outcome {
    if let Err(error) = xgroup_stream(exec, command, false, false) {
        return reply(error);
    }
    let name = command.argv()[3].clone();
    let destroyed = exec
        .keyspace()
        .update(&command.argv()[2], |value| stream_mut(value).groups.remove(&name).is_some())
        .expect("the stream exists");
    exec.dirty(u64::from(destroyed));
    reply(Reply::Integer(i64::from(destroyed)))
}

pub fn xgroup_createconsumer(exec: &mut Exec<'_>, command: &Command) -> Outcome {
    if let Err(error) = xgroup_stream(exec, command, false, true) {
        return reply(error);
    }
    let (group, consumer, now_ms) = (command.argv()[3].clone(), command.argv()[4].clone(), exec.now_ms);
    let created = exec
        .keyspace()
        .update(&command.argv()[2], |value| {
            let group = stream_mut(value).groups.get_mut(&group).expect("checked");
            if group.consumers.contains_key(&consumer) {
                return false;
            }
            group.consumer(&consumer, now_ms);
            true
        })
        .expect("the stream exists");
    exec.dirty(u64::from(created));
    reply(Reply::Integer(i64::from(created)))
}

pub fn xgroup_delconsumer(exec: &mut Exec<'_>, command: &Command) -> Outcome {
    if let Err(error) = xgroup_stream(exec, command, false, true) {
        return reply(error);
    }
    let (group, consumer) = (command.argv()[3].clone(), command.argv()[4].clone());
    let pending = exec
        .keyspace()
        .update(&command.argv()[2], |value| {
            let group = stream_mut(value).groups.get_mut(&group).expect("checked");
            let Some(removed) = group.consumers.remove(&consumer) else { return 0 };
            for id in &removed.pel {
                group.pel.remove(id);
            }
            removed.pel.len() as i64
        })
        .expect("the stream exists");
    exec.dirty(1);
    reply(Reply::Integer(pending))
}

pub fn xack(exec: &mut Exec<'_>, command: &Command) -> Outcome {
    let argv = command.argv();
    match stream(exec.keyspace_ref(), &argv[1]) {
        Err(error) => return reply(error),
        Ok(None) => return reply(Reply::Integer(0)),
        Ok(Some(stream)) if !stream.groups.contains_key(&argv[2]) => return reply(Reply::Integer(0)),
        Ok(Some(_)) => {}
    }
    let mut ids = Vec::with_capacity(argv.len() - 3);
    for arg in &argv[3..] {
        match args::stream_id(arg, 0, true, false) {
            Ok(parsed) => ids.push(parsed.id),
            Err(error) => return reply(error),
        }
    }
    let group = argv[2].clone();
    let acked = exec
        .keyspace()
        .update(&argv[1], |value| {
            let group = stream_mut(value).groups.get_mut(&group).expect("checked");
            ids.iter().filter(|id| group.ack(**id)).count()
        })
        .expect("the stream exists");
    exec.dirty(acked as u64);
    reply(Reply::Integer(acked as i64))
}

pub fn xpending(exec: &mut Exec<'_>, command: &Command) -> Outcome {
    let argv = command.argv();
    let summary = argv.len() == 3;
    if !summary && (argv.len() < 6 || argv.len() > 9) {
        return reply(errors::error(errors::SYNTAX));
    }
    let mut min_idle_ms: i64 = 0;
    let mut range = None;
    let mut consumer_name = None;
    if !summary {
        let mut start_index = 3;
        if argv[3].eq_ignore_ascii_case(b"idle") {
            match args::i64_or_reply(&argv[4]) {
                Ok(value) => min_idle_ms = value,
                Err(error) => return reply(error),
            }
            if argv.len() < 8 {
                return reply(errors::error(errors::SYNTAX));
            }
            start_index += 2;
        }
        let count = match args::i64_or_reply(&argv[start_index + 2]) {
            Ok(value) => value.max(0) as usize,
            Err(error) => return reply(error),
        };
        let start = match args::interval_id(&argv[start_index], false) {
            Ok(id) => id,
            Err(error) => return reply(error),
        };
        let end = match args::interval_id(&argv[start_index + 1], true) {
            Ok(id) => id,
            Err(error) => return reply(error),
        };
        range = Some((start, end, count));
        consumer_name = argv.get(start_index + 3).cloned();
    }
    let stream = match stream(exec.keyspace_ref(), &argv[1]) {
        Err(error) => return reply(error),
        Ok(stream) => stream,
    };
    let Some(group) = stream.and_then(|s| s.groups.get(&argv[2])) else {
        return reply(errors::nogroup_key_or_group(&argv[1], &argv[2]));
    };
    let Some((start, end, count)) = range else {
        if group.pel.is_empty() {
            return reply(Reply::Array(vec![Reply::Integer(0), Reply::Null, Reply::Null, Reply::NullArray]));
        }
        let first = *group.pel.keys().next().expect("non-empty");
        let last = *group.pel.keys().next_back().expect("non-empty");
        let consumers = group
            .consumers
            .iter()
            .filter(|(_, consumer)| !consumer.pel.is_empty())
            .map(|(name, consumer)| {
                Reply::Array(vec![Reply::Bulk(name.clone()), Reply::Bulk(Bytes::from(consumer.pel.len().to_string()))])
            })
            .collect();
        return reply(Reply::Array(vec![
            Reply::Integer(group.pel.len() as i64),
            id_reply(first),
            id_reply(last),
            Reply::Array(consumers),
        ]));
    };
    let now_ms = exec.now_ms;
    let ids: Vec<StreamId> = match &consumer_name {
        Some(name) => match group.consumers.get(name) {
            None => return reply(Reply::Array(Vec::new())),
            Some(consumer) => consumer.pel.iter().copied().collect(),
        },
        None => group.pel.keys().copied().collect(),
    };
    let mut rows = Vec::new();
    if start <= end {
        for id in ids.into_iter().filter(|id| (start..=end).contains(id)) {
            if rows.len() >= count {
                break;
            }
            let nack = &group.pel[&id];
            let idle_ms = now_ms.saturating_sub(nack.delivery_time_ms) as i64;
            if min_idle_ms > 0 && idle_ms < min_idle_ms {
                continue;
            }
            rows.push(Reply::Array(vec![
                id_reply(id),
                Reply::Bulk(nack.consumer.clone()),
                Reply::Integer(idle_ms),
                Reply::Integer(nack.delivery_count as i64),
            ]));
        }
    }
    reply(Reply::Array(rows))
}

pub fn xautoclaim(exec: &mut Exec<'_>, command: &Command) -> Outcome {
    let argv = command.argv();
    let min_idle_ms = match args::parse_i64(&argv[4]) {
        Some(value) => value.max(0),
        None => return reply(errors::error("ERR Invalid min-idle-time argument for XAUTOCLAIM")),
    };
    let start = match args::interval_id(&argv[5], false) {
        Ok(id) => id,
        Err(error) => return reply(error),
    };
    let mut count: u64 = 100;
    let mut justid = false;
    let mut j = 6;
    while j < argv.len() {
        let more = argv.len() - 1 - j;
        if argv[j].eq_ignore_ascii_case(b"count") && more > 0 {
            let max_count = (i64::MAX / 10) as i128;
            match args::parse_i64(&argv[j + 1]) {
                Some(value) if value >= 1 && i128::from(value) <= max_count => count = value as u64,
                _ => return reply(errors::error("ERR COUNT must be > 0")),
            }
            j += 1;
        } else if argv[j].eq_ignore_ascii_case(b"justid") {
            justid = true;
        } else {
            return reply(errors::error(errors::SYNTAX));
        }
        j += 1;
    }
    match stream(exec.keyspace_ref(), &argv[1]) {
        Err(error) => return reply(error),
        Ok(stream) if stream.is_none_or(|s| !s.groups.contains_key(&argv[2])) => {
            return reply(errors::nogroup_key_or_group(&argv[1], &argv[2]));
        }
        Ok(_) => {}
    }
    let (key, group_name, consumer_name, now_ms) = (argv[1].clone(), argv[2].clone(), argv[3].clone(), exec.now_ms);
    let mut propagate = Vec::new();
    let (claimed, cursor, deleted, changes) = exec
        .keyspace()
        .update(&argv[1], |value| {
            let stream = stream_mut(value);
            let group = stream.groups.get_mut(&group_name).expect("checked");
            group.consumer(&consumer_name, now_ms);
            let mut attempts = count.saturating_mul(10);
            let mut remaining = count;
            let mut claimed = Vec::new();
            let mut deleted = Vec::new();
            let mut changes = 0u64;
            let pending: Vec<StreamId> = group.pel.range(start..).map(|(id, _)| *id).collect();
            let mut next_index = pending.len();
            for (index, id) in pending.iter().copied().enumerate() {
                if attempts == 0 || remaining == 0 {
                    next_index = index;
                    break;
                }
                attempts -= 1;
                let Some(items) = stream.entries.get(&id) else {
                    let nack = &group.pel[&id];
                    propagate.push(xclaim_propagation(
                        &key,
                        &group_name,
                        &nack.consumer,
                        id,
                        nack.delivery_time_ms,
                        nack.delivery_count,
                        group.last_id,
                    ));
                    group.ack(id);
                    deleted.push(id);
                    remaining -= 1;
                    changes += 1;
                    continue;
                };
                let nack = group.pel.get_mut(&id).expect("listed from the PEL");
                if min_idle_ms > 0 && (now_ms.saturating_sub(nack.delivery_time_ms) as i64) < min_idle_ms {
                    continue;
                }
                let previous = std::mem::replace(&mut nack.consumer, consumer_name.clone());
                nack.delivery_time_ms = now_ms;
                if !justid {
                    nack.delivery_count += 1;
                }
                if previous != consumer_name {
                    if let Some(old) = group.consumers.get_mut(&previous) {
                        old.pel.remove(&id);
                    }
                    group.consumers.get_mut(&consumer_name).expect("created above").pel.insert(id);
                }
                let nack = &group.pel[&id];
                propagate.push(xclaim_propagation(
                    &key,
                    &group_name,
                    &consumer_name,
                    id,
                    now_ms,
                    nack.delivery_count,
                    group.last_id,
                ));
                claimed.push(if justid { id_reply(id) } else { entry_reply(id, items) });
                remaining -= 1;
                changes += 1;
            }
            let cursor = pending.get(next_index).copied().unwrap_or(StreamId::MIN);
            (claimed, cursor, deleted, changes)
        })
        .expect("the stream exists");
    exec.dirty(changes);
    exec.propagate_instead(propagate);
    reply(Reply::Array(vec![
        id_reply(cursor),
        Reply::Array(claimed),
        Reply::Array(deleted.into_iter().map(id_reply).collect()),
    ]))
}

pub fn xreadgroup(exec: &mut Exec<'_>, command: &Command) -> Outcome {
    let argv = command.argv();
    let mut block_ms: Option<u64> = None;
    let mut count: usize = 0;
    let mut noack = false;
    let mut streams_at = None;
    let mut group_and_consumer = None;
    let mut i = 1;
    while i < argv.len() {
        let more = argv.len() - i - 1;
        let opt = &argv[i];
        if opt.eq_ignore_ascii_case(b"block") && more > 0 {
            i += 1;
            match args::timeout_millis_or_reply(&argv[i]) {
                Ok(ms) => block_ms = Some(ms),
                Err(error) => return reply(error),
            }
        } else if opt.eq_ignore_ascii_case(b"count") && more > 0 {
            i += 1;
            match args::i64_or_reply(&argv[i]) {
                Ok(value) => count = value.max(0) as usize,
                Err(error) => return reply(error),
            }
        } else if opt.eq_ignore_ascii_case(b"streams") && more > 0 {
            let streams_count = argv.len() - i - 1;
            if !streams_count.is_multiple_of(2) {
                return reply(errors::error(
                    "ERR Unbalanced 'xreadgroup' list of streams: for each stream key an ID or '>' must be specified.",
                ));
            }
            streams_at = Some((i + 1, streams_count / 2));
            break;
        } else if opt.eq_ignore_ascii_case(b"group") && more >= 2 {
            group_and_consumer = Some((argv[i + 1].clone(), argv[i + 2].clone()));
            i += 2;
        } else if opt.eq_ignore_ascii_case(b"noack") {
            noack = true;
        } else {
            return reply(errors::error(errors::SYNTAX));
        }
        i += 1;
    }
    let Some((first_key, streams_count)) = streams_at else {
        return reply(errors::error(errors::SYNTAX));
    };
    let Some((group_name, consumer_name)) = group_and_consumer else {
        return reply(errors::error("ERR Missing GROUP option for XREADGROUP"));
    };
    // Resolve keys, groups and ids; `None` means `>`.
    let mut wanted: Vec<(Bytes, Option<StreamId>)> = Vec::with_capacity(streams_count);
    for index in 0..streams_count {
        let key = &argv[first_key + index];
        let id_arg = &argv[first_key + streams_count + index];
        match stream(exec.keyspace_ref(), key) {
            Err(error) => return reply(error),
            Ok(stream) if stream.is_none_or(|s| !s.groups.contains_key(&group_name)) => {
                return reply(errors::nogroup_xreadgroup(key, &group_name));
            }
            Ok(_) => {}
        }
        if id_arg.as_ref() == b"$" {
            return reply(errors::error(errors::XREADGROUP_DOLLAR_ID));
        }
        if id_arg.as_ref() == b">" {
            wanted.push((key.clone(), None));
            continue;
        }
        match args::stream_id(id_arg, 0, true, false) {
            Ok(parsed) => wanted.push((key.clone(), Some(parsed.id))),
            Err(error) => return reply(error),
        }
    }
    let now_ms = exec.now_ms;
    let mut results = Vec::new();
    let mut changes = 0u64;
    // What Redis propagates instead of XREADGROUP: one XCLAIM per delivered entry (with
    // its delivery time), or XGROUP SETID under NOACK, so a replay later rebuilds the PEL.
    let mut propagate: Vec<Vec<Bytes>> = Vec::new();
    for (key, id) in &wanted {
        let serve = {
            let stream = stream(exec.keyspace_ref(), key).ok().flatten().expect("checked above");
            let group = &stream.groups[&group_name];
            match id {
                Some(_) => true,
                None => stream.entries.keys().next_back().is_some_and(|last| *last > group.last_id),
            }
        };
        if !serve {
            continue;
        }
        let group_name = group_name.clone();
        let consumer_name = consumer_name.clone();
        let entries = exec
            .keyspace()
            .update(key, |value| {
                let stream = stream_mut(value);
                let Stream { entries, groups, .. } = stream;
                let propagate = &mut propagate;
                let group = groups.get_mut(&group_name).expect("checked above");
                group.consumer(&consumer_name, now_ms);
                let limit = if count == 0 { usize::MAX } else { count };
                let mut replies = Vec::new();
                match id {
                    Some(after) => {
                        // History: this consumer's pending entries above `after`.
                        let pel: Vec<StreamId> = group.consumers[&consumer_name]
                            .pel
                            .iter()
                            .copied()
                            .filter(|pending| pending > after)
                            .take(limit)
                            .collect();
                        for pending in pel {
                            match entries.get(&pending) {
                                Some(items) => {
                                    let nack = group.pel.get_mut(&pending).expect("consumer PEL ⊆ group PEL");
                                    nack.delivery_time_ms = now_ms;
                                    nack.delivery_count += 1;
                                    propagate.push(xclaim_propagation(
                                        key,
                                        &group_name,
                                        &consumer_name,
                                        pending,
                                        now_ms,
                                        nack.delivery_count,
                                        group.last_id,
                                    ));
                                    replies.push(entry_reply(pending, items));
                                }
                                None => replies.push(Reply::Array(vec![id_reply(pending), Reply::NullArray])),
                            }
                        }
                    }
                    None => {
                        let start = group.last_id;
                        let new: Vec<StreamId> =
                            entries.range(start..).map(|(id, _)| *id).filter(|id| *id > start).take(limit).collect();
                        for id in new {
                            group.last_id = id;
                            if !noack {
                                group.deliver(id, &consumer_name, now_ms);
                                propagate.push(xclaim_propagation(key, &group_name, &consumer_name, id, now_ms, 1, id));
                            }
                            replies.push(entry_reply(id, &entries[&id]));
                        }
                        if noack && group.last_id != start {
                            propagate.push(vec![
                                Bytes::from_static(b"XGROUP"),
                                Bytes::from_static(b"SETID"),
                                key.clone(),
                                group_name.clone(),
                                group.last_id.to_bytes(),
                            ]);
                        }
                    }
                }
                replies
            })
            .expect("the stream exists");
        changes += 1;
        results.push(Reply::Array(vec![Reply::Bulk(key.clone()), Reply::Array(entries)]));
    }
    if !results.is_empty() {
        exec.dirty(changes);
        exec.propagate_instead(propagate);
        return reply(Reply::Array(results));
    }
    match block_ms {
        Some(timeout_ms) if !exec.deny_blocking && wanted.iter().all(|(_, id)| id.is_none()) => {
            // Blocks on the first stream; an XADD there retries the whole command.
            Outcome::Block { db_index: exec.session.db_index, key: wanted[0].0.clone(), timeout_ms }
        }
        _ => reply(Reply::NullArray),
    }
}

/// What Redis propagates for a claim (`streamPropagateXCLAIM`):
/// `XCLAIM key group consumer 0 id TIME ms RETRYCOUNT n FORCE JUSTID LASTID id`, which
/// replays to the same PEL state whatever the time of replay.
fn xclaim_propagation(
    key: &Bytes,
    group: &Bytes,
    consumer: &Bytes,
    id: StreamId,
    delivery_time_ms: u64,
    delivery_count: u64,
    last_id: StreamId,
) -> Vec<Bytes> {
    vec![
        Bytes::from_static(b"XCLAIM"),
        key.clone(),
        group.clone(),
        consumer.clone(),
        Bytes::from_static(b"0"),
        id.to_bytes(),
        Bytes::from_static(b"TIME"),
        Bytes::from(delivery_time_ms.to_string()),
        Bytes::from_static(b"RETRYCOUNT"),
        Bytes::from(delivery_count.to_string()),
        Bytes::from_static(b"FORCE"),
        Bytes::from_static(b"JUSTID"),
        Bytes::from_static(b"LASTID"),
        last_id.to_bytes(),
    ]
}

/// XCLAIM key group consumer min-idle-time id… [IDLE ms] [TIME ms] [RETRYCOUNT n] [FORCE]
/// [JUSTID] [LASTID id] (Redis 7.0 `xclaimCommand`).
pub fn xclaim(exec: &mut Exec<'_>, command: &Command) -> Outcome {
    let argv = command.argv();
    match stream(exec.keyspace_ref(), &argv[1]) {
        Err(error) => return reply(error),
        Ok(stream) if stream.is_none_or(|s| !s.groups.contains_key(&argv[2])) => {
            return reply(errors::nogroup_key_or_group(&argv[1], &argv[2]));
        }
        Ok(_) => {}
    }
    let min_idle_ms = match args::parse_i64(&argv[4]) {
        Some(value) => value.max(0),
        None => return reply(errors::error("ERR Invalid min-idle-time argument for XCLAIM")),
    };
    let mut j = 5;
    let mut ids = Vec::new();
    while j < argv.len() {
        match args::stream_id(&argv[j], 0, true, false) {
            Ok(parsed) => ids.push(parsed.id),
            Err(_) => break,
        }
        j += 1;
    }
    let now_ms = exec.now_ms;
    let (mut force, mut justid) = (false, false);
    let mut delivery_time: Option<i64> = None;
    let mut retry_count: Option<i64> = None;
    let mut last_id = StreamId::MIN;
    while j < argv.len() {
        let more = argv.len() - 1 - j;
        let opt = &argv[j];
        let number = |arg: &Bytes, what: &str| {
            args::parse_i64(arg).ok_or_else(|| Reply::error(format!("ERR Invalid {what} option argument for XCLAIM")))
        };
        if opt.eq_ignore_ascii_case(b"force") {
            force = true;
        } else if opt.eq_ignore_ascii_case(b"justid") {
            justid = true;
        } else if opt.eq_ignore_ascii_case(b"idle") && more > 0 {
            j += 1;
            match number(&argv[j], "IDLE") {
                Ok(idle) => delivery_time = Some(now_ms as i64 - idle),
                Err(error) => return reply(error),
            }
        } else if opt.eq_ignore_ascii_case(b"time") && more > 0 {
            j += 1;
            match number(&argv[j], "TIME") {
                Ok(time) => delivery_time = Some(time),
                Err(error) => return reply(error),
            }
        } else if opt.eq_ignore_ascii_case(b"retrycount") && more > 0 {
            j += 1;
            match number(&argv[j], "RETRYCOUNT") {
                Ok(count) => retry_count = Some(count),
                Err(error) => return reply(error),
            }
        } else if opt.eq_ignore_ascii_case(b"lastid") && more > 0 {
            j += 1;
            match args::stream_id(&argv[j], 0, true, false) {
                Ok(parsed) => last_id = parsed.id,
                Err(error) => return reply(error),
            }
        } else {
            let mut text = b"ERR Unrecognized XCLAIM option '".to_vec();
            text.extend_from_slice(opt);
            text.push(b'\'');
            return reply(Reply::error(text));
        }
        j += 1;
    }
    let delivery_time_ms = match delivery_time {
        Some(time) if time >= 0 && time <= now_ms as i64 => time as u64,
        _ => now_ms,
    };
    let (key, group_name, consumer_name) = (argv[1].clone(), argv[2].clone(), argv[3].clone());
    let mut propagate = Vec::new();
    let (claimed, changes) = exec
        .keyspace()
        .update(&key, |value| {
            let stream = stream_mut(value);
            let group = stream.groups.get_mut(&group_name).expect("checked");
            let mut lastid_changed = false;
            if last_id > group.last_id {
                group.last_id = last_id;
                lastid_changed = true;
            }
            let mut claimed = Vec::new();
            let mut changes = 0u64;
            for id in ids {
                let Some(items) = stream.entries.get(&id) else {
                    if let Some(nack) = group.pel.get(&id) {
                        propagate.push(xclaim_propagation(
                            &key,
                            &group_name,
                            &nack.consumer,
                            id,
                            nack.delivery_time_ms,
                            nack.delivery_count,
                            group.last_id,
                        ));
                        group.ack(id);
                        changes += 1;
                        lastid_changed = false;
                    }
                    continue;
                };
                let existing = group.pel.get(&id).map(|nack| (nack.consumer.clone(), nack.delivery_time_ms));
                let previous = match existing {
                    Some((previous, delivered_ms)) => {
                        if min_idle_ms > 0 && (now_ms.saturating_sub(delivered_ms) as i64) < min_idle_ms {
                            continue;
                        }
                        Some(previous)
                    }
                    None if force => None,
                    None => continue,
                };
                group.consumer(&consumer_name, now_ms);
                if let Some(previous) = &previous
                    && *previous != consumer_name
                    && let Some(old) = group.consumers.get_mut(previous)
                {
                    old.pel.remove(&id);
                }
                let nack = group.pel.entry(id).or_insert_with(|| crate::parts::redis::stream::Nack {
                    consumer: consumer_name.clone(),
                    delivery_time_ms,
                    // `streamCreateNACK` starts the count at 1.
                    delivery_count: 1,
                });
                nack.consumer = consumer_name.clone();
                nack.delivery_time_ms = delivery_time_ms;
                match retry_count {
                    Some(count) if count >= 0 => nack.delivery_count = count as u64,
                    _ if !justid => nack.delivery_count += 1,
                    _ => {}
                }
                let count = nack.delivery_count;
                group.consumers.get_mut(&consumer_name).expect("created above").pel.insert(id);
                propagate.push(xclaim_propagation(
                    &key,
                    &group_name,
                    &consumer_name,
                    id,
                    delivery_time_ms,
                    count,
                    group.last_id,
                ));
                lastid_changed = false;
                claimed.push(if justid { id_reply(id) } else { entry_reply(id, items) });
                changes += 1;
            }
            if lastid_changed {
                propagate.push(vec![
                    Bytes::from_static(b"XGROUP"),
                    Bytes::from_static(b"SETID"),
                    key.clone(),
                    group_name.clone(),
                    group.last_id.to_bytes(),
                ]);
                changes += 1;
            }
            (claimed, changes)
        })
        .expect("the stream exists");
    exec.dirty(changes);
    exec.propagate_instead(propagate);
    reply(Reply::Array(claimed))
}
