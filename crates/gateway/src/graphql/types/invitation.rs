//! An invitation to join.

use super::Role;
use crate::graphql::ids::{GlobalId, NodeKind};
use async_graphql::{Enum, ID, Object};
use chrono::{DateTime, Utc};

/// Where an invitation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub enum InvitationStatus {
    /// Can be accepted.
    Pending,
    /// Was accepted.
    Accepted,
    /// Was withdrawn.
    Revoked,
    /// Expired unaccepted; can be re-sent.
    Expired,
}

/// An invitation to join an organization with a role. Visible to owners and admins.
pub struct Invitation(pub tenancy::Invitation);

#[Object]
impl Invitation {
    /// Global id.
    pub async fn id(&self) -> ID {
        GlobalId::scoped(NodeKind::Invitation, self.0.org_id, self.0.id.as_uuid())
    }

    /// The invited address.
    async fn email(&self) -> &str {
        &self.0.email
    }

    /// The role the invitee will have.
    async fn role(&self) -> Role {
        self.0.role.into()
    }

    /// Where it stands.
    async fn status(&self) -> InvitationStatus {
        match self.0.status {
            tenancy::InvitationStatus::Pending => InvitationStatus::Pending,
            tenancy::InvitationStatus::Accepted => InvitationStatus::Accepted,
            tenancy::InvitationStatus::Revoked => InvitationStatus::Revoked,
            tenancy::InvitationStatus::Expired => InvitationStatus::Expired,
        }
    }

    /// Until when it can be accepted.
    async fn expires_at(&self) -> DateTime<Utc> {
        self.0.expires_at
    }

    /// When it was (last) sent.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}
