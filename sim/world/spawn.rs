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

use std::future::Future;

use tokio::task::JoinHandle;

/// Spawns `future` as a task of the current host (its `LocalSet`).
///
/// Panics outside a host's software (there is no `LocalSet` to spawn on).
pub fn spawn<F>(future: F) -> JoinHandle<F::Output>
where
    F: Future + 'static,
    F::Output: 'static,
{
    tokio::task::spawn_local(super::net::scoped(None, future))
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
        // The handle is dropped: the task runs detached, as hyper expects.
        drop(tokio::task::spawn_local(super::net::scoped(None, future)));
    }
}
