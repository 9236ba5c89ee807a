//! [`Catalog`]: stores and reads the catalog. Published versions are immutable, so they
//! are cached by id for the life of the process (entitlement checks read them on every
//! limited action).

use crate::catalog::{CatalogFile, MetricDef, PlanDefinition};
use crate::entity::{billing_metric, plan, plan_version};
use crate::error::{Error, Result};
use crate::metering::Aggregation;
use audit::{AuditLog, NewEvent};
use chrono::{DateTime, Utc};
use kernel::{SharedClock, TenantTx};
use rust_decimal::Decimal;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, SqlErr,
};
use std::collections::{BTreeSet, HashMap};
use std::str::FromStr;
use std::sync::{Arc, RwLock};
use uuid::Uuid;

/// One published version of a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanVersion {
    /// The version's id (what subscriptions pin).
    pub id: Uuid,
    /// The plan's code.
    pub plan_code: String,
    /// 1, 2, … per plan.
    pub version: i32,
    /// When it was published.
    pub published_at: DateTime<Utc>,
    /// What it costs and allows.
    pub definition: PlanDefinition,
}

/// What an import did to one metric or plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Imported {
    /// A metric created.
    MetricCreated(String),
    /// A metric already stored with this definition.
    MetricUnchanged(String),
    /// A plan version published (code, version).
    Published(String, i32),
    /// A plan whose latest version already has this definition (code, version).
    Unchanged(String, i32),
}

/// The catalog.
#[derive(Debug, Clone)]
pub struct Catalog {
    audit: AuditLog,
    clock: SharedClock,
    versions: Arc<RwLock<HashMap<Uuid, Arc<PlanVersion>>>>,
}

fn to_version(row: plan_version::Model, plan_code: String) -> Result<PlanVersion> {
    Ok(PlanVersion {
        id: row.id,
        plan_code,
        version: row.version,
        published_at: row.published_at,
        definition: PlanDefinition::from_stored(&row.definition)?,
    })
}

impl Catalog {
    /// A catalog recording its changes in `audit`.
    pub fn new(audit: AuditLog, clock: SharedClock) -> Self {
        Self {
            audit,
            clock,
            versions: Arc::default(),
        }
    }

    /// Imports a catalog file in the platform's transaction `tx` (its changes are
    /// recorded in the platform's audit trail): creates unknown metrics, publishes a new
    /// version of each plan whose definition changed. All or nothing.
    pub async fn import(&self, tx: &TenantTx, file: &CatalogFile) -> Result<Vec<Imported>> {
        let conn = tx.conn();
        let stored: HashMap<String, billing_metric::Model> = billing_metric::Entity::find()
            .all(conn)
            .await?
            .into_iter()
            .map(|m| (m.code.clone(), m))
            .collect();
        file.validate(&stored.keys().cloned().collect::<BTreeSet<_>>())?;
        let now = self.clock.now();
        let mut report = Vec::new();
        for metric in &file.metrics {
            report.push(
                self.import_metric(tx, stored.get(&metric.code), metric, now)
                    .await?,
            );
        }
        for plan_def in &file.plans {
            let plan_row = match plan::Entity::find()
                .filter(plan::Column::Code.eq(&plan_def.code))
                .one(conn)
                .await?
            {
                Some(row) => row,
                None => {
                    let row = plan::Model {
                        id: Uuid::now_v7(),
                        code: plan_def.code.clone(),
                        created_at: now,
                    };
                    plan::Entity::insert(plan::ActiveModel {
                        id: Set(row.id),
                        code: Set(row.code.clone()),
                        created_at: Set(now),
                    })
                    .exec_without_returning(conn)
                    .await
                    .map_err(conflict)?;
                    row
                }
            };
            let latest = plan_version::Entity::find()
                .filter(plan_version::Column::PlanId.eq(plan_row.id))
                .order_by_desc(plan_version::Column::Version)
                .one(conn)
                .await?;
            let definition = plan_def.definition.to_stored();
            if let Some(latest) = &latest
                && PlanDefinition::from_stored(&latest.definition)?.to_stored() == definition
            {
                report.push(Imported::Unchanged(plan_def.code.clone(), latest.version));
                continue;
            }
            let version = latest.map_or(1, |l| l.version + 1);
            let id = Uuid::now_v7();
            plan_version::Entity::insert(plan_version::ActiveModel {
                id: Set(id),
                plan_id: Set(plan_row.id),
                version: Set(version),
                definition: Set(definition),
                published_at: Set(now),
            })
            .exec_without_returning(conn)
            .await
            .map_err(conflict)?;
            self.audit
                .record(
                    tx,
                    NewEvent::new("plan.published", "plan_version", Some(id))
                        .change("plan", None::<String>, Some(plan_def.code.clone()))
                        .change("version", None::<i32>, Some(version)),
                )
                .await?;
            report.push(Imported::Published(plan_def.code.clone(), version));
        }
        Ok(report)
    }

    async fn import_metric(
        &self,
        tx: &TenantTx,
        stored: Option<&billing_metric::Model>,
        metric: &MetricDef,
        now: DateTime<Utc>,
    ) -> Result<Imported> {
        let aggregation = serde_json::to_string(&metric.aggregation).unwrap_or_default();
        if let Some(stored) = stored {
            let same = serde_json::from_str::<Aggregation>(&stored.aggregation)
                .ok()
                .as_ref()
                == Some(&metric.aggregation)
                && stored.name == metric.name
                && stored_max_value(stored)? == metric.max_value.map(|m| m.normalize());
            return if same {
                Ok(Imported::MetricUnchanged(metric.code.clone()))
            } else {
                Err(Error::CatalogConflict(format!(
                    "metric `{}` exists with another definition; metrics never change (plans \
                     pinned to it bill by it): add a metric with a new code",
                    metric.code
                )))
            };
        }
        billing_metric::Entity::insert(billing_metric::ActiveModel {
            code: Set(metric.code.clone()),
            name: Set(metric.name.clone()),
            aggregation: Set(aggregation),
            created_at: Set(now),
            max_value: Set(metric.max_value.map(|m| m.normalize().to_string())),
        })
        .exec_without_returning(tx.conn())
        .await
        .map_err(conflict)?;
        self.audit
            .record(
                tx,
                NewEvent::new(
                    "billing_metric.created",
                    "billing_metric",
                    Some(&metric.code),
                )
                .change("name", None::<String>, Some(metric.name.clone())),
            )
            .await?;
        Ok(Imported::MetricCreated(metric.code.clone()))
    }

    /// A published version by id (cached: versions never change).
    pub async fn version(&self, conn: &impl ConnectionTrait, id: Uuid) -> Result<Arc<PlanVersion>> {
        if let Some(found) = self.versions.read().ok().and_then(|v| v.get(&id).cloned()) {
            return Ok(found);
        }
        let row = plan_version::Entity::find_by_id(id)
            .one(conn)
            .await?
            .ok_or_else(|| Error::NotFound("plan version"))?;
        let plan_row = plan::Entity::find_by_id(row.plan_id)
            .one(conn)
            .await?
            .ok_or_else(|| Error::NotFound("plan"))?;
        let version = Arc::new(to_version(row, plan_row.code)?);
        if let Ok(mut cache) = self.versions.write() {
            cache.insert(id, version.clone());
        }
        Ok(version)
    }

    /// The latest version of the plan `code`.
    pub async fn latest(
        &self,
        conn: &impl ConnectionTrait,
        code: &str,
    ) -> Result<Arc<PlanVersion>> {
        let plan_row = plan::Entity::find()
            .filter(plan::Column::Code.eq(code))
            .one(conn)
            .await?
            .ok_or_else(|| Error::UnknownPlan(code.to_owned()))?;
        let row = plan_version::Entity::find()
            .filter(plan_version::Column::PlanId.eq(plan_row.id))
            .order_by_desc(plan_version::Column::Version)
            .one(conn)
            .await?
            .ok_or_else(|| Error::UnknownPlan(code.to_owned()))?;
        self.version(conn, row.id).await
    }

    /// Every plan's versions, newest first within a plan, plans by code.
    pub async fn all_versions(&self, conn: &impl ConnectionTrait) -> Result<Vec<PlanVersion>> {
        let plans: HashMap<Uuid, String> = plan::Entity::find()
            .all(conn)
            .await?
            .into_iter()
            .map(|p| (p.id, p.code))
            .collect();
        let mut versions = plan_version::Entity::find()
            .all(conn)
            .await?
            .into_iter()
            .map(|row| {
                let code = plans
                    .get(&row.plan_id)
                    .cloned()
                    .ok_or_else(|| crate::error::corrupt("plan_versions.plan_id", row.plan_id))?;
                to_version(row, code)
            })
            .collect::<Result<Vec<_>>>()?;
        versions.sort_by(|a, b| {
            a.plan_code
                .cmp(&b.plan_code)
                .then(b.version.cmp(&a.version))
        });
        Ok(versions)
    }

    /// The metrics.
    pub async fn metrics(&self, conn: &impl ConnectionTrait) -> Result<Vec<MetricDef>> {
        billing_metric::Entity::find()
            .order_by_asc(billing_metric::Column::Code)
            .all(conn)
            .await?
            .into_iter()
            .map(|m| {
                Ok(MetricDef {
                    aggregation: serde_json::from_str(&m.aggregation).map_err(|e| {
                        Error::Invalid {
                            field: "billing_metrics.aggregation",
                            reason: e.to_string(),
                        }
                    })?,
                    max_value: stored_max_value(&m)?,
                    code: m.code,
                    name: m.name,
                })
            })
            .collect()
    }
}

/// A stored metric's bound on one event's value.
fn stored_max_value(metric: &billing_metric::Model) -> Result<Option<Decimal>> {
    metric
        .max_value
        .as_deref()
        .map(|text| {
            Decimal::from_str(text).map_err(|e| Error::Invalid {
                field: "billing_metrics.max_value",
                reason: e.to_string(),
            })
        })
        .transpose()
        .map(|max| max.map(|m| m.normalize()))
}

/// A unique key taken by a concurrent import.
fn conflict(e: sea_orm::DbErr) -> Error {
    match e.sql_err() {
        // The database's own words stay in the log, not in the answer.
        Some(SqlErr::UniqueConstraintViolation(_)) => {
            Error::CatalogConflict("the catalog changed concurrently; import again".into())
        }
        _ => e.into(),
    }
}
