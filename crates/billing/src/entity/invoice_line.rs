//! The `invoice_lines` table.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "invoice_lines")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub organization_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub invoice_id: Uuid,
    pub position: i32,
    pub kind: String,
    pub description: String,
    pub quantity: String,
    pub unit_price: Option<String>,
    pub amount_minor: i64,
    pub period_start: DateTimeUtc,
    pub period_end: DateTimeUtc,
    pub metric: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

impl kernel::TenantScoped for Entity {
    fn organization_column() -> Column {
        Column::OrganizationId
    }
}
