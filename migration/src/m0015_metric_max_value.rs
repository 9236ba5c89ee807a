//! `billing_metrics.max_value`: the largest value one usage event of the metric may
//! report (a decimal string; NULL means the platform's default, 10^12).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("billing_metrics")
                    .add_column(ColumnDef::new("max_value").text().null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("billing_metrics")
                    .drop_column("max_value")
                    .to_owned(),
            )
            .await
    }
}
