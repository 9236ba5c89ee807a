//! Retention: an organization keeps its events for a number of days (default: forever).
//! A purge removes the events older than that, and is itself an event that names the
//! last purged `seq` and its hash: the anchor from which verification continues.

use crate::chain;
use crate::entity::{audit_event, audit_purge, audit_retention};
use crate::error::{Error, Result};
use crate::model::NewEvent;
use crate::service::AuditLog;
use crate::service::stored_time;
use chrono::Duration;
use kernel::{Backend, TenantTx};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Statement,
};
use serde_json::Value;

/// The action recorded by a purge.
pub const PURGED: &str = "audit.purged";

/// What a purge did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PurgeReport {
    /// The last purged `seq` (none purged: `None`).
    pub through_seq: Option<i64>,
    /// How many events were removed.
    pub purged: u64,
}

impl AuditLog {
    /// Days the organization keeps its events (`None`: forever).
    pub async fn retention(&self, tx: &TenantTx) -> Result<Option<i32>> {
        Ok(tx
            .select::<audit_retention::Entity>()
            .one(tx.conn())
            .await?
            .map(|row| row.keep_days))
    }

    /// Sets (or with `None` clears) the retention, recording the change.
    pub async fn set_retention(&self, tx: &TenantTx, keep_days: Option<i32>) -> Result<()> {
        if keep_days.is_some_and(|d| !(1..=36_500).contains(&d)) {
            return Err(Error::Invalid {
                field: "keepDays",
                reason: "must be 1 to 36,500 days".into(),
            });
        }
        let before = self.retention(tx).await?;
        match keep_days {
            Some(days) => {
                audit_retention::Entity::insert(audit_retention::ActiveModel {
                    organization_id: Set(tx.org_id().as_uuid()),
                    keep_days: Set(days),
                    updated_at: Set(self.now()),
                })
                .on_conflict(
                    OnConflict::column(audit_retention::Column::OrganizationId)
                        .update_columns([
                            audit_retention::Column::KeepDays,
                            audit_retention::Column::UpdatedAt,
                        ])
                        .to_owned(),
                )
                .exec_without_returning(tx.conn())
                .await?;
            }
            None => {
                audit_retention::Entity::delete_many()
                    .filter(audit_retention::Column::OrganizationId.eq(tx.org_id().as_uuid()))
                    .exec(tx.conn())
                    .await?;
            }
        }
        self.record(
            tx,
            NewEvent::new("audit.retention_changed", "audit", None::<String>).change(
                "keep_days",
                before,
                keep_days,
            ),
        )
        .await
    }

    /// Removes the events older than the retention. The purge is recorded first (so the
    /// chain names the anchor), then the rows go.
    #[tracing::instrument(name = "audit.purge", skip_all, fields(org.id = %tx.org_id()), err)]
    pub async fn purge_expired(&self, tx: &TenantTx) -> Result<PurgeReport> {
        let none = PurgeReport {
            through_seq: None,
            purged: 0,
        };
        let Some(days) = self.retention(tx).await? else {
            return Ok(none);
        };
        let cutoff = stored_time(self.now() - Duration::days(i64::from(days)));
        let last_expired = tx
            .select::<audit_event::Entity>()
            .filter(audit_event::Column::OccurredAt.lt(cutoff))
            .order_by_desc(audit_event::Column::Seq)
            .limit(1)
            .one(tx.conn())
            .await?;
        let Some(anchor) = last_expired else {
            return Ok(none);
        };
        self.record(
            tx,
            NewEvent::new(PURGED, "audit", None::<String>)
                .change("through_seq", None::<i64>, Some(anchor.seq))
                .change("anchor_hash", None::<String>, Some(anchor.hash.clone())),
        )
        .await?;
        audit_purge::Entity::insert(audit_purge::ActiveModel {
            organization_id: Set(tx.org_id().as_uuid()),
            through_seq: Set(anchor.seq),
            anchor_hash: Set(anchor.hash.clone()),
            purged_at: Set(self.now()),
        })
        .exec_without_returning(tx.conn())
        .await?;
        let purged = match self.backend() {
            Backend::Postgres => {
                let row = tx
                    .conn()
                    .query_one_raw(Statement::from_sql_and_values(
                        sea_orm::DbBackend::Postgres,
                        "SELECT audit_purge($1)",
                        [anchor.seq.into()],
                    ))
                    .await?;
                row.map(|r| r.try_get_by_index::<i64>(0))
                    .transpose()?
                    .unwrap_or(0)
            }
            Backend::Sqlite => {
                let deleted = audit_event::Entity::delete_many()
                    .filter(audit_event::Column::OrganizationId.eq(tx.org_id().as_uuid()))
                    .filter(audit_event::Column::Seq.lte(anchor.seq))
                    .exec(tx.conn())
                    .await?;
                i64::try_from(deleted.rows_affected).unwrap_or(i64::MAX)
            }
        };
        Ok(PurgeReport {
            through_seq: Some(anchor.seq),
            purged: u64::try_from(purged).unwrap_or(0),
        })
    }
}

/// The anchors recorded by purge events in the chain: (last purged seq, its hash).
pub(crate) async fn recorded_anchors(tx: &TenantTx) -> Result<Vec<(i64, String)>> {
    let purges = tx
        .select::<audit_event::Entity>()
        .filter(audit_event::Column::Action.eq(PURGED))
        .all(tx.conn())
        .await?;
    Ok(purges
        .into_iter()
        .filter(|row| row.hash == chain::hash(row))
        .filter_map(|row| {
            let diff: Vec<Value> = serde_json::from_str(&row.diff).ok()?;
            let value = |name: &str| {
                diff.iter()
                    .find(|c| c["field"] == name)
                    .map(|c| c["after"].clone())
            };
            Some((
                value("through_seq")?.as_i64()?,
                value("anchor_hash")?.as_str()?.to_owned(),
            ))
        })
        .collect())
}
