//! What an invoice is made of: the period's fixed fee and seats in advance, usage in
//! arrears (with late usage of the period before), and waiting prorations.

use super::{DraftLine, Invoices, members};
use crate::catalog::{Charge, MetricDef, PlanDefinition};
use crate::entity::{invoice_item, invoice_line};
use crate::error::{Error, Result};
use crate::metering::Aggregation;
use crate::money::{Currency, Money};
use chrono::{DateTime, Utc};
use kernel::TenantTx;
use rust_decimal::Decimal;
use sea_orm::{ColumnTrait, QueryFilter, QueryOrder};
use std::str::FromStr;
use uuid::Uuid;

pub(super) fn line(
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
pub(super) fn unpriced(tx: &TenantTx, metric: &str, period: (DateTime<Utc>, DateTime<Utc>)) {
    tracing::error!(
        org.id = %tx.org_id(),
        metric,
        period.start = %period.0,
        period.end = %period.1,
        "a usage line could not be priced (its amount does not fit) and was left off the invoice"
    );
}

impl Invoices {
    pub(super) async fn aggregation(&self, tx: &TenantTx, metric: &str) -> Result<Aggregation> {
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
            let Some(quantity) = self.measured(tx, metric, period).await? else {
                continue;
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
            lines.extend(metered(tx, metric, period, priced)?);
        }
        Ok(lines)
    }

    /// The quantity of `metric` in `period` as of now; `None` when it overflows (logged
    /// as unpriced: the line is left out rather than the whole invoice refused).
    async fn measured(
        &self,
        tx: &TenantTx,
        metric: &str,
        period: (DateTime<Utc>, DateTime<Utc>),
    ) -> Result<Option<Decimal>> {
        let aggregation = self.aggregation(tx, metric).await?;
        match crate::usage::period_quantity(tx, metric, period.0, period.1, &aggregation).await {
            Err(Error::Overflow) => {
                unpriced(tx, metric, period);
                Ok(None)
            }
            other => other.map(Some),
        }
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
            let Some(now) = self.measured(tx, metric, period).await? else {
                continue;
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
            lines.extend(metered(tx, metric, period, priced)?);
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
}

/// A usage line of `metric` as priced, marked with its metric; `None` when pricing
/// overflowed (logged as unpriced, like an overflowing quantity).
fn metered(
    tx: &TenantTx,
    metric: &str,
    period: (DateTime<Utc>, DateTime<Utc>),
    priced: Result<DraftLine>,
) -> Result<Option<DraftLine>> {
    match priced {
        Err(Error::Overflow) => {
            unpriced(tx, metric, period);
            Ok(None)
        }
        Err(other) => Err(other),
        Ok(mut line) => {
            line.metric = Some(metric.to_owned());
            Ok(Some(line))
        }
    }
}
