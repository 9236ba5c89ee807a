//! A trusted document: a GraphQL document an organization's integrations run by id.

use async_graphql::{Enum, Object};
use chrono::{DateTime, Utc};

/// A document the organization's API keys (and people) may run by id, as
/// `{"documentId": "sha256:<hex>"}`: registered from a persisted query manifest.
pub struct TrustedDocument(pub tenancy::TrustedDocument);

/// What a trusted document does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub enum TrustedOperationType {
    /// Reads.
    Query,
    /// Changes.
    Mutation,
}

impl From<tenancy::TrustedOperationType> for TrustedOperationType {
    fn from(kind: tenancy::TrustedOperationType) -> Self {
        match kind {
            tenancy::TrustedOperationType::Query => Self::Query,
            tenancy::TrustedOperationType::Mutation => Self::Mutation,
        }
    }
}

#[Object]
impl TrustedDocument {
    /// Its id, as requests name it: `sha256:` and the SHA-256 of its text in hex.
    async fn document_id(&self) -> String {
        self.0.hash.to_string()
    }

    /// The operation's name.
    async fn name(&self) -> &str {
        &self.0.name
    }

    /// Query or mutation.
    async fn operation_type(&self) -> TrustedOperationType {
        self.0.operation_type.into()
    }

    /// The document's text.
    async fn body(&self) -> &str {
        &self.0.body
    }

    /// When it was registered.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    /// When it was revoked (it no longer runs).
    async fn revoked_at(&self) -> Option<DateTime<Utc>> {
        self.0.revoked_at
    }
}
