use anyhow::Context;
use shared::config::{Env, IngressConfig};

// glibc's allocator cost 15-20% of the CPU per event, much of it arena contention between
// the Tokio threads and lapin's I/O thread; mimalloc measured lower (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let env = Env::from_process();
    let config = match IngressConfig::from_env(&env) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("ingress: {error}");
            std::process::exit(2);
        }
    };
    let _telemetry = shared::telemetry::init("ingress", &env)?;
    let listener = tokio::net::TcpListener::bind(config.addr)
        .await
        .with_context(|| format!("binding {}", config.addr))?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(ingress::run(config, listener, async {
        let _ = stop_rx.await;
    }));
    shared::shutdown::signal().await;
    tracing::info!(message = "Draining.");
    let _ = stop_tx.send(());
    match tokio::time::timeout(ingress::DRAIN_DEADLINE, server).await {
        Ok(joined) => joined.context("ingress task")??,
        Err(_) => tracing::warn!(message = "Drain deadline passed; exiting anyway."),
    }
    Ok(())
}
