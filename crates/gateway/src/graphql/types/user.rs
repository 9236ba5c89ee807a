//! A person.

use crate::graphql::ids::{GlobalId, NodeKind};
use async_graphql::{ID, Object};
use chrono::{DateTime, Utc};

/// A person who can log in. Visible to themselves and to members of organizations they
/// belong to.
pub struct User(pub tenancy::User);

#[Object]
impl User {
    /// Global id.
    pub async fn id(&self) -> ID {
        GlobalId::global(NodeKind::User, self.0.id.as_uuid())
    }

    /// Display name.
    async fn name(&self) -> &str {
        &self.0.name
    }

    /// Email address.
    async fn email(&self) -> &str {
        &self.0.email
    }

    /// When the account was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}
