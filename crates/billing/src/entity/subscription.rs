//! The `subscriptions` table: one row per subscribed organization.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "subscriptions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub organization_id: Uuid,
    pub id: Uuid,
    pub plan_version_id: Uuid,
    pub status: Status,
    pub time_zone: String,
    pub billing_anchor: Date,
    pub trial_ends_at: Option<DateTimeUtc>,
    pub current_period_start: DateTimeUtc,
    pub current_period_end: DateTimeUtc,
    pub scheduled_plan_version_id: Option<Uuid>,
    pub cancel_at_period_end: bool,
    pub canceled_at: Option<DateTimeUtc>,
    pub tax_rate: String,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

/// Where a subscription is in its life. A stored name outside these fails the row's read
/// (an internal error), never a default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "Text")]
pub enum Status {
    /// Free until the trial ends.
    #[sea_orm(string_value = "trialing")]
    Trialing,
    /// Paid up.
    #[sea_orm(string_value = "active")]
    Active,
    /// A payment failed; full access while it is retried.
    #[sea_orm(string_value = "past_due")]
    PastDue,
    /// Every retry failed: read-only until paid.
    #[sea_orm(string_value = "suspended")]
    Suspended,
    /// Ended; the organization is back on the free allowance.
    #[sea_orm(string_value = "canceled")]
    Canceled,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

impl kernel::TenantScoped for Entity {
    fn organization_column() -> Column {
        Column::OrganizationId
    }
}
