//! Inviting people, changing roles and removing members of the active organization.

use crate::context::{Where, write};
use crate::error::{GqlResult, ResultExt};
use crate::graphql::ids::{GlobalId, NodeKind};
use crate::graphql::types::{Invitation, Membership, Role};
use crate::standing::WriteClass;
use async_graphql::{Context, ID, InputObject, Object, SimpleObject};
use authz::{Action, Resource, ResourceType};
use kernel::{InvitationId, MembershipId};

#[derive(Default)]
pub struct MemberMutation;

/// Input of `inviteMember`.
#[derive(InputObject)]
pub struct InviteMemberInput {
    /// Who to invite.
    pub email: String,
    /// The role they will have.
    pub role: Role,
}

/// An invitation with its token, which is shown only here.
#[derive(SimpleObject)]
pub struct InvitationPayload {
    /// The invitation.
    pub invitation: Invitation,
    /// The single-use token for the invitee's `acceptInvitation`.
    pub token: String,
}

/// Input naming an invitation.
#[derive(InputObject)]
pub struct InvitationIdInput {
    /// The invitation.
    pub invitation_id: ID,
}

/// Result of `revokeInvitation`.
#[derive(SimpleObject)]
pub struct RevokeInvitationPayload {
    /// The revoked invitation.
    pub invitation: Invitation,
}

/// Input of `changeMemberRole`.
#[derive(InputObject)]
pub struct ChangeMemberRoleInput {
    /// The membership to change.
    pub member_id: ID,
    /// The new role.
    pub role: Role,
}

/// Result of `changeMemberRole`.
#[derive(SimpleObject)]
pub struct ChangeMemberRolePayload {
    /// The changed membership.
    pub membership: Membership,
}

/// Input of `removeMember`.
#[derive(InputObject)]
pub struct RemoveMemberInput {
    /// The membership to end.
    pub member_id: ID,
}

/// Result of `removeMember`.
#[derive(SimpleObject)]
pub struct RemoveMemberPayload {
    /// The id of the removed membership.
    pub removed_member_id: ID,
}

#[Object]
impl MemberMutation {
    /// Invites someone to the active organization (owners and admins; only owners invite
    /// owners).
    async fn invite_member(
        &self,
        ctx: &Context<'_>,
        input: InviteMemberInput,
    ) -> GqlResult<InvitationPayload> {
        write(ctx, Where::Active, WriteClass::Ordinary, async |unit| {
            let on_invitations = Resource::of_type(ResourceType::Invitation);
            let permit = unit.permit(on_invitations, Action::Create).await?;
            let issued = unit
                .state
                .tenancy
                .invite(unit.tx, &permit, &input.email, input.role.into())
                .await?;
            Ok(InvitationPayload {
                invitation: Invitation(issued.invitation),
                token: issued.token,
            })
        })
        .await
    }

    /// Sends a pending or expired invitation again with a new token and expiry.
    async fn resend_invitation(
        &self,
        ctx: &Context<'_>,
        input: InvitationIdInput,
    ) -> GqlResult<InvitationPayload> {
        let id =
            GlobalId::expect("invitationId", &input.invitation_id, NodeKind::Invitation).gql()?;
        write(
            ctx,
            Where::RecordOf(&id),
            WriteClass::Ordinary,
            async |unit| {
                let invitation = Resource::record(ResourceType::Invitation, id.id);
                let permit = unit.permit(invitation, Action::Update).await?;
                let issued = unit
                    .state
                    .tenancy
                    .resend_invitation(unit.tx, &permit, InvitationId::from_uuid(id.id))
                    .await?;
                Ok(InvitationPayload {
                    invitation: Invitation(issued.invitation),
                    token: issued.token,
                })
            },
        )
        .await
    }

    /// Withdraws a pending invitation.
    async fn revoke_invitation(
        &self,
        ctx: &Context<'_>,
        input: InvitationIdInput,
    ) -> GqlResult<RevokeInvitationPayload> {
        let id =
            GlobalId::expect("invitationId", &input.invitation_id, NodeKind::Invitation).gql()?;
        write(
            ctx,
            Where::RecordOf(&id),
            WriteClass::Settling,
            async |unit| {
                let invitation = Resource::record(ResourceType::Invitation, id.id);
                let permit = unit.permit(invitation, Action::Delete).await?;
                let invitation = unit
                    .state
                    .tenancy
                    .revoke_invitation(unit.tx, &permit, InvitationId::from_uuid(id.id))
                    .await?;
                Ok(RevokeInvitationPayload {
                    invitation: Invitation(invitation),
                })
            },
        )
        .await
    }

    /// Gives a member another role. Only owners make or unmake owners; the last owner
    /// cannot be demoted (`CONFLICT`).
    async fn change_member_role(
        &self,
        ctx: &Context<'_>,
        input: ChangeMemberRoleInput,
    ) -> GqlResult<ChangeMemberRolePayload> {
        let id = GlobalId::expect("memberId", &input.member_id, NodeKind::Membership).gql()?;
        write(
            ctx,
            Where::RecordOf(&id),
            WriteClass::Ordinary,
            async |unit| {
                let tenancy = &unit.state.tenancy;
                let on_member = Resource::record(ResourceType::Member, id.id);
                let permit = unit.permit(on_member.clone(), Action::Update).await?;
                let member = MembershipId::from_uuid(id.id);
                tenancy
                    .change_member_role(unit.tx, &permit, member, input.role.into())
                    .await?;
                let read = unit.permit(on_member, Action::Read).await?;
                let (membership, user) = tenancy.member(unit.tx, &read, member).await?;
                Ok(ChangeMemberRolePayload {
                    membership: Membership { membership, user },
                })
            },
        )
        .await
    }

    /// Removes a member. Only owners remove owners; the last owner stays (`CONFLICT`).
    async fn remove_member(
        &self,
        ctx: &Context<'_>,
        input: RemoveMemberInput,
    ) -> GqlResult<RemoveMemberPayload> {
        let id = GlobalId::expect("memberId", &input.member_id, NodeKind::Membership).gql()?;
        write(
            ctx,
            Where::RecordOf(&id),
            WriteClass::Settling,
            async |unit| {
                let on_member = Resource::record(ResourceType::Member, id.id);
                let permit = unit.permit(on_member, Action::Delete).await?;
                let member = MembershipId::from_uuid(id.id);
                unit.state
                    .tenancy
                    .remove_member(unit.tx, &permit, member)
                    .await?;
                Ok(RemoveMemberPayload {
                    removed_member_id: input.member_id,
                })
            },
        )
        .await
    }
}
