//! `viewerCan` and `explainAccess`: access decisions for UIs and for admins.

use crate::context::{Where, read};
use crate::error::{ApiError, GqlResult, ResultExt};
use crate::graphql::ids::GlobalId;
use crate::graphql::types::access::{AccessExplanation, Action, ResourceType};
use async_graphql::{Context, ID, Object};
use authz::Resource;

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
        read(ctx, Where::Active, async |unit| {
            let caller = unit.actor.principal.into();
            let authz = &unit.state.authz;
            Ok(authz
                .can(unit.tx, &caller, &resource, action.into())
                .await?)
        })
        .await
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
        read(ctx, Where::Active, async |unit| {
            let on_roles = Resource::of_type(authz::ResourceType::Role);
            unit.permit(on_roles, authz::Action::Read).await?;
            let authz = &unit.state.authz;
            let explanation = authz
                .explain(unit.tx, &subject, &resource, action.into())
                .await?;
            Ok(explanation.into())
        })
        .await
    }
}
