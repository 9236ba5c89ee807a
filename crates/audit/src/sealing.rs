//! Events chained after their transaction committed (PostgreSQL, migration m0033).
//!
//! An append that finds its organization's chain lock taken does not wait for the holder
//! to commit: its event goes into `audit_inbox`, unchained, and the append tells
//! [`AuditLog::record`] so. Once the business transaction has committed, the
//! organization is put on this process's [`SealQueue`]; the sealer (tenancy's
//! `run_audit_sealer`) takes it from there and calls [`AuditLog::seal`], which chains the
//! inbox in id order under the lock. The next append that gets the lock chains what it
//! finds waiting too, and a sweep ([`AuditLog::unsealed_organizations`]) finds inboxes an
//! instance left behind when it stopped.
//!
//! Readers see chained events only; [`AuditLog::unsealed`] says how many wait and since
//! when, and verification reports it.

use crate::error::Result;
use crate::service::AuditLog;
use chrono::{DateTime, Utc};
use kernel::{Backend, OrgId, TenantTx};
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use std::collections::BTreeSet;
use std::sync::Mutex;
use tokio::sync::Notify;
use uuid::Uuid;

/// Events chained per sealing transaction.
pub const SEAL_BATCH: u32 = 500;

/// The organizations whose inbox this process was told about and has not sealed yet.
#[derive(Debug, Default)]
pub(crate) struct SealQueue {
    waiting: Mutex<BTreeSet<OrgId>>,
    wake: Notify,
}

impl SealQueue {
    pub(crate) fn push(&self, org: OrgId) {
        self.waiting
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(org);
        self.wake.notify_one();
    }

    /// Waits until at least one organization is waiting, then takes them all.
    async fn take(&self) -> Vec<OrgId> {
        loop {
            let woken = self.wake.notified();
            {
                let mut waiting = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
                if !waiting.is_empty() {
                    return std::mem::take(&mut *waiting).into_iter().collect();
                }
            }
            woken.await;
        }
    }
}

/// What waits in an organization's inbox.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UnsealedTail {
    /// Events recorded and committed but not chained yet.
    pub events: u64,
    /// When the oldest of them happened.
    pub oldest: Option<DateTime<Utc>>,
}

impl AuditLog {
    /// Asks this process's sealer to seal `org`'s inbox (after a commit that left an
    /// event there, or to try again after a failure).
    pub fn request_seal(&self, org: OrgId) {
        self.seal_queue().push(org);
    }

    /// Waits for organizations to seal and takes them (the sealer's loop).
    pub async fn organizations_to_seal(&self) -> Vec<OrgId> {
        self.seal_queue().take().await
    }

    /// Chains up to `limit` of the organization's waiting events, in id order, in the
    /// caller's write transaction; how many. Nothing ever waits on SQLite.
    #[tracing::instrument(name = "audit.seal", skip_all, fields(org.id = %tx.org_id()), err(level = "warn"))]
    pub async fn seal(&self, tx: &TenantTx, limit: u32) -> Result<u32> {
        if self.backend() != Backend::Postgres {
            return Ok(0);
        }
        let row = tx
            .conn()
            .query_one_raw(Statement::from_sql_and_values(
                sea_orm::DbBackend::Postgres,
                "SELECT audit_seal($1, $2)",
                [
                    tx.org_id().as_uuid().into(),
                    i32::try_from(limit).unwrap_or(i32::MAX).into(),
                ],
            ))
            .await?;
        let sealed: i32 = match row {
            Some(row) => row.try_get_by_index(0)?,
            None => 0,
        };
        Ok(u32::try_from(sealed).unwrap_or(0))
    }

    /// Which of `orgs` have events waiting: the sweep for inboxes that no live process
    /// was told about. One statement, on a connection outside any transaction (it binds
    /// each organization in turn, for that statement only).
    pub async fn unsealed_organizations(
        &self,
        conn: &DatabaseConnection,
        orgs: &[OrgId],
    ) -> Result<Vec<OrgId>> {
        if self.backend() != Backend::Postgres || orgs.is_empty() {
            return Ok(Vec::new());
        }
        // An array literal, as text: the bound values here have no array type.
        let ids = orgs
            .iter()
            .map(|o| o.to_string())
            .collect::<Vec<_>>()
            .join(",");
        let rows = conn
            .query_all_raw(Statement::from_sql_and_values(
                sea_orm::DbBackend::Postgres,
                "SELECT audit_unsealed_organizations($1::text::uuid[])",
                [format!("{{{ids}}}").into()],
            ))
            .await?;
        rows.iter()
            .map(|row| Ok(OrgId::from_uuid(row.try_get_by_index::<Uuid>(0)?)))
            .collect()
    }

    /// The organization's events that are recorded but not chained yet.
    pub async fn unsealed(&self, tx: &TenantTx) -> Result<UnsealedTail> {
        let backend = tx.conn().get_database_backend();
        let sql = "SELECT count(*), min(occurred_at) FROM audit_inbox WHERE organization_id = $1";
        let row = tx
            .conn()
            .query_one_raw(Statement::from_sql_and_values(
                backend,
                kernel::numbered(backend, sql),
                [tx.org_id().as_uuid().into()],
            ))
            .await?;
        let Some(row) = row else {
            return Ok(UnsealedTail::default());
        };
        let events: i64 = row.try_get_by_index(0)?;
        let oldest: Option<String> = row.try_get_by_index(1)?;
        Ok(UnsealedTail {
            events: u64::try_from(events).unwrap_or(0),
            oldest: oldest
                .as_deref()
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.with_timezone(&Utc)),
        })
    }
}
