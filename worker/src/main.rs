use anyhow::Context;
use shared::config::{Env, WorkerConfig};

// glibc's allocator cost 15-20% of the CPU per event, much of it arena contention between
// the Tokio threads and lapin's I/O thread; mimalloc measured lower (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let env = Env::from_process();
    let config = match WorkerConfig::from_env(&env) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("worker: {error}");
            std::process::exit(2);
        }
    };
    let _telemetry = shared::telemetry::init("worker", &env)?;
    let admin = tokio::net::TcpListener::bind(config.admin_addr)
        .await
        .with_context(|| format!("binding {}", config.admin_addr))?;
    if let Err(error) = worker::run(config, admin, shared::shutdown::signal()).await {
        eprintln!("worker: {error}");
        std::process::exit(1);
    }
    Ok(())
}
