//! Organization offboarding: an owner asks for the organization's deletion, it stays
//! readable for its owners (to export) during a grace period in which it can be
//! cancelled, and then the purge deletes every row of it in every table, step by step
//! through a ledger so a crash resumes where it stopped. Finalized invoices and credit
//! notes are kept for their legal period; the organization's row stays as a tombstone
//! (name only, slug released) while they do.

mod purge;

pub use self::purge::{PurgeReport, RetainedInvoicesPurge};
use crate::entity::{api_key, invitation, organization, organization_purge};
use crate::error::{Error, Result};
use crate::model::{Actor, Organization};
use crate::role::Role;
use crate::service::TenancyService;
use audit::NewEvent;
use chrono::{DateTime, Utc};
use kernel::{Principal, TenantTx};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};

/// The tables an organization's rows are purged from, children before parents (the
/// order foreign keys need). A test checks that every table with an `organization_id`
/// column is here, and migrations m0026, m0031, m0032, m0033 and m0035 list the same tables for PostgreSQL.
pub const PURGED_TABLES: &[&str] = &[
    "document_reviews",
    "document_versions",
    "documents",
    "projects",
    "record_grants",
    "authz_role_assignments",
    "authz_rules",
    "authz_roles",
    "authz_policy_versions",
    "trusted_documents",
    "idempotency_keys",
    "api_keys",
    "invitations",
    "memberships",
    "dpa_acceptances",
    "usage_events",
    "invoice_items",
    "invoice_lines",
    "invoices",
    "subscriptions",
    "webhook_deliveries",
    "webhook_messages",
    "webhook_endpoints",
    "webhook_cursors",
    "audit_inbox",
    "audit_events",
    "audit_purges",
    "audit_retention",
];

/// How long one run holds a purge before another may take it over (a run that died).
const PURGE_LEASE: chrono::Duration = chrono::Duration::minutes(15);

/// The purge's last step: the organization's own row (1: deleted; 0: kept as a
/// tombstone while finalized invoices are retained).
const ORGANIZATION_ROW: &str = "organizations";

impl TenancyService {
    /// An owner asks for the organization's deletion, naming its slug to confirm: every
    /// API key is revoked at once, and the purge may run after the deletion grace. Only a person
    /// who is an owner may ask; a second request is a conflict.
    #[tracing::instrument(
        name = "tenancy.request_organization_deletion",
        skip_all,
        err(level = "debug")
    )]
    pub async fn request_organization_deletion(
        &self,
        tx: &TenantTx,
        actor: &Actor,
        confirm_slug: &str,
    ) -> Result<Organization> {
        let row = owned_organization(tx, actor).await?;
        if row.deletion_scheduled_at.is_some() {
            return Err(Error::PendingDeletion);
        }
        if confirm_slug != row.slug {
            return Err(Error::invalid(
                "confirmSlug",
                "does not match the organization's slug",
            ));
        }
        let now = self.clock.now();
        let scheduled = now + self.settings.deletion_grace;
        organization::Entity::update_many()
            .col_expr(organization::Column::DeletionRequestedAt, Expr::value(now))
            .col_expr(
                organization::Column::DeletionRequestedBy,
                Expr::value(actor.principal.id()),
            )
            .col_expr(
                organization::Column::DeletionScheduledAt,
                Expr::value(scheduled),
            )
            .filter(organization::Column::Id.eq(row.id))
            .exec(tx.conn())
            .await?;
        let live_keys = tx
            .select::<api_key::Entity>()
            .filter(api_key::Column::RevokedAt.is_null())
            .order_by_asc(api_key::Column::Id)
            .all(tx.conn())
            .await?;
        for key in &live_keys {
            self.revoke_key(tx, key, Some("organization_deletion"))
                .await?;
        }
        // Nobody joins an organization on its way out.
        let invitations = invitation::Entity::update_many()
            .col_expr(invitation::Column::RevokedAt, Expr::value(now))
            .filter(invitation::Column::OrganizationId.eq(row.id))
            .filter(invitation::Column::AcceptedAt.is_null())
            .filter(invitation::Column::RevokedAt.is_null())
            .exec(tx.conn())
            .await?;
        self.audit
            .record(
                tx,
                NewEvent::new(
                    "organization.deletion_requested",
                    "organization",
                    Some(row.id),
                )
                .change(
                    "deletion_scheduled_at",
                    None::<String>,
                    Some(scheduled.to_rfc3339()),
                )
                .change(
                    "api_keys_revoked",
                    None::<u64>,
                    Some(live_keys.len() as u64),
                )
                .change(
                    "invitations_revoked",
                    None::<u64>,
                    Some(invitations.rows_affected),
                ),
            )
            .await?;
        Ok(Organization {
            deletion_scheduled_at: Some(scheduled),
            ..row.into()
        })
    }

    /// An owner cancels a pending deletion; revoked keys stay revoked.
    #[tracing::instrument(
        name = "tenancy.cancel_organization_deletion",
        skip_all,
        err(level = "debug")
    )]
    pub async fn cancel_organization_deletion(
        &self,
        tx: &TenantTx,
        actor: &Actor,
    ) -> Result<Organization> {
        let row = owned_organization(tx, actor).await?;
        let Some(scheduled) = row.deletion_scheduled_at else {
            return Err(Error::Conflict(
                "the organization is not pending deletion".into(),
            ));
        };
        // Once the purge started, what it deleted cannot come back: it finishes.
        if organization_purge::Entity::find_by_id(row.id)
            .one(tx.conn())
            .await?
            .is_some()
        {
            return Err(Error::Conflict(
                "the organization's purge has started; it cannot be cancelled".into(),
            ));
        }
        organization::Entity::update_many()
            .col_expr(
                organization::Column::DeletionRequestedAt,
                Expr::value(None::<DateTime<Utc>>),
            )
            .col_expr(
                organization::Column::DeletionRequestedBy,
                Expr::value(None::<uuid::Uuid>),
            )
            .col_expr(
                organization::Column::DeletionScheduledAt,
                Expr::value(None::<DateTime<Utc>>),
            )
            .filter(organization::Column::Id.eq(row.id))
            .exec(tx.conn())
            .await?;
        self.audit
            .record(
                tx,
                NewEvent::new(
                    "organization.deletion_canceled",
                    "organization",
                    Some(row.id),
                )
                .change(
                    "deletion_scheduled_at",
                    Some(scheduled.to_rfc3339()),
                    None::<String>,
                ),
            )
            .await?;
        Ok(Organization {
            deletion_scheduled_at: None,
            ..row.into()
        })
    }
}

impl TenancyService {}

/// The organization's row, for a person who owns it (keys and other roles: FORBIDDEN).
async fn owned_organization(tx: &TenantTx, actor: &Actor) -> Result<organization::Model> {
    if actor.role != Role::Owner || !matches!(actor.principal, Principal::User(_)) {
        return Err(Error::Forbidden(
            "only an owner (a person, not a key) may delete the organization".into(),
        ));
    }
    organization::Entity::find_by_id(tx.org_id().as_uuid())
        .one(tx.conn())
        .await?
        .ok_or(Error::NotFound {
            entity: "organization",
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_purged_table_is_in_the_postgres_function() {
        // Migration m0035 (m0026's list, grown) names the same tables; a table missing
        // there fails the purge on PostgreSQL only.
        let migration = include_str!("../../../../migration/src/m0035_webhooks.rs");
        for table in PURGED_TABLES {
            assert!(migration.contains(&format!("'{table}'")), "{table}");
        }
    }
}
