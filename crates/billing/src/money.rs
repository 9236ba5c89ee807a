//! Money: integer minor units of an ISO-4217 currency. Decimal amounts (unit price ×
//! quantity) stay exact until they become a line, where they are rounded once, HALF_UP,
//! to the currency's exponent. No floats anywhere.

use crate::error::{Error, Result};
use rust_decimal::{Decimal, RoundingStrategy};
use std::fmt;

/// An ISO-4217 currency the platform bills in, with its exponent (minor-unit digits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Currency {
    code: [u8; 3],
    exponent: u32,
}

/// Supported currencies: (code, exponent). Zero-decimal currencies are never multiplied
/// by 100; the dinars and the rial have three decimals.
const CURRENCIES: &[(&str, u32)] = &[
    ("USD", 2),
    ("EUR", 2),
    ("GBP", 2),
    ("CHF", 2),
    ("CAD", 2),
    ("AUD", 2),
    ("SEK", 2),
    ("NOK", 2),
    ("DKK", 2),
    ("PLN", 2),
    ("CZK", 2),
    ("INR", 2),
    ("BRL", 2),
    ("MXN", 2),
    ("SGD", 2),
    ("HKD", 2),
    ("CNY", 2),
    ("NZD", 2),
    ("ZAR", 2),
    ("JPY", 0),
    ("KRW", 0),
    ("VND", 0),
    ("CLP", 0),
    ("ISK", 0),
    ("BHD", 3),
    ("JOD", 3),
    ("KWD", 3),
    ("OMR", 3),
    ("TND", 3),
];

impl Currency {
    /// The currency with ISO-4217 `code` (upper case), if the platform bills in it.
    pub fn parse(code: &str) -> Result<Self> {
        CURRENCIES
            .iter()
            .find(|(c, _)| *c == code)
            .map(|(c, exponent)| {
                let bytes = c.as_bytes();
                Self {
                    code: [bytes[0], bytes[1], bytes[2]],
                    exponent: *exponent,
                }
            })
            .ok_or_else(|| Error::UnknownCurrency(code.to_owned()))
    }

    /// The three-letter code.
    pub fn code(&self) -> &str {
        std::str::from_utf8(&self.code).unwrap_or("???")
    }

    /// Digits after the decimal point: 0 (JPY), 2 (USD), 3 (KWD).
    pub const fn exponent(&self) -> u32 {
        self.exponent
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// An amount of one currency in its minor units (cents, yen, fils).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Money {
    minor: i64,
    currency: Currency,
}

impl Money {
    /// `minor` units of `currency`.
    pub const fn from_minor(minor: i64, currency: Currency) -> Self {
        Self { minor, currency }
    }

    /// Nothing, in `currency`.
    pub const fn zero(currency: Currency) -> Self {
        Self::from_minor(0, currency)
    }

    /// The one rounding of billing: an exact decimal amount in major units, HALF_UP (away
    /// from zero at the half) to the currency's exponent: 0.105 USD → 0.11 USD.
    pub fn round_half_up(amount: Decimal, currency: Currency) -> Result<Self> {
        let rounded = amount
            .round_dp_with_strategy(currency.exponent, RoundingStrategy::MidpointAwayFromZero);
        let scale = Decimal::from(10i64.pow(currency.exponent));
        let minor = rounded
            .checked_mul(scale)
            .and_then(|m| i64::try_from(m.normalize()).ok())
            .ok_or(Error::Overflow)?;
        Ok(Self::from_minor(minor, currency))
    }

    /// Minor units.
    pub const fn minor(&self) -> i64 {
        self.minor
    }

    /// The currency.
    pub const fn currency(&self) -> Currency {
        self.currency
    }

    /// The amount in major units, exactly.
    pub fn to_decimal(&self) -> Decimal {
        Decimal::new(self.minor, self.currency.exponent)
    }

    /// The sum; amounts of different currencies do not add.
    pub fn checked_add(self, other: Self) -> Result<Self> {
        self.same_currency(other)?;
        let minor = self.minor.checked_add(other.minor).ok_or(Error::Overflow)?;
        Ok(Self::from_minor(minor, self.currency))
    }

    /// The difference; amounts of different currencies do not subtract.
    pub fn checked_sub(self, other: Self) -> Result<Self> {
        self.same_currency(other)?;
        let minor = self.minor.checked_sub(other.minor).ok_or(Error::Overflow)?;
        Ok(Self::from_minor(minor, self.currency))
    }

    /// The same amount with the opposite sign (a credit).
    pub fn negated(self) -> Result<Self> {
        let minor = self.minor.checked_neg().ok_or(Error::Overflow)?;
        Ok(Self::from_minor(minor, self.currency))
    }

    /// The sum of `amounts`, all in `currency`.
    pub fn sum(currency: Currency, amounts: impl IntoIterator<Item = Self>) -> Result<Self> {
        amounts
            .into_iter()
            .try_fold(Self::zero(currency), Self::checked_add)
    }

    fn same_currency(self, other: Self) -> Result<()> {
        if self.currency == other.currency {
            Ok(())
        } else {
            Err(Error::CurrencyMismatch {
                left: self.currency.code().to_owned(),
                right: other.currency.code().to_owned(),
            })
        }
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.to_decimal(), self.currency)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    fn usd() -> Currency {
        Currency::parse("USD").unwrap()
    }

    #[test]
    fn rounding_is_half_up_to_the_currency_exponent() {
        assert_eq!(
            Money::round_half_up(dec!(0.105), usd()).unwrap().minor(),
            11
        );
        assert_eq!(
            Money::round_half_up(dec!(0.104999), usd()).unwrap().minor(),
            10
        );
        assert_eq!(
            Money::round_half_up(dec!(-0.105), usd()).unwrap().minor(),
            -11
        );
        let jpy = Currency::parse("JPY").unwrap();
        assert_eq!(
            Money::round_half_up(dec!(1234.5), jpy).unwrap().minor(),
            1235
        );
        assert_eq!(
            Money::round_half_up(dec!(1234), jpy).unwrap().to_string(),
            "1234 JPY"
        );
        let kwd = Currency::parse("KWD").unwrap();
        let fils = Money::round_half_up(dec!(1.0005), kwd).unwrap();
        assert_eq!(fils.minor(), 1001);
        assert_eq!(fils.to_string(), "1.001 KWD");
    }

    #[test]
    fn different_currencies_do_not_add() {
        let eur = Currency::parse("EUR").unwrap();
        let sum = Money::from_minor(100, usd()).checked_add(Money::from_minor(100, eur));
        assert!(matches!(sum, Err(Error::CurrencyMismatch { .. })));
        assert_eq!(
            Money::from_minor(100, usd())
                .checked_add(Money::from_minor(5, usd()))
                .unwrap()
                .minor(),
            105
        );
    }

    #[test]
    fn unknown_currencies_and_overflow_are_errors() {
        assert!(matches!(
            Currency::parse("XYZ"),
            Err(Error::UnknownCurrency(_))
        ));
        assert!(matches!(
            Money::from_minor(i64::MAX, usd()).checked_add(Money::from_minor(1, usd())),
            Err(Error::Overflow)
        ));
        assert!(matches!(
            Money::round_half_up(Decimal::MAX, usd()),
            Err(Error::Overflow)
        ));
    }
}
