//! `enter_organization(org, user, key, session, key_digest, now)` (PostgreSQL): entering
//! an organization also checks the caller's credential, in the same round trip: that
//! the person's log-in session is live, or that the API key's secret (by its digest) is
//! the key's and the key unexpired at `now`. A request then needs no statement of its own
//! to validate its credential: the first organization it enters does it. With a
//! credential that does not hold, the function answers one row whose
//! `standing_session_live` is false and no standing; otherwise (or with none given) the
//! standing as before (no row: not a member).

use crate::tenant_table::APP_ROLE;
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

const ENTER_WITH_SESSION: &str = r#"
CREATE FUNCTION enter_organization(p_org uuid, p_user uuid, p_key uuid, p_session uuid,
                                   p_key_digest text, p_now timestamptz)
RETURNS TABLE (standing_role text, standing_id uuid, standing_policy_version bigint,
               standing_pending_deletion boolean, standing_session_live boolean)
LANGUAGE plpgsql VOLATILE SECURITY INVOKER AS $$
BEGIN
    PERFORM set_config('app.org_id', p_org::text, true);
    IF p_session IS NOT NULL AND NOT EXISTS (
        SELECT 1 FROM sessions s
         WHERE s.family_id = p_session AND s.user_id = p_user AND s.revoked_at IS NULL
    ) THEN
        RETURN QUERY SELECT NULL::text, NULL::uuid, NULL::bigint, NULL::boolean, false;
    ELSIF p_key_digest IS NOT NULL AND NOT EXISTS (
        SELECT 1 FROM api_keys k
         WHERE k.organization_id = p_org AND k.id = p_key AND k.revoked_at IS NULL
           AND k.secret_hash = p_key_digest
           AND (k.expires_at IS NULL OR k.expires_at > p_now)
    ) THEN
        RETURN QUERY SELECT NULL::text, NULL::uuid, NULL::bigint, NULL::boolean, false;
    ELSIF p_user IS NOT NULL THEN
        RETURN QUERY
            SELECT m.role::text, m.id, v.version, o.deletion_scheduled_at IS NOT NULL, true
              FROM memberships m
              JOIN organizations o ON o.id = m.organization_id
              LEFT JOIN authz_policy_versions v ON v.organization_id = m.organization_id
             WHERE m.organization_id = p_org AND m.user_id = p_user;
    ELSE
        RETURN QUERY
            SELECT k.role::text, k.id, v.version, o.deletion_scheduled_at IS NOT NULL, true
              FROM api_keys k
              JOIN organizations o ON o.id = k.organization_id
              LEFT JOIN authz_policy_versions v ON v.organization_id = k.organization_id
             WHERE k.organization_id = p_org AND k.id = p_key AND k.revoked_at IS NULL;
    END IF;
END
$$;
"#;

/// The function's signature, as grants name it.
const SIGNATURE: &str = "enter_organization(uuid, uuid, uuid, uuid, text, timestamptz)";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        manager
            .get_connection()
            .execute_unprepared(&format!(
                "DROP FUNCTION enter_organization(uuid, uuid, uuid);
                 {ENTER_WITH_SESSION}
                 REVOKE ALL ON FUNCTION {SIGNATURE} FROM PUBLIC;
                 GRANT EXECUTE ON FUNCTION {SIGNATURE} TO {APP_ROLE};"
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
            .execute_unprepared(&format!(
                "DROP FUNCTION {SIGNATURE};
                 {}
                 REVOKE ALL ON FUNCTION enter_organization(uuid, uuid, uuid) FROM PUBLIC;
                 GRANT EXECUTE ON FUNCTION enter_organization(uuid, uuid, uuid) TO {APP_ROLE};",
                crate::m0026_organization_offboarding::ENTER_WITH_PENDING_DELETION
            ))
            .await?;
        Ok(())
    }
}
