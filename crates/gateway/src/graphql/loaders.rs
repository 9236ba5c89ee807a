//! Per-request DataLoaders for nested fields (document → project, author, reviews,
//! versions): one query per kind of field per organization, however long the page.
//! Made afresh for every operation and dropped with it: a loader shared between
//! requests would hand one caller's (or organization's) records to another.
//!
//! Every loader opens the organization's transaction for the caller itself (membership
//! checked), and the project loader filters by the caller's policy in SQL, so a field
//! never shows what the caller could not fetch directly.

use crate::error::ResultExt;
use crate::graphql::tasks::OperationTasks;
use crate::startup::AppState;
use crate::unit::{OperationUnits, UnitTx};
use async_graphql::dataloader::{DataLoader, Loader};
use authz::{Action, ResourceType};
use core_domain::{DocumentVersion, Project, Review};
use kernel::{DocumentId, OrgId, Page, PageRequest, ProjectId, RequestTurn, TxMode, UserId};
use std::collections::{BTreeMap, HashMap};
use tenancy::Caller;
use uuid::Uuid;

/// The loaders of one operation.
pub struct Loaders {
    /// Projects by (organization, id), as far as the caller may read them.
    pub projects: DataLoader<ProjectLoader>,
    /// People by id.
    pub users: DataLoader<UserLoader>,
    /// A page of review decisions by (organization, document, page).
    pub reviews: DataLoader<ReviewLoader>,
    /// A page of versions by (organization, document, page).
    pub versions: DataLoader<VersionLoader>,
    /// Current approvals by (organization, document).
    pub approvals: DataLoader<ApprovalLoader>,
}

impl Loaders {
    /// Fresh loaders for one operation of `caller` (none for anonymous callers, who
    /// never reach a nested record field).
    pub fn new(
        state: &AppState,
        caller: Option<&Caller>,
        turn: &RequestTurn,
        units: &OperationUnits,
        tasks: &OperationTasks,
    ) -> Self {
        let scope = || Scope {
            state: state.clone(),
            caller: caller.cloned(),
            turn: turn.clone(),
            units: units.clone(),
        };
        // Batches run on the operation's own task, right after the resolvers that asked
        // for their keys have all been polled: a batch holds every key one pass of the
        // operation asks for, however busy the machine (a timer would split it).
        fn loader<T: Loader<K>, K: Send + Sync + std::hash::Hash + Eq + Clone + 'static>(
            loader: T,
            tasks: &OperationTasks,
        ) -> DataLoader<T> {
            DataLoader::new(loader, tasks.spawner()).delay(std::time::Duration::ZERO)
        }
        Self {
            projects: loader(ProjectLoader(scope()), tasks),
            users: loader(UserLoader(scope()), tasks),
            reviews: loader(ReviewLoader(scope()), tasks),
            versions: loader(VersionLoader(scope()), tasks),
            approvals: loader(ApprovalLoader(scope()), tasks),
        }
    }
}

/// Who loads, with which services.
#[derive(Clone)]
pub struct Scope {
    state: AppState,
    caller: Option<Caller>,
    /// The request's turn at the database, shared with its resolvers.
    turn: RequestTurn,
    /// The operation's units of work, shared with its resolvers.
    units: OperationUnits,
}

type LoadError = async_graphql::Error;

impl Scope {
    /// The caller as its credential names it (entering an organization checks the rest).
    fn caller(&self) -> Result<&Caller, LoadError> {
        self.caller
            .as_ref()
            .ok_or_else(|| async_graphql::Error::from(crate::error::ApiError::Unauthenticated))
    }

    /// The operation's read unit of `org`, shared with its resolvers.
    async fn enter(&self, org: OrgId) -> Result<(UnitTx, tenancy::Actor), LoadError> {
        let caller = self.caller()?;
        self.units
            .enter(&self.state.tenancy, &self.turn, caller, org, TxMode::Read)
            .await
            .gql()
    }
}

/// Groups `(organization, id)` keys by organization.
fn by_org<Id: Copy>(keys: &[(OrgId, Id)]) -> BTreeMap<OrgId, Vec<Id>> {
    let mut groups: BTreeMap<OrgId, Vec<Id>> = BTreeMap::new();
    for (org, id) in keys {
        groups.entry(*org).or_default().push(*id);
    }
    groups
}

/// Projects the caller may read.
pub struct ProjectLoader(Scope);

impl Loader<(OrgId, ProjectId)> for ProjectLoader {
    type Value = Project;
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[(OrgId, ProjectId)],
    ) -> Result<HashMap<(OrgId, ProjectId), Project>, LoadError> {
        let state = &self.0.state;
        let mut found = HashMap::new();
        for (org, ids) in by_org(keys) {
            let (tx, actor) = self.0.enter(org).await?;
            let filter = state
                .authz
                .list_filter(
                    &tx,
                    &actor.principal.into(),
                    ResourceType::Project,
                    Action::Read,
                    None,
                )
                .await
                .gql()?;
            for project in state.projects.by_ids(&tx, &filter, &ids).await.gql()? {
                found.insert((org, project.id), project);
            }
        }
        Ok(found)
    }
}

/// People (authors, reviewers) of records the caller already reads.
pub struct UserLoader(Scope);

impl Loader<UserId> for UserLoader {
    type Value = tenancy::User;
    type Error = LoadError;

    async fn load(&self, keys: &[UserId]) -> Result<HashMap<UserId, tenancy::User>, LoadError> {
        let caller = self.0.caller()?;
        let tenancy = &self.0.state.tenancy;
        let users = self
            .0
            .units
            .platform_read(&self.0.turn, async |tx| match tx {
                Some(tx) => {
                    tenancy.verify_on(tx.conn(), caller).await?;
                    tenancy.users_on(tx.conn(), keys).await
                }
                None => {
                    tenancy.verify(caller).await?;
                    tenancy.users(keys).await
                }
            })
            .await
            .gql()?;
        Ok(users.into_iter().map(|u| (u.id, u)).collect())
    }
}

/// Loads, per organization and page request in one query each, that page of a history
/// (versions, reviews) of each document the caller already reads.
async fn per_document<T, F, Fut>(
    scope: &Scope,
    keys: &[(OrgId, DocumentId, PageRequest)],
    query: F,
) -> Result<HashMap<(OrgId, DocumentId, PageRequest), Page<T>>, LoadError>
where
    F: Fn(UnitTx, Vec<DocumentId>, PageRequest) -> Fut,
    Fut: std::future::Future<Output = Result<BTreeMap<DocumentId, Page<T>>, LoadError>>,
{
    scope.caller()?;
    let mut groups: BTreeMap<(OrgId, PageRequestKey), (PageRequest, Vec<DocumentId>)> =
        BTreeMap::new();
    for (org, id, page) in keys {
        groups
            .entry((*org, PageRequestKey::of(page)))
            .or_insert_with(|| (*page, Vec::new()))
            .1
            .push(*id);
    }
    let mut found = HashMap::new();
    for ((org, _), (page, ids)) in groups {
        let (tx, _) = scope.enter(org).await?;
        for (id, rows) in query(tx, ids, page).await? {
            found.insert((org, id, page), rows);
        }
    }
    Ok(found)
}

/// A page request as an ordered key (to group loads by it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct PageRequestKey(Option<Uuid>, Option<Uuid>, u64, bool);

impl PageRequestKey {
    fn of(page: &PageRequest) -> Self {
        Self(page.after, page.before, page.limit, page.from_end)
    }
}

/// A page of the review decisions on documents the caller already reads.
pub struct ReviewLoader(Scope);

impl Loader<(OrgId, DocumentId, PageRequest)> for ReviewLoader {
    type Value = Page<Review>;
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[(OrgId, DocumentId, PageRequest)],
    ) -> Result<HashMap<(OrgId, DocumentId, PageRequest), Page<Review>>, LoadError> {
        let documents = &self.0.state.documents;
        per_document(&self.0, keys, |tx, ids, page| async move {
            documents.reviews_of(&tx, &ids, &page).await.gql()
        })
        .await
    }
}

/// A page of the versions of documents the caller already reads, newest first.
pub struct VersionLoader(Scope);

impl Loader<(OrgId, DocumentId, PageRequest)> for VersionLoader {
    type Value = Page<DocumentVersion>;
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[(OrgId, DocumentId, PageRequest)],
    ) -> Result<HashMap<(OrgId, DocumentId, PageRequest), Page<DocumentVersion>>, LoadError> {
        let documents = &self.0.state.documents;
        per_document(&self.0, keys, |tx, ids, page| async move {
            documents.versions_of(&tx, &ids, &page).await.gql()
        })
        .await
    }
}

/// The approvals that count now on documents the caller already reads.
pub struct ApprovalLoader(Scope);

impl Loader<(OrgId, DocumentId)> for ApprovalLoader {
    type Value = Vec<Review>;
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[(OrgId, DocumentId)],
    ) -> Result<HashMap<(OrgId, DocumentId), Vec<Review>>, LoadError> {
        self.0.caller()?;
        let mut found: HashMap<(OrgId, DocumentId), Vec<Review>> =
            keys.iter().map(|k| (*k, Vec::new())).collect();
        for (org, ids) in by_org(keys) {
            let (tx, _) = self.0.enter(org).await?;
            for review in self.0.state.documents.approvals_of(&tx, &ids).await.gql()? {
                found
                    .entry((org, review.document_id))
                    .or_default()
                    .push(review);
            }
        }
        Ok(found)
    }
}
