//! Which host's software is running: a socket needs its own host's name to know which
//! link its packets take, and turmoil does not say.
//!
//! Why a wrapper on every task: turmoil polls every host's tasks on one thread in turn. A
//! host's root future and every task it spawns (`crate::world::spawn`, `LocalExec`) are
//! wrapped so that, while polled, the thread-local names their host.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

std::thread_local! {
    /// The host whose task is being polled.
    static HOST: RefCell<Option<Arc<str>>> = const { RefCell::new(None) };
}

/// The host whose software is running now. Panics outside a host's task.
pub fn current_host() -> Arc<str> {
    HOST.with(|host| host.borrow().clone()).expect("a socket is used only inside a host's software")
}

/// A future that names `host` as current while it is polled.
pub struct Scoped<F> {
    host: Arc<str>,
    future: Pin<Box<F>>,
}

impl<F: Future> Future for Scoped<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let previous = HOST.with(|host| host.replace(Some(Arc::clone(&self.host))));
        let result = self.future.as_mut().poll(cx);
        HOST.with(|host| *host.borrow_mut() = previous);
        result
    }
}

/// `future`, polled as `host`'s. With `host` `None`, the host of the task spawning it.
pub fn scoped<F: Future>(host: Option<Arc<str>>, future: F) -> Scoped<F> {
    let host = host.unwrap_or_else(current_host);
    Scoped { host, future: Box::pin(future) }
}
