//! The catalog: billable metrics and plans. A plan is a code; what it costs and allows
//! lives in its versions, which are immutable once published (the application role may
//! only insert and read them). Subscriptions pin a version, so publishing a new one
//! changes nothing for existing customers until they move.
//!
//! Platform staff maintain the catalog as a file (`platform catalog import FILE`):
//! importing publishes a new version of every plan whose definition differs from its
//! latest, leaves the others alone (importing the same file twice changes nothing), and
//! creates metrics it does not know. A metric never changes once created: invoices of
//! pinned versions depend on how it aggregates.

use crate::error::{Error, Result};
use crate::metering::Aggregation;
use crate::money::{Currency, Money};
use crate::pricing::ChargeModel;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// A catalog file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogFile {
    /// Billable metrics.
    #[serde(default)]
    pub metrics: Vec<MetricDef>,
    /// Plans, each with its current definition.
    #[serde(default)]
    pub plans: Vec<PlanDef>,
}

/// A billable metric.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricDef {
    /// Stable code usage is reported under (`api_calls`).
    pub code: String,
    /// Display name.
    pub name: String,
    /// How a period's events become a quantity.
    pub aggregation: Aggregation,
    /// The largest value one event may report ([`DEFAULT_MAX_USAGE_VALUE`] when absent).
    #[serde(
        default,
        with = "exact::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_value: Option<Decimal>,
}

/// The largest value one usage event may report when its metric sets none.
pub const DEFAULT_MAX_USAGE_VALUE: Decimal = Decimal::from_parts(3_567_587_328, 232, 0, false, 0);

impl MetricDef {
    /// The largest value one event of this metric may report.
    pub fn max_value(&self) -> Decimal {
        self.max_value.unwrap_or(DEFAULT_MAX_USAGE_VALUE)
    }
}

/// A plan and its current definition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanDef {
    /// Stable code (`team`).
    pub code: String,
    /// What a version holds.
    #[serde(flatten)]
    pub definition: PlanDefinition,
}

/// What one version of a plan costs and allows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanDefinition {
    /// Display name.
    pub name: String,
    /// ISO-4217 currency of every price.
    pub currency: String,
    /// Days of trial a new subscription starts with (0: none).
    #[serde(default)]
    pub trial_days: u32,
    /// Charges, billed monthly.
    #[serde(default)]
    pub charges: Vec<Charge>,
    /// What the plan allows.
    #[serde(default)]
    pub entitlements: Entitlements,
}

/// One charge of a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Charge {
    /// A fixed fee per period, billed in advance.
    Fixed {
        /// Amount in major units (exact in the currency: 49.00 USD, 5000 JPY).
        #[serde(with = "exact")]
        amount: Decimal,
    },
    /// A price per seat (member) per period, billed in advance.
    PerSeat {
        /// Price per seat in major units (may have up to 12 decimals).
        #[serde(with = "exact")]
        unit_price: Decimal,
    },
    /// Usage of a metric over the period, billed in arrears.
    Usage {
        /// The metric's code.
        metric: String,
        /// How the period's quantity is priced.
        price: ChargeModel,
    },
}

/// What a plan allows.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entitlements {
    /// Features switched on (`sso`, `audit_export`, …); any other is off.
    #[serde(default)]
    pub features: BTreeSet<String>,
    /// Numeric limits; an absent limit is unlimited.
    #[serde(default)]
    pub limits: Limits,
    /// Metered quotas per period, by metric code.
    #[serde(default)]
    pub quotas: BTreeMap<String, Quota>,
}

/// Numeric limits of a plan (`None`: unlimited).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Members plus pending invitations.
    #[serde(default)]
    pub seats: Option<u64>,
    /// Projects.
    #[serde(default)]
    pub projects: Option<u64>,
    /// Documents per project.
    #[serde(default)]
    pub documents_per_project: Option<u64>,
    /// Requests a minute each API key of the organization may send (absent: the
    /// server's `RATE_LIMIT_API_KEY_PER_MINUTE`).
    #[serde(default)]
    pub requests_per_minute_per_api_key: Option<u32>,
}

/// A metered quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Quota {
    /// Units allowed per billing period.
    pub per_period: u64,
    /// Hard: beyond it calls are refused (`LIMIT_EXCEEDED`); soft: they are billed.
    #[serde(default = "hard_by_default")]
    pub hard: bool,
}

const fn hard_by_default() -> bool {
    true
}

/// Known feature flags (a typo in a catalog file is an error, not a feature nobody has).
pub const FEATURES: &[&str] = &["audit_export", "sso", "api_access", "custom_roles"];

/// Catalog codes: lower-case letters, digits and `_`, 1 to 50 characters.
fn check_code(field: &'static str, code: &str) -> Result<()> {
    let valid = !code.is_empty()
        && code.len() <= 50
        && code
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if valid {
        Ok(())
    } else {
        Err(Error::Invalid {
            field,
            reason: format!("`{code}`: 1 to 50 lower-case letters, digits and _"),
        })
    }
}

impl MetricDef {
    /// Checks the code, the name and the aggregation.
    pub fn validate(&self) -> Result<()> {
        check_code("metrics.code", &self.code)?;
        if self.name.trim().is_empty() || self.name.chars().count() > 100 {
            return Err(Error::Invalid {
                field: "metrics.name",
                reason: "1 to 100 characters".into(),
            });
        }
        if let Aggregation::UniqueCount { property } = &self.aggregation {
            check_code("metrics.aggregation.property", property)?;
        }
        if let Some(max) = self.max_value
            && (max <= Decimal::ZERO || max > DEFAULT_MAX_USAGE_VALUE * Decimal::from(1_000_000))
        {
            return Err(Error::Invalid {
                field: "metrics.max_value",
                reason: "more than 0 and at most 10^18".into(),
            });
        }
        Ok(())
    }
}

impl PlanDefinition {
    /// The currency.
    pub fn currency(&self) -> Result<Currency> {
        Currency::parse(&self.currency)
    }

    /// Checks the definition against the metrics it may name.
    pub fn validate(&self, metrics: &BTreeSet<String>) -> Result<()> {
        if self.name.trim().is_empty() || self.name.chars().count() > 100 {
            return Err(Error::Invalid {
                field: "plans.name",
                reason: "1 to 100 characters".into(),
            });
        }
        let currency = self.currency()?;
        if self.trial_days > 365 {
            return Err(Error::Invalid {
                field: "plans.trial_days",
                reason: "at most 365".into(),
            });
        }
        let unknown_metric = |field: &'static str, metric: &str| Error::Invalid {
            field,
            reason: format!("unknown metric `{metric}`"),
        };
        let mut usage_metrics = BTreeSet::new();
        let (mut fixed, mut per_seat) = (0, 0);
        for charge in &self.charges {
            match charge {
                Charge::Fixed { amount } => {
                    fixed += 1;
                    // A fixed fee is an amount, not a price: it must be payable as is.
                    let rounded = Money::round_half_up(*amount, currency)?;
                    if rounded.to_decimal() != *amount || amount.is_sign_negative() {
                        return Err(Error::InvalidPrice {
                            field: "charges.amount",
                            reason: format!(
                                "{amount} is not a non-negative amount of {}",
                                currency.code()
                            ),
                        });
                    }
                }
                Charge::PerSeat { unit_price } => {
                    per_seat += 1;
                    ChargeModel::Standard {
                        unit_price: *unit_price,
                    }
                    .validate()?;
                }
                Charge::Usage { metric, price } => {
                    if !metrics.contains(metric) {
                        return Err(unknown_metric("charges.metric", metric));
                    }
                    if !usage_metrics.insert(metric.clone()) {
                        return Err(Error::Invalid {
                            field: "charges.metric",
                            reason: format!("`{metric}` is charged twice"),
                        });
                    }
                    price.validate()?;
                }
            }
        }
        if fixed > 1 || per_seat > 1 {
            return Err(Error::Invalid {
                field: "charges",
                reason: "at most one fixed fee and one per-seat price".into(),
            });
        }
        for feature in &self.entitlements.features {
            if !FEATURES.contains(&feature.as_str()) {
                return Err(Error::Invalid {
                    field: "entitlements.features",
                    reason: format!(
                        "unknown feature `{feature}` (known: {})",
                        FEATURES.join(", ")
                    ),
                });
            }
        }
        for metric in self.entitlements.quotas.keys() {
            if !metrics.contains(metric) {
                return Err(unknown_metric("entitlements.quotas", metric));
            }
        }
        Ok(())
    }

    /// Whether `feature` is on.
    pub fn has_feature(&self, feature: &str) -> bool {
        self.entitlements.features.contains(feature)
    }

    /// The serialization stored with a version (and compared to tell whether an import
    /// changes a plan): field order fixed by the types, sets and maps sorted.
    pub fn to_stored(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Reads a stored definition.
    pub fn from_stored(text: &str) -> Result<Self> {
        serde_json::from_str(text).map_err(|e| Error::Invalid {
            field: "plan_versions.definition",
            reason: e.to_string(),
        })
    }
}

impl CatalogFile {
    /// Reads a catalog file (JSON).
    pub fn parse(text: &str) -> Result<Self> {
        serde_json::from_str(text).map_err(|e| Error::Invalid {
            field: "catalog",
            reason: e.to_string(),
        })
    }

    /// Checks every metric and plan; `known_metrics` are those already stored.
    pub fn validate(&self, known_metrics: &BTreeSet<String>) -> Result<()> {
        let mut metrics = known_metrics.clone();
        let mut codes = BTreeSet::new();
        for metric in &self.metrics {
            metric.validate()?;
            if !codes.insert(metric.code.clone()) {
                return Err(Error::Invalid {
                    field: "metrics.code",
                    reason: format!("`{}` appears twice", metric.code),
                });
            }
            metrics.insert(metric.code.clone());
        }
        let mut plans = BTreeSet::new();
        for plan in &self.plans {
            check_code("plans.code", &plan.code)?;
            if !plans.insert(plan.code.clone()) {
                return Err(Error::Invalid {
                    field: "plans.code",
                    reason: format!("`{}` appears twice", plan.code),
                });
            }
            plan.definition.validate(&metrics)?;
        }
        Ok(())
    }
}

/// Decimals as JSON strings ("49.00") or integers, never floats: a float has already
/// lost the exact value before it reaches us.
pub(crate) mod exact {
    use rust_decimal::Decimal;
    use serde::{Deserialize, Deserializer, Serializer, de::Error as _};
    use std::str::FromStr;

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Written {
        Text(String),
        Integer(i64),
        Float(f64),
    }

    pub(crate) fn serialize<S: Serializer>(
        value: &Decimal,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        // Normalized, so "49.00" and "49" store (and compare) alike.
        serializer.serialize_str(&value.normalize().to_string())
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Decimal, D::Error> {
        match Written::deserialize(deserializer)? {
            Written::Text(text) => Decimal::from_str(text.trim()).map_err(D::Error::custom),
            Written::Integer(n) => Ok(Decimal::from(n)),
            Written::Float(f) => Err(D::Error::custom(format!(
                "write {f} as a string (\"{f}\"): prices are exact decimals"
            ))),
        }
    }

    /// The same for optional decimals.
    pub(crate) mod option {
        use rust_decimal::Decimal;
        use serde::{Deserialize, Deserializer, Serializer};

        pub(crate) fn serialize<S: Serializer>(
            value: &Option<Decimal>,
            serializer: S,
        ) -> Result<S::Ok, S::Error> {
            match value {
                Some(value) => super::serialize(value, serializer),
                None => serializer.serialize_none(),
            }
        }

        pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
            deserializer: D,
        ) -> Result<Option<Decimal>, D::Error> {
            #[derive(Deserialize)]
            struct Wrapped(#[serde(with = "super")] Decimal);
            Ok(Option::<Wrapped>::deserialize(deserializer)?.map(|Wrapped(d)| d))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_usage_bound_is_ten_to_the_twelfth() {
        assert_eq!(
            DEFAULT_MAX_USAGE_VALUE,
            Decimal::from(1_000_000_000_000_u64)
        );
    }

    const CATALOG: &str = r#"{
      "metrics": [
        {"code": "api_calls", "name": "API calls", "aggregation": {"type": "count"}},
        {"code": "active_users", "name": "Active users",
         "aggregation": {"type": "unique_count", "property": "user_id"}}
      ],
      "plans": [
        {"code": "team", "name": "Team", "currency": "USD", "trial_days": 14,
         "charges": [
           {"type": "fixed", "amount": "49.00"},
           {"type": "per_seat", "unit_price": "12.5"},
           {"type": "usage", "metric": "api_calls",
            "price": {"model": "graduated", "tiers": [
              {"up_to": 10000, "unit_price": "0"},
              {"up_to": null, "unit_price": "0.001", "flat_fee": "5"}]}}
         ],
         "entitlements": {"features": ["audit_export"],
                          "limits": {"seats": 10, "projects": 50},
                          "quotas": {"api_calls": {"per_period": 100000}}}}
      ]
    }"#;

    #[test]
    fn a_bad_price_names_its_key_as_the_file_spells_it() {
        use kernel::ClientError as _;
        for (good, bad, field) in [
            (
                r#""flat_fee": "5""#,
                r#""flat_fee": "-5""#,
                "tiers.flat_fee",
            ),
            (
                r#""unit_price": "0.001""#,
                r#""unit_price": "-0.001""#,
                "tiers.unit_price",
            ),
            (
                r#""unit_price": "12.5""#,
                r#""unit_price": "-12.5""#,
                "unit_price",
            ),
        ] {
            let catalog = CatalogFile::parse(&CATALOG.replacen(good, bad, 1)).unwrap();
            let refused = catalog.validate(&BTreeSet::new()).expect_err(field);
            assert_eq!(refused.code(), kernel::ErrorCode::BadUserInput, "{field}");
            assert_eq!(
                refused.details(),
                kernel::Details::field(field),
                "{refused}"
            );
            assert!(refused.to_string().contains(field), "{refused}");
        }
    }

    #[test]
    fn a_catalog_file_reads_validates_and_keeps_exact_prices() {
        let catalog = CatalogFile::parse(CATALOG).unwrap();
        catalog.validate(&BTreeSet::new()).unwrap();
        let team = &catalog.plans[0].definition;
        assert_eq!(team.trial_days, 14);
        assert!(team.has_feature("audit_export") && !team.has_feature("sso"));
        assert_eq!(team.entitlements.limits.documents_per_project, None);
        assert!(team.entitlements.quotas["api_calls"].hard);
        let Charge::Usage { price, .. } = &team.charges[2] else {
            panic!("usage charge")
        };
        // 10,000 free, then 2,000 at 0.001 plus the tier's flat fee of 5.
        assert_eq!(
            price.amount(Decimal::from(12_000)).unwrap(),
            Decimal::from_str_exact("7.000").unwrap()
        );
        // Stored and read back unchanged; trailing zeros do not make a new definition.
        let stored = team.to_stored();
        assert_eq!(
            PlanDefinition::from_stored(&stored).unwrap().to_stored(),
            stored
        );
        let zeros = CatalogFile::parse(&CATALOG.replace(r#""12.5""#, r#""12.500""#)).unwrap();
        assert_eq!(zeros.plans[0].definition.to_stored(), stored);
        assert!(stored.contains(r#""amount":"49""#), "{stored}");
    }

    #[test]
    fn invalid_catalogs_name_what_is_wrong() {
        let with = |from: &str, to: &str| {
            let text = CATALOG.replacen(from, to, 1);
            CatalogFile::parse(&text).and_then(|c| c.validate(&BTreeSet::new()))
        };
        let reason = |r: Result<()>| r.unwrap_err().to_string();
        assert!(reason(with(r#""49.00""#, "49.5")).contains("as a string"));
        assert!(reason(with(r#""49.00""#, r#""49.001""#)).contains("not a non-negative amount"));
        assert!(reason(with(r#""USD""#, r#""XXX""#)).contains("XXX"));
        assert!(
            reason(with(r#""metric": "api_calls""#, r#""metric": "calls""#))
                .contains("unknown metric")
        );
        assert!(
            reason(with(r#"["audit_export"]"#, r#"["audit_exports"]"#)).contains("unknown feature")
        );
        assert!(reason(with(r#""up_to": 10000"#, r#""up_to": null"#)).contains("tier"));
        assert!(reason(with(r#""code": "team""#, r#""code": "Team""#)).contains("lower-case"));
        assert!(
            reason(with(r#""trial_days": 14"#, r#""trial_dayz": 14"#)).contains("unknown field")
        );
    }

    #[test]
    fn zero_and_three_decimal_currencies_take_fixed_fees_in_their_own_units() {
        let plan = |currency: &str, amount: &str| PlanDefinition {
            name: "P".into(),
            currency: currency.into(),
            trial_days: 0,
            charges: vec![Charge::Fixed {
                amount: Decimal::from_str_exact(amount).unwrap(),
            }],
            entitlements: Entitlements::default(),
        };
        let none = BTreeSet::new();
        assert!(plan("JPY", "5000").validate(&none).is_ok());
        assert!(plan("JPY", "5000.5").validate(&none).is_err());
        assert!(plan("KWD", "12.345").validate(&none).is_ok());
        assert!(plan("KWD", "12.3456").validate(&none).is_err());
    }
}
