//! `viewer`: who am I, where do I belong, where am I acting.

use crate::context::ContextExt;
use crate::error::{GqlResult, ResultExt};
use crate::graphql::types::{Membership, Organization, User};
use async_graphql::{Context, Object};
use kernel::{Principal, TxMode};

#[derive(Default)]
pub struct ViewerQuery;

#[Object]
impl ViewerQuery {
    /// The caller. `UNAUTHENTICATED` without valid credentials.
    async fn viewer(&self, ctx: &Context<'_>) -> GqlResult<Viewer> {
        let principal = ctx.request().principal().gql()?;
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

    /// Every organization the caller belongs to (an API key: its own).
    async fn organizations(&self, ctx: &Context<'_>) -> GqlResult<Vec<Organization>> {
        let tenancy = &ctx.state().tenancy;
        match self.principal {
            Principal::User(id) => Ok(tenancy
                .user_organizations(id)
                .await
                .gql()?
                .into_iter()
                .map(|(org, _)| Organization(org))
                .collect()),
            Principal::ApiKey { org, .. } => Ok(vec![Organization::load(ctx, org).await?]),
        }
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
        let (tx, actor) = ctx.enter(org, TxMode::Read).await?;
        let found = ctx
            .state()
            .tenancy
            .own_membership(&tx, &actor)
            .await
            .gql()?;
        Ok(found.map(|(membership, user)| Membership { membership, user }))
    }
}
