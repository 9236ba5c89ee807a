//! A service account's key.

use super::Role;
use super::access::Permission;
use crate::context::{Where, read};
use crate::error::GqlResult;
use crate::graphql::ids::{GlobalId, NodeKind};
use async_graphql::{Context, ID, Object};
use chrono::{DateTime, Utc};

/// A service account key of one organization, acting with its own role. The secret is
/// only ever shown by `createApiKey`.
pub struct ApiKey(pub tenancy::ApiKey);

#[Object]
impl ApiKey {
    /// Global id.
    pub async fn id(&self) -> ID {
        GlobalId::scoped(NodeKind::ApiKey, self.0.org_id, self.0.id.as_uuid())
    }

    /// What the key is for.
    async fn name(&self) -> &str {
        &self.0.name
    }

    /// The role it acts with.
    async fn role(&self) -> Role {
        self.0.role.into()
    }

    /// When it was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    /// When it last authenticated a request (kept to the minute).
    async fn last_used_at(&self) -> Option<DateTime<Utc>> {
        self.0.last_used_at
    }

    /// The permissions it is restricted to (null: all its role gives).
    async fn scopes(&self, ctx: &Context<'_>) -> GqlResult<Option<Vec<Permission>>> {
        let key = self.0.id;
        read(ctx, Where::Org(self.0.org_id), async |unit| {
            let scope = unit.state.authz.key_scope(unit.tx, key).await?;
            Ok(scope.map(|s| s.into_iter().map(Permission::from).collect()))
        })
        .await
    }

    /// Whether it may run trusted documents only (by `documentId`): free text is
    /// refused with `PERSISTED_QUERY_NOT_IN_LIST`. Fixed when the key is made.
    async fn trusted_documents_only(&self) -> bool {
        self.0.trusted_documents_only
    }

    /// When it stops authenticating by itself (null: when revoked).
    async fn expires_at(&self) -> Option<DateTime<Utc>> {
        self.0.expires_at
    }

    /// When it was revoked (by someone, or with its creator's standing); a revoked key
    /// no longer authenticates.
    async fn revoked_at(&self) -> Option<DateTime<Utc>> {
        self.0.revoked_at
    }
}
