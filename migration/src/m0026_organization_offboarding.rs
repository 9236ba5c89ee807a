//! Organization offboarding (GDPR: the customer's data goes when the contract ends).
//!
//! - `organizations.deletion_requested_at`, `deletion_requested_by`, `deletion_scheduled_at`
//!   (an owner asked for deletion; the purge may run from then on) and `purged_at` (the
//!   purge ran and the row is kept only because finalized invoices must be kept for their
//!   legal period: a tombstone).
//! - `organization_purges`: the deletion ledger, one row per organization, written when
//!   the purge starts and after every step (`steps`: `table=rows` in order), so a crash
//!   resumes where it stopped. It holds no personal data and outlives the organization:
//!   a platform table about an organization, not one of its rows (hence not
//!   `organization_id`, which would put it under that organization's Row-Level Security
//!   and in its purge).
//! - PostgreSQL: the application role may set and clear the deletion request columns,
//!   nothing else of `organizations`, and deletes an organization's rows only through
//!   `purge_organization_rows(org, table)`, a SECURITY DEFINER function that refuses an
//!   organization not pending deletion and a table outside its list, keeps finalized
//!   invoices (and their lines), and lets the audit trigger pass for that organization
//!   alone; it purges only the organization the transaction is bound to (`app.org_id`).
//!   What it cannot check: that the grace period is over (the request columns are the
//!   application's to write, in its clock), so an injected statement of the application
//!   role could still schedule and purge an organization; the audit chain of the
//!   platform records every purge. `retire_organization(org, at)` deletes the row, or keeps a tombstone while
//!   invoices remain.

use crate::tenant_table::{APP_ROLE, grant};
use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;
use sea_orm_migration::sea_orm::DbBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The tables an organization's rows are purged from, children before parents.
pub const PURGED_TABLES: &str = "ARRAY['document_reviews', 'document_versions', 'documents', 'projects', \
'record_grants', 'authz_role_assignments', 'authz_rules', 'authz_roles', 'authz_policy_versions', \
'api_keys', 'invitations', 'memberships', 'dpa_acceptances', 'usage_events', 'invoice_items', \
'invoice_lines', 'invoices', 'subscriptions', 'audit_events', 'audit_purges', 'audit_retention']";

/// `enter_organization` that also says whether the organization is pending deletion
/// (same round trip).
pub(crate) const ENTER_WITH_PENDING_DELETION: &str = r#"
CREATE FUNCTION enter_organization(p_org uuid, p_user uuid, p_key uuid)
RETURNS TABLE (standing_role text, standing_id uuid, standing_policy_version bigint,
               standing_pending_deletion boolean)
LANGUAGE plpgsql VOLATILE SECURITY INVOKER AS $$
BEGIN
    PERFORM set_config('app.org_id', p_org::text, true);
    IF p_user IS NOT NULL THEN
        RETURN QUERY
            SELECT m.role::text, m.id, v.version, o.deletion_scheduled_at IS NOT NULL
              FROM memberships m
              JOIN organizations o ON o.id = m.organization_id
              LEFT JOIN authz_policy_versions v ON v.organization_id = m.organization_id
             WHERE m.organization_id = p_org AND m.user_id = p_user;
    ELSE
        RETURN QUERY
            SELECT k.role::text, k.id, v.version, o.deletion_scheduled_at IS NOT NULL
              FROM api_keys k
              JOIN organizations o ON o.id = k.organization_id
              LEFT JOIN authz_policy_versions v ON v.organization_id = k.organization_id
             WHERE k.organization_id = p_org AND k.id = p_key AND k.revoked_at IS NULL;
    END IF;
END
$$;
"#;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters one thing at a time.
        for column in [
            ColumnDef::new("deletion_requested_at")
                .timestamp_with_time_zone()
                .null()
                .to_owned(),
            ColumnDef::new("deletion_requested_by")
                .uuid()
                .null()
                .to_owned(),
            ColumnDef::new("deletion_scheduled_at")
                .timestamp_with_time_zone()
                .null()
                .to_owned(),
            ColumnDef::new("purged_at")
                .timestamp_with_time_zone()
                .null()
                .to_owned(),
        ] {
            let mut column = column;
            manager
                .alter_table(
                    Table::alter()
                        .table("organizations")
                        .add_column(&mut column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_table(
                Table::create()
                    .table("organization_purges")
                    .col(uuid("purged_organization_id").primary_key())
                    .col(timestamp_with_time_zone("started_at"))
                    .col(text("steps"))
                    // Until when one run holds the purge (two instances never purge the
                    // same organization at once).
                    .col(timestamp_with_time_zone_null("claimed_until"))
                    .col(timestamp_with_time_zone_null("completed_at"))
                    .to_owned(),
            )
            .await?;
        grant(manager, "organization_purges", "SELECT, INSERT, UPDATE").await?;
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        manager
            .get_connection()
            .execute_unprepared(&format!(
                r#"
GRANT UPDATE (deletion_requested_at, deletion_requested_by, deletion_scheduled_at) ON organizations TO {APP_ROLE};

-- Entering an organization also says whether it is pending deletion (same round trip).
DROP FUNCTION enter_organization(uuid, uuid, uuid);
{ENTER_WITH_PENDING_DELETION}REVOKE ALL ON FUNCTION enter_organization(uuid, uuid, uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION enter_organization(uuid, uuid, uuid) TO {APP_ROLE};

CREATE FUNCTION purge_organization_rows(p_org uuid, p_table text) RETURNS bigint
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
    IF NOT (p_table = ANY ({PURGED_TABLES})) THEN
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

CREATE FUNCTION retire_organization(p_org uuid, p_at timestamptz) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    IF p_org IS DISTINCT FROM NULLIF(current_setting('app.org_id', true), '')::uuid THEN
        RAISE EXCEPTION 'retire_organization retires the organization the transaction is bound to'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM organizations o
                    WHERE o.id = p_org AND o.deletion_scheduled_at IS NOT NULL) THEN
        RAISE EXCEPTION 'organization % is not pending deletion', p_org
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF EXISTS (SELECT 1 FROM invoices i WHERE i.organization_id = p_org) THEN
        -- A tombstone while invoices are kept; the slug is free again.
        UPDATE organizations
           SET purged_at = p_at,
               deletion_requested_by = NULL,
               slug = 'purged-' || replace(p_org::text, '-', '')
         WHERE id = p_org AND purged_at IS NULL;
        RETURN false;
    END IF;
    DELETE FROM organizations WHERE id = p_org;
    RETURN true;
END $$;
REVOKE ALL ON FUNCTION retire_organization(uuid, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION retire_organization(uuid, timestamptz) TO {APP_ROLE};
"#
            ))
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() == DbBackend::Postgres {
            let db = manager.get_connection();
            db.execute_unprepared(
                "DROP FUNCTION IF EXISTS purge_organization_rows(uuid, text);
                 DROP FUNCTION IF EXISTS retire_organization(uuid, timestamptz);
                 DROP FUNCTION enter_organization(uuid, uuid, uuid);",
            )
            .await?;
            // The earlier entry, which does not read the columns dropped below.
            db.execute_unprepared(crate::m0016_enter_organization::ENTER)
                .await?;
            db.execute_unprepared(&format!(
                "REVOKE ALL ON FUNCTION enter_organization(uuid, uuid, uuid) FROM PUBLIC;
                 GRANT EXECUTE ON FUNCTION enter_organization(uuid, uuid, uuid) TO {APP_ROLE};"
            ))
            .await?;
        }
        manager
            .drop_table(Table::drop().table("organization_purges").to_owned())
            .await?;
        for column in [
            "deletion_requested_at",
            "deletion_requested_by",
            "deletion_scheduled_at",
            "purged_at",
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table("organizations")
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
