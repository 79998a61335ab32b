//! The arithmetic of summaries and load reports, kept apart from the I/O that gathers the
//! numbers so that it is tested on its own.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::time::Duration;

use fakes::whatsapp::OutboundRecord;

use crate::conversation::Outcome;
use crate::persona::Ending;

/// Latency samples with nearest-rank percentiles.
#[derive(Debug, Clone, Default)]
pub struct Latencies {
    micros: Vec<u64>,
    sorted: bool,
}

impl Latencies {
    pub fn push(&mut self, latency: Duration) {
        self.micros
            .push(u64::try_from(latency.as_micros()).unwrap_or(u64::MAX));
        self.sorted = false;
    }

    pub fn extend(&mut self, latencies: impl IntoIterator<Item = Duration>) {
        for latency in latencies {
            self.push(latency);
        }
    }

    pub fn len(&self) -> usize {
        self.micros.len()
    }

    pub fn is_empty(&self) -> bool {
        self.micros.is_empty()
    }

    /// Nearest-rank percentile (`p` in 0..=100): the smallest sample with at least p% of
    /// the samples at or below it. None without samples.
    pub fn percentile(&mut self, p: f64) -> Option<Duration> {
        if self.micros.is_empty() {
            return None;
        }
        if !self.sorted {
            self.micros.sort_unstable();
            self.sorted = true;
        }
        let n = self.micros.len();
        let rank = ((p.clamp(0.0, 100.0) / 100.0) * n as f64).ceil() as usize;
        let index = rank.clamp(1, n) - 1;
        Some(Duration::from_micros(self.micros[index]))
    }
}

/// Milliseconds with two decimals, or "n/a".
pub fn ms(duration: Option<Duration>) -> String {
    duration.map_or_else(
        || "n/a".to_owned(),
        |d| format!("{:.2} ms", d.as_secs_f64() * 1000.0),
    )
}

/// What the lost/duplicated audit found across conversations.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageAudit {
    /// Customer messages accepted by ingress.
    pub customer_messages: u64,
    /// Customer messages that never got a reply.
    pub unanswered: u64,
    /// Bot messages identical to an earlier one answering the same customer message.
    pub duplicated: u64,
    /// Bot messages the fake accepted for a customer but the customer never saw.
    pub unseen: u64,
    /// Transcripts of the first conversations that failed a check, so a rare failure can be
    /// read from the report that showed it.
    pub failed_transcripts: Vec<String>,
}

/// Transcripts kept for a failing audit.
const FAILED_TRANSCRIPTS: usize = 3;

impl MessageAudit {
    pub fn clean(&self) -> bool {
        self.unanswered == 0 && self.duplicated == 0 && self.unseen == 0
    }
}

/// Duplicates among one customer's received messages: the same message twice in one step.
pub fn duplicates(received: &[(usize, OutboundRecord)]) -> u64 {
    let mut seen: Vec<(usize, &fakes::whatsapp::Outbound)> = Vec::new();
    let mut duplicated = 0;
    for (step, record) in received {
        if seen
            .iter()
            .any(|(s, message)| s == step && *message == &record.message)
        {
            duplicated += 1;
        } else {
            seen.push((*step, &record.message));
        }
    }
    duplicated
}

/// Compares what customers saw with what the fake accepted for them.
pub fn audit_messages(
    outcomes: &[Outcome],
    run_started: tokio::time::Instant,
    outbox: impl Fn(&str, &str) -> Vec<OutboundRecord>,
) -> MessageAudit {
    let mut audit = MessageAudit::default();
    for outcome in outcomes {
        audit.customer_messages += outcome.messages_sent;
        let unanswered = matches!(outcome.failure, Some(crate::conversation::Failure::NoReply));
        let duplicated = duplicates(&outcome.received);
        if unanswered {
            audit.unanswered += 1;
        }
        audit.duplicated += duplicated;
        let accepted = outbox(&outcome.business, &outcome.customer);
        let seen: std::collections::HashSet<&str> = outcome
            .received
            .iter()
            .map(|(_, record)| record.wamid.as_str())
            .collect();
        let unseen = accepted
            .iter()
            .filter(|record| !seen.contains(record.wamid.as_str()))
            .count() as u64;
        audit.unseen += unseen;
        // A conversation that could not go on is shown too: its transcript is what tells a
        // wrong reply apart from a slow one.
        let stuck = outcome.ending == crate::persona::Ending::Failed;
        if (unanswered || duplicated > 0 || unseen > 0 || stuck)
            && audit.failed_transcripts.len() < FAILED_TRANSCRIPTS
        {
            audit.failed_transcripts.push(format!(
                "{} with business {}: unanswered {}, duplicated {duplicated}, unseen {unseen}, \
                 ended {}, started {:.1} s into the run\n{}",
                outcome.customer,
                outcome.business,
                if unanswered { "yes" } else { "no" },
                outcome.ending.label(),
                outcome
                    .started
                    .saturating_duration_since(run_started)
                    .as_secs_f64(),
                crate::transcript::render(&outcome.lines, "customer"),
            ));
        }
    }
    audit
}

/// Endings by kind, in a stable order.
pub fn endings(outcomes: &[Outcome]) -> BTreeMap<Ending, u64> {
    let mut counts = BTreeMap::new();
    for outcome in outcomes {
        *counts.entry(outcome.ending).or_insert(0) += 1;
    }
    counts
}

/// Failures by kind.
pub fn errors_by_kind(outcomes: &[Outcome]) -> BTreeMap<String, u64> {
    let mut counts = BTreeMap::new();
    for outcome in outcomes {
        if let Some(failure) = &outcome.failure {
            *counts.entry(failure.kind()).or_insert(0) += 1;
        } else if outcome.ending != outcome.persona.goal {
            *counts
                .entry(format!(
                    "ended {} instead of {}",
                    outcome.ending.label(),
                    outcome.persona.goal.label()
                ))
                .or_insert(0) += 1;
        }
    }
    counts
}

/// Double bookings in a list of (resource, start, end) intervals given each resource's
/// capacity: every instant where more intervals overlap than the capacity allows is one
/// violation (counted once per excess interval).
pub fn over_capacity(bookings: &[(String, i64, i64)], capacity: &HashMap<String, u32>) -> u64 {
    let mut by_resource: HashMap<&str, Vec<(i64, i64)>> = HashMap::new();
    for (resource, start, end) in bookings {
        by_resource
            .entry(resource.as_str())
            .or_default()
            .push((*start, *end));
    }
    let mut violations = 0;
    for (resource, intervals) in by_resource {
        let allowed = i64::from(capacity.get(resource).copied().unwrap_or(1));
        // Ends sort before starts at the same instant: back-to-back is not an overlap.
        let mut events: Vec<(i64, i64)> = intervals
            .iter()
            .flat_map(|(start, end)| [(*start, 1), (*end, -1)])
            .collect();
        events.sort_unstable_by_key(|(at, delta)| (*at, *delta));
        let mut open = 0;
        for (_, delta) in events {
            open += delta;
            if delta > 0 && open > allowed {
                violations += 1;
            }
        }
    }
    violations
}

/// The final report of a load run.
#[derive(Debug, Clone, Default)]
pub struct LoadReport {
    pub command: String,
    pub machine: String,
    pub workers: usize,
    pub partitions: u16,
    pub businesses: usize,
    pub elapsed: Duration,
    pub arrived: u64,
    pub completed: u64,
    pub endings: BTreeMap<Ending, u64>,
    pub customer_messages: u64,
    pub bot_messages: u64,
    pub status_webhooks: u64,
    pub messages_per_second: f64,
    pub p50: Option<Duration>,
    pub p95: Option<Duration>,
    pub p99: Option<Duration>,
    pub max: Option<Duration>,
    pub errors: BTreeMap<String, u64>,
    pub graph_rejections: BTreeMap<i64, u64>,
    pub calendar_bookings: u64,
    pub confirmed_to_customers: u64,
    pub double_bookings: u64,
    pub messages: MessageAudit,
    /// Peak resident memory per worker process, in KiB; empty for in-process workers.
    pub worker_rss_kib: Vec<u64>,
    /// The broker's quorum WAL rollovers during the run, when its directory is readable:
    /// while one is written out the broker slows down, which explains a stall in the figures.
    pub broker_wal: Option<String>,
}

impl LoadReport {
    /// Zero double bookings, every confirmation backed by a booking, nothing lost or doubled.
    pub fn audit_passed(&self) -> bool {
        self.double_bookings == 0
            && self.calendar_bookings == self.confirmed_to_customers
            && self.messages.clean()
    }
}

impl fmt::Display for LoadReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "== sim load report ==")?;
        writeln!(f, "command:        {}", self.command)?;
        writeln!(f, "machine:        {}", self.machine)?;
        writeln!(
            f,
            "fleet:          {} worker(s), {} partitions, {} businesses",
            self.workers, self.partitions, self.businesses
        )?;
        writeln!(f, "elapsed:        {:.1} s", self.elapsed.as_secs_f64())?;
        writeln!(
            f,
            "conversations:  {} arrived, {} completed",
            self.arrived, self.completed
        )?;
        let endings: Vec<String> = self
            .endings
            .iter()
            .map(|(ending, count)| format!("{count} {}", ending.label()))
            .collect();
        writeln!(f, "endings:        {}", endings.join(", "))?;
        writeln!(
            f,
            "messages:       {} from customers ({:.0}/s), {} from the bot, {} status webhooks",
            self.customer_messages,
            self.messages_per_second,
            self.bot_messages,
            self.status_webhooks
        )?;
        writeln!(
            f,
            "latency:        inbound-to-first-reply p50 {}  p95 {}  p99 {}  max {}",
            ms(self.p50),
            ms(self.p95),
            ms(self.p99),
            ms(self.max)
        )?;
        if self.errors.is_empty() {
            writeln!(f, "errors:         none")?;
        } else {
            writeln!(f, "errors:")?;
            for (kind, count) in &self.errors {
                writeln!(f, "  {count:>8}  {kind}")?;
            }
        }
        if !self.graph_rejections.is_empty() {
            let rejected: Vec<String> = self
                .graph_rejections
                .iter()
                .map(|(code, count)| format!("{count} × code {code}"))
                .collect();
            writeln!(
                f,
                "graph rejects:  {} (retried by the workers)",
                rejected.join(", ")
            )?;
        }
        if !self.worker_rss_kib.is_empty() {
            let rss: Vec<String> = self
                .worker_rss_kib
                .iter()
                .map(|kib| format!("{:.1} MB", *kib as f64 / 1024.0))
                .collect();
            writeln!(f, "worker RSS:     peak {}", rss.join(", "))?;
        }
        let wal = match self.broker_wal.as_deref() {
            None => "not watched (its directory is not readable here)",
            Some("") => "no rollover",
            Some(changes) => changes,
        };
        writeln!(f, "broker WAL:     {wal}")?;
        writeln!(f, "audit:")?;
        writeln!(f, "  double bookings:            {}", self.double_bookings)?;
        writeln!(
            f,
            "  bookings in calendars:      {} (confirmed to customers: {})",
            self.calendar_bookings, self.confirmed_to_customers
        )?;
        writeln!(
            f,
            "  customer messages unanswered: {}  bot messages duplicated: {}  sent but unseen: {}",
            self.messages.unanswered, self.messages.duplicated, self.messages.unseen
        )?;
        writeln!(
            f,
            "  verdict:                    {}",
            if self.audit_passed() { "PASS" } else { "FAIL" }
        )?;
        for transcript in &self.messages.failed_transcripts {
            writeln!(f, "failed conversation: {transcript}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples(values_ms: &[u64]) -> Latencies {
        let mut latencies = Latencies::default();
        latencies.extend(values_ms.iter().map(|ms| Duration::from_millis(*ms)));
        latencies
    }

    #[test]
    fn nearest_rank_percentiles() {
        let mut latencies = samples(&(1..=100).collect::<Vec<_>>());
        assert_eq!(latencies.percentile(50.0), Some(Duration::from_millis(50)));
        assert_eq!(latencies.percentile(95.0), Some(Duration::from_millis(95)));
        assert_eq!(latencies.percentile(99.0), Some(Duration::from_millis(99)));
        assert_eq!(
            latencies.percentile(100.0),
            Some(Duration::from_millis(100))
        );
        assert_eq!(latencies.percentile(0.0), Some(Duration::from_millis(1)));
        let mut one = samples(&[7]);
        assert_eq!(one.percentile(99.0), Some(Duration::from_millis(7)));
        assert_eq!(Latencies::default().percentile(50.0), None);
        // Unsorted input, pushes after a percentile.
        let mut latencies = samples(&[30, 10, 20]);
        assert_eq!(latencies.percentile(50.0), Some(Duration::from_millis(20)));
        latencies.push(Duration::from_millis(5));
        assert_eq!(latencies.percentile(25.0), Some(Duration::from_millis(5)));
    }

    #[test]
    fn capacity_sweep_counts_only_real_overlaps() {
        let capacity: HashMap<String, u32> =
            [("maria".to_owned(), 1), ("studio".to_owned(), 2)].into();
        let b = |r: &str, s: i64, e: i64| (r.to_owned(), s, e);
        // Back to back is fine; overlapping on a capacity-1 resource is not.
        assert_eq!(
            over_capacity(&[b("maria", 0, 30), b("maria", 30, 60)], &capacity),
            0
        );
        assert_eq!(
            over_capacity(&[b("maria", 0, 30), b("maria", 15, 45)], &capacity),
            1
        );
        // Two at once in the two-chair studio is allowed, three is one too many.
        assert_eq!(
            over_capacity(&[b("studio", 0, 30), b("studio", 0, 30)], &capacity),
            0
        );
        assert_eq!(
            over_capacity(
                &[b("studio", 0, 30), b("studio", 10, 30), b("studio", 20, 40)],
                &capacity
            ),
            1
        );
        // Resources do not interfere with each other.
        assert_eq!(
            over_capacity(&[b("maria", 0, 30), b("studio", 0, 30)], &capacity),
            0
        );
    }

    #[test]
    fn a_failing_conversation_is_reported_with_its_transcript() {
        let started = tokio::time::Instant::now();
        let outcome = |customer: &str, ending, failure| Outcome {
            persona: crate::persona::Persona {
                name: "Ana".into(),
                lang: lang::Lang::Es,
                about: "test".into(),
                beats: Vec::new(),
                goal: crate::persona::Ending::Booked,
            },
            business: "555000111".into(),
            customer: customer.into(),
            lines: vec![crate::transcript::Line {
                at: Duration::from_millis(3),
                speaker: crate::transcript::Speaker::Customer,
                message: crate::transcript::Said::Customer(crate::persona::Act::Text(
                    "hola, quiero una cita".into(),
                )),
            }],
            latencies: Vec::new(),
            messages_sent: 1,
            received: Vec::new(),
            ending,
            failure,
            started,
            finished: started,
        };
        use crate::persona::Ending;
        let audit = audit_messages(
            &[
                outcome("34600000001", Ending::Booked, None),
                outcome(
                    "34600000002",
                    Ending::Failed,
                    Some(crate::conversation::Failure::NoReply),
                ),
                outcome("34600000003", Ending::Failed, None),
            ],
            started,
            |_, _| Vec::new(),
        );
        assert_eq!(
            (audit.unanswered, audit.duplicated, audit.unseen),
            (1, 0, 0)
        );
        assert!(!audit.clean());
        assert_eq!(audit.failed_transcripts.len(), 2);
        assert!(audit.failed_transcripts[0].starts_with("34600000002 with business 555000111"));
        assert!(audit.failed_transcripts[0].contains("hola, quiero una cita"));
        assert!(
            audit.failed_transcripts[1].starts_with("34600000003 with business 555000111"),
            "a conversation that could not go on is shown even when every message was answered"
        );
    }

    #[test]
    fn duplicates_are_identical_messages_answering_the_same_step() {
        let record = |sequence: u64, body: &str| OutboundRecord {
            sequence,
            business: "1".into(),
            customer: "2".into(),
            to: "+2".into(),
            wamid: format!("wamid.{sequence}"),
            message: fakes::whatsapp::Outbound::Text {
                body: body.into(),
                preview_url: false,
            },
            body: serde_json::Value::Null,
        };
        let received = vec![
            (1, record(1, "Hi")),
            (1, record(2, "Confirm?")),
            (1, record(3, "Confirm?")),
            // The same sentence answering a later message is a new answer, not a duplicate.
            (2, record(4, "Confirm?")),
        ];
        assert_eq!(duplicates(&received), 1);
    }
}
