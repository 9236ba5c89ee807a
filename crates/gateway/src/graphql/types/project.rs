//! Projects.

use crate::context::ContextExt;
use crate::error::{GqlResult, ResultExt};
use crate::graphql::connection::{connection, page_request};
use crate::graphql::ids::{GlobalId, NodeKind};
use async_graphql::connection::Connection;
use async_graphql::{Context, ID, Object, SimpleObject};
use authz::{Action, Resource, ResourceType};
use chrono::{DateTime, Utc};
use kernel::OrgId;
use uuid::Uuid;

/// A project of an organization. Visible to those who may read it: organization-wide
/// roles, grants on it, its owner.
pub struct Project(pub core_domain::Project);

#[Object]
impl Project {
    /// Global id.
    pub async fn id(&self) -> ID {
        GlobalId::scoped(NodeKind::Project, self.0.org_id, self.0.id)
    }

    /// Name.
    async fn name(&self) -> &str {
        &self.0.name
    }

    /// Description (Markdown).
    async fn description(&self) -> &str {
        &self.0.description
    }

    /// Archived projects are kept for reference.
    async fn archived(&self) -> bool {
        self.0.archived
    }

    /// Distinct approvals a document of this project needs before it counts as
    /// approved.
    async fn required_approvals(&self) -> u32 {
        self.0.required_approvals
    }

    /// When it was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    /// The project's members and their project-level roles: who holds `project_admin`,
    /// `editor`, `reviewer` or `reader` on it (its documents inherit them). Null with
    /// `FORBIDDEN` for those who may not read the project's grants.
    async fn grants(
        &self,
        ctx: &Context<'_>,
        after: Option<String>,
        before: Option<String>,
        first: Option<i32>,
        last: Option<i32>,
    ) -> GqlResult<Option<Connection<String, Grant>>> {
        let page = page_request(after, before, first, last).gql()?;
        let record = (ResourceType::Project, self.0.id.as_uuid());
        grants_on(ctx, self.0.org_id, self.0.id, record, page)
            .await
            .map(Some)
    }
}

/// The grants on one record of `project` (the project itself or one of its documents),
/// for those who may read the project's grants.
pub async fn grants_on(
    ctx: &Context<'_>,
    org: OrgId,
    project: kernel::ProjectId,
    (typ, id): (ResourceType, Uuid),
    page: kernel::PageRequest,
) -> GqlResult<Connection<String, Grant>> {
    // Boxed: async-graphql moves each field's future, as large as its type's largest
    // field, into a box of its own; unboxed, entering and checking here would make every
    // field of a project or a document (a title, a status) a 4 KB move.
    Box::pin(async move {
        let (tx, actor) = ctx.enter_read(org).await?;
        let on_grants = Resource::of_type(ResourceType::Grant)
            .with_parent(ResourceType::Project, project.as_uuid());
        ctx.permit(&tx, &actor, on_grants, Action::Read).await?;
        let grants = ctx
            .state()
            .authz
            .grants_on(&tx, typ, id, &page)
            .await
            .gql()?;
        Ok(connection(grants, |g| g.id, |g| Grant::new(g, org)))
    })
    .await
}

/// A grant of a relation on one record.
#[derive(SimpleObject)]
pub struct Grant {
    /// Global id (for `revokeAccess`).
    pub id: ID,
    /// `user:<uuid>`, `key:<uuid>` or `role:<name>`.
    pub subject: String,
    /// The relation: `project_admin`, `editor`, `reviewer` or `reader`.
    pub relation: String,
    /// The record's type.
    pub resource_type: String,
    /// The record's UUID.
    pub resource_id: String,
}

impl Grant {
    /// From the domain, in `org`.
    pub fn new(grant: authz::Grant, org: kernel::OrgId) -> Self {
        Self {
            id: GlobalId::scoped(NodeKind::Grant, org, grant.id),
            subject: grant.subject.as_policy(),
            relation: grant.relation,
            resource_type: grant.resource_type.as_str().to_owned(),
            resource_id: grant.resource_id.to_string(),
        }
    }
}
