//! What operators scrape (`GET /metrics`, Prometheus text): requests by GraphQL operation
//! and outcome, their latency, statements per request, the database pool, the
//! authorizer's cache and the billing run. Labels carry operation names and codes only,
//! never anything a person typed into a value; the set of operation names a process
//! reports is bounded (a client chooses them).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;

/// Distinct operation names one process labels series with; later names are counted
/// under `other`, so a client inventing names cannot grow the scrape without bound.
pub const MAX_OPERATION_NAMES: usize = 200;

/// A GraphQL operation's series: its name (`-` unnamed or sent by id, `?` not a GraphQL
/// name, `other` past [`MAX_OPERATION_NAMES`]) and outcome (`OK` or its first error code).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabels {
    operation: String,
    outcome: String,
}

/// An HTTP answer's series: the route it took and its status.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResponseLabels {
    route: String,
    status: u16,
}

/// A lookup's series by result (`hit`, `miss`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

/// Webhook delivery attempts by what they left the delivery as.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

/// A gauge's series by state (`in_use`, `idle`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: &'static str,
}

/// The process's metrics (one set per server; the tests run many servers in one process,
/// so there is no global registry).
pub struct Metrics {
    registry: Registry,
    operations: Family<OperationLabels, Counter>,
    operation_seconds: Family<OperationLabels, Histogram>,
    responses: Family<ResponseLabels, Counter>,
    statements: Histogram,
    pool: Family<StateLabels, Gauge>,
    enforcers_cached: Gauge,
    enforcer_cache_bytes: Gauge,
    enforcer_lookups: Family<ResultLabels, Gauge>,
    billing_run_seconds: Histogram,
    billing_run_failures: Counter,
    webhook_attempts: Family<OutcomeLabels, Counter>,
    jobs: Family<JobLabels, Gauge>,
    jobs_oldest: Family<JobLabels, Gauge>,
    names: Mutex<HashSet<String>>,
}

/// A job gauge's series (kinds are the server's own, a handful).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JobLabels {
    kind: String,
    state: &'static str,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Latency buckets in seconds: 1 ms to 10 s.
const SECONDS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let operations = Family::<OperationLabels, Counter>::default();
        registry.register(
            "graphql_operations",
            "GraphQL operations answered, by operation name and outcome code",
            operations.clone(),
        );
        let operation_seconds = Family::<OperationLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(SECONDS.iter().copied())
        });
        registry.register(
            "graphql_request_duration_seconds",
            "Time to answer the request each operation came in, by operation name and outcome code",
            operation_seconds.clone(),
        );
        let responses = Family::<ResponseLabels, Counter>::default();
        registry.register(
            "http_responses",
            "HTTP answers, by route and status",
            responses.clone(),
        );
        let statements = Histogram::new([0.0, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0]);
        registry.register(
            "db_statements_per_request",
            "SQL statements a request executed (BEGIN and COMMIT not counted)",
            statements.clone(),
        );
        let pool = Family::<StateLabels, Gauge>::default();
        registry.register(
            "db_pool_connections",
            "The database pool's open connections, in use or idle",
            pool.clone(),
        );
        let enforcers_cached = Gauge::default();
        registry.register(
            "authz_enforcers_cached",
            "Organizations whose permission enforcer is kept in memory",
            enforcers_cached.clone(),
        );
        let enforcer_cache_bytes = Gauge::default();
        registry.register(
            "authz_enforcer_cache_weight",
            "Estimated weight of the kept enforcers (the cache's bound is on this)",
            enforcer_cache_bytes.clone(),
        );
        // A gauge holding the authorizer's own running count (read at each scrape).
        let enforcer_lookups = Family::<ResultLabels, Gauge>::default();
        registry.register(
            "authz_enforcer_lookups",
            "Permission checks' enforcer lookups since start: hit (kept and current) or miss (built)",
            enforcer_lookups.clone(),
        );
        let billing_run_seconds = Histogram::new([0.01, 0.1, 1.0, 10.0, 60.0, 600.0]);
        registry.register(
            "billing_run_duration_seconds",
            "Time billing one organization took (one billing job)",
            billing_run_seconds.clone(),
        );
        let billing_run_failures = Counter::default();
        registry.register(
            "billing_run_organization_failures",
            "Billing jobs that failed (each is retried with backoff)",
            billing_run_failures.clone(),
        );
        let webhook_attempts = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "webhook_delivery_attempts",
            "Webhook delivery attempts, by what they left the delivery as (succeeded, pending: to be retried, failed)",
            webhook_attempts.clone(),
        );
        let jobs = Family::<JobLabels, Gauge>::default();
        registry.register(
            "jobs",
            "Jobs in the durable queue that still matter, by kind and state (pending, running, dead)",
            jobs.clone(),
        );
        let jobs_oldest = Family::<JobLabels, Gauge>::default();
        registry.register(
            "jobs_oldest_age_seconds",
            "How long the oldest job of a kind and state has been due (0 when none is yet)",
            jobs_oldest.clone(),
        );
        Self {
            registry,
            jobs,
            jobs_oldest,
            operations,
            operation_seconds,
            responses,
            statements,
            pool,
            enforcers_cached,
            enforcer_cache_bytes,
            enforcer_lookups,
            billing_run_seconds,
            billing_run_failures,
            webhook_attempts,
            names: Mutex::new(HashSet::new()),
        }
    }

    /// Counts one HTTP answer on `route` (a route's template, never a concrete path).
    pub fn response(&self, route: String, status: u16) {
        self.responses
            .get_or_create(&ResponseLabels { route, status })
            .inc();
    }

    /// Counts the operations of one GraphQL request (`(name, outcome)` each) and the
    /// time the request took, and the statements it executed.
    pub fn graphql_request(
        &self,
        operations: &[(String, String)],
        took: Duration,
        statements: u64,
    ) {
        for (name, outcome) in operations {
            let labels = OperationLabels {
                operation: self.bounded_name(name),
                outcome: outcome.clone(),
            };
            self.operations.get_or_create(&labels).inc();
            self.operation_seconds
                .get_or_create(&labels)
                .observe(took.as_secs_f64());
        }
        self.statements.observe(statements as f64);
    }

    /// A billing run's duration and the organizations it failed for.
    pub fn billing_run(&self, took: Duration, failed: usize) {
        self.billing_run_seconds.observe(took.as_secs_f64());
        self.billing_run_failures.inc_by(failed as u64);
    }

    /// Counts one webhook delivery attempt by the delivery's status after it.
    pub fn webhook_delivery(&self, outcome: &'static str) {
        self.webhook_attempts
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }

    /// `name` if this process already reports it or still has room for it, else `other`.
    fn bounded_name(&self, name: &str) -> String {
        let mut names = self
            .names
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if names.contains(name) {
            return name.to_owned();
        }
        if names.len() < MAX_OPERATION_NAMES {
            names.insert(name.to_owned());
            return name.to_owned();
        }
        "other".to_owned()
    }

    /// The queue's counts as read now (`now` for the ages); groups that emptied vanish.
    pub fn jobs(&self, counts: &[jobs::JobCount], now: chrono::DateTime<chrono::Utc>) {
        self.jobs.clear();
        self.jobs_oldest.clear();
        for count in counts {
            let labels = JobLabels {
                kind: count.kind.clone(),
                state: count.state.as_str(),
            };
            self.jobs
                .get_or_create(&labels)
                .set(i64::try_from(count.count).unwrap_or(i64::MAX));
            let age = count
                .oldest
                .map_or(0, |oldest| (now - oldest).num_seconds().max(0));
            self.jobs_oldest.get_or_create(&labels).set(age);
        }
    }

    /// The scrape: gauges read now, then everything in Prometheus' text format.
    pub fn render(&self, pool: (u32, usize), enforcers: authz::CacheUsage) -> String {
        let (open, idle) = pool;
        let idle = i64::try_from(idle).unwrap_or(i64::MAX);
        self.pool
            .get_or_create(&StateLabels { state: "idle" })
            .set(idle);
        self.pool
            .get_or_create(&StateLabels { state: "in_use" })
            .set((i64::from(open) - idle).max(0));
        let gauge = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        self.enforcers_cached
            .set(i64::try_from(enforcers.entries).unwrap_or(i64::MAX));
        self.enforcer_cache_bytes.set(gauge(enforcers.weight));
        self.enforcer_lookups
            .get_or_create(&ResultLabels { result: "hit" })
            .set(gauge(enforcers.hits));
        self.enforcer_lookups
            .get_or_create(&ResultLabels { result: "miss" })
            .set(gauge(enforcers.misses));
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operation_names_past_the_bound_are_counted_as_other() {
        let metrics = Metrics::new();
        for n in 0..MAX_OPERATION_NAMES + 50 {
            metrics.graphql_request(
                &[(format!("Op{n}"), "OK".into())],
                Duration::from_millis(1),
                1,
            );
        }
        let text = metrics.render(
            (1, 1),
            authz::CacheUsage {
                entries: 0,
                weight: 0,
                hits: 0,
                misses: 0,
            },
        );
        let series = text
            .lines()
            .filter(|l| l.starts_with("graphql_operations_total{"))
            .count();
        assert_eq!(series, MAX_OPERATION_NAMES + 1, "{text}");
        assert!(text.contains(r#"graphql_operations_total{operation="other",outcome="OK"} 50"#));
        assert!(text.contains(r#"graphql_operations_total{operation="Op0",outcome="OK"} 1"#));
    }
}
