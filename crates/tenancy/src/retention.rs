//! Retention of account and security data: what the data map says is kept a number of
//! days after it stops being needed is deleted by the retention run.

use crate::entity::{invitation, login_failure, session};
use crate::error::Result;
use crate::service::TenancyService;
use audit::NewEvent;
use chrono::Duration;
use kernel::data_map::retention_days;
use kernel::{OrgId, TxMode};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

/// How long after it ended the data map keeps `table.column` (a day if it says nothing,
/// which the data map test prevents for these columns).
fn kept(table: &str, column: &str) -> Duration {
    let days = retention_days(crate::data_map::DATA_MAP, table, column).unwrap_or(1);
    Duration::days(i64::from(days))
}

impl TenancyService {
    /// Deletes sessions that ended (revoked or expired) longer ago than the data map
    /// keeps them.
    pub async fn purge_ended_sessions(&self) -> Result<u64> {
        let before = self.clock.now() - kept("sessions", "token_hash");
        let ended = Expr::col(session::Column::RevokedAt)
            .lt(before)
            .or(Expr::col(session::Column::ExpiresAt).lt(before));
        let done = session::Entity::delete_many()
            .filter(ended)
            .exec(self.db.conn())
            .await?;
        Ok(done.rows_affected)
    }

    /// Deletes sign-up counters older than the data map keeps them.
    pub async fn purge_old_sign_up_counters(&self) -> Result<u64> {
        let before = self.clock.now() - kept("login_failures", "scope");
        let done = login_failure::Entity::delete_many()
            .filter(login_failure::Column::OccurredAt.lt(before))
            .exec(self.db.conn())
            .await?;
        Ok(done.rows_affected)
    }

    /// Deletes an organization's invitations that ended (accepted, revoked or expired)
    /// longer ago than the data map keeps invitees' addresses; recorded in its chain as
    /// the system's `invitations.purged` when there were any.
    pub async fn purge_ended_invitations(&self, org: OrgId) -> Result<u64> {
        let before = self.clock.now() - kept("invitations", "email");
        let tx = self.open(org, TxMode::Write).await?;
        let ended = Expr::col(invitation::Column::AcceptedAt)
            .lt(before)
            .or(Expr::col(invitation::Column::RevokedAt).lt(before))
            .or(Expr::col(invitation::Column::ExpiresAt).lt(before));
        let done = invitation::Entity::delete_many()
            .filter(invitation::Column::OrganizationId.eq(org.as_uuid()))
            .filter(ended)
            .exec(tx.conn())
            .await?;
        if done.rows_affected > 0 {
            self.audit
                .record(
                    &tx,
                    NewEvent::new("invitations.purged", "organization", Some(org)).change(
                        "purged",
                        None::<u64>,
                        Some(done.rows_affected),
                    ),
                )
                .await?;
        }
        tx.commit().await?;
        Ok(done.rows_affected)
    }

    /// Records in the platform chain, as the system, what a retention run deleted
    /// outside any organization (sessions, counters, exports): `retention.purged` with
    /// the count of each that is not zero; nothing when all are.
    pub async fn record_platform_retention(&self, counts: &[(&str, u64)]) -> Result<()> {
        if counts.iter().all(|(_, n)| *n == 0) {
            return Ok(());
        }
        let mut event = NewEvent::new("retention.purged", "platform", None::<String>);
        for (what, n) in counts.iter().filter(|(_, n)| *n > 0) {
            event = event.change(what, None::<u64>, Some(*n));
        }
        let tx = self.open(OrgId::PLATFORM, TxMode::Write).await?;
        self.audit.record(&tx, event).await?;
        tx.commit().await?;
        Ok(())
    }
}
