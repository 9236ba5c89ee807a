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
    pub kind: InvoiceKind,
    pub status: InvoiceStatus,
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

/// What a billing document is: an invoice, or a credit note correcting one (numbered in
/// its own sequence). A stored name outside these fails the row's read (an internal
/// error), never a default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "Text")]
pub enum InvoiceKind {
    /// An invoice.
    #[sea_orm(string_value = "invoice")]
    Invoice,
    /// A credit note.
    #[sea_orm(string_value = "credit_note")]
    CreditNote,
}

/// Where an invoice or credit note stands. A stored name outside these fails the row's
/// read (an internal error), never a default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "Text")]
pub enum InvoiceStatus {
    /// Being written; never shown (finalized in the transaction that writes it).
    #[sea_orm(string_value = "draft")]
    Draft,
    /// Numbered and immutable; due.
    #[sea_orm(string_value = "finalized")]
    Finalized,
    /// Paid.
    #[sea_orm(string_value = "paid")]
    Paid,
    /// Cancelled (corrected by a credit note).
    #[sea_orm(string_value = "void")]
    Void,
    /// Every retry failed; still payable.
    #[sea_orm(string_value = "uncollectible")]
    Uncollectible,
}

impl InvoiceStatus {
    /// The statuses of an invoice still owed: finalized, or given up on but payable.
    pub const OWED: [Self; 2] = [Self::Finalized, Self::Uncollectible];

    /// Whether it is still owed (a charge or a payment settles it).
    pub fn is_owed(self) -> bool {
        Self::OWED.contains(&self)
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

impl kernel::TenantScoped for Entity {
    fn organization_column() -> Column {
        Column::OrganizationId
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sea_orm::{ActiveModelTrait, ConnectionTrait, Database, Schema};

    /// A stored status or kind outside its enum fails the row's read (an internal error
    /// where it surfaces), never a default. (The database's triggers refuse such an
    /// update on a finalized invoice, so the table here has none.)
    #[tokio::test]
    async fn a_stored_name_outside_the_enum_fails_the_read() {
        let db = Database::connect("sqlite::memory:").await.unwrap();
        let backend = db.get_database_backend();
        let create = Schema::new(backend).create_table_from_entity(Entity);
        db.execute_raw(backend.build(&create)).await.unwrap();
        let now = chrono::Utc::now();
        let row = Model {
            organization_id: Uuid::nil(),
            id: Uuid::now_v7(),
            number: Some("INV-000001".into()),
            kind: InvoiceKind::Invoice,
            status: InvoiceStatus::Finalized,
            currency: "EUR".into(),
            period_start: now,
            period_end: now,
            subtotal_minor: 100,
            tax_rate: "0".into(),
            tax_minor: 0,
            total_minor: 100,
            credit_of: None,
            subscription_id: None,
            finalized_at: Some(now),
            paid_at: None,
            voided_at: None,
            payment_attempts: 0,
            next_payment_attempt_at: None,
            created_at: now,
            updated_at: now,
        };
        ActiveModel::from(row.clone()).insert(&db).await.unwrap();
        let read = Entity::find().one(&db).await.unwrap().unwrap();
        assert_eq!((read.kind, read.status), (row.kind, row.status));
        for (column, value, good) in [
            ("status", "limbo", "finalized"),
            ("status", "Finalized", "finalized"),
            ("kind", "receipt", "invoice"),
        ] {
            let set = |value: &str| format!("UPDATE invoices SET {column} = '{value}'");
            db.execute_unprepared(&set(value)).await.unwrap();
            assert!(Entity::find().one(&db).await.is_err(), "{column} = {value}");
            db.execute_unprepared(&set(good)).await.unwrap();
            assert!(Entity::find().one(&db).await.is_ok(), "{column} = {good}");
        }
    }
}
