//! The audit trail: `audit_events`, append-only (the application role may only insert
//! and select; triggers refuse UPDATE, DELETE and TRUNCATE on both engines), chained per
//! organization by `(organization_id, seq)` and `(organization_id, prev_hash)`; and
//! `personal_data_keys`, the per-person keys that encrypt personal data inside events
//! (erasing a person deletes their key).

use crate::tenant_table::{enable_rls, grant};
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
                    .table("audit_events")
                    .col(uuid("organization_id"))
                    .col(big_integer("seq"))
                    .col(uuid("id"))
                    .col(text("occurred_at"))
                    .col(text("actor_type"))
                    .col(text_null("actor_id"))
                    .col(text_null("impersonator_id"))
                    .col(text("action"))
                    .col(text("target_type"))
                    .col(text_null("target_id"))
                    .col(text("outcome"))
                    .col(text("diff"))
                    .col(text_null("request_id"))
                    .col(text_null("operation"))
                    .col(text_null("client"))
                    .col(text("prev_hash"))
                    .col(text("hash"))
                    .primary_key(Index::create().col("organization_id").col("seq"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("audit_events_org_prev_hash_key")
                    .table("audit_events")
                    .col("organization_id")
                    .col("prev_hash")
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("audit_events_org_id_key")
                    .table("audit_events")
                    .col("organization_id")
                    .col("id")
                    .unique()
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table("personal_data_keys")
                    .col(text("subject").primary_key())
                    .col(text("key"))
                    .col(timestamp_with_time_zone("created_at"))
                    .to_owned(),
            )
            .await?;

        let conn = manager.get_connection();
        match manager.get_database_backend() {
            DbBackend::Postgres => {
                grant(manager, "audit_events", "SELECT, INSERT").await?;
                enable_rls(manager, "audit_events", None).await?;
                grant(manager, "personal_data_keys", "SELECT, INSERT, DELETE").await?;
                conn.execute_unprepared(
                    "CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
                     BEGIN
                         RAISE EXCEPTION 'audit events are append-only (% refused)', TG_OP
                             USING ERRCODE = 'insufficient_privilege';
                     END $$;
                     CREATE TRIGGER audit_events_no_change BEFORE UPDATE OR DELETE ON audit_events
                         FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();
                     CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
                         FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only();",
                )
                .await?;
            }
            _ => {
                conn.execute_unprepared(
                    "CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
                     BEGIN SELECT RAISE(ABORT, 'audit events are append-only (UPDATE refused)'); END;
                     CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
                     BEGIN SELECT RAISE(ABORT, 'audit events are append-only (DELETE refused)'); END;",
                )
                .await?;
            }
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(
                Table::drop()
                    .table("personal_data_keys")
                    .if_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(Table::drop().table("audit_events").if_exists().to_owned())
            .await?;
        if manager.get_database_backend() == DbBackend::Postgres {
            manager
                .get_connection()
                .execute_unprepared("DROP FUNCTION IF EXISTS audit_events_append_only()")
                .await?;
        }
        Ok(())
    }
}
