//! Billing periods: monthly cycles from an anchor date with month-end clamping (anchored
//! on Jan 31, periods end Feb 28 or 29, Mar 31, Apr 30), and proration by day. Dates are
//! in the organization's time zone; turning instants into those dates is the caller's.

use crate::error::{Error, Result};
use crate::money::{Currency, Money};
use chrono::{Datelike, NaiveDate};
use rust_decimal::Decimal;

/// One billing period: `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    /// First day.
    pub start: NaiveDate,
    /// The day after the last (the next period's start).
    pub end: NaiveDate,
}

impl Period {
    /// Days in the period.
    pub fn days(&self) -> i64 {
        (self.end - self.start).num_days()
    }
}

/// The `anchor`'s day of month in the month `months` after the anchor's, clamped to the
/// month's last day.
fn nth_start(anchor: NaiveDate, months: i32) -> Result<NaiveDate> {
    let index = anchor.year() * 12 + anchor.month0() as i32 + months;
    let (year, month0) = (index.div_euclid(12), index.rem_euclid(12) as u32);
    let mut day = anchor.day();
    loop {
        if let Some(date) = NaiveDate::from_ymd_opt(year, month0 + 1, day) {
            return Ok(date);
        }
        if day <= 28 {
            return Err(Error::InvalidPeriod("date out of range".into()));
        }
        day -= 1;
    }
}

/// The monthly period anchored on `anchor` that holds `day`.
pub fn monthly_period(anchor: NaiveDate, day: NaiveDate) -> Result<Period> {
    if day < anchor {
        return Err(Error::InvalidPeriod(format!(
            "{day} is before the billing anchor {anchor}"
        )));
    }
    let mut months = (day.year() - anchor.year()) * 12 + day.month() as i32 - anchor.month() as i32;
    if nth_start(anchor, months)? > day {
        months -= 1;
    }
    Ok(Period {
        start: nth_start(anchor, months)?,
        end: nth_start(anchor, months + 1)?,
    })
}

/// An invoice line: a description and an amount rounded once, HALF_UP, from its exact
/// value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// What it is for.
    pub description: String,
    /// The rounded amount (negative for a credit).
    pub amount: Money,
}

impl Line {
    /// A line of the exact `amount` in major units, rounded once.
    pub fn rounded(
        description: impl Into<String>,
        amount: Decimal,
        currency: Currency,
    ) -> Result<Self> {
        Ok(Self {
            description: description.into(),
            amount: Money::round_half_up(amount, currency)?,
        })
    }
}

/// The two lines of an immediate plan change on `day` within `period`: a credit for the
/// unused part of the old price and a charge for the remaining part of the new one, each
/// rounded on its own. The factor is remaining days (from `day` to the period's end) over
/// the days of the period.
pub fn proration_lines(
    period: Period,
    day: NaiveDate,
    old_price: Money,
    new_price: Money,
) -> Result<[Line; 2]> {
    if day < period.start || day >= period.end {
        return Err(Error::InvalidPeriod(format!(
            "{day} is outside the period {}..{}",
            period.start, period.end
        )));
    }
    let currency = old_price.currency();
    if new_price.currency() != currency {
        return Err(Error::CurrencyMismatch {
            left: currency.code().to_owned(),
            right: new_price.currency().code().to_owned(),
        });
    }
    let remaining = Decimal::from((period.end - day).num_days());
    let days = Decimal::from(period.days());
    let unused = |price: Money| {
        price
            .to_decimal()
            .checked_mul(remaining)
            .and_then(|v| v.checked_div(days))
            .ok_or(Error::Overflow)
    };
    Ok([
        Line::rounded(
            format!("Unused time on the old plan ({remaining} of {days} days)"),
            -unused(old_price)?,
            currency,
        )?,
        Line::rounded(
            format!("Remaining time on the new plan ({remaining} of {days} days)"),
            unused(new_price)?,
            currency,
        )?,
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn an_anchor_on_the_31st_clamps_to_each_month_end() {
        let anchor = date(2027, 1, 31);
        let ends: Vec<NaiveDate> = [date(2027, 2, 1), date(2027, 3, 1), date(2027, 4, 5)]
            .into_iter()
            .map(|d| monthly_period(anchor, d).unwrap().end)
            .collect();
        assert_eq!(
            ends,
            [date(2027, 2, 28), date(2027, 3, 31), date(2027, 4, 30)]
        );
        // A leap year.
        let leap = monthly_period(date(2028, 1, 31), date(2028, 2, 10)).unwrap();
        assert_eq!(leap.end, date(2028, 2, 29));
        // The period after a clamped one starts on the clamped day and ends on the 31st.
        let march = monthly_period(anchor, date(2027, 3, 15)).unwrap();
        assert_eq!(
            (march.start, march.end),
            (date(2027, 2, 28), date(2027, 3, 31))
        );
        // The day a period ends belongs to the next one.
        let on_end = monthly_period(anchor, date(2027, 2, 28)).unwrap();
        assert_eq!(on_end.start, date(2027, 2, 28));
        // Across a year.
        let december = monthly_period(anchor, date(2027, 12, 31)).unwrap();
        assert_eq!(
            (december.start, december.end),
            (date(2027, 12, 31), date(2028, 1, 31))
        );
        assert!(monthly_period(anchor, date(2027, 1, 30)).is_err());
    }

    #[test]
    fn an_upgrade_credits_the_unused_old_price_and_charges_the_new_each_rounded() {
        let usd = Currency::parse("USD").unwrap();
        let period = monthly_period(date(2027, 4, 1), date(2027, 4, 11)).unwrap();
        assert_eq!(period.days(), 30);
        // 20 of 30 days left: 10.00 × 2/3 = 6.666… → 6.67 credit; 25.00 × 2/3 = 16.666… → 16.67.
        let [credit, charge] = proration_lines(
            period,
            date(2027, 4, 11),
            Money::from_minor(1_000, usd),
            Money::from_minor(2_500, usd),
        )
        .unwrap();
        assert_eq!(credit.amount.minor(), -667);
        assert_eq!(charge.amount.minor(), 1_667);
        let total = Money::sum(usd, [credit.amount, charge.amount]).unwrap();
        assert_eq!(
            total.minor(),
            1_000,
            "sum of rounded lines, not rounded sum"
        );
        let eur = Currency::parse("EUR").unwrap();
        assert!(
            proration_lines(
                period,
                date(2027, 4, 11),
                Money::from_minor(1, usd),
                Money::from_minor(1, eur)
            )
            .is_err()
        );
        assert!(
            proration_lines(
                period,
                date(2027, 5, 1),
                Money::from_minor(1, usd),
                Money::from_minor(1, usd)
            )
            .is_err()
        );
    }
}
