//! in_forward's `<transport tls>`: the server side of Forward over TLS (FIDELITY.md
//! "Forward over TLS").
//!
//! Why its own file: in_forward's frame handling changes for other reasons; TLS only wraps
//! the accepted stream. The certificate comes from the run's PKI (the seed) for this host's
//! name and is picked at every handshake from the control's switch, so a fault swaps it at a
//! moment and connections already made keep theirs (as a reloaded certificate does).
//! A failed handshake closes the connection: Fluentd's `try_tls_accept` logs "unexpected
//! error before accepting TLS connection by OpenSSL" and closes the socket.

use std::sync::Arc;

use crate::parts::PartCtx;
use crate::vocab::EventKind;
use crate::world::TcpStream;
use crate::world::tls::{CertResolver, CertSwitch, Pki, ServerStream, Transport};

use super::Shared;
use super::config::{AggregatorConfig, TlsVersion};

/// The server config with `tls` on (`None` off); `Err` names what could not be made.
pub(crate) fn server_config(
    ctx: &PartCtx,
    config: &AggregatorConfig,
    switch: CertSwitch,
) -> Result<Option<Arc<rustls::ServerConfig>>, String> {
    if !config.tls {
        return Ok(None);
    }
    let clock = ctx.host.clock().clone();
    let epoch_unix_secs = clock.epoch_unix_secs();
    let pki = Pki::new(ctx.host.run_seed(), epoch_unix_secs, ctx.host.name())
        .map_err(|error| format!("aggregator.tls: {error}"))?;
    let resolver =
        CertResolver::new(pki, switch, epoch_unix_secs).map_err(|error| format!("aggregator.tls: {error}"))?;
    let versions: &[&'static rustls::SupportedProtocolVersion] = match config.tls_version {
        TlsVersion::Tls12 => &[&rustls::version::TLS12],
        TlsVersion::Tls13 => &[&rustls::version::TLS13],
    };
    crate::world::tls::server_config(clock, Arc::new(resolver), versions)
        .map(Some)
        .map_err(|error| format!("aggregator.tls: {error}"))
}

/// The accepted connection as in_forward reads it: plain, or after a TLS handshake that must
/// end within `connection_idle_timeout` (a silent client is closed as a silent connection
/// is). `None`: the handshake failed or timed out, the connection is closed.
pub(crate) async fn accept(shared: &Shared, stream: TcpStream, peer: &str, index: u64) -> Option<ServerStream> {
    let Some(config) = &shared.tls else { return Some(Transport::Plain(stream)) };
    let host = &shared.ctx.host;
    let rng = host.rng(&format!("aggregator/tls/{index}"));
    let timeout = shared.config.connection_idle_timeout;
    match tokio::time::timeout(timeout, crate::world::tls::accept(Arc::clone(config), stream, rng)).await {
        Ok(Ok(stream)) => Some(stream),
        Ok(Err(error)) => {
            let reason = crate::world::tls::failure_reason(&error);
            host.record(EventKind::AggregatorTlsHandshakeFailed, format!("{peer}: {reason}"));
            None
        }
        Err(_) => {
            host.record(EventKind::AggregatorTlsHandshakeFailed, format!("{peer}: no handshake within {timeout:?}"));
            None
        }
    }
}
