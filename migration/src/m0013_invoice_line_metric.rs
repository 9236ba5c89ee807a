//! `invoice_lines.metric`: the billable metric a usage line prices, so usage reported for
//! a period after its invoice was cut can be billed as an adjustment on the next one.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("invoice_lines")
                    .add_column(ColumnDef::new("metric").text().null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("invoice_lines")
                    .drop_column("metric")
                    .to_owned(),
            )
            .await
    }
}
