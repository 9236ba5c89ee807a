//! The `dpa_acceptances` table: which organization accepted which agreement text.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "dpa_acceptances")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub organization_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub dpa_version_id: Uuid,
    pub sha256: String,
    pub accepted_by: Uuid,
    pub accepted_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

impl kernel::TenantScoped for Entity {
    fn organization_column() -> Column {
        Column::OrganizationId
    }
}
