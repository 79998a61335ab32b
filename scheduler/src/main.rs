use anyhow::Context;
use shared::config::{Env, SchedulerConfig};

// glibc's allocator cost 15-20% of the CPU per event, much of it arena contention between
// the Tokio threads and lapin's I/O thread; mimalloc measured lower (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let env = Env::from_process();
    let config = match SchedulerConfig::from_env(&env)
        .and_then(|config| scheduler::check_config(&config).map(|()| config))
    {
        Ok(config) => config,
        Err(error) => {
            eprintln!("scheduler: {error}");
            std::process::exit(2);
        }
    };
    let _telemetry = shared::telemetry::init("scheduler", &env)?;
    let listener = tokio::net::TcpListener::bind(config.admin_addr)
        .await
        .with_context(|| format!("binding {}", config.admin_addr))?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let mut scheduler = tokio::spawn(scheduler::run(config, listener, async {
        let _ = stop_rx.await;
    }));
    tokio::select! {
        // The loop only ends on its own if it could not start (bad REDIS_URL, admin server).
        joined = &mut scheduler => return joined.context("scheduler task")?.map_err(Into::into),
        () = shared::shutdown::signal() => {}
    }
    tracing::info!(message = "Draining.");
    let _ = stop_tx.send(());
    match tokio::time::timeout(scheduler::DRAIN_DEADLINE, scheduler).await {
        Ok(joined) => joined.context("scheduler task")??,
        Err(_) => tracing::warn!(message = "Drain deadline passed; exiting anyway."),
    }
    Ok(())
}
