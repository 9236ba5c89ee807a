//! The permission resources of projects and documents, shared by queries and mutations.

use crate::context::ContextExt;
use crate::error::{GqlResult, ResultExt};
use async_graphql::Context;
use authz::{Resource, ResourceType, Subject};
use kernel::TenantTx;
use uuid::Uuid;

/// The project as a resource: its owner holds `record_owner` on it. An unknown id is
/// `NOT_FOUND` before any decision (it is the caller's own organization).
pub async fn project_resource(ctx: &Context<'_>, tx: &TenantTx, id: Uuid) -> GqlResult<Resource> {
    let owner = ctx.state().projects.owner_of(tx, id).await.gql()?;
    Ok(Resource::record(ResourceType::Project, id).with_owner(Subject::User(owner)))
}

/// What a caller may do with one document.
pub enum DocumentAccess {
    /// Allowed.
    Granted(authz::Permit),
    /// The caller may not even read it, or it does not exist: both look the same.
    Hidden,
    /// The caller reads it but may not do this.
    Refused(authz::Error),
}

/// Decides `action` on a document for the caller.
pub async fn document_access(
    ctx: &Context<'_>,
    tx: &TenantTx,
    actor: &tenancy::Actor,
    id: Uuid,
    action: authz::Action,
) -> GqlResult<DocumentAccess> {
    let state = ctx.state();
    let resource = match state.documents.resource(tx, id).await {
        Ok(resource) => resource,
        Err(core_domain::Error::NotFound { .. }) => return Ok(DocumentAccess::Hidden),
        Err(e) => return Err(e).gql(),
    };
    match state
        .authz
        .check(tx, actor.principal, resource.clone(), action)
        .await
    {
        Ok(permit) => Ok(DocumentAccess::Granted(permit)),
        Err(denied @ authz::Error::Denied { .. }) => {
            let readable = action != authz::Action::Read
                && state
                    .authz
                    .can(tx, &actor.principal.into(), &resource, authz::Action::Read)
                    .await
                    .gql()?;
            Ok(if readable {
                DocumentAccess::Refused(denied)
            } else {
                DocumentAccess::Hidden
            })
        }
        Err(e) => Err(e).gql(),
    }
}

/// A permit to `action` on a document. A caller who may not even read it gets
/// `NOT_FOUND`, exactly as for a document that does not exist; one who reads it but may
/// not do this gets `FORBIDDEN`.
pub async fn document_permit(
    ctx: &Context<'_>,
    tx: &TenantTx,
    actor: &tenancy::Actor,
    id: Uuid,
    action: authz::Action,
) -> GqlResult<authz::Permit> {
    match document_access(ctx, tx, actor, id, action).await? {
        DocumentAccess::Granted(permit) => Ok(permit),
        DocumentAccess::Hidden => Err(core_domain::Error::NotFound { entity: "document" }).gql(),
        DocumentAccess::Refused(e) => Err(e).gql(),
    }
}

/// Who may grant and revoke on a record: grants on a project, and on its documents, are
/// managed by those who may manage grants of the project.
pub async fn grant_scope(
    ctx: &Context<'_>,
    tx: &TenantTx,
    typ: ResourceType,
    id: Uuid,
) -> GqlResult<(Resource, Resource)> {
    let (record, project) = match typ {
        ResourceType::Document => {
            let record = ctx.state().documents.resource(tx, id).await.gql()?;
            let project = record.parent.map_or(id, |(_, project)| project);
            (record, project)
        }
        _ => (project_resource(ctx, tx, id).await?, id),
    };
    let on_grants =
        Resource::of_type(ResourceType::Grant).with_parent(ResourceType::Project, project);
    Ok((record, on_grants))
}
