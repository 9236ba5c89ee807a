//! Usage events of billable metrics: one row per reported use, unique per
//! (organization, metric, idempotency key), append-only for the application role.

use crate::tenant_table::{enable_rls, grant};
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
                    .table("usage_events")
                    .col(uuid("organization_id"))
                    .col(uuid("id"))
                    .col(text("metric"))
                    .col(text("idempotency_key"))
                    .col(timestamp_with_time_zone("occurred_at"))
                    .col(timestamp_with_time_zone("received_at"))
                    // Exact decimal as text: no floats, any scale up to 12 places.
                    .col(text("value"))
                    // JSON object of string properties, keys sorted.
                    .col(text("properties"))
                    .primary_key(Index::create().col("organization_id").col("id"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("usage_events_organization_fk")
                            .from("usage_events", "organization_id")
                            .to("organizations", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("usage_events_org_metric_key")
                    .table("usage_events")
                    .col("organization_id")
                    .col("metric")
                    .col("idempotency_key")
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("usage_events_by_metric_time")
                    .table("usage_events")
                    .col("organization_id")
                    .col("metric")
                    .col("occurred_at")
                    .to_owned(),
            )
            .await?;
        grant(manager, "usage_events", "SELECT, INSERT").await?;
        enable_rls(manager, "usage_events", None).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("usage_events").if_exists().to_owned())
            .await
    }
}
