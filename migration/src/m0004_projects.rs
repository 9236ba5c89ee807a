//! Projects: the first business records, tenant-scoped and under RLS.

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
                    .table("projects")
                    .col(uuid("organization_id"))
                    .col(uuid("id"))
                    .col(text("name"))
                    .col(text("description"))
                    .col(boolean("archived"))
                    .col(uuid("created_by"))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone("updated_at"))
                    .primary_key(Index::create().col("organization_id").col("id"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("projects_organization_fk")
                            .from("projects", "organization_id")
                            .to("organizations", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        grant(manager, "projects", "SELECT, INSERT, UPDATE, DELETE").await?;
        enable_rls(manager, "projects", None).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("projects").if_exists().to_owned())
            .await
    }
}
