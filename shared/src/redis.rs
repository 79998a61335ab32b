//! Redis connections. Every key the fleet writes starts with the configured namespace, so
//! fleets and tests sharing one Redis never see each other's data.
//!
//! One multiplexed connection per process, shared by every task: concurrent commands are
//! pipelined on its socket, and it reconnects by itself after Redis restarts or the link
//! drops (the command that saw the failure gets the error; later ones use the new link).
//! A checkout pool is deliberately not used: deadpool-redis checks each checkout with an
//! `UNWATCH` + `PING` round trip, which measured as a quarter of all Redis round trips of a
//! worker, and none of the fleet's commands needs a connection of its own (no `WATCH`, no
//! blocking pops; transactions go out as one atomic pipeline).

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use secrecy::{ExposeSecret, SecretString};

/// A handle on the shared connection; clones are cheap and all use the same socket.
pub type Connection = ConnectionManager;

#[derive(Debug, thiserror::Error)]
pub enum RedisSetupError {
    #[error("REDIS_URL is invalid: {0}")]
    Url(String),
    #[error("Redis is not reachable: {0}")]
    Unreachable(String),
}

/// The process's Redis connection. Creating it does not connect; see [`ping`].
#[derive(Clone)]
pub struct Redis {
    manager: ConnectionManager,
}

impl Redis {
    /// A handle for issuing commands; connects on first use.
    pub fn connection(&self) -> Connection {
        self.manager.clone()
    }
}

/// Must be called inside a Tokio runtime: the connection's driver runs as a task.
pub fn open(url: &SecretString) -> Result<Redis, RedisSetupError> {
    let client = redis::Client::open(url.expose_secret())
        .map_err(|e| RedisSetupError::Url(e.to_string()))?;
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(1)))
        .set_response_timeout(Some(Duration::from_secs(2)))
        // A reconnect gives up after a few quick tries; the next command starts another, so a
        // long Redis outage surfaces as prompt errors instead of commands hanging.
        .set_number_of_retries(3)
        .set_max_delay(Duration::from_millis(500));
    let manager = ConnectionManager::new_lazy_with_config(client, config)
        .map_err(|e| RedisSetupError::Url(e.to_string()))?;
    Ok(Redis { manager })
}

/// Checks that Redis answers, with a bound on how long the answer may take.
pub async fn ping(redis: &Redis) -> Result<(), RedisSetupError> {
    let mut connection = redis.connection();
    let ping = redis::cmd("PING");
    let attempt = ping.query_async::<String>(&mut connection);
    match tokio::time::timeout(Duration::from_secs(3), attempt).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(error)) => Err(RedisSetupError::Unreachable(error.to_string())),
        Err(_) => Err(RedisSetupError::Unreachable("PING timed out".into())),
    }
}
