//! Spawning a host's tasks so that a crash drops them in the same order in every run.
//!
//! Why not `tokio::spawn`: a crash drops the host's tasks, and every connection a dropped
//! task owned sends its FIN or RST through the world, each send drawing latency from the
//! world's one random stream — so the order in which tasks are dropped is part of the
//! run. tokio keeps a runtime's own tasks in a list sharded by task id, a counter global to
//! the process, and drops them shard by shard: the same seed ran differently after other
//! runs in the same process (a chaos sweep, parallel tests). Tasks spawned here live in the
//! host's `LocalSet` (turmoil runs every host's software on one), whose list is dropped in
//! spawn order. `tests/determinism_rules.rs` refuses `tokio::spawn` in `sim/`.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use tokio::task::{AbortHandle, JoinHandle};

/// Live tasks a host's software kept past this many get their finished ones pruned.
const TASKS_PRUNE_AT: usize = 1024;

std::thread_local! {
    /// Every host's spawned tasks, in spawn order: when the software's root future returns
    /// (the process exits), they are aborted, as the kernel ends a process's threads and
    /// closes its sockets (turmoil 0.7.2 would leave them running, unpolled, until a restart).
    static TASKS: RefCell<BTreeMap<Arc<str>, Vec<AbortHandle>>> = const { RefCell::new(BTreeMap::new()) };
}

/// Notes a task of the current host.
fn track(handle: AbortHandle) {
    let host = super::net::current_host();
    TASKS.with(|tasks| {
        let mut tasks = tasks.borrow_mut();
        let list = tasks.entry(host).or_default();
        if list.len() >= TASKS_PRUNE_AT {
            list.retain(|task| !task.is_finished());
        }
        list.push(handle);
    });
}

/// Aborts every task `host` spawned, in spawn order, and waits (a bounded number of yields)
/// until the host's `LocalSet` has dropped them: its process exited.
pub(crate) async fn end_tasks_of(host: &str) {
    let handles = TASKS.with(|tasks| tasks.borrow_mut().remove(host).unwrap_or_default());
    for handle in &handles {
        handle.abort();
    }
    // Each yield lets the LocalSet run (and so drop) the aborted tasks queued before us.
    for _ in 0..64 {
        if handles.iter().all(AbortHandle::is_finished) {
            return;
        }
        tokio::task::yield_now().await;
    }
}

/// Spawns `future` as a task of the current host (its `LocalSet`).
///
/// Panics outside a host's software (there is no `LocalSet` to spawn on).
pub fn spawn<F>(future: F) -> JoinHandle<F::Output>
where
    F: Future + 'static,
    F::Output: 'static,
{
    let handle = tokio::task::spawn_local(super::net::scoped(None, future));
    track(handle.abort_handle());
    handle
}

/// An executor for hyper and tonic that spawns onto the current host's `LocalSet`, for
/// the tasks those libraries start themselves (HTTP/2 streams, a channel's buffer worker).
#[derive(Clone, Copy, Debug, Default)]
pub struct LocalExec;

impl<F> hyper::rt::Executor<F> for LocalExec
where
    F: Future + 'static,
    F::Output: 'static,
{
    fn execute(&self, future: F) {
        // The task runs detached, as hyper expects; the host still ends it when it exits.
        track(tokio::task::spawn_local(super::net::scoped(None, future)).abort_handle());
    }
}
