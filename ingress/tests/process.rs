//! The `ingress` binary as an operator runs it: configuration errors, readiness, SIGTERM.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

#[test]
fn missing_configuration_is_one_clear_line_and_exit_code_2() {
    let output = Command::new(env!("CARGO_BIN_EXE_ingress"))
        .env_clear()
        .env("WHATSAPP_VERIFY_TOKEN", "t")
        .output()
        .expect("run ingress");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        stderr.trim(),
        "ingress: missing required environment variable WHATSAPP_APP_SECRET"
    );
}

#[test]
fn sigterm_drains_and_exits_cleanly_within_ten_seconds() {
    let port = free_port();
    let namespace = format!("test.ingress.sigterm.{}.", std::process::id());
    let mut child = Command::new(env!("CARGO_BIN_EXE_ingress"))
        .env("WHATSAPP_APP_SECRET", "s")
        .env("WHATSAPP_VERIFY_TOKEN", "t")
        .env("INGRESS_ADDR", format!("127.0.0.1:{port}"))
        .env("FLEET_NAMESPACE", &namespace)
        .env("PARTITIONS", "1")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn ingress");

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let ready = runtime.block_on(async {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(response) = client
                .get(format!("http://127.0.0.1:{port}/readyz"))
                .send()
                .await
                && response.status() == 200
            {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    });
    assert!(ready, "ingress did not become ready");

    let sent = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(sent.success());
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if started.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            panic!("ingress did not exit within 10 s of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "exit status {status}");

    runtime.block_on(async {
        let connection = lapin::Connection::connect(
            "amqp://guest:guest@127.0.0.1:5672/%2f",
            lapin::ConnectionProperties::default(),
        )
        .await
        .expect("RabbitMQ");
        let channel = connection.create_channel().await.expect("channel");
        shared::amqp::Topology::new(&namespace, 1)
            .delete(&channel)
            .await
            .expect("cleanup");
    });
}
