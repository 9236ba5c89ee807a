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

    /// Records a batch of at most [`MAX_BATCH`] events; all or nothing.
    pub async fn record(
        &self,
        tx: &TenantTx,
        permit: &Permit,
        batch: Vec<NewUsage>,
    ) -> Result<Vec<Recorded>> {
        permit.ensure(tx, ResourceType::Billing, Action::Create, None)?;
        if batch.is_empty() || batch.len() > MAX_BATCH {
            return Err(Error::Invalid {
                field: "events",
                reason: format!("1 to {MAX_BATCH} events per call"),
            });
        }
        let now = self.clock.now();
        let mut outcomes = Vec::with_capacity(batch.len());
        let mut stored = 0u64;
        let mut seen: HashMap<(String, String), UsageEvent> = HashMap::new();
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
            if usage.properties.len() > 20 {
                return Err(Error::Invalid {
                    field: "properties",
                    reason: "at most 20 properties".into(),
                });
            }
            let mut incoming = UsageEvent {
                key: key.clone(),
                occurred_at: usage.occurred_at.unwrap_or(now),
                received_at: now,
                value: value.normalize(),
                properties: usage.properties,
            };
            // Within the batch, and against what is stored.
            let existing = match seen.get(&(metric.clone(), key.clone())) {
                Some(event) => Some(event.clone()),
                None => tx
                    .select::<usage_event::Entity>()
                    .filter(usage_event::Column::Metric.eq(&metric))
                    .filter(usage_event::Column::IdempotencyKey.eq(&key))
                    .one(tx.conn())
                    .await?
                    .map(|row| to_event(&row))
                    .transpose()?,
            };
            if let Some(existing) = existing {
                // A retry that left the time out means the first report's time.
                if usage.occurred_at.is_none() {
                    incoming.occurred_at = existing.occurred_at;
                }
                match duplicate_of(&existing, &incoming) {
                    Duplicate::Replay => {
                        outcomes.push(Recorded::Replayed);
                        continue;
                    }
                    Duplicate::Conflict => return Err(Error::KeyConflict { metric, key }),
                }
            }
            usage_event::Entity::insert(usage_event::ActiveModel {
                organization_id: Set(tx.org_id().as_uuid()),
                id: Set(Uuid::now_v7()),
                metric: Set(metric.clone()),
                idempotency_key: Set(key.clone()),
                occurred_at: Set(incoming.occurred_at),
                received_at: Set(now),
                value: Set(incoming.value.to_string()),
                properties: Set(
                    serde_json::to_string(&incoming.properties).unwrap_or_else(|_| "{}".into())
                ),
            })
            .exec_without_returning(tx.conn())
            .await
            .map_err(|e| match e.sql_err() {
                // Reported concurrently by another request that committed first: this one
                // is refused whole; its retry is then answered as a replay or a conflict.
                Some(SqlErr::UniqueConstraintViolation(_)) => Error::KeyConflict {
                    metric: metric.clone(),
                    key: key.clone(),
                },
                _ => e.into(),
            })?;
            seen.insert((metric, key), incoming);
            stored += 1;
            outcomes.push(Recorded::Stored);
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
        let now = self.clock.now();
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

/// The quantity of `metric` over `[from, to)` under `aggregation`, for invoicing (the
/// caller holds the organization's transaction; no permit).
pub(crate) async fn period_quantity(
    tx: &TenantTx,
    metric: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    aggregation: &Aggregation,
) -> Result<Decimal> {
    if from >= to {
        return Err(Error::Invalid {
            field: "to",
            reason: "must be after from".into(),
        });
    }
    let rows = tx
        .select::<usage_event::Entity>()
        .filter(usage_event::Column::Metric.eq(metric))
        .filter(usage_event::Column::OccurredAt.gte(from))
        .filter(usage_event::Column::OccurredAt.lt(to))
        .all(tx.conn())
        .await?;
    let events = rows.iter().map(to_event).collect::<Result<Vec<_>>>()?;
    aggregation.quantity(&events)
}
