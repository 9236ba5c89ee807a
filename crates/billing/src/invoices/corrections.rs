//! Corrections: voiding an invoice, and credit notes against one.

use super::{DraftLine, InvoiceKind, Invoices};
use crate::entity::invoice::{self, InvoiceStatus};
use crate::error::{Error, Result};
use crate::money::{Currency, Money};
use audit::NewEvent;
use kernel::{InvoiceId, TenantTx};
use rust_decimal::Decimal;
use sea_orm::{ActiveModelTrait, ActiveValue::Set, ColumnTrait, IntoActiveModel, QueryFilter};
use uuid::Uuid;

impl Invoices {
    /// Voids a finalized, unpaid invoice (an operator's correction before payment).
    pub async fn void(&self, tx: &TenantTx, id: InvoiceId) -> Result<invoice::Model> {
        let row = self.find(tx, id).await?;
        if !row.status.is_owed() {
            return Err(Error::InvoiceState(row.status));
        }
        let now = self.clock.now();
        let mut active = row.into_active_model();
        active.status = Set(InvoiceStatus::Void);
        active.voided_at = Set(Some(now));
        active.next_payment_attempt_at = Set(None);
        active.updated_at = Set(now);
        let voided = active.update(tx.conn()).await?;
        self.audit
            .record(tx, NewEvent::new("invoice.voided", "invoice", Some(id)))
            .await?;
        Ok(voided)
    }

    /// Issues a credit note against a finalized invoice: `amount` (major units, positive;
    /// the whole remaining total when `None`), never more than what earlier credit notes
    /// left. It is numbered in its own sequence and never changes either.
    pub async fn credit_note(
        &self,
        tx: &TenantTx,
        id: InvoiceId,
        amount: Option<Decimal>,
        reason: &str,
    ) -> Result<invoice::Model> {
        let original = self.find(tx, id).await?;
        if original.kind != InvoiceKind::Invoice
            || matches!(original.status, InvoiceStatus::Draft | InvoiceStatus::Void)
        {
            return Err(Error::InvoiceState(original.status));
        }
        let currency = Currency::parse(&original.currency)?;
        let credited: i64 = tx
            .select::<invoice::Entity>()
            .filter(invoice::Column::CreditOf.eq(id))
            .all(tx.conn())
            .await?
            .iter()
            .map(|c| -c.total_minor)
            .sum();
        let remaining = original.total_minor - credited;
        let minor = match amount {
            Some(amount) => Money::round_half_up(amount, currency)?.minor(),
            None => remaining,
        };
        if minor <= 0 || minor > remaining {
            return Err(Error::Invalid {
                field: "amount",
                reason: format!(
                    "between 0 and the {} {} not yet credited",
                    Money::from_minor(remaining, currency).to_decimal(),
                    currency.code()
                ),
            });
        }
        let now = self.clock.now();
        let credit = Money::from_minor(-minor, currency);
        let row = invoice::Model {
            organization_id: original.organization_id,
            id: Uuid::now_v7(),
            number: None,
            kind: InvoiceKind::CreditNote,
            status: InvoiceStatus::Draft,
            currency: original.currency.clone(),
            period_start: original.period_start,
            period_end: original.period_end,
            subtotal_minor: credit.minor(),
            tax_rate: "0".into(),
            tax_minor: 0,
            total_minor: credit.minor(),
            credit_of: Some(id.as_uuid()),
            subscription_id: original.subscription_id,
            finalized_at: None,
            paid_at: None,
            voided_at: None,
            payment_attempts: 0,
            next_payment_attempt_at: None,
            created_at: now,
            updated_at: now,
        };
        let lines = [DraftLine {
            kind: "credit".into(),
            description: format!(
                "Credit for {}: {reason}",
                original.number.clone().unwrap_or_default()
            ),
            quantity: Decimal::ONE,
            unit_price: None,
            amount: credit,
            period_start: original.period_start,
            period_end: original.period_end,
            metric: None,
        }];
        self.store(tx, &row, &lines).await?;
        self.finalize(tx, row).await
    }
}
