//! The fake's mutable world, guarded by one mutex in `FakeWhatsApp`.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::StdRng;
use tokio::time::Instant;

use super::config::{BusinessNumber, FakeConfig, Faults, InjectedFault, Limits};
use super::{Counters, OutboundRecord, ReadMark, StatusRecord, StatusUpdate};

/// (business phone_number_id, customer wa_id or user_id).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct PairKey {
    pub business: String,
    pub customer: String,
}

impl PairKey {
    pub fn new(business: &str, customer: &str) -> Self {
        Self {
            business: business.to_owned(),
            customer: customer.to_owned(),
        }
    }
}

/// A token bucket: Meta describes both limits as a rate with borrowable burst.
#[derive(Debug, Clone)]
pub(crate) struct Bucket {
    tokens: f64,
    refreshed: Instant,
}

impl Bucket {
    fn full(capacity: f64, now: Instant) -> Self {
        Self {
            tokens: capacity,
            refreshed: now,
        }
    }

    fn try_take(&mut self, capacity: f64, per_second: f64, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.refreshed).as_secs_f64();
        self.tokens = (self.tokens + elapsed * per_second).min(capacity);
        self.refreshed = now;
        // Float refill can land a hair under a whole token at exactly the earned instant.
        if self.tokens >= 1.0 - 1e-9 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

pub(crate) struct State {
    pub businesses: HashMap<String, BusinessNumber>,
    pub webhook_url: Option<String>,
    pub faults: Faults,
    pub injected: VecDeque<InjectedFault>,
    pub rng: StdRng,
    /// When each customer last wrote: the customer-service window runs from here.
    pub windows: HashMap<PairKey, Instant>,
    /// Inbound wamid → business that received it; mark-as-read must name one of these.
    pub inbound_ids: HashMap<String, String>,
    pub unreachable: HashSet<String>,
    throughput: HashMap<String, Bucket>,
    pairs: HashMap<PairKey, Bucket>,
    pub outbox: HashMap<PairKey, Vec<OutboundRecord>>,
    /// Outbound wamid → the `traceparent` header its send carried. Kept beside the records
    /// rather than in `OutboundRecord`, which other crates build by struct literal.
    pub traceparents: HashMap<String, String>,
    /// How many of each pair's messages `next_message_to` has handed out.
    pub taken: HashMap<PairKey, usize>,
    pub sequence: u64,
    pub statuses: Vec<StatusRecord>,
    /// Statuses waiting for their business number's next batched delivery.
    pub status_batches: HashMap<String, Vec<StatusUpdate>>,
    pub read_marks: Vec<ReadMark>,
    pub counters: Counters,
}

impl State {
    pub fn new(config: &FakeConfig) -> Self {
        Self {
            businesses: config
                .businesses
                .iter()
                .map(|business| (business.phone_number_id.clone(), business.clone()))
                .collect(),
            webhook_url: config.webhook_url.clone(),
            faults: config.faults.clone(),
            injected: VecDeque::new(),
            rng: match config.seed {
                Some(seed) => StdRng::seed_from_u64(seed),
                None => StdRng::from_os_rng(),
            },
            windows: HashMap::new(),
            inbound_ids: HashMap::new(),
            unreachable: HashSet::new(),
            throughput: HashMap::new(),
            pairs: HashMap::new(),
            outbox: HashMap::new(),
            traceparents: HashMap::new(),
            taken: HashMap::new(),
            sequence: 0,
            statuses: Vec::new(),
            status_batches: HashMap::new(),
            read_marks: Vec::new(),
            counters: Counters::default(),
        }
    }

    pub fn window_open(&self, pair: &PairKey, window: Duration) -> bool {
        self.windows
            .get(pair)
            .is_some_and(|opened| opened.elapsed() < window)
    }

    pub fn take_throughput(&mut self, business: &str, limits: &Limits, now: Instant) -> bool {
        let capacity = f64::from(limits.throughput_per_second.max(1));
        self.throughput
            .entry(business.to_owned())
            .or_insert_with(|| Bucket::full(capacity, now))
            .try_take(capacity, capacity, now)
    }

    pub fn take_pair(&mut self, pair: &PairKey, limits: &Limits, now: Instant) -> bool {
        let capacity = f64::from(limits.pair_burst.max(1));
        let per_second = 1.0 / limits.pair_interval.as_secs_f64().max(1e-6);
        self.pairs
            .entry(pair.clone())
            .or_insert_with(|| Bucket::full(capacity, now))
            .try_take(capacity, per_second, now)
    }
}
