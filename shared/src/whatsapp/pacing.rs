//! Outbound pacing before each send, so Meta's throughput (130429) and pair-rate (131056)
//! limits are rarely hit rather than handled after the fact.

use std::num::NonZeroU32;
use std::ops::Add;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use governor::clock::{Clock, Reference};
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::keyed::DashMapStateStore;
use governor::{Quota, RateLimiter};
use tokio::time::Instant;

use super::error::TransientCause;

/// Limits the client keeps itself under. Each worker process paces on its own, so the
/// per-number rate should be Meta's limit divided by the number of processes sending for
/// that number.
#[derive(Debug, Clone, PartialEq)]
pub struct PacingConfig {
    /// Sends per second per business phone number; Meta's default limit is 80.
    pub per_business_per_second: NonZeroU32,
    /// One send to the same customer is earned back every interval; Meta's is 6 s.
    pub per_customer_interval: Duration,
    /// Sends to one customer that may go out back to back. Meta allows 45 in 6 s but makes
    /// a burst borrow from the future. 20 keeps a live exchange (a reply, a list, a
    /// confirmation) instant, and stays under 45 even if a restarted process starts over
    /// with a fresh allowance right after the old one spent its own.
    pub per_customer_burst: NonZeroU32,
    /// Longest a send waits for a slot; beyond it the send fails as transient instead of
    /// holding its caller (an AMQP delivery) hostage.
    pub max_wait: Duration,
}

impl Default for PacingConfig {
    fn default() -> Self {
        Self {
            per_business_per_second: NonZeroU32::new(80).unwrap_or(NonZeroU32::MIN),
            per_customer_interval: Duration::from_secs(6),
            per_customer_burst: NonZeroU32::new(20).unwrap_or(NonZeroU32::MIN),
            max_wait: Duration::from_secs(15),
        }
    }
}

/// Governor's clock on Tokio time, so pacing obeys `tokio::time::pause` in tests.
#[derive(Debug, Clone, Copy, Default)]
pub struct TokioClock;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct TokioInstant(Instant);

impl Add<Nanos> for TokioInstant {
    type Output = Self;

    fn add(self, other: Nanos) -> Self {
        Self(self.0 + Duration::from(other))
    }
}

impl Reference for TokioInstant {
    fn duration_since(&self, earlier: Self) -> Nanos {
        self.0.saturating_duration_since(earlier.0).into()
    }

    fn saturating_sub(&self, duration: Nanos) -> Self {
        self.0
            .checked_sub(Duration::from(duration))
            .map(Self)
            .unwrap_or(*self)
    }
}

impl Clock for TokioClock {
    type Instant = TokioInstant;

    fn now(&self) -> TokioInstant {
        TokioInstant(Instant::now())
    }
}

type KeyedLimiter<K> =
    RateLimiter<K, DashMapStateStore<K>, TokioClock, NoOpMiddleware<TokioInstant>>;

/// How often idle limiter entries are dropped, counted in acquisitions.
const PRUNE_EVERY: u64 = 4096;

pub(crate) struct Pacer {
    per_business: KeyedLimiter<String>,
    per_customer: KeyedLimiter<(String, String)>,
    max_wait: Duration,
    acquisitions: AtomicU64,
}

impl std::fmt::Debug for Pacer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pacer")
            .field("max_wait", &self.max_wait)
            .finish_non_exhaustive()
    }
}

impl Pacer {
    pub fn new(config: &PacingConfig) -> Self {
        let per_business = Quota::per_second(config.per_business_per_second);
        let per_customer = Quota::with_period(config.per_customer_interval)
            .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
            .allow_burst(config.per_customer_burst);
        Self {
            per_business: RateLimiter::dashmap_with_clock(per_business, TokioClock),
            per_customer: RateLimiter::dashmap_with_clock(per_customer, TokioClock),
            max_wait: config.max_wait,
            acquisitions: AtomicU64::new(0),
        }
    }

    /// Waits for a slot for this customer, then for this number. The customer slot comes
    /// first because its waits are long: holding a number slot meanwhile would waste it.
    pub async fn acquire(&self, business: &str, customer: &str) -> Result<(), TransientCause> {
        let deadline = Instant::now() + self.max_wait;
        let pair = (business.to_owned(), customer.to_owned());
        self.wait_for(&self.per_customer, &pair, deadline).await?;
        self.wait_for(&self.per_business, &business.to_owned(), deadline)
            .await?;
        if self.acquisitions.fetch_add(1, Ordering::Relaxed) % PRUNE_EVERY == PRUNE_EVERY - 1 {
            self.per_business.retain_recent();
            self.per_customer.retain_recent();
        }
        Ok(())
    }

    /// Mark-as-read and typing indicators count against the number's throughput only.
    pub async fn acquire_business(&self, business: &str) -> Result<(), TransientCause> {
        let deadline = Instant::now() + self.max_wait;
        self.wait_for(&self.per_business, &business.to_owned(), deadline)
            .await
    }

    async fn wait_for<K>(
        &self,
        limiter: &KeyedLimiter<K>,
        key: &K,
        deadline: Instant,
    ) -> Result<(), TransientCause>
    where
        K: std::hash::Hash + Eq + Clone,
    {
        loop {
            let refused = match limiter.check_key(key) {
                Ok(()) => return Ok(()),
                Err(refused) => refused,
            };
            let now = Instant::now();
            let wait = refused.wait_time_from(TokioInstant(now));
            if now + wait > deadline {
                return Err(TransientCause::PacingBudgetExceeded {
                    wait,
                    limit: self.max_wait,
                });
            }
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pacer(burst: u32, interval: Duration, max_wait: Duration) -> Pacer {
        Pacer::new(&PacingConfig {
            per_business_per_second: NonZeroU32::new(1000).unwrap_or(NonZeroU32::MIN),
            per_customer_interval: interval,
            per_customer_burst: NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN),
            max_wait,
        })
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_goes_out_at_once_then_one_per_interval() {
        let pacer = pacer(3, Duration::from_secs(6), Duration::from_secs(60));
        let start = Instant::now();
        for _ in 0..3 {
            pacer.acquire("biz", "cust").await.ok();
        }
        assert_eq!(start.elapsed(), Duration::ZERO);
        pacer.acquire("biz", "cust").await.ok();
        assert_eq!(start.elapsed(), Duration::from_secs(6));
        pacer.acquire("biz", "cust").await.ok();
        assert_eq!(start.elapsed(), Duration::from_secs(12));
    }

    #[tokio::test(start_paused = true)]
    async fn customers_do_not_wait_for_each_other() {
        let pacer = pacer(1, Duration::from_secs(6), Duration::from_secs(60));
        let start = Instant::now();
        for customer in ["a", "b", "c"] {
            pacer.acquire("biz", customer).await.ok();
        }
        assert_eq!(start.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn waiting_longer_than_allowed_fails_at_once() {
        let pacer = pacer(1, Duration::from_secs(6), Duration::from_secs(2));
        let start = Instant::now();
        assert!(pacer.acquire("biz", "cust").await.is_ok());
        let refused = pacer.acquire("biz", "cust").await;
        assert!(matches!(
            refused,
            Err(TransientCause::PacingBudgetExceeded { .. })
        ));
        assert_eq!(start.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn the_number_limit_spaces_sends_to_different_customers() {
        let pacer = Pacer::new(&PacingConfig {
            per_business_per_second: NonZeroU32::new(10).unwrap_or(NonZeroU32::MIN),
            per_customer_interval: Duration::from_secs(6),
            per_customer_burst: NonZeroU32::new(20).unwrap_or(NonZeroU32::MIN),
            max_wait: Duration::from_secs(60),
        });
        let start = Instant::now();
        for customer in 0..30 {
            pacer.acquire("biz", &customer.to_string()).await.ok();
        }
        // 10 at once, then 20 more at 10 per second.
        assert_eq!(start.elapsed(), Duration::from_secs(2));
    }
}
