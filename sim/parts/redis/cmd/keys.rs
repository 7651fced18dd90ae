//! Keyspace commands: DEL, EXISTS, TYPE.

use crate::proto::resp::{Command, Reply};

use crate::parts::redis::db::{Exec, Outcome};
use crate::parts::redis::value::Value;

/// Releases custody of every list value of a deleted key.
pub(crate) fn release_value(exec: &mut Exec<'_>, value: Value) {
    match value {
        Value::List(list) => {
            for item in list.into_items() {
                exec.removed(&item);
            }
        }
        Value::Hash(_) => {}
    }
}

pub fn del(exec: &mut Exec<'_>, command: &Command) -> Outcome {
    let mut deleted = 0;
    for key in command.args() {
        if let Some(value) = exec.keyspace().remove(key) {
            release_value(exec, value);
            deleted += 1;
        }
    }
    exec.dirty(deleted as u64);
    Outcome::Reply(Reply::Integer(deleted))
}

pub fn exists(exec: &mut Exec<'_>, command: &Command) -> Outcome {
    let count = command.args().iter().filter(|key| exec.keyspace_ref().contains(key)).count();
    Outcome::Reply(Reply::Integer(count as i64))
}

pub(crate) fn type_(exec: &mut Exec<'_>, command: &Command) -> Outcome {
    let name = exec.keyspace_ref().get(&command.argv()[1]).map_or("none", Value::type_name);
    Outcome::Reply(Reply::simple(name))
}
