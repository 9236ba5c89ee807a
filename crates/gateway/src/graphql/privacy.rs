//! Data processing agreements through GraphQL: owners and admins read the current one
//! and their organization's acceptance; owners accept it.

use crate::context::{Where, read, write};
use crate::error::GqlResult;
use crate::graphql::ids::{GlobalId, NodeKind};
use async_graphql::{Context, ID, InputObject, Object, SimpleObject};
use authz::{Action, Resource, ResourceType};
use chrono::{DateTime, Utc};

/// A subprocessor the agreement lists.
#[derive(SimpleObject)]
pub struct Subprocessor {
    /// Who.
    pub name: String,
    /// For what.
    pub purpose: String,
    /// Where it processes.
    pub location: String,
}

/// An organization's acceptance of an agreement.
#[derive(SimpleObject)]
pub struct DpaAcceptance {
    /// The version accepted.
    pub version: String,
    /// SHA-256 of the accepted text.
    pub sha256: String,
    /// The owner who accepted (a User id).
    pub accepted_by: ID,
    /// When.
    pub accepted_at: DateTime<Utc>,
}

/// The current data processing agreement (GDPR Art. 28) and the organization's
/// acceptance.
#[derive(SimpleObject)]
pub struct DataProcessingAgreement {
    /// Its version label.
    pub version: String,
    /// The text.
    pub text: String,
    /// SHA-256 of the text.
    pub sha256: String,
    /// When it was published.
    pub published_at: DateTime<Utc>,
    /// The subprocessors it lists.
    pub subprocessors: Vec<Subprocessor>,
    /// The organization's latest acceptance (of this or an earlier version).
    pub acceptance: Option<DpaAcceptance>,
    /// Whether this version is the one accepted.
    pub accepted: bool,
}

/// Input of `acceptDataProcessingAgreement`.
#[derive(InputObject)]
pub struct AcceptDataProcessingAgreementInput {
    /// The version read and accepted (must be the current one).
    pub version: String,
}

/// What `acceptDataProcessingAgreement` did.
#[derive(SimpleObject)]
pub struct AcceptDataProcessingAgreementPayload {
    /// The acceptance.
    pub acceptance: DpaAcceptance,
}

impl From<tenancy::dpa::DpaAcceptance> for DpaAcceptance {
    fn from(a: tenancy::dpa::DpaAcceptance) -> Self {
        Self {
            version: a.version,
            sha256: a.sha256,
            accepted_by: GlobalId::global(NodeKind::User, a.accepted_by.as_uuid()),
            accepted_at: a.accepted_at,
        }
    }
}

/// Owners and admins (who may update the organization) read the agreement.
fn on_organization() -> Resource {
    Resource::of_type(ResourceType::Organization)
}

#[derive(Default)]
pub struct PrivacyQuery;

#[Object]
impl PrivacyQuery {
    /// The current data processing agreement with the active organization's acceptance;
    /// null while none is published. Owners and admins.
    async fn data_processing_agreement(
        &self,
        ctx: &Context<'_>,
    ) -> GqlResult<Option<DataProcessingAgreement>> {
        read(ctx, Where::Active, async |unit| {
            unit.permit(on_organization(), Action::Update).await?;
            let tenancy = &unit.state.tenancy;
            let Some(current) = tenancy.current_dpa(unit.tx.conn()).await? else {
                return Ok(None);
            };
            let acceptance = tenancy.dpa_acceptance(unit.tx).await?;
            Ok(Some(DataProcessingAgreement {
                accepted: acceptance
                    .as_ref()
                    .is_some_and(|a| a.version == current.version),
                version: current.version,
                text: current.text,
                sha256: current.sha256,
                published_at: current.published_at,
                subprocessors: current
                    .subprocessors
                    .into_iter()
                    .map(|s| Subprocessor {
                        name: s.name,
                        purpose: s.purpose,
                        location: s.location,
                    })
                    .collect(),
                acceptance: acceptance.map(Into::into),
            }))
        })
        .await
    }
}

#[derive(Default)]
pub struct PrivacyMutation;

#[Object]
impl PrivacyMutation {
    /// Accepts the current data processing agreement for the active organization
    /// (owners): who, which text (by hash) and when are recorded, and audited with the
    /// address. Until then the organization cannot start a paid plan or create API keys
    /// (`FORBIDDEN`, `reason = "DPA_NOT_ACCEPTED"`).
    async fn accept_data_processing_agreement(
        &self,
        ctx: &Context<'_>,
        input: AcceptDataProcessingAgreementInput,
    ) -> GqlResult<AcceptDataProcessingAgreementPayload> {
        write(ctx, Where::Active, async |unit| {
            let tenancy = &unit.state.tenancy;
            let acceptance = tenancy
                .accept_dpa(unit.tx, unit.actor, &input.version)
                .await?;
            Ok(AcceptDataProcessingAgreementPayload {
                acceptance: acceptance.into(),
            })
        })
        .await
    }
}
