//! Documents, their versions and review decisions. Nested fields go through the
//! operation's DataLoaders, so a page of documents costs a fixed number of queries.

use crate::error::ResultExt;
use crate::graphql::connection::{connection, page_request};
use crate::graphql::ids::{GlobalId, NodeKind};
use crate::graphql::loaders::Loaders;
use crate::graphql::types::project::{Grant, grants_on};
use crate::graphql::types::{Project, User};
use async_graphql::connection::Connection;
use async_graphql::{Context, Enum, ID, Object, Result};
use authz::ResourceType;
use chrono::{DateTime, Utc};
use core_domain::ReviewDecision as Decision;
use kernel::{OrgId, Page};

/// Where a document is in the approval workflow.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum DocumentStatus {
    /// Being written.
    Draft,
    /// Submitted for review.
    InReview,
    /// Approved by as many distinct reviewers as the project requires.
    Approved,
    /// A reviewer asked for changes.
    ChangesRequested,
    /// Published.
    Published,
    /// Archived: read-only.
    Archived,
}

impl From<core_domain::DocumentStatus> for DocumentStatus {
    fn from(status: core_domain::DocumentStatus) -> Self {
        use core_domain::DocumentStatus as S;
        match status {
            S::Draft => Self::Draft,
            S::InReview => Self::InReview,
            S::Approved => Self::Approved,
            S::ChangesRequested => Self::ChangesRequested,
            S::Published => Self::Published,
            S::Archived => Self::Archived,
        }
    }
}

impl From<DocumentStatus> for core_domain::DocumentStatus {
    fn from(status: DocumentStatus) -> Self {
        use DocumentStatus as S;
        match status {
            S::Draft => Self::Draft,
            S::InReview => Self::InReview,
            S::Approved => Self::Approved,
            S::ChangesRequested => Self::ChangesRequested,
            S::Published => Self::Published,
            S::Archived => Self::Archived,
        }
    }
}

impl DocumentStatus {
    /// The name clients see (`IN_REVIEW`), also in `extensions.status` of a refused step.
    pub fn graphql_name(status: core_domain::DocumentStatus) -> &'static str {
        match Self::from(status) {
            Self::Draft => "DRAFT",
            Self::InReview => "IN_REVIEW",
            Self::Approved => "APPROVED",
            Self::ChangesRequested => "CHANGES_REQUESTED",
            Self::Published => "PUBLISHED",
            Self::Archived => "ARCHIVED",
        }
    }
}

/// A reviewer's decision.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum ReviewDecision {
    /// Approved.
    Approved,
    /// Asked for changes.
    ChangesRequested,
}

/// A document of a project. Visible to those who may read it: organization-wide roles,
/// grants on it or on its project, its author.
pub struct Document(pub core_domain::Document);

fn loaders<'a>(ctx: &Context<'a>) -> &'a Loaders {
    ctx.data_unchecked::<Loaders>()
}

#[Object]
impl Document {
    /// Global id.
    pub async fn id(&self) -> ID {
        GlobalId::scoped(NodeKind::Document, self.0.org_id, self.0.id)
    }

    /// Title.
    async fn title(&self) -> &str {
        &self.0.title
    }

    /// Body (Markdown).
    async fn body(&self) -> &str {
        &self.0.body
    }

    /// Workflow status.
    async fn status(&self) -> DocumentStatus {
        self.0.status.into()
    }

    /// The current version number (1 at creation, one more per saved edit).
    async fn version(&self) -> u32 {
        self.0.version
    }

    /// The project; null when the caller may read this document (through a grant on it)
    /// but not its project.
    async fn project(&self, ctx: &Context<'_>) -> Result<Option<Project>> {
        let found = loaders(ctx)
            .projects
            .load_one((self.0.org_id, self.0.project_id))
            .await?;
        Ok(found.map(Project))
    }

    /// Who wrote it.
    async fn author(&self, ctx: &Context<'_>) -> Result<Option<User>> {
        let found = loaders(ctx).users.load_one(self.0.author_id).await?;
        Ok(found.map(|u| User::in_org(u, self.0.org_id)))
    }

    /// Approvals that count now: those of the current review round.
    async fn approvals(&self, ctx: &Context<'_>) -> Result<Vec<Review>> {
        let approvals = loaders(ctx)
            .approvals
            .load_one((self.0.org_id, self.0.id))
            .await?
            .unwrap_or_default();
        Ok(approvals.into_iter().map(|r| self.review(r)).collect())
    }

    /// Review decisions, oldest first; those of earlier rounds are void.
    async fn reviews(
        &self,
        ctx: &Context<'_>,
        after: Option<String>,
        before: Option<String>,
        first: Option<i32>,
        last: Option<i32>,
    ) -> Result<Connection<String, Review>> {
        let page = page_request(after, before, first, last).gql()?;
        let reviews = loaders(ctx)
            .reviews
            .load_one((self.0.org_id, self.0.id, page))
            .await?
            .unwrap_or_else(|| Page::from_overfetch(Vec::new(), &page));
        Ok(connection(reviews, |r| r.id, |r| self.review(r)))
    }

    /// Saved versions, newest first.
    async fn versions(
        &self,
        ctx: &Context<'_>,
        after: Option<String>,
        before: Option<String>,
        first: Option<i32>,
        last: Option<i32>,
    ) -> Result<Connection<String, DocumentVersion>> {
        let page = page_request(after, before, first, last).gql()?;
        let versions = loaders(ctx)
            .versions
            .load_one((self.0.org_id, self.0.id, page))
            .await?
            .unwrap_or_else(|| Page::from_overfetch(Vec::new(), &page));
        let org = self.0.org_id;
        Ok(connection(
            versions,
            |v| core_domain::version_key(v.version),
            |v| DocumentVersion(v, org),
        ))
    }

    /// Who was given a relation on this document alone (`editor`, `reviewer`, `reader`);
    /// grants on its project are on the project. Null with `FORBIDDEN` for those who
    /// may not read the project's grants.
    async fn grants(
        &self,
        ctx: &Context<'_>,
        after: Option<String>,
        before: Option<String>,
        first: Option<i32>,
        last: Option<i32>,
    ) -> Result<Option<Connection<String, Grant>>> {
        let d = &self.0;
        let page = page_request(after, before, first, last).gql()?;
        grants_on(
            ctx,
            d.org_id,
            d.project_id,
            (ResourceType::Document, d.id.as_uuid()),
            page,
        )
        .await
        .map(Some)
    }

    /// When it was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    /// When it last changed.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

impl Document {
    fn review(&self, review: core_domain::Review) -> Review {
        Review {
            review,
            org: self.0.org_id,
            current_round: self.0.review_round,
        }
    }
}

/// One saved state of a document; never changes.
pub struct DocumentVersion(pub core_domain::DocumentVersion, pub OrgId);

#[Object]
impl DocumentVersion {
    /// 1, 2, …
    async fn version(&self) -> u32 {
        self.0.version
    }

    /// The title as saved.
    async fn title(&self) -> &str {
        &self.0.title
    }

    /// The body as saved.
    async fn body(&self) -> &str {
        &self.0.body
    }

    /// The fields this version changed (`title`, `body`).
    async fn changed_fields(&self) -> &[String] {
        &self.0.changed_fields
    }

    /// Who saved it.
    async fn edited_by(&self, ctx: &Context<'_>) -> Result<Option<User>> {
        let found = loaders(ctx).users.load_one(self.0.edited_by).await?;
        Ok(found.map(|u| User::in_org(u, self.1)))
    }

    /// When.
    async fn edited_at(&self) -> DateTime<Utc> {
        self.0.edited_at
    }
}

/// One review decision.
pub struct Review {
    review: core_domain::Review,
    org: OrgId,
    current_round: u32,
}

impl Review {
    fn is_current(&self) -> bool {
        self.review.review_round == self.current_round
    }
}

#[Object]
impl Review {
    /// Approved or changes requested.
    async fn decision(&self) -> ReviewDecision {
        match self.review.decision {
            Decision::Approved => ReviewDecision::Approved,
            Decision::ChangesRequested => ReviewDecision::ChangesRequested,
        }
    }

    /// The reviewer's comment.
    async fn comment(&self) -> Option<&str> {
        self.review.comment.as_deref()
    }

    /// The version reviewed.
    async fn version(&self) -> u32 {
        self.review.version
    }

    /// False once an edit or a request for changes started a new review round.
    async fn current(&self) -> bool {
        self.is_current()
    }

    /// Who decided.
    async fn reviewer(&self, ctx: &Context<'_>) -> Result<Option<User>> {
        let found = loaders(ctx).users.load_one(self.review.reviewer_id).await?;
        Ok(found.map(|u| User::in_org(u, self.org)))
    }

    /// When.
    async fn created_at(&self) -> DateTime<Utc> {
        self.review.created_at
    }
}
