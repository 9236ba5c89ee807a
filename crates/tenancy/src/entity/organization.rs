//! The `organizations` table.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "organizations")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub name: String,
    pub slug: String,
    pub created_at: DateTimeUtc,
    /// An owner asked for the organization's deletion (and who).
    pub deletion_requested_at: Option<DateTimeUtc>,
    pub deletion_requested_by: Option<Uuid>,
    /// When the purge may run; set while deletion is pending.
    pub deletion_scheduled_at: Option<DateTimeUtc>,
    /// The purge ran; the row is a tombstone kept for retained invoices.
    pub purged_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
