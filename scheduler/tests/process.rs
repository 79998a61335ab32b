//! The `scheduler` binary as an operator runs it: configuration errors, SIGTERM, and a
//! `kill -9` in the middle of firing.

#[path = "api/helpers.rs"]
mod helpers;

use std::collections::HashSet;
use std::process::Stdio;
use std::time::Duration;

use chrono::Utc;
use tokio::process::{Child, Command};

use helpers::{TestFleet, fleet, spec};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Starts the built binary on the fleet's namespace and waits until it is ready.
async fn spawn_binary(fleet: &TestFleet, extra: &[(&str, &str)]) -> (Child, u16) {
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let mut command = Command::new(env!("CARGO_BIN_EXE_scheduler"));
    command
        .envs(fleet.env_pairs(extra))
        .env("SCHEDULER_ADMIN_ADDR", &addr)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    let child = command.spawn().expect("spawn scheduler");
    fleet
        .wait_ready(
            addr.parse().expect("socket address"),
            Duration::from_secs(15),
        )
        .await;
    (child, port)
}

async fn send_signal(child: &Child, signal: &str) {
    let pid = child.id().expect("child still running").to_string();
    let sent = Command::new("kill")
        .args([signal, &pid])
        .status()
        .await
        .expect("kill");
    assert!(sent.success());
}

#[test]
fn invalid_configuration_is_one_clear_line_and_exit_code_2() {
    for (var, value, expected) in [
        (
            "SCHEDULER_CLAIM_BATCH",
            "0",
            "scheduler: environment variable SCHEDULER_CLAIM_BATCH is invalid: 0 is outside 1..=10000",
        ),
        (
            "SCHEDULER_LEASE_MS",
            "soon",
            "scheduler: environment variable SCHEDULER_LEASE_MS is invalid: invalid digit found in string",
        ),
        (
            "PARTITIONS",
            "0",
            "scheduler: environment variable PARTITIONS is invalid: 0 is outside 1..=1024",
        ),
    ] {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_scheduler"))
            .env_clear()
            .env(var, value)
            .output()
            .expect("run scheduler");
        assert_eq!(output.status.code(), Some(2), "{var}={value}");
        assert_eq!(String::from_utf8_lossy(&output.stderr).trim(), expected);
    }
}

#[tokio::test]
async fn sigterm_drains_and_exits_cleanly_within_ten_seconds() {
    let fleet = fleet("sigterm", 1).await;
    let (mut child, _) = spawn_binary(&fleet, &[]).await;
    send_signal(&child, "-TERM").await;
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("scheduler exits within 10 s of SIGTERM")
        .expect("wait");
    assert!(status.success(), "exit status {status}");
    fleet.finish().await;
}

/// The scheduler dies hard while timers are falling due (some claimed, some published, some
/// not yet completed); a new one takes over. Every timer fires at least once, and Redis ends
/// empty.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduler_killed_mid_firing_and_restarted_loses_nothing() {
    let mut fleet = fleet("kill9", 4).await;
    let total = 2000;
    let now = Utc::now();
    let timers: Vec<_> = (0..total)
        .map(|i| {
            spec(
                &format!("k-{i}"),
                now + chrono::Duration::milliseconds(1500 + i * 2),
                &format!("3460055{:04}", i % 300),
            )
        })
        .collect();
    fleet.schedule_all(&timers).await;

    // Small batches and a short lease: the kill lands mid-stream and the lease ends quickly.
    let settings = [
        ("SCHEDULER_CLAIM_BATCH", "20"),
        ("SCHEDULER_LEASE_MS", "2000"),
    ];
    let (mut first, _) = spawn_binary(&fleet, &settings).await;
    let before_kill = fleet
        .receive(200, Duration::from_secs(20), Duration::ZERO)
        .await;
    send_signal(&first, "-KILL").await;
    let _ = first.wait().await;
    let mut seen: HashSet<String> = before_kill.into_iter().map(|e| e.envelope.id).collect();
    assert!(
        seen.len() < total as usize,
        "the kill came too late to test anything"
    );

    let (mut second, _) = spawn_binary(&fleet, &settings).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while seen.len() < total as usize {
        let within = deadline.saturating_duration_since(tokio::time::Instant::now());
        for event in fleet.receive(1, within, Duration::ZERO).await {
            seen.insert(event.envelope.id);
        }
    }
    let expected: HashSet<String> = timers.iter().map(|t| t.id.clone()).collect();
    assert_eq!(seen, expected);
    let drained = tokio::time::timeout(Duration::from_secs(5), async {
        while fleet.store.pending().await.expect("pending") > 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(drained.is_ok(), "timers left in Redis after firing");
    send_signal(&second, "-TERM").await;
    let _ = second.wait().await;
    fleet.finish().await;
}
