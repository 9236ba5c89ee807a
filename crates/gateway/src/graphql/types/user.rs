//! A person.

use crate::context::ContextExt;
use crate::error::{ApiError, GqlResult};
use crate::graphql::ids::{GlobalId, NodeKind};
use async_graphql::{Context, ID, Object};
use authz::{Action, Resource, ResourceType};
use chrono::{DateTime, Utc};
use kernel::OrgId;

/// Where a user was reached from, which decides what of them the caller may see.
#[derive(Debug, Clone, Copy)]
pub enum Seen {
    /// The caller is this person (their own account, log-in and sign-up results).
    Own,
    /// As a member of this organization.
    InOrg(OrgId),
}

/// A person who can log in. Visible to themselves and to members of organizations they
/// belong to; the email only to themselves and to those who may manage members.
pub struct User {
    /// The person.
    pub user: tenancy::User,
    /// Where they were reached from.
    pub seen: Seen,
}

impl User {
    /// The caller's own account.
    pub fn own(user: tenancy::User) -> Self {
        Self {
            user,
            seen: Seen::Own,
        }
    }

    /// A member seen through an organization.
    pub fn in_org(user: tenancy::User, org: OrgId) -> Self {
        Self {
            user,
            seen: Seen::InOrg(org),
        }
    }
}

#[Object]
impl User {
    /// Global id.
    pub async fn id(&self) -> ID {
        GlobalId::global(NodeKind::User, self.user.id.as_uuid())
    }

    /// Display name.
    async fn name(&self) -> &str {
        &self.user.name
    }

    /// Email address: null with `FORBIDDEN` unless it is the caller's own or the caller
    /// may update members of the organization it was reached through.
    async fn email(&self, ctx: &Context<'_>) -> GqlResult<Option<&str>> {
        // Boxed, as `grants_on` is: unboxed, this check would make every field of every
        // listed user (a name) a 3 KB move.
        let visible = Box::pin(async {
            let caller = ctx.principal().await.ok().and_then(|p| p.user_id());
            GqlResult::Ok(match self.seen {
                Seen::Own => true,
                Seen::InOrg(_) if caller == Some(self.user.id) => true,
                Seen::InOrg(org) => may_manage_members(ctx, org).await?,
            })
        })
        .await?;
        if visible {
            Ok(Some(&self.user.email))
        } else {
            Err(ApiError::WrongPrincipal(
                "only the person and those who manage members see an email",
            )
            .into())
        }
    }

    /// When the account was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.user.created_at
    }
}

/// Decided once per request and organization, however many users are listed.
async fn may_manage_members(ctx: &Context<'_>, org: OrgId) -> GqlResult<bool> {
    let key = (org, "member:update");
    if let Some(known) = ctx.request().decision(key) {
        return Ok(known);
    }
    let (tx, actor) = ctx.enter_read(org).await?;
    let allowed = ctx
        .state()
        .authz
        .can(
            &tx,
            &actor.principal.into(),
            &Resource::of_type(ResourceType::Member),
            Action::Update,
        )
        .await
        .map_err(ApiError::from)?;
    ctx.request().remember(key, allowed);
    Ok(allowed)
}
