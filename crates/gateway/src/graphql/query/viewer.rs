//! `viewer`: who am I, where do I belong, where am I acting.

use crate::context::ContextExt;
use crate::error::{GqlResult, ResultExt};
use crate::graphql::connection::{connection, page_request};
use crate::graphql::types::{Membership, Organization, User};
use crate::unit::OperationUnits;
use async_graphql::connection::Connection;
use async_graphql::{Context, Object};
use kernel::{Page, Principal};

#[derive(Default)]
pub struct ViewerQuery;

#[Object]
impl ViewerQuery {
    /// The caller. `UNAUTHENTICATED` without valid credentials.
    async fn viewer(&self, ctx: &Context<'_>) -> GqlResult<Viewer> {
        let principal = ctx.principal().await?;
        Ok(Viewer { principal })
    }
}

/// The caller and their organizations.
pub struct Viewer {
    principal: Principal,
}

#[Object]
impl Viewer {
    /// The calling person (null for an API key).
    async fn user(&self, ctx: &Context<'_>) -> GqlResult<Option<User>> {
        match self.principal {
            // Through the request's loader: however many times it is asked, one read.
            Principal::User(id) => {
                let loaders = ctx.data_unchecked::<crate::graphql::loaders::Loaders>();
                let user = loaders.users.load_one(id).await?;
                let user = user
                    .ok_or(tenancy::Error::NotFound { entity: "user" })
                    .gql()?;
                Ok(Some(User::own(user)))
            }
            Principal::ApiKey { .. } => Ok(None),
        }
    }

    /// The organizations the caller belongs to, in the order they were created (an API
    /// key: its own).
    async fn organizations(
        &self,
        ctx: &Context<'_>,
        after: Option<String>,
        before: Option<String>,
        first: Option<i32>,
        last: Option<i32>,
    ) -> GqlResult<Connection<String, Organization>> {
        let page = page_request(after, before, first, last).gql()?;
        let page = match self.principal {
            Principal::User(id) => {
                // A transaction of its own (it reads the person's memberships across
                // organizations), in the request's turn.
                let _turn = ctx
                    .data_unchecked::<OperationUnits>()
                    .outside(&ctx.request().turn)
                    .await
                    .gql()?;
                ctx.state()
                    .tenancy
                    .user_organizations(id, &page)
                    .await
                    .gql()?
                    .map(|(org, _)| Organization(org))
            }
            Principal::ApiKey { org, .. } => {
                let own = Organization::load(ctx, org).await?;
                let within = page.after.is_none_or(|after| org.as_uuid() > after)
                    && page.before.is_none_or(|before| org.as_uuid() < before)
                    && page.limit > 0;
                Page {
                    items: if within { vec![own] } else { Vec::new() },
                    has_previous: false,
                    has_next: false,
                }
            }
        };
        Ok(connection(page, |o| o.0.id.as_uuid(), |o| o))
    }

    /// The organization named by `X-Organization-Id` (null when none is named);
    /// `FORBIDDEN` when the caller is not a member.
    async fn active_organization(&self, ctx: &Context<'_>) -> GqlResult<Option<Organization>> {
        let Some(org) = ctx.request().org else {
            return Ok(None);
        };
        Ok(Some(Organization::load(ctx, org).await?))
    }

    /// The caller's membership in the active organization (null for API keys and when
    /// no organization is named).
    async fn membership(&self, ctx: &Context<'_>) -> GqlResult<Option<Membership>> {
        let (Some(org), Principal::User(_)) = (ctx.request().org, self.principal) else {
            return Ok(None);
        };
        let (tx, actor) = ctx.enter_read(org).await?;
        let found = ctx
            .state()
            .tenancy
            .own_membership(&tx, &actor)
            .await
            .gql()?;
        Ok(found.map(|(membership, user)| Membership { membership, user }))
    }
}
