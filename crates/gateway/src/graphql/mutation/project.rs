//! Creating and changing projects, and granting access to one record.

use crate::context::ContextExt;
use crate::error::{ApiError, GqlResult, ResultExt};
use crate::graphql::ids::{GlobalId, NodeKind};
use crate::graphql::mutation::enter_record_org;
use crate::graphql::projects::{grant_scope, project_resource};
use crate::graphql::types::Project;
use crate::graphql::types::project::Grant;
use async_graphql::{Context, ID, InputObject, Object, SimpleObject};
use authz::{Action, Resource, ResourceType, Subject};
use kernel::TxMode;

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
        let (tx, actor) = ctx.enter_active(TxMode::Write).await?;
        let permit = ctx
            .permit(
                &tx,
                &actor,
                Resource::of_type(ResourceType::Project),
                Action::Create,
            )
            .await?;
        let new = core_domain::NewProject {
            name: input.name,
            description: input.description,
            required_approvals: input.required_approvals,
        };
        let project = ctx.state().projects.create(&tx, &permit, new).await.gql()?;
        tx.commit().await.gql()?;
        Ok(ProjectPayload {
            project: Project(project),
        })
    }

    /// Renames, re-describes, archives or restores a project.
    async fn update_project(
        &self,
        ctx: &Context<'_>,
        input: UpdateProjectInput,
    ) -> GqlResult<ProjectPayload> {
        let id = GlobalId::expect("projectId", &input.project_id, NodeKind::Project).gql()?;
        let (tx, actor) = enter_record_org(ctx, &id, TxMode::Write).await?;
        let resource = project_resource(ctx, &tx, id.id).await?;
        let permit = ctx.permit(&tx, &actor, resource, Action::Update).await?;
        let change = core_domain::UpdateProject {
            name: input.name,
            description: input.description,
            archived: input.archived,
            required_approvals: input.required_approvals,
        };
        let project = ctx
            .state()
            .projects
            .update(&tx, &permit, id.id, change)
            .await
            .gql()?;
        tx.commit().await.gql()?;
        Ok(ProjectPayload {
            project: Project(project),
        })
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
        let (tx, actor) = enter_record_org(ctx, &id, TxMode::Write).await?;
        let (record, on_grants) = grant_scope(ctx, &tx, typ, id.id).await?;
        let permit = ctx.permit(&tx, &actor, on_grants, Action::Create).await?;
        let grant = ctx
            .state()
            .authz
            .grant(&tx, &permit, &subject, &record, &input.relation)
            .await
            .gql()?;
        tx.commit().await.gql()?;
        Ok(GrantPayload {
            grant: Grant::new(grant, actor.org_id),
        })
    }

    /// Revokes a grant; effective on the next request.
    async fn revoke_access(
        &self,
        ctx: &Context<'_>,
        input: RevokeAccessInput,
    ) -> GqlResult<GrantPayload> {
        let id = GlobalId::expect("grantId", &input.grant_id, NodeKind::Grant).gql()?;
        let (tx, actor) = enter_record_org(ctx, &id, TxMode::Write).await?;
        let authz = &ctx.state().authz;
        let grant = authz.find_grant(&tx, id.id).await.gql()?;
        let (_, on_grants) = grant_scope(ctx, &tx, grant.resource_type, grant.resource_id).await?;
        let permit = ctx.permit(&tx, &actor, on_grants, Action::Delete).await?;
        let revoked = authz.revoke(&tx, &permit, id.id).await.gql()?;
        tx.commit().await.gql()?;
        Ok(GrantPayload {
            grant: Grant::new(revoked, actor.org_id),
        })
    }
}
