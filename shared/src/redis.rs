//! Redis connections. Every key the fleet writes starts with the configured namespace, so
//! fleets and tests sharing one Redis never see each other's data.

use secrecy::{ExposeSecret, SecretString};

pub use deadpool_redis::{Connection, Pool};

#[derive(Debug, thiserror::Error)]
pub enum RedisSetupError {
    #[error("REDIS_URL is invalid: {0}")]
    Url(String),
    #[error("Redis is not reachable: {0}")]
    Unreachable(String),
}

/// A pool of multiplexed connections. Creating it does not connect; see [`ping`].
pub fn pool(url: &SecretString, max_size: usize) -> Result<Pool, RedisSetupError> {
    let mut config = deadpool_redis::Config::from_url(url.expose_secret());
    config.pool = Some(deadpool_redis::PoolConfig::new(max_size.max(1)));
    config
        .create_pool(Some(deadpool_redis::Runtime::Tokio1))
        .map_err(|e| RedisSetupError::Url(e.to_string()))
}

/// Checks that Redis answers, with a bound on how long the answer may take.
pub async fn ping(pool: &Pool) -> Result<(), RedisSetupError> {
    let attempt = async {
        let mut connection = pool
            .get()
            .await
            .map_err(|e| RedisSetupError::Unreachable(e.to_string()))?;
        redis::cmd("PING")
            .query_async::<String>(&mut connection)
            .await
            .map_err(|e| RedisSetupError::Unreachable(e.to_string()))?;
        Ok(())
    };
    match tokio::time::timeout(std::time::Duration::from_secs(3), attempt).await {
        Ok(result) => result,
        Err(_) => Err(RedisSetupError::Unreachable("PING timed out".into())),
    }
}
