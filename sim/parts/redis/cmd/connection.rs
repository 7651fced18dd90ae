//! Connection commands: PING, ECHO, SELECT, AUTH, QUIT, CLIENT ID/GETNAME/SETNAME.
//! CLIENT SETINFO does not exist in Redis 7.0 (it answers `unknown subcommand`), and the
//! `redis` crate tolerates that.

use bytes::Bytes;

use crate::proto::resp::{Command, Reply, errors};

use crate::parts::redis::args;
use crate::parts::redis::db::{Exec, Outcome};

fn reply(reply: Reply) -> Outcome {
    Outcome::Reply(reply)
}

pub fn ping(_: &mut Exec<'_>, command: &Command) -> Outcome {
    match command.argc() {
        1 => reply(Reply::pong()),
        2 => reply(Reply::Bulk(command.argv()[1].clone())),
        _ => reply(errors::wrong_number_of_arguments("ping")),
    }
}

pub fn echo(_: &mut Exec<'_>, command: &Command) -> Outcome {
    reply(Reply::Bulk(command.argv()[1].clone()))
}

pub(crate) fn quit(exec: &mut Exec<'_>, _: &Command) -> Outcome {
    exec.session.closing = true;
    reply(Reply::ok())
}

pub fn select(exec: &mut Exec<'_>, command: &Command) -> Outcome {
    let index = match args::parse_i64(&command.argv()[1]).filter(|i| i32::try_from(*i).is_ok()) {
        Some(index) => index,
        None => return reply(errors::error(errors::NOT_AN_INTEGER)),
    };
    if index < 0 || index as usize >= exec.keyspaces_count() {
        return reply(errors::error(errors::DB_INDEX_OUT_OF_RANGE));
    }
    exec.session.db_index = index as usize;
    reply(Reply::ok())
}

pub fn auth(exec: &mut Exec<'_>, command: &Command) -> Outcome {
    let argv = command.argv();
    if argv.len() > 3 {
        return reply(errors::error(errors::SYNTAX));
    }
    let required = exec.config().requirepass.clone();
    let (username, password): (&[u8], &Bytes) = if argv.len() == 2 {
        if required.is_none() {
            return reply(errors::error(errors::AUTH_NOT_CONFIGURED));
        }
        (b"default", &argv[1])
    } else {
        (&argv[1], &argv[2])
    };
    let accepted =
        username == b"default" && required.as_ref().is_none_or(|required| required.as_bytes() == password.as_ref());
    if accepted {
        exec.session.authenticated = true;
        reply(Reply::ok())
    } else {
        reply(errors::error(errors::WRONGPASS))
    }
}

pub(crate) fn client_id(exec: &mut Exec<'_>, _: &Command) -> Outcome {
    reply(Reply::Integer(exec.session.id as i64))
}

pub(crate) fn client_getname(exec: &mut Exec<'_>, _: &Command) -> Outcome {
    reply(Reply::bulk_or_null(exec.session.name.clone()))
}

pub(crate) fn client_setname(exec: &mut Exec<'_>, command: &Command) -> Outcome {
    let name = &command.argv()[2];
    if name.iter().any(|&b| !(b'!'..=b'~').contains(&b)) {
        return reply(errors::error("ERR Client names cannot contain spaces, newlines or special characters."));
    }
    exec.session.name = (!name.is_empty()).then(|| name.clone());
    reply(Reply::ok())
}
