#![forbid(unsafe_code)]
//! `sim`: the sandbox's command line. `demo`, `chat` and `load` start everything they need;
//! `fleet-worker` is the role a `load --workers N` run re-executes this binary as.

use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use lang::Lang;
use sim::fleet::{FleetError, Services, WorkerMode, preflight};
use sim::load::LoadOptions;
use sim::sandbox::{Sandbox, SandboxOptions};
use sim::world::World;

// glibc's allocator cost 15-20% of the CPU per event, much of it arena contention between
// the Tokio threads and lapin's I/O thread; mimalloc measured lower (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "sim",
    about = "WhatsApp booking fleet sandbox: fake WhatsApp and Cal.com, simulated customers"
)]
struct Cli {
    #[command(subcommand)]
    command: Mode,
}

#[derive(Args, Clone)]
struct Common {
    #[arg(long, env = "AMQP_URL", default_value = shared::config::DEFAULT_AMQP_URL)]
    amqp_url: String,
    #[arg(long, env = "REDIS_URL", default_value = shared::config::DEFAULT_REDIS_URL)]
    redis_url: String,
    #[arg(long, env = "PARTITIONS", default_value_t = shared::config::DEFAULT_PARTITIONS)]
    partitions: u16,
    /// Log filter for the fleet's components (their logs go to stderr).
    #[arg(long, default_value = "warn")]
    log: String,
}

#[derive(Subcommand)]
enum Mode {
    /// A handful of customers in English and Spanish; prints transcripts and a summary.
    Demo {
        #[command(flatten)]
        common: Common,
        /// Hold length of the sandbox businesses; the silent customer waits it out.
        #[arg(long, default_value_t = 1)]
        hold_minutes: u32,
        #[arg(long, default_value_t = 1)]
        workers: usize,
        /// Only these customers (by name, comma separated), e.g. "Ana,Lucía".
        #[arg(long, value_delimiter = ',')]
        only: Vec<String>,
        /// A customer's pause before each answer, so transcripts read like people.
        #[arg(long, default_value_t = 300)]
        think_ms: u64,
    },
    /// Be the customer yourself.
    Chat {
        #[command(flatten)]
        common: Common,
        /// Which business to write to: "en" (salon, built-in calendar) or "es" (clinic,
        /// Cal.com).
        #[arg(long, default_value = "en")]
        business: String,
        #[arg(long, default_value = "You")]
        name: String,
        #[arg(long, default_value_t = 15)]
        hold_minutes: u32,
    },
    /// Many customers at a fixed arrival rate; a report with throughput, latency and audit.
    Load {
        #[command(flatten)]
        common: Common,
        /// Most customers arriving in the run.
        #[arg(long, default_value_t = 1_000_000)]
        customers: u64,
        /// Customer arrivals per second (each sends about 2.2 messages).
        #[arg(long, default_value_t = 100.0)]
        rate: f64,
        /// Seconds of arrivals.
        #[arg(long, default_value_t = 30)]
        duration: u64,
        #[arg(long, default_value_t = 1)]
        workers: usize,
        /// Run workers as tasks of this process instead of separate processes.
        #[arg(long)]
        in_process: bool,
        /// Business numbers; WhatsApp limits each to 80 messages a second.
        #[arg(long, default_value_t = 40)]
        businesses: usize,
        /// Every N-th business books through Cal.com (0: all on the built-in calendar).
        #[arg(long, default_value_t = 0)]
        calcom_every: usize,
        /// Do not send sent/delivered/read status webhooks back through ingress.
        #[arg(long)]
        no_status_webhooks: bool,
        /// Milliseconds over which the fake WhatsApp gathers one business number's status
        /// updates into a single webhook POST, as Meta aggregates them (0: one POST each).
        #[arg(long, default_value_t = 0)]
        status_batch_ms: u64,
        /// Seconds a customer waits for a reply before the message counts as unanswered.
        #[arg(long, default_value_t = 15)]
        reply_timeout: u64,
        #[arg(long, default_value_t = 32)]
        prefetch: u16,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Runs one worker from the environment (used by `load` for worker processes).
    #[command(hide = true)]
    FleetWorker,
    /// Removes the queues and keys of a namespace a killed run left behind.
    Clean {
        #[command(flatten)]
        common: Common,
        /// The namespace printed at the start of the run, e.g. "sim_1ad98d08."
        namespace: String,
    },
}

fn init_logs(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Preflight then start; an unreachable service ends the process with one line.
async fn start(options: SandboxOptions) -> anyhow::Result<Sandbox> {
    match preflight(&options.services).await {
        Ok(()) => {}
        Err(FleetError::Unreachable(line)) => {
            eprintln!("sim: {line}");
            std::process::exit(1);
        }
        Err(error) => return Err(error.into()),
    }
    Sandbox::start(options)
        .await
        .context("starting the sandbox")
}

/// Runs `work` unless Ctrl-C or SIGTERM comes first; then None, so the caller still cleans
/// up the run's queues and keys instead of leaving them behind.
async fn interruptible<T>(work: impl std::future::Future<Output = T>) -> Option<T> {
    tokio::select! {
        done = work => Some(done),
        _ = shared::shutdown::signal() => {
            eprintln!("\nsim: interrupted; stopping the fleet and cleaning up");
            None
        }
    }
}

async fn finish(sandbox: Sandbox) {
    for problem in sandbox.stop().await {
        eprintln!("sim: clean-up: {problem}");
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Mode::FleetWorker => sim::fleet::run_worker_role().await,
        Mode::Clean { common, namespace } => {
            if !namespace.starts_with("sim_") {
                anyhow::bail!("only sandbox namespaces (sim_...) are cleaned");
            }
            let services = Services::new(&common.amqp_url, &common.redis_url);
            for problem in sim::fleet::clean_up(&services, &namespace, common.partitions).await {
                eprintln!("sim: clean-up: {problem}");
            }
            Ok(())
        }
        Mode::Demo {
            common,
            hold_minutes,
            workers,
            only,
            think_ms,
        } => {
            init_logs(&common.log);
            let hold_minutes = hold_minutes.max(1);
            let sandbox = start(SandboxOptions {
                services: Services::new(&common.amqp_url, &common.redis_url),
                world: World::demo(hold_minutes),
                workers,
                worker_mode: WorkerMode::InProcess,
                partitions: common.partitions,
                status_webhooks: true,
                status_batch: std::time::Duration::ZERO,
                generous_calcom: false,
                log_filter: common.log.clone(),
                prefetch: 32,
            })
            .await?;
            println!(
                "sim demo: ingress on {}, {workers} worker(s), scheduler, fake WhatsApp on {}, fake Cal.com on {} (namespace {})\n",
                sandbox.fleet.ingress_addr,
                sandbox.whatsapp.addr(),
                sandbox.calcom.address(),
                sandbox.namespace
            );
            let hold = Duration::from_secs(u64::from(hold_minutes) * 60);
            let demo = sim::demo::run(&sandbox, hold, &only, Duration::from_millis(think_ms), true);
            let Some(run) = interruptible(demo).await else {
                finish(sandbox).await;
                std::process::exit(130);
            };
            finish(sandbox).await;
            let failed = run
                .outcomes
                .iter()
                .any(|o| o.failure.is_some() || o.ending != o.persona.goal);
            if failed {
                std::process::exit(1);
            }
            Ok(())
        }
        Mode::Chat {
            common,
            business,
            name,
            hold_minutes,
        } => {
            init_logs(&common.log);
            let lang = if business.starts_with("es") {
                Lang::Es
            } else {
                Lang::En
            };
            let sandbox = start(SandboxOptions {
                services: Services::new(&common.amqp_url, &common.redis_url),
                world: World::demo(hold_minutes.max(1)),
                workers: 1,
                worker_mode: WorkerMode::InProcess,
                partitions: common.partitions,
                status_webhooks: true,
                status_batch: std::time::Duration::ZERO,
                generous_calcom: false,
                log_filter: common.log.clone(),
                prefetch: 32,
            })
            .await?;
            let target = sandbox
                .world
                .businesses
                .iter()
                .find(|b| b.lang == lang)
                .cloned()
                .context("no such business")?;
            let result = sim::chat::run(&sandbox, &target, &name).await;
            finish(sandbox).await;
            result
        }
        Mode::Load {
            common,
            customers,
            rate,
            duration,
            workers,
            in_process,
            businesses,
            calcom_every,
            no_status_webhooks,
            status_batch_ms,
            reply_timeout,
            prefetch,
            seed,
        } => {
            init_logs(&common.log);
            let command = std::env::args().collect::<Vec<_>>().join(" ");
            let sandbox = start(SandboxOptions {
                services: Services::new(&common.amqp_url, &common.redis_url),
                world: World::load(businesses, calcom_every, 15),
                workers,
                worker_mode: if in_process {
                    WorkerMode::InProcess
                } else {
                    WorkerMode::Processes
                },
                partitions: common.partitions,
                status_webhooks: !no_status_webhooks,
                status_batch: std::time::Duration::from_millis(status_batch_ms),
                generous_calcom: true,
                log_filter: common.log.clone(),
                prefetch,
            })
            .await?;
            eprintln!(
                "sim load: {workers} worker(s){}, {businesses} businesses, {rate} customers/s for {duration}s (namespace {})",
                if in_process {
                    " in process"
                } else {
                    " as processes"
                },
                sandbox.namespace
            );
            let options = LoadOptions {
                customers,
                rate,
                duration: Duration::from_secs(duration),
                reply_timeout: Duration::from_secs(reply_timeout),
                seed,
                progress: true,
            };
            let Some((mut report, _)) = interruptible(sim::load::run(&sandbox, &options)).await
            else {
                finish(sandbox).await;
                std::process::exit(130);
            };
            report.command = command;
            finish(sandbox).await;
            print!("{report}");
            if !report.audit_passed() {
                std::process::exit(1);
            }
            Ok(())
        }
    }
}
