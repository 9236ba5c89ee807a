//! The purge: an organization whose grace period ended is deleted table by table, one
//! transaction per table with a ledger of the steps done (a crashed purge resumes), then
//! retired; invoices kept for the legal retention go when it ends.

use super::{ORGANIZATION_ROW, PURGE_LEASE, PURGED_TABLES};
use crate::entity::{data_export, organization, organization_purge};
use crate::error::{Error, Result};
use crate::service::TenancyService;
use audit::NewEvent;
use chrono::{DateTime, Utc};
use kernel::{Backend, OrgId, TenantTx, TxMode};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Statement,
};

/// What a purge removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PurgeReport {
    /// The organization.
    pub org: OrgId,
    /// Rows deleted per table, in purge order (`organizations` last: 1 when its row went,
    /// 0 when it is kept as a tombstone).
    pub rows: Vec<(String, u64)>,
    /// Whether the organization's row is kept as a tombstone (finalized invoices remain).
    pub tombstone: bool,
}

/// What the end of a purged organization's invoice retention removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetainedInvoicesPurge {
    /// The organization (a tombstone).
    pub org: OrgId,
    /// Invoices and credit notes deleted (with their lines).
    pub invoices: u64,
    /// Whether none remained, so its row went too.
    pub organization_deleted: bool,
}

/// `table=rows,table=rows` → pairs.
pub(super) fn parse_steps(text: &str) -> Vec<(String, u64)> {
    text.split(',')
        .filter_map(|step| {
            let (table, rows) = step.split_once('=')?;
            Some((table.to_owned(), rows.parse().ok()?))
        })
        .collect()
}

/// Where a purge is after a step.
pub(super) enum Progress {
    /// Still running: the lease lasts until then.
    Held(DateTime<Utc>),
    /// Done then.
    Completed(DateTime<Utc>),
}
use Progress::{Completed, Held};

/// Writes the steps done and the progress; false when the ledger was completed meanwhile.
pub(super) async fn write_steps(
    tx: &TenantTx,
    org: OrgId,
    steps: &[(String, u64)],
    progress: Progress,
) -> Result<bool> {
    let text = steps
        .iter()
        .map(|(table, rows)| format!("{table}={rows}"))
        .collect::<Vec<_>>()
        .join(",");
    let mut update = organization_purge::Entity::update_many()
        .col_expr(organization_purge::Column::Steps, Expr::value(text))
        .filter(organization_purge::Column::PurgedOrganizationId.eq(org.as_uuid()))
        .filter(organization_purge::Column::CompletedAt.is_null());
    update = match progress {
        Held(until) => {
            update.col_expr(organization_purge::Column::ClaimedUntil, Expr::value(until))
        }
        Completed(at) => update
            .col_expr(organization_purge::Column::CompletedAt, Expr::value(at))
            .col_expr(
                organization_purge::Column::ClaimedUntil,
                Expr::value(None::<DateTime<Utc>>),
            ),
    };
    Ok(update.exec(tx.conn()).await?.rows_affected == 1)
}

impl TenancyService {
    /// Organizations whose deletion is due (and not yet purged), oldest request first,
    /// then those whose purge started and did not finish (their row may be gone).
    pub async fn organizations_due_for_purge(&self) -> Result<Vec<OrgId>> {
        let mut ids: Vec<uuid::Uuid> = organization::Entity::find()
            .select_only()
            .column(organization::Column::Id)
            .filter(organization::Column::DeletionScheduledAt.lte(self.clock.now()))
            .filter(organization::Column::PurgedAt.is_null())
            .order_by_asc(organization::Column::DeletionScheduledAt)
            .into_tuple()
            .all(self.db.conn())
            .await?;
        let unfinished: Vec<uuid::Uuid> = organization_purge::Entity::find()
            .select_only()
            .column(organization_purge::Column::PurgedOrganizationId)
            .filter(organization_purge::Column::CompletedAt.is_null())
            .into_tuple()
            .all(self.db.conn())
            .await?;
        for id in unfinished {
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
        Ok(ids.into_iter().map(OrgId::from_uuid).collect())
    }

    /// Purges a due organization: every row of it in every table of [`PURGED_TABLES`],
    /// one transaction per table, each step written to the ledger in the same
    /// transaction (a rerun skips what is done), then its own row, its cached policy,
    /// and `organization.purged` with the counts in the platform chain. One run at a
    /// time holds the purge (a lease in the ledger); another gets `CONFLICT`.
    #[tracing::instrument(name = "tenancy.purge_organization", skip_all, fields(org.id = %org), err(level = "debug"))]
    pub async fn purge_organization(&self, org: OrgId) -> Result<PurgeReport> {
        let due = organization::Entity::find_by_id(org.as_uuid())
            .one(self.db.conn())
            .await?
            .filter(|row| row.purged_at.is_none())
            .and_then(|row| row.deletion_scheduled_at)
            .is_some_and(|at| at <= self.clock.now());
        let ledger = organization_purge::Entity::find_by_id(org.as_uuid())
            .one(self.db.conn())
            .await?;
        if !due && ledger.as_ref().is_none_or(|l| l.completed_at.is_some()) {
            return Err(Error::Conflict(
                "the organization is not due for deletion".into(),
            ));
        }
        if ledger.is_none() {
            // Two runs may both get here: the primary key keeps one row.
            organization_purge::Entity::insert(organization_purge::ActiveModel {
                purged_organization_id: Set(org.as_uuid()),
                started_at: Set(self.clock.now()),
                steps: Set(String::new()),
                claimed_until: Set(None),
                completed_at: Set(None),
            })
            .on_conflict_do_nothing()
            .exec_without_returning(self.db.conn())
            .await?;
        }
        let now = self.clock.now();
        let claimed = organization_purge::Entity::update_many()
            .col_expr(
                organization_purge::Column::ClaimedUntil,
                Expr::value(now + PURGE_LEASE),
            )
            .filter(organization_purge::Column::PurgedOrganizationId.eq(org.as_uuid()))
            .filter(organization_purge::Column::CompletedAt.is_null())
            .filter(
                sea_orm::Condition::any()
                    .add(organization_purge::Column::ClaimedUntil.is_null())
                    .add(organization_purge::Column::ClaimedUntil.lt(now)),
            )
            .exec(self.db.conn())
            .await?;
        if claimed.rows_affected != 1 {
            return Err(Error::Conflict(
                "the organization is being purged by another run".into(),
            ));
        }
        let purged = self.purge_claimed(org).await;
        if purged.is_err() {
            // Let the next run take over at once (the ledger says what is left).
            organization_purge::Entity::update_many()
                .col_expr(
                    organization_purge::Column::ClaimedUntil,
                    Expr::value(None::<DateTime<Utc>>),
                )
                .filter(organization_purge::Column::PurgedOrganizationId.eq(org.as_uuid()))
                .filter(organization_purge::Column::CompletedAt.is_null())
                .exec(self.db.conn())
                .await?;
        }
        purged
    }

    /// The purge of an organization whose ledger this run holds.
    pub(super) async fn purge_claimed(&self, org: OrgId) -> Result<PurgeReport> {
        // The steps as the ledger has them now that this run holds it.
        let mut steps = organization_purge::Entity::find_by_id(org.as_uuid())
            .one(self.db.conn())
            .await?
            .map(|ledger| parse_steps(&ledger.steps))
            .unwrap_or_default();
        for table in PURGED_TABLES {
            if steps.iter().any(|(done, _)| done == table) {
                continue;
            }
            let tx = self.open(org, TxMode::Write).await?;
            let rows = self.purge_table(&tx, table).await?;
            steps.push(((*table).to_owned(), rows));
            write_steps(&tx, org, &steps, Held(self.clock.now() + PURGE_LEASE)).await?;
            tx.commit().await?;
        }
        // The organization's own row last (a step like the others), then the ledger's
        // completion and the platform's record together.
        if !steps.iter().any(|(done, _)| done == ORGANIZATION_ROW) {
            let tx = self.open(org, TxMode::Write).await?;
            let deleted = self.retire(&tx, org).await?;
            steps.push((ORGANIZATION_ROW.to_owned(), u64::from(deleted)));
            write_steps(&tx, org, &steps, Held(self.clock.now() + PURGE_LEASE)).await?;
            tx.commit().await?;
        }
        let tombstone = steps
            .iter()
            .any(|(table, rows)| table == ORGANIZATION_ROW && *rows == 0);
        let tx = self.open(OrgId::PLATFORM, TxMode::Write).await?;
        if !write_steps(&tx, org, &steps, Completed(self.clock.now())).await? {
            tx.rollback().await?;
            return Err(Error::Conflict(
                "the organization's purge was completed by another run".into(),
            ));
        }
        // Its exports go with it (the retention run deletes archives without a row).
        data_export::Entity::delete_many()
            .filter(data_export::Column::ExportedOrganizationId.eq(org.as_uuid()))
            .exec(tx.conn())
            .await?;
        let mut event = NewEvent::new("organization.purged", "organization", Some(org));
        for (table, rows) in &steps {
            event = event.change(table, None::<u64>, Some(*rows));
        }
        self.audit
            .record(
                &tx,
                event.change("tombstone", None::<bool>, Some(tombstone)),
            )
            .await?;
        tx.commit().await?;
        self.authz.forget(org);
        Ok(PurgeReport {
            org,
            rows: steps,
            tombstone,
        })
    }

    /// Deletes the organization's rows of one table (finalized invoices and their lines
    /// excepted).
    pub(super) async fn purge_table(&self, tx: &TenantTx, table: &str) -> Result<u64> {
        let org = tx.org_id().as_uuid();
        if self.db.backend() == Backend::Postgres {
            // The application role deletes an organization's rows only through this
            // function, which checks the deletion is pending (migration m0026).
            let row = tx
                .conn()
                .query_one_raw(Statement::from_sql_and_values(
                    DbBackend::Postgres,
                    "SELECT purge_organization_rows($1, $2) AS purged",
                    [org.into(), table.into()],
                ))
                .await?
                .ok_or(Error::NotFound { entity: "purge" })?;
            let purged: i64 = row.try_get("", "purged")?;
            return Ok(u64::try_from(purged).unwrap_or(0));
        }
        let backend = DbBackend::Sqlite;
        if table == "audit_events" {
            // SQLite's trigger lets an event go only under a purge anchor covering it.
            tx.conn()
                .execute_raw(Statement::from_sql_and_values(
                    backend,
                    "INSERT INTO audit_purges (organization_id, through_seq, anchor_hash, purged_at) \
                     VALUES (?, ?, '', ?) ON CONFLICT DO NOTHING",
                    [org.into(), i64::MAX.into(), self.clock.now().into()],
                ))
                .await?;
        }
        let sql = match table {
            "invoices" => {
                "DELETE FROM invoices WHERE organization_id = ? AND status = 'draft'".to_owned()
            }
            "invoice_lines" => {
                "DELETE FROM invoice_lines WHERE organization_id = ?1 AND invoice_id IN \
                 (SELECT id FROM invoices WHERE organization_id = ?1 AND status = 'draft')"
                    .to_owned()
            }
            _ if PURGED_TABLES.contains(&table) => {
                format!("DELETE FROM {table} WHERE organization_id = ?")
            }
            _ => return Err(Error::invalid("table", "not a purged table")),
        };
        let done = tx
            .conn()
            .execute_raw(Statement::from_sql_and_values(backend, sql, [org.into()]))
            .await?;
        Ok(done.rows_affected())
    }

    /// Deletes the organization's row, or keeps it as a tombstone while invoices remain;
    /// true when deleted.
    pub(super) async fn retire(&self, tx: &TenantTx, org: OrgId) -> Result<bool> {
        let now = self.clock.now();
        if self.db.backend() == Backend::Postgres {
            let row = tx
                .conn()
                .query_one_raw(Statement::from_sql_and_values(
                    DbBackend::Postgres,
                    "SELECT retire_organization($1, $2) AS deleted",
                    [org.as_uuid().into(), now.into()],
                ))
                .await?
                .ok_or(Error::NotFound {
                    entity: "organization",
                })?;
            return Ok(row.try_get("", "deleted")?);
        }
        let kept = tx
            .conn()
            .query_one_raw(Statement::from_sql_and_values(
                DbBackend::Sqlite,
                "SELECT count(*) AS n FROM invoices WHERE organization_id = ?",
                [org.as_uuid().into()],
            ))
            .await?
            .map(|row| row.try_get::<i64>("", "n"))
            .transpose()?
            .unwrap_or(0);
        if kept > 0 {
            organization::Entity::update_many()
                .col_expr(organization::Column::PurgedAt, Expr::value(now))
                .col_expr(
                    organization::Column::DeletionRequestedBy,
                    Expr::value(None::<uuid::Uuid>),
                )
                .col_expr(
                    organization::Column::Slug,
                    Expr::value(format!("purged-{}", org.as_uuid().simple())),
                )
                .filter(organization::Column::Id.eq(org.as_uuid()))
                .filter(organization::Column::PurgedAt.is_null())
                .exec(tx.conn())
                .await?;
            return Ok(false);
        }
        organization::Entity::delete_by_id(org.as_uuid())
            .exec(tx.conn())
            .await?;
        Ok(true)
    }

    /// Deletes purged organizations' invoices (and lines) finalized longer ago than the
    /// legal retention, and the organization's row once none remain; each recorded in
    /// the platform chain as `organization.invoices_purged`.
    pub async fn purge_retained_invoices(&self) -> Result<Vec<RetainedInvoicesPurge>> {
        let now = self.clock.now();
        let before = now
            .checked_sub_months(chrono::Months::new(
                12 * self.settings.invoice_retention_years,
            ))
            .unwrap_or(now);
        let tombstones: Vec<uuid::Uuid> = organization::Entity::find()
            .select_only()
            .column(organization::Column::Id)
            .filter(organization::Column::PurgedAt.is_not_null())
            .into_tuple()
            .all(self.db.conn())
            .await?;
        let mut done = Vec::new();
        for id in tombstones {
            let org = OrgId::from_uuid(id);
            let tx = self.open(org, TxMode::Write).await?;
            let backend = tx.conn().get_database_backend();
            let (p1, p2) = match backend {
                DbBackend::Postgres => ("$1", "$2"),
                _ => ("?1", "?2"),
            };
            let expired = format!(
                "SELECT id FROM invoices WHERE organization_id = {p1} \
                 AND COALESCE(finalized_at, created_at) < {p2}"
            );
            let values = || -> Vec<sea_orm::Value> { vec![id.into(), before.into()] };
            tx.conn()
                .execute_raw(Statement::from_sql_and_values(
                    backend,
                    format!(
                        "DELETE FROM invoice_lines WHERE organization_id = {p1} AND invoice_id IN ({expired})"
                    ),
                    values(),
                ))
                .await?;
            let invoices = tx
                .conn()
                .execute_raw(Statement::from_sql_and_values(
                    backend,
                    format!(
                        "DELETE FROM invoices WHERE organization_id = {p1} AND id IN ({expired})"
                    ),
                    values(),
                ))
                .await?
                .rows_affected();
            // With none left, the tombstone goes (the function keeps it otherwise).
            let organization_deleted = self.retire(&tx, org).await?;
            tx.commit().await?;
            if invoices == 0 && !organization_deleted {
                continue;
            }
            let tx = self.open(OrgId::PLATFORM, TxMode::Write).await?;
            self.audit
                .record(
                    &tx,
                    NewEvent::new("organization.invoices_purged", "organization", Some(org))
                        .change("invoices", None::<u64>, Some(invoices))
                        .change(
                            "organization_deleted",
                            None::<bool>,
                            Some(organization_deleted),
                        ),
                )
                .await?;
            tx.commit().await?;
            done.push(RetainedInvoicesPurge {
                org,
                invoices,
                organization_deleted,
            });
        }
        Ok(done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ledger_steps_round_trip_and_skip_garbage() {
        assert_eq!(
            parse_steps("documents=3,projects=0,broken,x=y"),
            vec![("documents".to_owned(), 3), ("projects".to_owned(), 0)]
        );
        assert_eq!(parse_steps(""), Vec::<(String, u64)>::new());
    }
}
