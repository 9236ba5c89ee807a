//! Usage events are deleted by the retention run once the period they belong to is
//! invoiced, its grace is over and the data map's retention after that has passed: the
//! application role may delete them (within its organization, under Row-Level Security).

use crate::tenant_table::grant;
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        grant(manager, "usage_events", "DELETE").await
    }

    async fn down(&self, _manager: &SchemaManager) -> Result<(), DbErr> {
        Ok(())
    }
}
