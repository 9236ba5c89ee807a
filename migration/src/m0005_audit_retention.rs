//! Audit retention: how long an organization keeps its events, and the only way events
//! ever leave `audit_events` — a purge of the oldest ones, which the chain records
//! (`audit.purged` names the last purged `seq` and its hash, the new anchor).
//!
//! PostgreSQL: the application role still has no DELETE on `audit_events`; it calls
//! `audit_purge(through_seq)`, a SECURITY DEFINER function that deletes only the
//! current organization's events up to that `seq` (Row-Level Security is forced even for
//! the owner) while telling the append-only trigger so. SQLite: the trigger lets a DELETE
//! through only for rows covered by an `audit_purges` row written in the same transaction.

use crate::tenant_table::{APP_ROLE, enable_rls, grant};
use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;
use sea_orm_migration::sea_orm::DbBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("audit_retention")
                    .col(uuid("organization_id").primary_key())
                    .col(integer("keep_days"))
                    .col(timestamp_with_time_zone("updated_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("audit_purges")
                    .col(uuid("organization_id"))
                    .col(big_integer("through_seq"))
                    .col(text("anchor_hash"))
                    .col(timestamp_with_time_zone("purged_at"))
                    .primary_key(Index::create().col("organization_id").col("through_seq"))
                    .to_owned(),
            )
            .await?;
        grant(manager, "audit_retention", "SELECT, INSERT, UPDATE, DELETE").await?;
        enable_rls(manager, "audit_retention", None).await?;
        grant(manager, "audit_purges", "SELECT, INSERT").await?;
        enable_rls(manager, "audit_purges", None).await?;

        let conn = manager.get_connection();
        match manager.get_database_backend() {
            DbBackend::Postgres => {
                conn.execute_unprepared(&format!(
                    "CREATE OR REPLACE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
                     BEGIN
                         IF TG_OP = 'DELETE'
                            AND OLD.seq <= NULLIF(current_setting('audit.purge_through', true), '')::bigint THEN
                             RETURN OLD;
                         END IF;
                         RAISE EXCEPTION 'audit events are append-only (% refused)', TG_OP
                             USING ERRCODE = 'insufficient_privilege';
                     END $$;
                     CREATE FUNCTION audit_purge(through_seq bigint) RETURNS bigint
                     LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
                     DECLARE
                         purged bigint;
                     BEGIN
                         PERFORM set_config('audit.purge_through', through_seq::text, true);
                         DELETE FROM audit_events
                          WHERE organization_id = NULLIF(current_setting('app.org_id', true), '')::uuid
                            AND seq <= through_seq;
                         GET DIAGNOSTICS purged = ROW_COUNT;
                         PERFORM set_config('audit.purge_through', '', true);
                         RETURN purged;
                     END $$;
                     REVOKE ALL ON FUNCTION audit_purge(bigint) FROM PUBLIC;
                     GRANT EXECUTE ON FUNCTION audit_purge(bigint) TO {APP_ROLE};"
                ))
                .await?;
            }
            _ => {
                conn.execute_unprepared(
                    "DROP TRIGGER audit_events_no_delete;
                     CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
                     WHEN NOT EXISTS (SELECT 1 FROM audit_purges p
                                      WHERE p.organization_id = OLD.organization_id AND p.through_seq >= OLD.seq)
                     BEGIN SELECT RAISE(ABORT, 'audit events are append-only (DELETE refused)'); END;",
                )
                .await?;
            }
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() == DbBackend::Postgres {
            manager
                .get_connection()
                .execute_unprepared("DROP FUNCTION IF EXISTS audit_purge(bigint)")
                .await?;
        }
        for table in ["audit_purges", "audit_retention"] {
            manager
                .drop_table(Table::drop().table(table).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}
