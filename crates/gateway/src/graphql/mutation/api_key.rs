//! Creating and revoking API keys of the active organization.

use crate::context::{Where, write};
use crate::error::{GqlResult, ResultExt};
use crate::graphql::ids::{GlobalId, NodeKind};
use crate::graphql::types::{ApiKey, Role};
use crate::standing::WriteClass;
use async_graphql::{Context, ID, InputObject, Object, SimpleObject};
use authz::{Action, Resource, ResourceType};
use kernel::ApiKeyId;

#[derive(Default)]
pub struct ApiKeyMutation;

/// Input of `createApiKey`.
#[derive(InputObject)]
pub struct CreateApiKeyInput {
    /// What the key is for.
    pub name: String,
    /// The role it acts with (not `OWNER`, and not above the creator's).
    pub role: Role,
    /// When it stops working by itself (in the future, within about ten years); leave
    /// it out for a key that works until revoked.
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Restricts the key to these permissions of its role (up to 100); leave it out for
    /// all of the role's. A key for one integration should hold what it needs only.
    pub scopes: Option<Vec<super::access::PermissionInput>>,
    /// Whether the key may run trusted documents only (the organization's, registered
    /// with `registerTrustedDocuments`, and the platform's), by `documentId`: what a
    /// partner integration should hold. `false` lets it send any document text.
    #[graphql(default = true)]
    pub trusted_documents_only: bool,
}

/// A new key with its secret, shown only here.
#[derive(SimpleObject)]
pub struct CreateApiKeyPayload {
    /// The key.
    pub api_key: ApiKey,
    /// Send as `Authorization: Bearer <secret>`.
    pub secret: String,
}

/// Input of `revokeApiKey`.
#[derive(InputObject)]
pub struct RevokeApiKeyInput {
    /// The key.
    pub api_key_id: ID,
}

/// Result of `revokeApiKey`.
#[derive(SimpleObject)]
pub struct RevokeApiKeyPayload {
    /// The revoked key.
    pub api_key: ApiKey,
}

#[Object]
impl ApiKeyMutation {
    /// Creates a service-account key for the active organization (owners and admins).
    async fn create_api_key(
        &self,
        ctx: &Context<'_>,
        input: CreateApiKeyInput,
    ) -> GqlResult<CreateApiKeyPayload> {
        let scope: Option<Vec<_>> = input.scopes.map(|scopes| {
            scopes
                .into_iter()
                .map(|p| (p.resource_type.into(), p.action.into()))
                .collect()
        });
        write(ctx, Where::Active, WriteClass::Ordinary, async |unit| {
            let on_keys = Resource::of_type(ResourceType::ApiKey);
            let permit = unit.permit(on_keys, Action::Create).await?;
            let issued = unit
                .state
                .tenancy
                .create_api_key(
                    unit.tx,
                    &permit,
                    tenancy::NewApiKey {
                        name: &input.name,
                        role: input.role.into(),
                        expires_at: input.expires_at,
                        scope: scope.as_deref(),
                        trusted_documents_only: input.trusted_documents_only,
                    },
                )
                .await?;
            Ok(CreateApiKeyPayload {
                api_key: ApiKey(issued.api_key),
                secret: issued.secret,
            })
        })
        .await
    }

    /// Revokes a key; it stops authenticating at once.
    async fn revoke_api_key(
        &self,
        ctx: &Context<'_>,
        input: RevokeApiKeyInput,
    ) -> GqlResult<RevokeApiKeyPayload> {
        let id = GlobalId::expect("apiKeyId", &input.api_key_id, NodeKind::ApiKey).gql()?;
        write(
            ctx,
            Where::RecordOf(&id),
            WriteClass::Settling,
            async |unit| {
                let key = Resource::record(ResourceType::ApiKey, id.id);
                let permit = unit.permit(key, Action::Delete).await?;
                let key = unit
                    .state
                    .tenancy
                    .revoke_api_key(unit.tx, &permit, ApiKeyId::from_uuid(id.id))
                    .await?;
                Ok(RevokeApiKeyPayload {
                    api_key: ApiKey(key),
                })
            },
        )
        .await
    }
}
