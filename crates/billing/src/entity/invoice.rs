//! The `invoices` table: invoices and credit notes (immutable once finalized).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "invoices")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub organization_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub number: Option<String>,
    pub kind: String,
    pub status: String,
    pub currency: String,
    pub period_start: DateTimeUtc,
    pub period_end: DateTimeUtc,
    pub subtotal_minor: i64,
    pub tax_rate: String,
    pub tax_minor: i64,
    pub total_minor: i64,
    pub credit_of: Option<Uuid>,
    pub subscription_id: Option<Uuid>,
    pub finalized_at: Option<DateTimeUtc>,
    pub paid_at: Option<DateTimeUtc>,
    pub voided_at: Option<DateTimeUtc>,
    pub payment_attempts: i32,
    pub next_payment_attempt_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

impl kernel::TenantScoped for Entity {
    fn organization_column() -> Column {
        Column::OrganizationId
    }
}
