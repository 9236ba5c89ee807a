//! Periods: monthly from a billing anchor (a local date, clamped at month ends), with
//! boundaries at local midnight in the organization's time zone, and the pure roll of a
//! stored subscription to an instant.

use super::{Status, Step};
use crate::entity::subscription;
use crate::error::{Error, Result};
use crate::period::{Period, monthly_period};
use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use std::str::FromStr;
use uuid::Uuid;

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
pub(super) fn stored_zone(name: &str) -> Result<Tz> {
    Tz::from_str(name).map_err(|_| crate::error::corrupt("subscriptions.time_zone", name))
}

pub(super) fn zone(name: &str) -> Result<Tz> {
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
        let status = row.status;
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
            row.status = Status::Canceled;
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
            row.status = Status::Active;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::subscriptions::{Status, Step};
    use uuid::Uuid;

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
            status,
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
        assert_eq!(sub.status, Status::Active);
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
        assert_eq!(sub.status, Status::Canceled);
        assert_eq!(sub.canceled_at, Some(at("2027-03-10T00:00:00Z")));
    }
}
