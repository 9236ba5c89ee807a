//! Creating organizations, accepting invitations and leaving.

use crate::context::{ContextExt, Where, read, write};
use crate::error::ApiError;
use crate::error::{GqlResult, ResultExt};
use crate::graphql::ids::{GlobalId, NodeKind};
use crate::graphql::types::{Membership, Organization};
use crate::standing::WriteClass;
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

/// Input of `requestOrganizationDeletion`.
#[derive(InputObject)]
pub struct RequestOrganizationDeletionInput {
    /// The organization to delete.
    pub organization_id: ID,
    /// Its slug, typed again to confirm.
    pub confirm_slug: String,
}

/// Result of `requestOrganizationDeletion` and `cancelOrganizationDeletion`.
#[derive(SimpleObject)]
pub struct OrganizationDeletionPayload {
    /// The organization, with its status and when its purge is scheduled.
    pub organization: Organization,
}

/// Input of `cancelOrganizationDeletion`.
#[derive(InputObject)]
pub struct CancelOrganizationDeletionInput {
    /// The organization pending deletion.
    pub organization_id: ID,
}

/// The organization an input names, decoded.
fn organization_of(id: &ID) -> Result<kernel::OrgId, ApiError> {
    let id = GlobalId::expect("organizationId", id, NodeKind::Organization)?;
    Ok(kernel::OrgId::from_uuid(id.id))
}

#[Object]
impl OrganizationMutation {
    /// Creates an organization; the caller becomes its owner.
    async fn create_organization(
        &self,
        ctx: &Context<'_>,
        input: CreateOrganizationInput,
    ) -> GqlResult<CreateOrganizationPayload> {
        let user_id = ctx.user().await?;
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
        let user_id = ctx.user().await?;
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

    /// Asks for the organization's deletion (owners, confirming its slug). Every API key
    /// is revoked at once and only owners may still enter it; it stays readable for them
    /// (export its data now) until `deletionScheduledAt` (`ORG_DELETION_GRACE_DAYS`,
    /// 30), when every row of it is purged. Until then `cancelOrganizationDeletion`
    /// undoes it; every other mutation in it answers `CONFLICT` with
    /// `reason = "PENDING_DELETION"`, as does a second request.
    async fn request_organization_deletion(
        &self,
        ctx: &Context<'_>,
        input: RequestOrganizationDeletionInput,
    ) -> GqlResult<OrganizationDeletionPayload> {
        let org = organization_of(&input.organization_id).gql()?;
        write(ctx, Where::Org(org), WriteClass::Settling, async |unit| {
            let tenancy = &unit.state.tenancy;
            let organization = tenancy
                .request_organization_deletion(unit.tx, unit.actor, &input.confirm_slug)
                .await?;
            // No further periods: the subscription ends with the current one.
            let billing = authz::Resource::of_type(authz::ResourceType::Billing);
            let permit = unit.permit(billing, authz::Action::Update).await?;
            match unit.state.subscriptions.cancel(unit.tx, &permit).await {
                Ok(_) | Err(billing::Error::NotFound(_) | billing::Error::AlreadyCanceled) => {}
                Err(e) => return Err(e.into()),
            }
            Ok(OrganizationDeletionPayload {
                organization: Organization(organization),
            })
        })
        .await
    }

    /// Cancels a pending deletion (owners). Revoked API keys stay revoked.
    async fn cancel_organization_deletion(
        &self,
        ctx: &Context<'_>,
        input: CancelOrganizationDeletionInput,
    ) -> GqlResult<OrganizationDeletionPayload> {
        let org = organization_of(&input.organization_id).gql()?;
        write(ctx, Where::Org(org), WriteClass::HandBack, async |unit| {
            let organization = unit
                .state
                .tenancy
                .cancel_organization_deletion(unit.tx, unit.actor)
                .await?;
            Ok(OrganizationDeletionPayload {
                organization: Organization(organization),
            })
        })
        .await
    }

    /// Leaves the active organization. The last owner cannot leave (`CONFLICT`).
    async fn leave_organization(&self, ctx: &Context<'_>) -> GqlResult<LeaveOrganizationPayload> {
        write(ctx, Where::Active, WriteClass::Settling, async |unit| {
            unit.state.tenancy.leave(unit.tx, unit.actor).await?;
            let org = unit.actor.org_id.as_uuid();
            Ok(LeaveOrganizationPayload {
                organization_id: GlobalId::global(NodeKind::Organization, org),
            })
        })
        .await
    }
}
