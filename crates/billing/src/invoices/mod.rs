//! [`Invoices`]: invoices and credit notes. An invoice is cut at each period boundary: the
//! fixed fee and seats of the new period in advance, the ended period's usage in arrears,
//! and whatever waits in `invoice_items` (prorations). Each line is rounded once (HALF_UP
//! to the currency's exponent); the subtotal is the sum of the rounded lines; tax is the
//! organization's rate on the subtotal, rounded once.
//!
//! An invoice is written as a draft and finalized in the same transaction: finalizing
//! allocates the next number of its kind from a counter row the transaction locks, so
//! numbers have no gaps (a rolled-back finalization gives its number back) and a
//! finalized invoice never changes (the database refuses). Corrections are credit notes,
//! numbered in their own sequence.

mod corrections;
mod issuing;
mod lines;
mod reads;

pub use crate::entity::invoice::InvoiceKind;
use crate::entity::invoice::{self, InvoiceStatus};
use crate::entity::invoice_line;
use crate::error::{Error, Result};
use crate::metering::Aggregation;
use crate::money::{Currency, Money};
use crate::plans::Catalog;
use audit::{AuditLog, NewEvent};
use chrono::{DateTime, Utc};
use kernel::{InvoiceId, SharedClock, TenantTx};
use rust_decimal::Decimal;
use sea_orm::{
    ActiveEnum, ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, IntoActiveModel,
    QueryFilter, Statement,
};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// Who issues invoices (one numbering sequence per issuer and kind).
pub const ISSUER: &str = "platform";

/// A line before it is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DraftLine {
    /// `fixed`, `seats`, `usage`, `proration_credit`, `proration_charge`, `credit`.
    pub kind: String,
    /// What it is for.
    pub description: String,
    /// How many.
    pub quantity: Decimal,
    /// Price per unit, where there is one.
    pub unit_price: Option<Decimal>,
    /// Rounded once.
    pub amount: Money,
    /// What it covers.
    pub period_start: DateTime<Utc>,
    /// End of what it covers.
    pub period_end: DateTime<Utc>,
    /// The metric a usage line prices.
    pub metric: Option<String>,
}

/// An invoice before it is stored (what `upcomingInvoice` shows).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Draft {
    /// Its currency.
    pub currency: Currency,
    /// The period it bills.
    pub period_start: DateTime<Utc>,
    /// End of that period.
    pub period_end: DateTime<Utc>,
    /// The lines.
    pub lines: Vec<DraftLine>,
    /// Tax rate on the subtotal.
    pub tax_rate: Decimal,
}

/// Subtotal, tax and total of an invoice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Totals {
    /// Sum of the rounded lines.
    pub subtotal: Money,
    /// The rate on the subtotal, rounded once.
    pub tax: Money,
    /// Subtotal plus tax.
    pub total: Money,
}

impl Draft {
    /// Subtotal (sum of rounded lines), tax (HALF_UP on the subtotal) and total.
    pub fn totals(&self) -> Result<Totals> {
        totals(
            self.currency,
            self.lines.iter().map(|l| l.amount),
            self.tax_rate,
        )
    }
}

/// Invoice-level tax: the subtotal is the sum of the (already rounded) lines; the tax is
/// `subtotal × rate` rounded once, HALF_UP.
pub fn totals(
    currency: Currency,
    lines: impl IntoIterator<Item = Money>,
    tax_rate: Decimal,
) -> Result<Totals> {
    let subtotal = Money::sum(currency, lines)?;
    let tax = Money::round_half_up(
        subtotal
            .to_decimal()
            .checked_mul(tax_rate)
            .ok_or(Error::Overflow)?,
        currency,
    )?;
    Ok(Totals {
        subtotal,
        tax,
        total: subtotal.checked_add(tax)?,
    })
}

/// A stored invoice or credit note with its lines.
#[derive(Debug, Clone)]
pub struct Issued {
    /// The invoice.
    pub invoice: invoice::Model,
    /// Its lines, in order.
    pub lines: Vec<invoice_line::Model>,
}

/// Invoices.
#[derive(Debug, Clone)]
pub struct Invoices {
    catalog: Catalog,
    audit: AuditLog,
    clock: SharedClock,
    metrics: Arc<RwLock<HashMap<String, Aggregation>>>,
    automatic: bool,
}

/// Members of the organization (what per-seat prices count).
pub(crate) async fn members(tx: &TenantTx) -> Result<u64> {
    let backend = tx.conn().get_database_backend();
    let sql = kernel::numbered(
        backend,
        "SELECT count(*) FROM memberships WHERE organization_id = $1",
    );
    let count: i64 = match tx
        .conn()
        .query_one_raw(Statement::from_sql_and_values(
            backend,
            sql,
            [tx.org_id().as_uuid().into()],
        ))
        .await?
    {
        Some(row) => row.try_get_by_index(0)?,
        None => 0,
    };
    Ok(u64::try_from(count).unwrap_or(0))
}

impl Invoices {
    /// Invoices over plans of `catalog`, audited.
    pub fn new(catalog: Catalog, audit: AuditLog, clock: SharedClock) -> Self {
        Self {
            catalog,
            audit,
            clock,
            metrics: Arc::default(),
            automatic: false,
        }
    }

    /// Finalized invoices are due for a charge at once (a card provider).
    pub fn charged_automatically(mut self, automatic: bool) -> Self {
        self.automatic = automatic;
        self
    }

    /// Marks a finalized invoice paid (`how`: the provider, `manual`, `zero_total`).
    pub(crate) async fn settle(
        &self,
        tx: &TenantTx,
        row: invoice::Model,
        how: &str,
    ) -> Result<invoice::Model> {
        if !row.status.is_owed() {
            return Err(Error::InvoiceState(row.status));
        }
        let now = self.clock.now();
        let before = row.status;
        let mut active = row.into_active_model();
        active.status = Set(InvoiceStatus::Paid);
        active.paid_at = Set(Some(now));
        active.next_payment_attempt_at = Set(None);
        active.updated_at = Set(now);
        let paid = active.update(tx.conn()).await?;
        self.audit
            .record(
                tx,
                NewEvent::new("invoice.paid", "invoice", Some(paid.id))
                    .change(
                        "status",
                        Some(before.to_value()),
                        Some(InvoiceStatus::Paid.to_value()),
                    )
                    .change("via", None::<String>, Some(how.to_owned())),
            )
            .await?;
        Ok(paid)
    }

    /// One invoice of the organization.
    pub(crate) async fn find(&self, tx: &TenantTx, id: InvoiceId) -> Result<invoice::Model> {
        tx.select::<invoice::Entity>()
            .filter(invoice::Column::Id.eq(id))
            .one(tx.conn())
            .await?
            .ok_or(Error::NotFound("invoice"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn usd(minor: i64) -> Money {
        Money::from_minor(minor, Currency::parse("USD").unwrap())
    }

    #[test]
    fn tax_is_charged_once_on_the_sum_of_rounded_lines_half_up() {
        // Lines 10.05 + 0.10 = 10.15; 10.15 × 0.19 = 1.9285 → 1.93; total 12.08.
        let t = totals(
            Currency::parse("USD").unwrap(),
            [usd(1005), usd(10)],
            Decimal::from_str("0.19").unwrap(),
        )
        .unwrap();
        assert_eq!(
            (t.subtotal.minor(), t.tax.minor(), t.total.minor()),
            (1015, 193, 1208)
        );
        // 0.50 × 0.05 = 0.025 → 0.03 (HALF_UP, not to even).
        let t = totals(
            Currency::parse("USD").unwrap(),
            [usd(50)],
            Decimal::from_str("0.05").unwrap(),
        )
        .unwrap();
        assert_eq!(t.tax.minor(), 3);
    }

    #[test]
    fn tax_in_zero_and_three_decimal_currencies() {
        let jpy = Currency::parse("JPY").unwrap();
        // 1,005 JPY × 0.1 = 100.5 → 101 JPY.
        let t = totals(
            jpy,
            [Money::from_minor(1005, jpy)],
            Decimal::from_str("0.1").unwrap(),
        )
        .unwrap();
        assert_eq!((t.tax.minor(), t.total.minor()), (101, 1106));
        let kwd = Currency::parse("KWD").unwrap();
        // 1.005 KWD × 0.15 = 0.15075 → 0.151 KWD.
        let t = totals(
            kwd,
            [Money::from_minor(1005, kwd)],
            Decimal::from_str("0.15").unwrap(),
        )
        .unwrap();
        assert_eq!((t.tax.minor(), t.total.minor()), (151, 1156));
    }
}
