//! [`ProjectService`]: projects, each read and change behind a permit, each change
//! audited in its transaction; lists filtered in SQL by the caller's policy.

use crate::entity::project;
use crate::error::{Error, Result};
use crate::limits::{ensure_below_limit, serialize_usage};
use crate::model::{NewProject, Project, UpdateProject};
use audit::{AuditLog, NewEvent};
use authz::{Action, ListFilter, Permit, ResourceType};
use kernel::page::keyset_in;
use kernel::{
    Limit, OrgId, Page, PageRequest, Principal, ProjectId, SharedClock, SharedLimits, TenantTx,
    UserId,
};
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use uuid::Uuid;

/// Distinct approvals a project may require: 1 to 10.
fn approvals(required: u32) -> Result<i32> {
    match i32::try_from(required) {
        Ok(n @ 1..=10) => Ok(n),
        _ => Err(Error::Invalid {
            field: "requiredApprovals",
            reason: "must be 1 to 10".into(),
        }),
    }
}

/// Projects.
#[derive(Debug, Clone)]
pub struct ProjectService {
    audit: AuditLog,
    clock: SharedClock,
    limits: SharedLimits,
    usage: billing::UsageService,
}

fn from_row(row: project::Model) -> Result<Project> {
    let required_approvals = required_approvals(&row)?;
    Ok(Project {
        id: ProjectId::from_uuid(row.id),
        org_id: OrgId::from_uuid(row.organization_id),
        name: row.name,
        description: row.description,
        archived: row.archived,
        required_approvals,
        created_by: UserId::from_uuid(row.created_by),
        created_at: row.created_at,
    })
}

pub(crate) fn text(field: &'static str, value: &str, min: usize, max: usize) -> Result<String> {
    let value = value.trim();
    let length = value.chars().count();
    if length < min || length > max {
        return Err(Error::Invalid {
            field,
            reason: format!("must be {min} to {max} characters"),
        });
    }
    Ok(value.to_owned())
}

impl ProjectService {
    /// A service recording into `audit`, with time from `clock`, asking `limits` before
    /// creating.
    pub fn new(audit: AuditLog, clock: SharedClock, limits: SharedLimits) -> Self {
        Self {
            usage: billing::UsageService::new(audit.clone(), clock.clone()),
            audit,
            clock,
            limits,
        }
    }

    /// Creates a project; its creator owns it.
    #[tracing::instrument(name = "projects.create", skip_all, err(level = "debug"))]
    pub async fn create(
        &self,
        tx: &TenantTx,
        permit: &Permit,
        input: NewProject,
    ) -> Result<Project> {
        permit.ensure(tx, ResourceType::Project, Action::Create, None)?;
        let Principal::User(creator) = permit.principal() else {
            return Err(Error::Invalid {
                field: "principal",
                reason: "projects are created by people".into(),
            });
        };
        let name = text("name", &input.name, 1, 200)?;
        let description = text("description", &input.description, 0, 10_000)?;
        let required_approvals = approvals(input.required_approvals.unwrap_or(1))?;
        let org = tx.org_id().as_uuid();
        serialize_usage(tx, Limit::Projects, org).await?;
        let usage = tx.select::<project::Entity>().count(tx.conn()).await?;
        ensure_below_limit(tx, self.limits.as_ref(), Limit::Projects, usage).await?;
        let now = self.clock.now();
        let row = project::Entity::insert(project::ActiveModel {
            organization_id: Set(tx.org_id().as_uuid()),
            id: Set(Uuid::now_v7()),
            name: Set(name.clone()),
            description: Set(description),
            archived: Set(false),
            required_approvals: Set(required_approvals),
            created_by: Set(creator.as_uuid()),
            created_at: Set(now),
            updated_at: Set(now),
        })
        .exec_with_returning(tx.conn())
        .await?;
        self.audit
            .record(
                tx,
                NewEvent::new("project.created", "project", Some(row.id)).change(
                    "name",
                    None::<String>,
                    Some(name),
                ),
            )
            .await?;
        self.usage
            .record_platform_usage(tx, "projects_created", row.id)
            .await?;
        from_row(row)
    }

    /// One project.
    pub async fn get(&self, tx: &TenantTx, permit: &Permit, id: ProjectId) -> Result<Project> {
        permit.ensure(tx, ResourceType::Project, Action::Read, Some(id.as_uuid()))?;
        from_row(find_project(tx, id).await?)
    }

    /// The owner of a project, for building its permission resource.
    pub async fn owner_of(&self, tx: &TenantTx, id: ProjectId) -> Result<UserId> {
        Ok(UserId::from_uuid(find_project(tx, id).await?.created_by))
    }

    /// A project read once, before the permission to read it is decided: its owner
    /// builds the permission resource, and the project is handed out only against a
    /// permit for it ([`UncheckedProject::checked`]).
    pub async fn find_unchecked(&self, tx: &TenantTx, id: ProjectId) -> Result<UncheckedProject> {
        Ok(UncheckedProject(from_row(find_project(tx, id).await?)?))
    }

    /// One page of the projects `filter` (from `Authorizer::list_filter`) lets through,
    /// in `order`.
    pub async fn list(
        &self,
        tx: &TenantTx,
        filter: &ListFilter,
        (page, order): (&PageRequest, kernel::ListOrder),
    ) -> Result<Page<Project>> {
        let select = tx.select::<project::Entity>().filter(filter.condition(
            tx,
            project::Column::Id,
            None,
            Some(project::Column::CreatedBy),
        ));
        let rows = keyset_in(select, project::Column::Id, page, order)
            .all(tx.conn())
            .await?;
        Page::from_overfetch(rows, page).try_map(from_row)
    }

    /// How many projects `filter` lets through (every page of [`Self::list`]).
    pub async fn count(&self, tx: &TenantTx, filter: &ListFilter) -> Result<u64> {
        Ok(tx
            .select::<project::Entity>()
            .filter(filter.condition(
                tx,
                project::Column::Id,
                None,
                Some(project::Column::CreatedBy),
            ))
            .count(tx.conn())
            .await?)
    }

    /// The projects among `ids` that `filter` lets through (for batched loading).
    pub async fn by_ids(
        &self,
        tx: &TenantTx,
        filter: &ListFilter,
        ids: &[ProjectId],
    ) -> Result<Vec<Project>> {
        tx.select::<project::Entity>()
            .filter(project::Column::Id.is_in(ids.iter().copied()))
            .filter(filter.condition(
                tx,
                project::Column::Id,
                None,
                Some(project::Column::CreatedBy),
            ))
            .all(tx.conn())
            .await?
            .into_iter()
            .map(from_row)
            .collect()
    }

    /// Renames, re-describes, archives or restores a project.
    #[tracing::instrument(name = "projects.update", skip_all, err(level = "debug"))]
    pub async fn update(
        &self,
        tx: &TenantTx,
        permit: &Permit,
        id: ProjectId,
        change: UpdateProject,
    ) -> Result<Project> {
        permit.ensure(
            tx,
            ResourceType::Project,
            Action::Update,
            Some(id.as_uuid()),
        )?;
        let row = find_project(tx, id).await?;
        let mut event = NewEvent::new("project.updated", "project", Some(id.as_uuid()));
        let mut active: project::ActiveModel = row.clone().into();
        if let Some(name) = change.name {
            let name = text("name", &name, 1, 200)?;
            event = event.change("name", Some(row.name.clone()), Some(name.clone()));
            active.name = Set(name);
        }
        if let Some(description) = change.description {
            let description = text("description", &description, 0, 10_000)?;
            event = event.change(
                "description",
                Some(row.description.clone()),
                Some(description.clone()),
            );
            active.description = Set(description);
        }
        if let Some(archived) = change.archived {
            event = event.change("archived", Some(row.archived), Some(archived));
            active.archived = Set(archived);
        }
        if let Some(required) = change.required_approvals {
            let required = approvals(required)?;
            event = event.change(
                "required_approvals",
                Some(row.required_approvals),
                Some(required),
            );
            active.required_approvals = Set(required);
        }
        active.updated_at = Set(self.clock.now());
        // The primary key is (organization_id, id): the update cannot leave the organization.
        let updated = project::Entity::update(active).exec(tx.conn()).await?;
        tx.remember(ProjectRow(updated.clone()));
        self.audit.record(tx, event).await?;
        from_row(updated)
    }
}

/// The project row last read or written in a transaction: a mutation reads its project
/// for the permission decision and again to change it, a document step for its rules;
/// the second read is this.
#[derive(Debug, Clone)]
struct ProjectRow(project::Model);

/// The distinct approvals a project's documents need, as stored (a negative count is
/// corrupt data, never read as 1).
pub(crate) fn required_approvals(row: &project::Model) -> Result<u32> {
    crate::documents::counter("projects.required_approvals", row.required_approvals)
}

pub(crate) async fn find_project(tx: &TenantTx, id: ProjectId) -> Result<project::Model> {
    if let Some(ProjectRow(row)) = tx.remembered::<ProjectRow>()
        && row.id == id.as_uuid()
    {
        return Ok(row);
    }
    let row = tx
        .select::<project::Entity>()
        .filter(project::Column::Id.eq(id))
        .one(tx.conn())
        .await?
        .ok_or(Error::NotFound { entity: "project" })?;
    tx.remember(ProjectRow(row.clone()));
    Ok(row)
}

/// A project whose reading is not yet permitted (see [`ProjectService::find_unchecked`]).
#[derive(Debug)]
pub struct UncheckedProject(Project);

impl UncheckedProject {
    /// Who created it (owner-based rules decide on it).
    pub fn owner(&self) -> UserId {
        self.0.created_by
    }

    /// The project, for a caller permitted to read it.
    pub fn checked(self, tx: &TenantTx, permit: &Permit) -> Result<Project> {
        permit.ensure(
            tx,
            ResourceType::Project,
            Action::Read,
            Some(self.0.id.as_uuid()),
        )?;
        Ok(self.0)
    }
}
