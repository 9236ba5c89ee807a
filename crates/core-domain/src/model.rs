//! Projects as services take and return them.

use chrono::{DateTime, Utc};
use kernel::{DocumentId, OrgId, ProjectId, UserId};
use sea_orm::{ActiveEnum, DeriveActiveEnum, EnumIter};
use std::fmt;
use uuid::Uuid;

/// A project of an organization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Project {
    /// Id.
    pub id: ProjectId,
    /// The organization.
    pub org_id: OrgId,
    /// Name.
    pub name: String,
    /// Description (Markdown).
    pub description: String,
    /// Archived projects are read-only.
    pub archived: bool,
    /// Distinct approvals a document of this project needs (at least 1).
    pub required_approvals: u32,
    /// Who created it (and owns it).
    pub created_by: UserId,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// Input of project creation.
#[derive(Debug, Clone)]
pub struct NewProject {
    /// 1 to 200 characters.
    pub name: String,
    /// Up to 10,000 characters.
    pub description: String,
    /// Distinct approvals a document needs; 1 when `None`.
    pub required_approvals: Option<u32>,
}

/// A change to a project; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct UpdateProject {
    /// New name.
    pub name: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// Archive or restore.
    pub archived: Option<bool>,
    /// Distinct approvals a document needs from now on.
    pub required_approvals: Option<u32>,
}

/// Where a document is in the approval workflow:
/// `draft → in_review → approved | changes_requested → … → published → archived`.
/// Stored (and audited) by the names below; a stored name outside them fails the row's
/// read (an internal error), never a default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "Text")]
pub enum DocumentStatus {
    /// Being written; the only state besides `changes_requested` that can be submitted.
    #[sea_orm(string_value = "draft")]
    Draft,
    /// Submitted; reviewers approve or request changes.
    #[sea_orm(string_value = "in_review")]
    InReview,
    /// Approved by as many distinct reviewers as the project requires.
    #[sea_orm(string_value = "approved")]
    Approved,
    /// A reviewer asked for changes; approvals of the round are void.
    #[sea_orm(string_value = "changes_requested")]
    ChangesRequested,
    /// Approved and published.
    #[sea_orm(string_value = "published")]
    Published,
    /// Kept for reference; nothing changes any more.
    #[sea_orm(string_value = "archived")]
    Archived,
}

impl DocumentStatus {
    /// Every status, in workflow order.
    pub const ALL: [Self; 6] = [
        Self::Draft,
        Self::InReview,
        Self::Approved,
        Self::ChangesRequested,
        Self::Published,
        Self::Archived,
    ];
}

impl fmt::Display for DocumentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_value())
    }
}

/// A step of the workflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// Saving a new version (edit rights); sends a document in review or approved back
    /// to draft.
    Edit,
    /// `draft | changes_requested → in_review` (edit rights).
    Submit,
    /// One approval; `in_review → approved` once the project's number is reached
    /// (review rights, never the author).
    Approve,
    /// `in_review → changes_requested` (review rights).
    RequestChanges,
    /// `approved → published` (submit rights).
    Publish,
    /// `published → archived`, or abandoning a draft (delete rights).
    Archive,
}

impl Transition {
    /// The audit action.
    pub const fn action(self) -> &'static str {
        match self {
            Self::Edit => "document.edited",
            Self::Submit => "document.submitted",
            Self::Approve => "document.approved",
            Self::RequestChanges => "document.changes_requested",
            Self::Publish => "document.published",
            Self::Archive => "document.archived",
        }
    }

    /// What a permit for this step must allow.
    pub const fn required_action(self) -> authz::Action {
        match self {
            Self::Edit => authz::Action::Update,
            Self::Submit | Self::Publish => authz::Action::Submit,
            Self::Approve | Self::RequestChanges => authz::Action::Review,
            Self::Archive => authz::Action::Delete,
        }
    }

    /// The workflow as one pure decision: the status this step leads to from `from`, or
    /// `None` where the workflow does not allow it. An approval leads to `approved` once
    /// `approvals` (this one counted) reach `required` (at least one), else the document
    /// stays in review; an edit sends a document in review or approved back to draft.
    pub const fn next_status(
        self,
        from: DocumentStatus,
        approvals: u64,
        required: u64,
    ) -> Option<DocumentStatus> {
        use DocumentStatus::{Approved, Archived, ChangesRequested, Draft, InReview, Published};
        let required = if required == 0 { 1 } else { required };
        match (self, from) {
            (Self::Edit, Draft | InReview | Approved) => Some(Draft),
            (Self::Edit, ChangesRequested) => Some(ChangesRequested),
            (Self::Submit, Draft | ChangesRequested) => Some(InReview),
            (Self::Approve, InReview) if approvals >= required => Some(Approved),
            (Self::Approve, InReview) => Some(InReview),
            (Self::RequestChanges, InReview) => Some(ChangesRequested),
            (Self::Publish, Approved) => Some(Published),
            (Self::Archive, Draft | ChangesRequested | Published) => Some(Archived),
            _ => None,
        }
    }

    /// Whether the workflow allows this step from `from`.
    pub const fn allowed_from(self, from: DocumentStatus) -> bool {
        self.next_status(from, 0, 1).is_some()
    }

    /// Whether this step from `from` starts a new review round: the approvals given so far
    /// are void (changes requested, or an edit of a document in review or approved).
    pub const fn starts_new_round(self, from: DocumentStatus) -> bool {
        matches!(
            (self, from),
            (Self::RequestChanges, DocumentStatus::InReview)
                | (
                    Self::Edit,
                    DocumentStatus::InReview | DocumentStatus::Approved
                )
        )
    }

    /// The verb in messages.
    pub const fn verb(self) -> &'static str {
        match self {
            Self::Edit => "edit",
            Self::Submit => "submit",
            Self::Approve => "approve",
            Self::RequestChanges => "request changes on",
            Self::Publish => "publish",
            Self::Archive => "archive",
        }
    }
}

/// A document of a project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    /// Id.
    pub id: DocumentId,
    /// The organization.
    pub org_id: OrgId,
    /// The project it belongs to.
    pub project_id: ProjectId,
    /// Title.
    pub title: String,
    /// Body (Markdown).
    pub body: String,
    /// Workflow status.
    pub status: DocumentStatus,
    /// Who wrote it (and owns it).
    pub author_id: UserId,
    /// The current version number (1 at creation, +1 per saved edit).
    pub version: u32,
    /// The current review round; decisions of earlier rounds are void.
    pub review_round: u32,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

/// One saved state of a document. Never changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentVersion {
    /// The document.
    pub document_id: DocumentId,
    /// 1, 2, …
    pub version: u32,
    /// Title as saved.
    pub title: String,
    /// Body as saved.
    pub body: String,
    /// Who saved it.
    pub edited_by: UserId,
    /// When.
    pub edited_at: DateTime<Utc>,
    /// The fields this version changed (`title`, `body`; both for version 1).
    pub changed_fields: Vec<String>,
}

/// A reviewer's decision, stored by the names below (any other fails the row's read).
#[derive(Debug, Clone, Copy, PartialEq, Eq, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "Text")]
pub enum ReviewDecision {
    /// Approved.
    #[sea_orm(string_value = "approved")]
    Approved,
    /// Asked for changes.
    #[sea_orm(string_value = "changes_requested")]
    ChangesRequested,
}

/// One review decision on a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Review {
    /// Id.
    pub id: Uuid,
    /// The document.
    pub document_id: DocumentId,
    /// The review round it counts in.
    pub review_round: u32,
    /// The version reviewed.
    pub version: u32,
    /// Who decided.
    pub reviewer_id: UserId,
    /// What.
    pub decision: ReviewDecision,
    /// Why.
    pub comment: Option<String>,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// Input of document creation.
#[derive(Debug, Clone)]
pub struct NewDocument {
    /// The project.
    pub project_id: ProjectId,
    /// 1 to 300 characters.
    pub title: String,
    /// Markdown, up to 200,000 characters.
    pub body: String,
}

/// An edit; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct EditDocument {
    /// New title.
    pub title: Option<String>,
    /// New body.
    pub body: Option<String>,
}

/// What a document search narrows to; every part is optional.
#[derive(Debug, Clone, Default)]
pub struct DocumentFilter {
    /// Only this project's.
    pub project_id: Option<ProjectId>,
    /// Only in this status.
    pub status: Option<DocumentStatus>,
    /// Only by this author.
    pub author_id: Option<UserId>,
    /// Title or body contains this text (case-insensitive).
    pub text: Option<String>,
    /// The order the list is read in.
    pub order: kernel::ListOrder,
}

#[cfg(test)]
mod tests {
    use super::DocumentStatus::{Approved, Archived, ChangesRequested, Draft, InReview, Published};
    use super::{DocumentStatus, Transition};

    #[test]
    fn the_workflow_allows_each_step_from_its_statuses_only() {
        use Transition::*;
        // step → the statuses it leaves from and where it leads (one approval of one).
        let table: [(Transition, &[(DocumentStatus, DocumentStatus)]); 6] = [
            (
                Edit,
                &[
                    (Draft, Draft),
                    (InReview, Draft),
                    (Approved, Draft),
                    (ChangesRequested, ChangesRequested),
                ],
            ),
            (Submit, &[(Draft, InReview), (ChangesRequested, InReview)]),
            (Approve, &[(InReview, Approved)]),
            (RequestChanges, &[(InReview, ChangesRequested)]),
            (Publish, &[(Approved, Published)]),
            (
                Archive,
                &[
                    (Draft, Archived),
                    (ChangesRequested, Archived),
                    (Published, Archived),
                ],
            ),
        ];
        for (step, allowed) in table {
            for from in DocumentStatus::ALL {
                let expected = allowed.iter().find(|(f, _)| *f == from).map(|(_, to)| *to);
                assert_eq!(
                    step.next_status(from, 1, 1),
                    expected,
                    "{step:?} from {from}"
                );
                assert_eq!(
                    step.allowed_from(from),
                    expected.is_some(),
                    "{step:?} from {from}"
                );
            }
        }
    }

    #[test]
    fn a_document_is_approved_once_enough_distinct_reviewers_approved() {
        let approve =
            |approvals, required| Transition::Approve.next_status(InReview, approvals, required);
        assert_eq!(approve(1, 2), Some(InReview));
        assert_eq!(approve(2, 2), Some(Approved));
        assert_eq!(approve(3, 2), Some(Approved));
        // A project requiring none still needs one approval.
        assert_eq!(approve(0, 0), Some(InReview));
        assert_eq!(approve(1, 0), Some(Approved));
    }

    #[test]
    fn changes_requested_and_edits_under_review_start_a_new_round() {
        for from in DocumentStatus::ALL {
            assert_eq!(
                Transition::RequestChanges.starts_new_round(from),
                from == InReview,
                "{from}"
            );
            assert_eq!(
                Transition::Edit.starts_new_round(from),
                matches!(from, InReview | Approved),
                "{from}"
            );
            for step in [
                Transition::Submit,
                Transition::Approve,
                Transition::Publish,
                Transition::Archive,
            ] {
                assert!(!step.starts_new_round(from), "{step:?} from {from}");
            }
        }
    }
}
