//! Events as services write them and as readers see them.

use chrono::{DateTime, Utc};
use kernel::Principal;
use serde_json::Value;
use uuid::Uuid;

/// Whether the recorded action succeeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// It happened.
    Success,
    /// It was attempted and refused or failed (a failed log-in).
    Failure,
}

impl Outcome {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Failure => "failure",
        }
    }
}

/// One changed field. A personal value (a name, an email) is stored encrypted with the
/// key of the person it is about, so erasing that person erases it from the trail.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// The field.
    pub field: String,
    /// Its value before (None: it did not exist).
    pub before: Option<Value>,
    /// Its value after (None: it no longer exists).
    pub after: Option<Value>,
    /// `user:<id>` or `email:<address>` when the values are personal data.
    pub personal_of: Option<String>,
}

/// An event to record.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// What happened, as `area.verb`: `member.role_changed`, `document.approved`.
    pub action: String,
    /// The kind of record it happened to.
    pub target_type: String,
    /// The record.
    pub target_id: Option<String>,
    /// Success or failure.
    pub outcome: Outcome,
    /// The changed fields.
    pub changes: Vec<Change>,
    /// Who acted, when not the request's principal (log-in: the person logging in).
    pub actor: Option<Principal>,
    /// Whose key encrypts the client address and user agent, when no principal acted
    /// (a failed log-in: the account tried).
    pub client_subject: Option<String>,
}

impl NewEvent {
    /// A successful `action` on `target_type` `target_id`.
    pub fn new(action: &str, target_type: &str, target_id: Option<impl ToString>) -> Self {
        Self {
            action: action.to_owned(),
            target_type: target_type.to_owned(),
            target_id: target_id.map(|id| id.to_string()),
            outcome: Outcome::Success,
            changes: Vec::new(),
            actor: None,
            client_subject: None,
        }
    }

    /// Adds a changed field.
    pub fn change(
        mut self,
        field: &str,
        before: Option<impl Into<Value>>,
        after: Option<impl Into<Value>>,
    ) -> Self {
        self.changes.push(Change {
            field: field.to_owned(),
            before: before.map(Into::into),
            after: after.map(Into::into),
            personal_of: None,
        });
        self
    }

    /// Adds a changed field holding personal data of `subject` (`user:<id>`,
    /// `email:<address>`).
    pub fn personal(
        mut self,
        field: &str,
        subject: &str,
        before: Option<impl Into<Value>>,
        after: Option<impl Into<Value>>,
    ) -> Self {
        self.changes.push(Change {
            field: field.to_owned(),
            before: before.map(Into::into),
            after: after.map(Into::into),
            personal_of: Some(subject.to_owned()),
        });
        self
    }

    /// Marks the event as a failed attempt.
    pub fn failed(mut self) -> Self {
        self.outcome = Outcome::Failure;
        self
    }

    /// Names the actor explicitly.
    pub fn by(mut self, actor: Principal) -> Self {
        self.actor = Some(actor);
        self
    }

    /// Names whose key protects the client details when nobody is authenticated.
    pub fn client_of(mut self, subject: &str) -> Self {
        self.client_subject = Some(subject.to_owned());
        self
    }
}

/// A changed field as read back: personal values of an erased person read `[erased]`.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadChange {
    /// The field.
    pub field: String,
    /// Before.
    pub before: Option<Value>,
    /// After.
    pub after: Option<Value>,
}

/// A recorded event.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEvent {
    /// Id.
    pub id: Uuid,
    /// Position in the organization's chain.
    pub seq: i64,
    /// When.
    pub occurred_at: DateTime<Utc>,
    /// `user`, `api_key` or `system`.
    pub actor_type: String,
    /// The acting user's or key's id.
    pub actor_id: Option<String>,
    /// The staff member acting on the actor's behalf.
    pub impersonator_id: Option<String>,
    /// What happened.
    pub action: String,
    /// To what kind of record.
    pub target_type: String,
    /// To which record.
    pub target_id: Option<String>,
    /// `success` or `failure`.
    pub outcome: String,
    /// What changed.
    pub changes: Vec<ReadChange>,
    /// The request.
    pub request_id: Option<String>,
    /// The operation.
    pub operation: Option<String>,
    /// The client address (`[erased]` once its owner is erased).
    pub ip: Option<String>,
    /// The client user agent (likewise).
    pub user_agent: Option<String>,
    /// This event's hash.
    pub hash: String,
}

/// Which events to read.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    /// `user:<id>` or `key:<id>`.
    pub actor: Option<String>,
    /// An exact action.
    pub action: Option<String>,
    /// A target type.
    pub target_type: Option<String>,
    /// A target id.
    pub target_id: Option<String>,
    /// From this instant, inclusive.
    pub from: Option<DateTime<Utc>>,
    /// Until this instant, exclusive.
    pub to: Option<DateTime<Utc>>,
}

/// The first place a chain does not hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokenLink {
    /// The sequence number where it breaks.
    pub seq: i64,
    /// What is wrong there.
    pub reason: String,
}

/// The result of recomputing an organization's chain.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyReport {
    /// Events checked.
    pub checked: u64,
    /// The first broken link, if any.
    pub broken: Option<BrokenLink>,
    /// Events recorded but not chained yet (not checked: they have no link yet).
    pub unsealed: crate::UnsealedTail,
}

/// Where verification computes the hashes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hashing {
    /// By the database (PostgreSQL's `sha256`); SQLite has none and hashes here.
    InDatabase,
    /// In this process, from the canonical serialization the database sends: an
    /// independent recomputation (`platform audit verify --hash-here`).
    Here,
}
