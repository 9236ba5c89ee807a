//! Projects as services take and return them.

use chrono::{DateTime, Utc};
use kernel::{OrgId, UserId};
use std::fmt;
use uuid::Uuid;

/// A project of an organization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Project {
    /// Id.
    pub id: Uuid,
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DocumentStatus {
    /// Being written; the only state besides `changes_requested` that can be submitted.
    Draft,
    /// Submitted; reviewers approve or request changes.
    InReview,
    /// Approved by as many distinct reviewers as the project requires.
    Approved,
    /// A reviewer asked for changes; approvals of the round are void.
    ChangesRequested,
    /// Approved and published.
    Published,
    /// Kept for reference; nothing changes any more.
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

    /// The stored (and audited) name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::InReview => "in_review",
            Self::Approved => "approved",
            Self::ChangesRequested => "changes_requested",
            Self::Published => "published",
            Self::Archived => "archived",
        }
    }

    /// The status stored as `name`.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

impl fmt::Display for DocumentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
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
    pub id: Uuid,
    /// The organization.
    pub org_id: OrgId,
    /// The project it belongs to.
    pub project_id: Uuid,
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
    pub document_id: Uuid,
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

/// A reviewer's decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReviewDecision {
    /// Approved.
    Approved,
    /// Asked for changes.
    ChangesRequested,
}

impl ReviewDecision {
    /// Every decision.
    pub const ALL: [Self; 2] = [Self::Approved, Self::ChangesRequested];

    /// The stored name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Approved => "approved",
            Self::ChangesRequested => "changes_requested",
        }
    }

    /// The decision stored as `name`.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.as_str() == name)
    }
}

/// One review decision on a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Review {
    /// Id.
    pub id: Uuid,
    /// The document.
    pub document_id: Uuid,
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
    pub project_id: Uuid,
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
    pub project_id: Option<Uuid>,
    /// Only in this status.
    pub status: Option<DocumentStatus>,
    /// Only by this author.
    pub author_id: Option<UserId>,
    /// Title or body contains this text (case-insensitive).
    pub text: Option<String>,
    /// The order the list is read in.
    pub order: kernel::ListOrder,
}
