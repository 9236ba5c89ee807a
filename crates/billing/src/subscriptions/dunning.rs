//! Collecting: charges due, recorded outcomes, retries on the dunning schedule, and the
//! subscription moved to past due, suspended and back to active.

use super::{Status, Subscriptions};
use crate::entity::invoice::{self, InvoiceStatus};
use crate::error::{Error, Result};
use crate::payments::{ChargeOutcome, ChargeRequest, invoice_amount};
use audit::NewEvent;
use authz::{Action, Permit, ResourceType};
use kernel::{InvoiceId, TenantTx};
use sea_orm::{ActiveEnum, ActiveModelTrait, ActiveValue::Set, IntoActiveModel};

impl Subscriptions {
    /// Invoices due for a charge now (finalized, unpaid, their next attempt due).
    pub async fn due_charges(&self, tx: &TenantTx) -> Result<Vec<ChargeRequest>> {
        use sea_orm::{ColumnTrait, QueryFilter};
        let due = tx
            .select::<invoice::Entity>()
            .filter(invoice::Column::Status.is_in(InvoiceStatus::OWED))
            .filter(invoice::Column::NextPaymentAttemptAt.lte(self.clock.now()))
            .all(tx.conn())
            .await?;
        due.into_iter()
            .map(|i| {
                Ok(ChargeRequest {
                    organization_id: i.organization_id,
                    invoice_id: InvoiceId::from_uuid(i.id),
                    invoice_number: i.number.clone().unwrap_or_default(),
                    amount: invoice_amount(i.total_minor, &i.currency)?,
                    idempotency_key: format!("{}-{}", i.id, i.payment_attempts + 1),
                    attempt: i.payment_attempts + 1,
                })
            })
            .collect()
    }

    /// Asks for an attempt on an unpaid invoice now (a billing admin after updating the
    /// payment method). Owners and billing admins.
    pub async fn request_payment(
        &self,
        tx: &TenantTx,
        permit: &Permit,
        id: InvoiceId,
    ) -> Result<()> {
        permit.ensure(tx, ResourceType::Billing, Action::Update, None)?;
        let row = self.invoices.find(tx, id).await?;
        if !row.status.is_owed() {
            return Err(Error::InvoiceState(row.status));
        }
        let mut active = row.into_active_model();
        active.next_payment_attempt_at = Set(Some(self.clock.now()));
        active.updated_at = Set(self.clock.now());
        active.update(tx.conn()).await?;
        self.audit
            .record(tx, NewEvent::new("payment.requested", "invoice", Some(id)))
            .await?;
        Ok(())
    }

    /// Marks an invoice paid by bank transfer (staff).
    pub async fn mark_paid(&self, tx: &TenantTx, id: InvoiceId) -> Result<()> {
        self.record_charge(
            tx,
            id,
            &ChargeOutcome::Paid("manual".into()),
            "manual",
            None,
        )
        .await
    }

    /// Acts on a payment provider's event about invoice `id`, whose payment stands at
    /// `outcome` as re-read from the provider (events arrive at least once and out of
    /// order: the payment's state now decides, not the event). The event is claimed by
    /// its id in `tx`, so a redelivery changes nothing. The caller commits `tx` when the
    /// event was [`ProviderEvent::Handled`], and drops it otherwise.
    pub async fn record_provider_event(
        &self,
        tx: &TenantTx,
        provider: &str,
        (event_id, kind): (&str, &str),
        id: InvoiceId,
        outcome: &ChargeOutcome,
    ) -> Result<ProviderEvent> {
        let claimed =
            crate::payments::claim_webhook_event(tx, provider, event_id, kind, self.clock.now())
                .await?;
        if !claimed {
            return Ok(ProviderEvent::Duplicate);
        }
        match self.record_charge(tx, id, outcome, provider, None).await {
            // Another environment sharing the provider's account: nothing to do here.
            Err(Error::NotFound(_)) => Ok(ProviderEvent::NotOurs),
            other => other.map(|()| ProviderEvent::Handled),
        }
    }

    /// Records what the provider answered for invoice `id`, re-reading it first: an
    /// invoice paid or voided meanwhile is left alone, and so is a failure of an
    /// `attempt` already recorded (two billing runs that charged the same attempt: the
    /// provider charged once, under one idempotency key). Success pays it and returns a
    /// past-due or suspended subscription to active (once nothing else is overdue);
    /// failure schedules the next retry or, after the last, suspends.
    pub async fn record_charge(
        &self,
        tx: &TenantTx,
        id: InvoiceId,
        outcome: &ChargeOutcome,
        provider: &str,
        attempt: Option<i32>,
    ) -> Result<()> {
        use sea_orm::{ColumnTrait, PaginatorTrait, QueryFilter};
        let row = self.invoices.find(tx, id).await?;
        let step = charge_step(
            row.status,
            row.payment_attempts,
            outcome,
            attempt,
            &self.collection.schedule,
        );
        let now = self.clock.now();
        match step {
            ChargeStep::Leave => Ok(()),
            ChargeStep::Settle { reference } => {
                self.invoices.settle(tx, row, provider).await?;
                self.audit
                    .record(
                        tx,
                        NewEvent::new("payment.succeeded", "invoice", Some(id))
                            .change("provider", None::<String>, Some(provider.to_owned()))
                            .change("reference", None::<String>, Some(reference.to_owned())),
                    )
                    .await?;
                let overdue = tx
                    .select::<invoice::Entity>()
                    .filter(invoice::Column::Status.is_in(InvoiceStatus::OWED))
                    .filter(invoice::Column::PaymentAttempts.gt(0))
                    .count(tx.conn())
                    .await?;
                if overdue == 0 {
                    self.set_status(
                        tx,
                        &[Status::PastDue, Status::Suspended],
                        Status::Active,
                        "subscription.reactivated",
                    )
                    .await?;
                }
                Ok(())
            }
            ChargeStep::Fail {
                failures,
                reason,
                retry_in: next,
            } => {
                let mut active = row.into_active_model();
                active.payment_attempts = Set(i32::try_from(failures).unwrap_or(i32::MAX));
                active.next_payment_attempt_at = Set(next.map(|wait| now + wait));
                if next.is_none() {
                    // No retry left: given up on, though a payment is still taken.
                    active.status = Set(InvoiceStatus::Uncollectible);
                }
                active.updated_at = Set(now);
                active.update(tx.conn()).await?;
                self.audit
                    .record(
                        tx,
                        NewEvent::new("payment.failed", "invoice", Some(id))
                            .change("attempt", None::<u32>, Some(failures))
                            .change("reason", None::<String>, Some(reason.to_owned()))
                            .change(
                                "next_attempt_at",
                                None::<String>,
                                next.map(|wait| (now + wait).to_rfc3339()),
                            ),
                    )
                    .await?;
                self.set_status(
                    tx,
                    &[Status::Active],
                    Status::PastDue,
                    "subscription.past_due",
                )
                .await?;
                if next.is_none() {
                    self.set_status(
                        tx,
                        &[Status::Active, Status::PastDue],
                        Status::Suspended,
                        "subscription.suspended",
                    )
                    .await?;
                }
                Ok(())
            }
        }
    }

    /// Moves the subscription from one of `from` to `to`, audited; otherwise nothing.
    pub(super) async fn set_status(
        &self,
        tx: &TenantTx,
        from: &[Status],
        to: Status,
        action: &'static str,
    ) -> Result<()> {
        let Some(mut row) = self.advance(tx).await? else {
            return Ok(());
        };
        let status = row.status;
        if !from.contains(&status) {
            return Ok(());
        }
        row.status = to;
        row.updated_at = self.clock.now();
        self.save(tx, &row).await?;
        self.audit
            .record(
                tx,
                NewEvent::new(action, "subscription", Some(row.id)).change(
                    "status",
                    Some(status.to_value()),
                    Some(to.to_value()),
                ),
            )
            .await?;
        Ok(())
    }

    /// Whether the organization's writes are refused for non-payment (its subscription is
    /// suspended).
    pub async fn payment_required(&self, tx: &TenantTx) -> Result<bool> {
        Ok(self
            .effective(tx)
            .await?
            .is_some_and(|s| s.status == Status::Suspended))
    }
}

/// What a payment provider's event came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderEvent {
    /// Recorded: the invoice's payment is settled or its failure scheduled.
    Handled,
    /// Claimed before: a redelivery.
    Duplicate,
    /// About an invoice this database does not hold.
    NotOurs,
}

/// What recording a charge's outcome does to its invoice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChargeStep<'a> {
    /// Nothing: the invoice was paid or voided meanwhile, the charge is still pending, or
    /// this failed attempt is recorded already.
    Leave,
    /// Paid (the provider's reference): settle it.
    Settle { reference: &'a str },
    /// A failed attempt: `failures` in all, the next attempt after `retry_in`, or none
    /// left (given up on: uncollectible, the subscription suspended).
    Fail {
        failures: u32,
        reason: &'a str,
        retry_in: Option<chrono::Duration>,
    },
}

/// Decides what a charge's outcome does to an invoice in `status` with
/// `payment_attempts` failures recorded; `attempt` is the attempt the charge was (none
/// for a payment recorded by hand).
pub(crate) fn charge_step<'a>(
    status: InvoiceStatus,
    payment_attempts: i32,
    outcome: &'a ChargeOutcome,
    attempt: Option<i32>,
    schedule: &crate::payments::DunningSchedule,
) -> ChargeStep<'a> {
    if !status.is_owed() {
        return ChargeStep::Leave;
    }
    match outcome {
        ChargeOutcome::Pending => ChargeStep::Leave,
        ChargeOutcome::Paid(reference) => ChargeStep::Settle { reference },
        ChargeOutcome::Failed(_) if attempt.is_some_and(|n| payment_attempts >= n) => {
            ChargeStep::Leave
        }
        ChargeOutcome::Failed(reason) => {
            let failures = u32::try_from(payment_attempts.saturating_add(1)).unwrap_or(u32::MAX);
            ChargeStep::Fail {
                failures,
                reason,
                retry_in: schedule.next_retry(failures),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entity::invoice::InvoiceStatus::{Draft, Finalized, Paid, Uncollectible, Void};
    use crate::payments::DunningSchedule;
    use chrono::Duration;

    #[test]
    fn a_charge_outcome_settles_retries_gives_up_or_leaves_the_invoice() {
        let schedule = DunningSchedule {
            retry_after_days: vec![3, 5],
        };
        let paid = ChargeOutcome::Paid("ch_1".into());
        let failed = ChargeOutcome::Failed("card_declined".into());
        let fail = |failures, days: Option<i64>| ChargeStep::Fail {
            failures,
            reason: "card_declined",
            retry_in: days.map(Duration::days),
        };
        let settle = ChargeStep::Settle { reference: "ch_1" };
        // (status, failures recorded, outcome, attempt charged, step)
        let cases = [
            (Finalized, 0, &paid, Some(1), settle),
            (Uncollectible, 2, &paid, Some(3), settle),
            (Finalized, 0, &paid, None, settle),
            (Paid, 0, &paid, Some(1), ChargeStep::Leave),
            (Void, 1, &failed, Some(2), ChargeStep::Leave),
            (Draft, 0, &failed, Some(1), ChargeStep::Leave),
            (
                Finalized,
                0,
                &ChargeOutcome::Pending,
                None,
                ChargeStep::Leave,
            ),
            (Finalized, 0, &failed, Some(1), fail(1, Some(3))),
            (Finalized, 1, &failed, Some(2), fail(2, Some(5))),
            // The last retry failed: none left.
            (Finalized, 2, &failed, Some(3), fail(3, None)),
            (Uncollectible, 3, &failed, None, fail(4, None)),
            // A second billing run recording the same attempt's failure.
            (Finalized, 1, &failed, Some(1), ChargeStep::Leave),
            (Finalized, 2, &failed, Some(1), ChargeStep::Leave),
        ];
        for (status, recorded, outcome, attempt, step) in cases {
            assert_eq!(
                charge_step(status, recorded, outcome, attempt, &schedule),
                step,
                "{status:?}, {recorded} failures, {outcome:?}, attempt {attempt:?}"
            );
        }
    }
}
