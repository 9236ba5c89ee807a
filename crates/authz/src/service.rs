//! [`Authorizer`]: decisions, permits, and changes to roles, rules and grants.
//!
//! Each organization's policy is compiled into its own enforcer and cached (bounded by
//! weight). Every write bumps the organization's policy version in the same transaction;
//! every check reads that version (one primary-key lookup in the request's transaction)
//! and rebuilds the enforcer when it differs, so a change is effective on the very next
//! request on every instance. Versions are random, not counters, so an enforcer built
//! inside a transaction that later rolled back can never be mistaken for a committed one.

use crate::builtin;
use crate::engine::{MODEL, OrgEnforcer, Request, Snapshot};
use crate::entity::{custom_role, policy_version, record_grant, role_assignment, rule};
use crate::error::{Error, Result};
use crate::model::{
    Action, DenyRule, Effect, Explanation, Grant, Permission, Resource, ResourceType, RoleInfo,
    Rule, Subject,
};
use crate::permit::Permit;
use audit::{AuditLog, NewEvent};
use casbin::DefaultModel;
use kernel::{OrgId, Page, PageRequest, Principal, TenantTx};
use quick_cache::Weighter;
use quick_cache::sync::Cache;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, SqlErr};

/// How many custom roles an organization may define.
pub const MAX_CUSTOM_ROLES: u64 = 50;
use std::sync::Arc;
use uuid::Uuid;

#[derive(Clone)]
struct EnforcerWeight;

impl Weighter<OrgId, Arc<OrgEnforcer>> for EnforcerWeight {
    fn weight(&self, _key: &OrgId, value: &Arc<OrgEnforcer>) -> u64 {
        value.weight
    }
}

/// Decides and changes who may do what.
#[derive(Clone)]
pub struct Authorizer {
    /// Shared: the authorizer is cloned into every service that checks permissions.
    model: Arc<DefaultModel>,
    audit: AuditLog,
    cache: Arc<Cache<OrgId, Arc<OrgEnforcer>, EnforcerWeight>>,
    /// Lookups that found the organization's enforcer current, and those that built it.
    lookups: Arc<[std::sync::atomic::AtomicU64; 2]>,
}

/// What the enforcer cache holds and how often it answered (for metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheUsage {
    /// Organizations whose enforcer is kept.
    pub entries: usize,
    /// Their total estimated weight (the cache's bound is on it).
    pub weight: u64,
    /// Lookups answered by a kept, current enforcer.
    pub hits: u64,
    /// Lookups that built one (none kept, or its policy version had moved).
    pub misses: u64,
}

impl std::fmt::Debug for Authorizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authorizer")
            .field("cached", &self.cache.len())
            .finish()
    }
}

impl Authorizer {
    /// An authorizer whose enforcer cache holds about `cache_bytes` of policy.
    pub async fn new(cache_bytes: u64, audit: AuditLog) -> Result<Self> {
        let model = DefaultModel::from_str(MODEL).await?;
        let cache = Cache::with_weighter(10_000, cache_bytes, EnforcerWeight);
        Ok(Self {
            model: Arc::new(model),
            audit,
            cache: Arc::new(cache),
            lookups: Arc::default(),
        })
    }

    /// A permit for `principal` to do `action` on `resource` in the transaction's
    /// organization, or [`Error::Denied`].
    #[tracing::instrument(name = "authz.check", skip_all, fields(action = %action, resource.type = %resource.typ), err(level = "debug"))]
    pub async fn check(
        &self,
        tx: &TenantTx,
        principal: Principal,
        resource: Resource,
        action: Action,
    ) -> Result<Permit> {
        if self.can(tx, &principal.into(), &resource, action).await? {
            Ok(Permit {
                org: tx.org_id(),
                principal,
                resource,
                action,
            })
        } else {
            Err(Error::Denied {
                action: action.to_string(),
                resource: resource.typ.to_string(),
            })
        }
    }

    /// Whether `subject` may do `action` on `resource` (for UIs: `viewerCan`).
    pub async fn can(
        &self,
        tx: &TenantTx,
        subject: &Subject,
        resource: &Resource,
        action: Action,
    ) -> Result<bool> {
        let enforcer = self.enforcer(tx).await?;
        enforcer.enforce(&request(tx.org_id(), subject, resource, action))
    }

    /// The decision and the rules behind it.
    pub async fn explain(
        &self,
        tx: &TenantTx,
        subject: &Subject,
        resource: &Resource,
        action: Action,
    ) -> Result<Explanation> {
        let enforcer = self.enforcer(tx).await?;
        let (allowed, rows) = enforcer.explain(&request(tx.org_id(), subject, resource, action))?;
        let rules = rows
            .into_iter()
            .filter_map(|row| match row.as_slice() {
                [sub, dom, typ, act, eft] => Some(Rule {
                    subject: sub.clone(),
                    permission: Permission {
                        resource_type: typ.clone(),
                        action: act.clone(),
                    },
                    effect: Effect::parse(eft).ok()?,
                    built_in: dom == "*",
                }),
                _ => None,
            })
            .collect();
        Ok(Explanation { allowed, rules })
    }

    /// The compiled policy of the transaction's organization, rebuilt when its version
    /// moved.
    pub(crate) async fn compiled(&self, tx: &TenantTx) -> Result<Arc<OrgEnforcer>> {
        self.enforcer(tx).await
    }

    async fn enforcer(&self, tx: &TenantTx) -> Result<Arc<OrgEnforcer>> {
        let org = tx.org_id();
        // Read once per transaction: with the membership when it was entered, or here.
        let version = match tx.remembered::<PolicyVersion>() {
            Some(PolicyVersion(version)) => version,
            None => {
                let version = tx
                    .select::<policy_version::Entity>()
                    .one(tx.conn())
                    .await?
                    .map_or(0, |row| row.version);
                tx.remember(PolicyVersion(version));
                version
            }
        };
        use std::sync::atomic::Ordering::Relaxed;
        if let Some(cached) = self.cache.get(&org)
            && cached.version == version
        {
            self.lookups[0].fetch_add(1, Relaxed);
            return Ok(cached);
        }
        self.lookups[1].fetch_add(1, Relaxed);
        let snapshot = load_snapshot(tx).await?;
        let built = Arc::new(OrgEnforcer::build(&self.model, org, version, snapshot).await?);
        self.cache.insert(org, built.clone());
        Ok(built)
    }

    /// Drops every cached enforcer (after a lost change feed, or in tests).
    pub fn clear_cache(&self) {
        self.cache.clear();
    }

    /// Drops one organization's cached enforcer (it was purged).
    pub fn forget(&self, org: OrgId) {
        self.cache.remove(&org);
    }

    /// What the enforcer cache holds, and its hits and misses since start.
    pub fn cache_usage(&self) -> CacheUsage {
        use std::sync::atomic::Ordering::Relaxed;
        CacheUsage {
            entries: self.cache.len(),
            weight: self.cache.weight(),
            hits: self.lookups[0].load(Relaxed),
            misses: self.lookups[1].load(Relaxed),
        }
    }

    // ----- changes -------------------------------------------------------------------

    /// Gives `subject` a role in the organization (built-in or custom). Called by tenancy
    /// when memberships and keys change; callers check the right to assign first.
    pub async fn assign_role(&self, tx: &TenantTx, subject: &Subject, role: &str) -> Result<()> {
        self.ensure_role_exists(tx, role).await?;
        let inserted = role_assignment::Entity::insert(role_assignment::ActiveModel {
            organization_id: Set(tx.org_id().as_uuid()),
            subject: Set(subject.as_policy()),
            role: Set(role.to_owned()),
            created_at: Set(chrono::Utc::now()),
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
            created_at: Set(chrono::Utc::now()),
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

    async fn can_raw(
        &self,
        tx: &TenantTx,
        subject: &Subject,
        typ: &str,
        obj: &str,
        parent: &str,
        action: &str,
    ) -> Result<bool> {
        let enforcer = self.enforcer(tx).await?;
        enforcer.enforce(&[
            subject.as_policy(),
            tx.org_id().to_string(),
            typ.to_owned(),
            obj.to_owned(),
            parent.to_owned(),
            String::new(),
            action.to_owned(),
        ])
    }

    async fn role_permissions(&self, tx: &TenantTx, role: &str) -> Result<Vec<(String, String)>> {
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

    async fn ensure_role_exists(&self, tx: &TenantTx, role: &str) -> Result<()> {
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
            return Err(Error::TooMany {
                what: "custom_roles",
                max: MAX_CUSTOM_ROLES,
            });
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
            created_at: Set(chrono::Utc::now()),
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

    async fn ensure_custom_assignment(
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

    async fn replace_role_rules(
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
                created_at: Set(chrono::Utc::now()),
                created_by: Set(None),
            });
            rule::Entity::insert_many(rows)
                .exec_without_returning(tx.conn())
                .await?;
        }
        bump_version(tx).await
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
            created_at: Set(chrono::Utc::now()),
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
    async fn deny_target(&self, tx: &TenantTx, subject: &str) -> Result<DenyTarget> {
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
    async fn ensure_may_restrict(
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
    async fn applies_to(
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

    /// Grants `relation` on one record to `subject`. The granter must hold every
    /// permission the relation gives, on that record and its children.
    #[tracing::instrument(name = "authz.grant", skip_all, err(level = "debug"))]
    pub async fn grant(
        &self,
        tx: &TenantTx,
        permit: &Permit,
        subject: &Subject,
        record: &Resource,
        relation: &str,
    ) -> Result<Grant> {
        permit.ensure(tx, ResourceType::Grant, Action::Create, None)?;
        let template = builtin::RELATIONS
            .iter()
            .find(|t| t.name == relation && t.name != "record_owner")
            .ok_or_else(|| Error::invalid("relation", format!("unknown relation `{relation}`")))?;
        let record_id = record
            .id
            .ok_or_else(|| Error::invalid("resource", "a grant names one record"))?;
        let granter = permit.subject();
        for (typ, action) in builtin::permissions(template) {
            let (obj, parent) = if typ == record.typ.as_str() {
                (record.object(), record.parent_object())
            } else {
                (String::new(), record.object())
            };
            if !self
                .can_raw(tx, &granter, &typ, &obj, &parent, &action)
                .await?
            {
                return Err(Error::Escalation(format!(
                    "relation `{relation}` includes {action} on {typ}"
                )));
            }
        }
        let id = Uuid::now_v7();
        let inserted = record_grant::Entity::insert(record_grant::ActiveModel {
            organization_id: Set(tx.org_id().as_uuid()),
            id: Set(id),
            subject: Set(subject.as_policy()),
            resource_type: Set(record.typ.as_str().to_owned()),
            resource_id: Set(record_id),
            relation: Set(relation.to_owned()),
            granted_by: Set(granter.as_policy()),
            created_at: Set(chrono::Utc::now()),
        })
        .exec_without_returning(tx.conn())
        .await;
        match inserted {
            Ok(_) => {}
            Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
                return Err(Error::Conflict("this grant exists already".into()));
            }
            Err(e) => return Err(e.into()),
        }
        bump_version(tx).await?;
        self.audit
            .record(
                tx,
                NewEvent::new("grant.created", record.typ.as_str(), Some(record_id))
                    .change("subject", None::<String>, Some(subject.as_policy()))
                    .change("relation", None::<String>, Some(relation)),
            )
            .await?;
        Ok(Grant {
            id,
            subject: subject.clone(),
            resource_type: record.typ,
            resource_id: record_id,
            relation: relation.to_owned(),
        })
    }

    /// Revokes a grant; effective on the next request.
    pub async fn revoke(&self, tx: &TenantTx, permit: &Permit, grant: Uuid) -> Result<Grant> {
        permit.ensure(tx, ResourceType::Grant, Action::Delete, None)?;
        let row = tx
            .select::<record_grant::Entity>()
            .filter(record_grant::Column::Id.eq(grant))
            .one(tx.conn())
            .await?
            .ok_or(Error::NotFound { entity: "grant" })?;
        record_grant::Entity::delete_many()
            .filter(record_grant::Column::OrganizationId.eq(tx.org_id().as_uuid()))
            .filter(record_grant::Column::Id.eq(grant))
            .exec(tx.conn())
            .await?;
        bump_version(tx).await?;
        self.audit
            .record(
                tx,
                NewEvent::new("grant.revoked", &row.resource_type, Some(row.resource_id))
                    .change("subject", Some(row.subject.clone()), None::<String>)
                    .change("relation", Some(row.relation.clone()), None::<String>),
            )
            .await?;
        grant_from_row(row)
    }

    /// One grant of the organization.
    pub async fn find_grant(&self, tx: &TenantTx, id: Uuid) -> Result<Grant> {
        let row = tx
            .select::<record_grant::Entity>()
            .filter(record_grant::Column::Id.eq(id))
            .one(tx.conn())
            .await?
            .ok_or(Error::NotFound { entity: "grant" })?;
        grant_from_row(row)
    }

    /// A page of the grants on one record, oldest first.
    pub async fn grants_on(
        &self,
        tx: &TenantTx,
        typ: ResourceType,
        id: Uuid,
        page: &PageRequest,
    ) -> Result<Page<Grant>> {
        let select = tx
            .select::<record_grant::Entity>()
            .filter(record_grant::Column::ResourceType.eq(typ.as_str()))
            .filter(record_grant::Column::ResourceId.eq(id));
        let rows = kernel::page::keyset(select, record_grant::Column::Id, page)
            .all(tx.conn())
            .await?;
        Page::from_overfetch(rows, page).try_map(grant_from_row)
    }
}

fn permission_list(permissions: &[(ResourceType, Action)]) -> String {
    let mut list: Vec<String> = permissions
        .iter()
        .map(|(t, a)| format!("{t}:{a}"))
        .collect();
    list.sort();
    list.dedup();
    list.join(",")
}

/// The `effect` of the rows that restrict an API key to some permissions of its role:
/// kept with the rules (so removing the key removes them), compiled into the enforcer's
/// scopes rather than its policy.
const SCOPE_EFFECT: &str = "scope";

/// The most permissions one key's scope may list (every type times every action).
const MAX_SCOPE: usize = 100;

/// The target of a deny rule: its policy subject, and the roles it restricts.
struct DenyTarget {
    policy: String,
    roles: Vec<String>,
}

fn deny_rule_from_row(row: rule::Model) -> Result<DenyRule> {
    Ok(DenyRule {
        id: row.id,
        resource_type: ResourceType::parse(&row.resource_type)?,
        action: Action::parse(&row.action)?,
        subject: row.subject,
        created_at: row.created_at,
        created_by: row.created_by.as_deref().map(Subject::parse).transpose()?,
    })
}

fn grant_from_row(row: record_grant::Model) -> Result<Grant> {
    Ok(Grant {
        id: row.id,
        subject: Subject::parse(&row.subject)?,
        resource_type: ResourceType::parse(&row.resource_type)?,
        resource_id: row.resource_id,
        relation: row.relation,
    })
}

fn validate_role_name(name: &str) -> Result<()> {
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

fn request(org: OrgId, subject: &Subject, resource: &Resource, action: Action) -> Request {
    [
        subject.as_policy(),
        org.to_string(),
        resource.typ.as_str().to_owned(),
        resource.object(),
        resource.parent_object(),
        resource
            .owner
            .as_ref()
            .map(Subject::as_policy)
            .unwrap_or_default(),
        action.as_str().to_owned(),
    ]
}

/// The organization's policy version as this transaction knows it.
#[derive(Debug, Clone, Copy)]
struct PolicyVersion(i64);

/// Tells the transaction its organization's policy version (`None`: no policy written
/// yet), read by whoever entered it, so the first check does not read it again.
pub fn remember_policy_version(tx: &TenantTx, version: Option<i64>) {
    tx.remember(PolicyVersion(version.unwrap_or(0)));
}

/// Sets a fresh random version for the organization, in the caller's transaction.
async fn bump_version(tx: &TenantTx) -> Result<()> {
    // The low 64 bits of a UUIDv7 are random: a rolled-back version never comes back.
    let (_, random) = Uuid::now_v7().as_u64_pair();
    let version = i64::from_ne_bytes(random.to_ne_bytes());
    policy_version::Entity::insert(policy_version::ActiveModel {
        organization_id: Set(tx.org_id().as_uuid()),
        version: Set(version),
    })
    .on_conflict(
        OnConflict::column(policy_version::Column::OrganizationId)
            .update_column(policy_version::Column::Version)
            .to_owned(),
    )
    .exec_without_returning(tx.conn())
    .await?;
    tx.remember(PolicyVersion(version));
    Ok(())
}

/// One query per table, inside the organization's transaction.
async fn load_snapshot(tx: &TenantTx) -> Result<Snapshot> {
    let org = tx.org_id().to_string();
    let mut snapshot = Snapshot {
        p: builtin::policy_rows(),
        ..Snapshot::default()
    };
    for row in tx.select::<rule::Entity>().all(tx.conn()).await? {
        if row.effect == SCOPE_EFFECT {
            let scope = snapshot.scopes.entry(row.subject).or_default();
            scope.push((row.resource_type, row.action));
            continue;
        }
        snapshot.p.push(vec![
            row.subject,
            org.clone(),
            row.resource_type,
            row.action,
            row.effect,
        ]);
    }
    for row in tx
        .select::<role_assignment::Entity>()
        .all(tx.conn())
        .await?
    {
        snapshot
            .g2
            .push(vec![row.subject.clone(), format!("role:{}", row.role)]);
        snapshot.g.push(vec![row.subject, row.role, org.clone()]);
    }
    for row in tx.select::<record_grant::Entity>().all(tx.conn()).await? {
        snapshot.g2.push(vec![
            row.subject,
            format!("{}:{}/{}", row.resource_type, row.resource_id, row.relation),
        ]);
    }
    Ok(snapshot)
}
