//! `viewerCan` and `explainAccess`: access decisions for UIs and for admins.

use crate::context::ContextExt;
use crate::error::{ApiError, GqlResult, ResultExt};
use crate::graphql::ids::GlobalId;
use crate::graphql::types::access::{AccessExplanation, Action, ResourceType};
use async_graphql::{Context, ID, Object};
use authz::Resource;
use kernel::TxMode;

#[derive(Default)]
pub struct AccessQuery;

/// The resource named by a type and, optionally, a record's global id.
fn resource(typ: ResourceType, id: Option<&ID>) -> Result<Resource, ApiError> {
    let typ: authz::ResourceType = typ.into();
    match id {
        None => Ok(Resource::of_type(typ)),
        Some(id) => Ok(Resource::record(
            typ,
            GlobalId::decode("resourceId", id)?.id,
        )),
    }
}

#[Object]
impl AccessQuery {
    /// Whether the caller may do `action` on `resourceType` (one record with
    /// `resourceId`) in the active organization: for hiding buttons, not for security.
    async fn viewer_can(
        &self,
        ctx: &Context<'_>,
        action: Action,
        resource_type: ResourceType,
        resource_id: Option<ID>,
    ) -> GqlResult<bool> {
        let resource = resource(resource_type, resource_id.as_ref()).gql()?;
        let (tx, actor) = ctx.enter_active(TxMode::Read).await?;
        ctx.state()
            .authz
            .can(&tx, &actor.principal.into(), &resource, action.into())
            .await
            .gql()
    }

    /// Whether `subject` (a User or ApiKey id) may do `action` on the resource in the
    /// active organization, and which rules decided it. For those who may read roles.
    async fn explain_access(
        &self,
        ctx: &Context<'_>,
        subject: ID,
        action: Action,
        resource_type: ResourceType,
        resource_id: Option<ID>,
    ) -> GqlResult<AccessExplanation> {
        let subject = GlobalId::subject("subject", &subject).gql()?;
        let resource = resource(resource_type, resource_id.as_ref()).gql()?;
        let (tx, actor) = ctx.enter_active(TxMode::Read).await?;
        let authz = &ctx.state().authz;
        ctx.permit(
            &tx,
            &actor,
            Resource::of_type(authz::ResourceType::Role),
            authz::Action::Read,
        )
        .await?;
        let explanation = authz
            .explain(&tx, &subject, &resource, action.into())
            .await
            .gql()?;
        Ok(explanation.into())
    }
}
