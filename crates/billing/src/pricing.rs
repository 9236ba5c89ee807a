//! Charge models: what a quantity costs, as an exact decimal in major units. Rounding
//! happens once, when the amount becomes an invoice line ([`crate::Line`]).
//!
//! Tiers have inclusive upper bounds: tier i covers (up_to(i−1), up_to(i)], the last tier
//! is open. Graduated prices each slice at its tier and adds a tier's flat fee once usage
//! reaches it; volume prices every unit at the tier holding the total, plus that tier's
//! flat fee (a deliberate cliff at the boundaries). Zero usage costs nothing, flat fees
//! included. Package subtracts free units, then rounds up to whole packages.

use crate::catalog::exact;
use crate::error::{Error, Result};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// Most decimal places of a unit price or quantity.
pub const MAX_SCALE: u32 = 12;

/// One tier of a tiered price.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tier {
    /// Inclusive upper bound; `None` for the last, open tier.
    #[serde(with = "exact::option")]
    pub up_to: Option<Decimal>,
    /// Price of each unit in the tier.
    #[serde(with = "exact")]
    pub unit_price: Decimal,
    /// Added once when usage reaches the tier.
    #[serde(with = "exact", default)]
    pub flat_fee: Decimal,
}

/// How a quantity is priced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "model", rename_all = "snake_case", deny_unknown_fields)]
pub enum ChargeModel {
    /// Every unit at one price.
    Standard {
        /// Price per unit.
        #[serde(with = "exact")]
        unit_price: Decimal,
    },
    /// Each slice of the quantity at its own tier's price.
    Graduated {
        /// Ascending tiers, the last open.
        tiers: Vec<Tier>,
    },
    /// Every unit at the price of the tier that holds the total.
    Volume {
        /// Ascending tiers, the last open.
        tiers: Vec<Tier>,
    },
    /// Whole packages of units after the free ones.
    Package {
        /// Units per package (positive).
        #[serde(with = "exact")]
        size: Decimal,
        /// Price per started package.
        #[serde(with = "exact")]
        price: Decimal,
        /// Units that cost nothing.
        #[serde(with = "exact", default)]
        free_units: Decimal,
    },
}

fn check_scale(field: &'static str, value: Decimal) -> Result<()> {
    if value.scale() > MAX_SCALE || value.is_sign_negative() {
        return Err(Error::InvalidPrice {
            field,
            reason: format!("must be non-negative with at most {MAX_SCALE} decimal places"),
        });
    }
    Ok(())
}

fn check_tiers(tiers: &[Tier]) -> Result<()> {
    let invalid = |reason: &str| Error::InvalidPrice {
        field: "tiers",
        reason: reason.to_owned(),
    };
    let Some(last) = tiers.last() else {
        return Err(invalid("at least one tier"));
    };
    if last.up_to.is_some() {
        return Err(invalid("the last tier must be open (no upper bound)"));
    }
    let mut previous = Decimal::ZERO;
    for tier in &tiers[..tiers.len() - 1] {
        let Some(up_to) = tier.up_to else {
            return Err(invalid("only the last tier may be open"));
        };
        if up_to <= previous {
            return Err(invalid("upper bounds must be positive and ascending"));
        }
        check_scale("tiers.up_to", up_to)?;
        previous = up_to;
    }
    for tier in tiers {
        check_scale("tiers.unit_price", tier.unit_price)?;
        check_scale("tiers.flat_fee", tier.flat_fee)?;
    }
    Ok(())
}

impl ChargeModel {
    /// Checks prices, scales and tier order.
    pub fn validate(&self) -> Result<()> {
        match self {
            Self::Standard { unit_price } => check_scale("unit_price", *unit_price),
            Self::Graduated { tiers } | Self::Volume { tiers } => check_tiers(tiers),
            Self::Package {
                size,
                price,
                free_units,
            } => {
                check_scale("size", *size)?;
                check_scale("price", *price)?;
                check_scale("free_units", *free_units)?;
                if size.is_zero() {
                    return Err(Error::InvalidPrice {
                        field: "size",
                        reason: "must be positive".into(),
                    });
                }
                Ok(())
            }
        }
    }

    /// What `quantity` costs, exactly, in major units.
    pub fn amount(&self, quantity: Decimal) -> Result<Decimal> {
        self.validate()?;
        check_scale("quantity", quantity)?;
        if quantity.is_zero() {
            return Ok(Decimal::ZERO);
        }
        let overflow = || Error::Overflow;
        match self {
            Self::Standard { unit_price } => unit_price.checked_mul(quantity).ok_or_else(overflow),
            Self::Graduated { tiers } => {
                let mut total = Decimal::ZERO;
                let mut lower = Decimal::ZERO;
                for tier in tiers {
                    if quantity <= lower {
                        break;
                    }
                    let upper = tier.up_to.map_or(quantity, |u| u.min(quantity));
                    let slice = upper.checked_sub(lower).ok_or_else(overflow)?;
                    let cost = tier
                        .unit_price
                        .checked_mul(slice)
                        .and_then(|c| c.checked_add(tier.flat_fee))
                        .ok_or_else(overflow)?;
                    total = total.checked_add(cost).ok_or_else(overflow)?;
                    match tier.up_to {
                        Some(up_to) => lower = up_to,
                        None => break,
                    }
                }
                Ok(total)
            }
            Self::Volume { tiers } => {
                let tier = tiers
                    .iter()
                    .find(|t| t.up_to.is_none_or(|up_to| quantity <= up_to))
                    .ok_or_else(|| Error::InvalidPrice {
                        field: "tiers",
                        reason: "no tier holds the quantity".into(),
                    })?;
                tier.unit_price
                    .checked_mul(quantity)
                    .and_then(|c| c.checked_add(tier.flat_fee))
                    .ok_or_else(overflow)
            }
            Self::Package {
                size,
                price,
                free_units,
            } => {
                let billable = quantity
                    .checked_sub(*free_units)
                    .ok_or_else(overflow)?
                    .max(Decimal::ZERO);
                let packages = billable.checked_div(*size).ok_or_else(overflow)?.ceil();
                price.checked_mul(packages).ok_or_else(overflow)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rust_decimal_macros::dec;

    fn worked_example_tiers() -> Vec<Tier> {
        vec![
            Tier {
                up_to: Some(dec!(100)),
                unit_price: dec!(1.00),
                flat_fee: dec!(0),
            },
            Tier {
                up_to: Some(dec!(1000)),
                unit_price: dec!(0.80),
                flat_fee: dec!(0),
            },
            Tier {
                up_to: None,
                unit_price: dec!(0.50),
                flat_fee: dec!(0),
            },
        ]
    }

    #[test]
    fn the_worked_example_of_the_billing_semantics() {
        let graduated = ChargeModel::Graduated {
            tiers: worked_example_tiers(),
        };
        let volume = ChargeModel::Volume {
            tiers: worked_example_tiers(),
        };
        assert_eq!(graduated.amount(dec!(1234)).unwrap(), dec!(937.00));
        assert_eq!(volume.amount(dec!(1234)).unwrap(), dec!(617.00));
    }

    #[test]
    fn volume_has_a_cliff_at_the_boundary_and_bounds_are_inclusive() {
        let volume = ChargeModel::Volume {
            tiers: worked_example_tiers(),
        };
        assert_eq!(volume.amount(dec!(1000)).unwrap(), dec!(800.00));
        assert_eq!(volume.amount(dec!(1001)).unwrap(), dec!(500.50));
        assert_eq!(volume.amount(dec!(100)).unwrap(), dec!(100.00));
        // A fractional quantity between two integer bounds belongs to the upper tier.
        assert_eq!(volume.amount(dec!(100.5)).unwrap(), dec!(80.400));
        let graduated = ChargeModel::Graduated {
            tiers: worked_example_tiers(),
        };
        assert_eq!(graduated.amount(dec!(100)).unwrap(), dec!(100.00));
        assert_eq!(graduated.amount(dec!(100.5)).unwrap(), dec!(100.400));
    }

    #[test]
    fn flat_fees_apply_once_a_tier_is_reached_and_never_at_zero() {
        let tiers = vec![
            Tier {
                up_to: Some(dec!(10)),
                unit_price: dec!(0),
                flat_fee: dec!(5),
            },
            Tier {
                up_to: None,
                unit_price: dec!(1),
                flat_fee: dec!(20),
            },
        ];
        let graduated = ChargeModel::Graduated {
            tiers: tiers.clone(),
        };
        assert_eq!(graduated.amount(dec!(0)).unwrap(), dec!(0));
        assert_eq!(graduated.amount(dec!(3)).unwrap(), dec!(5));
        assert_eq!(graduated.amount(dec!(10)).unwrap(), dec!(5));
        assert_eq!(graduated.amount(dec!(11)).unwrap(), dec!(26));
        let volume = ChargeModel::Volume { tiers };
        assert_eq!(volume.amount(dec!(0)).unwrap(), dec!(0));
        assert_eq!(volume.amount(dec!(11)).unwrap(), dec!(31));
    }

    #[test]
    fn packages_subtract_free_units_then_round_up() {
        let package = ChargeModel::Package {
            size: dec!(100),
            price: dec!(5),
            free_units: dec!(50),
        };
        assert_eq!(package.amount(dec!(50)).unwrap(), dec!(0));
        assert_eq!(package.amount(dec!(51)).unwrap(), dec!(5));
        assert_eq!(package.amount(dec!(150)).unwrap(), dec!(5));
        assert_eq!(package.amount(dec!(150.000000000001)).unwrap(), dec!(10));
    }

    #[test]
    fn malformed_prices_are_refused() {
        let open_middle = ChargeModel::Graduated {
            tiers: vec![
                Tier {
                    up_to: None,
                    unit_price: dec!(1),
                    flat_fee: dec!(0),
                },
                Tier {
                    up_to: None,
                    unit_price: dec!(1),
                    flat_fee: dec!(0),
                },
            ],
        };
        assert!(open_middle.validate().is_err());
        let descending = ChargeModel::Volume {
            tiers: vec![
                Tier {
                    up_to: Some(dec!(10)),
                    unit_price: dec!(1),
                    flat_fee: dec!(0),
                },
                Tier {
                    up_to: Some(dec!(5)),
                    unit_price: dec!(1),
                    flat_fee: dec!(0),
                },
                Tier {
                    up_to: None,
                    unit_price: dec!(1),
                    flat_fee: dec!(0),
                },
            ],
        };
        assert!(descending.validate().is_err());
        let too_precise = ChargeModel::Standard {
            unit_price: dec!(0.0000000000001),
        };
        assert!(too_precise.validate().is_err());
        assert!(
            ChargeModel::Standard {
                unit_price: dec!(-1)
            }
            .validate()
            .is_err()
        );
        assert!(
            ChargeModel::Package {
                size: dec!(0),
                price: dec!(1),
                free_units: dec!(0)
            }
            .validate()
            .is_err()
        );
    }

    proptest! {
        /// More usage never costs less under graduated pricing, and graduated never
        /// exceeds pricing every unit at the first tier's (highest) price.
        #[test]
        fn graduated_is_monotonic(a in 0u32..5_000, b in 0u32..5_000) {
            let graduated = ChargeModel::Graduated { tiers: worked_example_tiers() };
            let (low, high) = (a.min(b), a.max(b));
            let low_cost = graduated.amount(Decimal::from(low)).unwrap();
            let high_cost = graduated.amount(Decimal::from(high)).unwrap();
            prop_assert!(low_cost <= high_cost);
            prop_assert!(high_cost <= Decimal::from(high));
        }

        /// Within the first tier there is nothing to graduate: both models price every
        /// unit at the first tier's price (fractional quantities included).
        #[test]
        fn graduated_equals_volume_within_the_first_tier(hundredths in 0u32..=10_000) {
            let quantity = Decimal::new(i64::from(hundredths), 2);
            let graduated = ChargeModel::Graduated { tiers: worked_example_tiers() };
            let volume = ChargeModel::Volume { tiers: worked_example_tiers() };
            prop_assert_eq!(graduated.amount(quantity).unwrap(), volume.amount(quantity).unwrap());
        }

        /// Volume pricing equals standard pricing at the tier that holds the quantity.
        #[test]
        fn volume_prices_every_unit_at_the_holding_tier(q in 1u32..5_000) {
            let volume = ChargeModel::Volume { tiers: worked_example_tiers() };
            let quantity = Decimal::from(q);
            let price = if q <= 100 { dec!(1.00) } else if q <= 1000 { dec!(0.80) } else { dec!(0.50) };
            prop_assert_eq!(volume.amount(quantity).unwrap(), price * quantity);
        }
    }
}
