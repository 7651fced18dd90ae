//! A Redis connection over the simulated network: the real `redis` crate's
//! `MultiplexedConnection` on a turmoil TcpStream. The one way every part (aggregator,
//! shipper, app) connects to Redis.
//!
//! Why a wrapper: the multiplexed connection comes with a driver future that must run as
//! its own task; the wrapper aborts it when the connection is dropped, so a reconnect never
//! leaves a zombie task reading a dead socket.

use std::time::Duration;

use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::{AsyncConnectionConfig, Cmd, Pipeline, RedisConnectionInfo, RedisFuture, RedisResult, Value};

use crate::vocab::pipeline::Address;

/// A live connection to the Railway Redis.
pub struct RedisConn {
    connection: MultiplexedConnection,
    driver: tokio::task::JoinHandle<()>,
}

impl RedisConn {
    /// Connects to Redis at `address` (the caller's peer, from its `PartCtx`) within
    /// `connect_timeout`. Every later round trip fails after `response_timeout` (set it above
    /// any BLMOVE timeout used on it).
    ///
    /// `CLIENT SETINFO` is skipped (`set_skip_set_lib_name`): the real client sends it by
    /// default and ignores its answer; leaving it out keeps golden command sequences short.
    pub async fn connect(
        address: &Address,
        connect_timeout: Duration,
        response_timeout: Duration,
    ) -> RedisResult<RedisConn> {
        let info = RedisConnectionInfo::default().set_skip_set_lib_name();
        let dial = async {
            let stream = crate::world::TcpStream::connect(address.pair()).await?;
            let config = AsyncConnectionConfig::new().set_response_timeout(Some(response_timeout));
            MultiplexedConnection::new_with_config(&info, stream, config).await
        };
        let (connection, driver) = match tokio::time::timeout(connect_timeout, dial).await {
            Ok(result) => result?,
            Err(_) => {
                return Err(redis::RedisError::from((
                    redis::ErrorKind::Io,
                    "connecting to Redis timed out",
                    format!("{address} after {connect_timeout:?}"),
                )));
            }
        };
        Ok(RedisConn { connection, driver: crate::world::spawn(driver) })
    }
}

impl Drop for RedisConn {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

impl ConnectionLike for RedisConn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        self.connection.req_packed_command(cmd)
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        self.connection.req_packed_commands(pipeline, offset, count)
    }

    fn get_db(&self) -> i64 {
        self.connection.get_db()
    }
}

/// BLMOVE's timeout argument: seconds, with a fraction when needed ("1", "0.5").
pub(crate) fn timeout_arg(timeout: Duration) -> String {
    format!("{}", timeout.as_secs_f64())
}
