//! [`UsageService`]: usage events of billable metrics, recorded in batches and
//! aggregated per period. A batch is all or nothing; a key already recorded with the same
//! payload is replayed (answered as the first time, stored once), with another payload
//! it is `CONFLICT` and nothing of the batch is stored. Recording is audited.

use crate::entity::usage_event;
use crate::error::{Error, Result};
use crate::metering::{Aggregation, Duplicate, UsageEvent, duplicate_of};
use audit::{AuditLog, NewEvent};
use authz::{Action, Permit, ResourceType};
use chrono::{DateTime, Utc};
use kernel::{SharedClock, TenantTx};
use rust_decimal::Decimal;
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, SqlErr};
use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;
use uuid::Uuid;

/// Most events one call may report.
pub const MAX_BATCH: usize = 1_000;
/// How far in the future (by our clock) an event may say it happened: clients' clocks
/// drift, but usage from next year is a mistake or an attack.
pub const MAX_CLOCK_SKEW: chrono::Duration = chrono::Duration::minutes(5);
/// Most properties one event may carry.
pub const MAX_PROPERTIES: usize = 20;
/// Longest property value, in characters (names: 64 of letters, digits and `_-.:/`).
pub const MAX_PROPERTY_VALUE_CHARS: usize = 256;

/// One reported use, as a client sends it.
#[derive(Debug, Clone)]
pub struct NewUsage {
    /// The billable metric (`api_calls`, `storage_gb`, …).
    pub metric: String,
    /// The client's idempotency key, unique per metric.
    pub key: String,
    /// When it happened (the receipt time when omitted).
    pub occurred_at: Option<DateTime<Utc>>,
    /// The value (1 when omitted).
    pub value: Option<Decimal>,
    /// String properties.
    pub properties: BTreeMap<String, String>,
}

/// Deletes the organization's usage events that happened before `cutoff` (their period
/// is invoiced and past its retention), recorded as the system's `usage_events.purged`
/// when there were any; returns how many.
impl UsageService {
    pub async fn purge_before(&self, tx: &TenantTx, cutoff: DateTime<Utc>) -> Result<u64> {
        let done = usage_event::Entity::delete_many()
            .filter(usage_event::Column::OrganizationId.eq(tx.org_id().as_uuid()))
            .filter(usage_event::Column::OccurredAt.lt(cutoff))
            .exec(tx.conn())
            .await?;
        if done.rows_affected > 0 {
            self.audit
                .record(
                    tx,
                    NewEvent::new("usage_events.purged", "organization", Some(tx.org_id()))
                        .change("purged", None::<u64>, Some(done.rows_affected))
                        .change("before", None::<String>, Some(cutoff.to_rfc3339())),
                )
                .await?;
        }
        Ok(done.rows_affected)
    }
}

/// What happened to one reported event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// Stored now.
    Stored,
    /// Already stored with this payload: nothing changed.
    Replayed,
}

/// Usage events.
#[derive(Debug, Clone)]
pub struct UsageService {
    audit: AuditLog,
    clock: SharedClock,
}

fn field(field: &'static str, value: &str, max: usize) -> Result<String> {
    let valid = !value.is_empty()
        && value.chars().count() <= max
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.:/".contains(c));
    if valid {
        Ok(value.to_owned())
    } else {
        Err(Error::Invalid {
            field,
            reason: format!("1 to {max} characters of letters, digits and _-.:/"),
        })
    }
}

fn to_event(row: &usage_event::Model) -> Result<UsageEvent> {
    Ok(UsageEvent {
        key: row.idempotency_key.clone(),
        occurred_at: row.occurred_at,
        received_at: row.received_at,
        value: Decimal::from_str(&row.value).map_err(|e| Error::Invalid {
            field: "value",
            reason: format!("stored value {}: {e}", row.value),
        })?,
        properties: serde_json::from_str(&row.properties).unwrap_or_default(),
    })
}

impl UsageService {
    /// A service recording into `audit`, with receipt times from `clock`.
    pub fn new(audit: AuditLog, clock: SharedClock) -> Self {
        Self { audit, clock }
    }

    /// Records a batch of at most [`MAX_BATCH`] events; all or nothing. In bulk: one
    /// read of the keys already stored per metric in the batch and one multi-row insert,
    /// so a batch costs a few statements whatever its size.
    /// Events that happened before `oldest` (see `Subscriptions::oldest_reportable`) are
    /// refused: their period is invoiced and its grace is over.
    pub async fn record(
        &self,
        tx: &TenantTx,
        permit: &Permit,
        batch: Vec<NewUsage>,
        oldest: Option<DateTime<Utc>>,
    ) -> Result<Vec<Recorded>> {
        permit.ensure(tx, ResourceType::Billing, Action::Create, None)?;
        if batch.is_empty() || batch.len() > MAX_BATCH {
            return Err(Error::Invalid {
                field: "events",
                reason: format!("1 to {MAX_BATCH} events per call"),
            });
        }
        let now = self.clock.now();
        // Validate everything first: nothing is read or written for a malformed batch.
        let mut checked = Vec::with_capacity(batch.len());
        for usage in batch {
            let metric = field("metric", &usage.metric, 100)?;
            let key = field("key", &usage.key, 200)?;
            let value = usage.value.unwrap_or(Decimal::ONE);
            if value.scale() > crate::pricing::MAX_SCALE || value.is_sign_negative() {
                return Err(Error::Invalid {
                    field: "value",
                    reason: "non-negative, at most 12 decimal places".into(),
                });
            }
            if usage.properties.len() > MAX_PROPERTIES {
                return Err(Error::Invalid {
                    field: "properties",
                    reason: format!("at most {MAX_PROPERTIES} properties"),
                });
            }
            for (name, value) in &usage.properties {
                field("properties.name", name, 64)?;
                if value.chars().count() > MAX_PROPERTY_VALUE_CHARS {
                    return Err(Error::Invalid {
                        field: "properties.value",
                        reason: format!("at most {MAX_PROPERTY_VALUE_CHARS} characters"),
                    });
                }
            }
            if let Some(at) = usage.occurred_at
                && at > now + MAX_CLOCK_SKEW
            {
                return Err(Error::Invalid {
                    field: "occurredAt",
                    reason: format!("{at} is in the future"),
                });
            }
            let explicit_time = usage.occurred_at.is_some();
            if let (Some(at), Some(oldest)) = (usage.occurred_at, oldest)
                && at < oldest
            {
                return Err(Error::Invalid {
                    field: "occurredAt",
                    reason: format!(
                        "{at} is in a period already invoiced whose grace is over (usage from {oldest} on is accepted)"
                    ),
                });
            }
            let event = UsageEvent {
                key,
                occurred_at: usage.occurred_at.unwrap_or(now),
                received_at: now,
                value: value.normalize(),
                properties: usage.properties,
            };
            checked.push((metric, event, explicit_time));
        }
        // Every metric must be in the catalog, and every value within its metric's bound.
        let codes: std::collections::BTreeSet<&str> = checked
            .iter()
            .map(|(metric, _, _)| metric.as_str())
            .collect();
        let bounds: HashMap<String, Decimal> = crate::entity::billing_metric::Entity::find()
            .filter(crate::entity::billing_metric::Column::Code.is_in(codes))
            .all(tx.conn())
            .await?
            .into_iter()
            .map(|m| {
                let max = m
                    .max_value
                    .as_deref()
                    .and_then(|v| Decimal::from_str(v).ok())
                    .unwrap_or(crate::catalog::DEFAULT_MAX_USAGE_VALUE);
                (m.code, max)
            })
            .collect();
        for (metric, event, _) in &checked {
            let Some(max) = bounds.get(metric) else {
                return Err(Error::Invalid {
                    field: "metric",
                    reason: format!("unknown metric `{metric}`: it is not in the catalog"),
                });
            };
            if event.value > *max {
                return Err(Error::Invalid {
                    field: "value",
                    reason: format!("at most {} for `{metric}`", max.normalize()),
                });
            }
        }
        // What is stored already under the batch's keys, one query per metric.
        let mut keys_by_metric: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (metric, event, _) in &checked {
            keys_by_metric
                .entry(metric.as_str())
                .or_default()
                .push(event.key.as_str());
        }
        let mut seen: HashMap<(String, String), UsageEvent> = HashMap::new();
        for (metric, keys) in keys_by_metric {
            for row in tx
                .select::<usage_event::Entity>()
                .filter(usage_event::Column::Metric.eq(metric))
                .filter(usage_event::Column::IdempotencyKey.is_in(keys))
                .all(tx.conn())
                .await?
            {
                seen.insert(
                    (row.metric.clone(), row.idempotency_key.clone()),
                    to_event(&row)?,
                );
            }
        }
        let mut outcomes = Vec::with_capacity(checked.len());
        let mut rows = Vec::new();
        for (metric, mut incoming, explicit_time) in checked {
            let id = (metric, incoming.key.clone());
            if let Some(existing) = seen.get(&id) {
                // A retry that left the time out means the first report's time.
                if !explicit_time {
                    incoming.occurred_at = existing.occurred_at;
                }
                match duplicate_of(existing, &incoming) {
                    Duplicate::Replay => {
                        outcomes.push(Recorded::Replayed);
                        continue;
                    }
                    Duplicate::Conflict => {
                        return Err(Error::KeyConflict {
                            metric: id.0,
                            key: id.1,
                        });
                    }
                }
            }
            rows.push(usage_event::ActiveModel {
                organization_id: Set(tx.org_id().as_uuid()),
                id: Set(Uuid::now_v7()),
                metric: Set(id.0.clone()),
                idempotency_key: Set(id.1.clone()),
                occurred_at: Set(incoming.occurred_at),
                received_at: Set(now),
                value: Set(incoming.value.to_string()),
                properties: Set(
                    serde_json::to_string(&incoming.properties).unwrap_or_else(|_| "{}".into())
                ),
            });
            seen.insert(id, incoming);
            outcomes.push(Recorded::Stored);
        }
        let stored = rows.len() as u64;
        if !rows.is_empty() {
            usage_event::Entity::insert_many(rows)
                .exec_without_returning(tx.conn())
                .await
                .map_err(|e| match e.sql_err() {
                    // Reported concurrently by another request that committed first: this
                    // batch is refused whole; its retry is then answered as replays or a
                    // conflict.
                    Some(SqlErr::UniqueConstraintViolation(_)) => Error::KeyConflict {
                        metric: "(batch)".into(),
                        key: "reported concurrently".into(),
                    },
                    _ => e.into(),
                })?;
        }
        self.audit
            .record(
                tx,
                NewEvent::new("usage.recorded", "usage", None::<String>)
                    .change("stored", None::<u64>, Some(stored))
                    .change(
                        "replayed",
                        None::<u64>,
                        Some(outcomes.len() as u64 - stored),
                    ),
            )
            .await?;
        Ok(outcomes)
    }

    /// Records one use by the platform itself (a document created, say) in the business
    /// transaction, so the usage and the change commit or roll back together. The key is
    /// the record's id, so it is unique; no permit, since no caller reports it. The
    /// change's own audit event covers it.
    pub async fn record_platform_usage(
        &self,
        tx: &TenantTx,
        metric: &'static str,
        key: Uuid,
    ) -> Result<()> {
        insert_platform_usage(tx, metric, key, self.clock.now()).await
    }

    /// The quantity of `metric` over `[from, to)` under `aggregation`.
    pub async fn quantity(
        &self,
        tx: &TenantTx,
        permit: &Permit,
        metric: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        aggregation: &Aggregation,
    ) -> Result<Decimal> {
        permit.ensure(tx, ResourceType::Billing, Action::Read, None)?;
        period_quantity(tx, metric, from, to, aggregation).await
    }
}

/// One use by the platform itself, keyed by a unique id.
pub(crate) async fn insert_platform_usage(
    tx: &TenantTx,
    metric: &str,
    key: Uuid,
    now: DateTime<Utc>,
) -> Result<()> {
    usage_event::Entity::insert(usage_event::ActiveModel {
        organization_id: Set(tx.org_id().as_uuid()),
        id: Set(Uuid::now_v7()),
        metric: Set(metric.to_owned()),
        idempotency_key: Set(key.to_string()),
        occurred_at: Set(now),
        received_at: Set(now),
        value: Set("1".to_owned()),
        properties: Set("{}".to_owned()),
    })
    .exec_without_returning(tx.conn())
    .await?;
    Ok(())
}

/// How many events of `metric` `[from, to)` holds, counting no further than `cap` (what a
/// quota check needs to know, at a cost bounded by the quota).
pub(crate) async fn count_up_to(
    tx: &TenantTx,
    metric: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    cap: u64,
) -> Result<u64> {
    use sea_orm::{ConnectionTrait, Statement};
    let backend = tx.conn().get_database_backend();
    let sql = kernel::numbered(
        backend,
        "SELECT count(*) FROM (SELECT 1 FROM usage_events WHERE organization_id = $1 AND metric = $2 \
         AND occurred_at >= $3 AND occurred_at < $4 LIMIT $5) AS capped",
    );
    let row = tx
        .conn()
        .query_one_raw(Statement::from_sql_and_values(
            backend,
            sql,
            [
                tx.org_id().as_uuid().into(),
                metric.into(),
                from.into(),
                to.into(),
                i64::try_from(cap).unwrap_or(i64::MAX).into(),
            ],
        ))
        .await?;
    let count: i64 = match row {
        Some(row) => row.try_get_by_index(0)?,
        None => 0,
    };
    Ok(u64::try_from(count).unwrap_or(0))
}

/// The quantity of `metric` over `[from, to)` under `aggregation`, for invoicing (the
/// caller holds the organization's transaction; no permit). Aggregated by the database
/// where it is exact (counts, distinct counts, the latest value; sums and maxima over
/// PostgreSQL's `numeric`), so a period of millions of events is one statement; SQLite
/// has no exact decimal type, so its sums and maxima read the values and add them here.
pub(crate) async fn period_quantity(
    tx: &TenantTx,
    metric: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    aggregation: &Aggregation,
) -> Result<Decimal> {
    use sea_orm::{ConnectionTrait, DbBackend, Statement};
    if from >= to {
        return Err(Error::Invalid {
            field: "to",
            reason: "must be after from".into(),
        });
    }
    let backend = tx.conn().get_database_backend();
    let pg = backend == DbBackend::Postgres;
    // Numbered as on PostgreSQL; `kernel::numbered` adapts them to SQLite.
    let scope = "FROM usage_events WHERE organization_id = $1 AND metric = $2 \
                 AND occurred_at >= $3 AND occurred_at < $4";
    let mut values: Vec<sea_orm::Value> = vec![
        tx.org_id().as_uuid().into(),
        metric.into(),
        from.into(),
        to.into(),
    ];
    let select = match (aggregation, pg) {
        (Aggregation::Count, _) => format!("SELECT CAST(count(*) AS TEXT) {scope}"),
        (Aggregation::Sum, true) => {
            format!("SELECT CAST(coalesce(sum(value::numeric), 0) AS TEXT) {scope}")
        }
        (Aggregation::Max, true) => {
            format!("SELECT CAST(coalesce(max(value::numeric), 0) AS TEXT) {scope}")
        }
        (Aggregation::UniqueCount { property }, true) => {
            values.push(property.clone().into());
            format!("SELECT CAST(count(DISTINCT properties::jsonb ->> $5) AS TEXT) {scope}")
        }
        (Aggregation::UniqueCount { property }, false) => {
            values.push(format!("$.\"{}\"", property.replace('"', "")).into());
            format!("SELECT CAST(count(DISTINCT json_extract(properties, $5)) AS TEXT) {scope}")
        }
        (Aggregation::Latest, _) => format!(
            "SELECT value {scope} ORDER BY occurred_at DESC, received_at DESC, id DESC LIMIT 1"
        ),
        (Aggregation::Sum | Aggregation::Max, false) => {
            let rows = tx
                .conn()
                .query_all_raw(Statement::from_sql_and_values(
                    backend,
                    kernel::numbered(backend, &format!("SELECT value {scope}")),
                    values,
                ))
                .await?;
            let mut total = Decimal::ZERO;
            for row in rows {
                let value = decimal(&row.try_get_by_index::<String>(0)?)?;
                total = match aggregation {
                    Aggregation::Sum => total.checked_add(value).ok_or(Error::Overflow)?,
                    _ => total.max(value),
                };
            }
            return Ok(total);
        }
    };
    let row = tx
        .conn()
        .query_one_raw(Statement::from_sql_and_values(
            backend,
            kernel::numbered(backend, &select),
            values,
        ))
        .await?;
    match row {
        Some(row) => decimal(&row.try_get_by_index::<String>(0)?),
        None => Ok(Decimal::ZERO),
    }
}

fn decimal(text: &str) -> Result<Decimal> {
    Decimal::from_str(text.trim())
        .map(|d| d.normalize())
        .map_err(|e| Error::Invalid {
            field: "value",
            reason: format!("stored value {text}: {e}"),
        })
}
