//! Audit events as auditors read them.

use crate::graphql::ids::{GlobalId, NodeKind};
use async_graphql::{ID, SimpleObject};
use chrono::{DateTime, Utc};
use kernel::OrgId;

/// One changed field. Personal values of an erased person read `[erased]`.
#[derive(SimpleObject)]
pub struct AuditChange {
    /// The field.
    pub field: String,
    /// The value before, as JSON (null: it did not exist, or was null).
    pub before: Option<async_graphql::Json<serde_json::Value>>,
    /// The value after, as JSON (null: it no longer exists, or is null).
    pub after: Option<async_graphql::Json<serde_json::Value>>,
}

/// One event of the organization's audit trail.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct AuditEvent {
    #[graphql(skip)]
    global_id: ID,
    /// The acting user's or API key's global id (`node(id:)`/`nodes(ids:)` fetch what
    /// the caller may see of them); null for the system.
    pub actor_global_id: Option<ID>,
    /// The global id of the record the event is about, where it is one that has global
    /// ids (projects, documents, members, invitations, API keys, the organization).
    pub target_global_id: Option<ID>,
    /// Position in the organization's chain.
    pub seq: i64,
    /// When it happened.
    pub occurred_at: DateTime<Utc>,
    /// `user`, `api_key` or `system`.
    pub actor_type: String,
    /// The acting user's or key's UUID.
    pub actor_id: Option<String>,
    /// The staff member acting on the actor's behalf.
    pub impersonator_id: Option<String>,
    /// What happened, e.g. `member.role_changed`.
    pub action: String,
    /// The kind of record.
    pub target_type: String,
    /// The record's UUID.
    pub target_id: Option<String>,
    /// `success` or `failure`.
    pub outcome: String,
    /// What changed.
    pub changes: Vec<AuditChange>,
    /// The request.
    pub request_id: Option<String>,
    /// The GraphQL operation.
    pub operation: Option<String>,
    /// The client's address.
    pub ip: Option<String>,
    /// The client's user agent.
    pub user_agent: Option<String>,
    /// The event's hash in the chain.
    pub hash: String,
}

#[async_graphql::ComplexObject]
impl AuditEvent {
    /// Global id (`node(id:)` fetches the event).
    pub async fn id(&self) -> ID {
        self.global_id.clone()
    }
}

/// The global id of a record an event names by type and UUID, where the type has one.
pub(crate) fn global_id_of(org: OrgId, typ: &str, id: Option<&str>) -> Option<ID> {
    let id = uuid::Uuid::try_parse(id?).ok()?;
    let kind = match typ {
        "user" => return Some(GlobalId::global(NodeKind::User, id)),
        "organization" => return Some(GlobalId::global(NodeKind::Organization, id)),
        "api_key" => NodeKind::ApiKey,
        "project" => NodeKind::Project,
        "document" => NodeKind::Document,
        "membership" | "member" => NodeKind::Membership,
        "invitation" => NodeKind::Invitation,
        _ => return None,
    };
    Some(GlobalId::scoped(kind, org, id))
}

impl AuditEvent {
    /// An event of `org`'s trail.
    pub fn of(org: OrgId, e: audit::AuditEvent) -> Self {
        Self {
            global_id: GlobalId::scoped(NodeKind::AuditEvent, org, e.id),
            actor_global_id: global_id_of(org, &e.actor_type, e.actor_id.as_deref()),
            target_global_id: global_id_of(org, &e.target_type, e.target_id.as_deref()),
            seq: e.seq,
            occurred_at: e.occurred_at,
            actor_type: e.actor_type,
            actor_id: e.actor_id,
            impersonator_id: e.impersonator_id,
            action: e.action,
            target_type: e.target_type,
            target_id: e.target_id,
            outcome: e.outcome,
            changes: e
                .changes
                .into_iter()
                .map(|c| AuditChange {
                    field: c.field,
                    before: c.before.map(async_graphql::Json),
                    after: c.after.map(async_graphql::Json),
                })
                .collect(),
            request_id: e.request_id,
            operation: e.operation,
            ip: e.ip,
            user_agent: e.user_agent,
            hash: e.hash,
        }
    }
}

/// The first place the chain does not hold.
#[derive(SimpleObject)]
pub struct BrokenLink {
    /// Where.
    pub seq: i64,
    /// What is wrong there.
    pub reason: String,
}

/// The result of recomputing the organization's chain.
#[derive(SimpleObject)]
pub struct AuditVerification {
    /// Whether the whole chain holds.
    pub valid: bool,
    /// Events checked.
    pub checked: i64,
    /// The first broken link.
    pub broken: Option<BrokenLink>,
    /// Events recorded and committed but not chained yet, so not checked (a busy
    /// organization's events are chained just after their commit, within moments).
    pub unsealed: i64,
    /// When the oldest of the unchained events happened.
    pub oldest_unsealed_at: Option<DateTime<Utc>>,
}

impl From<audit::VerifyReport> for AuditVerification {
    fn from(r: audit::VerifyReport) -> Self {
        Self {
            valid: r.broken.is_none(),
            checked: i64::try_from(r.checked).unwrap_or(i64::MAX),
            broken: r.broken.map(|b| BrokenLink {
                seq: b.seq,
                reason: b.reason,
            }),
            unsealed: i64::try_from(r.unsealed.events).unwrap_or(i64::MAX),
            oldest_unsealed_at: r.unsealed.oldest,
        }
    }
}
