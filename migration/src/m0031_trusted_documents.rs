//! Trusted documents (persisted queries): the GraphQL documents a caller may run by id.
//!
//! - `trusted_documents`: an organization's own (its admins register their integration's
//!   manifest), a tenant table under Row-Level Security. `hash` is the SHA-256 of `body`
//!   (lowercase hex); a document is live until `revoked_at`, and one hash is live at most
//!   once per organization. The application role may insert and revoke, never rewrite a
//!   body.
//! - `platform_trusted_documents`: the platform's first-party apps' documents, imported by
//!   an operator (`platform persisted-queries import`, as the owner role); the
//!   application role only reads them.
//! - `api_keys.trusted_documents_only`: the key may run trusted documents only. Keys made
//!   before this migration keep running any document (`false`); new keys are restricted
//!   unless their creator says otherwise.
//! - PostgreSQL: `purge_organization_rows` learns the new tenant table (its list of
//!   tables is the allow-list of what it may delete).

use crate::tenant_table::{APP_ROLE, enable_rls, grant};
use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;
use sea_orm_migration::sea_orm::DbBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The tables an organization's rows are purged from, children before parents (m0026's
/// list with `trusted_documents`).
pub(crate) const PURGED_TABLES: &str = "ARRAY['document_reviews', 'document_versions', 'documents', 'projects', \
'record_grants', 'authz_role_assignments', 'authz_rules', 'authz_roles', 'authz_policy_versions', \
'trusted_documents', 'api_keys', 'invitations', 'memberships', 'dpa_acceptances', 'usage_events', \
'invoice_items', 'invoice_lines', 'invoices', 'subscriptions', 'audit_events', 'audit_purges', \
'audit_retention']";

/// `purge_organization_rows` as m0026 made it, with the list of tables `tables`.
pub(crate) fn purge_function(tables: &str) -> String {
    format!(
        r#"
CREATE OR REPLACE FUNCTION purge_organization_rows(p_org uuid, p_table text) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    purged bigint;
BEGIN
    IF p_org IS DISTINCT FROM NULLIF(current_setting('app.org_id', true), '')::uuid THEN
        RAISE EXCEPTION 'purge_organization_rows purges the organization the transaction is bound to'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM organizations o
                    WHERE o.id = p_org AND o.deletion_scheduled_at IS NOT NULL) THEN
        RAISE EXCEPTION 'organization % is not pending deletion', p_org
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF NOT (p_table = ANY ({tables})) THEN
        RAISE EXCEPTION 'not a purged table: %', p_table USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF p_table = 'invoices' THEN
        -- Finalized invoices and credit notes are kept for their legal period.
        DELETE FROM invoices WHERE organization_id = p_org AND status = 'draft';
    ELSIF p_table = 'invoice_lines' THEN
        DELETE FROM invoice_lines l
         WHERE l.organization_id = p_org
           AND l.invoice_id IN (SELECT i.id FROM invoices i
                                 WHERE i.organization_id = p_org AND i.status = 'draft');
    ELSIF p_table = 'audit_events' THEN
        PERFORM set_config('audit.purge_through', '9223372036854775807', true);
        DELETE FROM audit_events WHERE organization_id = p_org;
        GET DIAGNOSTICS purged = ROW_COUNT;
        PERFORM set_config('audit.purge_through', '', true);
        RETURN purged;
    ELSE
        EXECUTE format('DELETE FROM %I WHERE organization_id = $1', p_table) USING p_org;
    END IF;
    GET DIAGNOSTICS purged = ROW_COUNT;
    RETURN purged;
END $$;
REVOKE ALL ON FUNCTION purge_organization_rows(uuid, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION purge_organization_rows(uuid, text) TO {APP_ROLE};
"#
    )
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("trusted_documents")
                    .col(uuid("organization_id"))
                    .col(uuid("id"))
                    .col(text("hash"))
                    .col(text("name"))
                    // `query` or `mutation`.
                    .col(text("operation_type"))
                    .col(text("body"))
                    .col(uuid("created_by"))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone_null("revoked_at"))
                    .primary_key(Index::create().col("organization_id").col("id"))
                    .foreign_key(
                        ForeignKey::create()
                            .from("trusted_documents", "organization_id")
                            .to("organizations", "id"),
                    )
                    .to_owned(),
            )
            .await?;
        // One live document per hash and organization (what a request by id finds).
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE UNIQUE INDEX trusted_documents_live \
                 ON trusted_documents (organization_id, hash) WHERE revoked_at IS NULL",
            )
            .await?;
        grant(manager, "trusted_documents", "SELECT, INSERT").await?;
        grant(manager, "trusted_documents", "UPDATE (revoked_at)").await?;
        enable_rls(manager, "trusted_documents", None).await?;

        manager
            .create_table(
                Table::create()
                    .table("platform_trusted_documents")
                    .col(text("hash").primary_key())
                    .col(text("name"))
                    .col(text("operation_type"))
                    .col(text("body"))
                    .col(timestamp_with_time_zone("created_at"))
                    .to_owned(),
            )
            .await?;
        grant(manager, "platform_trusted_documents", "SELECT").await?;

        manager
            .alter_table(
                Table::alter()
                    .table("api_keys")
                    .add_column(boolean("trusted_documents_only").default(false))
                    .to_owned(),
            )
            .await?;
        if manager.get_database_backend() == DbBackend::Postgres {
            manager
                .get_connection()
                .execute_unprepared(&purge_function(PURGED_TABLES))
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() == DbBackend::Postgres {
            manager
                .get_connection()
                .execute_unprepared(&purge_function(
                    crate::m0026_organization_offboarding::PURGED_TABLES,
                ))
                .await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table("api_keys")
                    .drop_column("trusted_documents_only")
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(Table::drop().table("platform_trusted_documents").to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table("trusted_documents").to_owned())
            .await
    }
}
