//! Mutations.

mod access;
mod api_key;
mod audit;
mod auth;
mod billing;
mod document;
mod member;
mod organization;
mod project;
mod usage;

/// The root mutation type.
#[derive(async_graphql::MergedObject, Default)]
pub struct Mutation(
    auth::AuthMutation,
    organization::OrganizationMutation,
    member::MemberMutation,
    api_key::ApiKeyMutation,
    access::AccessMutation,
    project::ProjectMutation,
    document::DocumentMutation,
    audit::AuditMutation,
    billing::BillingMutation,
    usage::UsageMutation,
);

use crate::context::ContextExt;
use crate::error::{GqlResult, ResultExt};
use crate::graphql::ids::GlobalId;
use crate::unit::UnitTx;
use kernel::TxMode;
use tenancy::Actor;

/// Opens the transaction of the organization a record id belongs to. An id of an
/// organization the caller is not a member of, or one that disagrees with
/// `X-Organization-Id`, is `NOT_FOUND`: the same answer as for an id that never existed.
pub(crate) async fn enter_record_org(
    ctx: &async_graphql::Context<'_>,
    id: &GlobalId,
    mode: TxMode,
) -> GqlResult<(UnitTx, Actor)> {
    let not_found = || tenancy::Error::NotFound { entity: "record" };
    let org = id.org.ok_or_else(not_found).gql()?;
    if ctx.request().org.is_some_and(|active| active != org) {
        return Err(not_found()).gql();
    }
    ctx.enter_if_member(org, mode)
        .await?
        .ok_or_else(not_found)
        .gql()
}
