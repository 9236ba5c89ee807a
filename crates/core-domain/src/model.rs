//! Projects as services take and return them.

use chrono::{DateTime, Utc};
use kernel::{OrgId, UserId};
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
}
