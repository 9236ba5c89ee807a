//! `payment_webhook_events`: provider events already handled, by their id, so an event
//! delivered twice (providers deliver at least once) acts once. Written in the same
//! transaction as what the event changed.

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
                    .table("payment_webhook_events")
                    .col(text("provider"))
                    .col(text("event_id"))
                    .col(text("event_type"))
                    .col(timestamp_with_time_zone("received_at"))
                    .primary_key(Index::create().col("provider").col("event_id"))
                    .to_owned(),
            )
            .await?;
        grant(manager, "payment_webhook_events", "SELECT, INSERT").await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(
                Table::drop()
                    .table("payment_webhook_events")
                    .if_exists()
                    .to_owned(),
            )
            .await
    }
}
