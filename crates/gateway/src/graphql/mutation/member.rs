//! Inviting people, changing roles and removing members of the active organization.

use crate::context::ContextExt;
use crate::error::{GqlResult, ResultExt};
use crate::graphql::ids::{GlobalId, NodeKind};
use crate::graphql::mutation::enter_record_org;
use crate::graphql::types::{Invitation, Membership, Role};
use async_graphql::{Context, ID, InputObject, Object, SimpleObject};
use authz::{Action, Resource, ResourceType};
use kernel::{InvitationId, MembershipId, TxMode};

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
        let (tx, actor) = ctx.enter_active(TxMode::Write).await?;
        let permit = ctx
            .permit(
                &tx,
                &actor,
                Resource::of_type(ResourceType::Invitation),
                Action::Create,
            )
            .await?;
        let issued = ctx
            .state()
            .tenancy
            .invite(&tx, &permit, &input.email, input.role.into())
            .await
            .gql()?;
        tx.commit().await.gql()?;
        Ok(InvitationPayload {
            invitation: Invitation(issued.invitation),
            token: issued.token,
        })
    }

    /// Sends a pending or expired invitation again with a new token and expiry.
    async fn resend_invitation(
        &self,
        ctx: &Context<'_>,
        input: InvitationIdInput,
    ) -> GqlResult<InvitationPayload> {
        let id =
            GlobalId::expect("invitationId", &input.invitation_id, NodeKind::Invitation).gql()?;
        let (tx, actor) = enter_record_org(ctx, &id, TxMode::Write).await?;
        let permit = ctx
            .permit(
                &tx,
                &actor,
                Resource::record(ResourceType::Invitation, id.id),
                Action::Update,
            )
            .await?;
        let issued = ctx
            .state()
            .tenancy
            .resend_invitation(&tx, &permit, InvitationId::from_uuid(id.id))
            .await
            .gql()?;
        tx.commit().await.gql()?;
        Ok(InvitationPayload {
            invitation: Invitation(issued.invitation),
            token: issued.token,
        })
    }

    /// Withdraws a pending invitation.
    async fn revoke_invitation(
        &self,
        ctx: &Context<'_>,
        input: InvitationIdInput,
    ) -> GqlResult<RevokeInvitationPayload> {
        let id =
            GlobalId::expect("invitationId", &input.invitation_id, NodeKind::Invitation).gql()?;
        let (tx, actor) = enter_record_org(ctx, &id, TxMode::Write).await?;
        let permit = ctx
            .permit(
                &tx,
                &actor,
                Resource::record(ResourceType::Invitation, id.id),
                Action::Delete,
            )
            .await?;
        let invitation = ctx
            .state()
            .tenancy
            .revoke_invitation(&tx, &permit, InvitationId::from_uuid(id.id))
            .await
            .gql()?;
        tx.commit().await.gql()?;
        Ok(RevokeInvitationPayload {
            invitation: Invitation(invitation),
        })
    }

    /// Gives a member another role. Only owners make or unmake owners; the last owner
    /// cannot be demoted (`CONFLICT`).
    async fn change_member_role(
        &self,
        ctx: &Context<'_>,
        input: ChangeMemberRoleInput,
    ) -> GqlResult<ChangeMemberRolePayload> {
        let id = GlobalId::expect("memberId", &input.member_id, NodeKind::Membership).gql()?;
        let (tx, actor) = enter_record_org(ctx, &id, TxMode::Write).await?;
        let tenancy = &ctx.state().tenancy;
        let permit = ctx
            .permit(
                &tx,
                &actor,
                Resource::record(ResourceType::Member, id.id),
                Action::Update,
            )
            .await?;
        let member = MembershipId::from_uuid(id.id);
        tenancy
            .change_member_role(&tx, &permit, member, input.role.into())
            .await
            .gql()?;
        let read = ctx
            .permit(
                &tx,
                &actor,
                Resource::record(ResourceType::Member, id.id),
                Action::Read,
            )
            .await?;
        let (membership, user) = tenancy.member(&tx, &read, member).await.gql()?;
        tx.commit().await.gql()?;
        Ok(ChangeMemberRolePayload {
            membership: Membership { membership, user },
        })
    }

    /// Removes a member. Only owners remove owners; the last owner stays (`CONFLICT`).
    async fn remove_member(
        &self,
        ctx: &Context<'_>,
        input: RemoveMemberInput,
    ) -> GqlResult<RemoveMemberPayload> {
        let id = GlobalId::expect("memberId", &input.member_id, NodeKind::Membership).gql()?;
        let (tx, actor) = enter_record_org(ctx, &id, TxMode::Write).await?;
        let permit = ctx
            .permit(
                &tx,
                &actor,
                Resource::record(ResourceType::Member, id.id),
                Action::Delete,
            )
            .await?;
        ctx.state()
            .tenancy
            .remove_member(&tx, &permit, MembershipId::from_uuid(id.id))
            .await
            .gql()?;
        tx.commit().await.gql()?;
        Ok(RemoveMemberPayload {
            removed_member_id: input.member_id,
        })
    }
}
