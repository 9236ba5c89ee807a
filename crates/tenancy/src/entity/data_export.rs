//! The `data_exports` table.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "data_exports")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub requested_by: Uuid,
    pub scope: String,
    pub exported_organization_id: Option<Uuid>,
    pub status: String,
    pub created_at: DateTimeUtc,
    pub completed_at: Option<DateTimeUtc>,
    pub expires_at: DateTimeUtc,
    pub sha256: Option<String>,
    pub size_bytes: Option<i64>,
    pub error: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
