//! The audit chain sealed after commit when an organization is busy (issue 19).
//!
//! Until now every append of an organization took its advisory lock and held it through
//! the business transaction's COMMIT, so one busy organization's writes queued one
//! behind the other. Now (PostgreSQL):
//!
//! - `audit_append` only *tries* the lock. When it gets it (the usual case: nobody else
//!   of the organization is appending) it chains the event in place, as before, after
//!   first chaining whatever is waiting in the inbox. When another transaction holds it,
//!   the event goes into `audit_inbox` instead, unchained, and the transaction goes on
//!   without waiting; it tells its caller so (`appended_seq` is NULL).
//! - `audit_seal(org, limit)` chains up to `limit` inbox events of the organization in
//!   id order (uuid v7: time order) under the lock, with the same hash as m0007, and
//!   deletes them from the inbox. The server's sealer calls it after such a commit; the
//!   next append that gets the lock calls it too, so a crashed instance's inbox is
//!   sealed by the organization's next write or by any instance's sweep.
//! - `audit_unsealed_organizations(orgs)`: which of `orgs` have events waiting (the
//!   sweep's question; it binds each organization in turn, so RLS still applies).
//!
//! `audit_inbox` is a tenant table under forced RLS. The application role may insert
//! and read it, never update or delete: only `audit_seal` (SECURITY DEFINER, and only
//! for the organization the transaction is bound to) moves events out, onto the
//! append-only chain. `purge_organization_rows` learns the table. SQLite gets the table
//! too (so the data map, exports and purges are the same on both engines) but never
//! uses it: its writers hold the database lock, so its appends never wait on each other.

use crate::tenant_table::{APP_ROLE, enable_rls, grant};
use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;
use sea_orm_migration::sea_orm::DbBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// m0032's list of purged tables with `audit_inbox`.
const PURGED_TABLES: &str = "ARRAY['document_reviews', 'document_versions', 'documents', 'projects', \
'record_grants', 'authz_role_assignments', 'authz_rules', 'authz_roles', 'authz_policy_versions', \
'trusted_documents', 'idempotency_keys', 'api_keys', 'invitations', 'memberships', 'dpa_acceptances', \
'usage_events', 'invoice_items', 'invoice_lines', 'invoices', 'subscriptions', 'audit_inbox', \
'audit_events', 'audit_purges', 'audit_retention']";

/// m0032's list (for `down`).
const PURGED_TABLES_BEFORE: &str = "ARRAY['document_reviews', 'document_versions', 'documents', 'projects', \
'record_grants', 'authz_role_assignments', 'authz_rules', 'authz_roles', 'authz_policy_versions', \
'trusted_documents', 'idempotency_keys', 'api_keys', 'invitations', 'memberships', 'dpa_acceptances', \
'usage_events', 'invoice_items', 'invoice_lines', 'invoices', 'subscriptions', 'audit_events', \
'audit_purges', 'audit_retention']";

/// The columns an event has before it is chained (`audit_events` without `seq`,
/// `prev_hash` and `hash`), in table order.
const EVENT_COLUMNS: [&str; 13] = [
    "id",
    "occurred_at",
    "actor_type",
    "actor_id",
    "impersonator_id",
    "action",
    "target_type",
    "target_id",
    "outcome",
    "diff",
    "request_id",
    "operation",
    "client",
];

/// The arguments of `audit_append` (m0007), which this migration keeps.
const APPEND_SIGNATURE: &str = "audit_append(uuid, uuid, text, text, text, text, text, text, text, text, text, text, text, text)";

/// PL/pgSQL that hashes an event exactly as m0007's `audit_append` does (the bytes
/// `audit::chain::hash` builds), into `v_hash`, and inserts it into `audit_events` at
/// `v_seq` after the hash `prev`. The event's values are `{event}id`,
/// `{event}occurred_at`, … (`p_` for the function's arguments, `r.` for an inbox row);
/// the organization is `p_org`.
pub fn chain_and_insert(event: &str, prev: &str) -> String {
    let value = |column: &str| format!("{event}{column}");
    let json = |column: &str| format!("to_json({})::text", value(column));
    let nullable = |column: &str| format!("coalesce({}, 'null')", json(column));
    let hashed = [
        "to_json(p_org::text)::text".to_owned(),
        "v_seq::text".to_owned(),
        format!("to_json({}::text)::text", value("id")),
        json("occurred_at"),
        json("actor_type"),
        nullable("actor_id"),
        nullable("impersonator_id"),
        json("action"),
        json("target_type"),
        nullable("target_id"),
        json("outcome"),
        json("diff"),
        nullable("request_id"),
        nullable("operation"),
        nullable("client"),
        format!("to_json({prev})::text"),
    ]
    .join(" || ',' || ");
    let values = EVENT_COLUMNS.map(value).join(", ");
    format!(
        "v_hash := encode(sha256(convert_to('[' || {hashed} || ']', 'UTF8')), 'hex');\n\
         INSERT INTO audit_events (organization_id, seq, {columns}, prev_hash, hash)\n\
         VALUES (p_org, v_seq, {values}, {prev}, v_hash);",
        columns = EVENT_COLUMNS.join(", "),
    )
}

/// PL/pgSQL that reads the organization's chain head into `v_seq` and `v_prev` (the
/// genesis when the chain is empty).
const READ_HEAD: &str = "SELECT e.seq, e.hash INTO v_seq, v_prev
      FROM audit_events e
     WHERE e.organization_id = p_org
     ORDER BY e.seq DESC
     LIMIT 1;
    IF NOT FOUND THEN
        v_seq := 0;
        v_prev := '0000000000000000000000000000000000000000000000000000000000000000';
    END IF;";

/// Inbox events an append that got the lock chains before its own (the sealer takes
/// the rest; bounded so one business transaction never carries a large backlog).
const SEALED_BY_APPEND: u32 = 100;

fn seal_function() -> String {
    format!(
        r#"
CREATE FUNCTION audit_seal(p_org uuid, p_limit integer) RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    v_seq bigint;
    v_prev text;
    v_hash text;
    v_ids uuid[] := '{{}}';
    r audit_inbox;
BEGIN
    IF p_org IS DISTINCT FROM NULLIF(current_setting('app.org_id', true), '')::uuid THEN
        RAISE EXCEPTION 'audit_seal seals the organization the transaction is bound to'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    -- Held to COMMIT: the chain is extended by one holder at a time, and each statement
    -- after the lock sees what the previous holder committed (READ COMMITTED).
    PERFORM pg_advisory_xact_lock(hashtextextended('audit:' || p_org::text, 0));
    {READ_HEAD}
    FOR r IN SELECT * FROM audit_inbox i WHERE i.organization_id = p_org
              ORDER BY i.id LIMIT greatest(p_limit, 0) LOOP
        v_seq := v_seq + 1;
        {chain}
        v_prev := v_hash;
        v_ids := v_ids || r.id;
    END LOOP;
    IF cardinality(v_ids) > 0 THEN
        DELETE FROM audit_inbox WHERE organization_id = p_org AND id = ANY (v_ids);
    END IF;
    RETURN cardinality(v_ids);
END
$$;
REVOKE ALL ON FUNCTION audit_seal(uuid, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION audit_seal(uuid, integer) TO {APP_ROLE};
"#,
        chain = chain_and_insert("r.", "v_prev"),
    )
}

/// `audit_append` (m0007's arguments and result) with `body` after its declarations.
fn append_function_with(body: &str) -> String {
    format!(
        r#"
CREATE OR REPLACE FUNCTION audit_append(
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
{body}
    {READ_HEAD}
    v_seq := v_seq + 1;
    {chain}
    RETURN QUERY SELECT v_seq, v_hash;
END
$$;
"#,
        chain = chain_and_insert("p_", "v_prev"),
    )
}

/// This migration's `audit_append`: the lock tried, not awaited.
fn append_function() -> String {
    let arguments = EVENT_COLUMNS.map(|c| format!("p_{c}")).join(", ");
    append_function_with(&format!(
        r#"    IF NOT pg_try_advisory_xact_lock(hashtextextended('audit:' || p_org::text, 0)) THEN
        -- Another transaction of the organization is appending: do not wait for its
        -- COMMIT; the event is chained after this one commits (audit_seal).
        INSERT INTO audit_inbox (organization_id, {columns})
        VALUES (p_org, {arguments});
        RETURN QUERY SELECT NULL::bigint, NULL::text;
        RETURN;
    END IF;
    IF EXISTS (SELECT 1 FROM audit_inbox i WHERE i.organization_id = p_org) THEN
        PERFORM audit_seal(p_org, {SEALED_BY_APPEND});
    END IF;"#,
        columns = EVENT_COLUMNS.join(", "),
    ))
}

const UNSEALED_ORGANIZATIONS: &str = r#"
CREATE FUNCTION audit_unsealed_organizations(p_orgs uuid[]) RETURNS SETOF uuid
LANGUAGE plpgsql VOLATILE SECURITY INVOKER AS $$
DECLARE
    o uuid;
BEGIN
    FOREACH o IN ARRAY p_orgs LOOP
        PERFORM set_config('app.org_id', o::text, true);
        IF EXISTS (SELECT 1 FROM audit_inbox i WHERE i.organization_id = o) THEN
            RETURN NEXT o;
        END IF;
    END LOOP;
    PERFORM set_config('app.org_id', '', true);
END
$$;
"#;

/// m0007's `audit_append`, which chains every event in place and waits for the lock:
/// what `down` restores (and what the HTTP benchmark measures the new design against).
pub fn chained_audit_append() -> String {
    append_function_with(
        "    PERFORM pg_advisory_xact_lock(hashtextextended('audit:' || p_org::text, 0));",
    )
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let mut inbox = Table::create();
        inbox.table("audit_inbox").col(uuid("organization_id"));
        for column in EVENT_COLUMNS {
            match column {
                "id" => inbox.col(uuid(column)),
                "actor_id" | "impersonator_id" | "target_id" | "request_id" | "operation"
                | "client" => inbox.col(text_null(column)),
                _ => inbox.col(text(column)),
            };
        }
        manager
            .create_table(
                inbox
                    .primary_key(Index::create().col("organization_id").col("id"))
                    .to_owned(),
            )
            .await?;
        grant(manager, "audit_inbox", "SELECT, INSERT").await?;
        enable_rls(manager, "audit_inbox", None).await?;
        if manager.get_database_backend() == DbBackend::Postgres {
            let db = manager.get_connection();
            db.execute_unprepared(&seal_function()).await?;
            db.execute_unprepared(&append_function()).await?;
            db.execute_unprepared(UNSEALED_ORGANIZATIONS).await?;
            db.execute_unprepared(&format!(
                "REVOKE ALL ON FUNCTION audit_unsealed_organizations(uuid[]) FROM PUBLIC;
                 GRANT EXECUTE ON FUNCTION audit_unsealed_organizations(uuid[]) TO {APP_ROLE};
                 REVOKE ALL ON FUNCTION {APPEND_SIGNATURE} FROM PUBLIC;
                 GRANT EXECUTE ON FUNCTION {APPEND_SIGNATURE} TO {APP_ROLE};"
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
            db.execute_unprepared(&chained_audit_append()).await?;
            db.execute_unprepared(
                "DROP FUNCTION IF EXISTS audit_unsealed_organizations(uuid[]);
                 DROP FUNCTION IF EXISTS audit_seal(uuid, integer);",
            )
            .await?;
            db.execute_unprepared(&crate::m0031_trusted_documents::purge_function(
                PURGED_TABLES_BEFORE,
            ))
            .await?;
        }
        manager
            .drop_table(Table::drop().table("audit_inbox").to_owned())
            .await
    }
}
