//! Roles: built-in and custom roles, who holds which, and the rule that one may only
//! confer what one holds.

use super::{Authorizer, bump_version};
use crate::builtin;
use crate::entity::{custom_role, record_grant, role_assignment, rule};
use crate::error::{Error, Result};
use crate::model::{Action, Effect, Permission, Resource, ResourceType, RoleInfo, Subject};
use crate::permit::Permit;
use audit::NewEvent;
use kernel::{Principal, TenantTx};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, SqlErr};
use uuid::Uuid;

/// How many custom roles an organization may define.
pub const MAX_CUSTOM_ROLES: u64 = 50;

pub(super) fn permission_list(permissions: &[(ResourceType, Action)]) -> String {
    let mut list: Vec<String> = permissions
        .iter()
        .map(|(t, a)| format!("{t}:{a}"))
        .collect();
    list.sort();
    list.dedup();
    list.join(",")
}

pub(super) fn validate_role_name(name: &str) -> Result<()> {
    let valid = (2..=48).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && name.starts_with(|c: char| c.is_ascii_lowercase());
    if !valid {
        return Err(Error::invalid(
            "name",
            "2 to 48 characters: lowercase letters, digits and _",
        ));
    }
    if builtin::is_builtin_role(name) || builtin::is_relation(name) {
        return Err(Error::Conflict(format!("`{name}` is a built-in name")));
    }
    Ok(())
}

impl Authorizer {
    /// Gives `subject` a role in the organization (built-in or custom). Called by tenancy
    /// when memberships and keys change; callers check the right to assign first.
    pub async fn assign_role(&self, tx: &TenantTx, subject: &Subject, role: &str) -> Result<()> {
        self.ensure_role_exists(tx, role).await?;
        let inserted = role_assignment::Entity::insert(role_assignment::ActiveModel {
            organization_id: Set(tx.org_id().as_uuid()),
            subject: Set(subject.as_policy()),
            role: Set(role.to_owned()),
            created_at: Set(self.clock.now()),
        })
        .on_conflict(
            OnConflict::columns([
                role_assignment::Column::OrganizationId,
                role_assignment::Column::Subject,
                role_assignment::Column::Role,
            ])
            .do_nothing()
            .to_owned(),
        )
        .exec_without_returning(tx.conn())
        .await?;
        let _ = inserted;
        bump_version(tx).await
    }

    /// Takes a role away from `subject`.
    pub async fn unassign_role(&self, tx: &TenantTx, subject: &Subject, role: &str) -> Result<()> {
        role_assignment::Entity::delete_many()
            .filter(role_assignment::Column::OrganizationId.eq(tx.org_id().as_uuid()))
            .filter(role_assignment::Column::Subject.eq(subject.as_policy()))
            .filter(role_assignment::Column::Role.eq(role))
            .exec(tx.conn())
            .await?;
        bump_version(tx).await
    }

    /// Removes everything `subject` holds in the organization: roles and record grants
    /// (a member who leaves keeps nothing).
    pub async fn remove_subject(&self, tx: &TenantTx, subject: &Subject) -> Result<()> {
        let text = subject.as_policy();
        role_assignment::Entity::delete_many()
            .filter(role_assignment::Column::OrganizationId.eq(tx.org_id().as_uuid()))
            .filter(role_assignment::Column::Subject.eq(&text))
            .exec(tx.conn())
            .await?;
        record_grant::Entity::delete_many()
            .filter(record_grant::Column::OrganizationId.eq(tx.org_id().as_uuid()))
            .filter(record_grant::Column::Subject.eq(&text))
            .exec(tx.conn())
            .await?;
        rule::Entity::delete_many()
            .filter(rule::Column::OrganizationId.eq(tx.org_id().as_uuid()))
            .filter(rule::Column::Subject.eq(&text))
            .exec(tx.conn())
            .await?;
        bump_version(tx).await
    }

    /// The roles `subject` holds in the organization.
    pub async fn roles_of(&self, tx: &TenantTx, subject: &Subject) -> Result<Vec<String>> {
        Ok(tx
            .select::<role_assignment::Entity>()
            .filter(role_assignment::Column::Subject.eq(subject.as_policy()))
            .all(tx.conn())
            .await?
            .into_iter()
            .map(|row| row.role)
            .collect())
    }

    /// Checks that `principal` holds every permission of `role` organization-wide, so it
    /// may hand that role out (an admin cannot make an owner).
    pub async fn ensure_may_confer_role(
        &self,
        tx: &TenantTx,
        principal: Principal,
        role: &str,
    ) -> Result<()> {
        let permissions = self.role_permissions(tx, role).await?;
        let subject = principal.into();
        for (typ, action) in permissions {
            let allowed = self.can_raw(tx, &subject, &typ, "", "", &action).await?;
            if !allowed {
                return Err(Error::Escalation(format!(
                    "role `{role}` includes {action} on {typ}"
                )));
            }
        }
        Ok(())
    }

    pub(super) async fn role_permissions(
        &self,
        tx: &TenantTx,
        role: &str,
    ) -> Result<Vec<(String, String)>> {
        if let Some(template) = builtin::ROLES.iter().find(|t| t.name == role) {
            return Ok(builtin::permissions(template));
        }
        self.ensure_role_exists(tx, role).await?;
        Ok(tx
            .select::<rule::Entity>()
            .filter(rule::Column::Subject.eq(role))
            .filter(rule::Column::Effect.eq(Effect::Allow.as_str()))
            .all(tx.conn())
            .await?
            .into_iter()
            .map(|r| (r.resource_type, r.action))
            .collect())
    }

    pub(super) async fn ensure_role_exists(&self, tx: &TenantTx, role: &str) -> Result<()> {
        if builtin::is_builtin_role(role) {
            return Ok(());
        }
        let custom = tx
            .select::<custom_role::Entity>()
            .filter(custom_role::Column::Name.eq(role))
            .one(tx.conn())
            .await?;
        custom.map(|_| ()).ok_or(Error::NotFound { entity: "role" })
    }

    /// Every role of the organization: built-ins first, then custom ones by name.
    pub async fn roles(&self, tx: &TenantTx) -> Result<Vec<RoleInfo>> {
        let mut roles: Vec<RoleInfo> = builtin::ROLES
            .iter()
            .map(|t| RoleInfo {
                name: t.name.to_owned(),
                description: t.description.to_owned(),
                built_in: true,
                permissions: builtin::permissions(t)
                    .into_iter()
                    .map(|(resource_type, action)| Permission {
                        resource_type,
                        action,
                    })
                    .collect(),
            })
            .collect();
        let customs = tx.select::<custom_role::Entity>().all(tx.conn()).await?;
        let rules = tx
            .select::<rule::Entity>()
            .filter(rule::Column::Effect.eq(Effect::Allow.as_str()))
            .all(tx.conn())
            .await?;
        let mut customs: Vec<RoleInfo> = customs
            .into_iter()
            .map(|role| {
                let mut permissions: Vec<Permission> = rules
                    .iter()
                    .filter(|r| r.subject == role.name)
                    .map(|r| Permission {
                        resource_type: r.resource_type.clone(),
                        action: r.action.clone(),
                    })
                    .collect();
                permissions.sort();
                RoleInfo {
                    name: role.name,
                    description: role.description,
                    built_in: false,
                    permissions,
                }
            })
            .collect();
        customs.sort_by(|a, b| a.name.cmp(&b.name));
        roles.extend(customs);
        Ok(roles)
    }

    /// Creates a custom role from permissions the creator holds themselves.
    #[tracing::instrument(name = "authz.create_role", skip_all, err(level = "debug"))]
    pub async fn create_role(
        &self,
        tx: &TenantTx,
        permit: &Permit,
        name: &str,
        description: &str,
        permissions: &[(ResourceType, Action)],
    ) -> Result<RoleInfo> {
        permit.ensure(tx, ResourceType::Role, Action::Create, None)?;
        validate_role_name(name)?;
        // Roles are read whole (`Organization.roles`, every policy load), so their number
        // is capped; the lock makes concurrent creations count one after the other.
        tx.lock(&format!("limit:custom_roles:{}", tx.org_id()))
            .await?;
        let existing = tx.select::<custom_role::Entity>().count(tx.conn()).await?;
        if existing >= MAX_CUSTOM_ROLES {
            return Err(Error::TooMany(kernel::TooMany {
                what: "custom_roles",
                max: MAX_CUSTOM_ROLES,
            }));
        }
        let subject = permit.subject();
        for (typ, action) in permissions {
            if !self
                .can(tx, &subject, &Resource::of_type(*typ), *action)
                .await?
            {
                return Err(Error::Escalation(format!("{action} on {typ}")));
            }
        }
        let inserted = custom_role::Entity::insert(custom_role::ActiveModel {
            organization_id: Set(tx.org_id().as_uuid()),
            id: Set(Uuid::now_v7()),
            name: Set(name.to_owned()),
            description: Set(description.trim().to_owned()),
            created_at: Set(self.clock.now()),
        })
        .exec_without_returning(tx.conn())
        .await;
        match inserted {
            Ok(_) => {}
            Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
                return Err(Error::Conflict(format!(
                    "a role named `{name}` already exists"
                )));
            }
            Err(e) => return Err(e.into()),
        }
        self.replace_role_rules(tx, name, permissions).await?;
        self.audit
            .record(
                tx,
                NewEvent::new("role.created", "role", Some(name)).change(
                    "permissions",
                    None::<String>,
                    Some(permission_list(permissions)),
                ),
            )
            .await?;
        self.roles(tx)
            .await?
            .into_iter()
            .find(|r| r.name == name)
            .ok_or(Error::NotFound { entity: "role" })
    }

    /// Replaces a custom role's permissions (again only with permissions the caller holds).
    pub async fn update_role(
        &self,
        tx: &TenantTx,
        permit: &Permit,
        name: &str,
        permissions: &[(ResourceType, Action)],
    ) -> Result<RoleInfo> {
        permit.ensure(tx, ResourceType::Role, Action::Update, None)?;
        if builtin::is_builtin_role(name) {
            return Err(Error::Conflict("built-in roles cannot be changed".into()));
        }
        self.ensure_role_exists(tx, name).await?;
        let subject = permit.subject();
        for (typ, action) in permissions {
            if !self
                .can(tx, &subject, &Resource::of_type(*typ), *action)
                .await?
            {
                return Err(Error::Escalation(format!("{action} on {typ}")));
            }
        }
        let before = self.role_permissions(tx, name).await?;
        self.replace_role_rules(tx, name, permissions).await?;
        let before: Vec<String> = before
            .into_iter()
            .map(|(t, a)| format!("{t}:{a}"))
            .collect();
        self.audit
            .record(
                tx,
                NewEvent::new("role.updated", "role", Some(name)).change(
                    "permissions",
                    Some(before.join(",")),
                    Some(permission_list(permissions)),
                ),
            )
            .await?;
        self.roles(tx)
            .await?
            .into_iter()
            .find(|r| r.name == name)
            .ok_or(Error::NotFound { entity: "role" })
    }

    /// Deletes a custom role that nobody holds any more.
    pub async fn delete_role(&self, tx: &TenantTx, permit: &Permit, name: &str) -> Result<()> {
        permit.ensure(tx, ResourceType::Role, Action::Delete, None)?;
        if builtin::is_builtin_role(name) {
            return Err(Error::Conflict("built-in roles cannot be deleted".into()));
        }
        self.ensure_role_exists(tx, name).await?;
        let holders = tx
            .select::<role_assignment::Entity>()
            .filter(role_assignment::Column::Role.eq(name))
            .one(tx.conn())
            .await?;
        if holders.is_some() {
            return Err(Error::Conflict(format!("role `{name}` is still assigned")));
        }
        rule::Entity::delete_many()
            .filter(rule::Column::OrganizationId.eq(tx.org_id().as_uuid()))
            .filter(rule::Column::Subject.eq(name))
            .exec(tx.conn())
            .await?;
        custom_role::Entity::delete_many()
            .filter(custom_role::Column::OrganizationId.eq(tx.org_id().as_uuid()))
            .filter(custom_role::Column::Name.eq(name))
            .exec(tx.conn())
            .await?;
        self.audit
            .record(tx, NewEvent::new("role.deleted", "role", Some(name)))
            .await?;
        bump_version(tx).await
    }

    /// Gives `subject` a custom role on behalf of the permit's holder, who must hold
    /// everything the role permits. Recorded as `role.assigned`.
    pub async fn assign_custom_role(
        &self,
        tx: &TenantTx,
        permit: &Permit,
        subject: &Subject,
        role: &str,
    ) -> Result<()> {
        self.ensure_custom_assignment(tx, permit, role).await?;
        self.assign_role(tx, subject, role).await?;
        self.audit
            .record(
                tx,
                NewEvent::new("role.assigned", "subject", Some(subject.as_policy())).change(
                    "role",
                    None::<String>,
                    Some(role),
                ),
            )
            .await?;
        Ok(())
    }

    /// Takes a custom role away. Recorded as `role.unassigned`.
    pub async fn unassign_custom_role(
        &self,
        tx: &TenantTx,
        permit: &Permit,
        subject: &Subject,
        role: &str,
    ) -> Result<()> {
        self.ensure_custom_assignment(tx, permit, role).await?;
        self.unassign_role(tx, subject, role).await?;
        self.audit
            .record(
                tx,
                NewEvent::new("role.unassigned", "subject", Some(subject.as_policy())).change(
                    "role",
                    Some(role),
                    None::<String>,
                ),
            )
            .await?;
        Ok(())
    }

    pub(super) async fn ensure_custom_assignment(
        &self,
        tx: &TenantTx,
        permit: &Permit,
        role: &str,
    ) -> Result<()> {
        if permit.resource().typ != ResourceType::Member
            || permit.action() != Action::Update
            || permit.org_id() != tx.org_id()
        {
            return Err(Error::PermitMismatch);
        }
        if builtin::is_builtin_role(role) {
            return Err(Error::invalid(
                "role",
                "built-in roles change with the membership",
            ));
        }
        self.ensure_may_confer_role(tx, permit.principal(), role)
            .await
    }

    pub(super) async fn replace_role_rules(
        &self,
        tx: &TenantTx,
        role: &str,
        permissions: &[(ResourceType, Action)],
    ) -> Result<()> {
        rule::Entity::delete_many()
            .filter(rule::Column::OrganizationId.eq(tx.org_id().as_uuid()))
            .filter(rule::Column::Subject.eq(role))
            .filter(rule::Column::Effect.eq(Effect::Allow.as_str()))
            .exec(tx.conn())
            .await?;
        let mut unique: Vec<_> = permissions.to_vec();
        unique.sort();
        unique.dedup();
        if !unique.is_empty() {
            let rows = unique.into_iter().map(|(typ, action)| rule::ActiveModel {
                organization_id: Set(tx.org_id().as_uuid()),
                id: Set(Uuid::now_v7()),
                subject: Set(role.to_owned()),
                resource_type: Set(typ.as_str().to_owned()),
                action: Set(action.as_str().to_owned()),
                effect: Set(Effect::Allow.as_str().to_owned()),
                created_at: Set(self.clock.now()),
                created_by: Set(None),
            });
            rule::Entity::insert_many(rows)
                .exec_without_returning(tx.conn())
                .await?;
        }
        bump_version(tx).await
    }
}
