//! [`Authorizer`]: decisions, permits, and changes to roles, rules and grants.
//!
//! Each organization's policy is compiled into its own enforcer and cached (bounded by
//! weight). Every write bumps the organization's policy version in the same transaction;
//! every check reads that version (one primary-key lookup in the request's transaction)
//! and rebuilds the enforcer when it differs, so a change is effective on the very next
//! request on every instance. Versions are random, not counters, so an enforcer built
//! inside a transaction that later rolled back can never be mistaken for a committed one.

//!
//! Files: here the enforcer cache and the policy version; `checks` (decisions),
//! `roles`, `rules` (deny rules and API key scopes), `grants` (per record).

mod checks;
mod grants;
mod roles;
mod rules;

use self::rules::SCOPE_EFFECT;
use crate::builtin;
use crate::engine::{MODEL, OrgEnforcer, Request, Snapshot};
use crate::entity::{policy_version, record_grant, role_assignment, rule};
use crate::error::Result;
use crate::model::{Action, Resource, Subject};
use audit::AuditLog;
use casbin::DefaultModel;
use kernel::{OrgId, SharedClock, TenantTx};
use quick_cache::Weighter;
use quick_cache::sync::Cache;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, EntityTrait};
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
    /// When grants, rules and roles are created.
    clock: SharedClock,
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
    pub async fn new(cache_bytes: u64, audit: AuditLog, clock: SharedClock) -> Result<Self> {
        let model = DefaultModel::from_str(MODEL).await?;
        let cache = Cache::with_weighter(10_000, cache_bytes, EnforcerWeight);
        Ok(Self {
            model: Arc::new(model),
            audit,
            clock,
            cache: Arc::new(cache),
            lookups: Arc::default(),
        })
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
