//! Creating and changing projects.

use crate::context::{Where, write};
use crate::error::{GqlResult, ResultExt};
use crate::graphql::ids::{GlobalId, NodeKind};
use crate::graphql::types::Project;
use crate::standing::WriteClass;

use async_graphql::{Context, ID, InputObject, Object, SimpleObject};
use authz::{Action, Resource, ResourceType};

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
        write(ctx, Where::Active, WriteClass::Ordinary, async |unit| {
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
        write(
            ctx,
            Where::RecordOf(&id),
            WriteClass::Ordinary,
            async |unit| {
                let resource = unit.project_resource(id.project_id()?).await?;
                let permit = unit.permit(resource, Action::Update).await?;
                let projects = &unit.state.projects;
                let project = projects
                    .update(unit.tx, &permit, id.project_id()?, change)
                    .await?;
                Ok(ProjectPayload {
                    project: Project(project),
                })
            },
        )
        .await
    }
}
