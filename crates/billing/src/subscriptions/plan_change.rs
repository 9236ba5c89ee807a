//! Changing plans: an upgrade at once with prorations, a downgrade at the period's end
//! once current usage fits the new plan. The decision is [`plan_move`] (pure).

use super::{Effective, PlanChange, Status, Subscriptions, local_date, period_at, stored_zone};
use crate::catalog::{Charge, PlanDefinition};
use crate::entity::{invoice_item, subscription};
use crate::error::{Error, Result};
use crate::money::Money;
use crate::period::{Line, proration_lines};
use audit::NewEvent;
use authz::{Action, Permit, ResourceType};
use chrono::{DateTime, Utc};
use kernel::{Limit, TenantTx};
use rust_decimal::Decimal;
use sea_orm::{ActiveValue::Set, ConnectionTrait, EntityTrait, Statement};
use uuid::Uuid;

/// What a plan change is asked for: the plan the subscription is on, or another with its
/// recurring price and the current one's for the organization's seats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Asked {
    TheCurrentPlan,
    AnotherPlan {
        old_price: Decimal,
        new_price: Decimal,
    },
}

/// What a plan change does to a live subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlanMove {
    /// The plan it is on, with nothing scheduled: refused (`ALREADY_ON_PLAN`).
    AlreadyOnPlan,
    /// The plan it is on, with a downgrade scheduled: staying after all, the downgrade
    /// is dropped.
    DropScheduledDowngrade,
    /// A cheaper plan out of a trial: at the period's end, once usage fits its limits.
    DowngradeAtPeriodEnd,
    /// A plan at least as dear, or any plan during a trial: at once, with prorations for
    /// the rest of the period unless in a trial (which costs nothing yet). A downgrade
    /// scheduled before is superseded.
    ChangeNow { prorate: bool },
}

/// The plan change decision, from what was loaded: what is asked for, whether a
/// downgrade is scheduled, and whether the subscription is in its trial.
pub fn plan_move(asked: Asked, downgrade_scheduled: bool, trialing: bool) -> PlanMove {
    match asked {
        Asked::TheCurrentPlan if downgrade_scheduled => PlanMove::DropScheduledDowngrade,
        Asked::TheCurrentPlan => PlanMove::AlreadyOnPlan,
        Asked::AnotherPlan {
            old_price,
            new_price,
        } if !trialing && new_price < old_price => PlanMove::DowngradeAtPeriodEnd,
        Asked::AnotherPlan { .. } => PlanMove::ChangeNow { prorate: !trialing },
    }
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
pub(super) async fn usage_of(tx: &TenantTx, limit: Limit, now: DateTime<Utc>) -> Result<u64> {
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
            .filter(|row| row.status != Status::Canceled);
        let Some(row) = live else {
            return self.start(tx, current, &target, time_zone, now).await;
        };
        let mut row = row.clone();
        let plan = self.catalog.version(tx.conn(), row.plan_version_id).await?;
        let trialing = row.status == Status::Trialing;
        let currency = plan.definition.currency()?;
        // Loaded: what is asked for, priced for the organization's seats.
        let asked = if target.id == plan.id {
            Asked::TheCurrentPlan
        } else {
            if target.definition.currency()? != currency {
                return Err(Error::CurrencyMismatch {
                    left: currency.code().to_owned(),
                    right: target.definition.currency.clone(),
                });
            }
            let seats = crate::invoices::members(tx).await?;
            Asked::AnotherPlan {
                old_price: recurring_price(&plan.definition, seats)?,
                new_price: recurring_price(&target.definition, seats)?,
            }
        };
        // Decided, then saved and audited as decided.
        let prorate = match plan_move(asked, row.scheduled_plan_version_id.is_some(), trialing) {
            PlanMove::AlreadyOnPlan => return Err(Error::AlreadyOnPlan(code.to_owned())),
            PlanMove::DropScheduledDowngrade => {
                row.scheduled_plan_version_id = None;
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
            PlanMove::DowngradeAtPeriodEnd => {
                // What the organization has must fit the new plan.
                for limit in [Limit::Seats, Limit::Projects, Limit::DocumentsPerProject] {
                    if let Some(max) = plan_limit(&target.definition, limit) {
                        let usage = usage_of(tx, limit, now).await?;
                        if usage > max {
                            return Err(Error::LimitExceeded(kernel::LimitExceeded {
                                limit,
                                max,
                                usage,
                            }));
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
            PlanMove::ChangeNow { prorate } => prorate,
        };
        let mut prorations = Vec::new();
        if let (
            true,
            Asked::AnotherPlan {
                old_price,
                new_price,
            },
        ) = (prorate, asked)
        {
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

    pub(super) async fn changed(
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{Charge, PlanDefinition};

    #[test]
    fn a_plan_change_is_refused_dropped_scheduled_or_made_now() {
        let other = |old: i64, new: i64| Asked::AnotherPlan {
            old_price: Decimal::from(old),
            new_price: Decimal::from(new),
        };
        let now = |prorate| PlanMove::ChangeNow { prorate };
        // (asked, downgrade scheduled, trialing) → move
        let cases = [
            (Asked::TheCurrentPlan, false, false, PlanMove::AlreadyOnPlan),
            (Asked::TheCurrentPlan, false, true, PlanMove::AlreadyOnPlan),
            (
                Asked::TheCurrentPlan,
                true,
                false,
                PlanMove::DropScheduledDowngrade,
            ),
            (other(109, 99), false, false, PlanMove::DowngradeAtPeriodEnd),
            // Another downgrade replaces the one scheduled.
            (other(109, 49), true, false, PlanMove::DowngradeAtPeriodEnd),
            (other(99, 109), false, false, now(true)),
            // The same price is not a downgrade: at once (prorations of zero are dropped).
            (other(99, 99), false, false, now(true)),
            // An upgrade supersedes a scheduled downgrade.
            (other(99, 109), true, false, now(true)),
            // In a trial every change is at once and free.
            (other(109, 99), false, true, now(false)),
            (other(99, 109), false, true, now(false)),
        ];
        for (asked, scheduled, trialing, expected) in cases {
            assert_eq!(
                plan_move(asked, scheduled, trialing),
                expected,
                "{asked:?}, scheduled {scheduled}, trialing {trialing}"
            );
        }
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
