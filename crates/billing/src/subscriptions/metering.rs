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
        Ok(late_usage_from(
            sub.status,
            self.clock.now(),
            sub.current_period_start,
            grace,
            self.previous_period(&sub).map(|(start, _)| start),
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

/// The late-usage window, decided: the oldest occurrence time usage may be reported for,
/// given the subscription's status, now, the current period's start, the grace after a
/// period ends, and the previous paid period's start (if there was one). `None` for a
/// cancelled subscription (nothing is invoiced, so nothing is late); a trial has no
/// previous period to bill late.
pub fn late_usage_from(
    status: Status,
    now: DateTime<Utc>,
    current_start: DateTime<Utc>,
    grace: Duration,
    previous_start: Option<DateTime<Utc>>,
) -> Option<DateTime<Utc>> {
    match status {
        Status::Canceled => None,
        Status::Trialing => Some(current_start),
        _ if now >= current_start + grace => Some(current_start),
        _ => Some(previous_start.unwrap_or(current_start)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn late_usage_is_accepted_for_the_previous_period_during_the_grace_only() {
        let at = |day: u32, hour: u32| {
            chrono::TimeZone::with_ymd_and_hms(&Utc, 2027, 3, day, hour, 0, 0).unwrap()
        };
        let (start, previous) = (
            at(1, 0),
            Some(chrono::TimeZone::with_ymd_and_hms(&Utc, 2027, 2, 1, 0, 0, 0).unwrap()),
        );
        let grace = Duration::days(3);
        // (status, now, previous period) → oldest reportable
        let cases = [
            (Status::Active, at(2, 0), previous, previous),
            (Status::Active, at(3, 23), previous, previous),
            (Status::Active, at(4, 0), previous, Some(start)),
            (Status::Active, at(2, 0), None, Some(start)),
            (Status::PastDue, at(2, 0), previous, previous),
            (Status::Suspended, at(2, 0), previous, previous),
            (Status::Trialing, at(2, 0), previous, Some(start)),
            (Status::Canceled, at(2, 0), previous, None),
        ];
        for (status, now, previous, expected) in cases {
            assert_eq!(
                late_usage_from(status, now, start, grace, previous),
                expected,
                "{status:?} at {now}"
            );
        }
    }
}
