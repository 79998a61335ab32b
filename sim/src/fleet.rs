//! Starting and stopping the fleet for a sandbox run: ingress and the scheduler inside this
//! process, workers inside it or as child processes (this same executable, re-run with the
//! hidden `fleet-worker` role), all under one namespace that is removed at the end.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use lapin::{Connection, ConnectionProperties};
use secrecy::{ExposeSecret, SecretString};
use shared::amqp::Topology;
use shared::config::{Env, IngressConfig, SchedulerConfig, WorkerConfig};
use tokio::net::TcpListener;
use tokio::process::{Child, Command};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How long preflight waits for Redis or RabbitMQ before calling them unreachable.
const PREFLIGHT_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    /// One line, with how to start the missing service: shown as is to the person.
    #[error("{0}")]
    Unreachable(String),
    #[error("configuration: {0}")]
    Config(#[from] shared::config::ConfigError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("the fleet did not become ready within {0:?}: {1}")]
    NotReady(Duration, String),
}

/// Where the shared services are.
#[derive(Debug, Clone)]
pub struct Services {
    pub amqp_url: SecretString,
    pub redis_url: SecretString,
}

impl Services {
    pub fn new(amqp_url: &str, redis_url: &str) -> Services {
        Services {
            amqp_url: SecretString::from(amqp_url.to_owned()),
            redis_url: SecretString::from(redis_url.to_owned()),
        }
    }
}

/// Checks that Redis and RabbitMQ answer, with short timeouts, and says in one line how to
/// start whichever does not.
pub async fn preflight(services: &Services) -> Result<(), FleetError> {
    let redis_shown = redacted(services.redis_url.expose_secret());
    let redis_down = || {
        FleetError::Unreachable(format!(
            "Redis is not reachable at {redis_shown} — start it with 'redis-server --daemonize yes' (or 'docker compose up -d redis')"
        ))
    };
    let redis = shared::redis::open(&services.redis_url).map_err(|_| redis_down())?;
    match tokio::time::timeout(PREFLIGHT_TIMEOUT, shared::redis::ping(&redis)).await {
        Ok(Ok(())) => {}
        _ => return Err(redis_down()),
    }
    let amqp_shown = redacted(services.amqp_url.expose_secret());
    let connect = Connection::connect(
        services.amqp_url.expose_secret(),
        ConnectionProperties::default().with_connection_name("sim:preflight".into()),
    );
    match tokio::time::timeout(PREFLIGHT_TIMEOUT, connect).await {
        Ok(Ok(connection)) => {
            let _ = connection.close(200, "preflight done".into()).await;
            Ok(())
        }
        _ => Err(FleetError::Unreachable(format!(
            "RabbitMQ is not reachable at {amqp_shown} — start it with 'rabbitmq-server -detached' (or 'docker compose up -d rabbitmq')"
        ))),
    }
}

/// A URL without its password, for messages.
pub fn redacted(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            format!("{}{}", &url[..scheme_end + 3], &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

/// A namespace no other run uses: every queue and key of this run starts with it.
pub fn fresh_namespace() -> String {
    format!("sim_{:08x}.", rand::random::<u32>())
}

/// How workers run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkerMode {
    /// Tasks in this process: one process to watch, simplest to debug.
    InProcess,
    /// Separate processes: real isolation, and resident memory measurable per worker.
    Processes,
}

/// Everything the fleet needs to know about one run.
#[derive(Debug, Clone)]
pub struct FleetSpec {
    pub services: Services,
    pub namespace: String,
    pub partitions: u16,
    pub workers: usize,
    pub worker_mode: WorkerMode,
    pub tenants_file: PathBuf,
    pub app_secret: String,
    pub whatsapp_token: String,
    pub whatsapp_api_base: String,
    pub calcom_api_base: String,
    pub calcom_api_key: String,
    /// RUST_LOG for the fleet's components.
    pub log_filter: String,
    /// Unacknowledged deliveries per partition per worker.
    pub prefetch: u16,
}

impl FleetSpec {
    /// The environment every component would be started with in production, so the sandbox
    /// exercises the same configuration parsing.
    pub fn env_pairs(&self, worker_id: &str) -> Vec<(String, String)> {
        vec![
            (
                "AMQP_URL".into(),
                self.services.amqp_url.expose_secret().to_owned(),
            ),
            (
                "REDIS_URL".into(),
                self.services.redis_url.expose_secret().to_owned(),
            ),
            ("PARTITIONS".into(), self.partitions.to_string()),
            ("FLEET_NAMESPACE".into(), self.namespace.clone()),
            ("WHATSAPP_APP_SECRET".into(), self.app_secret.clone()),
            ("WHATSAPP_VERIFY_TOKEN".into(), "sim-verify-token".into()),
            ("WHATSAPP_ACCESS_TOKEN".into(), self.whatsapp_token.clone()),
            ("WHATSAPP_API_BASE".into(), self.whatsapp_api_base.clone()),
            ("CALCOM_API_BASE".into(), self.calcom_api_base.clone()),
            ("CALCOM_API_KEY".into(), self.calcom_api_key.clone()),
            (
                "TENANTS_FILE".into(),
                self.tenants_file.display().to_string(),
            ),
            ("WORKER_ID".into(), worker_id.to_owned()),
            ("WORKER_PREFETCH".into(), self.prefetch.to_string()),
            ("RUST_LOG".into(), self.log_filter.clone()),
        ]
    }

    fn env(&self, worker_id: &str) -> Env {
        let pairs = self.env_pairs(worker_id);
        Env::from_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
    }
}

/// A running fleet.
pub struct Fleet {
    pub ingress_addr: SocketAddr,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    children: Vec<Child>,
    worker_admin: Vec<SocketAddr>,
}

impl Fleet {
    pub async fn start(spec: &FleetSpec) -> Result<Fleet, FleetError> {
        let (stop, _) = watch::channel(false);
        let stopped = |stop: &watch::Sender<bool>| {
            let mut rx = stop.subscribe();
            async move {
                let _ = rx.wait_for(|stop| *stop).await;
            }
        };
        let mut tasks = Vec::new();

        let ingress_config = IngressConfig::from_env(&spec.env("ingress"))?;
        let ingress_listener = TcpListener::bind("127.0.0.1:0").await?;
        let ingress_addr = ingress_listener.local_addr()?;
        let shutdown = stopped(&stop);
        tasks.push(tokio::spawn(async move {
            if let Err(error) = ingress::run(ingress_config, ingress_listener, shutdown).await {
                eprintln!("sim: ingress stopped: {error}");
            }
        }));

        let scheduler_config = SchedulerConfig::from_env(&spec.env("scheduler"))?;
        let scheduler_listener = TcpListener::bind("127.0.0.1:0").await?;
        let shutdown = stopped(&stop);
        tasks.push(tokio::spawn(async move {
            if let Err(error) = scheduler::run(scheduler_config, scheduler_listener, shutdown).await
            {
                eprintln!("sim: scheduler stopped: {error}");
            }
        }));

        let mut children = Vec::new();
        let mut worker_admin = Vec::new();
        for index in 0..spec.workers.max(1) {
            let worker_id = format!("{}w{index}", spec.namespace);
            match spec.worker_mode {
                WorkerMode::InProcess => {
                    let config = WorkerConfig::from_env(&spec.env(&worker_id))?;
                    let listener = TcpListener::bind("127.0.0.1:0").await?;
                    worker_admin.push(listener.local_addr()?);
                    let shutdown = stopped(&stop);
                    tasks.push(tokio::spawn(async move {
                        if let Err(error) = worker::run(config, listener, shutdown).await {
                            eprintln!("sim: worker stopped: {error}");
                        }
                    }));
                }
                WorkerMode::Processes => {
                    let admin = free_port().await?;
                    worker_admin.push(admin);
                    let mut command = Command::new(std::env::current_exe()?);
                    command
                        .arg("fleet-worker")
                        .env_clear()
                        .envs(spec.env_pairs(&worker_id))
                        .env("WORKER_ADMIN_ADDR", admin.to_string())
                        // The worker drains when its stdin closes: it never outlives the sim,
                        // even when the sim is killed.
                        .stdin(Stdio::piped())
                        .stdout(Stdio::null())
                        .stderr(Stdio::inherit())
                        .kill_on_drop(true);
                    if let Ok(path) = std::env::var("PATH") {
                        command.env("PATH", path);
                    }
                    children.push(command.spawn()?);
                }
            }
        }
        Ok(Fleet {
            ingress_addr,
            stop,
            tasks,
            children,
            worker_admin,
        })
    }

    pub fn webhook_url(&self) -> String {
        format!("http://{}/webhook", self.ingress_addr)
    }

    pub fn worker_pids(&self) -> Vec<u32> {
        self.children.iter().filter_map(Child::id).collect()
    }

    /// Waits until ingress answers and every worker says it is consuming, then a little
    /// longer so that partitions settle on their owners before customers arrive.
    pub async fn wait_ready(&self, limit: Duration) -> Result<(), FleetError> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(1))
            .build()
            .map_err(|e| FleetError::NotReady(limit, e.to_string()))?;
        let deadline = tokio::time::Instant::now() + limit;
        let mut urls = vec![format!("http://{}/readyz", self.ingress_addr)];
        urls.extend(
            self.worker_admin
                .iter()
                .map(|addr| format!("http://{addr}/readyz")),
        );
        for url in urls {
            loop {
                let ready = client
                    .get(&url)
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success());
                if ready {
                    break;
                }
                if tokio::time::Instant::now() >= deadline {
                    return Err(FleetError::NotReady(limit, format!("{url} is not ready")));
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        // Membership heartbeats run every second; two rounds let every worker see the others.
        if self.worker_admin.len() > 1 {
            tokio::time::sleep(Duration::from_millis(2500)).await;
        }
        Ok(())
    }

    /// Drains everything: workers first finish what they hold, then ingress and scheduler.
    pub async fn stop(mut self) {
        for child in &mut self.children {
            // Closing stdin is the drain signal.
            drop(child.stdin.take());
        }
        let _ = self.stop.send(true);
        for child in &mut self.children {
            if tokio::time::timeout(Duration::from_secs(12), child.wait())
                .await
                .is_err()
            {
                let _ = child.kill().await;
            }
        }
        for task in self.tasks.drain(..) {
            let _ = tokio::time::timeout(Duration::from_secs(12), task).await;
        }
    }
}

async fn free_port() -> Result<SocketAddr, std::io::Error> {
    // Bound and released at once; the child binds it a moment later.
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    listener.local_addr()
}

/// Removes every queue, exchange and Redis key of the namespace.
pub async fn clean_up(services: &Services, namespace: &str, partitions: u16) -> Vec<String> {
    let mut problems = Vec::new();
    if namespace.is_empty() {
        // An empty namespace would match the whole Redis: refuse.
        problems.push("refusing to clean an empty namespace".to_owned());
        return problems;
    }
    match Connection::connect(
        services.amqp_url.expose_secret(),
        ConnectionProperties::default().with_connection_name("sim:cleanup".into()),
    )
    .await
    {
        Ok(connection) => {
            match connection.create_channel().await {
                Ok(channel) => {
                    if let Err(error) = Topology::new(namespace, partitions).delete(&channel).await
                    {
                        problems.push(format!("deleting queues: {error}"));
                    }
                    let _ = channel.close(200, "cleaned up".into()).await;
                }
                Err(error) => problems.push(format!("opening a channel: {error}")),
            }
            let _ = connection.close(200, "cleaned up".into()).await;
        }
        Err(error) => problems.push(format!("connecting to RabbitMQ: {error}")),
    }
    if let Err(error) = delete_keys(services, namespace).await {
        problems.push(format!("deleting Redis keys: {error}"));
    }
    problems
}

async fn delete_keys(services: &Services, namespace: &str) -> Result<(), anyhow::Error> {
    let client = redis::Client::open(services.redis_url.expose_secret())?;
    let mut connection = client.get_multiplexed_async_connection().await?;
    let pattern = format!("{}*", glob_escape(namespace));
    let mut cursor: u64 = 0;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(&pattern)
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut connection)
            .await?;
        if !keys.is_empty() {
            let _: u64 = redis::cmd("UNLINK")
                .arg(&keys)
                .query_async(&mut connection)
                .await?;
        }
        if next == 0 {
            return Ok(());
        }
        cursor = next;
    }
}

/// Redis glob characters in a namespace must match literally.
fn glob_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Resident memory of a process in KiB, from /proc (Linux only; None elsewhere).
pub fn resident_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

/// The `fleet-worker` role: one worker configured from the environment, draining on
/// SIGTERM, Ctrl-C, or its stdin closing (the parent sim went away).
pub async fn run_worker_role() -> anyhow::Result<()> {
    use anyhow::Context;
    use tokio::io::AsyncReadExt;
    let env = Env::from_process();
    let config = WorkerConfig::from_env(&env).context("worker configuration")?;
    let _telemetry = shared::telemetry::init("worker", &env)?;
    let admin = TcpListener::bind(config.admin_addr)
        .await
        .with_context(|| format!("binding {}", config.admin_addr))?;
    let shutdown = async {
        let parent_gone = async {
            let mut stdin = tokio::io::stdin();
            let mut buffer = [0u8; 64];
            while let Ok(read) = stdin.read(&mut buffer).await {
                if read == 0 {
                    break;
                }
            }
        };
        tokio::select! {
            _ = shared::shutdown::signal() => {}
            _ = parent_gone => {}
        }
    };
    worker::run(config, admin, shutdown)
        .await
        .context("worker")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_shown_without_passwords() {
        assert_eq!(
            redacted("amqp://guest:guest@127.0.0.1:5672/%2f"),
            "amqp://127.0.0.1:5672/%2f"
        );
        assert_eq!(redacted("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
    }

    #[test]
    fn namespaces_are_valid_and_distinct() {
        let a = fresh_namespace();
        let b = fresh_namespace();
        assert_ne!(a, b);
        let env = Env::from_pairs([("FLEET_NAMESPACE", a.as_str())]);
        assert!(shared::config::CommonConfig::from_env(&env).is_ok());
        assert_eq!(glob_escape("a*b?"), "a\\*b\\?");
    }

    #[tokio::test]
    async fn unreachable_services_are_named_in_one_line() {
        // Port 9 (discard) is closed on loopback on any sane machine.
        let services = Services::new("amqp://127.0.0.1:9/%2f", "redis://127.0.0.1:9");
        let error = preflight(&services)
            .await
            .expect_err("nothing listens on 9");
        let text = error.to_string();
        assert!(
            text.starts_with("Redis is not reachable at redis://127.0.0.1:9"),
            "{text}"
        );
        assert!(!text.contains('\n'));
    }
}
