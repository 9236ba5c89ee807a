//! `data_exports`: exports of a person's or an organization's data (GDPR Art. 15 and
//! 20), prepared in the background into a file and downloadable by whoever asked until
//! `expires_at`, when the retention run deletes the file and the row. A platform table
//! (a person's export spans organizations), so the organization an export is of is
//! `exported_organization_id`, not a tenant key.

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
                    .table("data_exports")
                    .col(uuid("id").primary_key())
                    .col(uuid("requested_by"))
                    // `person` or `organization`.
                    .col(text("scope"))
                    .col(uuid_null("exported_organization_id"))
                    // `pending`, `ready` or `failed`.
                    .col(text("status"))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone_null("completed_at"))
                    .col(timestamp_with_time_zone("expires_at"))
                    .col(text_null("sha256"))
                    .col(big_integer_null("size_bytes"))
                    .col(text_null("error"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("data_exports_requested_by")
                    .table("data_exports")
                    .col("requested_by")
                    .col("id")
                    .to_owned(),
            )
            .await?;
        grant(manager, "data_exports", "SELECT, INSERT, UPDATE, DELETE").await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("data_exports").to_owned())
            .await
    }
}
