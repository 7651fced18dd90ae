//! Clients blocked in BLMOVE, and serving them when data arrives.
//!
//! Why a queue per key: Redis serves the client that has waited longest first. A blocked
//! client's session is parked here with its command; when a push signals the key
//! (`Db::take_ready_keys`), the waiters are retried in FIFO order, each served reply sent
//! back through a oneshot channel. Nothing polls: the connection awaits its channel, its
//! deadline and its socket.

use std::collections::{BTreeMap, VecDeque};

use bytes::Bytes;
use tokio::sync::oneshot;

use crate::proto::resp::{Command, Reply};

use super::db::{Db, Session};

/// What a served waiter gets back: its reply and its session.
pub(crate) type Served = (Reply, Session);

struct Waiter {
    id: u64,
    command: Command,
    session: Session,
    reply_to: oneshot::Sender<Served>,
}

/// Every blocked client, per (database, key), longest-waiting first.
#[derive(Default)]
pub(crate) struct Waiters {
    next_id: u64,
    by_key: BTreeMap<(usize, Bytes), VecDeque<Waiter>>,
}

/// A ticket to cancel a wait (timeout or disconnect).
#[derive(Clone, Debug)]
pub(crate) struct Ticket {
    id: u64,
    db_index: usize,
    key: Bytes,
}

/// The most ready-key rounds served after one command: each round is caused by a push made
/// by a served waiter (BLMOVE into a list another client waits on), so chains are short;
/// the bound only guards against a cycle of waiters feeding each other forever.
const SERVE_ROUNDS_LIMIT: usize = 1_000;

impl Waiters {
    /// Parks `session` until `key` gets data; the receiver yields the reply.
    pub fn block(
        &mut self,
        db: &mut Db,
        db_index: usize,
        key: Bytes,
        command: Command,
        session: Session,
    ) -> (Ticket, oneshot::Receiver<Served>) {
        let (reply_to, receiver) = oneshot::channel();
        let id = self.next_id;
        self.next_id += 1;
        db.block_on(db_index, key.clone());
        self.by_key.entry((db_index, key.clone())).or_default().push_back(Waiter { id, command, session, reply_to });
        (Ticket { id, db_index, key }, receiver)
    }

    /// Removes a waiter that timed out or disconnected; `None` if it was served meanwhile
    /// (its reply is then in its channel).
    pub(crate) fn cancel(&mut self, db: &mut Db, ticket: &Ticket) -> Option<Session> {
        let entry = (ticket.db_index, ticket.key.clone());
        let queue = self.by_key.get_mut(&entry)?;
        let index = queue.iter().position(|waiter| waiter.id == ticket.id)?;
        let waiter = queue.remove(index).expect("index found");
        if queue.is_empty() {
            self.by_key.remove(&entry);
        }
        db.unblock(ticket.db_index, &ticket.key);
        Some(waiter.session)
    }

    /// Serves waiters on every key that got data, FIFO per key, until no key is ready.
    /// Returns how many were served.
    pub(crate) fn serve_ready(&mut self, db: &mut Db) -> usize {
        let mut served = 0;
        for _ in 0..SERVE_ROUNDS_LIMIT {
            let ready = db.take_ready_keys();
            if ready.is_empty() {
                return served;
            }
            for entry in ready {
                let Some(queue) = self.by_key.get_mut(&entry) else { continue };
                let mut index = 0;
                while index < queue.len() {
                    let waiter = &mut queue[index];
                    match db.retry_blocked(&mut waiter.session, &waiter.command) {
                        Some(reply) => {
                            let waiter = queue.remove(index).expect("index < len");
                            db.unblock(entry.0, &entry.1);
                            // A dropped receiver means the connection is gone; the command ran
                            // anyway, as it would have in Redis an instant before the close.
                            let _ = waiter.reply_to.send((reply, waiter.session));
                            served += 1;
                        }
                        None => index += 1,
                    }
                }
                if queue.is_empty() {
                    self.by_key.remove(&entry);
                }
            }
        }
        panic!("blocked clients kept waking each other for {SERVE_ROUNDS_LIMIT} rounds: a cycle of BLMOVEs");
    }
}
