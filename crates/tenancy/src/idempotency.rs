//! Idempotency keys: a mutation sent with an `Idempotency-Key` header is claimed in its
//! own transaction (the claim exists exactly when the change committed), its answer is
//! kept, and a retry with the same key gets that answer again instead of a second
//! change, for [`IDEMPOTENCY_WINDOW`]. Keys belong to one organization and one caller.

use crate::entity::idempotency_key;
use crate::error::Result;
use crate::service::TenancyService;
use chrono::{DateTime, Utc};
use kernel::{OrgId, TenantTx};
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter};

/// How long a key and its answer are kept.
pub const IDEMPOTENCY_WINDOW: chrono::Duration = chrono::Duration::hours(24);
/// The longest key accepted.
pub const MAX_IDEMPOTENCY_KEY_CHARS: usize = 255;

/// A request seen before with the same key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotentRequest {
    /// What it was (SHA-256 of the operation).
    pub fingerprint: String,
    /// Its answer as JSON, once known (`None`: it committed and its answer is being
    /// written, or it is still running).
    pub response: Option<String>,
    /// When it was claimed.
    pub created_at: DateTime<Utc>,
}

impl TenancyService {
    /// The live request the caller (`principal`) sent with `key`, if any.
    pub async fn idempotent_request(
        &self,
        tx: &TenantTx,
        principal: uuid::Uuid,
        key: &str,
    ) -> Result<Option<IdempotentRequest>> {
        let cutoff = self.clock.now() - IDEMPOTENCY_WINDOW;
        Ok(tx
            .select::<idempotency_key::Entity>()
            .filter(idempotency_key::Column::PrincipalId.eq(principal))
            .filter(idempotency_key::Column::Key.eq(key))
            .filter(idempotency_key::Column::CreatedAt.gt(cutoff))
            .one(tx.conn())
            .await?
            .map(|row| IdempotentRequest {
                fingerprint: row.fingerprint,
                response: row.response,
                created_at: row.created_at,
            }))
    }

    /// Claims `key` for the caller's request in the transaction that makes its change:
    /// `false` when a live claim with the key exists (committed by another request; on
    /// PostgreSQL a concurrent one still running is waited for). An expired claim is
    /// taken over.
    pub async fn claim_idempotency_key(
        &self,
        tx: &TenantTx,
        principal: uuid::Uuid,
        key: &str,
        fingerprint: &str,
    ) -> Result<bool> {
        let now = self.clock.now();
        use idempotency_key::Column as C;
        let claimed = idempotency_key::Entity::insert(idempotency_key::ActiveModel {
            organization_id: Set(tx.org_id().as_uuid()),
            principal_id: Set(principal),
            key: Set(key.to_owned()),
            fingerprint: Set(fingerprint.to_owned()),
            created_at: Set(now),
            response: Set(None),
        })
        .on_conflict(
            OnConflict::columns([C::OrganizationId, C::PrincipalId, C::Key])
                .update_columns([C::Fingerprint, C::CreatedAt, C::Response])
                .action_and_where(
                    Expr::col((idempotency_key::Entity, C::CreatedAt))
                        .lte(now - IDEMPOTENCY_WINDOW),
                )
                .to_owned(),
        )
        .exec_without_returning(tx.conn())
        .await?;
        Ok(claimed == 1)
    }

    /// Keeps the answer of the caller's claimed request.
    pub async fn store_idempotent_response(
        &self,
        tx: &TenantTx,
        principal: uuid::Uuid,
        key: &str,
        response: &str,
    ) -> Result<()> {
        idempotency_key::Entity::update_many()
            .col_expr(idempotency_key::Column::Response, Expr::value(response))
            .filter(idempotency_key::Column::OrganizationId.eq(tx.org_id().as_uuid()))
            .filter(idempotency_key::Column::PrincipalId.eq(principal))
            .filter(idempotency_key::Column::Key.eq(key))
            .exec(tx.conn())
            .await?;
        Ok(())
    }

    /// Deletes the organization's expired keys (the retention run). How many.
    pub async fn purge_expired_idempotency_keys(&self, org: OrgId) -> Result<u64> {
        let tx = self.system_tx(org).await?;
        let cutoff = self.clock.now() - IDEMPOTENCY_WINDOW;
        let deleted = idempotency_key::Entity::delete_many()
            .filter(idempotency_key::Column::OrganizationId.eq(org.as_uuid()))
            .filter(idempotency_key::Column::CreatedAt.lte(cutoff))
            .exec(tx.conn())
            .await?
            .rows_affected;
        tx.commit().await?;
        Ok(deleted)
    }
}
