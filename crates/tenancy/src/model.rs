//! What tenancy services take and return.

use crate::role::Role;
use chrono::{DateTime, Utc};
use kernel::{ApiKeyId, InvitationId, MembershipId, OrgId, Principal, UserId};

/// A person who can log in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Id.
    pub id: UserId,
    /// Email as entered at sign-up.
    pub email: String,
    /// Display name.
    pub name: String,
    /// When the account was created.
    pub created_at: DateTime<Utc>,
}

/// An organization: the tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Organization {
    /// Id.
    pub id: OrgId,
    /// Display name.
    pub name: String,
    /// Unique, URL-safe name.
    pub slug: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// While deletion is pending: when the purge may run.
    pub deletion_scheduled_at: Option<DateTime<Utc>>,
}

/// A user's membership in one organization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    /// Id.
    pub id: MembershipId,
    /// The organization.
    pub org_id: OrgId,
    /// The member.
    pub user_id: UserId,
    /// The member's role there.
    pub role: Role,
    /// When the user joined.
    pub created_at: DateTime<Utc>,
}

/// Where an invitation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvitationStatus {
    /// Can still be accepted.
    Pending,
    /// Was accepted.
    Accepted,
    /// Was withdrawn by an admin.
    Revoked,
    /// Passed its expiry without being accepted.
    Expired,
}

/// An invitation to join an organization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invitation {
    /// Id.
    pub id: InvitationId,
    /// The inviting organization.
    pub org_id: OrgId,
    /// Who is invited.
    pub email: String,
    /// The role the invitee gets.
    pub role: Role,
    /// Who invited them.
    pub invited_by: UserId,
    /// Until when it can be accepted.
    pub expires_at: DateTime<Utc>,
    /// Where it stands now.
    pub status: InvitationStatus,
    /// When it was (last) sent.
    pub created_at: DateTime<Utc>,
}

/// An invitation together with its token, which is shown only once.
#[derive(Debug, Clone)]
pub struct IssuedInvitation {
    /// The invitation.
    pub invitation: Invitation,
    /// The single-use token to hand to the invitee.
    pub token: String,
}

/// A service account's key, bound to one organization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    /// Id.
    pub id: ApiKeyId,
    /// The organization it acts in.
    pub org_id: OrgId,
    /// What it is for.
    pub name: String,
    /// The role it acts with (its own, never its creator's).
    pub role: Role,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last authenticated a request.
    pub last_used_at: Option<DateTime<Utc>>,
    /// When it was revoked.
    pub revoked_at: Option<DateTime<Utc>>,
    /// When it stops authenticating by itself (`None`: when revoked).
    pub expires_at: Option<DateTime<Utc>>,
    /// Whether it may run trusted documents only (no document text of its own).
    pub trusted_documents_only: bool,
}

/// A new API key with its secret, which is shown only once.
#[derive(Debug, Clone)]
pub struct IssuedApiKey {
    /// The key.
    pub api_key: ApiKey,
    /// The full secret to send as `Authorization: Bearer …`.
    pub secret: String,
}

/// Input of sign-up.
#[derive(Debug, Clone)]
pub struct NewUser {
    /// Email; unique, compared case-insensitively.
    pub email: String,
    /// Password, at least 10 characters.
    pub password: String,
    /// Display name.
    pub name: String,
}

/// What a successful log-in or refresh returns.
#[derive(Debug, Clone)]
pub struct Tokens {
    /// Short-lived signed token for `Authorization: Bearer`.
    pub access_token: String,
    /// Long-lived, single-use token that buys a new pair.
    pub refresh_token: String,
    /// When the access token expires.
    pub expires_at: DateTime<Utc>,
    /// Who logged in.
    pub user: User,
}

/// The verified caller inside one organization: who, where, and with which role. Only
/// this crate creates one, when it opens the organization's `TenantTx`.
#[derive(Debug, Clone)]
pub struct Actor {
    /// Who is calling.
    pub principal: Principal,
    /// Where.
    pub org_id: OrgId,
    /// With which role.
    pub role: Role,
    /// The caller's membership, when a person is calling.
    pub membership_id: Option<MembershipId>,
    /// The organization is pending deletion: only its owners may enter, to read (and
    /// export) or to cancel the deletion.
    pub organization_pending_deletion: bool,
}
