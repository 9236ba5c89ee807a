//! Metering against the plan: API call quotas, request rates, and which period late
//! usage may still be reported for.

use super::{Status, Subscription, Subscriptions, period_at};
use crate::error::{Error, Result};
use authz::Permit;
use chrono::{DateTime, Duration, Utc};
use kernel::TenantTx;
use uuid::Uuid;

impl Subscriptions {
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
    pub(super) fn previous_period(
        &self,
        sub: &Subscription,
    ) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
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
}
