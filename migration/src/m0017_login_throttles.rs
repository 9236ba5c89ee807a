//! `login_throttles`: one counter per throttling scope (an account from one address, an
//! address, an account from anywhere) in a fixed window. An attempt is counted by one
//! upsert that returns the new count, so parallel attempts each see a distinct count
//! and no more than the limit get to the password check (counting failures after the
//! check let 60 parallel guesses through a limit of 10).

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
                    .table("login_throttles")
                    .col(text("scope").primary_key())
                    .col(timestamp_with_time_zone("window_started_at"))
                    .col(big_integer("attempts"))
                    .to_owned(),
            )
            .await?;
        grant(manager, "login_throttles", "SELECT, INSERT, UPDATE, DELETE").await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("login_throttles").to_owned())
            .await
    }
}
