//! Server commands: DBSIZE, FLUSHALL, INFO, CONFIG GET/SET.
//!
//! CONFIG supports `maxmemory` and `maxmemory-policy` (only `noeviction`, the default and
//! the only policy modelled): enough for a scenario's backpressure fault and for the
//! differential test to set the same limit on both servers.

use bytes::Bytes;

use crate::proto::resp::{Command, Reply, errors};

use crate::parts::redis::config::Persistence;
use crate::parts::redis::db::{Exec, Outcome};
use crate::parts::redis::memory;

use super::keys::release_value;

pub(crate) fn dbsize(exec: &mut Exec<'_>, _: &Command) -> Outcome {
    Outcome::Reply(Reply::Integer(exec.keyspace_ref().len() as i64))
}

pub(crate) fn flushall(exec: &mut Exec<'_>, command: &Command) -> Outcome {
    let argv = command.argv();
    if argv.len() > 2 || (argv.len() == 2 && !(command.arg_is(1, "sync") || command.arg_is(1, "async"))) {
        return Outcome::Reply(errors::error(errors::SYNTAX));
    }
    let mut values = Vec::new();
    for keyspace in exec.keyspaces_mut() {
        values.extend(keyspace.clear());
    }
    for value in values {
        release_value(exec, value);
    }
    exec.dirty(1);
    Outcome::Reply(Reply::ok())
}

pub fn info(exec: &mut Exec<'_>, command: &Command) -> Outcome {
    let used = exec.used_memory();
    let config = exec.config();
    let memory_section = format!(
        "# Memory\r\nused_memory:{used}\r\nused_memory_human:{}\r\nmaxmemory:{}\r\nmaxmemory_human:{}\r\nmaxmemory_policy:noeviction\r\n",
        memory::human(used),
        config.maxmemory_bytes,
        memory::human(config.maxmemory_bytes),
    );
    let aof_enabled = u8::from(config.persistence != Persistence::None);
    let persistence_section = format!("# Persistence\r\nloading:0\r\naof_enabled:{aof_enabled}\r\n");
    let section = command.arg(1).map(|s| s.to_ascii_lowercase());
    let text = match section.as_deref() {
        Some(b"memory") => memory_section,
        Some(b"persistence") => persistence_section,
        None | Some(b"all") | Some(b"default") | Some(b"everything") => {
            format!("{memory_section}\r\n{persistence_section}")
        }
        Some(_) => String::new(),
    };
    Outcome::Reply(Reply::Bulk(Bytes::from(text)))
}

/// Parses a memory size as redis.conf does (`100mb`, `1gb`, `512k`, plain bytes).
fn parse_memory(text: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(text).ok()?.to_ascii_lowercase();
    let units: [(&str, u64); 8] = [
        ("kb", 1024),
        ("mb", 1024 * 1024),
        ("gb", 1024 * 1024 * 1024),
        ("k", 1000),
        ("m", 1_000_000),
        ("g", 1_000_000_000),
        ("b", 1),
        ("", 1),
    ];
    for (suffix, multiplier) in units {
        if let Some(number) = text.strip_suffix(suffix) {
            if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
                continue;
            }
            return number.parse::<u64>().ok()?.checked_mul(multiplier);
        }
    }
    None
}

pub(crate) fn config_set(exec: &mut Exec<'_>, command: &Command) -> Outcome {
    let pairs = &command.argv()[2..];
    if !pairs.len().is_multiple_of(2) {
        return Outcome::Reply(errors::wrong_number_of_arguments("config|set"));
    }
    // Validate everything first: CONFIG SET is all or nothing.
    let mut maxmemory = None;
    for pair in pairs.chunks(2) {
        let (name, value) = (&pair[0], &pair[1]);
        if name.eq_ignore_ascii_case(b"maxmemory") {
            match parse_memory(value) {
                Some(bytes) => maxmemory = Some(bytes),
                None => {
                    return Outcome::Reply(Reply::error(
                        "ERR CONFIG SET failed (possibly related to argument 'maxmemory') - argument couldn't be parsed into an integer",
                    ));
                }
            }
        } else if name.eq_ignore_ascii_case(b"maxmemory-policy") {
            if !value.eq_ignore_ascii_case(b"noeviction") {
                return Outcome::Reply(Reply::error(
                    "ERR CONFIG SET failed (possibly related to argument 'maxmemory-policy') - the model supports noeviction only",
                ));
            }
        } else {
            let mut text = b"ERR Unknown option or number of arguments for CONFIG SET - '".to_vec();
            text.extend_from_slice(name);
            text.push(b'\'');
            return Outcome::Reply(Reply::error(text));
        }
    }
    if let Some(bytes) = maxmemory {
        exec.config_mut().maxmemory_bytes = bytes;
    }
    Outcome::Reply(Reply::ok())
}

pub(crate) fn config_get(exec: &mut Exec<'_>, command: &Command) -> Outcome {
    let mut items = Vec::new();
    for pattern in &command.argv()[2..] {
        if pattern.eq_ignore_ascii_case(b"maxmemory") {
            items.push(Bytes::from_static(b"maxmemory"));
            items.push(Bytes::from(exec.config().maxmemory_bytes.to_string()));
        } else if pattern.eq_ignore_ascii_case(b"maxmemory-policy") {
            items.push(Bytes::from_static(b"maxmemory-policy"));
            items.push(Bytes::from_static(b"noeviction"));
        }
    }
    Outcome::Reply(Reply::bulks(items))
}
