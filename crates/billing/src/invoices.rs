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

use crate::catalog::{Charge, MetricDef, PlanDefinition};
use crate::entity::{invoice, invoice_item, invoice_line};
use crate::error::{Error, Result};
use crate::metering::Aggregation;
use crate::money::{Currency, Money};
use crate::plans::Catalog;
use audit::{AuditLog, NewEvent};
use authz::{Action, Permit, ResourceType};
use chrono::{DateTime, Utc};
use kernel::{Page, PageRequest, SharedClock, TenantTx};
use rust_decimal::Decimal;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel,
    QueryFilter, QueryOrder, Statement,
};
use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{Arc, RwLock};
use uuid::Uuid;

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

fn line(
    kind: &str,
    description: String,
    quantity: Decimal,
    unit_price: Option<Decimal>,
    exact: Decimal,
    currency: Currency,
    period: (DateTime<Utc>, DateTime<Utc>),
) -> Result<DraftLine> {
    Ok(DraftLine {
        kind: kind.to_owned(),
        description,
        quantity,
        unit_price,
        amount: Money::round_half_up(exact, currency)?,
        period_start: period.0,
        period_end: period.1,
        metric: None,
    })
}

/// A usage line whose quantity or amount does not fit (an organization that reported
/// absurd quantities) is left off the invoice and reported, rather than failing the
/// invoice: the rest of the invoice is cut, and the organization's later invoices are not
/// held up by it. An operator bills it by hand (a credit note or a manual charge).
fn unpriced(tx: &TenantTx, metric: &str, period: (DateTime<Utc>, DateTime<Utc>)) {
    tracing::error!(
        org.id = %tx.org_id(),
        metric,
        period.start = %period.0,
        period.end = %period.1,
        "a usage line could not be priced (its amount does not fit) and was left off the invoice"
    );
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

    async fn aggregation(&self, tx: &TenantTx, metric: &str) -> Result<Aggregation> {
        if let Some(found) = self
            .metrics
            .read()
            .ok()
            .and_then(|m| m.get(metric).cloned())
        {
            return Ok(found);
        }
        let metrics: Vec<MetricDef> = self.catalog.metrics(tx.conn()).await?;
        let mut cache = self.metrics.write().map_err(|_| Error::Overflow)?;
        for metric in metrics {
            cache.insert(metric.code, metric.aggregation);
        }
        cache.get(metric).cloned().ok_or_else(|| Error::Invalid {
            field: "metric",
            reason: format!("unknown metric `{metric}`"),
        })
    }

    /// The fixed fee and seats of `plan` for `[start, end)`, billed in advance.
    pub(crate) async fn advance_lines(
        &self,
        tx: &TenantTx,
        plan: &PlanDefinition,
        period: (DateTime<Utc>, DateTime<Utc>),
    ) -> Result<Vec<DraftLine>> {
        let currency = plan.currency()?;
        let mut lines = Vec::new();
        for charge in &plan.charges {
            match charge {
                Charge::Fixed { amount } => lines.push(line(
                    "fixed",
                    format!("{} plan", plan.name),
                    Decimal::ONE,
                    Some(*amount),
                    *amount,
                    currency,
                    period,
                )?),
                Charge::PerSeat { unit_price } => {
                    let seats = Decimal::from(members(tx).await?);
                    let exact = unit_price.checked_mul(seats).ok_or(Error::Overflow)?;
                    lines.push(line(
                        "seats",
                        format!("{seats} seat(s) × {}", unit_price.normalize()),
                        seats,
                        Some(*unit_price),
                        exact,
                        currency,
                        period,
                    )?);
                }
                Charge::Usage { .. } => {}
            }
        }
        Ok(lines)
    }

    /// The usage of `[start, end)` priced by `plan`, billed in arrears. Zero usage makes
    /// no line.
    pub(crate) async fn usage_lines(
        &self,
        tx: &TenantTx,
        plan: &PlanDefinition,
        period: (DateTime<Utc>, DateTime<Utc>),
    ) -> Result<Vec<DraftLine>> {
        let currency = plan.currency()?;
        let mut lines = Vec::new();
        if period.0 >= period.1 {
            return Ok(lines);
        }
        for charge in &plan.charges {
            let Charge::Usage { metric, price } = charge else {
                continue;
            };
            let aggregation = self.aggregation(tx, metric).await?;
            let quantity =
                crate::usage::period_quantity(tx, metric, period.0, period.1, &aggregation).await;
            let quantity = match quantity {
                Err(Error::Overflow) => {
                    unpriced(tx, metric, period);
                    continue;
                }
                other => other?,
            };
            if quantity.is_zero() {
                continue;
            }
            let priced = price.amount(quantity).and_then(|exact| {
                line(
                    "usage",
                    format!("{metric}: {}", quantity.normalize()),
                    quantity,
                    None,
                    exact,
                    currency,
                    period,
                )
            });
            let mut usage = match priced {
                Err(Error::Overflow) => {
                    unpriced(tx, metric, period);
                    continue;
                }
                other => other?,
            };
            usage.metric = Some(metric.clone());
            lines.push(usage);
        }
        Ok(lines)
    }

    /// Usage reported for an invoiced period after its invoice was cut (`period`, the
    /// one that ended at `period.1`): per metric, what the quantity is now less what was
    /// billed, priced at the margin (`amount(now) − amount(billed)`, so tiers stay
    /// right), as an adjustment line on the next invoice. A finalized invoice never
    /// changes.
    pub(crate) async fn late_usage_lines(
        &self,
        tx: &TenantTx,
        plan: &PlanDefinition,
        period: (DateTime<Utc>, DateTime<Utc>),
    ) -> Result<Vec<DraftLine>> {
        let currency = plan.currency()?;
        let billed_lines = tx
            .select::<invoice_line::Entity>()
            .filter(invoice_line::Column::Kind.is_in(["usage", "usage_adjustment"]))
            .filter(invoice_line::Column::PeriodStart.eq(period.0))
            .filter(invoice_line::Column::PeriodEnd.eq(period.1))
            .all(tx.conn())
            .await?;
        let mut lines = Vec::new();
        for charge in &plan.charges {
            let Charge::Usage { metric, price } = charge else {
                continue;
            };
            let mut billed = Decimal::ZERO;
            for l in billed_lines
                .iter()
                .filter(|l| l.metric.as_deref() == Some(metric))
            {
                billed = billed
                    .checked_add(Decimal::from_str(&l.quantity).unwrap_or_default())
                    .ok_or(Error::Overflow)?;
            }
            let aggregation = self.aggregation(tx, metric).await?;
            let now =
                crate::usage::period_quantity(tx, metric, period.0, period.1, &aggregation).await;
            let now = match now {
                Err(Error::Overflow) => {
                    unpriced(tx, metric, period);
                    continue;
                }
                other => other?,
            };
            if now <= billed {
                continue;
            }
            let late = now - billed;
            let priced = price
                .amount(now)
                .and_then(|now| Ok((now, price.amount(billed)?)))
                .and_then(|(now, billed)| now.checked_sub(billed).ok_or(Error::Overflow))
                .and_then(|exact| {
                    line(
                        "usage_adjustment",
                        format!(
                            "{metric}: {} reported late for {} – {}",
                            late.normalize(),
                            period.0.date_naive(),
                            period.1.date_naive()
                        ),
                        late,
                        None,
                        exact,
                        currency,
                        period,
                    )
                });
            let mut adjustment = match priced {
                Err(Error::Overflow) => {
                    unpriced(tx, metric, period);
                    continue;
                }
                other => other?,
            };
            adjustment.metric = Some(metric.clone());
            lines.push(adjustment);
        }
        Ok(lines)
    }

    /// Items waiting for the next invoice (prorations), as lines, and their ids.
    pub(crate) async fn pending_lines(&self, tx: &TenantTx) -> Result<(Vec<DraftLine>, Vec<Uuid>)> {
        let items = tx
            .select::<invoice_item::Entity>()
            .filter(invoice_item::Column::InvoiceId.is_null())
            .order_by_asc(invoice_item::Column::Id)
            .all(tx.conn())
            .await?;
        let mut lines = Vec::with_capacity(items.len());
        for item in &items {
            lines.push(DraftLine {
                kind: item.kind.clone(),
                description: item.description.clone(),
                quantity: Decimal::ONE,
                unit_price: None,
                amount: Money::from_minor(item.amount_minor, Currency::parse(&item.currency)?),
                period_start: item.period_start,
                period_end: item.period_end,
                metric: None,
            });
        }
        Ok((lines, items.iter().map(|i| i.id).collect()))
    }

    /// Stores `draft` and finalizes it (numbered); the `items` it took are marked taken.
    /// A total of zero or less is paid at once.
    pub(crate) async fn issue(
        &self,
        tx: &TenantTx,
        subscription_id: Option<Uuid>,
        draft: &Draft,
        items: &[Uuid],
    ) -> Result<invoice::Model> {
        let totals = draft.totals()?;
        let now = self.clock.now();
        let row = invoice::Model {
            organization_id: tx.org_id().as_uuid(),
            id: Uuid::now_v7(),
            number: None,
            kind: "invoice".into(),
            status: "draft".into(),
            currency: draft.currency.code().to_owned(),
            period_start: draft.period_start,
            period_end: draft.period_end,
            subtotal_minor: totals.subtotal.minor(),
            tax_rate: draft.tax_rate.normalize().to_string(),
            tax_minor: totals.tax.minor(),
            total_minor: totals.total.minor(),
            credit_of: None,
            subscription_id,
            finalized_at: None,
            paid_at: None,
            voided_at: None,
            payment_attempts: 0,
            next_payment_attempt_at: None,
            created_at: now,
            updated_at: now,
        };
        self.store(tx, &row, &draft.lines).await?;
        for item in items {
            invoice_item::Entity::update_many()
                .col_expr(
                    invoice_item::Column::InvoiceId,
                    sea_orm::sea_query::Expr::value(row.id),
                )
                .filter(invoice_item::Column::OrganizationId.eq(tx.org_id().as_uuid()))
                .filter(invoice_item::Column::Id.eq(*item))
                .exec(tx.conn())
                .await?;
        }
        let mut finalized = self.finalize(tx, row).await?;
        if finalized.total_minor <= 0 {
            finalized = self.settle(tx, finalized, "zero_total").await?;
        }
        Ok(finalized)
    }

    async fn store(&self, tx: &TenantTx, row: &invoice::Model, lines: &[DraftLine]) -> Result<()> {
        invoice::Entity::insert(row.clone().into_active_model())
            .exec_without_returning(tx.conn())
            .await?;
        for (position, l) in lines.iter().enumerate() {
            invoice_line::Entity::insert(invoice_line::ActiveModel {
                organization_id: Set(row.organization_id),
                id: Set(Uuid::now_v7()),
                invoice_id: Set(row.id),
                position: Set(i32::try_from(position).unwrap_or(i32::MAX)),
                kind: Set(l.kind.clone()),
                description: Set(l.description.clone()),
                quantity: Set(l.quantity.normalize().to_string()),
                unit_price: Set(l.unit_price.map(|p| p.normalize().to_string())),
                amount_minor: Set(l.amount.minor()),
                period_start: Set(l.period_start),
                period_end: Set(l.period_end),
                metric: Set(l.metric.clone()),
            })
            .exec_without_returning(tx.conn())
            .await?;
        }
        Ok(())
    }

    /// The next number of `kind` for the issuer: the counter row is locked until the
    /// transaction ends, so numbers are handed out in commit order without gaps.
    async fn next_number(&self, tx: &TenantTx, kind: &str) -> Result<i64> {
        let backend = tx.conn().get_database_backend();
        let insert = kernel::numbered(
            backend,
            "INSERT INTO invoice_numbers (issuer, kind, next_number) VALUES ($1, $2, 1) \
             ON CONFLICT (issuer, kind) DO NOTHING",
        );
        let update = kernel::numbered(
            backend,
            "UPDATE invoice_numbers SET next_number = next_number + 1 \
             WHERE issuer = $1 AND kind = $2 RETURNING next_number - 1",
        );
        let values = || -> [sea_orm::Value; 2] { [ISSUER.into(), kind.into()] };
        tx.conn()
            .execute_raw(Statement::from_sql_and_values(backend, insert, values()))
            .await?;
        let row = tx
            .conn()
            .query_one_raw(Statement::from_sql_and_values(backend, update, values()))
            .await?
            .ok_or(Error::NotFound("invoice number counter"))?;
        Ok(row.try_get_by_index(0)?)
    }

    async fn finalize(&self, tx: &TenantTx, row: invoice::Model) -> Result<invoice::Model> {
        let (prefix, action) = if row.kind == "credit_note" {
            ("CN", "credit_note.issued")
        } else {
            ("INV", "invoice.finalized")
        };
        let number = format!("{prefix}-{:06}", self.next_number(tx, &row.kind).await?);
        let now = self.clock.now();
        let mut active = row.clone().into_active_model();
        active.number = Set(Some(number.clone()));
        active.status = Set("finalized".into());
        active.finalized_at = Set(Some(now));
        if self.automatic && row.kind == "invoice" && row.total_minor > 0 {
            active.next_payment_attempt_at = Set(Some(now));
        }
        active.updated_at = Set(now);
        let finalized = active.update(tx.conn()).await?;
        self.audit
            .record(
                tx,
                NewEvent::new(action, "invoice", Some(finalized.id))
                    .change("number", None::<String>, Some(number))
                    .change("total_minor", None::<i64>, Some(finalized.total_minor))
                    .change("currency", None::<String>, Some(finalized.currency.clone())),
            )
            .await?;
        Ok(finalized)
    }

    /// Marks a finalized invoice paid (`how`: the provider, `manual`, `zero_total`).
    pub(crate) async fn settle(
        &self,
        tx: &TenantTx,
        row: invoice::Model,
        how: &str,
    ) -> Result<invoice::Model> {
        if !matches!(row.status.as_str(), "finalized" | "uncollectible") {
            return Err(Error::InvoiceState(row.status));
        }
        let now = self.clock.now();
        let before = row.status.clone();
        let mut active = row.into_active_model();
        active.status = Set("paid".into());
        active.paid_at = Set(Some(now));
        active.next_payment_attempt_at = Set(None);
        active.updated_at = Set(now);
        let paid = active.update(tx.conn()).await?;
        self.audit
            .record(
                tx,
                NewEvent::new("invoice.paid", "invoice", Some(paid.id))
                    .change("status", Some(before), Some("paid".to_owned()))
                    .change("via", None::<String>, Some(how.to_owned())),
            )
            .await?;
        Ok(paid)
    }

    /// One invoice of the organization.
    pub(crate) async fn find(&self, tx: &TenantTx, id: Uuid) -> Result<invoice::Model> {
        tx.select::<invoice::Entity>()
            .filter(invoice::Column::Id.eq(id))
            .one(tx.conn())
            .await?
            .ok_or(Error::NotFound("invoice"))
    }

    /// One issued invoice or credit note of the organization, with its lines.
    pub async fn issued(&self, tx: &TenantTx, permit: &Permit, id: Uuid) -> Result<Issued> {
        permit.ensure(tx, ResourceType::Billing, Action::Read, None)?;
        let invoice = self.find(tx, id).await?;
        if invoice.status == "draft" {
            return Err(Error::NotFound("invoice"));
        }
        let lines = tx
            .select::<invoice_line::Entity>()
            .filter(invoice_line::Column::InvoiceId.eq(id))
            .order_by_asc(invoice_line::Column::Position)
            .all(tx.conn())
            .await?;
        Ok(Issued { invoice, lines })
    }

    /// A page of invoices (`kind` `invoice`) or credit notes (`credit_note`), newest first, with
    /// their lines. Owners and billing admins.
    pub async fn list(
        &self,
        tx: &TenantTx,
        permit: &Permit,
        kind: &str,
        (page, order): (&PageRequest, kernel::ListOrder),
    ) -> Result<Page<Issued>> {
        permit.ensure(tx, ResourceType::Billing, Action::Read, None)?;
        let select = tx
            .select::<invoice::Entity>()
            .filter(invoice::Column::Kind.eq(kind))
            .filter(invoice::Column::Status.ne("draft"));
        let invoices = kernel::page::keyset_in(select, invoice::Column::Id, page, order)
            .all(tx.conn())
            .await?;
        let invoices = Page::from_overfetch(invoices, page);
        let ids: Vec<Uuid> = invoices.items.iter().map(|i| i.id).collect();
        let mut lines: HashMap<Uuid, Vec<invoice_line::Model>> = HashMap::new();
        if !ids.is_empty() {
            for l in tx
                .select::<invoice_line::Entity>()
                .filter(invoice_line::Column::InvoiceId.is_in(ids))
                .order_by_asc(invoice_line::Column::Position)
                .all(tx.conn())
                .await?
            {
                lines.entry(l.invoice_id).or_default().push(l);
            }
        }
        Ok(invoices.map(|invoice| Issued {
            lines: lines.remove(&invoice.id).unwrap_or_default(),
            invoice,
        }))
    }

    /// Voids a finalized, unpaid invoice (an operator's correction before payment).
    pub async fn void(&self, tx: &TenantTx, id: Uuid) -> Result<invoice::Model> {
        let row = self.find(tx, id).await?;
        if !matches!(row.status.as_str(), "finalized" | "uncollectible") {
            return Err(Error::InvoiceState(row.status));
        }
        let now = self.clock.now();
        let mut active = row.into_active_model();
        active.status = Set("void".into());
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
        id: Uuid,
        amount: Option<Decimal>,
        reason: &str,
    ) -> Result<invoice::Model> {
        let original = self.find(tx, id).await?;
        if original.kind != "invoice" || original.status == "draft" || original.status == "void" {
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
            kind: "credit_note".into(),
            status: "draft".into(),
            currency: original.currency.clone(),
            period_start: original.period_start,
            period_end: original.period_end,
            subtotal_minor: credit.minor(),
            tax_rate: "0".into(),
            tax_minor: 0,
            total_minor: credit.minor(),
            credit_of: Some(id),
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

/// The stored tax rate.
pub(crate) fn rate(text: &str) -> Decimal {
    Decimal::from_str(text).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

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
