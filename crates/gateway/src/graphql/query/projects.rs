//! `projects`: the projects of the active organization the caller may read.

use crate::context::{Where, read};
use crate::error::{GqlResult, ResultExt};
use crate::graphql::connection::{ListOrder, connection, page_request};
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
    ) -> GqlResult<Connection<String, Project>> {
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
            Ok(connection(projects, |p| p.id, Project))
        })
        .await
    }
}
