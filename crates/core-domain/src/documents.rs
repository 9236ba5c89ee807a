//! [`DocumentService`]: documents of projects, their immutable versions and the approval
//! workflow. Every read and change takes a permit, every change and decision is one
//! audit event in its transaction, lists and searches are filtered in SQL by the caller's
//! policy, and creation asks the plan's limits first.

use crate::entity::{document, document_review, document_version};
use crate::error::{Error, Result};
use crate::limits::{ensure_below_limit, serialize_usage};
use crate::model::{
    Document, DocumentFilter, DocumentStatus, DocumentVersion, EditDocument, NewDocument, Review,
    ReviewDecision, Transition,
};
use crate::service::{find_project, text};
use audit::{AuditLog, NewEvent};
use authz::{Action, ListFilter, Permit, Resource, ResourceType, Subject};
use kernel::page::keyset_in;
use kernel::{
    DocumentId, Limit, OrgId, Page, PageRequest, Principal, ProjectId, SharedClock, SharedLimits,
    TenantTx, UserId,
};
use sea_orm::sea_query::{Expr, ExprTrait, Func, LikeExpr};
use sea_orm::{
    ActiveEnum, ActiveValue::Set, ColumnTrait, ConnectionTrait, DbBackend, EntityTrait,
    PaginatorTrait, QueryFilter, QuerySelect,
};
use serde_json::json;
use uuid::Uuid;

/// Longest title, in characters.
const MAX_TITLE: usize = 300;
/// Longest body, in characters.
const MAX_BODY: usize = 200_000;
/// Longest review or transition comment, in characters.
const MAX_COMMENT: usize = 2_000;

/// Documents and their workflow.
#[derive(Debug, Clone)]
pub struct DocumentService {
    audit: AuditLog,
    clock: SharedClock,
    limits: SharedLimits,
    usage: billing::UsageService,
}

/// A stored counter (a version, a review round) as the model's `u32`.
pub(crate) fn counter(column: &'static str, stored: i32) -> Result<u32> {
    u32::try_from(stored).map_err(|_| corrupt(column, stored))
}

/// The error for a stored value that does not parse, logged once here (by column and
/// value: statuses, counters and ids, never personal data).
fn corrupt(column: &'static str, value: impl std::fmt::Display) -> Error {
    let value = value.to_string();
    tracing::error!(column, value = %value, "corrupt stored value");
    Error::Corrupt { column, value }
}

fn from_row(row: document::Model) -> Result<Document> {
    Ok(Document {
        id: DocumentId::from_uuid(row.id),
        org_id: OrgId::from_uuid(row.organization_id),
        project_id: ProjectId::from_uuid(row.project_id),
        title: row.title,
        body: row.body,
        status: row.status,
        author_id: UserId::from_uuid(row.author_id),
        version: counter("documents.version", row.version)?,
        review_round: counter("documents.review_round", row.review_round)?,
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}

pub(crate) fn version_from_row(row: document_version::Model) -> Result<DocumentVersion> {
    let changed_fields = serde_json::from_str(&row.changed_fields).map_err(|_| {
        corrupt(
            "document_versions.changed_fields",
            format!(
                "not a JSON list (version {} of {})",
                row.version, row.document_id
            ),
        )
    })?;
    Ok(DocumentVersion {
        document_id: DocumentId::from_uuid(row.document_id),
        version: counter("document_versions.version", row.version)?,
        title: row.title,
        body: row.body,
        edited_by: UserId::from_uuid(row.edited_by),
        edited_at: row.edited_at,
        changed_fields,
    })
}

pub(crate) fn review_from_row(row: document_review::Model) -> Result<Review> {
    Ok(Review {
        id: row.id,
        document_id: DocumentId::from_uuid(row.document_id),
        review_round: counter("document_reviews.review_round", row.review_round)?,
        version: counter("document_reviews.version", row.version)?,
        reviewer_id: UserId::from_uuid(row.reviewer_id),
        decision: row.decision,
        comment: row.comment,
        created_at: row.created_at,
    })
}

/// The person behind a permit: documents are written and reviewed by people.
fn person(permit: &Permit) -> Result<UserId> {
    match permit.principal() {
        Principal::User(user) => Ok(user),
        Principal::ApiKey { .. } => Err(Error::Invalid {
            field: "principal",
            reason: "documents are written and reviewed by people, not API keys".into(),
        }),
    }
}

impl DocumentService {
    /// A service recording into `audit`, with time from `clock`, asking `limits` before
    /// creating.
    pub fn new(audit: AuditLog, clock: SharedClock, limits: SharedLimits) -> Self {
        Self {
            usage: billing::UsageService::new(audit.clone(), clock.clone()),
            audit,
            clock,
            limits,
        }
    }

    /// A document as a permission resource: it inherits its project's grants, and its
    /// author holds `record_owner` on it. An unknown id is `NOT_FOUND`.
    pub async fn resource(&self, tx: &TenantTx, id: DocumentId) -> Result<Resource> {
        let row = find(tx, id).await?;
        Ok(Resource::record(ResourceType::Document, id.as_uuid())
            .with_parent(ResourceType::Project, row.project_id)
            .with_owner(Subject::User(UserId::from_uuid(row.author_id))))
    }

    /// Creates a draft in a project (version 1); the caller is its author. The permit
    /// must be for creating documents under that very project.
    #[tracing::instrument(name = "documents.create", skip_all, err(level = "debug"))]
    pub async fn create(
        &self,
        tx: &TenantTx,
        permit: &Permit,
        input: NewDocument,
    ) -> Result<Document> {
        permit.ensure(tx, ResourceType::Document, Action::Create, None)?;
        if permit.resource().parent != Some((ResourceType::Project, input.project_id.as_uuid())) {
            return Err(authz::Error::PermitMismatch.into());
        }
        let author = person(permit)?;
        let title = text("title", &input.title, 1, MAX_TITLE)?;
        let body = body(&input.body)?;
        let project = find_project(tx, input.project_id).await?;
        if project.archived {
            return Err(Error::ProjectArchived);
        }
        serialize_usage(tx, Limit::DocumentsPerProject, project.id).await?;
        let usage = tx
            .select::<document::Entity>()
            .filter(document::Column::ProjectId.eq(project.id))
            .count(tx.conn())
            .await?;
        ensure_below_limit(tx, self.limits.as_ref(), Limit::DocumentsPerProject, usage).await?;
        let now = self.clock.now();
        let id = DocumentId::generate();
        let org = tx.org_id().as_uuid();
        let row = document::Entity::insert(document::ActiveModel {
            organization_id: Set(org),
            id: Set(id.as_uuid()),
            project_id: Set(project.id),
            title: Set(title.clone()),
            body: Set(body.clone()),
            status: Set(DocumentStatus::Draft),
            author_id: Set(author.as_uuid()),
            version: Set(1),
            review_round: Set(1),
            created_at: Set(now),
            updated_at: Set(now),
        })
        .exec_with_returning(tx.conn())
        .await?;
        insert_version(tx, id, 1, &title, &body, author, now, &["title", "body"]).await?;
        self.audit
            .record(
                tx,
                NewEvent::new("document.created", "document", Some(id.as_uuid()))
                    .change("project", None::<String>, Some(project.id.to_string()))
                    .change("title", None::<String>, Some(title))
                    .change("version", None::<u32>, Some(1))
                    .change(
                        "status",
                        None::<String>,
                        Some(DocumentStatus::Draft.to_value()),
                    ),
            )
            .await?;
        self.usage
            .record_platform_usage(tx, "documents_created", id.as_uuid())
            .await?;
        from_row(row)
    }

    /// One document.
    pub async fn get(&self, tx: &TenantTx, permit: &Permit, id: DocumentId) -> Result<Document> {
        permit.ensure(tx, ResourceType::Document, Action::Read, Some(id.as_uuid()))?;
        from_row(find(tx, id).await?)
    }

    /// One page of the documents `filter` (from `Authorizer::list_filter` for reading
    /// documents under projects) lets through, narrowed by `search`.
    pub async fn list(
        &self,
        tx: &TenantTx,
        filter: &ListFilter,
        search: &DocumentFilter,
        page: &PageRequest,
    ) -> Result<Page<Document>> {
        let select = matching(tx, filter, search)?;
        let rows = keyset_in(select, document::Column::Id, page, search.order)
            .all(tx.conn())
            .await?;
        Page::from_overfetch(rows, page).try_map(from_row)
    }

    /// How many documents [`Self::list`] holds across all its pages.
    pub async fn count(
        &self,
        tx: &TenantTx,
        filter: &ListFilter,
        search: &DocumentFilter,
    ) -> Result<u64> {
        Ok(matching(tx, filter, search)?.count(tx.conn()).await?)
    }

    /// The documents among `ids` that `filter` lets through (for batched loading).
    pub async fn by_ids(
        &self,
        tx: &TenantTx,
        filter: &ListFilter,
        ids: &[DocumentId],
    ) -> Result<Vec<Document>> {
        tx.select::<document::Entity>()
            .filter(document::Column::Id.is_in(ids.iter().copied()))
            .filter(filter.condition(
                tx,
                document::Column::Id,
                Some(document::Column::ProjectId),
                Some(document::Column::AuthorId),
            ))
            .all(tx.conn())
            .await?
            .into_iter()
            .map(from_row)
            .collect()
    }

    /// Saves an edit as a new version. An edit of a document in review or approved sends
    /// it back to draft and voids the approvals of its round; published and archived
    /// documents do not change (`CONFLICT`). An edit that changes nothing saves nothing.
    #[tracing::instrument(name = "documents.edit", skip_all, err(level = "debug"))]
    pub async fn edit(
        &self,
        tx: &TenantTx,
        permit: &Permit,
        id: DocumentId,
        edit: EditDocument,
    ) -> Result<Document> {
        permit.ensure(
            tx,
            ResourceType::Document,
            Action::Update,
            Some(id.as_uuid()),
        )?;
        let editor = person(permit)?;
        let row = find_for_update(tx, id).await?;
        let doc = from_row(row.clone())?;
        if find_project(tx, doc.project_id).await?.archived {
            return Err(Error::ProjectArchived);
        }
        if !Transition::Edit.allowed_from(doc.status) {
            return Err(Error::IllegalTransition {
                status: doc.status,
                transition: Transition::Edit,
            });
        }
        let title = match edit.title {
            Some(t) => text("title", &t, 1, MAX_TITLE)?,
            None => doc.title.clone(),
        };
        let body = match edit.body {
            Some(b) => body(&b)?,
            None => doc.body.clone(),
        };
        let mut changed = Vec::new();
        if title != doc.title {
            changed.push("title");
        }
        if body != doc.body {
            changed.push("body");
        }
        if changed.is_empty() {
            return Ok(doc);
        }
        let now = self.clock.now();
        let version = row.version + 1;
        insert_version(tx, id, version, &title, &body, editor, now, &changed).await?;
        let mut event = NewEvent::new("document.edited", "document", Some(id)).change(
            "version",
            Some(row.version),
            Some(version),
        );
        if title != doc.title {
            event = event.change("title", Some(doc.title.clone()), Some(title.clone()));
        }
        let mut active: document::ActiveModel = row.clone().into();
        if Transition::Edit.starts_new_round(doc.status) {
            let voided = approvals_in_round(tx, id, row.review_round).await?;
            event = event
                .change(
                    "status",
                    Some(doc.status.to_value()),
                    Some(DocumentStatus::Draft.to_value()),
                )
                .change("approvals_voided", Some(voided), Some(0));
            active.status = Set(DocumentStatus::Draft);
            active.review_round = Set(row.review_round + 1);
        }
        active.title = Set(title);
        active.body = Set(body);
        active.version = Set(version);
        active.updated_at = Set(now);
        let updated = document::Entity::update(active).exec(tx.conn()).await?;
        self.audit.record(tx, event).await?;
        from_row(updated)
    }

    /// One step of the workflow, with an optional comment: exactly one audit event with
    /// the actor, the status before and after, and the comment. A step the status does
    /// not allow is `CONFLICT` naming the status; authors cannot approve their own
    /// documents; a document is approved once the project's number of distinct reviewers
    /// approved the current round.
    #[tracing::instrument(name = "documents.transition", skip_all, fields(step = ?transition), err(level = "debug"))]
    pub async fn transition(
        &self,
        tx: &TenantTx,
        permit: &Permit,
        id: DocumentId,
        transition: Transition,
        comment: Option<String>,
    ) -> Result<Document> {
        permit.ensure(
            tx,
            ResourceType::Document,
            transition.required_action(),
            Some(id.as_uuid()),
        )?;
        let actor = person(permit)?;
        let comment = match comment.as_deref().map(str::trim) {
            Some("") | None => None,
            Some(c) => Some(text("comment", c, 1, MAX_COMMENT)?),
        };
        let row = find_for_update(tx, id).await?;
        let doc = from_row(row.clone())?;
        let project = find_project(tx, doc.project_id).await?;
        if project.archived {
            return Err(Error::ProjectArchived);
        }
        let illegal = || Error::IllegalTransition {
            status: doc.status,
            transition,
        };
        let now = self.clock.now();
        let mut round = row.review_round;
        let mut approvals = None;
        if !transition.allowed_from(doc.status) {
            return Err(illegal());
        }
        // The step's own work (a review recorded, counted), then the workflow decides.
        match transition {
            Transition::Approve => {
                if doc.author_id == actor {
                    return Err(Error::SelfApproval);
                }
                let already = tx
                    .select::<document_review::Entity>()
                    .filter(document_review::Column::DocumentId.eq(id))
                    .filter(document_review::Column::ReviewRound.eq(round))
                    .filter(document_review::Column::ReviewerId.eq(actor.as_uuid()))
                    .filter(document_review::Column::Decision.eq(ReviewDecision::Approved))
                    .count(tx.conn())
                    .await?;
                if already > 0 {
                    return Err(Error::AlreadyApproved);
                }
                self.insert_review(tx, &row, actor, ReviewDecision::Approved, &comment)
                    .await?;
                approvals = Some(approvals_in_round(tx, id, round).await?);
            }
            Transition::RequestChanges => {
                self.insert_review(tx, &row, actor, ReviewDecision::ChangesRequested, &comment)
                    .await?;
            }
            _ => {}
        }
        let required = u64::from(crate::service::required_approvals(&project)?);
        let to = transition
            .next_status(doc.status, approvals.unwrap_or(0), required)
            .ok_or_else(illegal)?;
        if transition.starts_new_round(doc.status) {
            round += 1;
        }
        let mut active: document::ActiveModel = row.clone().into();
        active.status = Set(to);
        active.review_round = Set(round);
        active.updated_at = Set(now);
        let updated = document::Entity::update(active).exec(tx.conn()).await?;
        let mut event = NewEvent::new(transition.action(), "document", Some(id.as_uuid()))
            .change("status", Some(doc.status.to_value()), Some(to.to_value()))
            .change("version", None::<i32>, Some(row.version));
        if let Some(comment) = &comment {
            event = event.change("comment", None::<String>, Some(comment.clone()));
        }
        if let Some(count) = approvals {
            event = event.change(
                "approvals",
                Some(json!(count.saturating_sub(1))),
                Some(json!(count)),
            );
        }
        self.audit.record(tx, event).await?;
        from_row(updated)
    }

    async fn insert_review(
        &self,
        tx: &TenantTx,
        doc: &document::Model,
        reviewer: UserId,
        decision: ReviewDecision,
        comment: &Option<String>,
    ) -> Result<()> {
        document_review::Entity::insert(document_review::ActiveModel {
            organization_id: Set(doc.organization_id),
            id: Set(Uuid::now_v7()),
            document_id: Set(doc.id),
            review_round: Set(doc.review_round),
            version: Set(doc.version),
            reviewer_id: Set(reviewer.as_uuid()),
            decision: Set(decision),
            comment: Set(comment.clone()),
            created_at: Set(self.clock.now()),
        })
        .exec_without_returning(tx.conn())
        .await?;
        Ok(())
    }
}

fn body(value: &str) -> Result<String> {
    if value.chars().count() > MAX_BODY {
        return Err(Error::Invalid {
            field: "body",
            reason: format!("must be at most {MAX_BODY} characters"),
        });
    }
    Ok(value.to_owned())
}

/// Distinct reviewers who approved `round` of a document.
async fn approvals_in_round(tx: &TenantTx, id: DocumentId, round: i32) -> Result<u64> {
    let reviewers: Vec<Uuid> = tx
        .select::<document_review::Entity>()
        .select_only()
        .column(document_review::Column::ReviewerId)
        .filter(document_review::Column::DocumentId.eq(id))
        .filter(document_review::Column::ReviewRound.eq(round))
        .filter(document_review::Column::Decision.eq(ReviewDecision::Approved))
        .distinct()
        .into_tuple()
        .all(tx.conn())
        .await?;
    Ok(reviewers.len() as u64)
}

#[allow(clippy::too_many_arguments)]
async fn insert_version(
    tx: &TenantTx,
    document: DocumentId,
    version: i32,
    title: &str,
    body: &str,
    editor: UserId,
    at: chrono::DateTime<chrono::Utc>,
    changed: &[&str],
) -> Result<()> {
    document_version::Entity::insert(document_version::ActiveModel {
        organization_id: Set(tx.org_id().as_uuid()),
        document_id: Set(document.as_uuid()),
        version: Set(version),
        title: Set(title.to_owned()),
        body: Set(body.to_owned()),
        edited_by: Set(editor.as_uuid()),
        edited_at: Set(at),
        changed_fields: Set(json!(changed).to_string()),
    })
    .exec_without_returning(tx.conn())
    .await?;
    Ok(())
}

/// A document of the transaction's organization.
async fn find(tx: &TenantTx, id: DocumentId) -> Result<document::Model> {
    tx.select::<document::Entity>()
        .filter(document::Column::Id.eq(id))
        .one(tx.conn())
        .await?
        .ok_or(Error::NotFound { entity: "document" })
}

/// A document of the transaction's organization, its row locked on PostgreSQL so that
/// concurrent workflow steps on one document queue (SQLite writers already hold the
/// database lock).
async fn find_for_update(tx: &TenantTx, id: DocumentId) -> Result<document::Model> {
    let mut select = tx
        .select::<document::Entity>()
        .filter(document::Column::Id.eq(id));
    if tx.conn().get_database_backend() == DbBackend::Postgres {
        select = select.lock_exclusive();
    }
    select
        .one(tx.conn())
        .await?
        .ok_or(Error::NotFound { entity: "document" })
}

/// The documents `filter` lets through, narrowed by `search` (unordered, unpaged).
fn matching(
    tx: &TenantTx,
    filter: &ListFilter,
    search: &DocumentFilter,
) -> Result<sea_orm::Select<document::Entity>> {
    let mut select = tx.select::<document::Entity>().filter(filter.condition(
        tx,
        document::Column::Id,
        Some(document::Column::ProjectId),
        Some(document::Column::AuthorId),
    ));
    if let Some(project) = search.project_id {
        select = select.filter(document::Column::ProjectId.eq(project));
    }
    if let Some(status) = search.status {
        select = select.filter(document::Column::Status.eq(status));
    }
    if let Some(author) = search.author_id {
        select = select.filter(document::Column::AuthorId.eq(author.as_uuid()));
    }
    if let Some(text) = search
        .text
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
    {
        if text.chars().count() > 200 {
            return Err(Error::Invalid {
                field: "text",
                reason: "must be at most 200 characters".into(),
            });
        }
        let escaped = text
            .to_lowercase()
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        let pattern = || LikeExpr::new(format!("%{escaped}%")).escape('\\');
        select = select.filter(
            Expr::expr(Func::lower(Expr::col(document::Column::Title)))
                .like(pattern())
                .or(Expr::expr(Func::lower(Expr::col(document::Column::Body))).like(pattern())),
        );
    }
    Ok(select)
}
