//! Billing types: plans as the catalog publishes them, an organization's subscription,
//! money and invoice lines.

use async_graphql::{Enum, SimpleObject};
use billing::{Charge, ChargeModel, PlanVersion};
use chrono::{DateTime, NaiveDate, Utc};

/// An amount of money: exact, in the currency's own units.
#[derive(SimpleObject, Clone)]
pub struct MoneyAmount {
    /// Decimal in major units (`"49.00"`, `"5000"` for JPY, `"12.345"` for KWD).
    pub amount: String,
    /// ISO-4217 code.
    pub currency: String,
    /// Integer minor units (cents): what is stored and summed.
    pub minor_units: i64,
}

impl From<billing::Money> for MoneyAmount {
    fn from(money: billing::Money) -> Self {
        Self {
            amount: money.to_decimal().to_string(),
            currency: money.currency().code().to_owned(),
            minor_units: money.minor(),
        }
    }
}

/// One line of an invoice (or of what the next one will hold).
#[derive(SimpleObject, Clone)]
pub struct InvoiceLine {
    /// What it is for.
    pub description: String,
    /// Rounded once, HALF_UP; negative for a credit.
    pub amount: MoneyAmount,
}

impl From<billing::Line> for InvoiceLine {
    fn from(line: billing::Line) -> Self {
        Self {
            description: line.description,
            amount: line.amount.into(),
        }
    }
}

/// Numeric limits of a plan; null is unlimited.
#[derive(SimpleObject, Clone)]
pub struct PlanLimitValues {
    /// Members plus pending invitations.
    pub seats: Option<i64>,
    /// Projects.
    pub projects: Option<i64>,
    /// Documents per project.
    pub documents_per_project: Option<i64>,
    /// Requests a minute each API key may send (null: the server's default).
    pub requests_per_minute_per_api_key: Option<i64>,
}

/// A metered quota per billing period.
#[derive(SimpleObject, Clone)]
pub struct PlanQuota {
    /// The metric.
    pub metric: String,
    /// Units per period.
    pub per_period: i64,
    /// Hard: refused beyond it; soft: billed.
    pub hard: bool,
}

/// What kind of charge.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum ChargeKind {
    /// A fixed fee per period, in advance.
    Fixed,
    /// A price per seat per period, in advance.
    PerSeat,
    /// Usage of a metric, in arrears.
    Usage,
}

/// How usage is priced.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum PriceModel {
    /// Every unit at one price.
    Standard,
    /// Each slice at its tier's price.
    Graduated,
    /// Every unit at the price of the tier holding the total.
    Volume,
    /// Whole packages after free units.
    Package,
}

/// A tier of a tiered price (upper bounds inclusive; null is open).
#[derive(SimpleObject, Clone)]
pub struct PriceTier {
    /// Inclusive upper bound.
    pub up_to: Option<String>,
    /// Price per unit.
    pub unit_price: String,
    /// Added once when usage reaches the tier.
    pub flat_fee: String,
}

/// One charge of a plan. Prices are decimals in major units of the plan's currency.
#[derive(SimpleObject, Clone)]
pub struct PlanCharge {
    /// Fixed, per seat or usage.
    pub kind: ChargeKind,
    /// The fixed fee.
    pub amount: Option<String>,
    /// Price per seat, or per unit for a standard usage price.
    pub unit_price: Option<String>,
    /// The metric of a usage charge.
    pub metric: Option<String>,
    /// How usage is priced.
    pub model: Option<PriceModel>,
    /// Tiers of a graduated or volume price.
    pub tiers: Vec<PriceTier>,
    /// Units per package.
    pub package_size: Option<String>,
    /// Price per package.
    pub package_price: Option<String>,
    /// Units that cost nothing.
    pub free_units: Option<String>,
}

/// A published plan version.
#[derive(SimpleObject, Clone)]
pub struct Plan {
    /// The plan's code (`team`).
    pub code: String,
    /// Version (1, 2, …); a subscription pins one.
    pub version: i32,
    /// Display name.
    pub name: String,
    /// ISO-4217 currency.
    pub currency: String,
    /// Trial days a new subscription starts with.
    pub trial_days: i32,
    /// When the version was published.
    pub published_at: DateTime<Utc>,
    /// Features switched on.
    pub features: Vec<String>,
    /// Numeric limits.
    pub limits: PlanLimitValues,
    /// Metered quotas.
    pub quotas: Vec<PlanQuota>,
    /// Charges.
    pub charges: Vec<PlanCharge>,
}

fn text(d: rust_decimal::Decimal) -> String {
    d.normalize().to_string()
}

fn count(n: Option<u64>) -> Option<i64> {
    n.map(|n| i64::try_from(n).unwrap_or(i64::MAX))
}

impl From<&PlanVersion> for Plan {
    fn from(version: &PlanVersion) -> Self {
        let def = &version.definition;
        let charges = def
            .charges
            .iter()
            .map(|charge| {
                let mut out = PlanCharge {
                    kind: ChargeKind::Fixed,
                    amount: None,
                    unit_price: None,
                    metric: None,
                    model: None,
                    tiers: Vec::new(),
                    package_size: None,
                    package_price: None,
                    free_units: None,
                };
                match charge {
                    Charge::Fixed { amount } => out.amount = Some(text(*amount)),
                    Charge::PerSeat { unit_price } => {
                        out.kind = ChargeKind::PerSeat;
                        out.unit_price = Some(text(*unit_price));
                    }
                    Charge::Usage { metric, price } => {
                        out.kind = ChargeKind::Usage;
                        out.metric = Some(metric.clone());
                        let tiers = |tiers: &[billing::Tier]| {
                            tiers
                                .iter()
                                .map(|t| PriceTier {
                                    up_to: t.up_to.map(text),
                                    unit_price: text(t.unit_price),
                                    flat_fee: text(t.flat_fee),
                                })
                                .collect()
                        };
                        match price {
                            ChargeModel::Standard { unit_price } => {
                                out.model = Some(PriceModel::Standard);
                                out.unit_price = Some(text(*unit_price));
                            }
                            ChargeModel::Graduated { tiers: t } => {
                                out.model = Some(PriceModel::Graduated);
                                out.tiers = tiers(t);
                            }
                            ChargeModel::Volume { tiers: t } => {
                                out.model = Some(PriceModel::Volume);
                                out.tiers = tiers(t);
                            }
                            ChargeModel::Package {
                                size,
                                price,
                                free_units,
                            } => {
                                out.model = Some(PriceModel::Package);
                                out.package_size = Some(text(*size));
                                out.package_price = Some(text(*price));
                                out.free_units = Some(text(*free_units));
                            }
                        }
                    }
                }
                out
            })
            .collect();
        Self {
            code: version.plan_code.clone(),
            version: version.version,
            name: def.name.clone(),
            currency: def.currency.clone(),
            trial_days: i32::try_from(def.trial_days).unwrap_or(i32::MAX),
            published_at: version.published_at,
            features: def.entitlements.features.iter().cloned().collect(),
            limits: PlanLimitValues {
                seats: count(def.entitlements.limits.seats),
                projects: count(def.entitlements.limits.projects),
                documents_per_project: count(def.entitlements.limits.documents_per_project),
                requests_per_minute_per_api_key: def
                    .entitlements
                    .limits
                    .requests_per_minute_per_api_key
                    .map(i64::from),
            },
            quotas: def
                .entitlements
                .quotas
                .iter()
                .map(|(metric, quota)| PlanQuota {
                    metric: metric.clone(),
                    per_period: count(Some(quota.per_period)).unwrap_or(0),
                    hard: quota.hard,
                })
                .collect(),
            charges,
        }
    }
}

/// Where a subscription is in its life.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum SubscriptionStatus {
    /// Free until the trial ends.
    Trialing,
    /// Paid up.
    Active,
    /// A payment failed; full access while it is retried.
    PastDue,
    /// Every retry failed: read-only until paid.
    Suspended,
    /// Ended.
    Canceled,
}

impl From<billing::Status> for SubscriptionStatus {
    fn from(status: billing::Status) -> Self {
        match status {
            billing::Status::Trialing => Self::Trialing,
            billing::Status::Active => Self::Active,
            billing::Status::PastDue => Self::PastDue,
            billing::Status::Suspended => Self::Suspended,
            billing::Status::Canceled => Self::Canceled,
        }
    }
}

/// The organization's subscription, as of now.
#[derive(SimpleObject, Clone)]
pub struct Subscription {
    /// Its id.
    pub id: String,
    /// Its state.
    pub status: SubscriptionStatus,
    /// The pinned plan version.
    pub plan: Plan,
    /// The version a downgrade moves to at the period's end.
    pub scheduled_plan: Option<Plan>,
    /// IANA zone of the period boundaries.
    pub time_zone: String,
    /// Local date monthly periods are anchored on.
    pub billing_anchor: NaiveDate,
    /// When the trial ends (or ended).
    pub trial_ends_at: Option<DateTime<Utc>>,
    /// Start of the current period.
    pub current_period_start: DateTime<Utc>,
    /// End of the current period (exclusive).
    pub current_period_end: DateTime<Utc>,
    /// Whether it ends at the period's end.
    pub cancel_at_period_end: bool,
    /// When it ended.
    pub canceled_at: Option<DateTime<Utc>>,
    /// Tax rate on invoice subtotals (`"0.19"`).
    pub tax_rate: String,
}

impl From<billing::Subscription> for Subscription {
    fn from(sub: billing::Subscription) -> Self {
        Self {
            id: sub.id.to_string(),
            status: sub.status.into(),
            plan: sub.plan.as_ref().into(),
            scheduled_plan: sub.scheduled_plan.as_deref().map(Plan::from),
            time_zone: sub.time_zone.name().to_owned(),
            billing_anchor: sub.billing_anchor,
            trial_ends_at: sub.trial_ends_at,
            current_period_start: sub.current_period_start,
            current_period_end: sub.current_period_end,
            cancel_at_period_end: sub.cancel_at_period_end,
            canceled_at: sub.canceled_at,
            tax_rate: text(sub.tax_rate),
        }
    }
}

/// Where an invoice is.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum InvoiceStatus {
    /// Finalized and numbered; awaiting payment.
    Finalized,
    /// Paid.
    Paid,
    /// Cancelled before payment.
    Void,
    /// Given up on after every payment attempt failed.
    Uncollectible,
}

/// A line of an issued invoice or credit note.
#[derive(SimpleObject, Clone)]
pub struct IssuedLine {
    /// `fixed`, `seats`, `usage`, `proration_credit`, `proration_charge`, `credit`.
    pub kind: String,
    /// What it is for.
    pub description: String,
    /// How many (decimal).
    pub quantity: String,
    /// Price per unit, where there is one.
    pub unit_price: Option<String>,
    /// Rounded once.
    pub amount: MoneyAmount,
    /// What it covers.
    pub period_start: DateTime<Utc>,
    /// End of what it covers.
    pub period_end: DateTime<Utc>,
}

/// An invoice or a credit note: numbered, immutable.
#[derive(SimpleObject, Clone)]
pub struct Invoice {
    /// Its id.
    pub id: String,
    /// `INV-000001`, `CN-000001`: gapless per kind.
    pub number: String,
    /// Its state.
    pub status: InvoiceStatus,
    /// The period it bills.
    pub period_start: DateTime<Utc>,
    /// End of that period.
    pub period_end: DateTime<Utc>,
    /// Sum of the rounded lines.
    pub subtotal: MoneyAmount,
    /// Tax rate on the subtotal.
    pub tax_rate: String,
    /// Tax, rounded once.
    pub tax: MoneyAmount,
    /// Subtotal plus tax (negative for a credit note).
    pub total: MoneyAmount,
    /// The lines.
    pub lines: Vec<IssuedLine>,
    /// When it was finalized.
    pub finalized_at: Option<DateTime<Utc>>,
    /// When it was paid.
    pub paid_at: Option<DateTime<Utc>>,
    /// Payment attempts so far.
    pub payment_attempts: i32,
    /// When the next attempt is due.
    pub next_payment_attempt_at: Option<DateTime<Utc>>,
    /// The invoice a credit note corrects.
    pub credit_of: Option<String>,
}

fn money(minor: i64, currency: &str) -> MoneyAmount {
    match billing::Currency::parse(currency) {
        Ok(c) => billing::Money::from_minor(minor, c).into(),
        Err(_) => MoneyAmount {
            amount: minor.to_string(),
            currency: currency.to_owned(),
            minor_units: minor,
        },
    }
}

/// An issued invoice as shown. A draft is never shown (billing answers `NOT_FOUND` for
/// one, and leaves drafts out of its lists): should one reach here, it is not found
/// either, rather than shown as some other status.
impl TryFrom<billing::Issued> for Invoice {
    type Error = billing::Error;

    fn try_from(issued: billing::Issued) -> Result<Self, Self::Error> {
        use billing::InvoiceStatus as Stored;
        let i = issued.invoice;
        let currency = i.currency.clone();
        Ok(Self {
            id: i.id.to_string(),
            number: i.number.unwrap_or_default(),
            status: match i.status {
                Stored::Finalized => InvoiceStatus::Finalized,
                Stored::Paid => InvoiceStatus::Paid,
                Stored::Void => InvoiceStatus::Void,
                Stored::Uncollectible => InvoiceStatus::Uncollectible,
                Stored::Draft => return Err(billing::Error::NotFound("invoice")),
            },
            period_start: i.period_start,
            period_end: i.period_end,
            subtotal: money(i.subtotal_minor, &currency),
            tax_rate: i.tax_rate,
            tax: money(i.tax_minor, &currency),
            total: money(i.total_minor, &currency),
            lines: issued
                .lines
                .into_iter()
                .map(|l| IssuedLine {
                    kind: l.kind,
                    description: l.description,
                    quantity: l.quantity,
                    unit_price: l.unit_price,
                    amount: money(l.amount_minor, &currency),
                    period_start: l.period_start,
                    period_end: l.period_end,
                })
                .collect(),
            finalized_at: i.finalized_at,
            paid_at: i.paid_at,
            payment_attempts: i.payment_attempts,
            next_payment_attempt_at: i.next_payment_attempt_at,
            credit_of: i.credit_of.map(|c| c.to_string()),
        })
    }
}

/// What the next invoice holds as of now.
#[derive(SimpleObject, Clone)]
pub struct UpcomingInvoice {
    /// The current period.
    pub period_start: DateTime<Utc>,
    /// Its end, when the invoice is cut.
    pub period_end: DateTime<Utc>,
    /// Lines so far (usage up to now, the next period's fees, waiting items).
    pub lines: Vec<IssuedLine>,
    /// Sum of the rounded lines.
    pub subtotal: MoneyAmount,
    /// Tax rate.
    pub tax_rate: String,
    /// Tax, rounded once.
    pub tax: MoneyAmount,
    /// Subtotal plus tax.
    pub total: MoneyAmount,
}

impl UpcomingInvoice {
    /// From a draft and its totals.
    pub fn new(draft: billing::Draft, totals: billing::Totals) -> Self {
        Self {
            period_start: draft.period_start,
            period_end: draft.period_end,
            lines: draft
                .lines
                .into_iter()
                .map(|l| IssuedLine {
                    kind: l.kind,
                    description: l.description,
                    quantity: l.quantity.normalize().to_string(),
                    unit_price: l.unit_price.map(|p| p.normalize().to_string()),
                    amount: l.amount.into(),
                    period_start: l.period_start,
                    period_end: l.period_end,
                })
                .collect(),
            subtotal: totals.subtotal.into(),
            tax_rate: draft.tax_rate.normalize().to_string(),
            tax: totals.tax.into(),
            total: totals.total.into(),
        }
    }
}
