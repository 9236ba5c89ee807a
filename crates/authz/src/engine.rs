//! The Casbin model, an adapter that feeds it one organization's rows (read with SeaORM
//! inside that organization's transaction), and the compiled per-organization enforcer.
//!
//! Three kinds of data stay apart, so a check scans few rows:
//! - `p`: role and relation templates (built-ins shared by everyone, plus the
//!   organization's custom roles and deny rules): `[subject, domain, type, action, effect]`;
//! - `g`: role assignments, `[subject, role, organization]`;
//! - `g2`: record grants, `[subject, "type:id/relation"]`, plus `[subject, "role:name"]` so
//!   that a grant to a role reaches everyone holding it. These are graph lookups, not
//!   scanned rows.

use crate::error::Result;
use casbin::{Adapter, CoreApi, DefaultModel, Filter, Model};
use kernel::OrgId;
use std::collections::HashMap;
use std::sync::Arc;

/// Requests: subject, organization, type, `type:id` (or empty), parent `type:id` (or
/// empty), owner subject (or empty), action. A document inherits its project's grants
/// through the parent; its author holds `record_owner` through the owner.
pub(crate) const MODEL: &str = r#"
[request_definition]
r = sub, dom, typ, obj, parent, owner, act

[policy_definition]
p = sub, dom, typ, act, eft

[role_definition]
g = _, _, _
g2 = _, _

[policy_effect]
e = some(where (p.eft == allow)) && !some(where (p.eft == deny))

[matchers]
m = (p.dom == "*" || p.dom == r.dom) && (p.typ == "*" || p.typ == r.typ) && (p.act == "*" || p.act == r.act) && (p.sub == r.sub || g(r.sub, p.sub, r.dom) || (r.obj != "" && g2(r.sub, r.obj + "/" + p.sub)) || (r.parent != "" && g2(r.sub, r.parent + "/" + p.sub)) || (p.sub == "record_owner" && r.owner != "" && r.owner == r.sub))
"#;

/// One organization's policy rows.
#[derive(Debug, Default, Clone)]
pub struct Snapshot {
    /// `p` rows.
    pub p: Vec<Vec<String>>,
    /// `g` rows.
    pub g: Vec<Vec<String>>,
    /// `g2` rows.
    pub g2: Vec<Vec<String>>,
    /// API keys restricted to some permissions of their role (`key:<id>` → the
    /// `(type, action)` pairs it may still use). A key not here has its role's.
    pub scopes: std::collections::HashMap<String, Vec<(String, String)>>,
}

/// Resident memory of one Casbin enforcer beyond its rows, measured by `make bench`
/// (1,000 compiled organizations of 12 enforcers each: 666 KiB per organization), so the
/// cache's byte bound is a bound on real memory.
pub const ENFORCER_BYTES: u64 = 56 * 1024;

impl Snapshot {
    /// A rough size in bytes, for the cache's weight bound.
    pub fn weight(&self) -> u64 {
        let rows = self.p.iter().chain(&self.g).chain(&self.g2);
        rows.map(|row| row.iter().map(|s| s.len() as u64 + 24).sum::<u64>() + 64)
            .sum::<u64>()
            + 4096
    }
}

/// Loads a snapshot into the model. Writes never go through Casbin: the service writes
/// the tables and bumps the organization's policy version, which rebuilds the enforcer.
struct SnapshotAdapter(Snapshot);

fn insert(m: &mut dyn Model, sec: &str, ptype: &str, rows: &[Vec<String>]) {
    if let Some(assertion) = m
        .get_mut_model()
        .get_mut(sec)
        .and_then(|s| s.get_mut(ptype))
    {
        let policy = assertion.get_mut_policy();
        for row in rows {
            policy.insert(row.clone());
        }
    }
}

#[async_trait::async_trait]
impl Adapter for SnapshotAdapter {
    async fn load_policy(&mut self, m: &mut dyn Model) -> casbin::Result<()> {
        insert(m, "p", "p", &self.0.p);
        insert(m, "g", "g", &self.0.g);
        insert(m, "g", "g2", &self.0.g2);
        Ok(())
    }

    async fn load_filtered_policy<'a>(
        &mut self,
        m: &mut dyn Model,
        _f: Filter<'a>,
    ) -> casbin::Result<()> {
        // The snapshot is already one organization's rows.
        self.load_policy(m).await
    }

    async fn save_policy(&mut self, _m: &mut dyn Model) -> casbin::Result<()> {
        Ok(())
    }

    async fn clear_policy(&mut self) -> casbin::Result<()> {
        Ok(())
    }

    fn is_filtered(&self) -> bool {
        // The snapshot is one organization's rows already; `false` makes
        // `Enforcer::new` load it.
        false
    }

    async fn add_policy(
        &mut self,
        _sec: &str,
        _ptype: &str,
        _rule: Vec<String>,
    ) -> casbin::Result<bool> {
        Ok(false)
    }

    async fn add_policies(
        &mut self,
        _sec: &str,
        _ptype: &str,
        _rules: Vec<Vec<String>>,
    ) -> casbin::Result<bool> {
        Ok(false)
    }

    async fn remove_policy(
        &mut self,
        _sec: &str,
        _ptype: &str,
        _rule: Vec<String>,
    ) -> casbin::Result<bool> {
        Ok(false)
    }

    async fn remove_policies(
        &mut self,
        _sec: &str,
        _ptype: &str,
        _rules: Vec<Vec<String>>,
    ) -> casbin::Result<bool> {
        Ok(false)
    }

    async fn remove_filtered_policy(
        &mut self,
        _sec: &str,
        _ptype: &str,
        _field_index: usize,
        _field_values: Vec<String>,
    ) -> casbin::Result<bool> {
        Ok(false)
    }
}

/// A compiled enforcer for one organization at one policy version. Checks take `&self`.
pub(crate) struct OrgEnforcer {
    pub org: OrgId,
    pub version: i64,
    pub weight: u64,
    /// Holds every row and owns the role graph (`g` and `g2` links).
    enforcer: casbin::Enforcer,
    /// One enforcer per resource type holding only that type's and the `*` rows, all
    /// sharing the role graph above: Casbin evaluates its matcher once per `p` row, so a
    /// check scans about a tenth of the rows.
    shards: HashMap<String, casbin::Enforcer>,
    snapshot: Snapshot,
    /// Subjects holding the `owner` role: the root of trust, whom no deny rule restricts
    /// (a deny aimed at a role or a person that later becomes an owner included).
    owners: std::collections::HashSet<String>,
    /// Decisions already taken at this policy version. The enforcer never changes (a
    /// policy change builds a new one), so a remembered decision stays right.
    decisions: quick_cache::sync::Cache<Request, bool>,
}

impl std::fmt::Debug for OrgEnforcer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrgEnforcer")
            .field("org", &self.org)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

/// The shard for resource types no row names specifically (only `*` rows apply).
const ANY_TYPE: &str = "*";

/// Decisions remembered per organization and policy version.
const DECISIONS_PER_ORG: usize = 4_096;

/// The request tuple.
pub(crate) type Request = [String; 7];

impl OrgEnforcer {
    pub async fn build(
        model: &DefaultModel,
        org: OrgId,
        version: i64,
        snapshot: Snapshot,
    ) -> Result<Self> {
        let enforcer =
            casbin::Enforcer::new(model.clone(), SnapshotAdapter(snapshot.clone())).await?;
        let roles = enforcer.get_role_manager();
        let mut types: Vec<&str> = snapshot.p.iter().map(|p| p[2].as_str()).collect();
        types.sort_unstable();
        types.dedup();
        let mut shards = HashMap::new();
        for typ in types.into_iter().chain(std::iter::once(ANY_TYPE)) {
            if shards.contains_key(typ) {
                continue;
            }
            let rows = snapshot
                .p
                .iter()
                .filter(|p| p[2] == typ || p[2] == "*")
                .cloned()
                .collect();
            let only_rows = Snapshot {
                p: rows,
                ..Snapshot::default()
            };
            let mut shard =
                casbin::Enforcer::new(model.clone(), SnapshotAdapter(only_rows)).await?;
            // Share the full role graph instead of building (and clearing) one.
            shard.enable_auto_build_role_links(false);
            shard.set_role_manager(Arc::clone(&roles))?;
            shards.insert(typ.to_owned(), shard);
        }
        // The rows are the small part: each Casbin enforcer carries its own model and
        // script engine.
        let weight = snapshot.weight() + (shards.len() as u64 + 1) * ENFORCER_BYTES;
        let domain = org.to_string();
        let owners = snapshot
            .g
            .iter()
            .filter(|g| g[1] == crate::builtin::OWNER && g[2] == domain)
            .map(|g| g[0].clone())
            .collect();
        Ok(Self {
            org,
            version,
            weight,
            enforcer,
            shards,
            snapshot,
            owners,
            decisions: quick_cache::sync::Cache::new(DECISIONS_PER_ORG),
        })
    }

    pub fn enforce(&self, request: &Request) -> Result<bool> {
        if !self.scope_allows(&request[0], &request[2], &request[6]) {
            return Ok(false);
        }
        // The owner role allows everything; deny rules never apply to its holders.
        if self.owners.contains(&request[0]) {
            return Ok(true);
        }
        if let Some(known) = self.decisions.get(request) {
            return Ok(known);
        }
        let decided = self.enforce_uncached(request)?;
        self.decisions.insert(request.clone(), decided);
        Ok(decided)
    }

    /// Whether `subject`'s scope (an API key restricted to some permissions) leaves it
    /// `action` on `typ`; subjects without a scope are limited by their roles alone.
    pub fn scope_allows(&self, subject: &str, typ: &str, action: &str) -> bool {
        self.snapshot
            .scopes
            .get(subject)
            .is_none_or(|scope| scope.iter().any(|(t, a)| t == typ && a == action))
    }

    /// The rows the enforcer was compiled from.
    pub fn snapshot(&self) -> &Snapshot {
        &self.snapshot
    }

    /// A decision computed afresh, bypassing the remembered ones (benchmarks, tests).
    pub fn enforce_uncached(&self, request: &Request) -> Result<bool> {
        let shard = self
            .shards
            .get(request[2].as_str())
            .or_else(|| self.shards.get(ANY_TYPE))
            .unwrap_or(&self.enforcer);
        Ok(shard.enforce(request.to_vec())?)
    }

    /// The decision and the `p` rows that produced it: the matching denies when a deny
    /// won, else the matching allows. Evaluates the matcher's terms over the snapshot
    /// (roles do not inherit from roles, so `g` and `g2` are one or two hops), and is
    /// checked against `enforce` in the tests.
    pub fn explain(&self, request: &Request) -> Result<(bool, Vec<Vec<String>>)> {
        let allowed = self.enforce(request)?;
        let [sub, dom, typ, obj, parent, owner, act] = request;
        let has_role = |s: &str, role: &str| {
            self.snapshot
                .g
                .iter()
                .any(|g| g[0] == s && g[1] == role && g[2] == *dom)
        };
        let roles_of: Vec<String> = self
            .snapshot
            .g
            .iter()
            .filter(|g| g[0] == *sub)
            .map(|g| format!("role:{}", g[1]))
            .collect();
        let granted = |target: &str| {
            self.snapshot
                .g2
                .iter()
                .any(|g| g[1] == target && (g[0] == *sub || roles_of.contains(&g[0])))
        };
        let matching: Vec<Vec<String>> = self
            .snapshot
            .p
            .iter()
            .filter(|p| {
                (p[1] == "*" || p[1] == *dom)
                    && (p[2] == "*" || p[2] == *typ)
                    && (p[3] == "*" || p[3] == *act)
                    && (p[0] == *sub
                        || has_role(sub, &p[0])
                        || (!obj.is_empty() && granted(&format!("{obj}/{}", p[0])))
                        || (!parent.is_empty() && granted(&format!("{parent}/{}", p[0])))
                        || (p[0] == "record_owner" && !owner.is_empty() && owner == sub))
            })
            .cloned()
            .collect();
        let deciding = if allowed { "allow" } else { "deny" };
        Ok((
            allowed,
            matching.into_iter().filter(|p| p[4] == deciding).collect(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builtin;
    use crate::model::{Action, ResourceType};

    const ORG: &str = "0190f000-0000-7000-8000-000000000001";
    const DOC: &str = "document:0190f000-0000-7000-8000-0000000000d1";
    const SIBLING: &str = "document:0190f000-0000-7000-8000-0000000000d2";
    const PROJECT: &str = "project:0190f000-0000-7000-8000-0000000000a1";

    fn org() -> OrgId {
        OrgId::from_uuid(uuid::Uuid::parse_str(ORG).unwrap())
    }

    async fn enforcer(extra: impl FnOnce(&mut Snapshot)) -> OrgEnforcer {
        let model = DefaultModel::from_str(MODEL).await.unwrap();
        let mut snapshot = Snapshot {
            p: builtin::policy_rows(),
            ..Snapshot::default()
        };
        extra(&mut snapshot);
        OrgEnforcer::build(&model, org(), 1, snapshot)
            .await
            .unwrap()
    }

    fn assign(s: &mut Snapshot, subject: &str, role: &str) {
        s.g.push(vec![subject.into(), role.into(), ORG.into()]);
        s.g2.push(vec![subject.into(), format!("role:{role}")]);
    }

    fn req(
        sub: &str,
        typ: ResourceType,
        obj: &str,
        parent: &str,
        owner: &str,
        act: Action,
    ) -> Request {
        [
            sub.into(),
            ORG.into(),
            typ.as_str().into(),
            obj.into(),
            parent.into(),
            owner.into(),
            act.as_str().into(),
        ]
    }

    fn allowed(e: &OrgEnforcer, r: &Request) -> bool {
        let decision = e.enforce(r).unwrap();
        let (explained, rules) = e.explain(r).unwrap();
        assert_eq!(
            decision, explained,
            "explain disagrees with enforce for {r:?}"
        );
        if decision {
            assert!(!rules.is_empty(), "an allow names its rule: {r:?}");
        }
        decision
    }

    #[tokio::test]
    async fn built_in_roles_allow_what_their_table_says_and_nothing_else() {
        let e = enforcer(|s| {
            for role in [
                "owner",
                "admin",
                "member",
                "billing_admin",
                "auditor",
                "viewer",
            ] {
                assign(s, &format!("user:{role}"), role);
            }
        })
        .await;
        use Action::*;
        use ResourceType::*;
        let cases: &[(&str, ResourceType, Action, bool)] = &[
            ("owner", Billing, Delete, true),
            ("owner", Organization, Delete, true),
            ("admin", Member, Delete, true),
            ("admin", Organization, Delete, false),
            ("admin", Billing, Read, false),
            ("admin", Audit, Read, true),
            ("member", Document, Create, true),
            ("member", Document, Update, false),
            ("member", Member, Create, false),
            ("billing_admin", Billing, Update, true),
            ("billing_admin", Document, Read, false),
            ("auditor", Audit, Export, true),
            ("auditor", Audit, Delete, false),
            ("viewer", Document, Read, true),
            ("viewer", Document, Create, false),
            ("nobody", Organization, Read, false),
        ];
        for (role, typ, action, expected) in cases {
            let r = req(&format!("user:{role}"), *typ, "", "", "", *action);
            assert_eq!(allowed(&e, &r), *expected, "{role} {action} {typ}");
        }
    }

    #[tokio::test]
    async fn record_grants_reach_the_record_and_its_children_but_not_siblings() {
        let e = enforcer(|s| {
            assign(s, "user:u", "viewer");
            s.g2.push(vec!["user:u".into(), format!("{DOC}/editor")]);
            s.g2.push(vec!["user:r".into(), format!("{PROJECT}/reviewer")]);
            s.g2.push(vec!["role:auditor".into(), format!("{DOC}/reader")]);
            assign(s, "user:a", "auditor");
        })
        .await;
        use Action::*;
        use ResourceType::Document;
        assert!(allowed(
            &e,
            &req("user:u", Document, DOC, PROJECT, "", Update)
        ));
        assert!(!allowed(
            &e,
            &req("user:u", Document, SIBLING, PROJECT, "", Update)
        ));
        // Through the project: every document of it, and only review, not edit.
        assert!(allowed(
            &e,
            &req("user:r", Document, SIBLING, PROJECT, "", Review)
        ));
        assert!(!allowed(
            &e,
            &req("user:r", Document, SIBLING, PROJECT, "", Update)
        ));
        assert!(!allowed(
            &e,
            &req("user:r", Document, SIBLING, "", "", Review)
        ));
        // A grant to a role reaches its holders.
        assert!(allowed(&e, &req("user:a", Document, DOC, "", "", Read)));
        assert!(!allowed(
            &e,
            &req("user:a", Document, SIBLING, "", "", Read)
        ));
        // The owner of a record holds record_owner on it.
        assert!(allowed(
            &e,
            &req("user:o", Document, DOC, "", "user:o", Delete)
        ));
        assert!(!allowed(
            &e,
            &req("user:x", Document, DOC, "", "user:o", Delete)
        ));
    }

    #[tokio::test]
    async fn an_explicit_deny_wins_over_every_allow() {
        let e = enforcer(|s| {
            assign(s, "user:o", "billing_admin");
            assign(s, "user:m", "member");
            assign(s, "user:boss", "owner");
            s.p.push(vec![
                "member".into(),
                ORG.into(),
                "document".into(),
                "create".into(),
                "deny".into(),
            ]);
            for sub in ["user:o", "user:boss", "owner"] {
                s.p.push(vec![
                    sub.into(),
                    ORG.into(),
                    "billing".into(),
                    "read".into(),
                    "deny".into(),
                ]);
            }
        })
        .await;
        // Owners are the root of trust: no deny rule restricts them.
        assert!(allowed(
            &e,
            &req("user:boss", ResourceType::Billing, "", "", "", Action::Read)
        ));
        assert!(!allowed(
            &e,
            &req("user:m", ResourceType::Document, "", "", "", Action::Create)
        ));
        assert!(allowed(
            &e,
            &req("user:m", ResourceType::Document, "", "", "", Action::Read)
        ));
        assert!(!allowed(
            &e,
            &req("user:o", ResourceType::Billing, "", "", "", Action::Read)
        ));
        assert!(allowed(
            &e,
            &req("user:o", ResourceType::Billing, "", "", "", Action::Update)
        ));
        let (_, rules) = e
            .explain(&req(
                "user:m",
                ResourceType::Document,
                "",
                "",
                "",
                Action::Create,
            ))
            .unwrap();
        assert_eq!(
            rules,
            vec![vec![
                "member".to_owned(),
                ORG.into(),
                "document".into(),
                "create".into(),
                "deny".into()
            ]]
        );
    }

    #[tokio::test]
    async fn another_organizations_rules_do_not_apply() {
        let e = enforcer(|s| {
            s.g.push(vec![
                "user:x".into(),
                "owner".into(),
                "0190f000-0000-7000-8000-00000000ffff".into(),
            ]);
            s.p.push(vec![
                "user:y".into(),
                "0190f000-0000-7000-8000-00000000ffff".into(),
                "*".into(),
                "*".into(),
                "allow".into(),
            ]);
        })
        .await;
        assert!(!allowed(
            &e,
            &req("user:x", ResourceType::Document, "", "", "", Action::Read)
        ));
        assert!(!allowed(
            &e,
            &req("user:y", ResourceType::Document, "", "", "", Action::Read)
        ));
    }
}
