//! An organization and its people.

use super::webhook::{WebhookDelivery, WebhookEndpoint};
use super::{ApiKey, Invitation, Membership, Role, TrustedDocument};
use crate::context::ContextExt;
use crate::context::{Where, read};
use crate::error::ApiError;
use crate::error::{GqlResult, ResultExt};
use crate::graphql::connection::{connection, connection_with, page_request};
use crate::graphql::ids::{GlobalId, NodeKind};
use async_graphql::connection::Connection;
use async_graphql::{Context, ID, Object};
use authz::{Action, Resource, ResourceType};
use chrono::{DateTime, Utc};

/// An organization: the tenant. Visible to its members.
pub struct Organization(pub tenancy::Organization);

/// Whether an organization is in use or on its way out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, async_graphql::Enum)]
pub enum OrganizationStatus {
    /// In use.
    Active,
    /// An owner asked for its deletion: only owners enter it, nothing changes in it but
    /// cancelling that, and it is purged at `deletionScheduledAt`.
    PendingDeletion,
}

impl Organization {
    /// Reads `org` for the caller: membership-checked and permitted.
    pub async fn load(ctx: &Context<'_>, org: kernel::OrgId) -> GqlResult<Self> {
        let (tx, actor) = ctx.enter_read(org).await?;
        let permit = ctx
            .permit(
                &tx,
                &actor,
                Resource::record(ResourceType::Organization, org.as_uuid()),
                Action::Read,
            )
            .await?;
        Ok(Self(
            ctx.state().tenancy.organization(&tx, &permit).await.gql()?,
        ))
    }
}

#[Object]
impl Organization {
    /// Global id; send it as `X-Organization-Id` to act in this organization.
    pub async fn id(&self) -> ID {
        GlobalId::global(NodeKind::Organization, self.0.id.as_uuid())
    }

    /// Display name.
    async fn name(&self) -> &str {
        &self.0.name
    }

    /// Unique, URL-safe name.
    async fn slug(&self) -> &str {
        &self.0.slug
    }

    /// When it was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    /// `ACTIVE`, or `PENDING_DELETION` after an owner asked for its deletion.
    async fn status(&self) -> OrganizationStatus {
        if self.0.deletion_scheduled_at.is_some() {
            OrganizationStatus::PendingDeletion
        } else {
            OrganizationStatus::Active
        }
    }

    /// While deletion is pending: when every row of it will be purged.
    async fn deletion_scheduled_at(&self) -> Option<DateTime<Utc>> {
        self.0.deletion_scheduled_at
    }

    /// The caller's role here.
    async fn viewer_role(&self, ctx: &Context<'_>) -> GqlResult<Role> {
        let (tx, actor) = ctx.enter_read(self.0.id).await?;
        tx.rollback().await.gql()?;
        Ok(actor.role.into())
    }

    /// Every role of the organization: built-ins first, then its own.
    async fn roles(&self, ctx: &Context<'_>) -> GqlResult<Vec<super::access::RoleDefinition>> {
        let (tx, actor) = ctx.enter_read(self.0.id).await?;
        ctx.permit(
            &tx,
            &actor,
            Resource::of_type(ResourceType::Role),
            Action::Read,
        )
        .await?;
        let roles = ctx.state().authz.roles(&tx).await.gql()?;
        Ok(roles.into_iter().map(Into::into).collect())
    }

    /// Deny rules, oldest first, with who made each (for those who may read roles).
    async fn deny_rules(
        &self,
        ctx: &Context<'_>,
        after: Option<String>,
        before: Option<String>,
        first: Option<i32>,
        last: Option<i32>,
    ) -> GqlResult<Connection<String, super::access::DenyRule>> {
        let page = page_request(after, before, first, last).gql()?;
        let org = self.0.id;
        crate::context::read(ctx, crate::context::Where::Org(org), async |unit| {
            let on_roles = Resource::of_type(ResourceType::Role);
            unit.permit(on_roles, Action::Read).await?;
            let rules = unit.state.authz.deny_rules(unit.tx, &page).await?;
            Ok(connection(
                rules,
                |r| r.id,
                |r| super::access::DenyRule::new(r, org),
            ))
        })
        .await
    }

    /// The members, oldest first.
    async fn members(
        &self,
        ctx: &Context<'_>,
        after: Option<String>,
        before: Option<String>,
        first: Option<i32>,
        last: Option<i32>,
    ) -> GqlResult<Connection<String, Membership>> {
        let page = page_request(after, before, first, last).gql()?;
        let (tx, actor) = ctx.enter_read(self.0.id).await?;
        let permit = ctx
            .permit(
                &tx,
                &actor,
                Resource::of_type(ResourceType::Member),
                Action::Read,
            )
            .await?;
        let members = ctx
            .state()
            .tenancy
            .members(&tx, &permit, &page)
            .await
            .gql()?;
        Ok(connection(
            members,
            |(m, _)| m.id.as_uuid(),
            |(membership, user)| Membership { membership, user },
        ))
    }

    /// Invitations in every status, oldest first (owners and admins).
    async fn invitations(
        &self,
        ctx: &Context<'_>,
        after: Option<String>,
        before: Option<String>,
        first: Option<i32>,
        last: Option<i32>,
    ) -> GqlResult<Connection<String, Invitation>> {
        let page = page_request(after, before, first, last).gql()?;
        let (tx, actor) = ctx.enter_read(self.0.id).await?;
        let permit = ctx
            .permit(
                &tx,
                &actor,
                Resource::of_type(ResourceType::Invitation),
                Action::Read,
            )
            .await?;
        let invitations = ctx
            .state()
            .tenancy
            .invitations(&tx, &permit, &page)
            .await
            .gql()?;
        Ok(connection(invitations, |i| i.id.as_uuid(), Invitation))
    }

    /// API keys, revoked ones included, oldest first (owners and admins).
    async fn api_keys(
        &self,
        ctx: &Context<'_>,
        after: Option<String>,
        before: Option<String>,
        first: Option<i32>,
        last: Option<i32>,
    ) -> GqlResult<Connection<String, ApiKey, KeyList>> {
        let page = page_request(after, before, first, last).gql()?;
        let (tx, actor) = ctx.enter_read(self.0.id).await?;
        let permit = ctx
            .permit(
                &tx,
                &actor,
                Resource::of_type(ResourceType::ApiKey),
                Action::Read,
            )
            .await?;
        let keys = ctx
            .state()
            .tenancy
            .api_keys(&tx, &permit, &page)
            .await
            .gql()?;
        Ok(connection_with(
            keys,
            |k| k.id.as_uuid(),
            ApiKey,
            KeyList {
                org: self.0.id,
                of: Listed::ApiKeys,
            },
        ))
    }

    /// The organization's live trusted documents, oldest first (who may see its API
    /// keys).
    async fn trusted_documents(
        &self,
        ctx: &Context<'_>,
        after: Option<String>,
        before: Option<String>,
        first: Option<i32>,
        last: Option<i32>,
    ) -> GqlResult<Connection<String, TrustedDocument, KeyList>> {
        let page = page_request(after, before, first, last).gql()?;
        read(ctx, Where::Org(self.0.id), async |unit| {
            let on_keys = Resource::of_type(ResourceType::ApiKey);
            let permit = unit.permit(on_keys, Action::Read).await?;
            let documents = unit
                .state
                .tenancy
                .trusted_documents(unit.tx, &permit, &page)
                .await?;
            Ok(connection_with(
                documents,
                |d| d.id,
                TrustedDocument,
                KeyList {
                    org: self.0.id,
                    of: Listed::TrustedDocuments,
                },
            ))
        })
        .await
    }

    /// The webhook endpoints, oldest first (owners and admins).
    async fn webhook_endpoints(
        &self,
        ctx: &Context<'_>,
        after: Option<String>,
        before: Option<String>,
        first: Option<i32>,
        last: Option<i32>,
    ) -> GqlResult<Connection<String, WebhookEndpoint>> {
        let page = page_request(after, before, first, last).gql()?;
        let org = self.0.id;
        read(ctx, Where::Org(org), async |unit| {
            let on = Resource::of_type(ResourceType::Webhook);
            let permit = unit.permit(on, Action::Read).await?;
            let endpoints = unit
                .state
                .webhooks
                .endpoints(unit.tx, &permit, &page)
                .await?;
            Ok(connection(
                endpoints,
                |e| e.id,
                |endpoint| WebhookEndpoint { org, endpoint },
            ))
        })
        .await
    }

    /// The webhook delivery log, newest first: of one endpoint, or of all (owners and
    /// admins).
    async fn webhook_deliveries(
        &self,
        ctx: &Context<'_>,
        endpoint_id: Option<ID>,
        after: Option<String>,
        before: Option<String>,
        first: Option<i32>,
        last: Option<i32>,
    ) -> GqlResult<Connection<String, WebhookDelivery>> {
        let page = page_request(after, before, first, last).gql()?;
        let org = self.0.id;
        let endpoint = match &endpoint_id {
            Some(id) => {
                let id = GlobalId::expect("endpointId", id, NodeKind::WebhookEndpoint).gql()?;
                if id.org != Some(org) {
                    return Err(ApiError::Webhooks(webhooks::Error::NotFound {
                        entity: "webhook endpoint",
                    })
                    .into());
                }
                Some(id.id)
            }
            None => None,
        };
        read(ctx, Where::Org(org), async |unit| {
            let on = match endpoint {
                Some(id) => Resource::record(ResourceType::Webhook, id),
                None => Resource::of_type(ResourceType::Webhook),
            };
            let permit = unit.permit(on, Action::Read).await?;
            let deliveries = unit
                .state
                .webhooks
                .deliveries(unit.tx, &permit, endpoint, &page)
                .await?;
            Ok(connection(
                deliveries,
                |d| d.id,
                |delivery| WebhookDelivery { org, delivery },
            ))
        })
        .await
    }
}

/// The organization's API keys or trusted documents as a whole.
pub struct KeyList {
    org: kernel::OrgId,
    of: Listed,
}

/// Which of an organization's integration lists.
#[derive(Clone, Copy)]
enum Listed {
    ApiKeys,
    TrustedDocuments,
}

#[Object]
impl KeyList {
    /// How many the list holds across all its pages. Counted only when asked for: one
    /// statement, in the operation's unit.
    async fn total_count(&self, ctx: &Context<'_>) -> GqlResult<i64> {
        read(ctx, Where::Org(self.org), async |unit| {
            let on_keys = Resource::of_type(ResourceType::ApiKey);
            let permit = unit.permit(on_keys, Action::Read).await?;
            let tenancy = &unit.state.tenancy;
            let count = match self.of {
                Listed::ApiKeys => tenancy.count_api_keys(unit.tx, &permit).await?,
                Listed::TrustedDocuments => {
                    tenancy.count_trusted_documents(unit.tx, &permit).await?
                }
            };
            Ok(i64::try_from(count).unwrap_or(i64::MAX))
        })
        .await
    }
}
