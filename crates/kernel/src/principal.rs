//! Who is acting: a person or an organization's service account. Subjects are typed
//! (`user:…`, `key:…`) wherever they are written down, so a user id can never be taken
//! for a key id.

use crate::id::{ApiKeyId, OrgId, UserId};

/// The authenticated caller of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Principal {
    /// A person, authenticated by an access token.
    User(UserId),
    /// A service account of exactly one organization, authenticated by an API key.
    ApiKey {
        /// The key.
        key: ApiKeyId,
        /// The only organization the key acts in.
        org: OrgId,
    },
}

impl Principal {
    /// The typed subject string: `user:<uuid>` or `key:<uuid>`.
    pub fn subject(&self) -> String {
        match self {
            Self::User(id) => format!("user:{id}"),
            Self::ApiKey { key, .. } => format!("key:{key}"),
        }
    }

    /// The person's or the key's id, untyped: for columns that record who did something
    /// (`created_by`) or whose something is (a key of theirs).
    pub fn id(&self) -> uuid::Uuid {
        match self {
            Self::User(id) => id.as_uuid(),
            Self::ApiKey { key, .. } => key.as_uuid(),
        }
    }

    /// The acting user, if a person is acting.
    pub fn user_id(&self) -> Option<UserId> {
        match self {
            Self::User(id) => Some(*id),
            Self::ApiKey { .. } => None,
        }
    }
}
