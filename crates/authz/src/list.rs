//! Lists: "the records I may read" as SQL, not one decision per row and never a filter
//! after the query (which breaks pagination). An organization-wide permission means the
//! tenant filter alone; otherwise the records come from a semi-join on `record_grants`
//! (granted directly or through a role, children of granted parents) or from ownership.
//! What the compiler cannot translate is an error, never "allow all".

use crate::builtin;
use crate::entity::record_grant;
use crate::error::{Error, Result};
use crate::model::{Action, ResourceType, Subject};
use crate::service::Authorizer;
use kernel::TenantTx;
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Query, SelectStatement, UnionType};
use sea_orm::{ColumnTrait, Condition, ConnectionTrait, DbBackend};
use uuid::Uuid;

/// How to restrict a list. Only [`Authorizer::list_filter`] makes one, so a repository
/// cannot be handed an "allow all" that the policy did not decide.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListFilter(Scope);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Scope {
    /// Every record of the organization.
    All,
    /// None.
    Nothing,
    /// Only these.
    Records {
        /// The subject and the roles it holds, as `record_grants.subject` values.
        subjects: Vec<String>,
        /// Relations whose holders may do the action.
        relations: Vec<String>,
        /// The record type itself.
        typ: ResourceType,
        /// The parent type whose grants children inherit.
        parent: Option<ResourceType>,
        /// The owner's id, when owners may do the action.
        owner: Option<Uuid>,
    },
}

impl Scope {
    fn grants(subjects: &[String], relations: &[String], typ: ResourceType) -> SelectStatement {
        Query::select()
            .column(record_grant::Column::ResourceId)
            .from(record_grant::Entity)
            .and_where(record_grant::Column::ResourceType.eq(typ.as_str()))
            .and_where(record_grant::Column::Relation.is_in(relations.iter().cloned()))
            .and_where(record_grant::Column::Subject.is_in(subjects.iter().cloned()))
            .to_owned()
    }

    /// The condition over a table's id, parent and owner columns. The grant sub-queries
    /// run in the same transaction, so Row-Level Security (PostgreSQL) and the
    /// organization filter of the outer query keep them inside the organization; they
    /// also name it explicitly.
    fn condition<C: ColumnTrait>(
        &self,
        tx: &TenantTx,
        id: C,
        parent: Option<C>,
        owner: Option<C>,
    ) -> Condition {
        match self {
            Self::All => Condition::all(),
            Self::Nothing => Condition::all().add(Expr::cust("1 = 0")),
            Self::Records {
                subjects,
                relations,
                typ,
                parent: parent_type,
                owner: owner_id,
            } => {
                let org = tx.org_id().as_uuid();
                if tx.conn().get_database_backend() != DbBackend::Postgres {
                    return sqlite_condition(
                        org,
                        subjects,
                        relations,
                        *typ,
                        *parent_type,
                        *owner_id,
                        id,
                        parent,
                        owner,
                    );
                }
                let mut any = Condition::any();
                if !relations.is_empty() {
                    let mut direct = Self::grants(subjects, relations, *typ);
                    direct.and_where(record_grant::Column::OrganizationId.eq(org));
                    any = any.add(member_of(id, direct));
                    if let (Some(parent_type), Some(parent_col)) = (parent_type, parent) {
                        let mut inherited = Self::grants(subjects, relations, *parent_type);
                        inherited.and_where(record_grant::Column::OrganizationId.eq(org));
                        any = any.add(member_of(parent_col, inherited));
                    }
                }
                if let (Some(owner_id), Some(owner_col)) = (owner_id, owner) {
                    any = any.add(owner_col.eq(*owner_id));
                }
                if any.is_empty() {
                    Condition::all().add(Expr::cust("1 = 0"))
                } else {
                    any
                }
            }
        }
    }
}

/// `column = ANY(ARRAY(grants))` (PostgreSQL): the grants are read once (an init plan)
/// and the column probed through its index, so the alternatives of the filter (granted,
/// granted on the parent, owned) combine as a bitmap OR of index scans. An
/// `IN (subquery)` inside an `OR` cannot become a semi-join and is evaluated as a filter
/// while walking the table in id order instead, orders of magnitude slower on a large
/// table (`make bench`; the figures are in the README, "Permissions").
fn member_of<C: ColumnTrait>(column: C, grants: SelectStatement) -> Expr {
    Expr::cust_with_exprs(
        "$1 = ANY(ARRAY $2)",
        [
            column.into_expr(),
            Expr::SubQuery(None, Box::new(grants.into())),
        ],
    )
}

/// SQLite: one `id IN (granted UNION ALL children of granted UNION ALL owned)`, so the
/// ids come from the grants and the owner index and the table is probed by key, instead
/// of an `OR` that SQLite answers by walking the table in id order.
#[allow(clippy::too_many_arguments)]
fn sqlite_condition<C: ColumnTrait>(
    org: Uuid,
    subjects: &[String],
    relations: &[String],
    typ: ResourceType,
    parent_type: Option<ResourceType>,
    owner_id: Option<Uuid>,
    id: C,
    parent: Option<C>,
    owner: Option<C>,
) -> Condition {
    let table = id.entity_name();
    let org_col = Expr::col((table.clone(), Alias::new("organization_id")));
    let mut sources: Vec<SelectStatement> = Vec::new();
    if !relations.is_empty() {
        let mut direct = Scope::grants(subjects, relations, typ);
        direct.and_where(record_grant::Column::OrganizationId.eq(org));
        sources.push(direct);
        if let (Some(parent_type), Some(parent_col)) = (parent_type, parent) {
            let mut inherited = Scope::grants(subjects, relations, parent_type);
            inherited.and_where(record_grant::Column::OrganizationId.eq(org));
            sources.push(
                Query::select()
                    .expr(id.into_expr())
                    .from(table.clone())
                    .and_where(org_col.clone().eq(org))
                    .and_where(parent_col.in_subquery(inherited))
                    .to_owned(),
            );
        }
    }
    if let (Some(owner_id), Some(owner_col)) = (owner_id, owner) {
        sources.push(
            Query::select()
                .expr(id.into_expr())
                .from(table)
                .and_where(org_col.eq(org))
                .and_where(owner_col.eq(owner_id))
                .to_owned(),
        );
    }
    let mut sources = sources.into_iter();
    let Some(mut union) = sources.next() else {
        return Condition::all().add(Expr::cust("1 = 0"));
    };
    for source in sources {
        union.union(UnionType::All, source);
    }
    Condition::all().add(id.in_subquery(union))
}

impl ListFilter {
    /// The condition over a table's id, parent and owner columns. The grant sub-queries
    /// run in the caller's transaction (under Row-Level Security on PostgreSQL) and name
    /// the organization explicitly as well.
    pub fn condition<C: ColumnTrait>(
        &self,
        tx: &TenantTx,
        id: C,
        parent: Option<C>,
        owner: Option<C>,
    ) -> Condition {
        self.0.condition(tx, id, parent, owner)
    }

    /// Whether every record of the organization passes.
    pub fn is_all(&self) -> bool {
        self.0 == Scope::All
    }
}

impl Authorizer {
    /// Compiles what `subject` may `action` among `typ` records (children of `parent`
    /// records) into a [`ListFilter`].
    pub async fn list_filter(
        &self,
        tx: &TenantTx,
        subject: &Subject,
        typ: ResourceType,
        action: Action,
        parent: Option<ResourceType>,
    ) -> Result<ListFilter> {
        let enforcer = self.compiled(tx).await?;
        let org = tx.org_id().to_string();
        let sub = subject.as_policy();
        if !enforcer.scope_allows(&sub, typ.as_str(), action.as_str()) {
            return Ok(ListFilter(Scope::Nothing));
        }
        let type_level = [
            sub.clone(),
            org.clone(),
            typ.as_str().to_owned(),
            String::new(),
            String::new(),
            String::new(),
            action.as_str().to_owned(),
        ];
        if enforcer.enforce(&type_level)? {
            return Ok(ListFilter(Scope::All));
        }
        let snapshot = enforcer.snapshot();
        let roles: Vec<&str> = snapshot
            .g
            .iter()
            .filter(|g| g[0] == sub && g[2] == org)
            .map(|g| g[1].as_str())
            .collect();
        let applies = |p: &Vec<String>| {
            (p[1] == "*" || p[1] == org)
                && (p[2] == "*" || p[2] == typ.as_str())
                && (p[3] == "*" || p[3] == action.as_str())
        };
        for deny in snapshot.p.iter().filter(|p| p[4] == "deny" && applies(p)) {
            if deny[0] == sub || roles.contains(&deny[0].as_str()) {
                return Ok(ListFilter(Scope::Nothing));
            }
            if builtin::is_relation(&deny[0]) {
                return Err(Error::Engine(format!(
                    "a deny on the relation `{}` cannot be compiled into a list filter",
                    deny[0]
                )));
            }
        }
        let mut relations: Vec<String> = snapshot
            .p
            .iter()
            .filter(|p| {
                p[4] == "allow"
                    && applies(p)
                    && builtin::is_relation(&p[0])
                    && p[0] != "record_owner"
            })
            .map(|p| p[0].clone())
            .collect();
        relations.sort();
        relations.dedup();
        let owned = snapshot
            .p
            .iter()
            .any(|p| p[4] == "allow" && applies(p) && p[0] == "record_owner");
        let owner = match (owned, subject) {
            (true, Subject::User(id)) => Some(id.as_uuid()),
            (true, Subject::Key(id)) => Some(id.as_uuid()),
            _ => None,
        };
        if relations.is_empty() && owner.is_none() {
            return Ok(ListFilter(Scope::Nothing));
        }
        let mut subjects = vec![sub];
        subjects.extend(roles.iter().map(|r| format!("role:{r}")));
        Ok(ListFilter(Scope::Records {
            subjects,
            relations,
            typ,
            parent,
            owner,
        }))
    }
}
