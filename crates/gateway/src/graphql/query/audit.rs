//! The audit trail for owners, admins and auditors of the active organization.

use crate::context::ContextExt;
use crate::context::{Where, read};
use crate::error::{ApiError, GqlResult, ResultExt};
use crate::graphql::connection::{ListOrder, connection, page_request};
use crate::graphql::types::audit::{AuditEvent, AuditVerification};
use async_graphql::connection::Connection;
use async_graphql::{Context, InputObject, Object};
use authz::{Action, Resource, ResourceType};
use chrono::{DateTime, Utc};

#[derive(Default)]
pub struct AuditQuery;

/// Which events to list.
#[derive(InputObject, Default)]
pub struct AuditEventFilter {
    /// The acting user's or key's UUID.
    pub actor: Option<String>,
    /// An exact action, e.g. `member.role_changed`.
    pub action: Option<String>,
    /// A target type, e.g. `member`.
    pub target_type: Option<String>,
    /// A target's UUID.
    pub target_id: Option<String>,
    /// From this instant (inclusive).
    pub from: Option<DateTime<Utc>>,
    /// Until this instant (exclusive).
    pub to: Option<DateTime<Utc>>,
}

#[Object]
impl AuditQuery {
    /// The active organization's audit events, oldest first unless `orderBy` says
    /// `NEWEST_FIRST` (what just happened on the first page; `after` a cursor then means
    /// older events).
    #[allow(clippy::too_many_arguments)]
    async fn audit_events(
        &self,
        ctx: &Context<'_>,
        filter: Option<AuditEventFilter>,
        #[graphql(default)] order_by: ListOrder,
        after: Option<String>,
        before: Option<String>,
        first: Option<i32>,
        last: Option<i32>,
    ) -> GqlResult<Connection<String, AuditEvent>> {
        let filter = filter.unwrap_or_default();
        if let (Some(from), Some(to)) = (filter.from, filter.to)
            && from > to
        {
            return Err(ApiError::bad_input("filter.to", "must not be before filter.from").into());
        }
        let page = page_request(after, before, first, last).gql()?;
        let filter = audit::EventFilter {
            actor: filter.actor,
            action: filter.action,
            target_type: filter.target_type,
            target_id: filter.target_id,
            from: filter.from,
            to: filter.to,
        };
        read(ctx, Where::Active, async |unit| {
            let on_audit = Resource::of_type(ResourceType::Audit);
            let permit = unit.permit(on_audit, Action::Read).await?;
            let tenancy = &unit.state.tenancy;
            let events = tenancy
                .audit_events(unit.tx, &permit, &filter, (&page, order_by.into()))
                .await?;
            let org = unit.tx.org_id();
            Ok(connection(events, |e| e.id, |e| AuditEvent::of(org, e)))
        })
        .await
    }

    /// Recomputes the active organization's hash chain and names the first broken link.
    async fn verify_audit_chain(&self, ctx: &Context<'_>) -> GqlResult<AuditVerification> {
        // Waited for before any connection is taken: verifications are few at a time.
        let org = ctx.request().active_org().gql()?;
        let _slot = ctx.state().tenancy.verification_slot(org).await;
        let (tx, actor) = ctx.enter_read(org).await?;
        let permit = ctx
            .permit(
                &tx,
                &actor,
                Resource::of_type(ResourceType::Audit),
                Action::Read,
            )
            .await?;
        let report = ctx.state().tenancy.verify_audit(&tx, &permit).await.gql()?;
        Ok(report.into())
    }
}
