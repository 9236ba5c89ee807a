//! The `audit_events` table.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_events")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub organization_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub seq: i64,
    pub id: Uuid,
    pub occurred_at: String,
    pub actor_type: String,
    pub actor_id: Option<String>,
    pub impersonator_id: Option<String>,
    pub action: String,
    pub target_type: String,
    pub target_id: Option<String>,
    pub outcome: String,
    pub diff: String,
    pub request_id: Option<String>,
    pub operation: Option<String>,
    pub client: Option<String>,
    pub prev_hash: String,
    pub hash: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

impl Model {
    /// The row with every column set, for an INSERT (a chained row is complete before
    /// it is written: its hash covers every value).
    pub(crate) fn insertable(self) -> ActiveModel {
        use sea_orm::ActiveValue::Set;
        ActiveModel {
            organization_id: Set(self.organization_id),
            seq: Set(self.seq),
            id: Set(self.id),
            occurred_at: Set(self.occurred_at),
            actor_type: Set(self.actor_type),
            actor_id: Set(self.actor_id),
            impersonator_id: Set(self.impersonator_id),
            action: Set(self.action),
            target_type: Set(self.target_type),
            target_id: Set(self.target_id),
            outcome: Set(self.outcome),
            diff: Set(self.diff),
            request_id: Set(self.request_id),
            operation: Set(self.operation),
            client: Set(self.client),
            prev_hash: Set(self.prev_hash),
            hash: Set(self.hash),
        }
    }
}

impl kernel::TenantScoped for Entity {
    fn organization_column() -> Column {
        Column::OrganizationId
    }
}
