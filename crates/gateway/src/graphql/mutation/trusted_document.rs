//! Registering and revoking the active organization's trusted documents.

use crate::context::{Where, write};
use crate::error::{ApiError, GqlResult};
use crate::graphql::admission;
use crate::graphql::types::TrustedDocument;
use crate::standing::WriteClass;
use async_graphql::{Context, InputObject, Json, Object, SimpleObject};
use authz::{Action, Resource, ResourceType};
use tenancy::DocumentHash;

#[derive(Default)]
pub struct TrustedDocumentMutation;

/// Input of `registerTrustedDocuments`.
#[derive(InputObject)]
pub struct RegisterTrustedDocumentsInput {
    /// An Apollo persisted query manifest: `{"format":
    /// "apollo-persisted-query-manifest", "version": 1, "operations": [{"id", "name",
    /// "type", "body"}]}`, each id the SHA-256 of its body in hex (up to 250 operations).
    pub manifest: Json<serde_json::Value>,
}

/// Result of `registerTrustedDocuments`.
#[derive(SimpleObject)]
pub struct RegisterTrustedDocumentsPayload {
    /// Every operation of the manifest, live now, in the manifest's order.
    pub trusted_documents: Vec<TrustedDocument>,
    /// How many were new (the rest were registered before).
    pub registered_count: i32,
}

/// Input of `revokeTrustedDocument`.
#[derive(InputObject)]
pub struct RevokeTrustedDocumentInput {
    /// Its id: `sha256:<hex>`.
    pub document_id: String,
}

/// Result of `revokeTrustedDocument`.
#[derive(SimpleObject)]
pub struct RevokeTrustedDocumentPayload {
    /// The revoked document.
    pub trusted_document: TrustedDocument,
}

/// Reads `sha256:<hex>`.
pub fn document_id(field: &'static str, id: &str) -> Result<DocumentHash, ApiError> {
    id.strip_prefix("sha256:")
        .and_then(DocumentHash::from_hex)
        .ok_or_else(|| ApiError::bad_input(field, "must be sha256: and 64 hexadecimal digits"))
}

#[Object]
impl TrustedDocumentMutation {
    /// Registers the documents of a persisted query manifest as the active
    /// organization's trusted documents (whoever may create API keys): its keys, and its
    /// people, may then run them by `documentId`. Registering again is harmless.
    async fn register_trusted_documents(
        &self,
        ctx: &Context<'_>,
        input: RegisterTrustedDocumentsInput,
    ) -> GqlResult<RegisterTrustedDocumentsPayload> {
        let operations = tenancy::read_manifest(&input.manifest.0).map_err(ApiError::from)?;
        for (index, operation) in operations.iter().enumerate() {
            admission::check_trusted_operation(operation).map_err(|reason| {
                ApiError::bad_input("manifest", format!("operations[{index}].body {reason}"))
            })?;
        }
        write(ctx, Where::Active, WriteClass::Ordinary, async |unit| {
            let on_keys = Resource::of_type(ResourceType::ApiKey);
            let permit = unit.permit(on_keys, Action::Create).await?;
            let registration = unit
                .state
                .tenancy
                .register_trusted_documents(unit.tx, &permit, &operations)
                .await?;
            Ok(RegisterTrustedDocumentsPayload {
                registered_count: i32::try_from(registration.registered).unwrap_or(i32::MAX),
                trusted_documents: registration
                    .documents
                    .into_iter()
                    .map(TrustedDocument)
                    .collect(),
            })
        })
        .await
    }

    /// Revokes one of the active organization's trusted documents: it stops running on
    /// this instance at once, on others within a minute.
    async fn revoke_trusted_document(
        &self,
        ctx: &Context<'_>,
        input: RevokeTrustedDocumentInput,
    ) -> GqlResult<RevokeTrustedDocumentPayload> {
        let hash = document_id("documentId", &input.document_id)?;
        let revoked = write(ctx, Where::Active, WriteClass::Ordinary, async |unit| {
            let on_keys = Resource::of_type(ResourceType::ApiKey);
            let permit = unit.permit(on_keys, Action::Delete).await?;
            Ok(unit
                .state
                .tenancy
                .revoke_trusted_document(unit.tx, &permit, hash)
                .await?)
        })
        .await?;
        // Committed: this instance stops running it now.
        crate::context::ContextExt::state(ctx)
            .persisted
            .forget_trusted(Some(revoked.org_id), hash);
        Ok(RevokeTrustedDocumentPayload {
            trusted_document: TrustedDocument(revoked),
        })
    }
}
