//! The gRPC channel to Dash0 over the simulated network, reconnecting as grpc-go does.
//!
//! How (ARCHITECTURE.md §8): tonic's `Endpoint` dials through a `service_fn` that opens a turmoil
//! `TcpStream` (never a real socket) wrapped in `TokioIo`. The channel connects lazily, so
//! the collector starts while Dash0 is unreachable.
//!
//! What tonic does not do and grpc-go (the real collector's gRPC) does is the connection
//! backoff, which this connector adds (FIDELITY.md "Collector"):
//! - A call that finds no connection dials (grpc-go's IDLE channel, or one whose connection
//!   broke) and waits for it. If the dial fails, the channel is in TRANSIENT_FAILURE.
//! - In TRANSIENT_FAILURE every call fails at once with UNAVAILABLE (the exporter does not
//!   set `wait_for_ready`), and a background task dials again on grpc-go's schedule: after
//!   a failed attempt it waits `backoff(n)` (1 s, then ×1.6 up to 120 s, ±20 %), each
//!   attempt allowed `max(connect_timeout, backoff(n))`. Calls keep failing fast while it
//!   dials ("sticky" TRANSIENT_FAILURE of pick_first).
//! - A successful dial resets the backoff; the next call uses that connection.
//!
//! So after a long outage the channel reconnects up to two minutes after Dash0 is back,
//! and the retry sender's attempts in between fail fast and spend its `max_elapsed_time`.
//!
//! HTTP/2 keepalive PINGs are sent when `keepalive_interval` is set (the pipeline's choice;
//! the collector's OTLP exporter sets none). Each call has a deadline; a call cut by it
//! surfaces as CANCELLED.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::vocab::EventKind;
use crate::world::{HostCtx, TcpStream};
use hyper_util::rt::TokioIo;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use tonic::transport::{Channel, Endpoint, Uri};

/// How to reach a gRPC server in the simulated network.
#[derive(Clone, Debug)]
pub struct ChannelSettings {
    pub host: String,
    pub port: u16,
    /// Each call's deadline.
    pub request_timeout: Duration,
    /// grpc-go's minimum connect timeout: each dial gets at least this.
    pub connect_timeout: Duration,
    /// HTTP/2 PING after this long without frames (also while idle); zero: no PINGs.
    pub keepalive_interval: Duration,
    /// The connection is dropped when a PING is not answered within this.
    pub keepalive_timeout: Duration,
}

/// grpc-go's connection backoff (`backoff.DefaultConfig`): the wait after the n-th failed
/// dial in a row.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ConnectionBackoff {
    pub base_delay: Duration,
    pub multiplier: f64,
    pub jitter: f64,
    pub max_delay: Duration,
}

impl Default for ConnectionBackoff {
    /// grpc-go backoff.DefaultConfig: 1 s, ×1.6, ±20 %, at most 120 s.
    fn default() -> Self {
        ConnectionBackoff {
            base_delay: Duration::from_secs(1),
            multiplier: 1.6,
            jitter: 0.2,
            max_delay: Duration::from_secs(120),
        }
    }
}

impl ConnectionBackoff {
    /// grpc-go `internal/backoff.Exponential.Backoff(retries)`: the base delay for the first
    /// retry (no jitter), else base·multiplier^retries capped at max, then ± jitter.
    pub fn delay(&self, retries: u32, rng: &mut impl Rng) -> Duration {
        if retries == 0 {
            return self.base_delay;
        }
        let (mut delay, max) = (self.base_delay.as_secs_f64(), self.max_delay.as_secs_f64());
        let mut left = retries;
        // Bounded: at most `retries` passes, and it stops once the cap is reached.
        while delay < max && left > 0 {
            delay *= self.multiplier;
            left -= 1;
        }
        let capped = delay.min(max);
        let jittered = capped * (1.0 + self.jitter * (rng.random::<f64>() * 2.0 - 1.0));
        debug_assert!(jittered >= 0.0 && jittered <= max * (1.0 + self.jitter));
        Duration::from_secs_f64(jittered.max(0.0))
    }
}

/// Where the channel's connection stands (grpc-go's subchannel, as pick_first shows it).
enum Phase {
    /// No connection: the next call dials.
    Idle,
    /// The last dial failed: calls fail fast while the background task redials.
    TransientFailure,
    /// The background task connected: the next call takes this connection.
    Connected(Box<TokioIo<TcpStream>>),
}

/// The channel's connection state, shared by the connector and the redial task.
struct Subchannel {
    phase: Phase,
    /// Failed dials in a row (grpc-go's `backoffIdx`).
    retries: u32,
    last_error: String,
}

/// Everything a dial needs; cheap to clone.
#[derive(Clone)]
struct Dialer {
    host: Arc<str>,
    port: u16,
    connect_timeout: Duration,
    backoff: ConnectionBackoff,
    state: Arc<Mutex<Subchannel>>,
    rng: Arc<Mutex<ChaCha8Rng>>,
    ctx: HostCtx,
}

type Dialing = Pin<Box<dyn Future<Output = std::io::Result<TokioIo<TcpStream>>> + Send>>;

/// A lazily connecting channel to `settings.host:settings.port` that dials on every call
/// needing a connection, with no backoff (tonic's own behaviour; for tests of a server).
pub fn lazy_channel(settings: &ChannelSettings) -> Channel {
    let (host, port) = (settings.host.clone(), settings.port);
    let connector = tower::service_fn(move |_uri: Uri| {
        let host = host.clone();
        Box::pin(async move {
            let stream = TcpStream::connect((host.as_str(), port)).await?;
            Ok(TokioIo::new(stream))
        }) as Dialing
    });
    endpoint(settings).connect_timeout(settings.connect_timeout).connect_with_connector_lazy(connector)
}

/// A lazily connecting channel to `settings.host:settings.port` that reconnects on grpc-go's
/// schedule `backoff`; `ctx` is the host's (events, jitter, the redial task).
pub fn grpc_go_channel(settings: &ChannelSettings, backoff: ConnectionBackoff, ctx: &HostCtx) -> Channel {
    let dialer = Dialer {
        host: Arc::from(settings.host.as_str()),
        port: settings.port,
        connect_timeout: settings.connect_timeout,
        backoff,
        state: Arc::new(Mutex::new(Subchannel { phase: Phase::Idle, retries: 0, last_error: String::new() })),
        rng: Arc::new(Mutex::new(ctx.rng("collector/channel"))),
        ctx: ctx.clone(),
    };
    let connector = tower::service_fn(move |_uri: Uri| {
        let dialer = dialer.clone();
        Box::pin(async move { dialer.connect_for_call().await }) as Dialing
    });
    endpoint(settings).connect_with_connector_lazy(connector)
}

/// The endpoint both channels share: the call deadline, keepalive when set, the host's
/// executor.
fn endpoint(settings: &ChannelSettings) -> Endpoint {
    let uri = format!("http://{}:{}", settings.host, settings.port);
    let mut endpoint = Endpoint::from_shared(uri)
        .expect("a host name and port make a valid URI")
        .timeout(settings.request_timeout)
        // The channel's buffer worker and connection tasks live in the host's LocalSet, so
        // a crash drops them in spawn order (see `crate::world::spawn`).
        .executor(crate::world::LocalExec);
    if !settings.keepalive_interval.is_zero() {
        endpoint = endpoint
            .http2_keep_alive_interval(settings.keepalive_interval)
            .keep_alive_timeout(settings.keepalive_timeout)
            .keep_alive_while_idle(true);
    }
    endpoint
}

impl Dialer {
    /// What a call that needs a connection gets: the redialled one, a fast UNAVAILABLE in
    /// TRANSIENT_FAILURE, or a dial it waits for.
    async fn connect_for_call(&self) -> std::io::Result<TokioIo<TcpStream>> {
        {
            let mut state = self.lock();
            match std::mem::replace(&mut state.phase, Phase::Idle) {
                Phase::Connected(stream) => return Ok(*stream),
                Phase::TransientFailure => {
                    state.phase = Phase::TransientFailure;
                    let message = format!("connection in backoff: {}", state.last_error);
                    return Err(std::io::Error::new(std::io::ErrorKind::ConnectionRefused, message));
                }
                Phase::Idle => {}
            }
        }
        let backoff = self.backoff_now();
        match self.dial(backoff).await {
            Ok(stream) => {
                self.lock().retries = 0;
                Ok(stream)
            }
            Err(error) => {
                self.failed(&error, backoff);
                crate::world::spawn(self.clone().redial());
                Err(error)
            }
        }
    }

    /// The background redials of TRANSIENT_FAILURE until one connects.
    async fn redial(self) {
        // Bounded by the run: each pass waits at least base_delay·(1 − jitter) > 0.
        loop {
            let wait = {
                let state = self.lock();
                debug_assert!(matches!(state.phase, Phase::TransientFailure));
                self.backoff.delay(state.retries, &mut *self.rng())
            };
            tokio::time::sleep(wait).await;
            if Arc::strong_count(&self.state) == 1 {
                // The channel is gone (the collector shut down): nobody would use a connection.
                return;
            }
            self.lock().retries += 1;
            let backoff = self.backoff_now();
            match self.dial(backoff).await {
                Ok(stream) => {
                    let mut state = self.lock();
                    state.retries = 0;
                    state.phase = Phase::Connected(Box::new(stream));
                    drop(state);
                    self.ctx.record(EventKind::CollectorChannel, format!("{}:{} connected", self.host, self.port));
                    return;
                }
                Err(error) => self.failed(&error, backoff),
            }
        }
    }

    /// grpc-go's `backoffFor` for the attempt about to start (drawn once per attempt).
    fn backoff_now(&self) -> Duration {
        let retries = self.lock().retries;
        self.backoff.delay(retries, &mut *self.rng())
    }

    /// One dial, allowed `max(connect_timeout, backoff)` as grpc-go allows it.
    async fn dial(&self, backoff: Duration) -> std::io::Result<TokioIo<TcpStream>> {
        let allowed = self.connect_timeout.max(backoff);
        let connect = TcpStream::connect((&*self.host, self.port));
        match tokio::time::timeout(allowed, connect).await {
            Ok(Ok(stream)) => Ok(TokioIo::new(stream)),
            Ok(Err(error)) => Err(error),
            Err(_) => Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("dial {}:{} timed out after {}ms", self.host, self.port, allowed.as_millis()),
            )),
        }
    }

    /// A dial failed: TRANSIENT_FAILURE until a redial connects.
    fn failed(&self, error: &std::io::Error, backoff: Duration) {
        let mut state = self.lock();
        state.phase = Phase::TransientFailure;
        state.last_error = error.to_string();
        let retries = state.retries;
        drop(state);
        self.ctx.record(
            EventKind::CollectorChannel,
            format!(
                "{}:{} dial {} failed: {error}; transient failure, next dial in {}ms",
                self.host,
                self.port,
                retries + 1,
                backoff.as_millis()
            ),
        );
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Subchannel> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn rng(&self) -> std::sync::MutexGuard<'_, ChaCha8Rng> {
        self.rng.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    /// grpc-go's schedule: 1 s (no jitter), then 1.6 s, 2.56 s, … ± 20 %, capped at 120 s.
    #[test]
    fn the_backoff_grows_by_1_6_to_120s_within_20_percent() {
        let backoff = ConnectionBackoff::default();
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        assert_eq!(backoff.delay(0, &mut rng), Duration::from_secs(1));
        let mut expected = 1.0f64;
        for retries in 1..20 {
            expected = (expected * 1.6).min(120.0);
            let delay = backoff.delay(retries, &mut rng).as_secs_f64();
            assert!(delay >= expected * 0.8 - 1e-9 && delay <= expected * 1.2 + 1e-9, "{retries}: {delay}");
        }
        assert!(backoff.delay(30, &mut rng) <= Duration::from_secs(144));
    }
}
