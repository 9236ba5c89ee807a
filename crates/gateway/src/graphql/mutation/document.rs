//! Writing documents and moving them through the approval workflow.

use crate::context::{Where, write};
use crate::error::{GqlResult, ResultExt};
use crate::graphql::ids::{GlobalId, NodeKind};
use crate::graphql::types::Document;
use crate::standing::WriteClass;
use async_graphql::{Context, ID, InputObject, Object, SimpleObject};
use authz::{Action, Resource, ResourceType};
use core_domain::Transition;

#[derive(Default)]
pub struct DocumentMutation;

/// Input of `createDocument`.
#[derive(InputObject)]
pub struct CreateDocumentInput {
    /// The project (a Project id).
    pub project_id: ID,
    /// 1 to 300 characters.
    pub title: String,
    /// Markdown, up to 200,000 characters.
    #[graphql(default)]
    pub body: String,
}

/// Input of `updateDocument`: saves a new version. Omitted fields stay as they are.
#[derive(InputObject)]
pub struct UpdateDocumentInput {
    /// The document.
    pub document_id: ID,
    /// New title.
    pub title: Option<String>,
    /// New body.
    pub body: Option<String>,
}

/// Input of a workflow step.
#[derive(InputObject)]
pub struct DocumentStepInput {
    /// The document.
    pub document_id: ID,
    /// Why (kept with the step in the audit trail; up to 2,000 characters).
    pub comment: Option<String>,
}

/// A document after a change.
#[derive(SimpleObject)]
pub struct DocumentPayload {
    /// The document.
    pub document: Document,
}

/// One workflow step on one document, with the right it needs.
async fn step(
    ctx: &Context<'_>,
    input: DocumentStepInput,
    transition: Transition,
) -> GqlResult<DocumentPayload> {
    let id = GlobalId::expect("documentId", &input.document_id, NodeKind::Document).gql()?;
    write(
        ctx,
        Where::RecordOf(&id),
        WriteClass::Ordinary,
        async |unit| {
            let permit = unit
                .document_permit(id.document_id()?, transition.required_action())
                .await?;
            let documents = &unit.state.documents;
            let document = documents
                .transition(
                    unit.tx,
                    &permit,
                    id.document_id()?,
                    transition,
                    input.comment,
                )
                .await?;
            Ok(DocumentPayload {
                document: Document(document),
            })
        },
    )
    .await
}

#[Object]
impl DocumentMutation {
    /// Creates a draft (version 1) in a project; the caller is its author. Needs the
    /// right to create documents in that project (an organization role, or `editor` or
    /// `project_admin` on the project), and room in the plan (`LIMIT_EXCEEDED` with
    /// `limit`, `max` and `usage`).
    async fn create_document(
        &self,
        ctx: &Context<'_>,
        input: CreateDocumentInput,
    ) -> GqlResult<DocumentPayload> {
        let project = GlobalId::expect("projectId", &input.project_id, NodeKind::Project).gql()?;
        let new = core_domain::NewDocument {
            project_id: project.project_id()?,
            title: input.title,
            body: input.body,
        };
        write(
            ctx,
            Where::RecordOf(&project),
            WriteClass::Ordinary,
            async |unit| {
                // An unknown project is NOT_FOUND before any decision.
                unit.project_resource(project.project_id()?).await?;
                let in_project = Resource::of_type(ResourceType::Document)
                    .with_parent(ResourceType::Project, project.id);
                let permit = unit.permit(in_project, Action::Create).await?;
                let document = unit.state.documents.create(unit.tx, &permit, new).await?;
                Ok(DocumentPayload {
                    document: Document(document),
                })
            },
        )
        .await
    }

    /// Saves an edit as a new version. Editing a document in review or approved sends it
    /// back to draft and voids its approvals; published and archived documents are
    /// `CONFLICT`.
    async fn update_document(
        &self,
        ctx: &Context<'_>,
        input: UpdateDocumentInput,
    ) -> GqlResult<DocumentPayload> {
        let id = GlobalId::expect("documentId", &input.document_id, NodeKind::Document).gql()?;
        let edit = core_domain::EditDocument {
            title: input.title,
            body: input.body,
        };
        write(
            ctx,
            Where::RecordOf(&id),
            WriteClass::Ordinary,
            async |unit| {
                let permit = unit
                    .document_permit(id.document_id()?, Action::Update)
                    .await?;
                let document = unit
                    .state
                    .documents
                    .edit(unit.tx, &permit, id.document_id()?, edit)
                    .await?;
                Ok(DocumentPayload {
                    document: Document(document),
                })
            },
        )
        .await
    }

    /// `DRAFT | CHANGES_REQUESTED → IN_REVIEW`. Needs edit rights on the document.
    async fn submit_document(
        &self,
        ctx: &Context<'_>,
        input: DocumentStepInput,
    ) -> GqlResult<DocumentPayload> {
        step(ctx, input, Transition::Submit).await
    }

    /// Approves the current version: `IN_REVIEW → APPROVED` once the project's number of
    /// distinct reviewers approved. Needs the review right on the document; authors
    /// cannot approve their own (`FORBIDDEN`); a second approval by the same reviewer in
    /// one round is `CONFLICT`.
    async fn approve_document(
        &self,
        ctx: &Context<'_>,
        input: DocumentStepInput,
    ) -> GqlResult<DocumentPayload> {
        step(ctx, input, Transition::Approve).await
    }

    /// `IN_REVIEW → CHANGES_REQUESTED`; voids the approvals of the round. Needs the
    /// review right on the document.
    async fn request_document_changes(
        &self,
        ctx: &Context<'_>,
        input: DocumentStepInput,
    ) -> GqlResult<DocumentPayload> {
        step(ctx, input, Transition::RequestChanges).await
    }

    /// `APPROVED → PUBLISHED`. Needs the submit right on the document.
    async fn publish_document(
        &self,
        ctx: &Context<'_>,
        input: DocumentStepInput,
    ) -> GqlResult<DocumentPayload> {
        step(ctx, input, Transition::Publish).await
    }

    /// `PUBLISHED → ARCHIVED`, or abandons a draft (`DRAFT | CHANGES_REQUESTED →
    /// ARCHIVED`). Needs the delete right on the document.
    async fn archive_document(
        &self,
        ctx: &Context<'_>,
        input: DocumentStepInput,
    ) -> GqlResult<DocumentPayload> {
        step(ctx, input, Transition::Archive).await
    }
}
