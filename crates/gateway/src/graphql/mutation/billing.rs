//! `changePlan` and `cancelSubscription` (owners and billing admins). Every change is
//! audited by the billing service.

use crate::context::{ContextExt, Where, read, write};
use crate::error::ApiError;
use crate::error::{GqlResult, ResultExt};
use crate::graphql::types::billing::{Invoice, InvoiceLine, Subscription};
use crate::standing::WriteClass;
use async_graphql::{Context, Enum, InputObject, Object, SimpleObject};
use authz::{Action, Resource, ResourceType};

#[derive(Default)]
pub struct BillingMutation;

/// Input of `changePlan`.
#[derive(InputObject)]
pub struct ChangePlanInput {
    /// The plan's code; the organization moves to its latest version.
    pub plan: String,
    /// IANA time zone period boundaries fall in (`Europe/Berlin`), when a subscription
    /// starts; UTC when omitted. Later changes keep the zone.
    pub time_zone: Option<String>,
}

/// When a plan change takes effect.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum PlanChangeEffective {
    /// Now: a start, an upgrade, or any change during a trial.
    Immediately,
    /// At the end of the current period: a downgrade.
    AtPeriodEnd,
}

/// What `changePlan` did.
#[derive(SimpleObject)]
pub struct ChangePlanPayload {
    /// The subscription afterwards.
    pub subscription: Subscription,
    /// When the change takes effect.
    pub effective: PlanChangeEffective,
    /// Proration lines added to the next invoice (an upgrade mid-period: a credit for
    /// the unused old price and a charge for the rest at the new one).
    pub prorations: Vec<InvoiceLine>,
}

/// Input of `payInvoice`.
#[derive(InputObject)]
pub struct PayInvoiceInput {
    /// The invoice (its id from `invoices`).
    pub invoice_id: String,
}

/// What `payInvoice` did.
#[derive(SimpleObject)]
pub struct PayInvoicePayload {
    /// The invoice afterwards (paid if the charge succeeded).
    pub invoice: Invoice,
    /// The subscription afterwards (active again once nothing is overdue).
    pub subscription: Option<Subscription>,
}

/// Input of `importCatalog`.
#[derive(InputObject)]
pub struct ImportCatalogInput {
    /// The catalog file's JSON text (the format of `catalog/demo.json`).
    pub catalog: String,
}

/// What `importCatalog` did.
#[derive(SimpleObject)]
pub struct ImportCatalogPayload {
    /// One line per metric and plan: created, published (with its version) or unchanged.
    pub changes: Vec<String>,
}

/// What `cancelSubscription` did.
#[derive(SimpleObject)]
pub struct CancelSubscriptionPayload {
    /// The subscription, ending at its period's end.
    pub subscription: Subscription,
}

/// The organization's billing, as a permission resource.
fn on_billing() -> Resource {
    Resource::of_type(ResourceType::Billing)
}

#[Object]
impl BillingMutation {
    /// Moves the active organization to the latest version of a plan: subscribes (with
    /// the plan's trial, once per organization), upgrades at once with proration, or
    /// schedules a downgrade for the period's end (refused with `LIMIT_EXCEEDED` when what
    /// the organization has exceeds the new plan's limits). Choosing the current plan
    /// while a downgrade is scheduled drops the downgrade.
    async fn change_plan(
        &self,
        ctx: &Context<'_>,
        input: ChangePlanInput,
    ) -> GqlResult<ChangePlanPayload> {
        write(ctx, Where::Active, WriteClass::Settling, async |unit| {
            let permit = unit.permit(on_billing(), Action::Update).await?;
            // Subscribing to a plan needs the processor agreement accepted.
            unit.state.tenancy.ensure_dpa_accepted(unit.tx).await?;
            let time_zone = input.time_zone.as_deref();
            let change = unit
                .state
                .subscriptions
                .change_plan(unit.tx, &permit, &input.plan, time_zone)
                .await?;
            Ok(ChangePlanPayload {
                subscription: change.subscription.into(),
                effective: match change.effective {
                    billing::Effective::Immediately => PlanChangeEffective::Immediately,
                    billing::Effective::AtPeriodEnd => PlanChangeEffective::AtPeriodEnd,
                },
                prorations: change.prorations.into_iter().map(Into::into).collect(),
            })
        })
        .await
    }

    /// Ends the active organization's subscription at the end of its current period (a
    /// trial: at the trial's end). The organization then has the free allowance.
    async fn cancel_subscription(&self, ctx: &Context<'_>) -> GqlResult<CancelSubscriptionPayload> {
        write(ctx, Where::Active, WriteClass::Settling, async |unit| {
            let permit = unit.permit(on_billing(), Action::Update).await?;
            let subscription = unit.state.subscriptions.cancel(unit.tx, &permit).await?;
            Ok(CancelSubscriptionPayload {
                subscription: subscription.into(),
            })
        })
        .await
    }

    /// Charges an unpaid invoice now with the organization's payment provider (after the
    /// payment method was updated, say): a success pays it and returns a past-due or
    /// suspended subscription to active. Owners and billing admins; allowed while
    /// suspended.
    async fn pay_invoice(
        &self,
        ctx: &Context<'_>,
        input: PayInvoiceInput,
    ) -> GqlResult<PayInvoicePayload> {
        let id = input
            .invoice_id
            .parse::<kernel::InvoiceId>()
            .map_err(|_| ApiError::bad_input("invoiceId", "an invoice id"))?;
        let org = write(ctx, Where::Active, WriteClass::Settling, async |unit| {
            let permit = unit.permit(on_billing(), Action::Update).await?;
            let subscriptions = &unit.state.subscriptions;
            subscriptions.request_payment(unit.tx, &permit, id).await?;
            Ok(unit.tx.org_id())
        })
        .await?;
        let state = ctx.state();
        crate::background::billing_run::collect(state, org)
            .await
            .map_err(|e| {
                tracing::error!(error = ?e, "collecting an invoice failed");
                async_graphql::Error::from(ApiError::Billing(billing::Error::Provider(
                    "the payment could not be attempted".into(),
                )))
            })?;
        read(ctx, Where::Active, async |unit| {
            let permit = unit.permit(on_billing(), Action::Read).await?;
            let subscriptions = &unit.state.subscriptions;
            let invoice = subscriptions
                .invoices()
                .issued(unit.tx, &permit, id)
                .await?;
            let subscription = subscriptions.current(unit.tx, &permit).await?;
            Ok(PayInvoicePayload {
                invoice: invoice.try_into()?,
                subscription: subscription.map(Into::into),
            })
        })
        .await
    }

    /// Imports the billing catalog (platform staff only): creates new metrics and
    /// publishes a new version of every plan whose definition changed; all or nothing,
    /// recorded in the platform's audit trail. Others get `FORBIDDEN`.
    async fn import_catalog(
        &self,
        ctx: &Context<'_>,
        input: ImportCatalogInput,
    ) -> GqlResult<ImportCatalogPayload> {
        let user = ctx.user().await?;
        let state = ctx.state();
        if !state.tenancy.is_staff(user).await.gql()? {
            return Err(ApiError::WrongPrincipal("only platform staff import the catalog").into());
        }
        let catalog = billing::CatalogFile::parse(&input.catalog).gql()?;
        let changes = crate::catalog::import_catalog(state, &catalog)
            .await
            .map_err(|e| match e.downcast::<billing::Error>() {
                Ok(e) => async_graphql::Error::from(ApiError::Billing(e)),
                Err(e) => {
                    tracing::error!(error = ?e, "catalog import failed");
                    async_graphql::Error::from(ApiError::Billing(billing::Error::Provider(
                        "the catalog could not be imported".into(),
                    )))
                }
            })?;
        Ok(ImportCatalogPayload { changes })
    }
}
