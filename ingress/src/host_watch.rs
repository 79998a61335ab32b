//! What the host did, sampled every few milliseconds, for telling a latency stall's cause from
//! a benchmark or a load run: time the hypervisor took from this VM (steal), time runnable
//! tasks waited for a CPU or for I/O (Linux pressure stall information), how long named
//! processes sat runnable but not running, and how late a plain sleeping thread woke up. A
//! stall that shows in ingress's latency but in none of these is ingress's own; one that shows
//! as steal is the VM's. Nothing in the fleet itself reads this.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Cumulative counters read at one instant. Each is a running total since boot (or since the
/// process started), so any two samples give what happened between them.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Counters {
    /// Time the hypervisor ran something else while this VM wanted the CPU.
    pub steal: Duration,
    /// Time at least one runnable task waited for a CPU (`/proc/pressure/cpu`, "some").
    pub cpu_some: Duration,
    /// Time at least one task waited on I/O (`/proc/pressure/io`, "some").
    pub io_some: Duration,
    /// Time every non-idle task waited on I/O at once (`/proc/pressure/io`, "full").
    pub io_full: Duration,
    /// Per watched process, the time its threads spent runnable but not running.
    pub runqueue_wait: [Duration; MAX_PROCESSES],
    /// The part of the first process's time spent by its threads with the name asked for (one
    /// thread whose lateness matters on its own, such as a connection's I/O thread).
    pub named_thread_wait: Duration,
}

/// Processes a watch can follow (ingress and the broker in the bench).
pub const MAX_PROCESSES: usize = 2;

#[derive(Clone, Copy, Debug)]
struct Sample {
    at: Instant,
    counters: Counters,
    /// How much later than asked the sampling thread woke for this sample.
    late: Duration,
}

/// What happened between two instants.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Window {
    pub counters: Counters,
    /// The latest wake-up of the sampling thread in the window: a thread doing nothing but
    /// sleeping that woke this late was not given a CPU.
    pub worst_wake_up: Duration,
}

/// Samples the host on its own thread, so a stalled async runtime in the caller does not stop
/// the record.
pub struct HostWatch {
    samples: Arc<Mutex<Vec<Sample>>>,
    stop: Arc<AtomicBool>,
    /// Returns the CPU time the sampling thread used, so a report can say what watching cost.
    thread: Option<std::thread::JoinHandle<Option<Duration>>>,
}

impl HostWatch {
    /// Starts sampling every `every`, following up to `MAX_PROCESSES` processes (more are
    /// ignored) and, within the first, threads named `thread_name`. Counters the host does not
    /// offer read as zero.
    pub fn start(pids: &[u32], thread_name: Option<String>, every: Duration) -> HostWatch {
        let mut watched = [None; MAX_PROCESSES];
        for (slot, pid) in watched.iter_mut().zip(pids) {
            *slot = Some(*pid);
        }
        let samples = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (recorded, stopping) = (Arc::clone(&samples), Arc::clone(&stop));
        let thread = std::thread::spawn(move || {
            let mut late = Duration::ZERO;
            while !stopping.load(Ordering::Relaxed) {
                let sample = Sample {
                    at: Instant::now(),
                    counters: read_counters(&watched, thread_name.as_deref()),
                    late,
                };
                if let Ok(mut samples) = recorded.lock() {
                    samples.push(sample);
                }
                let asleep = Instant::now();
                std::thread::sleep(every);
                late = asleep.elapsed().saturating_sub(every);
            }
            std::fs::read_to_string("/proc/thread-self/stat")
                .ok()
                .and_then(|stat| cpu_time(&stat))
        });
        HostWatch {
            samples,
            stop,
            thread: Some(thread),
        }
    }

    /// What happened from `start` to `end`, from the samples nearest inside them; None until
    /// two samples fall in the window.
    pub fn between(&self, start: Instant, end: Instant) -> Option<Window> {
        let samples = match self.samples.lock() {
            Ok(samples) => samples,
            Err(poisoned) => poisoned.into_inner(),
        };
        window(&samples, start, end)
    }
}

impl HostWatch {
    /// Stops sampling; returns the CPU time the sampling thread used, when it could be read.
    pub fn stop(mut self) -> Option<Duration> {
        self.stop_thread()
    }

    fn stop_thread(&mut self) -> Option<Duration> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take()?.join().ok().flatten()
    }
}

impl Drop for HostWatch {
    fn drop(&mut self) {
        self.stop_thread();
    }
}

/// User plus system CPU time from a `/proc/PID/stat` or `/proc/PID/task/TID/stat` line.
pub fn cpu_time(stat: &str) -> Option<Duration> {
    // The fields after the command name (which may contain spaces and parentheses) start after
    // the last ')'; utime and stime are the 12th and 13th of them.
    let (_, rest) = stat.rsplit_once(')')?;
    let mut fields = rest.split_whitespace().skip(11);
    let user: u32 = fields.next()?.parse().ok()?;
    let system: u32 = fields.next()?.parse().ok()?;
    Some(TICK * (user + system))
}

fn window(samples: &[Sample], start: Instant, end: Instant) -> Option<Window> {
    let inside: Vec<&Sample> = samples
        .iter()
        .filter(|sample| (start..=end).contains(&sample.at))
        .collect();
    let (first, last) = (inside.first()?, inside.last()?);
    if first.at == last.at {
        return None;
    }
    let (a, b) = (first.counters, last.counters);
    let mut runqueue_wait = [Duration::ZERO; MAX_PROCESSES];
    for (wait, (before, after)) in runqueue_wait
        .iter_mut()
        .zip(a.runqueue_wait.iter().zip(b.runqueue_wait))
    {
        // Threads that exit between samples take their totals with them.
        *wait = after.saturating_sub(*before);
    }
    Some(Window {
        counters: Counters {
            steal: b.steal.saturating_sub(a.steal),
            cpu_some: b.cpu_some.saturating_sub(a.cpu_some),
            io_some: b.io_some.saturating_sub(a.io_some),
            io_full: b.io_full.saturating_sub(a.io_full),
            runqueue_wait,
            named_thread_wait: b.named_thread_wait.saturating_sub(a.named_thread_wait),
        },
        // The first sample's lateness happened before the window.
        worst_wake_up: inside[1..]
            .iter()
            .map(|sample| sample.late)
            .max()
            .unwrap_or_default(),
    })
}

fn read_counters(pids: &[Option<u32>; MAX_PROCESSES], thread_name: Option<&str>) -> Counters {
    let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
    let cpu_pressure = read("/proc/pressure/cpu");
    let io_pressure = read("/proc/pressure/io");
    let mut runqueue_wait = [Duration::ZERO; MAX_PROCESSES];
    let mut named_thread_wait = Duration::ZERO;
    for (index, (wait, pid)) in runqueue_wait.iter_mut().zip(pids).enumerate() {
        if let Some(pid) = pid {
            // Names cost a read per thread per sample: only the first process's are looked at
            // (the broker runs dozens of threads).
            let waits = process_runqueue_wait(*pid, thread_name.filter(|_| index == 0));
            *wait = waits.all;
            named_thread_wait += waits.named;
        }
    }
    Counters {
        steal: steal(&read("/proc/stat")).unwrap_or_default(),
        cpu_some: pressure_total(&cpu_pressure, "some").unwrap_or_default(),
        io_some: pressure_total(&io_pressure, "some").unwrap_or_default(),
        io_full: pressure_total(&io_pressure, "full").unwrap_or_default(),
        runqueue_wait,
        named_thread_wait,
    }
}

/// Linux counts `/proc/stat` times in USER_HZ ticks, which is 100 per second.
const TICK: Duration = Duration::from_millis(10);

/// The steal time in `/proc/stat`'s aggregate `cpu` line (its eighth value).
fn steal(proc_stat: &str) -> Option<Duration> {
    let line = proc_stat.lines().find(|line| line.starts_with("cpu "))?;
    let ticks: u32 = line.split_whitespace().nth(8)?.parse().ok()?;
    Some(TICK * ticks)
}

/// The `total=` microseconds of the "some" or "full" line of a `/proc/pressure/*` file.
fn pressure_total(pressure: &str, kind: &str) -> Option<Duration> {
    let line = pressure
        .lines()
        .find(|line| line.split_whitespace().next() == Some(kind))?;
    let total = line
        .split_whitespace()
        .find_map(|field| field.strip_prefix("total="))?;
    Some(Duration::from_micros(total.parse().ok()?))
}

#[derive(Debug, Default, PartialEq)]
struct ProcessWaits {
    all: Duration,
    named: Duration,
}

/// The summed runqueue wait of a process's threads, and of those named `thread_name`:
/// `/proc/PID/task/*/schedstat` holds (time on CPU, time waiting to run, timeslices), in
/// nanoseconds, and `comm` the thread's name.
fn process_runqueue_wait(pid: u32, thread_name: Option<&str>) -> ProcessWaits {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return ProcessWaits::default();
    };
    let threads = tasks.filter_map(|task| task.ok()).filter_map(|task| {
        let wait = schedstat_wait(&std::fs::read_to_string(task.path().join("schedstat")).ok()?)?;
        // Names are read only when one is asked for: one more file per thread per sample.
        let comm = thread_name.and_then(|_| std::fs::read_to_string(task.path().join("comm")).ok());
        Some((comm, wait))
    });
    tally(threads, thread_name)
}

/// Sums (thread name as `comm` holds it, runqueue wait) pairs.
fn tally(
    threads: impl Iterator<Item = (Option<String>, Duration)>,
    thread_name: Option<&str>,
) -> ProcessWaits {
    let mut waits = ProcessWaits::default();
    for (comm, wait) in threads {
        waits.all += wait;
        if thread_name.is_some() && comm.as_deref().map(str::trim_end) == thread_name {
            waits.named += wait;
        }
    }
    waits
}

fn schedstat_wait(schedstat: &str) -> Option<Duration> {
    let waited: u64 = schedstat.split_whitespace().nth(1)?.parse().ok()?;
    Some(Duration::from_nanos(waited))
}

/// True when this host offers the pressure files (Linux 4.20 and later, unless disabled).
pub fn pressure_available() -> bool {
    Path::new("/proc/pressure/cpu").exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_steal_from_the_aggregate_cpu_line_only() {
        let stat = "cpu  5825 0 3064 14217 473 0 114 626 0 0\n\
                    cpu0 2900 0 1500 7000 200 0 50 313 0 0\n\
                    intr 1 2 3\n";
        assert_eq!(steal(stat), Some(Duration::from_millis(6260)));
        assert_eq!(steal("cpu0 1 2 3 4 5 6 7 8 9 10\n"), None);
        assert_eq!(
            steal("cpu  1 2 3\n"),
            None,
            "a kernel without a steal column"
        );
    }

    #[test]
    fn reads_the_some_and_full_totals_of_a_pressure_file() {
        let io = "some avg10=1.94 avg60=2.23 avg300=1.02 total=4256188\n\
                  full avg10=1.82 avg60=1.96 avg300=0.90 total=3776284\n";
        assert_eq!(
            pressure_total(io, "some"),
            Some(Duration::from_micros(4_256_188))
        );
        assert_eq!(
            pressure_total(io, "full"),
            Some(Duration::from_micros(3_776_284))
        );
        assert_eq!(pressure_total("", "some"), None);
        assert_eq!(
            pressure_total("some avg10=0.00 total=x\n", "some"),
            None,
            "a malformed total is no reading, not zero"
        );
    }

    #[test]
    fn reads_the_wait_column_of_schedstat() {
        assert_eq!(
            schedstat_wait("36973857 11316725 27\n"),
            Some(Duration::from_nanos(11_316_725))
        );
        assert_eq!(schedstat_wait("36973857\n"), None);
    }

    #[test]
    fn the_named_thread_s_wait_is_counted_apart_as_well_as_in_the_total() {
        let ms = Duration::from_millis;
        let threads = || {
            [
                (Some("ingress\n".to_owned()), ms(5)),
                (Some("lapin-io-loop\n".to_owned()), ms(7)),
                (Some("lapin-io-loop2\n".to_owned()), ms(11)),
                (None, ms(13)),
            ]
            .into_iter()
        };
        assert_eq!(
            tally(threads(), Some("lapin-io-loop")),
            ProcessWaits {
                all: ms(36),
                named: ms(7)
            }
        );
        assert_eq!(
            tally(threads(), None),
            ProcessWaits {
                all: ms(36),
                named: Duration::ZERO
            }
        );
    }

    fn sample(at: Instant, steal_ms: u64, wait_ms: u64, late_ms: u64) -> Sample {
        Sample {
            at,
            counters: Counters {
                steal: Duration::from_millis(steal_ms),
                runqueue_wait: [Duration::from_millis(wait_ms), Duration::ZERO],
                ..Counters::default()
            },
            late: Duration::from_millis(late_ms),
        }
    }

    #[test]
    fn a_window_is_the_difference_between_its_first_and_last_sample_inside() {
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        let samples = [
            sample(at(0), 100, 5, 40),
            sample(at(10), 110, 6, 1),
            sample(at(20), 150, 9, 30),
            sample(at(30), 150, 5, 2),
            sample(at(40), 170, 8, 90),
        ];
        let window = super::window(&samples, at(5), at(35)).expect("three samples inside");
        assert_eq!(window.counters.steal, Duration::from_millis(40));
        // The wait at 30 ms is lower than at 10 ms: a thread exited; no negative time.
        assert_eq!(window.counters.runqueue_wait[0], Duration::ZERO);
        // The 40 ms lateness of the sample at 0 and the 90 ms at 40 are outside the window;
        // so is the first sample's own (it happened before the window's first reading).
        assert_eq!(window.worst_wake_up, Duration::from_millis(30));
        assert_eq!(super::window(&samples, at(11), at(19)), None);
        assert_eq!(super::window(&samples, at(9), at(11)), None, "one sample");
    }

    #[test]
    fn reads_user_and_system_time_after_the_command_name() {
        // The command name holds a space and a ')': only the last ')' ends it.
        let stat = "4242 (beam ) smp) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 30 0";
        assert_eq!(cpu_time(stat), Some(Duration::from_millis(3250)));
        assert_eq!(cpu_time("4242 (short) S 1 2"), None);
        assert_eq!(cpu_time("no parenthesis 1 2 3"), None);
    }

    #[test]
    fn the_watch_samples_only_the_processes_it_was_given_until_stopped() {
        let started = Instant::now();
        let watch = HostWatch::start(
            &[std::process::id()],
            Some("host-watch-spin".to_owned()),
            Duration::from_millis(5),
        );
        // More spinning threads with the name than there are CPUs: some of them must wait to
        // run, and only their wait counts as the named thread's.
        let spin_until = started + Duration::from_millis(100);
        let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
        let spinners: Vec<_> = (0..=cpus)
            .map(|_| {
                std::thread::Builder::new()
                    .name("host-watch-spin".to_owned())
                    .spawn(move || {
                        while Instant::now() < spin_until {
                            std::hint::spin_loop();
                        }
                    })
                    .expect("spawn a spinning thread")
            })
            .collect();
        for spinner in spinners {
            spinner.join().expect("spinner");
        }
        let samples = Arc::clone(&watch.samples);
        let window = watch
            .between(started, Instant::now())
            .expect("two samples within 100 ms at 5 ms intervals");
        let named = window.counters.named_thread_wait;
        assert!(!named.is_zero(), "the named threads waited for a CPU");
        assert!(
            named <= window.counters.runqueue_wait[0],
            "the named threads' wait is part of their process's: {named:?} against {:?}",
            window.counters.runqueue_wait[0]
        );
        let taken = samples.lock().expect("samples").len();
        assert!(
            samples
                .lock()
                .expect("samples")
                .iter()
                .all(|sample| sample.counters.runqueue_wait[1].is_zero()),
            "the slot of a process not given stays empty"
        );
        let used = watch
            .stop()
            .expect("the sampling thread's CPU time is readable");
        assert!(used < Duration::from_secs(1), "{used:?}");
        let after_stop = samples.lock().expect("samples").len();
        assert!(after_stop >= taken);
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(
            samples.lock().expect("samples").len(),
            after_stop,
            "no sample after stop"
        );
    }
}
