//! The `organization_purges` table: the deletion ledger of purged organizations.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "organization_purges")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub purged_organization_id: Uuid,
    pub started_at: DateTimeUtc,
    /// The steps done, in order: `table=rows`, comma separated.
    pub steps: String,
    /// Until when one run holds the purge.
    pub claimed_until: Option<DateTimeUtc>,
    pub completed_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
