//! Indexes for the "owned by me" branch of list filters: with them, PostgreSQL combines
//! granted, granted-on-the-parent and owned records as a bitmap OR of index scans, and
//! SQLite uses its OR optimization, instead of walking the table in id order.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (name, table, owner) in [
            ("projects_by_creator", "projects", "created_by"),
            ("documents_by_author", "documents", "author_id"),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(table)
                        .col("organization_id")
                        .col(owner)
                        .col("id")
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (name, table) in [
            ("projects_by_creator", "projects"),
            ("documents_by_author", "documents"),
        ] {
            manager
                .drop_index(Index::drop().name(name).table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
