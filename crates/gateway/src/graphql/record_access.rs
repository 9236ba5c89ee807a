//! Who may do what on one project or document: the records as permission resources
//! (their owners, their parent project) and the access decided on them, shared by queries
//! and mutations.

use crate::context::Unit;
use crate::error::ApiError;
use authz::{Resource, ResourceType, Subject};
use kernel::{DocumentId, ProjectId};
use uuid::Uuid;

/// What a caller may do with one document.
pub enum DocumentAccess {
    /// Allowed.
    Granted(authz::Permit),
    /// The caller may not even read it, or it does not exist: both look the same.
    Hidden,
    /// The caller reads it but may not do this.
    Refused(authz::Error),
}

impl Unit<'_> {
    /// The project as a resource: its owner holds `record_owner` on it. An unknown id is
    /// `NOT_FOUND` before any decision (it is the caller's own organization).
    pub async fn project_resource(&self, id: ProjectId) -> Result<Resource, ApiError> {
        let owner = self.state.projects.owner_of(self.tx, id).await?;
        Ok(Resource::record(ResourceType::Project, id.as_uuid()).with_owner(Subject::User(owner)))
    }

    /// Decides `action` on a document for the caller.
    pub async fn document_access(
        &self,
        id: DocumentId,
        action: authz::Action,
    ) -> Result<DocumentAccess, ApiError> {
        let (state, tx, principal) = (self.state, self.tx, self.actor.principal);
        let resource = match state.documents.resource(tx, id).await {
            Ok(resource) => resource,
            Err(core_domain::Error::NotFound { .. }) => return Ok(DocumentAccess::Hidden),
            Err(e) => return Err(e.into()),
        };
        match state
            .authz
            .check(tx, principal, resource.clone(), action)
            .await
        {
            Ok(permit) => Ok(DocumentAccess::Granted(permit)),
            Err(denied @ authz::Error::Denied { .. }) => {
                let readable = action != authz::Action::Read
                    && state
                        .authz
                        .can(tx, &principal.into(), &resource, authz::Action::Read)
                        .await?;
                Ok(if readable {
                    DocumentAccess::Refused(denied)
                } else {
                    DocumentAccess::Hidden
                })
            }
            Err(e) => Err(e.into()),
        }
    }

    /// A permit to `action` on a document. A caller who may not even read it gets
    /// `NOT_FOUND`, exactly as for a document that does not exist; one who reads it but
    /// may not do this gets `FORBIDDEN`.
    pub async fn document_permit(
        &self,
        id: DocumentId,
        action: authz::Action,
    ) -> Result<authz::Permit, ApiError> {
        match self.document_access(id, action).await? {
            DocumentAccess::Granted(permit) => Ok(permit),
            DocumentAccess::Hidden => {
                Err(core_domain::Error::NotFound { entity: "document" }.into())
            }
            DocumentAccess::Refused(e) => Err(e.into()),
        }
    }

    /// Who may grant and revoke on a record: grants on a project, and on its documents,
    /// are managed by those who may manage grants of the project. Returns the record and
    /// the resource that guards its grants.
    pub async fn grant_scope(
        &self,
        typ: ResourceType,
        id: Uuid,
    ) -> Result<(Resource, Resource), ApiError> {
        let (record, project) = match typ {
            ResourceType::Document => {
                let record = self
                    .state
                    .documents
                    .resource(self.tx, DocumentId::from_uuid(id))
                    .await?;
                let project = record.parent.map_or(id, |(_, project)| project);
                (record, project)
            }
            _ => (self.project_resource(ProjectId::from_uuid(id)).await?, id),
        };
        let on_grants =
            Resource::of_type(ResourceType::Grant).with_parent(ResourceType::Project, project);
        Ok((record, on_grants))
    }
}
