//! `jobs`: the durable job queue (crate `jobs`). A platform table, not a tenant's: a
//! worker claims any organization's job, and payloads carry ids only. `(kind,
//! unique_key)` is unique (a job without a key is never a duplicate); `(state, run_at)`
//! serves the claim. The application role enqueues, claims, finishes and deletes
//! finished jobs; it never changes a job's kind or payload.

use crate::tenant_table::grant;
use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("jobs")
                    .col(uuid("id").primary_key())
                    .col(text("kind"))
                    .col(text("payload"))
                    .col(text_null("unique_key"))
                    .col(text("state"))
                    .col(integer("attempts"))
                    .col(integer("max_attempts"))
                    .col(timestamp_with_time_zone("run_at"))
                    .col(text_null("locked_by"))
                    .col(timestamp_with_time_zone_null("locked_until"))
                    .col(text_null("last_error"))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone("updated_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("jobs_kind_unique_key")
                    .table("jobs")
                    .col("kind")
                    .col("unique_key")
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("jobs_state_run_at")
                    .table("jobs")
                    .col("state")
                    .col("run_at")
                    .to_owned(),
            )
            .await?;
        grant(manager, "jobs", "SELECT, INSERT, DELETE").await?;
        grant(
            manager,
            "jobs",
            "UPDATE (state, attempts, run_at, locked_by, locked_until, last_error, updated_at)",
        )
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("jobs").to_owned())
            .await
    }
}
