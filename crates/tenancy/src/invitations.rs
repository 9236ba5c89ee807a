//! Invitations: single-use tokens (stored as digests) that let a person with the invited
//! email join with the invited role. Tokens name their organization
//! (`inv_<org>_<secret>`) so acceptance opens only that organization's transaction.

use crate::crypto;
use crate::entity::{invitation, membership, user};
use crate::error::{Error, Result};
use crate::model::{Invitation, InvitationStatus, IssuedInvitation, Membership};
use crate::orgs::insert_membership;
use crate::repo::{invitation_from_row, normalize_email, validate_email};
use crate::role::Role;
use crate::service::TenancyService;
use audit::NewEvent;
use authz::{Action, Permit, ResourceType};
use kernel::page::keyset;
use kernel::{InvitationId, OrgId, Page, PageRequest, Principal, TenantTx, TxMode, UserId};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter};
use uuid::Uuid;

const INVITATION_PREFIX: &str = "inv_";

impl TenancyService {
    /// Invites `email` with `role`. Refused when that person is already a member or has a
    /// pending invitation (re-send that one instead).
    #[tracing::instrument(name = "tenancy.invite", skip_all, err(level = "debug"))]
    pub async fn invite(
        &self,
        tx: &TenantTx,
        permit: &Permit,
        email: &str,
        role: Role,
    ) -> Result<IssuedInvitation> {
        permit.ensure(tx, ResourceType::Invitation, Action::Create, None)?;
        self.ensure_may_confer(tx, permit, role).await?;
        let Principal::User(inviter) = permit.principal() else {
            return Err(Error::Forbidden(
                "invitations are sent by people, not API keys".into(),
            ));
        };
        validate_email(email)?;
        let normalized = normalize_email(email);
        let now = self.clock.now();

        let existing_user = user::Entity::find()
            .filter(user::Column::EmailNormalized.eq(&normalized))
            .one(tx.conn())
            .await?;
        if let Some(existing) = existing_user {
            let member = tx
                .select::<membership::Entity>()
                .filter(membership::Column::UserId.eq(existing.id))
                .one(tx.conn())
                .await?;
            if member.is_some() {
                return Err(Error::Conflict("this person is already a member".into()));
            }
        }
        let pending = tx
            .select::<invitation::Entity>()
            .filter(invitation::Column::EmailNormalized.eq(&normalized))
            .filter(invitation::Column::AcceptedAt.is_null())
            .filter(invitation::Column::RevokedAt.is_null())
            .filter(invitation::Column::ExpiresAt.gt(now))
            .one(tx.conn())
            .await?;
        if pending.is_some() {
            return Err(Error::Conflict(
                "this email already has a pending invitation; re-send it instead".into(),
            ));
        }

        self.ensure_seat_available(tx, now).await?;

        let (token, token_hash) = new_token(tx.org_id());
        let row = invitation::Entity::insert(invitation::ActiveModel {
            organization_id: Set(tx.org_id().as_uuid()),
            id: Set(InvitationId::generate().as_uuid()),
            email: Set(email.trim().to_owned()),
            email_normalized: Set(normalized),
            role: Set(role.as_str().to_owned()),
            token_hash: Set(token_hash),
            invited_by: Set(inviter.as_uuid()),
            expires_at: Set(now + self.settings.invitation_ttl),
            accepted_at: Set(None),
            accepted_by: Set(None),
            revoked_at: Set(None),
            created_at: Set(now),
        })
        .exec_with_returning(tx.conn())
        .await?;
        let email_subject = self.email_subject(&row.email_normalized);
        self.audit
            .record(
                tx,
                NewEvent::new("invitation.created", "invitation", Some(row.id))
                    .personal(
                        "email",
                        &email_subject,
                        None::<String>,
                        Some(row.email.clone()),
                    )
                    .change("role", None::<String>, Some(row.role.clone())),
            )
            .await?;
        Ok(IssuedInvitation {
            invitation: invitation_from_row(row, now)?,
            token,
        })
    }

    /// One page of the organization's invitations, in every status.
    pub async fn invitations(
        &self,
        tx: &TenantTx,
        permit: &Permit,
        page: &PageRequest,
    ) -> Result<Page<Invitation>> {
        permit.ensure(tx, ResourceType::Invitation, Action::Read, None)?;
        let now = self.clock.now();
        let rows = keyset(
            tx.select::<invitation::Entity>(),
            invitation::Column::Id,
            page,
        )
        .all(tx.conn())
        .await?;
        Page::from_overfetch(rows, page).try_map(|row| invitation_from_row(row, now))
    }

    /// An invitation of this organization.
    pub async fn invitation(
        &self,
        tx: &TenantTx,
        permit: &Permit,
        id: InvitationId,
    ) -> Result<Invitation> {
        permit.ensure(
            tx,
            ResourceType::Invitation,
            Action::Read,
            Some(id.as_uuid()),
        )?;
        invitation_from_row(find(tx, id).await?, self.clock.now())
    }

    /// Withdraws a pending invitation; its token stops working.
    #[tracing::instrument(name = "tenancy.revoke_invitation", skip_all, err(level = "debug"))]
    pub async fn revoke_invitation(
        &self,
        tx: &TenantTx,
        permit: &Permit,
        id: InvitationId,
    ) -> Result<Invitation> {
        permit.ensure(
            tx,
            ResourceType::Invitation,
            Action::Delete,
            Some(id.as_uuid()),
        )?;
        let row = find(tx, id).await?;
        self.ensure_may_confer(tx, permit, Role::parse(&row.role)?)
            .await?;
        let now = self.clock.now();
        if invitation_from_row(row.clone(), now)?.status != InvitationStatus::Pending {
            return Err(Error::Conflict(
                "only a pending invitation can be revoked".into(),
            ));
        }
        invitation::Entity::update_many()
            .col_expr(invitation::Column::RevokedAt, Expr::value(now))
            .filter(invitation::Column::OrganizationId.eq(tx.org_id().as_uuid()))
            .filter(invitation::Column::Id.eq(row.id))
            .exec(tx.conn())
            .await?;
        self.audit
            .record(
                tx,
                NewEvent::new("invitation.revoked", "invitation", Some(row.id)).change(
                    "status",
                    Some("pending"),
                    Some("revoked"),
                ),
            )
            .await?;
        invitation_from_row(
            invitation::Model {
                revoked_at: Some(now),
                ..row
            },
            now,
        )
    }

    /// Sends a pending or expired invitation again: a new token and a new expiry; the
    /// old token stops working.
    #[tracing::instrument(name = "tenancy.resend_invitation", skip_all, err(level = "debug"))]
    pub async fn resend_invitation(
        &self,
        tx: &TenantTx,
        permit: &Permit,
        id: InvitationId,
    ) -> Result<IssuedInvitation> {
        permit.ensure(
            tx,
            ResourceType::Invitation,
            Action::Update,
            Some(id.as_uuid()),
        )?;
        let row = find(tx, id).await?;
        self.ensure_may_confer(tx, permit, Role::parse(&row.role)?)
            .await?;
        let now = self.clock.now();
        let status = invitation_from_row(row.clone(), now)?.status;
        if !matches!(
            status,
            InvitationStatus::Pending | InvitationStatus::Expired
        ) {
            return Err(Error::Conflict(
                "an accepted or revoked invitation cannot be re-sent".into(),
            ));
        }
        let (token, token_hash) = new_token(tx.org_id());
        let expires_at = now + self.settings.invitation_ttl;
        invitation::Entity::update_many()
            .col_expr(
                invitation::Column::TokenHash,
                Expr::value(token_hash.clone()),
            )
            .col_expr(invitation::Column::ExpiresAt, Expr::value(expires_at))
            .col_expr(invitation::Column::CreatedAt, Expr::value(now))
            .filter(invitation::Column::OrganizationId.eq(tx.org_id().as_uuid()))
            .filter(invitation::Column::Id.eq(row.id))
            .exec(tx.conn())
            .await?;
        self.audit
            .record(
                tx,
                NewEvent::new("invitation.resent", "invitation", Some(row.id)).change(
                    "expires_at",
                    Some(row.expires_at.to_rfc3339()),
                    Some(expires_at.to_rfc3339()),
                ),
            )
            .await?;
        let row = invitation::Model {
            token_hash,
            expires_at,
            created_at: now,
            ..row
        };
        Ok(IssuedInvitation {
            invitation: invitation_from_row(row, now)?,
            token,
        })
    }

    /// Accepts an invitation for `user`, whose email must be the invited one. Returns the
    /// new membership; the token cannot be used again.
    #[tracing::instrument(name = "tenancy.accept_invitation", skip_all, err(level = "debug"))]
    pub async fn accept_invitation(&self, user: UserId, token: &str) -> Result<Membership> {
        let not_found = || Error::NotFound {
            entity: "invitation",
        };
        let rest = token
            .strip_prefix(INVITATION_PREFIX)
            .ok_or_else(not_found)?;
        let (org, secret) = rest.split_once('_').ok_or_else(not_found)?;
        let org = OrgId::from_uuid(Uuid::try_parse(org).map_err(|_| not_found())?);
        let now = self.clock.now();
        // The token itself is the right to open this organization's transaction.
        let tx = self.open(org, TxMode::Write).await?;
        let pending_deletion = crate::entity::organization::Entity::find_by_id(org.as_uuid())
            .one(tx.conn())
            .await?
            .is_some_and(|o| o.deletion_scheduled_at.is_some());
        if pending_deletion {
            return Err(Error::PendingDeletion);
        }
        let row = tx
            .select::<invitation::Entity>()
            .filter(invitation::Column::TokenHash.eq(crypto::digest(secret)))
            .one(tx.conn())
            .await?
            .ok_or_else(not_found)?;
        match invitation_from_row(row.clone(), now)?.status {
            InvitationStatus::Pending => {}
            InvitationStatus::Expired => {
                return Err(Error::Conflict("this invitation has expired".into()));
            }
            InvitationStatus::Accepted | InvitationStatus::Revoked => return Err(not_found()),
        }
        let invitee = user::Entity::find_by_id(user.as_uuid())
            .one(tx.conn())
            .await?
            .ok_or(Error::InvalidToken)?;
        if invitee.email_normalized != row.email_normalized {
            return Err(Error::Forbidden(
                "this invitation was sent to another email address".into(),
            ));
        }
        let membership =
            insert_membership(&tx, &self.authz, user, Role::parse(&row.role)?, now).await?;
        invitation::Entity::update_many()
            .col_expr(invitation::Column::AcceptedAt, Expr::value(now))
            .col_expr(invitation::Column::AcceptedBy, Expr::value(user.as_uuid()))
            .filter(invitation::Column::OrganizationId.eq(org.as_uuid()))
            .filter(invitation::Column::Id.eq(row.id))
            .filter(invitation::Column::AcceptedAt.is_null())
            .exec(tx.conn())
            .await?;
        self.audit
            .record(
                &tx,
                NewEvent::new("invitation.accepted", "invitation", Some(row.id))
                    .by(kernel::Principal::User(user))
                    .change("member", None::<String>, Some(membership.id.to_string()))
                    .change("role", None::<String>, Some(row.role.clone())),
            )
            .await?;
        tx.commit().await?;
        Ok(membership)
    }
}

async fn find(tx: &TenantTx, id: InvitationId) -> Result<invitation::Model> {
    tx.select::<invitation::Entity>()
        .filter(invitation::Column::Id.eq(id.as_uuid()))
        .one(tx.conn())
        .await?
        .ok_or(Error::NotFound {
            entity: "invitation",
        })
}

fn new_token(org: OrgId) -> (String, String) {
    let secret = crypto::random_secret();
    let digest = crypto::digest(&secret);
    (
        format!("{INVITATION_PREFIX}{}_{secret}", org.as_uuid().simple()),
        digest,
    )
}

impl TenancyService {
    /// `LIMIT_EXCEEDED` when members plus pending invitations already fill the plan's
    /// seats. Counted under a per-organization advisory lock on PostgreSQL (SQLite
    /// writers hold the database lock), so two invitations cannot take the last seat.
    async fn ensure_seat_available(
        &self,
        tx: &TenantTx,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<()> {
        use sea_orm::PaginatorTrait;
        let Some(max) = self.limits.limit(tx, kernel::Limit::Seats).await? else {
            return Ok(());
        };
        tx.lock(&format!("limit:seats:{}", tx.org_id())).await?;
        let members = tx.select::<membership::Entity>().count(tx.conn()).await?;
        let pending = tx
            .select::<invitation::Entity>()
            .filter(invitation::Column::AcceptedAt.is_null())
            .filter(invitation::Column::RevokedAt.is_null())
            .filter(invitation::Column::ExpiresAt.gt(now))
            .count(tx.conn())
            .await?;
        let usage = members + pending;
        if usage >= max {
            return Err(Error::LimitExceeded(kernel::LimitExceeded {
                limit: kernel::Limit::Seats,
                max,
                usage,
            }));
        }
        Ok(())
    }
}
