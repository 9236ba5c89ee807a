//! The permission resource of a project, shared by queries and mutations.

use crate::context::ContextExt;
use crate::error::{GqlResult, ResultExt};
use async_graphql::Context;
use authz::{Resource, ResourceType, Subject};
use kernel::TenantTx;
use uuid::Uuid;

/// The project as a resource: its owner holds `record_owner` on it. An unknown id is
/// `NOT_FOUND` before any decision (it is the caller's own organization).
pub async fn project_resource(ctx: &Context<'_>, tx: &TenantTx, id: Uuid) -> GqlResult<Resource> {
    let owner = ctx.state().projects.owner_of(tx, id).await.gql()?;
    Ok(Resource::record(ResourceType::Project, id).with_owner(Subject::User(owner)))
}
