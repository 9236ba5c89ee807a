//! The `usage_events` table.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "usage_events")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub organization_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub metric: String,
    pub idempotency_key: String,
    pub occurred_at: DateTimeUtc,
    pub received_at: DateTimeUtc,
    pub value: String,
    pub properties: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

impl kernel::TenantScoped for Entity {
    fn organization_column() -> Column {
        Column::OrganizationId
    }
}
