//! `projects`: the projects of the active organization the caller may read.

use crate::context::ContextExt;
use crate::error::{GqlResult, ResultExt};
use crate::graphql::connection::{connection, page_request};
use crate::graphql::types::Project;
use async_graphql::connection::Connection;
use async_graphql::{Context, Object};
use authz::{Action, ResourceType};
use kernel::TxMode;

#[derive(Default)]
pub struct ProjectsQuery;

#[Object]
impl ProjectsQuery {
    /// Projects of the active organization the caller may read, oldest first: all of
    /// them for organization-wide roles, otherwise those granted (directly or through a
    /// role) and those the caller owns. Filtered in SQL, so pages stay exact.
    async fn projects(
        &self,
        ctx: &Context<'_>,
        after: Option<String>,
        before: Option<String>,
        first: Option<i32>,
        last: Option<i32>,
    ) -> GqlResult<Connection<String, Project>> {
        let page = page_request(after, before, first, last).gql()?;
        let (tx, actor) = ctx.enter_active(TxMode::Read).await?;
        let state = ctx.state();
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
        let projects = state.projects.list(&tx, &filter, &page).await.gql()?;
        Ok(connection(projects, |p| p.id, Project))
    }
}
