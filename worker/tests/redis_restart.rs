//! Redis restarts under a running fleet. Kept in its own test binary: cargo runs test binaries
//! one after another, so no other test shares Redis while it is down.
//!
//! This machine's Redis keeps nothing on disk, so a restart loses every key: the point here is
//! that the fleet recovers by itself and serves new conversations, with no restart of its own.
//! Keeping data across Redis restarts is a deployment setting (AOF persistence), not code.

// The end-to-end harness is shared with tests/e2e; this binary uses only part of it.
#![allow(dead_code)]

#[path = "e2e/chat.rs"]
mod chat;
#[path = "e2e/fleet.rs"]
mod fleet;

use std::process::Command;
use std::time::{Duration, Instant};

use chat::Chat;
use fleet::{Fleet, SALON};

fn redis_cli(args: &[&str]) -> bool {
    Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", "6379"])
        .args(args)
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

fn start_redis() {
    let status = Command::new("redis-server")
        .args([
            "--daemonize",
            "yes",
            "--bind",
            "127.0.0.1",
            "-::1",
            "--port",
            "6379",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            "/tmp",
            "--logfile",
            "/tmp/redis-restart-test.log",
        ])
        .status()
        .expect("redis-server must be installed where Redis runs");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    while !redis_cli(&["ping"]) {
        assert!(Instant::now() < deadline, "Redis did not come back");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fleet_recovers_by_itself_when_redis_restarts() {
    let fleet = Fleet::start("redis-restart", 1).await;
    let mut before = Chat::new(&fleet, SALON, "15550800001", "Ada");
    before
        .book("hi, I'd like to book a haircut please", "You're booked")
        .await;

    // Down: shut Redis without saving, as a crash would; bring it back after a pause.
    assert!(redis_cli(&["shutdown", "nosave"]) || !redis_cli(&["ping"]));
    let mut during = Chat::new(&fleet, SALON, "15550800002", "Bo");
    during.say("hi, I'd like to book a haircut please").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    start_redis();

    // The message sent while Redis was down is not lost: the worker retried it (or the broker
    // redelivered it) and it is answered once Redis is back.
    during.until_confirm().await;
    during.tap("confirm").await;
    during.expect_text(&["You're booked"]).await;

    // And a brand-new conversation works as usual.
    let mut after = Chat::new(&fleet, SALON, "15550800003", "Cy");
    after
        .book("hi, I'd like to book a blow-dry please", "You're booked")
        .await;
    fleet.finish().await;
}
