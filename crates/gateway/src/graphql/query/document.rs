//! `documents` (search and list) and `documentVersions`.

use crate::context::ContextExt;
use crate::context::{Where, read};
use crate::error::{GqlResult, ResultExt};
use crate::graphql::connection::{ListOrder, connection, connection_with, page_request};
use crate::graphql::ids::{GlobalId, NodeKind};
use crate::graphql::types::Document;
use crate::graphql::types::document::{DocumentStatus, DocumentVersion};
use async_graphql::connection::Connection;
use async_graphql::{Context, ID, InputObject, Object};
use authz::{Action, ResourceType};
use kernel::UserId;

#[derive(Default)]
pub struct DocumentsQuery;

/// What `documents` narrows to; every part is optional.
#[derive(InputObject, Default)]
pub struct DocumentFilter {
    /// Only this project's documents.
    pub project_id: Option<ID>,
    /// Only documents in this status.
    pub status: Option<DocumentStatus>,
    /// Only this person's documents (a User id).
    pub author_id: Option<ID>,
    /// Title or body contains this text (case-insensitive, at most 200 characters).
    pub text: Option<String>,
}

#[Object]
impl DocumentsQuery {
    /// Documents of the active organization the caller may read, oldest first unless
    /// `orderBy` says `NEWEST_FIRST`, narrowed by `filter`: all of them for organization-wide roles; otherwise those granted
    /// (directly, through a role, or through a grant on their project) and those the
    /// caller wrote. Filtered in SQL, so pages stay exact.
    #[allow(clippy::too_many_arguments)]
    async fn documents(
        &self,
        ctx: &Context<'_>,
        filter: Option<DocumentFilter>,
        #[graphql(default)] order_by: ListOrder,
        after: Option<String>,
        before: Option<String>,
        first: Option<i32>,
        last: Option<i32>,
    ) -> GqlResult<Connection<String, Document, DocumentList>> {
        let page = page_request(after, before, first, last).gql()?;
        let (tx, actor) = ctx.enter_active_read().await?;
        let filter = filter.unwrap_or_default();
        let project_id = match &filter.project_id {
            Some(id) => {
                let id = GlobalId::expect("filter.projectId", id, NodeKind::Project).gql()?;
                if id.org != Some(actor.org_id) {
                    // Another organization's project holds nothing the caller may list.
                    return Ok(connection_with(
                        kernel::Page::<core_domain::Document> {
                            items: Vec::new(),
                            has_previous: false,
                            has_next: false,
                        },
                        |d| d.id,
                        Document,
                        DocumentList { counted: None },
                    ));
                }
                Some(id.project_id()?)
            }
            None => None,
        };
        let author_id = match &filter.author_id {
            Some(id) => Some(UserId::from_uuid(
                GlobalId::expect("filter.authorId", id, NodeKind::User)
                    .gql()?
                    .id,
            )),
            None => None,
        };
        let search = core_domain::DocumentFilter {
            project_id,
            status: filter.status.map(Into::into),
            author_id,
            text: filter.text,
            order: order_by.into(),
        };
        let state = ctx.state();
        let policy = state
            .authz
            .list_filter(
                &tx,
                &actor.principal.into(),
                ResourceType::Document,
                Action::Read,
                Some(ResourceType::Project),
            )
            .await
            .gql()?;
        let documents = state
            .documents
            .list(&tx, &policy, &search, &page)
            .await
            .gql()?;
        Ok(connection_with(
            documents,
            |d| d.id,
            Document,
            DocumentList {
                counted: Some((policy, search)),
            },
        ))
    }

    /// A document's saved versions, newest first.
    async fn document_versions(
        &self,
        ctx: &Context<'_>,
        document_id: ID,
        after: Option<String>,
        before: Option<String>,
        first: Option<i32>,
        last: Option<i32>,
    ) -> GqlResult<Connection<String, DocumentVersion>> {
        let page = page_request(after, before, first, last).gql()?;
        let id = GlobalId::expect("documentId", &document_id, NodeKind::Document).gql()?;
        read(ctx, Where::RecordOf(&id), async |unit| {
            let permit = unit
                .document_permit(id.document_id()?, Action::Read)
                .await?;
            let documents = &unit.state.documents;
            let versions = documents
                .versions(unit.tx, &permit, id.document_id()?, &page)
                .await?;
            let org = unit.actor.org_id;
            Ok(connection(
                versions,
                |v| core_domain::version_key(v.version),
                |v| DocumentVersion(v, org),
            ))
        })
        .await
    }
}

/// What the document list says of itself as a whole.
pub struct DocumentList {
    /// The caller's read filter and the search the list was read with (none: a list
    /// that is empty by construction).
    counted: Option<(authz::ListFilter, core_domain::DocumentFilter)>,
}

#[Object]
impl DocumentList {
    /// How many documents the list holds across all its pages (those the caller may
    /// read that match the filter). Counted only when asked for: one statement, in the
    /// operation's unit.
    async fn total_count(&self, ctx: &Context<'_>) -> GqlResult<i64> {
        let Some((policy, search)) = &self.counted else {
            return Ok(0);
        };
        crate::context::read(ctx, crate::context::Where::Active, async |unit| {
            let count = unit.state.documents.count(unit.tx, policy, search).await?;
            Ok(i64::try_from(count).unwrap_or(i64::MAX))
        })
        .await
    }
}
