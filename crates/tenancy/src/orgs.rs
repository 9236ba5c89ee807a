//! Organizations and their members: creating one, listing a user's, changing roles,
//! removing members and leaving, under the rule that an organization keeps an owner.

use crate::entity::{membership, organization};
use crate::error::{Error, Result};
use crate::model::{Actor, Membership, Organization, User};
use crate::repo::{self, membership_from_row, users_by_id, validate_name};
use crate::role::Role;
use crate::service::TenancyService;
use audit::NewEvent;
use authz::{Action, Authorizer, Permit, ResourceType, Subject};
use kernel::page::keyset;
use kernel::{
    Backend, MembershipId, OrgId, Page, PageRequest, Principal, TenantTx, TxMode, UserId,
};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, SqlErr, Statement,
};
use uuid::Uuid;

impl TenancyService {
    /// Creates an organization with `creator` as its owner.
    #[tracing::instrument(name = "tenancy.create_organization", skip_all, err(level = "debug"))]
    pub async fn create_organization(
        &self,
        creator: UserId,
        name: &str,
    ) -> Result<(Organization, Membership)> {
        let name = validate_name("name", name)?;
        let base = slugify(&name);
        let now = self.clock.now();
        // A racing creator can take a free-looking slug between our check and insert;
        // the unique index catches it and we try the next candidate.
        for attempt in 0..20u32 {
            let slug = match attempt {
                0 => base.clone(),
                1..=9 => format!("{base}-{}", attempt + 1),
                _ => format!("{base}-{}", &Uuid::now_v7().simple().to_string()[24..]),
            };
            let org = OrgId::generate();
            let tx = self.open(org, TxMode::Write).await?;
            let inserted = organization::Entity::insert(organization::ActiveModel {
                id: Set(org.as_uuid()),
                name: Set(name.clone()),
                slug: Set(slug),
                created_at: Set(now),
                ..Default::default()
            })
            .exec_with_returning(tx.conn())
            .await;
            let row = match inserted {
                Ok(row) => row,
                Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
                    tx.rollback().await?;
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            let owner = insert_membership(&tx, &self.authz, creator, Role::Owner, now).await?;
            self.audit
                .record(
                    &tx,
                    NewEvent::new("organization.created", "organization", Some(org))
                        .change("name", None::<String>, Some(row.name.clone()))
                        .change("slug", None::<String>, Some(row.slug.clone())),
                )
                .await?;
            tx.commit().await?;
            return Ok((row.into(), owner));
        }
        Err(Error::Conflict(
            "could not find a free slug for this name".into(),
        ))
    }

    /// The organizations `user` belongs to, with the membership in each, oldest first.
    #[tracing::instrument(name = "tenancy.user_organizations", skip_all, err(level = "debug"))]
    pub async fn user_organizations(
        &self,
        user: UserId,
        page: &PageRequest,
    ) -> Result<Page<(Organization, Membership)>> {
        let txn = self.read_as_user(user).await?;
        // A page of memberships in organization order, then their organizations.
        let memberships =
            membership::Entity::find().filter(membership::Column::UserId.eq(user.as_uuid()));
        let memberships = keyset(memberships, membership::Column::OrganizationId, page)
            .all(&txn)
            .await?;
        let memberships = Page::from_overfetch(memberships, page);
        let mut orgs: std::collections::HashMap<Uuid, organization::Model> =
            organization::Entity::find()
                .filter(
                    organization::Column::Id
                        .is_in(memberships.items.iter().map(|m| m.organization_id)),
                )
                .all(&txn)
                .await?
                .into_iter()
                .map(|o| (o.id, o))
                .collect();
        txn.commit().await?;
        let Page {
            items,
            has_previous,
            has_next,
        } = memberships;
        let mut result = Vec::with_capacity(items.len());
        for m in items {
            if let Some(org) = orgs.remove(&m.organization_id) {
                result.push((org.into(), membership_from_row(m)?));
            }
        }
        Ok(Page {
            items: result,
            has_previous,
            has_next,
        })
    }

    /// A read transaction that sees `user`'s own memberships in every organization (under
    /// RLS on PostgreSQL, `app.user_id` opens exactly those rows) and no other tenant row.
    pub(crate) async fn read_as_user(&self, user: UserId) -> Result<sea_orm::DatabaseTransaction> {
        let txn = self.db.begin(TxMode::Read).await?;
        if self.db.backend() == Backend::Postgres {
            txn.execute_raw(Statement::from_sql_and_values(
                sea_orm::DbBackend::Postgres,
                "SELECT set_config('app.user_id', $1, true)",
                [user.to_string().into()],
            ))
            .await?;
        }
        Ok(txn)
    }

    /// The organization of the transaction.
    pub async fn organization(&self, tx: &TenantTx, permit: &Permit) -> Result<Organization> {
        permit.ensure(
            tx,
            ResourceType::Organization,
            Action::Read,
            Some(tx.org_id().as_uuid()),
        )?;
        organization::Entity::find_by_id(tx.org_id().as_uuid())
            .one(tx.conn())
            .await?
            .map(Organization::from)
            .ok_or(Error::NotFound {
                entity: "organization",
            })
    }

    /// One page of the organization's members with their users.
    pub async fn members(
        &self,
        tx: &TenantTx,
        permit: &Permit,
        page: &PageRequest,
    ) -> Result<Page<(Membership, User)>> {
        permit.ensure(tx, ResourceType::Member, Action::Read, None)?;
        let rows = keyset(
            tx.select::<membership::Entity>(),
            membership::Column::Id,
            page,
        )
        .all(tx.conn())
        .await?;
        let page = Page::from_overfetch(rows, page);
        let users = users_by_id(tx.conn(), page.items.iter().map(|m| m.user_id)).await?;
        page.try_map(|row| {
            let user = users
                .get(&row.user_id)
                .cloned()
                .ok_or(Error::NotFound { entity: "user" })?;
            Ok((membership_from_row(row)?, user))
        })
    }

    /// A member of this organization with their user.
    pub async fn member(
        &self,
        tx: &TenantTx,
        permit: &Permit,
        id: MembershipId,
    ) -> Result<(Membership, User)> {
        permit.ensure(tx, ResourceType::Member, Action::Read, Some(id.as_uuid()))?;
        member_with_user(tx, id).await
    }

    /// The caller's own membership (no permit: it is theirs).
    pub async fn own_membership(
        &self,
        tx: &TenantTx,
        actor: &Actor,
    ) -> Result<Option<(Membership, User)>> {
        match actor.membership_id {
            Some(id) => Ok(Some(member_with_user(tx, id).await?)),
            None => Ok(None),
        }
    }

    /// The membership of `user` in this organization, if any: how another member of the
    /// organization may see that user at all.
    pub async fn membership_of(
        &self,
        tx: &TenantTx,
        permit: &Permit,
        user: UserId,
    ) -> Result<Option<(Membership, User)>> {
        permit.ensure(tx, ResourceType::Member, Action::Read, None)?;
        let row = tx
            .select::<membership::Entity>()
            .filter(membership::Column::UserId.eq(user.as_uuid()))
            .one(tx.conn())
            .await?;
        match row {
            Some(row) => Ok(Some(
                member_with_user(tx, MembershipId::from_uuid(row.id)).await?,
            )),
            None => Ok(None),
        }
    }

    /// Gives a member another built-in role. Whoever does it must be able to confer both
    /// the old and the new role (only owners make or unmake owners); the last owner
    /// cannot be demoted.
    #[tracing::instrument(name = "tenancy.change_member_role", skip_all, err(level = "debug"))]
    pub async fn change_member_role(
        &self,
        tx: &TenantTx,
        permit: &Permit,
        member: MembershipId,
        role: Role,
    ) -> Result<Membership> {
        permit.ensure(
            tx,
            ResourceType::Member,
            Action::Update,
            Some(member.as_uuid()),
        )?;
        let row = repo::membership(tx, member).await?;
        let current = Role::parse(&row.role)?;
        self.ensure_may_confer(tx, permit, role).await?;
        self.ensure_may_confer(tx, permit, current).await?;
        if current == Role::Owner
            && role != Role::Owner
            && repo::owner_count(tx, self.db.backend()).await? <= 1
        {
            return Err(Error::LastOwner);
        }
        membership::Entity::update_many()
            .col_expr(membership::Column::Role, Expr::value(role.as_str()))
            .filter(membership::Column::OrganizationId.eq(tx.org_id().as_uuid()))
            .filter(membership::Column::Id.eq(row.id))
            .exec(tx.conn())
            .await?;
        let subject = Subject::User(UserId::from_uuid(row.user_id));
        self.authz
            .unassign_role(tx, &subject, current.as_str())
            .await?;
        self.authz.assign_role(tx, &subject, role.as_str()).await?;
        let user = Principal::User(UserId::from_uuid(row.user_id));
        self.revoke_keys_beyond_standing(tx, user, false, "creator_demoted")
            .await?;
        self.audit
            .record(
                tx,
                NewEvent::new("member.role_changed", "member", Some(row.id))
                    .change(
                        "user",
                        Some(row.user_id.to_string()),
                        Some(row.user_id.to_string()),
                    )
                    .change("role", Some(current.as_str()), Some(role.as_str())),
            )
            .await?;
        membership_from_row(membership::Model {
            role: role.as_str().to_owned(),
            ..row
        })
    }

    /// Removes a member, with every role and grant they held. Whoever does it must be
    /// able to confer the member's role; the last owner cannot be removed.
    #[tracing::instrument(name = "tenancy.remove_member", skip_all, err(level = "debug"))]
    pub async fn remove_member(
        &self,
        tx: &TenantTx,
        permit: &Permit,
        member: MembershipId,
    ) -> Result<Membership> {
        permit.ensure(
            tx,
            ResourceType::Member,
            Action::Delete,
            Some(member.as_uuid()),
        )?;
        let row = repo::membership(tx, member).await?;
        let current = Role::parse(&row.role)?;
        self.ensure_may_confer(tx, permit, current).await?;
        self.delete_membership(tx, row, current, "member.removed")
            .await
    }

    /// The calling user leaves the organization; the last owner cannot. Needs no permit:
    /// the membership is the caller's own.
    #[tracing::instrument(name = "tenancy.leave", skip_all, err(level = "debug"))]
    pub async fn leave(&self, tx: &TenantTx, actor: &Actor) -> Result<Membership> {
        let (Principal::User(_), Some(member)) = (actor.principal, actor.membership_id) else {
            return Err(Error::Forbidden(
                "only a member can leave an organization".into(),
            ));
        };
        let row = repo::membership(tx, member).await?;
        let current = Role::parse(&row.role)?;
        self.delete_membership(tx, row, current, "member.left")
            .await
    }

    pub(crate) async fn delete_membership(
        &self,
        tx: &TenantTx,
        row: membership::Model,
        role: Role,
        action: &str,
    ) -> Result<Membership> {
        if role == Role::Owner && repo::owner_count(tx, self.db.backend()).await? <= 1 {
            return Err(Error::LastOwner);
        }
        membership::Entity::delete_many()
            .filter(membership::Column::OrganizationId.eq(tx.org_id().as_uuid()))
            .filter(membership::Column::Id.eq(row.id))
            .exec(tx.conn())
            .await?;
        let user = UserId::from_uuid(row.user_id);
        self.authz.remove_subject(tx, &Subject::User(user)).await?;
        // Keys they made go with them: a removed admin keeps no power through keys.
        self.revoke_keys_beyond_standing(tx, Principal::User(user), true, "creator_removed")
            .await?;
        self.audit
            .record(
                tx,
                NewEvent::new(action, "member", Some(row.id))
                    .change("user", Some(row.user_id.to_string()), None::<String>)
                    .change("role", Some(role.as_str()), None::<String>),
            )
            .await?;
        membership_from_row(row)
    }
}

/// A membership with its user.
async fn member_with_user(tx: &TenantTx, id: MembershipId) -> Result<(Membership, User)> {
    let row = repo::membership(tx, id).await?;
    let users = users_by_id(tx.conn(), [row.user_id]).await?;
    let user = users
        .into_values()
        .next()
        .ok_or(Error::NotFound { entity: "user" })?;
    Ok((membership_from_row(row)?, user))
}

/// Inserts a membership and assigns its role; a user who already belongs to the
/// organization is a conflict.
pub(crate) async fn insert_membership(
    tx: &TenantTx,
    authz: &Authorizer,
    user: UserId,
    role: Role,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Membership> {
    let inserted = membership::Entity::insert(membership::ActiveModel {
        organization_id: Set(tx.org_id().as_uuid()),
        id: Set(MembershipId::generate().as_uuid()),
        user_id: Set(user.as_uuid()),
        role: Set(role.as_str().to_owned()),
        created_at: Set(now),
    })
    .exec_with_returning(tx.conn())
    .await;
    let membership = match inserted {
        Ok(row) => membership_from_row(row)?,
        Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
            return Err(Error::Conflict(
                "this user is already a member of the organization".into(),
            ));
        }
        Err(e) => return Err(e.into()),
    };
    authz
        .assign_role(tx, &Subject::User(user), role.as_str())
        .await?;
    Ok(membership)
}

/// `"Acme GmbH & Co."` → `"acme-gmbh-co"`; never empty.
fn slugify(name: &str) -> String {
    let mut slug = String::with_capacity(name.len());
    for c in name.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            slug.push(c);
        } else if !slug.ends_with('-') && !slug.is_empty() {
            slug.push('-');
        }
    }
    let slug = slug.trim_end_matches('-');
    let slug: String = slug.chars().take(48).collect();
    let slug = slug.trim_end_matches('-');
    if slug.is_empty() {
        "org".to_owned()
    } else {
        slug.to_owned()
    }
}

#[cfg(test)]
pub(crate) async fn rename_for_test(tx: &TenantTx, name: &str) -> Result<()> {
    organization::Entity::update_many()
        .col_expr(organization::Column::Name, Expr::value(name))
        .filter(organization::Column::Id.eq(tx.org_id().as_uuid()))
        .exec(tx.conn())
        .await?;
    Ok(())
}

#[cfg(test)]
pub(crate) async fn name_for_test(tx: &TenantTx) -> Result<String> {
    Ok(organization::Entity::find_by_id(tx.org_id().as_uuid())
        .one(tx.conn())
        .await?
        .map(|o| o.name)
        .unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::slugify;

    #[test]
    fn slugs_are_lowercase_ascii_words_joined_by_dashes() {
        assert_eq!(slugify("Acme GmbH & Co."), "acme-gmbh-co");
        assert_eq!(slugify("  Ünïcode only ✓ "), "n-code-only");
        assert_eq!(slugify("✓✓"), "org");
    }
}
