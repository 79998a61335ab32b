//! Configuration read once at start-up from the environment into typed structs.
//!
//! Every binary calls `XConfig::from_env(&Env::from_process())`; tests build an [`Env`] from
//! pairs instead of mutating the process environment. A missing or malformed value is one
//! [`ConfigError`] naming the variable; secrets are held in [`SecretString`] so they never print.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use secrecy::SecretString;

pub const DEFAULT_AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
pub const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379";
pub const DEFAULT_PARTITIONS: u16 = 16;

/// A snapshot of environment variables.
#[derive(Clone, Default)]
pub struct Env {
    vars: HashMap<String, String>,
}

impl Env {
    pub fn from_process() -> Self {
        Self {
            vars: std::env::vars().collect(),
        }
    }

    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        Self {
            vars: pairs
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        }
    }

    /// A set variable with only white space counts as unset: an empty `PARTITIONS=` in a
    /// compose file means "default", not "zero".
    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.trim().is_empty())
    }

    pub fn string_or(&self, name: &str, default: &str) -> String {
        self.get(name).unwrap_or(default).to_owned()
    }

    pub fn required_secret(&self, name: &'static str) -> Result<SecretString, ConfigError> {
        self.get(name)
            .map(|v| SecretString::from(v.to_owned()))
            .ok_or(ConfigError::Missing { var: name })
    }

    pub fn optional_secret(&self, name: &str) -> Option<SecretString> {
        self.get(name).map(|v| SecretString::from(v.to_owned()))
    }

    pub fn parse_or<T>(&self, name: &'static str, default: T) -> Result<T, ConfigError>
    where
        T: FromStr,
        T::Err: std::fmt::Display,
    {
        match self.get(name) {
            None => Ok(default),
            Some(raw) => raw
                .trim()
                .parse()
                .map_err(|e: T::Err| ConfigError::Invalid {
                    var: name,
                    reason: e.to_string(),
                }),
        }
    }

    pub fn millis_or(&self, name: &'static str, default_ms: u64) -> Result<Duration, ConfigError> {
        self.parse_or(name, default_ms).map(Duration::from_millis)
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("missing required environment variable {var}")]
    Missing { var: &'static str },
    #[error("environment variable {var} is invalid: {reason}")]
    Invalid { var: &'static str, reason: String },
}

/// Settings every binary shares. They must agree across the fleet (partitions, namespace).
#[derive(Clone)]
pub struct CommonConfig {
    /// Holds the broker password, hence a secret.
    pub amqp_url: SecretString,
    pub partitions: u16,
    /// Prefix for every queue, exchange and Redis key, so that several fleets (or tests) can
    /// share one broker and one Redis without seeing each other. Empty in production.
    pub namespace: String,
}

impl CommonConfig {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let partitions: u16 = env.parse_or("PARTITIONS", DEFAULT_PARTITIONS)?;
        if partitions == 0 || partitions > 1024 {
            return Err(ConfigError::Invalid {
                var: "PARTITIONS",
                reason: format!("{partitions} is outside 1..=1024"),
            });
        }
        let namespace = env.string_or("FLEET_NAMESPACE", "");
        if !namespace
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        {
            return Err(ConfigError::Invalid {
                var: "FLEET_NAMESPACE",
                reason: "only ASCII letters, digits, '.', '-' and '_' are allowed".into(),
            });
        }
        Ok(Self {
            amqp_url: SecretString::from(env.string_or("AMQP_URL", DEFAULT_AMQP_URL)),
            partitions,
            namespace,
        })
    }
}

impl std::fmt::Debug for CommonConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommonConfig")
            .field("amqp_url", &"[redacted]")
            .field("partitions", &self.partitions)
            .field("namespace", &self.namespace)
            .finish()
    }
}

#[derive(Clone)]
pub struct IngressConfig {
    pub common: CommonConfig,
    pub addr: SocketAddr,
    /// Key of the `X-Hub-Signature-256` HMAC.
    pub app_secret: SecretString,
    /// Echoed back in the subscription handshake when WhatsApp presents it.
    pub verify_token: SecretString,
    /// Upper bound for publishing one delivery (connect wait included): past it the webhook
    /// gets 503 and WhatsApp redelivers, instead of a hanging request.
    pub publish_timeout: Duration,
    /// Channels in confirm mode on the publishing connection; confirms are pipelined on each.
    pub publish_channels: usize,
    /// Deliveries handled at once; more are answered 503 at once, so a stalled broker cannot
    /// make ingress hold an unbounded number of requests (and their bodies) in memory.
    pub max_in_flight: usize,
    /// HTTP connections open at once; a connection past it is answered 503 at once and closed,
    /// so connections opened by clients waiting out a stall cannot grow its memory without bound.
    pub max_connections: usize,
    /// A connection on which nothing moved for this long is closed: idle keep-alives after a
    /// burst, and clients that send half a request and stop.
    pub idle_timeout: Duration,
}

impl IngressConfig {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let addr = env.parse_or("INGRESS_ADDR", SocketAddr::from(([0, 0, 0, 0], 8080)))?;
        let publish_channels: usize = env.parse_or("INGRESS_PUBLISH_CHANNELS", 4)?;
        if publish_channels == 0 {
            return Err(ConfigError::Invalid {
                var: "INGRESS_PUBLISH_CHANNELS",
                reason: "must be at least 1".into(),
            });
        }
        let max_in_flight: usize = env.parse_or("INGRESS_MAX_IN_FLIGHT", 4096)?;
        if max_in_flight == 0 {
            return Err(ConfigError::Invalid {
                var: "INGRESS_MAX_IN_FLIGHT",
                reason: "must be at least 1".into(),
            });
        }
        let max_connections: usize = env.parse_or("INGRESS_MAX_CONNECTIONS", 256)?;
        if max_connections == 0 {
            return Err(ConfigError::Invalid {
                var: "INGRESS_MAX_CONNECTIONS",
                reason: "must be at least 1".into(),
            });
        }
        let publish_timeout = env.millis_or("INGRESS_PUBLISH_TIMEOUT_MS", 3000)?;
        let idle_timeout = env.millis_or("INGRESS_IDLE_TIMEOUT_MS", 30_000)?;
        // A request waiting on its confirms moves nothing on its connection: the idle timeout
        // must outlast the publish timeout or it would cut that request off.
        if idle_timeout <= publish_timeout {
            return Err(ConfigError::Invalid {
                var: "INGRESS_IDLE_TIMEOUT_MS",
                reason: format!(
                    "must be longer than INGRESS_PUBLISH_TIMEOUT_MS ({} ms)",
                    publish_timeout.as_millis()
                ),
            });
        }
        Ok(Self {
            common: CommonConfig::from_env(env)?,
            addr,
            app_secret: env.required_secret("WHATSAPP_APP_SECRET")?,
            verify_token: env.required_secret("WHATSAPP_VERIFY_TOKEN")?,
            publish_timeout,
            publish_channels,
            max_in_flight,
            max_connections,
            idle_timeout,
        })
    }
}

impl std::fmt::Debug for IngressConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IngressConfig")
            .field("common", &self.common)
            .field("addr", &self.addr)
            .field("app_secret", &"[redacted]")
            .field("verify_token", &"[redacted]")
            .field("publish_timeout", &self.publish_timeout)
            .field("publish_channels", &self.publish_channels)
            .field("max_in_flight", &self.max_in_flight)
            .field("max_connections", &self.max_connections)
            .field("idle_timeout", &self.idle_timeout)
            .finish()
    }
}

/// Redis URL (may hold a password, hence a secret).
pub fn redis_url(env: &Env) -> SecretString {
    SecretString::from(env.string_or("REDIS_URL", DEFAULT_REDIS_URL))
}

#[derive(Clone)]
pub struct SchedulerConfig {
    pub common: CommonConfig,
    pub redis_url: SecretString,
    /// Where `/healthz`, `/readyz` and `/metrics` are served.
    pub admin_addr: SocketAddr,
    /// Most timers claimed per shard per round; bounds memory and one round's latency.
    pub claim_batch: usize,
    /// A claimed timer reappears after this long if its claimer died before publishing.
    pub lease: Duration,
    /// Longest sleep between rounds when nothing is due sooner.
    pub max_idle: Duration,
}

impl SchedulerConfig {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            common: CommonConfig::from_env(env)?,
            redis_url: redis_url(env),
            admin_addr: env.parse_or(
                "SCHEDULER_ADMIN_ADDR",
                SocketAddr::from(([0, 0, 0, 0], 9091)),
            )?,
            claim_batch: env.parse_or("SCHEDULER_CLAIM_BATCH", 500)?,
            lease: env.millis_or("SCHEDULER_LEASE_MS", 30_000)?,
            max_idle: env.millis_or("SCHEDULER_MAX_IDLE_MS", 250)?,
        })
    }
}

impl std::fmt::Debug for SchedulerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SchedulerConfig")
            .field("common", &self.common)
            .field("admin_addr", &self.admin_addr)
            .field("claim_batch", &self.claim_batch)
            .field("lease", &self.lease)
            .field("max_idle", &self.max_idle)
            .finish_non_exhaustive()
    }
}

#[derive(Clone)]
pub struct WorkerConfig {
    pub common: CommonConfig,
    pub redis_url: SecretString,
    /// Where `/healthz`, `/readyz` and `/metrics` are served.
    pub admin_addr: SocketAddr,
    pub whatsapp_access_token: Option<SecretString>,
    pub whatsapp_api_base: String,
    pub calcom_api_base: String,
    pub calcom_api_key: Option<SecretString>,
    /// Requests per minute the Cal.com key allows (120 for standard API keys; Cal.com raises
    /// it per key on request). The client paces itself below it.
    pub calcom_rate_limit_per_minute: u32,
    pub tenants_file: std::path::PathBuf,
    /// Unacknowledged deliveries per partition: bounds memory and redelivery after a crash.
    pub prefetch: u16,
    /// Identity in the membership registry; defaults to host name and process id.
    pub worker_id: String,
    /// The environment as it was at start-up, to resolve the secrets the tenants file names
    /// by variable (handoff signing keys) without reading the process environment later.
    pub secrets: Env,
}

impl WorkerConfig {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let default_id = format!(
            "{}-{}",
            env.get("HOSTNAME").unwrap_or("worker"),
            std::process::id()
        );
        Ok(Self {
            common: CommonConfig::from_env(env)?,
            redis_url: redis_url(env),
            admin_addr: env
                .parse_or("WORKER_ADMIN_ADDR", SocketAddr::from(([0, 0, 0, 0], 9090)))?,
            whatsapp_access_token: env.optional_secret("WHATSAPP_ACCESS_TOKEN"),
            whatsapp_api_base: env
                .string_or("WHATSAPP_API_BASE", "https://graph.facebook.com/v25.0"),
            calcom_api_base: env.string_or("CALCOM_API_BASE", "https://api.cal.com"),
            calcom_api_key: env.optional_secret("CALCOM_API_KEY"),
            calcom_rate_limit_per_minute: match env
                .parse_or("CALCOM_RATE_LIMIT_PER_MINUTE", 120u32)?
            {
                // One request may go out at once and at least one more must refill.
                limit if limit < 2 => {
                    return Err(ConfigError::Invalid {
                        var: "CALCOM_RATE_LIMIT_PER_MINUTE",
                        reason: format!("{limit} is below the minimum of 2"),
                    });
                }
                limit => limit,
            },
            tenants_file: env.string_or("TENANTS_FILE", "config/tenants.toml").into(),
            prefetch: env.parse_or("WORKER_PREFETCH", 32)?,
            worker_id: env.string_or("WORKER_ID", &default_id),
            secrets: env.clone(),
        })
    }
}

impl std::fmt::Debug for WorkerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerConfig")
            .field("common", &self.common)
            .field("admin_addr", &self.admin_addr)
            .field("whatsapp_api_base", &self.whatsapp_api_base)
            .field("calcom_api_base", &self.calcom_api_base)
            .field("tenants_file", &self.tenants_file)
            .field("prefetch", &self.prefetch)
            .field("worker_id", &self.worker_id)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ingress_requires_its_secrets() {
        let err = IngressConfig::from_env(&Env::from_pairs([("WHATSAPP_VERIFY_TOKEN", "t")]))
            .expect_err("app secret is required");
        assert_eq!(
            err,
            ConfigError::Missing {
                var: "WHATSAPP_APP_SECRET"
            }
        );
        assert_eq!(
            err.to_string(),
            "missing required environment variable WHATSAPP_APP_SECRET"
        );
    }

    /// The error names `var` as the malformed variable.
    fn assert_invalid(err: &ConfigError, var: &str) {
        assert!(
            matches!(err, ConfigError::Invalid { var: named, .. } if *named == var),
            "expected {var} to be reported as invalid, got: {err}"
        );
    }

    #[test]
    fn malformed_values_name_the_variable() {
        let env = Env::from_pairs([
            ("WHATSAPP_APP_SECRET", "s"),
            ("WHATSAPP_VERIFY_TOKEN", "t"),
            ("PARTITIONS", "sixteen"),
        ]);
        let err = IngressConfig::from_env(&env).expect_err("PARTITIONS is not a number");
        assert_invalid(&err, "PARTITIONS");
        let env = Env::from_pairs([
            ("WHATSAPP_APP_SECRET", "s"),
            ("WHATSAPP_VERIFY_TOKEN", "t"),
            ("INGRESS_ADDR", "localhost"),
        ]);
        let err = IngressConfig::from_env(&env).expect_err("INGRESS_ADDR needs a port");
        assert_invalid(&err, "INGRESS_ADDR");
    }

    #[test]
    fn ingress_needs_room_for_at_least_one_delivery() {
        let env = Env::from_pairs([
            ("WHATSAPP_APP_SECRET", "s"),
            ("WHATSAPP_VERIFY_TOKEN", "t"),
            ("INGRESS_MAX_IN_FLIGHT", "0"),
        ]);
        let err = IngressConfig::from_env(&env).expect_err("0 would refuse everything");
        assert_invalid(&err, "INGRESS_MAX_IN_FLIGHT");
        let env = Env::from_pairs([("WHATSAPP_APP_SECRET", "s"), ("WHATSAPP_VERIFY_TOKEN", "t")]);
        let defaults = IngressConfig::from_env(&env).expect("valid");
        assert_eq!(defaults.max_in_flight, 4096);
    }

    #[test]
    fn ingress_connection_bounds_are_checked() {
        let base = [("WHATSAPP_APP_SECRET", "s"), ("WHATSAPP_VERIFY_TOKEN", "t")];
        let with = |extra: &[(&'static str, &'static str)]| {
            Env::from_pairs(base.iter().chain(extra.iter()).copied())
        };
        let err = IngressConfig::from_env(&with(&[("INGRESS_MAX_CONNECTIONS", "0")]))
            .expect_err("0 would never accept");
        assert_invalid(&err, "INGRESS_MAX_CONNECTIONS");
        let err = IngressConfig::from_env(&with(&[
            ("INGRESS_PUBLISH_TIMEOUT_MS", "3000"),
            ("INGRESS_IDLE_TIMEOUT_MS", "3000"),
        ]))
        .expect_err("an idle timeout within the publish timeout cuts requests off");
        assert_invalid(&err, "INGRESS_IDLE_TIMEOUT_MS");
        let defaults = IngressConfig::from_env(&with(&[])).expect("valid");
        assert_eq!(defaults.max_connections, 256);
        assert_eq!(defaults.idle_timeout, Duration::from_secs(30));
    }

    #[test]
    fn calcom_rate_limit_has_a_floor() {
        let env = Env::from_pairs([("CALCOM_RATE_LIMIT_PER_MINUTE", "1")]);
        let err = WorkerConfig::from_env(&env).expect_err("1 request a minute cannot be paced");
        assert_invalid(&err, "CALCOM_RATE_LIMIT_PER_MINUTE");
        let env = Env::from_pairs([("CALCOM_RATE_LIMIT_PER_MINUTE", "600")]);
        let config = WorkerConfig::from_env(&env).expect("valid");
        assert_eq!(config.calcom_rate_limit_per_minute, 600);
        let defaults = WorkerConfig::from_env(&Env::default()).expect("valid");
        assert_eq!(defaults.calcom_rate_limit_per_minute, 120);
    }

    #[test]
    fn defaults_and_redaction() {
        let env = Env::from_pairs([
            ("WHATSAPP_APP_SECRET", "very-secret"),
            ("WHATSAPP_VERIFY_TOKEN", "token-123"),
            ("PARTITIONS", " "),
        ]);
        let config = IngressConfig::from_env(&env).expect("valid");
        assert_eq!(config.common.partitions, DEFAULT_PARTITIONS);
        assert_eq!(config.addr.port(), 8080);
        let printed = format!("{config:?}");
        assert!(!printed.contains("very-secret") && !printed.contains("token-123"));
        assert!(!printed.contains("guest:guest"));
    }
}
