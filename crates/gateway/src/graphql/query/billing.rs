//! `plans` (the published catalog, for anyone signed in), `planVersions(code)`, and the
//! active organization's `subscription`, `upcomingInvoice`, `invoices` and `creditNotes`
//! (owners and billing admins).

use crate::context::ContextExt;
use crate::context::{Where, read};
use crate::error::{GqlResult, ResultExt};
use crate::graphql::connection::{ListOrder, connection, page_request};
use crate::graphql::types::billing::{Invoice, Plan, Subscription, UpcomingInvoice};
use async_graphql::connection::Connection;
use async_graphql::{Context, Object};
use authz::{Action, Resource, ResourceType};

#[derive(Default)]
pub struct BillingQuery;

#[Object]
impl BillingQuery {
    /// The latest published version of every plan, by code.
    async fn plans(&self, ctx: &Context<'_>) -> GqlResult<Vec<Plan>> {
        ctx.principal().await?;
        let versions = all_versions(ctx).await?;
        let mut latest: Vec<Plan> = Vec::new();
        for version in &versions {
            // Newest first within a plan: the first of each code is its latest.
            if latest.last().is_none_or(|p| p.code != version.plan_code) {
                latest.push(version.into());
            }
        }
        Ok(latest)
    }

    /// Every published version of the plan `code`, newest first (versions never change).
    async fn plan_versions(&self, ctx: &Context<'_>, code: String) -> GqlResult<Vec<Plan>> {
        ctx.principal().await?;
        let versions = all_versions(ctx).await?;
        Ok(versions
            .iter()
            .filter(|v| v.plan_code == code)
            .map(Plan::from)
            .collect())
    }

    /// The active organization's subscription as of now; null if it never subscribed
    /// (it then has the free allowance). Owners and billing admins.
    async fn subscription(&self, ctx: &Context<'_>) -> GqlResult<Option<Subscription>> {
        let (tx, permit) = billing_reader(ctx).await?;
        let current = ctx
            .state()
            .subscriptions
            .current(&tx, &permit)
            .await
            .gql()?;
        Ok(current.map(Subscription::from))
    }

    /// What the next invoice holds as of now, line by line; null without a live
    /// subscription. Owners and billing admins.
    async fn upcoming_invoice(&self, ctx: &Context<'_>) -> GqlResult<Option<UpcomingInvoice>> {
        let (tx, permit) = billing_reader(ctx).await?;
        let draft = ctx
            .state()
            .subscriptions
            .upcoming_invoice(&tx, &permit)
            .await
            .gql()?;
        draft
            .map(|d| {
                let totals = d.totals()?;
                Ok::<_, billing::Error>(UpcomingInvoice::new(d, totals))
            })
            .transpose()
            .gql()
    }

    /// The active organization's invoices, newest first unless `orderBy` says
    /// `OLDEST_FIRST`. Owners and billing admins.
    async fn invoices(
        &self,
        ctx: &Context<'_>,
        #[graphql(default_with = "ListOrder::NewestFirst")] order_by: ListOrder,
        after: Option<String>,
        before: Option<String>,
        first: Option<i32>,
        last: Option<i32>,
    ) -> GqlResult<Connection<String, Invoice>> {
        let page = page_request(after, before, first, last).gql()?;
        issued(ctx, billing::InvoiceKind::Invoice, (page, order_by.into())).await
    }

    /// The active organization's credit notes, newest first unless `orderBy` says
    /// `OLDEST_FIRST`. Owners and billing admins.
    async fn credit_notes(
        &self,
        ctx: &Context<'_>,
        #[graphql(default_with = "ListOrder::NewestFirst")] order_by: ListOrder,
        after: Option<String>,
        before: Option<String>,
        first: Option<i32>,
        last: Option<i32>,
    ) -> GqlResult<Connection<String, Invoice>> {
        let page = page_request(after, before, first, last).gql()?;
        issued(
            ctx,
            billing::InvoiceKind::CreditNote,
            (page, order_by.into()),
        )
        .await
    }
}

/// Every published plan version, read without a second connection.
async fn all_versions(ctx: &Context<'_>) -> GqlResult<Vec<billing::PlanVersion>> {
    let state = ctx.state();
    ctx.data_unchecked::<crate::unit::OperationUnits>()
        .platform_read(&ctx.request().turn, async |tx| match tx {
            Some(tx) => state.catalog.all_versions(tx.conn()).await,
            None => state.catalog.all_versions(state.db.conn()).await,
        })
        .await
        .gql()
}

async fn billing_reader(ctx: &Context<'_>) -> GqlResult<(crate::unit::UnitTx, authz::Permit)> {
    ctx.enter_active_read_permitted(Resource::of_type(ResourceType::Billing), Action::Read)
        .await
}

async fn issued(
    ctx: &Context<'_>,
    kind: billing::InvoiceKind,
    (page, order): (kernel::PageRequest, kernel::ListOrder),
) -> GqlResult<Connection<String, Invoice>> {
    read(ctx, Where::Active, async |unit| {
        let on_billing = Resource::of_type(ResourceType::Billing);
        let permit = unit.permit(on_billing, Action::Read).await?;
        let invoices = unit.state.subscriptions.invoices();
        let page = invoices
            .list(unit.tx, &permit, kind, (&page, order))
            .await?;
        let page =
            page.try_map(|i| Ok::<_, billing::Error>((i.invoice.id, Invoice::try_from(i)?)))?;
        Ok(connection(page, |(id, _)| *id, |(_, invoice)| invoice))
    })
    .await
}
