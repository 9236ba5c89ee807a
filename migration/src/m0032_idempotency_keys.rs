//! `idempotency_keys`: mutations sent with an `Idempotency-Key` header. A row is written in
//! the mutation's own transaction (so it exists exactly when the change committed) and
//! holds the answer once it is known, to replay it to a retry for 24 hours. Scoped to the
//! organization and the caller (a person or an API key); a tenant table under Row-Level
//! Security. An expired row may be taken over by a new request with the same key.
//!
//! PostgreSQL: `purge_organization_rows` learns the new tenant table.

use crate::tenant_table::{enable_rls, grant};
use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;
use sea_orm_migration::sea_orm::DbBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// m0031's list of purged tables with `idempotency_keys`.
const PURGED_TABLES: &str = "ARRAY['document_reviews', 'document_versions', 'documents', 'projects', \
'record_grants', 'authz_role_assignments', 'authz_rules', 'authz_roles', 'authz_policy_versions', \
'trusted_documents', 'idempotency_keys', 'api_keys', 'invitations', 'memberships', 'dpa_acceptances', \
'usage_events', 'invoice_items', 'invoice_lines', 'invoices', 'subscriptions', 'audit_events', \
'audit_purges', 'audit_retention']";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("idempotency_keys")
                    .col(uuid("organization_id"))
                    // The person's or the API key's id.
                    .col(uuid("principal_id"))
                    .col(text("key"))
                    // SHA-256 of the operation (name, text, variables).
                    .col(text("fingerprint"))
                    .col(timestamp_with_time_zone("created_at"))
                    // The answer as JSON, once known.
                    .col(text_null("response"))
                    .primary_key(
                        Index::create()
                            .col("organization_id")
                            .col("principal_id")
                            .col("key"),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from("idempotency_keys", "organization_id")
                            .to("organizations", "id"),
                    )
                    .to_owned(),
            )
            .await?;
        grant(manager, "idempotency_keys", "SELECT, INSERT, DELETE").await?;
        grant(
            manager,
            "idempotency_keys",
            "UPDATE (fingerprint, created_at, response)",
        )
        .await?;
        enable_rls(manager, "idempotency_keys", None).await?;
        if manager.get_database_backend() == DbBackend::Postgres {
            manager
                .get_connection()
                .execute_unprepared(&crate::m0031_trusted_documents::purge_function(
                    PURGED_TABLES,
                ))
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() == DbBackend::Postgres {
            manager
                .get_connection()
                .execute_unprepared(&crate::m0031_trusted_documents::purge_function(
                    crate::m0031_trusted_documents::PURGED_TABLES,
                ))
                .await?;
        }
        manager
            .drop_table(Table::drop().table("idempotency_keys").to_owned())
            .await
    }
}
