//! A user's membership in an organization.

use super::{Role, User};
use crate::graphql::ids::{GlobalId, NodeKind};
use async_graphql::{ID, Object};
use chrono::{DateTime, Utc};

/// A user's membership in one organization, with their role there.
pub struct Membership {
    /// The membership.
    pub membership: tenancy::Membership,
    /// The member.
    pub user: tenancy::User,
}

#[Object]
impl Membership {
    /// Global id.
    pub async fn id(&self) -> ID {
        GlobalId::scoped(
            NodeKind::Membership,
            self.membership.org_id,
            self.membership.id.as_uuid(),
        )
    }

    /// The member's role.
    async fn role(&self) -> Role {
        self.membership.role.into()
    }

    /// The member.
    async fn user(&self) -> User {
        User::in_org(self.user.clone(), self.membership.org_id)
    }

    /// When the user joined.
    async fn created_at(&self) -> DateTime<Utc> {
        self.membership.created_at
    }
}
