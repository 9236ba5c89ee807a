//! Sessions are deleted by the retention run once they ended longer ago than the data
//! map keeps them: the application role gets DELETE on `sessions` back (it still changes
//! only `rotated_at` and `revoked_at` of a live one).

use crate::tenant_table::grant;
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        grant(manager, "sessions", "DELETE").await
    }

    async fn down(&self, _manager: &SchemaManager) -> Result<(), DbErr> {
        Ok(())
    }
}
