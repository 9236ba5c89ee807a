//! `projects`: the projects of the active organization the caller may read.

use crate::context::{Where, read};
use crate::error::{GqlResult, ResultExt};
use crate::graphql::connection::{ListOrder, connection_with, page_request};
use crate::graphql::types::Project;
use async_graphql::connection::Connection;
use async_graphql::{Context, Object};
use authz::{Action, ResourceType};

#[derive(Default)]
pub struct ProjectsQuery;

#[Object]
impl ProjectsQuery {
    /// Projects of the active organization the caller may read, oldest first unless
    /// `orderBy` says `NEWEST_FIRST`: all of them for organization-wide roles, otherwise those granted (directly or through a
    /// role) and those the caller owns. Filtered in SQL, so pages stay exact.
    async fn projects(
        &self,
        ctx: &Context<'_>,
        #[graphql(default)] order_by: ListOrder,
        after: Option<String>,
        before: Option<String>,
        first: Option<i32>,
        last: Option<i32>,
    ) -> GqlResult<Connection<String, Project, ProjectList>> {
        let page = page_request(after, before, first, last).gql()?;
        read(ctx, Where::Active, async |unit| {
            let (tx, state) = (unit.tx, unit.state);
            let caller = unit.actor.principal.into();
            let filter = state
                .authz
                .list_filter(tx, &caller, ResourceType::Project, Action::Read, None)
                .await?;
            let projects = state
                .projects
                .list(tx, &filter, (&page, order_by.into()))
                .await?;
            Ok(connection_with(
                projects,
                |p| p.id,
                Project,
                ProjectList { filter },
            ))
        })
        .await
    }
}

/// What the project list says of itself as a whole.
pub struct ProjectList {
    /// The caller's read filter the list was read with.
    filter: authz::ListFilter,
}

#[Object]
impl ProjectList {
    /// How many projects the list holds across all its pages (those the caller may
    /// read). Counted only when asked for: one statement, in the operation's unit.
    async fn total_count(&self, ctx: &Context<'_>) -> GqlResult<i64> {
        read(ctx, Where::Active, async |unit| {
            let count = unit.state.projects.count(unit.tx, &self.filter).await?;
            Ok(i64::try_from(count).unwrap_or(i64::MAX))
        })
        .await
    }
}
