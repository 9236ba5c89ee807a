//! Collecting invoices: a [`PaymentProvider`] charges, and dunning decides what a failure
//! means. The provider is called outside any database transaction (a network call must
//! not hold locks); what it answered is then recorded in the organization's transaction,
//! after re-reading the invoice (it may have been paid or voided meanwhile).
//!
//! Dunning: the first failure makes the subscription `past_due` (full access) and
//! schedules retries after the days of [`DunningSchedule`] (default 3, 5 and 7, each
//! counted from the failure before); when the last retry fails the subscription is
//! `suspended` (read-only: mutations other than billing, export and deletion answer
//! `PAYMENT_REQUIRED`). A successful payment returns it to `active`.

use crate::error::{Error, Result};
use crate::money::{Currency, Money};
use chrono::Duration;
use std::fmt::Debug;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use uuid::Uuid;

/// What to charge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChargeRequest {
    /// The organization (the provider's customer is looked up or created from it).
    pub organization_id: Uuid,
    /// The invoice.
    pub invoice_id: kernel::InvoiceId,
    /// Its number.
    pub invoice_number: String,
    /// How much.
    pub amount: Money,
    /// The same key for a retry of the same attempt: a provider charges it once.
    pub idempotency_key: String,
    /// Which attempt this is (1, 2, …): its answer is recorded once, however many
    /// instances of the billing run made it.
    pub attempt: i32,
}

/// What a provider answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChargeOutcome {
    /// Paid; the provider's reference.
    Paid(String),
    /// Declined or failed; why.
    Failed(String),
    /// Nothing happens now (a bank transfer the staff marks paid).
    Pending,
}

/// A boxed future of a provider call.
pub type ProviderFuture<'a> = Pin<Box<dyn Future<Output = Result<ChargeOutcome>> + Send + 'a>>;

/// A way of collecting money.
pub trait PaymentProvider: Send + Sync + Debug {
    /// Stable name (`manual`, `stripe`), recorded with each payment.
    fn name(&self) -> &'static str;

    /// Whether invoices are charged automatically (and dunned when that fails).
    fn charges_automatically(&self) -> bool;

    /// Charges `request`.
    fn charge(&self, request: ChargeRequest) -> ProviderFuture<'_>;

    /// The current state of an earlier charge, by the provider's reference (webhooks
    /// re-read it before acting).
    fn status(&self, reference: &str) -> ProviderFuture<'_>;
}

/// Shared provider.
pub type SharedProvider = Arc<dyn PaymentProvider>;

/// Bank transfer: nothing is charged; staff mark invoices paid when the money arrives.
#[derive(Debug, Clone, Copy, Default)]
pub struct ManualProvider;

impl PaymentProvider for ManualProvider {
    fn name(&self) -> &'static str {
        "manual"
    }

    fn charges_automatically(&self) -> bool {
        false
    }

    fn charge(&self, _request: ChargeRequest) -> ProviderFuture<'_> {
        Box::pin(async { Ok(ChargeOutcome::Pending) })
    }

    fn status(&self, _reference: &str) -> ProviderFuture<'_> {
        Box::pin(async { Ok(ChargeOutcome::Pending) })
    }
}

/// When failed payments are retried: days after each failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DunningSchedule {
    /// Days to wait after failure 1, 2, …; one retry per entry.
    pub retry_after_days: Vec<u32>,
}

impl Default for DunningSchedule {
    fn default() -> Self {
        Self {
            retry_after_days: vec![3, 5, 7],
        }
    }
}

impl DunningSchedule {
    /// Reads `3,5,7`.
    pub fn parse(text: &str) -> Result<Self> {
        let retry_after_days = text
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse::<u32>()
                    .ok()
                    .filter(|d| (1..=60).contains(d))
                    .ok_or_else(|| Error::Invalid {
                        field: "DUNNING_RETRY_DAYS",
                        reason: format!("`{s}`: days from 1 to 60, comma-separated"),
                    })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { retry_after_days })
    }

    /// After failed attempt number `failures` (1-based): wait this long before the next
    /// attempt, or `None` when no retry is left (the subscription is suspended).
    pub fn next_retry(&self, failures: u32) -> Option<Duration> {
        let index = usize::try_from(failures).ok()?.checked_sub(1)?;
        self.retry_after_days
            .get(index)
            .map(|days| Duration::days(i64::from(*days)))
    }
}

/// Claims a provider event for handling in the caller's transaction: `true` the first
/// time, `false` for a redelivery (handled already; nothing to do). The claim commits or
/// rolls back with what the event changed.
pub(crate) async fn claim_webhook_event(
    tx: &kernel::TenantTx,
    provider: &str,
    event_id: &str,
    kind: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<bool> {
    use sea_orm::{ConnectionTrait, Statement};
    let backend = tx.conn().get_database_backend();
    let sql = kernel::numbered(
        backend,
        "INSERT INTO payment_webhook_events (provider, event_id, event_type, received_at) \
         VALUES ($1, $2, $3, $4) ON CONFLICT (provider, event_id) DO NOTHING",
    );
    let inserted = tx
        .conn()
        .execute_raw(Statement::from_sql_and_values(
            backend,
            sql,
            [provider.into(), event_id.into(), kind.into(), now.into()],
        ))
        .await?;
    Ok(inserted.rows_affected() == 1)
}

/// An amount as a provider wants it: minor units and the lower-case currency code.
pub fn provider_amount(amount: Money) -> (i64, String) {
    (
        amount.minor(),
        amount.currency().code().to_ascii_lowercase(),
    )
}

/// Money from a stored invoice.
pub(crate) fn invoice_amount(minor: i64, currency: &str) -> Result<Money> {
    Ok(Money::from_minor(minor, Currency::parse(currency)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_schedule_retries_after_three_five_and_seven_days_then_gives_up() {
        let schedule = DunningSchedule::default();
        assert_eq!(schedule.next_retry(1), Some(Duration::days(3)));
        assert_eq!(schedule.next_retry(2), Some(Duration::days(5)));
        assert_eq!(schedule.next_retry(3), Some(Duration::days(7)));
        assert_eq!(schedule.next_retry(4), None);
        assert_eq!(
            DunningSchedule::parse("1, 2").unwrap().retry_after_days,
            [1, 2]
        );
        assert!(DunningSchedule::parse("3,x").is_err());
        assert!(DunningSchedule::parse("0").is_err());
        assert!(
            DunningSchedule::parse("").unwrap().next_retry(1).is_none(),
            "no retries: suspend at once"
        );
    }
}
