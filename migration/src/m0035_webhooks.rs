//! Outbound webhooks (crate `webhooks`).
//!
//! - `webhook_endpoints`: an organization's receivers (URL, the event types it wants, its
//!   signing secret and, for a day after a rotation, the previous one, whether it is
//!   enabled and since when it has been failing). Tenant
//!   table under Row-Level Security.
//! - `webhook_messages`: one row per event sent out, its id the audit event's (so the
//!   `webhook-id` a receiver deduplicates by is stable across retries and redeliveries)
//!   and its payload the signed envelope. Tenant table.
//! - `webhook_deliveries`: one row per message and endpoint (and per redelivery): status,
//!   attempts, the last response's code, latency and first bytes. Tenant table.
//! - `webhook_cursors`: per organization with endpoints, the audit sequence number up to
//!   which events have been fanned out. Tenant table; the dispatcher learns which
//!   organizations have one from `webhook_followed_organizations()`, which answers ids
//!   only (SECURITY DEFINER, like `audit_seal`).

use crate::tenant_table::{APP_ROLE, enable_rls, grant};
use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;
use sea_orm_migration::sea_orm::DbBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// m0033's list of purged tables with the webhook tables (children first).
const PURGED_TABLES: &str = "ARRAY['document_reviews', 'document_versions', 'documents', 'projects', \
'record_grants', 'authz_role_assignments', 'authz_rules', 'authz_roles', 'authz_policy_versions', \
'trusted_documents', 'idempotency_keys', 'api_keys', 'invitations', 'memberships', 'dpa_acceptances', \
'usage_events', 'invoice_items', 'invoice_lines', 'invoices', 'subscriptions', 'webhook_deliveries', \
'webhook_messages', 'webhook_endpoints', 'webhook_cursors', 'audit_inbox', 'audit_events', \
'audit_purges', 'audit_retention']";

/// m0033's list (for `down`).
const PURGED_TABLES_BEFORE: &str = "ARRAY['document_reviews', 'document_versions', 'documents', 'projects', \
'record_grants', 'authz_role_assignments', 'authz_rules', 'authz_roles', 'authz_policy_versions', \
'trusted_documents', 'idempotency_keys', 'api_keys', 'invitations', 'memberships', 'dpa_acceptances', \
'usage_events', 'invoice_items', 'invoice_lines', 'invoices', 'subscriptions', 'audit_inbox', \
'audit_events', 'audit_purges', 'audit_retention']";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("webhook_endpoints")
                    .col(uuid("organization_id"))
                    .col(uuid("id"))
                    .col(text("url"))
                    .col(text("description"))
                    .col(text("event_types"))
                    .col(text("secret"))
                    .col(text_null("previous_secret"))
                    .col(timestamp_with_time_zone_null("previous_secret_until"))
                    .col(boolean("enabled"))
                    .col(text_null("disabled_reason"))
                    .col(timestamp_with_time_zone_null("failing_since"))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone("updated_at"))
                    .primary_key(Index::create().col("organization_id").col("id"))
                    .foreign_key(
                        ForeignKey::create()
                            .from("webhook_endpoints", "organization_id")
                            .to("organizations", "id"),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("webhook_messages")
                    .col(uuid("organization_id"))
                    .col(uuid("id"))
                    .col(text("event_type"))
                    .col(text("payload"))
                    .col(timestamp_with_time_zone("created_at"))
                    .primary_key(Index::create().col("organization_id").col("id"))
                    .foreign_key(
                        ForeignKey::create()
                            .from("webhook_messages", "organization_id")
                            .to("organizations", "id"),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("webhook_deliveries")
                    .col(uuid("organization_id"))
                    .col(uuid("id"))
                    .col(uuid("endpoint_id"))
                    .col(uuid("message_id"))
                    .col(text("status"))
                    .col(integer("attempts"))
                    .col(timestamp_with_time_zone_null("next_attempt_at"))
                    .col(integer_null("response_status"))
                    .col(integer_null("latency_ms"))
                    .col(text_null("response_excerpt"))
                    .col(text_null("last_error"))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone("updated_at"))
                    .primary_key(Index::create().col("organization_id").col("id"))
                    .foreign_key(
                        ForeignKey::create()
                            .from_tbl("webhook_deliveries")
                            .from_col("organization_id")
                            .from_col("endpoint_id")
                            .to_tbl("webhook_endpoints")
                            .to_col("organization_id")
                            .to_col("id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from_tbl("webhook_deliveries")
                            .from_col("organization_id")
                            .from_col("message_id")
                            .to_tbl("webhook_messages")
                            .to_col("organization_id")
                            .to_col("id"),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("webhook_deliveries_endpoint")
                    .table("webhook_deliveries")
                    .col("organization_id")
                    .col("endpoint_id")
                    .col("id")
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("webhook_deliveries_message")
                    .table("webhook_deliveries")
                    .col("organization_id")
                    .col("message_id")
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("webhook_cursors")
                    .col(uuid("organization_id").primary_key())
                    .col(big_integer("last_seq"))
                    .col(timestamp_with_time_zone("updated_at"))
                    .to_owned(),
            )
            .await?;
        grant(
            manager,
            "webhook_endpoints",
            "SELECT, INSERT, UPDATE, DELETE",
        )
        .await?;
        grant(manager, "webhook_messages", "SELECT, INSERT, DELETE").await?;
        grant(
            manager,
            "webhook_deliveries",
            "SELECT, INSERT, UPDATE, DELETE",
        )
        .await?;
        grant(manager, "webhook_cursors", "SELECT, INSERT, DELETE").await?;
        grant(manager, "webhook_cursors", "UPDATE (last_seq, updated_at)").await?;
        for table in [
            "webhook_endpoints",
            "webhook_messages",
            "webhook_deliveries",
            "webhook_cursors",
        ] {
            enable_rls(manager, table, None).await?;
        }
        if manager.get_database_backend() == DbBackend::Postgres {
            let db = manager.get_connection();
            db.execute_unprepared(&format!(
                "CREATE FUNCTION webhook_followed_organizations() RETURNS SETOF uuid
                 LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
                 AS $$ SELECT organization_id FROM webhook_cursors ORDER BY organization_id $$;
                 REVOKE ALL ON FUNCTION webhook_followed_organizations() FROM PUBLIC;
                 GRANT EXECUTE ON FUNCTION webhook_followed_organizations() TO {APP_ROLE};"
            ))
            .await?;
            db.execute_unprepared(&crate::m0031_trusted_documents::purge_function(
                PURGED_TABLES,
            ))
            .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() == DbBackend::Postgres {
            let db = manager.get_connection();
            db.execute_unprepared("DROP FUNCTION IF EXISTS webhook_followed_organizations();")
                .await?;
            db.execute_unprepared(&crate::m0031_trusted_documents::purge_function(
                PURGED_TABLES_BEFORE,
            ))
            .await?;
        }
        for table in [
            "webhook_cursors",
            "webhook_deliveries",
            "webhook_messages",
            "webhook_endpoints",
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
