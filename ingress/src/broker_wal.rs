//! Observing the broker's quorum-queue write-ahead log from a benchmark or a load run.
//!
//! RabbitMQ appends every quorum-queue command to one WAL file; when it is full (or the node
//! decides so) it starts a new one and writes the old one out to per-queue segment files. On a
//! small machine that write-out takes seconds, and confirms and deliveries slow down while it
//! runs. Reporting those moments beside latency figures tells a broker pause apart from the
//! fleet's own behaviour. Nothing in the fleet itself reads this.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Where Debian's RabbitMQ package keeps the WAL of the node `rabbit@localhost`.
pub const DEBIAN_WAL_DIR: &str =
    "/var/lib/rabbitmq/mnesia/rabbit@localhost/quorum/rabbit@localhost";

/// Watches the broker's quorum WAL directory. A new `.wal` file means the broker rolled over;
/// the old one disappears once the segment writer has copied it out, which is the window in
/// which confirms slow down.
pub struct WalWatch {
    dir: PathBuf,
    events: Arc<Mutex<Vec<(Instant, String)>>>,
    task: tokio::task::JoinHandle<()>,
}

impl WalWatch {
    /// None when the directory cannot be read (another host, another node name, no access).
    pub fn start(dir: PathBuf) -> Option<WalWatch> {
        let initial = wal_files(&dir)?;
        let events = Arc::new(Mutex::new(Vec::new()));
        let recorded = Arc::clone(&events);
        let watched = dir.clone();
        let task = tokio::spawn(async move {
            let dir = watched;
            let mut known = initial;
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            loop {
                tick.tick().await;
                let Some(now) = wal_files(&dir) else { continue };
                let mut changes = Vec::new();
                for file in now.difference(&known) {
                    changes.push(format!("rolled over to {file}"));
                }
                for file in known.difference(&now) {
                    changes.push(format!("finished writing out {file}"));
                }
                if !changes.is_empty() {
                    let at = Instant::now();
                    if let Ok(mut events) = recorded.lock() {
                        events.extend(changes.into_iter().map(|change| (at, change)));
                    }
                }
                known = now;
            }
        });
        Some(WalWatch { dir, events, task })
    }

    /// True while the broker holds more than one WAL file: it has rolled over and is still
    /// writing the old one out.
    pub fn writing_out(&self) -> bool {
        wal_files(&self.dir).is_some_and(|files| files.len() > 1)
    }

    /// Waits until no write-out is running, or `limit` passes; returns how long it waited.
    pub async fn until_written_out(&self, limit: Duration) -> Duration {
        let started = Instant::now();
        while self.writing_out() && started.elapsed() < limit {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        started.elapsed()
    }

    /// The changes seen from `start` to `end`, each with its offset from `start`.
    pub fn between(&self, start: Instant, end: Instant) -> String {
        let events = match self.events.lock() {
            Ok(events) => events,
            Err(poisoned) => poisoned.into_inner(),
        };
        events
            .iter()
            .filter(|(at, _)| (start..end).contains(at))
            .map(|(at, change)| {
                format!(
                    "{change} at +{:.1}s",
                    at.duration_since(start).as_secs_f64()
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl Drop for WalWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn wal_files(dir: &Path) -> Option<BTreeSet<String>> {
    let entries = std::fs::read_dir(dir).ok()?;
    Some(
        entries
            .filter_map(|entry| entry.ok())
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .filter(|name| name.ends_with(".wal"))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reports_a_rollover_and_the_end_of_its_write_out_with_their_offsets() {
        let dir = std::env::temp_dir().join(format!("broker-wal-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        std::fs::write(dir.join("00000001.wal"), b"x").expect("old wal");
        std::fs::write(dir.join("meta.dets"), b"x").expect("not a wal");
        let started = Instant::now();
        let watch = WalWatch::start(dir.clone()).expect("readable");
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert!(!watch.writing_out());
        std::fs::write(dir.join("00000002.wal"), b"x").expect("new wal");
        assert!(watch.writing_out());
        let old = dir.join("00000001.wal");
        let write_out = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(250)).await;
            std::fs::remove_file(old).expect("written out");
        });
        let waited = watch.until_written_out(Duration::from_secs(5)).await;
        assert!(waited >= Duration::from_millis(200), "{waited:?}");
        assert!(!watch.writing_out());
        write_out.await.expect("write-out task");
        tokio::time::sleep(Duration::from_millis(250)).await;
        let report = watch.between(started, Instant::now());
        std::fs::remove_dir_all(&dir).expect("clean up");
        assert!(
            report.starts_with("rolled over to 00000002.wal at +0.")
                && report.contains(", finished writing out 00000001.wal at +0."),
            "{report}"
        );
        assert_eq!(watch.between(Instant::now(), Instant::now()), "");
        assert!(
            WalWatch::start(dir).is_none(),
            "a missing directory is not observable"
        );
    }
}
