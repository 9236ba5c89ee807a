//! Row conversions and the small queries several services share. Tenant tables are read
//! only through `TenantTx::select`, which adds the organization filter.

use crate::entity::{api_key, invitation, membership, organization, user};
use crate::error::{Error, Result};
use crate::model::{ApiKey, Invitation, InvitationStatus, Membership, Organization, User};
use crate::role::Role;
use chrono::{DateTime, Utc};
use kernel::{ApiKeyId, Backend, InvitationId, MembershipId, OrgId, TenantTx, UserId};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QuerySelect,
};
use std::collections::HashMap;
use uuid::Uuid;

impl From<user::Model> for User {
    fn from(row: user::Model) -> Self {
        Self {
            id: UserId::from_uuid(row.id),
            email: row.email,
            name: row.name,
            created_at: row.created_at,
        }
    }
}

impl From<organization::Model> for Organization {
    fn from(row: organization::Model) -> Self {
        Self {
            id: OrgId::from_uuid(row.id),
            name: row.name,
            slug: row.slug,
            created_at: row.created_at,
            deletion_scheduled_at: row.deletion_scheduled_at,
        }
    }
}

pub(crate) fn membership_from_row(row: membership::Model) -> Result<Membership> {
    Ok(Membership {
        id: MembershipId::from_uuid(row.id),
        org_id: OrgId::from_uuid(row.organization_id),
        user_id: UserId::from_uuid(row.user_id),
        role: Role::parse(&row.role)?,
        created_at: row.created_at,
    })
}

pub(crate) fn invitation_from_row(
    row: invitation::Model,
    now: DateTime<Utc>,
) -> Result<Invitation> {
    let status = if row.accepted_at.is_some() {
        InvitationStatus::Accepted
    } else if row.revoked_at.is_some() {
        InvitationStatus::Revoked
    } else if row.expires_at <= now {
        InvitationStatus::Expired
    } else {
        InvitationStatus::Pending
    };
    Ok(Invitation {
        id: InvitationId::from_uuid(row.id),
        org_id: OrgId::from_uuid(row.organization_id),
        email: row.email,
        role: Role::parse(&row.role)?,
        invited_by: UserId::from_uuid(row.invited_by),
        expires_at: row.expires_at,
        status,
        created_at: row.created_at,
    })
}

pub(crate) fn api_key_from_row(row: api_key::Model) -> Result<ApiKey> {
    Ok(ApiKey {
        id: ApiKeyId::from_uuid(row.id),
        org_id: OrgId::from_uuid(row.organization_id),
        name: row.name,
        role: Role::parse(&row.role)?,
        created_at: row.created_at,
        last_used_at: row.last_used_at,
        revoked_at: row.revoked_at,
        expires_at: row.expires_at,
        trusted_documents_only: row.trusted_documents_only,
    })
}

/// Emails compare case-insensitively and without surrounding blanks.
pub(crate) fn normalize_email(email: &str) -> String {
    email.trim().to_lowercase()
}

/// A plausible address: one `@`, something on each side, a dot in the domain, no blanks.
pub(crate) fn validate_email(email: &str) -> Result<()> {
    let email = email.trim();
    let plausible = email.len() <= 254
        && !email.chars().any(char::is_whitespace)
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && !domain.contains('@')
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        });
    if plausible {
        Ok(())
    } else {
        Err(Error::invalid("email", "not a valid email address"))
    }
}

/// A display name: 1 to 100 characters after trimming.
pub(crate) fn validate_name(field: &'static str, name: &str) -> Result<String> {
    let name = name.trim();
    match name.chars().count() {
        0 => Err(Error::invalid(field, "must not be empty")),
        1..=100 => Ok(name.to_owned()),
        _ => Err(Error::invalid(field, "must be at most 100 characters")),
    }
}

/// Users by id, for joining them to rows of a tenant table.
pub(crate) async fn users_by_id(
    conn: &impl ConnectionTrait,
    ids: impl IntoIterator<Item = Uuid>,
) -> Result<HashMap<Uuid, User>> {
    let ids: Vec<Uuid> = ids.into_iter().collect();
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    Ok(public_users(conn, ids)
        .await?
        .into_iter()
        .map(|user| (user.id.as_uuid(), user))
        .collect())
}

/// The people with these ids: only what may be shown (never the password hash or the
/// staff flag), in one statement.
pub(crate) async fn public_users(
    conn: &impl ConnectionTrait,
    ids: impl IntoIterator<Item = Uuid>,
) -> Result<Vec<User>> {
    let rows: Vec<(Uuid, String, String, chrono::DateTime<chrono::Utc>)> = user::Entity::find()
        .select_only()
        .columns([
            user::Column::Id,
            user::Column::Email,
            user::Column::Name,
            user::Column::CreatedAt,
        ])
        .filter(user::Column::Id.is_in(ids))
        .into_tuple()
        .all(conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(id, email, name, created_at)| User {
            id: UserId::from_uuid(id),
            email,
            name,
            created_at,
        })
        .collect())
}

/// The organization's owners, locked on PostgreSQL until the transaction ends so two
/// concurrent demotions cannot both see "another owner remains". (SQLite writers hold the
/// database lock for the whole transaction already.)
pub(crate) async fn owner_count(tx: &TenantTx, backend: Backend) -> Result<u64> {
    let owners = tx
        .select::<membership::Entity>()
        .filter(membership::Column::Role.eq(Role::Owner.as_str()));
    if backend == Backend::Postgres {
        Ok(owners.lock_exclusive().all(tx.conn()).await?.len() as u64)
    } else {
        Ok(owners.count(tx.conn()).await?)
    }
}

/// A membership of this organization by id.
pub(crate) async fn membership(tx: &TenantTx, id: MembershipId) -> Result<membership::Model> {
    tx.select::<membership::Entity>()
        .filter(membership::Column::Id.eq(id.as_uuid()))
        .one(tx.conn())
        .await?
        .ok_or(Error::NotFound { entity: "member" })
}
