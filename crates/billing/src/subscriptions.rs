//! [`Subscriptions`]: an organization's plan over time. States `trialing → active →
//! past_due → suspended → canceled`; time moves them, and time comes from the injected
//! clock. Rolling forward is a pure function of the stored row and the instant
//! ([`roll`]): reads see the state as of now even before [`Subscriptions::advance`]
//! stores it (and records each step in the audit trail).
//!
//! Periods are monthly from a billing anchor (a local date, clamped at month ends), with
//! boundaries at local midnight in the organization's time zone. A trial is its own
//! period; when it ends the anchor becomes the trial's last instant's local date.
//!
//! Plan changes: an upgrade (the new plan's recurring price for the current seats is at
//! least the old one's) takes effect at once, with a credit for the unused part of the old
//! price and a charge for the rest of the period at the new one, prorated by day, rounded
//! per line, waiting in `invoice_items` for the next invoice. A downgrade takes effect at
//! the period's end and is refused when current usage exceeds the new plan's limits.
//! Cancelling takes effect at the period's end.

use crate::catalog::{Charge, PlanDefinition};
use crate::entity::invoice;
use crate::entity::{invoice_item, subscription};
use crate::error::{Error, Result};
use crate::invoices::{Draft, Invoices};
use crate::money::Money;
use crate::payments::{ChargeOutcome, ChargeRequest, DunningSchedule, invoice_amount};
use crate::period::{Line, Period, monthly_period, proration_lines};
use crate::plans::{Catalog, PlanVersion};
use audit::{AuditLog, NewEvent};
use authz::{Action, Permit, ResourceType};
use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use kernel::{Limit, SharedClock, TenantTx};
use rust_decimal::Decimal;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ConnectionTrait, EntityTrait, IntoActiveModel, Statement,
};
use std::str::FromStr;
use std::sync::Arc;
use uuid::Uuid;

/// Where a subscription is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Free until the trial ends.
    Trialing,
    /// Paid up.
    Active,
    /// A payment failed; full access while it is retried.
    PastDue,
    /// Every retry failed: read-only until paid.
    Suspended,
    /// Ended; the organization is back on the free allowance.
    Canceled,
}

impl Status {
    /// Stored and shown name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Trialing => "trialing",
            Self::Active => "active",
            Self::PastDue => "past_due",
            Self::Suspended => "suspended",
            Self::Canceled => "canceled",
        }
    }

    /// The status stored as `text` (only ever read from the database: anything else is
    /// corrupt data).
    fn parse(text: &str) -> Result<Self> {
        Ok(match text {
            "trialing" => Self::Trialing,
            "active" => Self::Active,
            "past_due" => Self::PastDue,
            "suspended" => Self::Suspended,
            "canceled" => Self::Canceled,
            other => return Err(crate::error::corrupt("subscriptions.status", other)),
        })
    }
}

/// An organization's subscription as of now.
#[derive(Debug, Clone)]
pub struct Subscription {
    /// Its id (a new one after a cancellation and a new start).
    pub id: Uuid,
    /// The pinned plan version.
    pub plan: Arc<PlanVersion>,
    /// Its state.
    pub status: Status,
    /// The zone period boundaries are in.
    pub time_zone: Tz,
    /// The local date periods are anchored on.
    pub billing_anchor: NaiveDate,
    /// When the trial ends (or ended).
    pub trial_ends_at: Option<DateTime<Utc>>,
    /// The current period, `[start, end)`.
    pub current_period_start: DateTime<Utc>,
    /// The current period's end.
    pub current_period_end: DateTime<Utc>,
    /// The version a downgrade moves to at the period's end.
    pub scheduled_plan: Option<Arc<PlanVersion>>,
    /// Whether it ends at the period's end.
    pub cancel_at_period_end: bool,
    /// When it ended.
    pub canceled_at: Option<DateTime<Utc>>,
    /// Tax rate on invoice subtotals.
    pub tax_rate: Decimal,
}

/// One step time took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// The trial ended; the first paid period began.
    TrialEnded,
    /// A new period began.
    Renewed,
    /// A scheduled downgrade took effect (from, to version ids).
    PlanChanged(Uuid, Uuid),
    /// It ended at the period's end.
    Canceled,
}

impl Step {
    fn action(&self) -> &'static str {
        match self {
            Self::TrialEnded => "subscription.trial_ended",
            Self::Renewed => "subscription.renewed",
            Self::PlanChanged(..) => "subscription.plan_changed",
            Self::Canceled => "subscription.canceled",
        }
    }
}

/// When a plan change takes effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effective {
    /// Now (a start, an upgrade, any change during a trial).
    Immediately,
    /// At the current period's end (a downgrade).
    AtPeriodEnd,
}

/// What [`Subscriptions::change_plan`] did.
#[derive(Debug, Clone)]
pub struct PlanChange {
    /// The subscription afterwards.
    pub subscription: Subscription,
    /// When the change takes effect.
    pub effective: Effective,
    /// Proration lines added to the next invoice (empty unless an upgrade mid-period).
    pub prorations: Vec<Line>,
}

/// Local midnight of `date` in `tz` (the first instant of that local day, should a
/// daylight-saving change skip midnight).
pub fn local_midnight(tz: Tz, date: NaiveDate) -> DateTime<Utc> {
    let midnight = date.and_hms_opt(0, 0, 0).unwrap_or_default();
    let mut local = midnight;
    for _ in 0..24 {
        if let Some(instant) = tz.from_local_datetime(&local).earliest() {
            return instant.with_timezone(&Utc);
        }
        local += Duration::minutes(30);
    }
    Utc.from_utc_datetime(&midnight)
}

/// The local date of `instant` in `tz`.
pub fn local_date(tz: Tz, instant: DateTime<Utc>) -> NaiveDate {
    instant.with_timezone(&tz).date_naive()
}

/// The monthly period anchored on `anchor` that holds `instant`, as instants.
pub fn period_at(
    tz: Tz,
    anchor: NaiveDate,
    instant: DateTime<Utc>,
) -> Result<(Period, DateTime<Utc>, DateTime<Utc>)> {
    let period = monthly_period(anchor, local_date(tz, instant).max(anchor))?;
    Ok((
        period,
        local_midnight(tz, period.start),
        local_midnight(tz, period.end),
    ))
}

/// A subscription's stored time zone (anything but an IANA name is corrupt data).
fn stored_zone(name: &str) -> Result<Tz> {
    Tz::from_str(name).map_err(|_| crate::error::corrupt("subscriptions.time_zone", name))
}

fn zone(name: &str) -> Result<Tz> {
    Tz::from_str(name).map_err(|_| Error::Invalid {
        field: "timeZone",
        reason: format!("`{name}` is not an IANA time zone (e.g. Europe/Berlin)"),
    })
}

/// A period boundary time crossed: what ended (billed in arrears unless it was a trial)
/// and what began (billed in advance), if anything did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Boundary {
    /// The period that ended.
    pub ended: (DateTime<Utc>, DateTime<Utc>),
    /// The plan version it ran on.
    pub ended_plan: Uuid,
    /// Whether it was a trial (free).
    pub ended_trial: bool,
    /// The period that began and its plan version (none after a cancellation).
    pub next: Option<(DateTime<Utc>, DateTime<Utc>, Uuid)>,
}

/// Rolls a stored subscription forward to `now`: ends a trial, starts periods, applies a
/// scheduled downgrade, ends a cancelled one. Pure; returns the steps taken in order.
pub fn roll(row: &mut subscription::Model, now: DateTime<Utc>) -> Result<Vec<Step>> {
    Ok(roll_boundaries(row, now)?.0)
}

/// [`roll`], with the period boundaries crossed (what invoices are cut at).
pub fn roll_boundaries(
    row: &mut subscription::Model,
    now: DateTime<Utc>,
) -> Result<(Vec<Step>, Vec<Boundary>)> {
    let tz = stored_zone(&row.time_zone)?;
    let mut steps = Vec::new();
    let mut boundaries = Vec::new();
    // Bounded: a subscription untouched for years rolls one period per month.
    for _ in 0..10_000 {
        let status = Status::parse(&row.status)?;
        if status == Status::Canceled || row.current_period_end > now {
            return Ok((steps, boundaries));
        }
        let mut boundary = Boundary {
            ended: (row.current_period_start, row.current_period_end),
            ended_plan: row.plan_version_id,
            ended_trial: status == Status::Trialing,
            next: None,
        };
        let ended_at = row.current_period_end;
        if row.cancel_at_period_end {
            row.status = Status::Canceled.as_str().to_owned();
            row.canceled_at = Some(ended_at);
            row.scheduled_plan_version_id = None;
            steps.push(Step::Canceled);
            boundaries.push(boundary);
            return Ok((steps, boundaries));
        }
        if let Some(next) = row.scheduled_plan_version_id.take() {
            steps.push(Step::PlanChanged(row.plan_version_id, next));
            row.plan_version_id = next;
        }
        if status == Status::Trialing {
            row.status = Status::Active.as_str().to_owned();
            row.billing_anchor = local_date(tz, ended_at);
            steps.push(Step::TrialEnded);
        } else {
            steps.push(Step::Renewed);
        }
        let (_, start, end) = period_at(tz, row.billing_anchor, ended_at)?;
        row.current_period_start = start;
        row.current_period_end = end;
        boundary.next = Some((start, end, row.plan_version_id));
        boundaries.push(boundary);
    }
    Err(Error::InvalidPeriod("too many periods to roll".into()))
}

/// Subscriptions.
#[derive(Debug, Clone)]
pub struct Subscriptions {
    catalog: Catalog,
    invoices: Invoices,
    audit: AuditLog,
    clock: SharedClock,
    collection: Collection,
}

/// How invoices are collected (by default: marked paid by staff, retried 3, 5, 7 days).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Collection {
    /// Whether finalized invoices are charged automatically (a card provider) or wait to
    /// be marked paid (bank transfer).
    pub automatic: bool,
    /// When failed charges are retried.
    pub schedule: DunningSchedule,
}

/// The recurring price of `plan` for `seats` seats per period (fixed fee plus seats),
/// exact; what tells an upgrade from a downgrade and what proration prorates.
pub fn recurring_price(plan: &PlanDefinition, seats: u64) -> Result<Decimal> {
    let mut total = Decimal::ZERO;
    for charge in &plan.charges {
        let add = match charge {
            Charge::Fixed { amount } => *amount,
            Charge::PerSeat { unit_price } => unit_price
                .checked_mul(Decimal::from(seats))
                .ok_or(Error::Overflow)?,
            Charge::Usage { .. } => Decimal::ZERO,
        };
        total = total.checked_add(add).ok_or(Error::Overflow)?;
    }
    Ok(total)
}

/// Counts of what limits cap, read from the tables of the crates that own them (one
/// place, read-only).
async fn usage_of(tx: &TenantTx, limit: Limit, now: DateTime<Utc>) -> Result<u64> {
    let backend = tx.conn().get_database_backend();
    let org: sea_orm::Value = tx.org_id().as_uuid().into();
    let (sql, values): (&str, Vec<sea_orm::Value>) = match limit {
        Limit::Seats => (
            "SELECT (SELECT count(*) FROM memberships WHERE organization_id = $1) + \
             (SELECT count(*) FROM invitations WHERE organization_id = $1 AND accepted_at IS NULL \
              AND revoked_at IS NULL AND expires_at > $2)",
            vec![org, now.into()],
        ),
        Limit::Projects => (
            "SELECT count(*) FROM projects WHERE organization_id = $1",
            vec![org],
        ),
        Limit::DocumentsPerProject => (
            "SELECT coalesce(max(n), 0) FROM (SELECT count(*) AS n FROM documents \
             WHERE organization_id = $1 GROUP BY project_id) per_project",
            vec![org],
        ),
    };
    let sql = kernel::numbered(backend, sql);
    let row = tx
        .conn()
        .query_one_raw(Statement::from_sql_and_values(backend, sql, values))
        .await?;
    let count: i64 = match row {
        Some(row) => row.try_get_by_index(0)?,
        None => 0,
    };
    Ok(u64::try_from(count).unwrap_or(0))
}

/// The numeric limit of a plan.
pub fn plan_limit(plan: &PlanDefinition, limit: Limit) -> Option<u64> {
    let limits = plan.entitlements.limits;
    match limit {
        Limit::Seats => limits.seats,
        Limit::Projects => limits.projects,
        Limit::DocumentsPerProject => limits.documents_per_project,
    }
}

impl Subscriptions {
    /// Subscriptions to plans of `catalog`, audited, timed by `clock`.
    pub fn new(catalog: Catalog, audit: AuditLog, clock: SharedClock) -> Self {
        Self {
            invoices: Invoices::new(catalog.clone(), audit.clone(), clock.clone()),
            catalog,
            audit,
            clock,
            collection: Collection::default(),
        }
    }

    /// Collects invoices as `collection` says.
    pub fn with_collection(mut self, collection: Collection) -> Self {
        self.invoices = self.invoices.charged_automatically(collection.automatic);
        self.collection = collection;
        self
    }

    /// Invoices.
    pub fn invoices(&self) -> &Invoices {
        &self.invoices
    }

    /// The catalog.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// The organization's subscription row, read once per transaction: a write reads it
    /// for the suspension check, the plan limits and the change itself.
    async fn row(&self, tx: &TenantTx) -> Result<Option<subscription::Model>> {
        if let Some(SubscriptionRow(row)) = tx.remembered::<SubscriptionRow>() {
            return Ok(row);
        }
        self.fresh_row(tx).await
    }

    /// The row as the database has it now (under the subscription's lock: never from
    /// memory, another transaction may have moved it while this one waited).
    async fn fresh_row(&self, tx: &TenantTx) -> Result<Option<subscription::Model>> {
        let row = tx.select::<subscription::Entity>().one(tx.conn()).await?;
        tx.remember(SubscriptionRow(row.clone()));
        Ok(row)
    }

    async fn to_subscription(
        &self,
        tx: &TenantTx,
        row: &subscription::Model,
    ) -> Result<Subscription> {
        let plan = self.catalog.version(tx.conn(), row.plan_version_id).await?;
        let scheduled_plan = match row.scheduled_plan_version_id {
            Some(id) => Some(self.catalog.version(tx.conn(), id).await?),
            None => None,
        };
        Ok(Subscription {
            id: row.id,
            plan,
            status: Status::parse(&row.status)?,
            time_zone: stored_zone(&row.time_zone)?,
            billing_anchor: row.billing_anchor,
            trial_ends_at: row.trial_ends_at,
            current_period_start: row.current_period_start,
            current_period_end: row.current_period_end,
            scheduled_plan,
            cancel_at_period_end: row.cancel_at_period_end,
            canceled_at: row.canceled_at,
            tax_rate: Decimal::from_str(&row.tax_rate)
                .map_err(|_| crate::error::corrupt("subscriptions.tax_rate", &row.tax_rate))?,
        })
    }

    /// The subscription as of now, for owners and billing admins (`None`: never
    /// subscribed).
    pub async fn current(&self, tx: &TenantTx, permit: &Permit) -> Result<Option<Subscription>> {
        permit.ensure(tx, ResourceType::Billing, Action::Read, None)?;
        self.effective(tx).await
    }

    /// The requests a minute each API key may send that the organization's plan sets
    /// (`None` where it sets none, or where there is no live subscription).
    pub async fn request_rates(&self, tx: &TenantTx) -> Result<Option<u32>> {
        Ok(match self.effective(tx).await? {
            Some(sub) if sub.status != Status::Canceled => {
                sub.plan
                    .definition
                    .entitlements
                    .limits
                    .requests_per_minute_per_api_key
            }
            _ => None,
        })
    }

    /// The subscription as of now, without a permit: what entitlement checks read.
    pub async fn effective(&self, tx: &TenantTx) -> Result<Option<Subscription>> {
        let Some(mut row) = self.row(tx).await? else {
            return Ok(None);
        };
        roll(&mut row, self.clock.now())?;
        Ok(Some(self.to_subscription(tx, &row).await?))
    }

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
                Some(before.status.clone()),
                Some(row.status.clone()),
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
    async fn invoice_boundary(
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
            tax_rate: crate::invoices::rate(&row.tax_rate),
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
        if row.status == Status::Canceled.as_str() {
            return Ok(None);
        }
        let plan = self.catalog.version(tx.conn(), row.plan_version_id).await?;
        let mut lines = Vec::new();
        if row.status != Status::Trialing.as_str() {
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
            let anchor = if row.status == Status::Trialing.as_str() {
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
            tax_rate: crate::invoices::rate(&row.tax_rate),
        }))
    }

    /// [`advance`](Self::advance) for the billing run; whether anything moved (a cheap
    /// read when nothing is due).
    pub async fn advance_if_due(&self, tx: &TenantTx) -> Result<bool> {
        let due = self.row(tx).await?.is_some_and(|row| {
            row.status != Status::Canceled.as_str() && row.current_period_end <= self.clock.now()
        });
        if due {
            self.advance(tx).await?;
        }
        Ok(due)
    }

    async fn save(&self, tx: &TenantTx, row: &subscription::Model) -> Result<()> {
        let mut active = row.clone().into_active_model();
        for column in [
            subscription::Column::Id,
            subscription::Column::PlanVersionId,
            subscription::Column::Status,
            subscription::Column::TimeZone,
            subscription::Column::BillingAnchor,
            subscription::Column::TrialEndsAt,
            subscription::Column::CurrentPeriodStart,
            subscription::Column::CurrentPeriodEnd,
            subscription::Column::ScheduledPlanVersionId,
            subscription::Column::CancelAtPeriodEnd,
            subscription::Column::CanceledAt,
            subscription::Column::TaxRate,
            subscription::Column::UpdatedAt,
        ] {
            active.reset(column);
        }
        subscription::Entity::update(active).exec(tx.conn()).await?;
        tx.remember(SubscriptionRow(Some(row.clone())));
        Ok(())
    }

    /// Moves the organization to the latest version of the plan `code`: starts a
    /// subscription (with the plan's trial, unless the organization had one), upgrades at
    /// once with prorations, or schedules a downgrade for the period's end after checking
    /// current usage against the new plan's limits. `time_zone` (IANA) sets where period
    /// boundaries fall when a subscription starts.
    pub async fn change_plan(
        &self,
        tx: &TenantTx,
        permit: &Permit,
        code: &str,
        time_zone: Option<&str>,
    ) -> Result<PlanChange> {
        permit.ensure(tx, ResourceType::Billing, Action::Update, None)?;
        let target = self.catalog.latest(tx.conn(), code).await?;
        let now = self.clock.now();
        let current = self.advance(tx).await?;
        let live = current
            .as_ref()
            .filter(|row| row.status != Status::Canceled.as_str());
        let Some(row) = live else {
            return self.start(tx, current, &target, time_zone, now).await;
        };
        let mut row = row.clone();
        let plan = self.catalog.version(tx.conn(), row.plan_version_id).await?;
        if target.id == plan.id {
            if row.scheduled_plan_version_id.take().is_none() {
                return Err(Error::AlreadyOnPlan(code.to_owned()));
            }
            // Staying after all: the scheduled downgrade is dropped.
            row.updated_at = now;
            self.save(tx, &row).await?;
            self.audit
                .record(
                    tx,
                    NewEvent::new(
                        "subscription.downgrade_dropped",
                        "subscription",
                        Some(row.id),
                    ),
                )
                .await?;
            return self
                .changed(tx, &row, Effective::Immediately, Vec::new())
                .await;
        }
        let currency = plan.definition.currency()?;
        if target.definition.currency()? != currency {
            return Err(Error::CurrencyMismatch {
                left: currency.code().to_owned(),
                right: target.definition.currency.clone(),
            });
        }
        let seats = crate::invoices::members(tx).await?;
        let old_price = recurring_price(&plan.definition, seats)?;
        let new_price = recurring_price(&target.definition, seats)?;
        let trialing = row.status == Status::Trialing.as_str();
        if !trialing && new_price < old_price {
            // A downgrade: what the organization has must fit the new plan.
            for limit in [Limit::Seats, Limit::Projects, Limit::DocumentsPerProject] {
                if let Some(max) = plan_limit(&target.definition, limit) {
                    let usage = usage_of(tx, limit, now).await?;
                    if usage > max {
                        return Err(Error::LimitExceeded { limit, max, usage });
                    }
                }
            }
            row.scheduled_plan_version_id = Some(target.id);
            row.updated_at = now;
            self.save(tx, &row).await?;
            self.audit
                .record(
                    tx,
                    NewEvent::new(
                        "subscription.downgrade_scheduled",
                        "subscription",
                        Some(row.id),
                    )
                    .change(
                        "plan",
                        Some(plan.plan_code.clone()),
                        Some(target.plan_code.clone()),
                    )
                    .change(
                        "effective_at",
                        None::<String>,
                        Some(row.current_period_end.to_rfc3339()),
                    ),
                )
                .await?;
            return self
                .changed(tx, &row, Effective::AtPeriodEnd, Vec::new())
                .await;
        }
        // An upgrade (or any change in a trial, which costs nothing yet): now.
        let mut prorations = Vec::new();
        if !trialing {
            let tz = stored_zone(&row.time_zone)?;
            let (period, _, _) = period_at(tz, row.billing_anchor, row.current_period_start)?;
            let today = local_date(tz, now);
            let lines = proration_lines(
                period,
                today.clamp(period.start, period.end.pred_opt().unwrap_or(period.start)),
                Money::round_half_up(old_price, currency)?,
                Money::round_half_up(new_price, currency)?,
            )?;
            for line in lines {
                if line.amount.minor() == 0 {
                    continue;
                }
                invoice_item::Entity::insert(invoice_item::ActiveModel {
                    organization_id: Set(tx.org_id().as_uuid()),
                    id: Set(Uuid::now_v7()),
                    kind: Set(if line.amount.minor() < 0 {
                        "proration_credit".into()
                    } else {
                        "proration_charge".into()
                    }),
                    description: Set(format!(
                        "{} ({} → {})",
                        line.description, plan.plan_code, target.plan_code
                    )),
                    currency: Set(currency.code().to_owned()),
                    amount_minor: Set(line.amount.minor()),
                    period_start: Set(now),
                    period_end: Set(row.current_period_end),
                    invoice_id: Set(None),
                    created_at: Set(now),
                })
                .exec_without_returning(tx.conn())
                .await?;
                prorations.push(line);
            }
        }
        let from = plan.plan_code.clone();
        row.plan_version_id = target.id;
        row.scheduled_plan_version_id = None;
        row.updated_at = now;
        self.save(tx, &row).await?;
        let mut event = NewEvent::new("subscription.plan_changed", "subscription", Some(row.id))
            .change("plan", Some(from), Some(target.plan_code.clone()))
            .change("version", Some(plan.version), Some(target.version));
        for line in &prorations {
            event = event.change(
                "proration",
                None::<String>,
                Some(format!("{} {}", line.description, line.amount)),
            );
        }
        self.audit.record(tx, event).await?;
        self.changed(tx, &row, Effective::Immediately, prorations)
            .await
    }

    async fn start(
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
            status: status.as_str().to_owned(),
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
                    tax_rate: crate::invoices::rate(&row.tax_rate),
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
                    .change("status", None::<String>, Some(row.status.clone()))
                    .change("time_zone", None::<String>, Some(row.time_zone.clone())),
            )
            .await?;
        self.changed(tx, &row, Effective::Immediately, Vec::new())
            .await
    }

    async fn changed(
        &self,
        tx: &TenantTx,
        row: &subscription::Model,
        effective: Effective,
        prorations: Vec<Line>,
    ) -> Result<PlanChange> {
        Ok(PlanChange {
            subscription: self.to_subscription(tx, row).await?,
            effective,
            prorations,
        })
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

    /// Invoices due for a charge now (finalized, unpaid, their next attempt due).
    pub async fn due_charges(&self, tx: &TenantTx) -> Result<Vec<ChargeRequest>> {
        use sea_orm::{ColumnTrait, QueryFilter};
        let due = tx
            .select::<invoice::Entity>()
            .filter(invoice::Column::Status.is_in(["finalized", "uncollectible"]))
            .filter(invoice::Column::NextPaymentAttemptAt.lte(self.clock.now()))
            .all(tx.conn())
            .await?;
        due.into_iter()
            .map(|i| {
                Ok(ChargeRequest {
                    organization_id: i.organization_id,
                    invoice_id: i.id,
                    invoice_number: i.number.clone().unwrap_or_default(),
                    amount: invoice_amount(i.total_minor, &i.currency)?,
                    idempotency_key: format!("{}-{}", i.id, i.payment_attempts + 1),
                    attempt: i.payment_attempts + 1,
                })
            })
            .collect()
    }

    /// Asks for an attempt on an unpaid invoice now (a billing admin after updating the
    /// payment method). Owners and billing admins.
    pub async fn request_payment(&self, tx: &TenantTx, permit: &Permit, id: Uuid) -> Result<()> {
        permit.ensure(tx, ResourceType::Billing, Action::Update, None)?;
        let row = self.invoices.find(tx, id).await?;
        if !matches!(row.status.as_str(), "finalized" | "uncollectible") {
            return Err(Error::InvoiceState(row.status));
        }
        let mut active = row.into_active_model();
        active.next_payment_attempt_at = Set(Some(self.clock.now()));
        active.updated_at = Set(self.clock.now());
        active.update(tx.conn()).await?;
        self.audit
            .record(tx, NewEvent::new("payment.requested", "invoice", Some(id)))
            .await?;
        Ok(())
    }

    /// Marks an invoice paid by bank transfer (staff).
    pub async fn mark_paid(&self, tx: &TenantTx, id: Uuid) -> Result<()> {
        self.record_charge(
            tx,
            id,
            &ChargeOutcome::Paid("manual".into()),
            "manual",
            None,
        )
        .await
    }

    /// Records what the provider answered for invoice `id`, re-reading it first: an
    /// invoice paid or voided meanwhile is left alone, and so is a failure of an
    /// `attempt` already recorded (two billing runs that charged the same attempt: the
    /// provider charged once, under one idempotency key). Success pays it and returns a
    /// past-due or suspended subscription to active (once nothing else is overdue);
    /// failure schedules the next retry or, after the last, suspends.
    pub async fn record_charge(
        &self,
        tx: &TenantTx,
        id: Uuid,
        outcome: &ChargeOutcome,
        provider: &str,
        attempt: Option<i32>,
    ) -> Result<()> {
        use sea_orm::{ColumnTrait, PaginatorTrait, QueryFilter};
        let row = self.invoices.find(tx, id).await?;
        if !matches!(row.status.as_str(), "finalized" | "uncollectible") {
            return Ok(());
        }
        let now = self.clock.now();
        match outcome {
            ChargeOutcome::Pending => Ok(()),
            ChargeOutcome::Paid(reference) => {
                self.invoices.settle(tx, row, provider).await?;
                self.audit
                    .record(
                        tx,
                        NewEvent::new("payment.succeeded", "invoice", Some(id))
                            .change("provider", None::<String>, Some(provider.to_owned()))
                            .change("reference", None::<String>, Some(reference.clone())),
                    )
                    .await?;
                let overdue = tx
                    .select::<invoice::Entity>()
                    .filter(invoice::Column::Status.is_in(["finalized", "uncollectible"]))
                    .filter(invoice::Column::PaymentAttempts.gt(0))
                    .count(tx.conn())
                    .await?;
                if overdue == 0 {
                    self.set_status(
                        tx,
                        &[Status::PastDue, Status::Suspended],
                        Status::Active,
                        "subscription.reactivated",
                    )
                    .await?;
                }
                Ok(())
            }
            ChargeOutcome::Failed(_) if attempt.is_some_and(|n| row.payment_attempts >= n) => {
                Ok(())
            }
            ChargeOutcome::Failed(reason) => {
                let failures = u32::try_from(row.payment_attempts + 1).unwrap_or(u32::MAX);
                let next = self.collection.schedule.next_retry(failures);
                let mut active = row.into_active_model();
                active.payment_attempts = Set(i32::try_from(failures).unwrap_or(i32::MAX));
                active.next_payment_attempt_at = Set(next.map(|wait| now + wait));
                if next.is_none() {
                    // No retry left: given up on, though a payment is still taken.
                    active.status = Set("uncollectible".into());
                }
                active.updated_at = Set(now);
                active.update(tx.conn()).await?;
                self.audit
                    .record(
                        tx,
                        NewEvent::new("payment.failed", "invoice", Some(id))
                            .change("attempt", None::<u32>, Some(failures))
                            .change("reason", None::<String>, Some(reason.clone()))
                            .change(
                                "next_attempt_at",
                                None::<String>,
                                next.map(|wait| (now + wait).to_rfc3339()),
                            ),
                    )
                    .await?;
                self.set_status(
                    tx,
                    &[Status::Active],
                    Status::PastDue,
                    "subscription.past_due",
                )
                .await?;
                if next.is_none() {
                    self.set_status(
                        tx,
                        &[Status::Active, Status::PastDue],
                        Status::Suspended,
                        "subscription.suspended",
                    )
                    .await?;
                }
                Ok(())
            }
        }
    }

    /// Moves the subscription from one of `from` to `to`, audited; otherwise nothing.
    async fn set_status(
        &self,
        tx: &TenantTx,
        from: &[Status],
        to: Status,
        action: &'static str,
    ) -> Result<()> {
        let Some(mut row) = self.advance(tx).await? else {
            return Ok(());
        };
        let status = Status::parse(&row.status)?;
        if !from.contains(&status) {
            return Ok(());
        }
        row.status = to.as_str().to_owned();
        row.updated_at = self.clock.now();
        self.save(tx, &row).await?;
        self.audit
            .record(
                tx,
                NewEvent::new(action, "subscription", Some(row.id)).change(
                    "status",
                    Some(status.as_str().to_owned()),
                    Some(to.as_str().to_owned()),
                ),
            )
            .await?;
        Ok(())
    }

    /// Meters one API call of an API key (`api_calls`, keyed by `call`): refused with
    /// `LIMIT_EXCEEDED` when the plan's hard quota for the period is used up, recorded
    /// otherwise (a soft quota's excess is billed by the plan's usage charge).
    pub async fn meter_api_call(&self, tx: &TenantTx, call: Uuid) -> Result<()> {
        const METRIC: &str = "api_calls";
        let now = self.clock.now();
        if let Some(sub) = self.effective(tx).await?
            && sub.status != Status::Canceled
            && let Some(quota) = sub.plan.definition.entitlements.quotas.get(METRIC)
            && quota.hard
        {
            let used = crate::usage::count_up_to(
                tx,
                METRIC,
                sub.current_period_start,
                sub.current_period_end,
                quota.per_period,
            )
            .await?;
            if used >= quota.per_period {
                return Err(Error::QuotaExceeded {
                    metric: METRIC.to_owned(),
                    max: quota.per_period,
                    usage: used,
                });
            }
        }
        crate::usage::insert_platform_usage(tx, METRIC, call, now).await
    }

    /// The oldest occurrence time usage may still be reported for: the current period's
    /// start, or during the first `grace` of a period the previous period's start (its
    /// late usage is billed as an adjustment on the next invoice). `None` without a live
    /// subscription (nothing is invoiced, so nothing is late).
    pub async fn oldest_reportable(
        &self,
        tx: &TenantTx,
        grace: Duration,
    ) -> Result<Option<DateTime<Utc>>> {
        let Some(sub) = self.effective(tx).await? else {
            return Ok(None);
        };
        if sub.status == Status::Canceled {
            return Ok(None);
        }
        let now = self.clock.now();
        if now >= sub.current_period_start + grace || sub.status == Status::Trialing {
            return Ok(Some(sub.current_period_start));
        }
        Ok(Some(
            self.previous_period(&sub)
                .map_or(sub.current_period_start, |(start, _)| start),
        ))
    }

    /// The period before the current one, if the subscription had a paid one.
    fn previous_period(&self, sub: &Subscription) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        let (_, start, end) = period_at(
            sub.time_zone,
            sub.billing_anchor,
            sub.current_period_start - Duration::seconds(1),
        )
        .ok()?;
        (end == sub.current_period_start).then_some((start, end))
    }

    /// The bounds of the current or the previous period, for reading usage by period.
    pub async fn period_bounds(
        &self,
        tx: &TenantTx,
        permit: &Permit,
        previous: bool,
    ) -> Result<(DateTime<Utc>, DateTime<Utc>)> {
        let sub = self
            .current(tx, permit)
            .await?
            .filter(|s| s.status != Status::Canceled)
            .ok_or(Error::NotFound("subscription"))?;
        if !previous {
            return Ok((sub.current_period_start, sub.current_period_end));
        }
        self.previous_period(&sub)
            .ok_or(Error::NotFound("previous period"))
    }

    /// Whether the organization's writes are refused for non-payment (its subscription is
    /// suspended).
    pub async fn payment_required(&self, tx: &TenantTx) -> Result<bool> {
        Ok(self
            .effective(tx)
            .await?
            .is_some_and(|s| s.status == Status::Suspended))
    }

    /// Ends the subscription at the current period's end (a trial: at the trial's end).
    pub async fn cancel(&self, tx: &TenantTx, permit: &Permit) -> Result<Subscription> {
        permit.ensure(tx, ResourceType::Billing, Action::Update, None)?;
        let row = self
            .advance(tx)
            .await?
            .filter(|row| row.status != Status::Canceled.as_str())
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

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn row(
        status: Status,
        zone: &str,
        anchor: &str,
        start: &str,
        end: &str,
    ) -> subscription::Model {
        subscription::Model {
            organization_id: Uuid::nil(),
            id: Uuid::nil(),
            plan_version_id: Uuid::from_u128(1),
            status: status.as_str().into(),
            time_zone: zone.into(),
            billing_anchor: anchor.parse().unwrap(),
            trial_ends_at: None,
            current_period_start: at(start),
            current_period_end: at(end),
            scheduled_plan_version_id: None,
            cancel_at_period_end: false,
            canceled_at: None,
            tax_rate: "0".into(),
            created_at: at(start),
            updated_at: at(start),
        }
    }

    #[test]
    fn periods_anchored_on_the_31st_end_at_local_midnight_at_month_ends() {
        let mut sub = row(
            Status::Active,
            "UTC",
            "2027-01-31",
            "2027-01-31T00:00:00Z",
            "2027-02-28T00:00:00Z",
        );
        assert!(
            roll(&mut sub, at("2027-02-27T23:59:59Z"))
                .unwrap()
                .is_empty()
        );
        let steps = roll(&mut sub, at("2027-04-15T12:00:00Z")).unwrap();
        assert_eq!(steps, vec![Step::Renewed, Step::Renewed]);
        assert_eq!(sub.current_period_start, at("2027-03-31T00:00:00Z"));
        assert_eq!(sub.current_period_end, at("2027-04-30T00:00:00Z"));
    }

    #[test]
    fn boundaries_follow_the_organizations_zone_across_a_daylight_saving_change() {
        // Berlin: CET (+01:00) until 2027-03-28 02:00, then CEST (+02:00).
        let (_, start, end) = period_at(
            chrono_tz::Europe::Berlin,
            "2027-01-15".parse().unwrap(),
            at("2027-03-20T10:00:00Z"),
        )
        .unwrap();
        assert_eq!(start, at("2027-03-14T23:00:00Z"), "March 15, 00:00 CET");
        assert_eq!(end, at("2027-04-14T22:00:00Z"), "April 15, 00:00 CEST");
        // An instant that is still March 14 in UTC but March 15 in Berlin.
        let (period, _, _) = period_at(
            chrono_tz::Europe::Berlin,
            "2027-01-15".parse().unwrap(),
            at("2027-03-14T23:30:00Z"),
        )
        .unwrap();
        assert_eq!(period.start, "2027-03-15".parse::<NaiveDate>().unwrap());
    }

    #[test]
    fn a_trial_ends_into_an_active_period_anchored_on_its_last_day() {
        let mut sub = row(
            Status::Trialing,
            "America/New_York",
            "2027-01-01",
            "2027-01-01T15:00:00Z",
            "2027-01-15T15:00:00Z",
        );
        sub.trial_ends_at = Some(sub.current_period_end);
        let steps = roll(&mut sub, at("2027-01-16T00:00:00Z")).unwrap();
        assert_eq!(steps, vec![Step::TrialEnded]);
        assert_eq!(sub.status, "active");
        assert_eq!(
            sub.billing_anchor,
            "2027-01-15".parse::<NaiveDate>().unwrap()
        );
        assert_eq!(sub.current_period_start, at("2027-01-15T05:00:00Z"));
        assert_eq!(sub.current_period_end, at("2027-02-15T05:00:00Z"));
    }

    #[test]
    fn a_scheduled_downgrade_applies_at_the_period_end_and_a_cancellation_ends_it() {
        let mut sub = row(
            Status::Active,
            "UTC",
            "2027-01-10",
            "2027-01-10T00:00:00Z",
            "2027-02-10T00:00:00Z",
        );
        sub.scheduled_plan_version_id = Some(Uuid::from_u128(2));
        let steps = roll(&mut sub, at("2027-02-10T00:00:00Z")).unwrap();
        assert_eq!(
            steps,
            vec![
                Step::PlanChanged(Uuid::from_u128(1), Uuid::from_u128(2)),
                Step::Renewed
            ]
        );
        assert_eq!(sub.plan_version_id, Uuid::from_u128(2));
        sub.cancel_at_period_end = true;
        let steps = roll(&mut sub, at("2027-06-01T00:00:00Z")).unwrap();
        assert_eq!(steps, vec![Step::Canceled]);
        assert_eq!(sub.status, "canceled");
        assert_eq!(sub.canceled_at, Some(at("2027-03-10T00:00:00Z")));
    }

    #[test]
    fn the_recurring_price_tells_upgrades_from_downgrades() {
        let plan = |fixed: &str, seat: &str| PlanDefinition {
            name: "P".into(),
            currency: "USD".into(),
            trial_days: 0,
            charges: vec![
                Charge::Fixed {
                    amount: fixed.parse().unwrap(),
                },
                Charge::PerSeat {
                    unit_price: seat.parse().unwrap(),
                },
            ],
            entitlements: Default::default(),
        };
        // 5 seats: 49 + 5 × 12 = 109 versus 99 + 5 × 0 = 99.
        assert_eq!(
            recurring_price(&plan("49", "12"), 5).unwrap(),
            Decimal::from(109)
        );
        assert_eq!(
            recurring_price(&plan("99", "0"), 5).unwrap(),
            Decimal::from(99)
        );
    }
}

/// The subscription row a transaction last read or wrote (see `Subscriptions::row`).
#[derive(Debug, Clone)]
struct SubscriptionRow(Option<subscription::Model>);
