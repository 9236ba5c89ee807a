//! Creating organizations, accepting invitations and leaving.

use crate::context::{ContextExt, Where, read, write};
use crate::error::{GqlResult, ResultExt};
use crate::graphql::ids::{GlobalId, NodeKind};
use crate::graphql::types::{Membership, Organization};
use async_graphql::{Context, ID, InputObject, Object, SimpleObject};

#[derive(Default)]
pub struct OrganizationMutation;

/// Input of `createOrganization`.
#[derive(InputObject)]
pub struct CreateOrganizationInput {
    /// Display name; the slug is derived from it.
    pub name: String,
}

/// Result of `createOrganization`.
#[derive(SimpleObject)]
pub struct CreateOrganizationPayload {
    /// The new organization.
    pub organization: Organization,
    /// The caller's owner membership in it.
    pub membership: Membership,
}

/// Input of `acceptInvitation`.
#[derive(InputObject)]
pub struct AcceptInvitationInput {
    /// The token from the invitation.
    pub token: String,
}

/// Result of `acceptInvitation`.
#[derive(SimpleObject)]
pub struct AcceptInvitationPayload {
    /// The organization joined.
    pub organization: Organization,
    /// The new membership.
    pub membership: Membership,
}

/// Result of `leaveOrganization`.
#[derive(SimpleObject)]
pub struct LeaveOrganizationPayload {
    /// The organization left.
    pub organization_id: ID,
}

#[Object]
impl OrganizationMutation {
    /// Creates an organization; the caller becomes its owner.
    async fn create_organization(
        &self,
        ctx: &Context<'_>,
        input: CreateOrganizationInput,
    ) -> GqlResult<CreateOrganizationPayload> {
        let user_id = ctx.request().user().gql()?;
        let tenancy = &ctx.state().tenancy;
        let (organization, membership) = tenancy
            .create_organization(user_id, &input.name)
            .await
            .gql()?;
        let user = tenancy.user(user_id).await.gql()?;
        Ok(CreateOrganizationPayload {
            organization: Organization(organization),
            membership: Membership { membership, user },
        })
    }

    /// Joins an organization with an invitation sent to the caller's email address.
    async fn accept_invitation(
        &self,
        ctx: &Context<'_>,
        input: AcceptInvitationInput,
    ) -> GqlResult<AcceptInvitationPayload> {
        let user_id = ctx.request().user().gql()?;
        let tenancy = &ctx.state().tenancy;
        let membership = tenancy
            .accept_invitation(user_id, &input.token)
            .await
            .gql()?;
        let organization = Organization::load(ctx, membership.org_id).await?;
        read(ctx, Where::Org(membership.org_id), async |unit| {
            let own = tenancy.own_membership(unit.tx, unit.actor).await?;
            let (membership, user) = own.ok_or(tenancy::Error::NotFound {
                entity: "membership",
            })?;
            Ok(AcceptInvitationPayload {
                organization,
                membership: Membership { membership, user },
            })
        })
        .await
    }

    /// Leaves the active organization. The last owner cannot leave (`CONFLICT`).
    async fn leave_organization(&self, ctx: &Context<'_>) -> GqlResult<LeaveOrganizationPayload> {
        write(ctx, Where::Active, async |unit| {
            unit.state.tenancy.leave(unit.tx, unit.actor).await?;
            let org = unit.actor.org_id.as_uuid();
            Ok(LeaveOrganizationPayload {
                organization_id: GlobalId::global(NodeKind::Organization, org),
            })
        })
        .await
    }
}
