//! The gRPC channel to Dash0 over the simulated network.
//!
//! How (ARCHITECTURE.md §8): tonic's `Endpoint` dials through a `service_fn` that opens a turmoil
//! `TcpStream` (never a real socket) wrapped in `TokioIo`. The channel connects lazily, so
//! the collector starts while Dash0 is unreachable, and reconnects after a broken
//! connection on the next call. Because a turmoil partition leaves a connection silently
//! dead, the channel sends HTTP/2 keepalive PINGs also while idle and gives each call a
//! deadline; a call cut by the deadline surfaces as CANCELLED.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use crate::world::TcpStream;
use hyper_util::rt::TokioIo;
use tonic::transport::{Channel, Endpoint, Uri};

/// How to reach a gRPC server in the simulated network.
#[derive(Clone, Debug)]
pub struct ChannelSettings {
    pub host: String,
    pub port: u16,
    /// Each call's deadline.
    pub request_timeout: Duration,
    /// Dialing gives up after this.
    pub connect_timeout: Duration,
    /// HTTP/2 PING after this long without frames (also while idle).
    pub keepalive_interval: Duration,
    /// The connection is dropped when a PING is not answered within this.
    pub keepalive_timeout: Duration,
}

type Dialing = Pin<Box<dyn Future<Output = std::io::Result<TokioIo<TcpStream>>> + Send>>;

/// A lazily connecting channel to `settings.host:settings.port`.
pub fn lazy_channel(settings: &ChannelSettings) -> Channel {
    let uri = format!("http://{}:{}", settings.host, settings.port);
    let endpoint = Endpoint::from_shared(uri)
        .expect("a host name and port make a valid URI")
        .timeout(settings.request_timeout)
        .connect_timeout(settings.connect_timeout)
        .http2_keep_alive_interval(settings.keepalive_interval)
        .keep_alive_timeout(settings.keepalive_timeout)
        .keep_alive_while_idle(true)
        // The channel's buffer worker and connection tasks live in the host's LocalSet, so
        // a crash drops them in spawn order (see `crate::world::spawn`).
        .executor(crate::world::LocalExec);
    let (host, port) = (settings.host.clone(), settings.port);
    let connector = tower::service_fn(move |_uri: Uri| {
        let host = host.clone();
        Box::pin(async move {
            let stream = TcpStream::connect((host.as_str(), port)).await?;
            Ok(TokioIo::new(stream))
        }) as Dialing
    });
    endpoint.connect_with_connector_lazy(connector)
}
