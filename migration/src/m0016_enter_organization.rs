//! `enter_organization(org, user, key)` (PostgreSQL): binds the transaction to the
//! organization (`app.org_id`, transaction-local) and returns the caller's standing in
//! it — the membership of `user`, or the live API key `key` — with the organization's
//! policy version, in one round trip instead of two. The statements of a PL/pgSQL
//! function run in order, so the membership read is already under the new setting's
//! Row-Level Security. It runs as the caller (`SECURITY INVOKER`): RLS and grants apply.
//! A transaction that never called it has no `app.org_id` and sees no tenant row.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

pub(crate) const ENTER: &str = r#"
CREATE FUNCTION enter_organization(p_org uuid, p_user uuid, p_key uuid)
RETURNS TABLE (standing_role text, standing_id uuid, standing_policy_version bigint)
LANGUAGE plpgsql VOLATILE SECURITY INVOKER AS $$
BEGIN
    PERFORM set_config('app.org_id', p_org::text, true);
    IF p_user IS NOT NULL THEN
        RETURN QUERY
            SELECT m.role::text, m.id, v.version
              FROM memberships m
              LEFT JOIN authz_policy_versions v ON v.organization_id = m.organization_id
             WHERE m.organization_id = p_org AND m.user_id = p_user;
    ELSE
        RETURN QUERY
            SELECT k.role::text, k.id, v.version
              FROM api_keys k
              LEFT JOIN authz_policy_versions v ON v.organization_id = k.organization_id
             WHERE k.organization_id = p_org AND k.id = p_key AND k.revoked_at IS NULL;
    END IF;
END
$$;
"#;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        let db = manager.get_connection();
        db.execute_unprepared(ENTER).await?;
        db.execute_unprepared(&format!(
            "REVOKE ALL ON FUNCTION enter_organization(uuid, uuid, uuid) FROM PUBLIC;
             GRANT EXECUTE ON FUNCTION enter_organization(uuid, uuid, uuid) TO {};",
            crate::APP_ROLE
        ))
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        manager
            .get_connection()
            .execute_unprepared("DROP FUNCTION IF EXISTS enter_organization(uuid, uuid, uuid);")
            .await?;
        Ok(())
    }
}
