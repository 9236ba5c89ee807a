//! Request rates: how many requests a minute each API key may send, set by its
//! organization's plan (`requests_per_minute_per_api_key`) or the server's default, and
//! each person (the server's `RATE_LIMIT_USER_PER_MINUTE`: a person acts across
//! organizations). The generic cell rate
//! algorithm (GCRA): a burst of the whole minute's allowance, then one request per
//! 1/rate of a minute. A caller over its rate gets `RATE_LIMITED` with
//! `extensions.retryAfterSeconds` (HTTP 429, `Retry-After`) before anything runs.
//!
//! Counters live in this process (`governor`), or with `REDIS_URL` in Redis, shared by
//! every instance (the same algorithm as one atomic script). Should Redis fail, the
//! process's own counters take over until it answers again (logged). Both read the
//! server's clock.

use kernel::{OrgId, SharedClock};
use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long an organization's plan rates are kept before they are read again.
const PLAN_RATES_FOR: chrono::Duration = chrono::Duration::seconds(60);
/// Checks between sweeps of the process's counters (callers idle for a minute go).
const SWEEP_EVERY: u64 = 10_000;

/// Who is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Subject {
    /// An API key.
    ApiKey(uuid::Uuid),
    /// A person.
    User(uuid::Uuid),
}

impl Subject {
    fn redis_key(self) -> String {
        match self {
            Self::ApiKey(id) => format!("platform:rate:key:{id}"),
            Self::User(id) => format!("platform:rate:user:{id}"),
        }
    }
}

/// Requests a minute (`None`: unlimited).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rates {
    /// For each API key.
    pub per_api_key: Option<NonZeroU32>,
    /// For each person.
    pub per_user: Option<NonZeroU32>,
}

/// The server's clock, for `governor`: time since the epoch.
#[derive(Clone)]
struct ServerClock(SharedClock);

impl governor::clock::Clock for ServerClock {
    type Instant = Duration;

    fn now(&self) -> Duration {
        let now = self.0.now();
        Duration::from_nanos(u64::try_from(now.timestamp_nanos_opt().unwrap_or(0)).unwrap_or(0))
    }
}

type Limiter = governor::RateLimiter<
    Subject,
    governor::state::keyed::DashMapStateStore<Subject>,
    ServerClock,
    governor::middleware::NoOpMiddleware<Duration>,
>;

/// GCRA in Redis: `KEYS[1]` the caller's counter (its theoretical arrival time, in ms),
/// `ARGV` now (ms), the emission interval (ms) and the burst. Answers 0 when the request
/// may go (and counts it), else the milliseconds to wait.
const GCRA_SCRIPT: &str = r"
local now = tonumber(ARGV[1])
local interval = tonumber(ARGV[2])
local burst = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or ARGV[1])
if tat < now then tat = now end
local allowed_at = tat - interval * (burst - 1)
if now < allowed_at then return math.max(1, math.ceil(allowed_at - now)) end
local next_tat = tat + interval
redis.call('SET', KEYS[1], next_tat, 'PX', math.ceil(next_tat - now) + 1000)
return 0
";

/// How soon a failed Redis is tried again (the process's counters meanwhile).
const RECONNECT_EVERY: Duration = Duration::from_secs(10);

/// Redis, connected when needed: after a failure the process's own counters serve for
/// [`RECONNECT_EVERY`] (logged once), then Redis is tried again.
struct SharedCounters {
    client: redis::Client,
    connection: tokio::sync::Mutex<Option<redis::aio::ConnectionManager>>,
    failed_at: Mutex<Option<std::time::Instant>>,
}

impl SharedCounters {
    /// A connection, unless Redis failed within the last [`RECONNECT_EVERY`].
    async fn connection(&self) -> Option<redis::aio::ConnectionManager> {
        let failed_recently = self
            .failed_at
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some_and(|at| at.elapsed() < RECONNECT_EVERY);
        if failed_recently {
            return None;
        }
        let mut connection = self.connection.lock().await;
        if connection.is_none() {
            let config = redis::aio::ConnectionManagerConfig::new()
                .set_connection_timeout(Some(Duration::from_secs(1)))
                .set_response_timeout(Some(Duration::from_millis(500)));
            match redis::aio::ConnectionManager::new_with_config(self.client.clone(), config).await
            {
                Ok(manager) => *connection = Some(manager),
                Err(error) => {
                    drop(connection);
                    self.failed(&error);
                    return None;
                }
            }
        }
        connection.clone()
    }

    /// Counts on this process for a while, and says so once.
    fn failed(&self, error: &redis::RedisError) {
        let mut failed_at = self.failed_at.lock().unwrap_or_else(|e| e.into_inner());
        if failed_at.is_none_or(|at| at.elapsed() >= RECONNECT_EVERY) {
            tracing::warn!(%error, "Redis failed: rate limits are counted in this process for a while");
        }
        *failed_at = Some(std::time::Instant::now());
    }
}

/// The rate limits of the process.
pub struct RateLimits {
    defaults: Rates,
    clock: SharedClock,
    local: Mutex<HashMap<NonZeroU32, Arc<Limiter>>>,
    checks: std::sync::atomic::AtomicU64,
    redis: Option<SharedCounters>,
    script: redis::Script,
    plans: quick_cache::sync::Cache<OrgId, (Rates, chrono::DateTime<chrono::Utc>)>,
}

impl std::fmt::Debug for RateLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimits")
            .field("defaults", &self.defaults)
            .field("shared", &self.redis.is_some())
            .finish_non_exhaustive()
    }
}

impl RateLimits {
    /// Limits with `defaults`, counted in this process.
    pub fn local(defaults: Rates, clock: SharedClock) -> Self {
        Self {
            defaults,
            clock,
            local: Mutex::default(),
            checks: Default::default(),
            redis: None,
            script: redis::Script::new(GCRA_SCRIPT),
            plans: quick_cache::sync::Cache::new(10_000),
        }
    }

    /// Limits counted in Redis at `url` (shared by every instance using it). Connected
    /// when first needed, and again after it failed (at most every [`RECONNECT_EVERY`]).
    pub fn shared(defaults: Rates, clock: SharedClock, url: &str) -> anyhow::Result<Self> {
        Ok(Self {
            redis: Some(SharedCounters {
                client: redis::Client::open(url)?,
                connection: tokio::sync::Mutex::new(None),
                failed_at: Mutex::new(None),
            }),
            ..Self::local(defaults, clock)
        })
    }

    /// No limits at all.
    pub fn unlimited() -> Self {
        Self::local(Rates::default(), Arc::new(kernel::SystemClock))
    }

    /// The server's defaults.
    pub fn defaults(&self) -> Rates {
        self.defaults
    }

    /// The rates of `org`'s plan over the defaults, if read within the last minute (a
    /// plan change takes effect within a minute).
    pub fn plan_rates(&self, org: OrgId) -> Option<Rates> {
        self.plans
            .get(&org)
            .filter(|(_, read_at)| self.clock.now() - *read_at < PLAN_RATES_FOR)
            .map(|(rates, _)| rates)
    }

    /// Keeps the API key rate `org`'s plan sets, filled in with the default. What the
    /// organization's rates are now.
    pub fn keep_plan_rates(&self, org: OrgId, per_api_key: Option<u32>) -> Rates {
        let rates = Rates {
            per_api_key: per_api_key.map_or(self.defaults.per_api_key, NonZeroU32::new),
            per_user: self.defaults.per_user,
        };
        self.plans.insert(org, (rates, self.clock.now()));
        rates
    }

    /// Counts a request of `subject` against `per_minute`: `Err` with how long to wait
    /// when it is over.
    pub async fn check(&self, subject: Subject, per_minute: NonZeroU32) -> Result<(), Duration> {
        if let Some(shared) = &self.redis
            && let Some(connection) = shared.connection().await
        {
            match self.check_shared(connection, subject, per_minute).await {
                Ok(outcome) => return outcome,
                Err(error) => shared.failed(&error),
            }
        }
        self.check_local(subject, per_minute)
    }

    fn check_local(&self, subject: Subject, per_minute: NonZeroU32) -> Result<(), Duration> {
        let limiter = {
            let mut limiters = self.local.lock().unwrap_or_else(|e| e.into_inner());
            limiters
                .entry(per_minute)
                .or_insert_with(|| {
                    Arc::new(governor::RateLimiter::dashmap_with_clock(
                        governor::Quota::per_minute(per_minute),
                        ServerClock(self.clock.clone()),
                    ))
                })
                .clone()
        };
        let checks = self
            .checks
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if checks % SWEEP_EVERY == SWEEP_EVERY - 1 {
            limiter.retain_recent();
        }
        let clock = ServerClock(self.clock.clone());
        limiter
            .check_key(&subject)
            .map_err(|not_until| not_until.wait_time_from(governor::clock::Clock::now(&clock)))
    }

    async fn check_shared(
        &self,
        mut redis: redis::aio::ConnectionManager,
        subject: Subject,
        per_minute: NonZeroU32,
    ) -> redis::RedisResult<Result<(), Duration>> {
        let now_ms = self.clock.now().timestamp_millis();
        let interval_ms = 60_000.0 / f64::from(per_minute.get());
        let wait_ms: f64 = self
            .script
            .key(subject.redis_key())
            .arg(now_ms)
            .arg(interval_ms)
            .arg(per_minute.get())
            .invoke_async(&mut redis)
            .await?;
        Ok(if wait_ms <= 0.0 {
            Ok(())
        } else {
            Err(Duration::try_from_secs_f64(wait_ms / 1000.0).unwrap_or(Duration::from_secs(60)))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_caller_gets_its_burst_then_one_request_per_interval() {
        let clock = kernel::FakeClock::at(chrono::Utc::now());
        let limits = RateLimits::local(Rates::default(), Arc::new(clock.clone()));
        let rate = NonZeroU32::new(6).unwrap();
        let alice = Subject::User(uuid::Uuid::now_v7());
        for _ in 0..6 {
            assert!(limits.check(alice, rate).await.is_ok());
        }
        let wait = limits.check(alice, rate).await.unwrap_err();
        assert!(
            wait <= Duration::from_secs(10) && wait > Duration::ZERO,
            "{wait:?}"
        );
        // Another caller has its own allowance.
        assert!(
            limits
                .check(Subject::ApiKey(uuid::Uuid::now_v7()), rate)
                .await
                .is_ok()
        );
        // One interval later, one more request goes.
        clock.advance(chrono::Duration::seconds(10));
        assert!(limits.check(alice, rate).await.is_ok());
        assert!(limits.check(alice, rate).await.is_err());
    }

    #[test]
    fn plan_rates_fill_in_the_defaults() {
        let defaults = Rates {
            per_api_key: NonZeroU32::new(100),
            per_user: NonZeroU32::new(200),
        };
        let limits = RateLimits::local(defaults, Arc::new(kernel::SystemClock));
        let org = OrgId::from_uuid(uuid::Uuid::now_v7());
        assert_eq!(limits.plan_rates(org), None);
        let kept = limits.keep_plan_rates(org, Some(5));
        assert_eq!(kept.per_api_key, NonZeroU32::new(5));
        assert_eq!(kept.per_user, NonZeroU32::new(200));
        assert_eq!(limits.plan_rates(org), Some(kept));
        assert_eq!(
            limits.keep_plan_rates(org, None).per_api_key,
            NonZeroU32::new(100)
        );
        // A plan's 0 is no limit at all.
        assert_eq!(limits.keep_plan_rates(org, Some(0)).per_api_key, None);
    }
}
