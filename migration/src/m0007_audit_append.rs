//! `audit_append(...)` (PostgreSQL): appends one event to its organization's chain in a
//! single round trip. It takes the organization's advisory lock, reads the chain head
//! with a fresh snapshot (each statement of a volatile PL/pgSQL function takes one, so
//! the head committed by the previous holder of the lock is seen), hashes and inserts.
//! Holding the lock from the head read to the commit is what keeps the chain from
//! forking; doing the read, hash and insert inside the server shortens that window to
//! one statement plus the commit.
//!
//! The hash is SHA-256 over exactly the bytes `audit::chain::hash` builds in Rust: a
//! compact JSON array of the stored values, strings escaped by `to_json` (which escapes
//! as serde_json does: `\"`, `\\`, `\b \f \n \r \t`, other control characters as
//! `\u00xx`). A test compares the two on both engines. It runs as the caller
//! (`SECURITY INVOKER`), so Row-Level Security and the append-only grants still apply.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

const APPEND: &str = r#"
CREATE FUNCTION audit_append(
    p_org uuid, p_id uuid, p_occurred_at text, p_actor_type text, p_actor_id text,
    p_impersonator_id text, p_action text, p_target_type text, p_target_id text,
    p_outcome text, p_diff text, p_request_id text, p_operation text, p_client text
) RETURNS TABLE (appended_seq bigint, appended_hash text)
LANGUAGE plpgsql VOLATILE SECURITY INVOKER AS $$
DECLARE
    v_seq bigint;
    v_prev text;
    v_hash text;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended('audit:' || p_org::text, 0));
    SELECT e.seq, e.hash INTO v_seq, v_prev
      FROM audit_events e
     WHERE e.organization_id = p_org
     ORDER BY e.seq DESC
     LIMIT 1;
    IF NOT FOUND THEN
        v_seq := 0;
        v_prev := '0000000000000000000000000000000000000000000000000000000000000000';
    END IF;
    v_seq := v_seq + 1;
    v_hash := encode(sha256(convert_to(
        '[' || to_json(p_org::text)::text
        || ',' || v_seq::text
        || ',' || to_json(p_id::text)::text
        || ',' || to_json(p_occurred_at)::text
        || ',' || to_json(p_actor_type)::text
        || ',' || coalesce(to_json(p_actor_id)::text, 'null')
        || ',' || coalesce(to_json(p_impersonator_id)::text, 'null')
        || ',' || to_json(p_action)::text
        || ',' || to_json(p_target_type)::text
        || ',' || coalesce(to_json(p_target_id)::text, 'null')
        || ',' || to_json(p_outcome)::text
        || ',' || to_json(p_diff)::text
        || ',' || coalesce(to_json(p_request_id)::text, 'null')
        || ',' || coalesce(to_json(p_operation)::text, 'null')
        || ',' || coalesce(to_json(p_client)::text, 'null')
        || ',' || to_json(v_prev)::text
        || ']', 'UTF8')), 'hex');
    INSERT INTO audit_events (organization_id, seq, id, occurred_at, actor_type, actor_id,
        impersonator_id, action, target_type, target_id, outcome, diff, request_id,
        operation, client, prev_hash, hash)
    VALUES (p_org, v_seq, p_id, p_occurred_at, p_actor_type, p_actor_id,
        p_impersonator_id, p_action, p_target_type, p_target_id, p_outcome, p_diff,
        p_request_id, p_operation, p_client, v_prev, v_hash);
    RETURN QUERY SELECT v_seq, v_hash;
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
        db.execute_unprepared(APPEND).await?;
        db.execute_unprepared(&format!(
            "REVOKE ALL ON FUNCTION audit_append(uuid, uuid, text, text, text, text, text, text, text, text, text, text, text, text) FROM PUBLIC;
             GRANT EXECUTE ON FUNCTION audit_append(uuid, uuid, text, text, text, text, text, text, text, text, text, text, text, text) TO {};",
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
            .execute_unprepared(
                "DROP FUNCTION IF EXISTS audit_append(uuid, uuid, text, text, text, text, text, text, text, text, text, text, text, text);",
            )
            .await?;
        Ok(())
    }
}
