//! `authz_rules.created_by`: who made a rule (a policy subject, `user:<id>` or
//! `apikey:<id>`), so deny rules are listed with their author. NULL for rules made
//! before it was recorded, and for the allow rules of custom roles.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("authz_rules")
                    .add_column(ColumnDef::new("created_by").text().null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("authz_rules")
                    .drop_column("created_by")
                    .to_owned(),
            )
            .await
    }
}
