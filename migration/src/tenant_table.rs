//! Helpers shared by migrations: the application role and the Row-Level Security policy
//! every tenant table gets on PostgreSQL.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

/// The role the server connects as in production. It owns no table and has no
/// `BYPASSRLS`; it gets exactly the privileges that migrations grant it.
pub const APP_ROLE: &str = "platform_app";

/// Creates the application role when the cluster does not have it yet. Roles are
/// cluster-wide, so concurrent migrations of two databases may race: the loser's
/// `duplicate_object` is ignored.
pub async fn ensure_app_role(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    if manager.get_database_backend() != DbBackend::Postgres {
        return Ok(());
    }
    manager
        .get_connection()
        .execute_unprepared(&format!(
            "DO $$ BEGIN
                IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{APP_ROLE}') THEN
                    CREATE ROLE {APP_ROLE} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
                END IF;
            EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
            END $$;
            GRANT USAGE ON SCHEMA public TO {APP_ROLE};"
        ))
        .await?;
    Ok(())
}

/// Grants the application role the listed privileges on a table (PostgreSQL only).
pub async fn grant(
    manager: &SchemaManager<'_>,
    table: &str,
    privileges: &str,
) -> Result<(), DbErr> {
    if manager.get_database_backend() != DbBackend::Postgres {
        return Ok(());
    }
    manager
        .get_connection()
        .execute_unprepared(&format!("GRANT {privileges} ON {table} TO {APP_ROLE};"))
        .await?;
    Ok(())
}

/// Puts a tenant table under Row-Level Security: enabled and forced (so even the owner is
/// subject to it), with one policy whose `USING` and `WITH CHECK` both require
/// `organization_id` to equal the transaction's `app.org_id`. Without the setting the
/// comparison is with NULL and the table looks empty. `extra_read` widens only what may
/// be read (for example a user's own memberships across organizations).
pub async fn enable_rls(
    manager: &SchemaManager<'_>,
    table: &str,
    extra_read: Option<&str>,
) -> Result<(), DbErr> {
    if manager.get_database_backend() != DbBackend::Postgres {
        return Ok(());
    }
    let same_org = "organization_id = NULLIF(current_setting('app.org_id', true), '')::uuid";
    let using = match extra_read {
        Some(extra) => format!("({same_org}) OR ({extra})"),
        None => same_org.to_owned(),
    };
    manager
        .get_connection()
        .execute_unprepared(&format!(
            "ALTER TABLE {table} ENABLE ROW LEVEL SECURITY;
             ALTER TABLE {table} FORCE ROW LEVEL SECURITY;
             CREATE POLICY {table}_tenant_read ON {table} FOR SELECT USING ({using});
             CREATE POLICY {table}_tenant_insert ON {table} FOR INSERT WITH CHECK ({same_org});
             CREATE POLICY {table}_tenant_update ON {table} FOR UPDATE USING ({same_org}) WITH CHECK ({same_org});
             CREATE POLICY {table}_tenant_delete ON {table} FOR DELETE USING ({same_org});"
        ))
        .await?;
    Ok(())
}
