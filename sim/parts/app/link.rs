//! A lazily (re)connected Redis connection with bounded retries: how every app task talks
//! to Redis. A failed step drops the connection (after a timeout its state is unknown: a
//! reply may still be in flight) and the next attempt dials again.

use std::time::Duration;

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use redis::RedisResult;

use crate::parts::PartCtx;
use crate::parts::redis_client::RedisConn;
use crate::vocab::Part;
use crate::vocab::pipeline::Address;

/// Longest wait between attempts.
pub(crate) const RETRY_DELAY_MAX: Duration = Duration::from_secs(5);
/// First wait between attempts (doubling, jittered).
pub(crate) const RETRY_DELAY_INITIAL: Duration = Duration::from_millis(200);

/// One task's Redis connection.
pub(crate) struct RedisLink {
    conn: Option<RedisConn>,
    /// The job queue's Redis, as the wiring gave it to the app.
    address: Address,
    connect_timeout: Duration,
    response_timeout: Duration,
}

impl RedisLink {
    /// Not connected yet, to the Redis `ctx`'s peers name for the app; `response_timeout`
    /// must exceed any BLMOVE timeout used.
    pub fn new(ctx: &PartCtx, connect_timeout: Duration, response_timeout: Duration) -> Self {
        let address = ctx.peer(Part::App, Part::Redis).clone();
        RedisLink { conn: None, address, connect_timeout, response_timeout }
    }

    /// The connection, dialing if needed.
    pub async fn conn(&mut self) -> RedisResult<&mut RedisConn> {
        if self.conn.is_none() {
            self.conn = Some(RedisConn::connect(&self.address, self.connect_timeout, self.response_timeout).await?);
        }
        Ok(self.conn.as_mut().expect("connected above"))
    }

    /// Forgets the connection after an error.
    pub fn reset(&mut self) {
        self.conn = None;
    }
}

/// The wait before retry `attempt` (0-based): 200 ms · 2^attempt, ×[0.5, 1.5), ≤ 5 s.
pub(crate) fn retry_delay(rng: &mut ChaCha8Rng, attempt: u32) -> Duration {
    let base = RETRY_DELAY_INITIAL.saturating_mul(1u32 << attempt.min(10)).min(RETRY_DELAY_MAX);
    base.mul_f64(rng.random_range(0.5..1.5)).min(RETRY_DELAY_MAX)
}

/// Runs one Redis step with up to `$attempts` attempts: on error the link is reset and the
/// task sleeps [`retry_delay`] before dialing again. Evaluates to the last `RedisResult`.
/// `|$conn| $body`: `$body` is a future using `$conn: &mut RedisConn`.
#[macro_export]
macro_rules! redis_step {
    ($link:expr, $rng:expr, $attempts:expr, |$conn:ident| $body:expr) => {{
        let attempts: u32 = $attempts;
        assert!(attempts > 0, "a Redis step needs at least one attempt");
        let mut last = None;
        for attempt in 0..attempts {
            let outcome = match $link.conn().await {
                Ok($conn) => $body.await,
                Err(error) => Err(error),
            };
            match outcome {
                Ok(value) => {
                    last = Some(Ok(value));
                    break;
                }
                Err(error) => {
                    $link.reset();
                    last = Some(Err(error));
                    if attempt + 1 < attempts {
                        tokio::time::sleep($crate::parts::app::link::retry_delay($rng, attempt)).await;
                    }
                }
            }
        }
        last.expect("at least one attempt ran")
    }};
}
