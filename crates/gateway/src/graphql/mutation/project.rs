//! Creating and changing projects, and granting access to one record.

use crate::context::{Where, write};
use crate::error::{ApiError, GqlResult, ResultExt};
use crate::graphql::ids::{GlobalId, NodeKind};
use crate::graphql::types::Project;
use crate::graphql::types::project::Grant;
use async_graphql::{Context, ID, InputObject, Object, SimpleObject};
use authz::{Action, Resource, ResourceType, Subject};

#[derive(Default)]
pub struct ProjectMutation;

/// Input of `createProject`.
#[derive(InputObject)]
pub struct CreateProjectInput {
    /// 1 to 200 characters.
    pub name: String,
    /// Markdown, up to 10,000 characters.
    #[graphql(default)]
    pub description: String,
    /// Distinct approvals a document needs before it counts as approved (1 to 10;
    /// default 1).
    pub required_approvals: Option<u32>,
}

/// Input of `updateProject`; omitted fields stay as they are.
#[derive(InputObject)]
pub struct UpdateProjectInput {
    /// The project.
    pub project_id: ID,
    /// New name.
    pub name: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// Archive (true) or restore (false).
    pub archived: Option<bool>,
    /// Distinct approvals a document needs from now on (1 to 10).
    pub required_approvals: Option<u32>,
}

/// A project after a change.
#[derive(SimpleObject)]
pub struct ProjectPayload {
    /// The project.
    pub project: Project,
}

/// Input of `grantAccess`.
#[derive(InputObject)]
pub struct GrantAccessInput {
    /// The record (a Project or Document id).
    pub resource_id: ID,
    /// A User or ApiKey id; or leave it out and name a role.
    pub subject_id: Option<ID>,
    /// A role whose holders get the relation.
    pub role: Option<String>,
    /// `project_admin`, `editor`, `reviewer` or `reader`.
    pub relation: String,
}

/// Input of `revokeAccess`.
#[derive(InputObject)]
pub struct RevokeAccessInput {
    /// The grant.
    pub grant_id: ID,
}

/// A grant after a change.
#[derive(SimpleObject)]
pub struct GrantPayload {
    /// The grant.
    pub grant: Grant,
}

#[Object]
impl ProjectMutation {
    /// Creates a project in the active organization; the caller owns it.
    async fn create_project(
        &self,
        ctx: &Context<'_>,
        input: CreateProjectInput,
    ) -> GqlResult<ProjectPayload> {
        let new = core_domain::NewProject {
            name: input.name,
            description: input.description,
            required_approvals: input.required_approvals,
        };
        write(ctx, Where::Active, async |unit| {
            let on_projects = Resource::of_type(ResourceType::Project);
            let permit = unit.permit(on_projects, Action::Create).await?;
            let project = unit.state.projects.create(unit.tx, &permit, new).await?;
            Ok(ProjectPayload {
                project: Project(project),
            })
        })
        .await
    }

    /// Renames, re-describes, archives or restores a project.
    async fn update_project(
        &self,
        ctx: &Context<'_>,
        input: UpdateProjectInput,
    ) -> GqlResult<ProjectPayload> {
        let id = GlobalId::expect("projectId", &input.project_id, NodeKind::Project).gql()?;
        let change = core_domain::UpdateProject {
            name: input.name,
            description: input.description,
            archived: input.archived,
            required_approvals: input.required_approvals,
        };
        write(ctx, Where::RecordOf(&id), async |unit| {
            let resource = unit.project_resource(id.id).await?;
            let permit = unit.permit(resource, Action::Update).await?;
            let projects = &unit.state.projects;
            let project = projects.update(unit.tx, &permit, id.id, change).await?;
            Ok(ProjectPayload {
                project: Project(project),
            })
        })
        .await
    }

    /// Grants a relation on one project to a user, an API key or a role's holders. The
    /// caller must hold everything the relation gives.
    async fn grant_access(
        &self,
        ctx: &Context<'_>,
        input: GrantAccessInput,
    ) -> GqlResult<GrantPayload> {
        let id = GlobalId::decode("resourceId", &input.resource_id).gql()?;
        let typ = match id.kind {
            NodeKind::Project => ResourceType::Project,
            NodeKind::Document => ResourceType::Document,
            _ => {
                return Err(ApiError::bad_input(
                    "resourceId",
                    "expected the id of a Project or a Document",
                )
                .into());
            }
        };
        let subject = match (&input.subject_id, &input.role) {
            (Some(subject), None) => GlobalId::subject("subjectId", subject).gql()?,
            (None, Some(role)) => Subject::Role(role.clone()),
            _ => {
                return Err(
                    ApiError::bad_input("subjectId", "name either a subject or a role").into(),
                );
            }
        };
        write(ctx, Where::RecordOf(&id), async |unit| {
            let (record, on_grants) = unit.grant_scope(typ, id.id).await?;
            let permit = unit.permit(on_grants, Action::Create).await?;
            let grant = unit
                .state
                .authz
                .grant(unit.tx, &permit, &subject, &record, &input.relation)
                .await?;
            Ok(GrantPayload {
                grant: Grant::new(grant, unit.actor.org_id),
            })
        })
        .await
    }

    /// Revokes a grant; effective on the next request.
    async fn revoke_access(
        &self,
        ctx: &Context<'_>,
        input: RevokeAccessInput,
    ) -> GqlResult<GrantPayload> {
        let id = GlobalId::expect("grantId", &input.grant_id, NodeKind::Grant).gql()?;
        write(ctx, Where::RecordOf(&id), async |unit| {
            let authz = &unit.state.authz;
            let grant = authz.find_grant(unit.tx, id.id).await?;
            let (_, on_grants) = unit
                .grant_scope(grant.resource_type, grant.resource_id)
                .await?;
            let permit = unit.permit(on_grants, Action::Delete).await?;
            let revoked = authz.revoke(unit.tx, &permit, id.id).await?;
            Ok(GrantPayload {
                grant: Grant::new(revoked, unit.actor.org_id),
            })
        })
        .await
    }
}
