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
//!
//! Files: `periods` (time zones, boundaries, the pure roll), `lifecycle` (start, advance,
//! invoice boundaries, cancel, tax rate), `plan_change` (the pure [`plan_move`] decision
//! and its effects), `dunning` (charges, retries, past due, suspension), `metering` (API
//! call quotas, request rates, late usage).

mod dunning;
mod lifecycle;
mod metering;
mod periods;
mod plan_change;

pub use self::dunning::ProviderEvent;
pub use self::metering::late_usage_from;
pub use self::periods::{Boundary, local_date, local_midnight, period_at, roll, roll_boundaries};
use self::periods::{stored_zone, zone};
pub use self::plan_change::{Asked, PlanMove, plan_limit, plan_move, recurring_price};
use crate::entity::subscription;
use crate::error::Result;
use crate::invoices::Invoices;
use crate::payments::DunningSchedule;
use crate::period::Line;
use crate::plans::{Catalog, PlanVersion};
use audit::AuditLog;
use authz::{Action, Permit, ResourceType};
use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use kernel::{SharedClock, TenantTx};
use rust_decimal::Decimal;
use sea_orm::{ActiveModelTrait, EntityTrait, IntoActiveModel};
use std::sync::Arc;
use uuid::Uuid;

pub use crate::entity::subscription::Status;

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
            status: row.status,
            time_zone: stored_zone(&row.time_zone)?,
            billing_anchor: row.billing_anchor,
            trial_ends_at: row.trial_ends_at,
            current_period_start: row.current_period_start,
            current_period_end: row.current_period_end,
            scheduled_plan,
            cancel_at_period_end: row.cancel_at_period_end,
            canceled_at: row.canceled_at,
            tax_rate: stored_tax_rate(&row.tax_rate)?,
        })
    }

    /// The subscription as of now, for owners and billing admins (`None`: never
    /// subscribed).
    pub async fn current(&self, tx: &TenantTx, permit: &Permit) -> Result<Option<Subscription>> {
        permit.ensure(tx, ResourceType::Billing, Action::Read, None)?;
        self.effective(tx).await
    }

    /// The subscription as of now, without a permit: what entitlement checks read.
    pub async fn effective(&self, tx: &TenantTx) -> Result<Option<Subscription>> {
        let Some(mut row) = self.row(tx).await? else {
            return Ok(None);
        };
        roll(&mut row, self.clock.now())?;
        Ok(Some(self.to_subscription(tx, &row).await?))
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
}

/// The subscription row a transaction last read or wrote (see `Subscriptions::row`).
#[derive(Debug, Clone)]
struct SubscriptionRow(Option<subscription::Model>);

/// A subscription's stored tax rate; one that does not parse is corrupt data (an
/// internal error, logged once), never a rate of zero.
pub(super) fn stored_tax_rate(text: &str) -> Result<Decimal> {
    use std::str::FromStr;
    Decimal::from_str(text).map_err(|_| crate::error::corrupt("subscriptions.tax_rate", text))
}
