//! Billing: the catalog (platform-wide: `billing_metrics`, `plans`, `plan_versions`,
//! insert-only for the application role, and triggers on SQLite, so a published version
//! never changes), each organization's `subscriptions` row (one per organization), and
//! `invoice_items` waiting for the next invoice (proration credits and charges).

use crate::tenant_table::{enable_rls, grant};
use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;
use sea_orm_migration::sea_orm::DbBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

fn organization_fk(table: &'static str) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .name(format!("{table}_organization_fk"))
        .from(table, "organization_id")
        .to("organizations", "id")
        .on_delete(ForeignKeyAction::Cascade)
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("billing_metrics")
                    .col(text("code").primary_key())
                    .col(text("name"))
                    // JSON of `billing::Aggregation`.
                    .col(text("aggregation"))
                    .col(timestamp_with_time_zone("created_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("plans")
                    .col(uuid("id").primary_key())
                    .col(text("code").unique_key())
                    .col(timestamp_with_time_zone("created_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("plan_versions")
                    .col(uuid("id").primary_key())
                    .col(uuid("plan_id"))
                    .col(integer("version"))
                    // JSON of `billing::PlanDefinition`.
                    .col(text("definition"))
                    .col(timestamp_with_time_zone("published_at"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("plan_versions_plan_fk")
                            .from("plan_versions", "plan_id")
                            .to("plans", "id"),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("plan_versions_plan_version_key")
                    .table("plan_versions")
                    .col("plan_id")
                    .col("version")
                    .unique()
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table("subscriptions")
                    .col(uuid("organization_id").primary_key())
                    .col(uuid("id"))
                    .col(uuid("plan_version_id"))
                    .col(text("status"))
                    // IANA zone the period boundaries are computed in.
                    .col(text("time_zone"))
                    // Local date the monthly periods are anchored on.
                    .col(date("billing_anchor"))
                    .col(timestamp_with_time_zone_null("trial_ends_at"))
                    .col(timestamp_with_time_zone("current_period_start"))
                    .col(timestamp_with_time_zone("current_period_end"))
                    .col(uuid_null("scheduled_plan_version_id"))
                    .col(boolean("cancel_at_period_end"))
                    .col(timestamp_with_time_zone_null("canceled_at"))
                    // Exact decimal as text ("0.19"): tax on the invoice subtotal.
                    .col(text("tax_rate"))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone("updated_at"))
                    .foreign_key(&mut organization_fk("subscriptions"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("subscriptions_plan_version_fk")
                            .from("subscriptions", "plan_version_id")
                            .to("plan_versions", "id"),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("invoice_items")
                    .col(uuid("organization_id"))
                    .col(uuid("id"))
                    .col(text("kind"))
                    .col(text("description"))
                    .col(text("currency"))
                    // Integer minor units of `currency`, rounded once (HALF_UP).
                    .col(big_integer("amount_minor"))
                    .col(timestamp_with_time_zone("period_start"))
                    .col(timestamp_with_time_zone("period_end"))
                    // Set when an invoice takes the item.
                    .col(uuid_null("invoice_id"))
                    .col(timestamp_with_time_zone("created_at"))
                    .primary_key(Index::create().col("organization_id").col("id"))
                    .foreign_key(&mut organization_fk("invoice_items"))
                    .to_owned(),
            )
            .await?;

        for table in ["billing_metrics", "plans", "plan_versions"] {
            grant(manager, table, "SELECT, INSERT").await?;
        }
        grant(manager, "subscriptions", "SELECT, INSERT, UPDATE").await?;
        enable_rls(manager, "subscriptions", None).await?;
        grant(manager, "invoice_items", "SELECT, INSERT, UPDATE").await?;
        enable_rls(manager, "invoice_items", None).await?;
        if manager.get_database_backend() == DbBackend::Sqlite {
            // PostgreSQL refuses through grants; SQLite has none.
            for table in ["billing_metrics", "plans", "plan_versions"] {
                manager
                    .get_connection()
                    .execute_unprepared(&format!(
                        "CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table}
                         BEGIN SELECT RAISE(ABORT, '{table} are immutable (UPDATE refused)'); END;
                         CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table}
                         BEGIN SELECT RAISE(ABORT, '{table} are immutable (DELETE refused)'); END;"
                    ))
                    .await?;
            }
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            "invoice_items",
            "subscriptions",
            "plan_versions",
            "plans",
            "billing_metrics",
        ] {
            manager
                .drop_table(Table::drop().table(table).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}
