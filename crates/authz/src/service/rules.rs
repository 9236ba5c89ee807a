//! Deny rules and API key scopes: what narrows a role's permissions.

use super::{Authorizer, bump_version};
use crate::builtin;
use crate::entity::rule;
use crate::error::{Error, Result};
use crate::model::{Action, DenyRule, Effect, Permission, ResourceType, Subject};
use crate::permit::Permit;
use audit::NewEvent;
use kernel::{Page, PageRequest, Principal, TenantTx};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter};
use uuid::Uuid;

/// The `effect` of the rows that restrict an API key to some permissions of its role:
/// kept with the rules (so removing the key removes them), compiled into the enforcer's
/// scopes rather than its policy.
pub(super) const SCOPE_EFFECT: &str = "scope";

/// The most permissions one key's scope may list (every type times every action).
pub(super) const MAX_SCOPE: usize = 100;

/// The target of a deny rule: its policy subject, and the roles it restricts.
pub(super) struct DenyTarget {
    policy: String,
    roles: Vec<String>,
}

pub(super) fn deny_rule_from_row(row: rule::Model) -> Result<DenyRule> {
    Ok(DenyRule {
        id: row.id,
        resource_type: ResourceType::parse(&row.resource_type)?,
        action: Action::parse(&row.action)?,
        subject: row.subject,
        created_at: row.created_at,
        created_by: row.created_by.as_deref().map(Subject::parse).transpose()?,
    })
}

impl Authorizer {
    /// Restricts a new API key to `scope`, permissions its `role` gives (`BAD_USER_INPUT`
    /// for any other, or an empty scope): a key for one integration gets what it needs,
    /// not its role's all.
    pub async fn restrict_key(
        &self,
        tx: &TenantTx,
        key: kernel::ApiKeyId,
        role: &str,
        scope: &[(ResourceType, Action)],
    ) -> Result<()> {
        if scope.is_empty() || scope.len() > MAX_SCOPE {
            return Err(Error::invalid(
                "scopes",
                format!("list 1 to {MAX_SCOPE} permissions, or leave it out for the role's"),
            ));
        }
        let granted = self.role_permissions(tx, role).await?;
        let mut unique = scope.to_vec();
        unique.sort();
        unique.dedup();
        for (typ, action) in &unique {
            let in_role = granted.iter().any(|(t, a)| {
                (t == "*" || t == typ.as_str()) && (a == "*" || a == action.as_str())
            });
            if !in_role {
                return Err(Error::invalid(
                    "scopes",
                    format!("role `{role}` does not give {action} on {typ}"),
                ));
            }
        }
        let subject = Subject::Key(key).as_policy();
        let rows = unique.into_iter().map(|(typ, action)| rule::ActiveModel {
            organization_id: Set(tx.org_id().as_uuid()),
            id: Set(Uuid::now_v7()),
            subject: Set(subject.clone()),
            resource_type: Set(typ.as_str().to_owned()),
            action: Set(action.as_str().to_owned()),
            effect: Set(SCOPE_EFFECT.to_owned()),
            created_at: Set(self.clock.now()),
            created_by: Set(None),
        });
        rule::Entity::insert_many(rows)
            .exec_without_returning(tx.conn())
            .await?;
        bump_version(tx).await
    }

    /// The permissions a key is restricted to, or `None` when it has its role's.
    pub async fn key_scope(
        &self,
        tx: &TenantTx,
        key: kernel::ApiKeyId,
    ) -> Result<Option<Vec<Permission>>> {
        let enforcer = self.enforcer(tx).await?;
        let subject = Subject::Key(key).as_policy();
        Ok(enforcer.snapshot().scopes.get(&subject).map(|scope| {
            scope
                .iter()
                .map(|(typ, action)| Permission {
                    resource_type: typ.clone(),
                    action: action.clone(),
                })
                .collect()
        }))
    }

    /// Denies `action` on `typ` to a role or a subject (`user:<id>`, `key:<id>`),
    /// whatever else allows it. Delegation rules: the target is something the actor
    /// could confer (never an owner, never a role holding more than the actor), and the
    /// rule may not take away the actor's own ability to remove it (`ESCALATION`).
    #[tracing::instrument(name = "authz.deny", skip_all, err(level = "debug"))]
    pub async fn deny(
        &self,
        tx: &TenantTx,
        permit: &Permit,
        subject: &str,
        typ: ResourceType,
        action: Action,
    ) -> Result<()> {
        permit.ensure(tx, ResourceType::Role, Action::Update, None)?;
        let target = self.deny_target(tx, subject).await?;
        let actor = permit.principal();
        self.ensure_may_restrict(tx, actor, &target).await?;
        if typ == ResourceType::Role
            && action == Action::Update
            && self.applies_to(tx, actor, &target).await?
        {
            return Err(Error::Escalation(
                "a deny rule may not take away your own right to remove it".into(),
            ));
        }
        rule::Entity::insert(rule::ActiveModel {
            organization_id: Set(tx.org_id().as_uuid()),
            id: Set(Uuid::now_v7()),
            subject: Set(target.policy.clone()),
            resource_type: Set(typ.as_str().to_owned()),
            action: Set(action.as_str().to_owned()),
            effect: Set(Effect::Deny.as_str().to_owned()),
            created_at: Set(self.clock.now()),
            created_by: Set(Some(Subject::from(actor).as_policy())),
        })
        .on_conflict(
            OnConflict::columns([
                rule::Column::OrganizationId,
                rule::Column::Subject,
                rule::Column::ResourceType,
                rule::Column::Action,
                rule::Column::Effect,
            ])
            .do_nothing()
            .to_owned(),
        )
        .exec_without_returning(tx.conn())
        .await?;
        self.audit
            .record(
                tx,
                NewEvent::new("rule.denied", "rule", Some(&target.policy)).change(
                    "denied",
                    None::<String>,
                    Some(format!("{typ}:{action}")),
                ),
            )
            .await?;
        bump_version(tx).await
    }

    /// Removes a deny rule. The same delegation rules as for making it, and a rule that
    /// restricts the actor is lifted by someone it does not restrict (`ESCALATION`).
    #[tracing::instrument(name = "authz.remove_deny", skip_all, err(level = "debug"))]
    pub async fn remove_deny(&self, tx: &TenantTx, permit: &Permit, id: Uuid) -> Result<DenyRule> {
        permit.ensure(tx, ResourceType::Role, Action::Update, None)?;
        let row = tx
            .select::<rule::Entity>()
            .filter(rule::Column::Id.eq(id))
            .filter(rule::Column::Effect.eq(Effect::Deny.as_str()))
            .one(tx.conn())
            .await?
            .ok_or(Error::NotFound {
                entity: "deny rule",
            })?;
        let removed = deny_rule_from_row(row)?;
        let actor = permit.principal();
        let actor_roles = self.roles_of(tx, &Subject::from(actor)).await?;
        // Owners lift any rule (one aimed at someone who became an owner since included).
        let owner = actor_roles.iter().any(|r| r == builtin::OWNER);
        let target = self.deny_target(tx, &removed.subject).await?;
        if !owner {
            self.ensure_may_restrict(tx, actor, &target).await?;
        }
        if !owner && self.applies_to(tx, actor, &target).await? {
            return Err(Error::Escalation(
                "a deny rule that restricts you is removed by someone it does not restrict".into(),
            ));
        }
        rule::Entity::delete_many()
            .filter(rule::Column::OrganizationId.eq(tx.org_id().as_uuid()))
            .filter(rule::Column::Id.eq(id))
            .exec(tx.conn())
            .await?;
        self.audit
            .record(
                tx,
                NewEvent::new("rule.deny_removed", "rule", Some(&removed.subject)).change(
                    "denied",
                    Some(format!("{}:{}", removed.resource_type, removed.action)),
                    None::<String>,
                ),
            )
            .await?;
        bump_version(tx).await?;
        Ok(removed)
    }

    /// The organization's deny rules, oldest first.
    pub async fn deny_rules(&self, tx: &TenantTx, page: &PageRequest) -> Result<Page<DenyRule>> {
        let select = tx
            .select::<rule::Entity>()
            .filter(rule::Column::Effect.eq(Effect::Deny.as_str()));
        let rows = kernel::page::keyset(select, rule::Column::Id, page)
            .all(tx.conn())
            .await?;
        Page::from_overfetch(rows, page).try_map(deny_rule_from_row)
    }

    /// What a deny rule names, and the roles it restricts.
    pub(super) async fn deny_target(&self, tx: &TenantTx, subject: &str) -> Result<DenyTarget> {
        let parsed = match subject.split_once(':') {
            None => Subject::Role(subject.to_owned()),
            Some(_) => Subject::parse(subject)?,
        };
        Ok(match parsed {
            Subject::Role(role) => {
                self.ensure_role_exists(tx, &role).await?;
                DenyTarget {
                    policy: role.clone(),
                    roles: vec![role],
                }
            }
            subject => DenyTarget {
                policy: subject.as_policy(),
                roles: self.roles_of(tx, &subject).await?,
            },
        })
    }

    /// A deny rule may restrict only what the actor could confer: never an owner, never a
    /// role with a permission the actor lacks.
    pub(super) async fn ensure_may_restrict(
        &self,
        tx: &TenantTx,
        actor: Principal,
        target: &DenyTarget,
    ) -> Result<()> {
        for role in &target.roles {
            if role == builtin::OWNER {
                return Err(Error::Escalation(
                    "owners cannot be restricted by deny rules".into(),
                ));
            }
            self.ensure_may_confer_role(tx, actor, role).await?;
        }
        Ok(())
    }

    /// Whether a rule on `target` restricts `actor`: it names the actor, or a role the
    /// actor holds.
    pub(super) async fn applies_to(
        &self,
        tx: &TenantTx,
        actor: Principal,
        target: &DenyTarget,
    ) -> Result<bool> {
        let subject = Subject::from(actor);
        if target.policy == subject.as_policy() {
            return Ok(true);
        }
        let held = self.roles_of(tx, &subject).await?;
        Ok(held.contains(&target.policy))
    }
}
