//! Data processing agreements (GDPR Art. 28): the versions staff publish (immutable, with
//! their text's SHA-256 and the subprocessors), and each organization's acceptances.

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
                    .table("dpa_versions")
                    .col(uuid("id").primary_key())
                    .col(text("version").unique_key())
                    .col(text("body"))
                    .col(text("sha256"))
                    .col(text("subprocessors"))
                    .col(timestamp_with_time_zone("published_at"))
                    .to_owned(),
            )
            .await?;
        // Published once, never changed.
        grant(manager, "dpa_versions", "SELECT, INSERT").await?;
        manager
            .create_table(
                Table::create()
                    .table("dpa_acceptances")
                    .col(uuid("organization_id"))
                    .col(uuid("id"))
                    .col(uuid("dpa_version_id"))
                    .col(text("sha256"))
                    .col(uuid("accepted_by"))
                    .col(timestamp_with_time_zone("accepted_at"))
                    .primary_key(Index::create().col("organization_id").col("id"))
                    .foreign_key(
                        ForeignKey::create()
                            .from("dpa_acceptances", "organization_id")
                            .to("organizations", "id"),
                    )
                    .to_owned(),
            )
            .await?;
        grant(manager, "dpa_acceptances", "SELECT, INSERT").await?;
        enable_rls(manager, "dpa_acceptances", None).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in ["dpa_acceptances", "dpa_versions"] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
