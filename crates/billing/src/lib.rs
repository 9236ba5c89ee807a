//! Billing as product logic. This first part is the arithmetic every later part stands
//! on: money in integer minor units of ISO-4217 currencies, charge models (standard,
//! graduated, volume, package) computed exactly in decimals, one HALF_UP rounding per
//! invoice line, monthly periods with month-end clamping and day-based proration, and
//! the aggregations and idempotency rules of metering, with usage events recorded in
//! batches and aggregated per period. The rules are those of
//! `shared/billing-semantics.md`. No floats anywhere.

pub mod catalog;
pub mod data_map;
pub mod entitlements;
mod entity;
pub mod error;
pub mod invoices;
pub mod metering;
pub mod money;
pub mod payments;
pub mod period;
pub mod plans;
pub mod pricing;
pub mod subscriptions;
pub mod usage;

pub use catalog::{CatalogFile, Charge, Entitlements, Limits, PlanDefinition, Quota};
pub use entitlements::PlanEntitlements;
pub use entity::invoice::InvoiceStatus;
pub use error::{Error, Result};
pub use invoices::{Draft, DraftLine, InvoiceKind, Invoices, Issued, Totals, totals};
pub use kernel::InvoiceId;
pub use metering::{Aggregation, Duplicate, UsageEvent, duplicate_of};
pub use money::{Currency, Money};
pub use payments::{
    ChargeOutcome, ChargeRequest, DunningSchedule, ManualProvider, PaymentProvider, ProviderFuture,
    SharedProvider,
};
pub use period::{Line, Period, monthly_period, proration_lines};
pub use plans::{Catalog, Imported, PlanVersion};
pub use pricing::{ChargeModel, Tier};
pub use subscriptions::{
    Collection, Effective, PlanChange, ProviderEvent, Status, Subscription, Subscriptions,
};
pub use usage::{MAX_BATCH, NewUsage, Recorded, UsageService};
