//! `node(id:)` and `nodes(ids:)`. Each id is resolved inside its own organization's
//! membership-checked transaction; a record the caller may not see answers `null`,
//! exactly like one that does not exist.

use crate::context::ContextExt;
use crate::error::{ApiError, GqlResult, ResultExt};
use crate::graphql::ids::{GlobalId, NodeKind};
use crate::graphql::types::audit::AuditEvent;
use crate::graphql::types::{ApiKey, Invitation, Membership, Node, Organization, User};
use async_graphql::{Context, ID, Object};
use authz::{Action, Resource, ResourceType};
use kernel::{ApiKeyId, InvitationId, MembershipId, OrgId, Principal, UserId};

/// Most ids one `nodes` call may name.
const MAX_NODES: usize = 100;

#[derive(Default)]
pub struct NodeQuery;

#[Object]
impl NodeQuery {
    /// Fetches any object by its global id; null when it does not exist or is not the
    /// caller's to see.
    async fn node(&self, ctx: &Context<'_>, id: ID) -> GqlResult<Option<Node>> {
        let id = GlobalId::decode("id", &id).gql()?;
        resolve(ctx, id).await
    }

    /// Fetches several objects by global id, in the order asked (at most 100).
    async fn nodes(&self, ctx: &Context<'_>, ids: Vec<ID>) -> GqlResult<Vec<Option<Node>>> {
        if ids.len() > MAX_NODES {
            return Err(
                ApiError::bad_input("ids", format!("at most {MAX_NODES} ids per call")).into(),
            );
        }
        let decoded = ids
            .iter()
            .map(|id| GlobalId::decode("ids", id))
            .collect::<Result<Vec<_>, _>>()
            .gql()?;
        let mut nodes = Vec::with_capacity(decoded.len());
        for id in decoded {
            nodes.push(resolve(ctx, id).await?);
        }
        Ok(nodes)
    }
}

async fn resolve(ctx: &Context<'_>, id: GlobalId) -> GqlResult<Option<Node>> {
    // Entering the organization verifies the caller; only one's own user node does not.
    let claimed = ctx.request().caller().gql()?.claimed();
    let tenancy = &ctx.state().tenancy;
    let org = match (id.kind, id.org) {
        (NodeKind::Organization, _) => OrgId::from_uuid(id.id),
        (NodeKind::User, _) => {
            let user = UserId::from_uuid(id.id);
            if claimed == Principal::User(user) && ctx.principal().await? == claimed {
                return Ok(Some(Node::User(User::own(tenancy.user(user).await.gql()?))));
            }
            // Another person is visible only through the active organization they share.
            let Some(org) = ctx.request().org else {
                return Ok(None);
            };
            let Some((tx, actor)) = ctx.enter_read_if_member(org).await? else {
                return Ok(None);
            };
            let permit = ctx
                .permit(
                    &tx,
                    &actor,
                    Resource::of_type(ResourceType::Member),
                    Action::Read,
                )
                .await?;
            let found = tenancy.membership_of(&tx, &permit, user).await.gql()?;
            return Ok(found.map(|(_, user)| Node::User(User::in_org(user, org))));
        }
        (_, Some(org)) => org,
        (_, None) => return Ok(None),
    };
    let Some((tx, actor)) = ctx.enter_read_if_member(org).await? else {
        return Ok(None);
    };
    if id.kind == NodeKind::Project {
        return project_node(ctx, &tx, &actor, id.project_id()?).await;
    }
    if id.kind == NodeKind::Document {
        return document_node(ctx, &tx, &actor, id.document_id()?).await;
    }
    if id.kind == NodeKind::AuditEvent {
        let permit = ctx
            .permit(
                &tx,
                &actor,
                Resource::of_type(ResourceType::Audit),
                Action::Read,
            )
            .await?;
        return match tenancy.audit_event(&tx, &permit, id.id).await {
            Ok(event) => Ok(Some(Node::AuditEvent(Box::new(AuditEvent::of(org, event))))),
            Err(tenancy::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e).gql(),
        };
    }
    let typ = match id.kind {
        NodeKind::Organization => ResourceType::Organization,
        NodeKind::Membership => ResourceType::Member,
        NodeKind::Invitation => ResourceType::Invitation,
        NodeKind::ApiKey => ResourceType::ApiKey,
        NodeKind::User
        | NodeKind::Project
        | NodeKind::Grant
        | NodeKind::Document
        | NodeKind::DenyRule
        | NodeKind::DataExport
        | NodeKind::AuditEvent
        | NodeKind::WebhookEndpoint
        | NodeKind::WebhookDelivery => {
            return Ok(None);
        }
    };
    let permit = ctx
        .permit(&tx, &actor, Resource::record(typ, id.id), Action::Read)
        .await?;
    let node = match id.kind {
        NodeKind::Organization => tenancy
            .organization(&tx, &permit)
            .await
            .map(|o| Node::Organization(Organization(o))),
        NodeKind::Membership => tenancy
            .member(&tx, &permit, MembershipId::from_uuid(id.id))
            .await
            .map(|(membership, user)| Node::Membership(Membership { membership, user })),
        NodeKind::Invitation => tenancy
            .invitation(&tx, &permit, InvitationId::from_uuid(id.id))
            .await
            .map(|i| Node::Invitation(Invitation(i))),
        NodeKind::ApiKey => tenancy
            .api_key(&tx, &permit, ApiKeyId::from_uuid(id.id))
            .await
            .map(|k| Node::ApiKey(ApiKey(k))),
        NodeKind::User
        | NodeKind::Project
        | NodeKind::Grant
        | NodeKind::Document
        | NodeKind::DenyRule
        | NodeKind::DataExport
        | NodeKind::AuditEvent
        | NodeKind::WebhookEndpoint
        | NodeKind::WebhookDelivery => {
            return Ok(None);
        }
    };
    match node {
        Ok(node) => Ok(Some(node)),
        Err(tenancy::Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(e).gql(),
    }
}

/// A project the caller may not read answers `null`, like a missing one: a grant on one
/// record reveals nothing of its siblings.
async fn project_node(
    ctx: &Context<'_>,
    tx: &kernel::TenantTx,
    actor: &tenancy::Actor,
    id: kernel::ProjectId,
) -> GqlResult<Option<Node>> {
    let state = ctx.state();
    // Read once: its owner decides the permission, the permit hands it out.
    let project = match state.projects.find_unchecked(tx, id).await {
        Ok(project) => project,
        Err(core_domain::Error::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(e).gql(),
    };
    let resource = Resource::record(ResourceType::Project, id.as_uuid())
        .with_owner(authz::Subject::User(project.owner()));
    let permit = match state
        .authz
        .check(tx, actor.principal, resource, Action::Read)
        .await
    {
        Ok(permit) => permit,
        Err(authz::Error::Denied { .. }) => return Ok(None),
        Err(e) => return Err(e).gql(),
    };
    let project = project.checked(tx, &permit).gql()?;
    Ok(Some(Node::Project(crate::graphql::types::Project(project))))
}

/// A document the caller may not read answers `null`, like a missing one.
async fn document_node(
    ctx: &Context<'_>,
    tx: &kernel::TenantTx,
    actor: &tenancy::Actor,
    id: kernel::DocumentId,
) -> GqlResult<Option<Node>> {
    use crate::graphql::record_access::DocumentAccess;
    let unit = crate::context::Unit {
        tx,
        actor,
        state: ctx.state(),
    };
    let DocumentAccess::Granted(permit) = unit.document_access(id, Action::Read).await.gql()?
    else {
        return Ok(None);
    };
    let document = ctx.state().documents.get(tx, &permit, id).await.gql()?;
    Ok(Some(Node::Document(crate::graphql::types::Document(
        document,
    ))))
}
