//! A subscription's life: started (with a trial or paid from the start), moved to now
//! (each step audited, each crossed boundary invoiced), cancelled at the period's end.

use super::{
    Boundary, Effective, PlanChange, Status, Step, Subscription, SubscriptionRow, Subscriptions,
    local_date, period_at, roll, roll_boundaries, stored_zone, zone,
};
use crate::entity::subscription;
use crate::error::{Error, Result};
use crate::invoices::Draft;
use crate::plans::PlanVersion;
use audit::NewEvent;
use authz::{Action, Permit, ResourceType};
use chrono::{DateTime, Duration, Utc};
use kernel::TenantTx;
use rust_decimal::Decimal;
use sea_orm::{ActiveEnum, EntityTrait, IntoActiveModel};
use uuid::Uuid;

impl Subscriptions {
    /// Stores what time did to the subscription, one audit event per step. Called
    /// before every change and by the billing run.
    pub async fn advance(&self, tx: &TenantTx) -> Result<Option<subscription::Model>> {
        tx.lock("billing:subscription").await?;
        let Some(mut row) = self.fresh_row(tx).await? else {
            return Ok(None);
        };
        let before = row.clone();
        let (steps, boundaries) = roll_boundaries(&mut row, self.clock.now())?;
        if steps.is_empty() {
            return Ok(Some(row));
        }
        row.updated_at = self.clock.now();
        self.save(tx, &row).await?;
        for boundary in &boundaries {
            self.invoice_boundary(tx, &row, boundary).await?;
        }
        for step in &steps {
            let mut event = NewEvent::new(step.action(), "subscription", Some(row.id)).change(
                "status",
                Some(before.status.to_value()),
                Some(row.status.to_value()),
            );
            if let Step::PlanChanged(from, to) = step {
                event = event.change("plan_version", Some(from.to_string()), Some(to.to_string()));
            }
            if matches!(step, Step::Renewed | Step::TrialEnded) {
                event = event.change(
                    "current_period_end",
                    Some(before.current_period_end.to_rfc3339()),
                    Some(row.current_period_end.to_rfc3339()),
                );
            }
            self.audit.record(tx, event).await?;
        }
        Ok(Some(row))
    }

    /// Cuts the invoice of a period boundary: the ended period's usage (unless it was a
    /// trial), the new period's fixed fee and seats, and waiting items.
    pub(super) async fn invoice_boundary(
        &self,
        tx: &TenantTx,
        row: &subscription::Model,
        boundary: &Boundary,
    ) -> Result<()> {
        let ended_plan = self.catalog.version(tx.conn(), boundary.ended_plan).await?;
        let mut lines = Vec::new();
        if !boundary.ended_trial {
            lines.extend(
                self.invoices
                    .usage_lines(tx, &ended_plan.definition, boundary.ended)
                    .await?,
            );
            // Usage of the period before, reported after its invoice was cut.
            let tz = stored_zone(&row.time_zone)?;
            let before = period_at(
                tz,
                row.billing_anchor.min(local_date(tz, boundary.ended.0)),
                boundary.ended.0 - Duration::seconds(1),
            );
            if let Ok((_, start, end)) = before
                && end == boundary.ended.0
            {
                lines.extend(
                    self.invoices
                        .late_usage_lines(tx, &ended_plan.definition, (start, end))
                        .await?,
                );
            }
        }
        let mut period = boundary.ended;
        let mut currency = ended_plan.definition.currency()?;
        if let Some((start, end, plan)) = boundary.next {
            let next_plan = self.catalog.version(tx.conn(), plan).await?;
            lines.extend(
                self.invoices
                    .advance_lines(tx, &next_plan.definition, (start, end))
                    .await?,
            );
            period = (start, end);
            currency = next_plan.definition.currency()?;
        }
        let (pending, items) = self.invoices.pending_lines(tx).await?;
        lines.extend(pending);
        if lines.is_empty() {
            return Ok(());
        }
        let draft = Draft {
            currency,
            period_start: period.0,
            period_end: period.1,
            lines,
            tax_rate: super::stored_tax_rate(&row.tax_rate)?,
        };
        self.invoices
            .issue(tx, Some(row.id), &draft, &items)
            .await?;
        Ok(())
    }

    /// What the next invoice will hold as of now: the current period's usage so far, the
    /// next period's fixed fee and seats (unless the subscription ends), and waiting
    /// items. `None` without a live subscription. Owners and billing admins.
    pub async fn upcoming_invoice(&self, tx: &TenantTx, permit: &Permit) -> Result<Option<Draft>> {
        permit.ensure(tx, ResourceType::Billing, Action::Read, None)?;
        let Some(mut row) = self.row(tx).await? else {
            return Ok(None);
        };
        let now = self.clock.now();
        roll(&mut row, now)?;
        if row.status == Status::Canceled {
            return Ok(None);
        }
        let plan = self.catalog.version(tx.conn(), row.plan_version_id).await?;
        let mut lines = Vec::new();
        if row.status != Status::Trialing {
            lines.extend(
                self.invoices
                    .usage_lines(
                        tx,
                        &plan.definition,
                        (row.current_period_start, row.current_period_end),
                    )
                    .await?,
            );
        }
        if !row.cancel_at_period_end {
            let next_plan = match row.scheduled_plan_version_id {
                Some(id) => self.catalog.version(tx.conn(), id).await?,
                None => plan.clone(),
            };
            let tz = stored_zone(&row.time_zone)?;
            let anchor = if row.status == Status::Trialing {
                local_date(tz, row.current_period_end)
            } else {
                row.billing_anchor
            };
            let (_, start, end) = period_at(tz, anchor, row.current_period_end)?;
            lines.extend(
                self.invoices
                    .advance_lines(tx, &next_plan.definition, (start, end))
                    .await?,
            );
        }
        lines.extend(self.invoices.pending_lines(tx).await?.0);
        Ok(Some(Draft {
            currency: plan.definition.currency()?,
            period_start: row.current_period_start,
            period_end: row.current_period_end,
            lines,
            tax_rate: super::stored_tax_rate(&row.tax_rate)?,
        }))
    }

    /// [`advance`](Self::advance) for the billing run; whether anything moved (a cheap
    /// read when nothing is due).
    pub async fn advance_if_due(&self, tx: &TenantTx) -> Result<bool> {
        let due = self.row(tx).await?.is_some_and(|row| {
            row.status != Status::Canceled && row.current_period_end <= self.clock.now()
        });
        if due {
            self.advance(tx).await?;
        }
        Ok(due)
    }

    pub(super) async fn start(
        &self,
        tx: &TenantTx,
        previous: Option<subscription::Model>,
        target: &PlanVersion,
        time_zone: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<PlanChange> {
        let time_zone = time_zone
            .map(str::to_owned)
            .or_else(|| previous.as_ref().map(|p| p.time_zone.clone()))
            .unwrap_or_else(|| "UTC".to_owned());
        let tz = zone(&time_zone)?;
        let today = local_date(tz, now);
        // One trial per organization: a restart after cancelling pays from the start.
        let trial_days = if previous.is_none() {
            target.definition.trial_days
        } else {
            0
        };
        let (status, trial_ends_at, start, end) = if trial_days > 0 {
            let ends = now + Duration::days(i64::from(trial_days));
            (Status::Trialing, Some(ends), now, ends)
        } else {
            let (_, start, end) = period_at(tz, today, now)?;
            (Status::Active, None, start, end)
        };
        let row = subscription::Model {
            organization_id: tx.org_id().as_uuid(),
            id: Uuid::now_v7(),
            plan_version_id: target.id,
            status,
            time_zone,
            billing_anchor: today,
            trial_ends_at,
            current_period_start: start,
            current_period_end: end,
            scheduled_plan_version_id: None,
            cancel_at_period_end: false,
            canceled_at: None,
            tax_rate: previous
                .as_ref()
                .map_or_else(|| "0".to_owned(), |p| p.tax_rate.clone()),
            created_at: now,
            updated_at: now,
        };
        if previous.is_some() {
            self.save(tx, &row).await?;
        } else {
            subscription::Entity::insert(row.clone().into_active_model())
                .exec_without_returning(tx.conn())
                .await?;
            tx.remember(SubscriptionRow(Some(row.clone())));
        }
        if status == Status::Active {
            // A paid start: the first period's fixed fee and seats, in advance.
            let lines = self
                .invoices
                .advance_lines(tx, &target.definition, (start, end))
                .await?;
            if !lines.is_empty() {
                let draft = Draft {
                    currency: target.definition.currency()?,
                    period_start: start,
                    period_end: end,
                    lines,
                    tax_rate: super::stored_tax_rate(&row.tax_rate)?,
                };
                self.invoices.issue(tx, Some(row.id), &draft, &[]).await?;
            }
        }
        self.audit
            .record(
                tx,
                NewEvent::new("subscription.started", "subscription", Some(row.id))
                    .change("plan", None::<String>, Some(target.plan_code.clone()))
                    .change("version", None::<i32>, Some(target.version))
                    .change("status", None::<String>, Some(row.status.to_value()))
                    .change("time_zone", None::<String>, Some(row.time_zone.clone())),
            )
            .await?;
        self.changed(tx, &row, Effective::Immediately, Vec::new())
            .await
    }

    /// Sets the organization's tax rate (a fraction: `0.19`), applied to the subtotal of
    /// its invoices from now on. An operator's action (tax follows the customer's
    /// jurisdiction, not their choice).
    pub async fn set_tax_rate(&self, tx: &TenantTx, rate: Decimal) -> Result<()> {
        if rate.is_sign_negative() || rate > Decimal::ONE || rate.scale() > 6 {
            return Err(Error::Invalid {
                field: "taxRate",
                reason: "a fraction from 0 to 1 with at most 6 decimals (0.19 for 19 %)".into(),
            });
        }
        let mut row = self
            .advance(tx)
            .await?
            .ok_or(Error::NotFound("subscription"))?;
        let before = row.tax_rate.clone();
        row.tax_rate = rate.normalize().to_string();
        row.updated_at = self.clock.now();
        self.save(tx, &row).await?;
        self.audit
            .record(
                tx,
                NewEvent::new(
                    "subscription.tax_rate_changed",
                    "subscription",
                    Some(row.id),
                )
                .change("tax_rate", Some(before), Some(row.tax_rate.clone())),
            )
            .await?;
        Ok(())
    }

    /// Ends the subscription at the current period's end (a trial: at the trial's end).
    pub async fn cancel(&self, tx: &TenantTx, permit: &Permit) -> Result<Subscription> {
        permit.ensure(tx, ResourceType::Billing, Action::Update, None)?;
        let row = self
            .advance(tx)
            .await?
            .filter(|row| row.status != Status::Canceled)
            .ok_or(Error::NotFound("active subscription"))?;
        if row.cancel_at_period_end {
            return Err(Error::AlreadyCanceled);
        }
        let mut row = row;
        row.cancel_at_period_end = true;
        row.scheduled_plan_version_id = None;
        row.updated_at = self.clock.now();
        self.save(tx, &row).await?;
        self.audit
            .record(
                tx,
                NewEvent::new(
                    "subscription.cancel_scheduled",
                    "subscription",
                    Some(row.id),
                )
                .change(
                    "effective_at",
                    None::<String>,
                    Some(row.current_period_end.to_rfc3339()),
                ),
            )
            .await?;
        self.to_subscription(tx, &row).await
    }
}
