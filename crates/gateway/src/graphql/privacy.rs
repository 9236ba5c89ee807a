//! Data processing agreements through GraphQL: owners and admins read the current one
//! and their organization's acceptance; owners accept it.

use crate::context::{ContextExt, Where, read, write};
use crate::error::{GqlResult, ResultExt};
use crate::graphql::connection::{connection, page_request};
use crate::graphql::ids::{GlobalId, NodeKind};
use crate::standing::WriteClass;
use async_graphql::connection::Connection;
use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject};
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

/// What a data export holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub enum DataExportScope {
    /// Everything held about the caller, across organizations.
    Person,
    /// Every row of the active organization (owners).
    Organization,
}

/// Where a data export is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub enum DataExportStatus {
    /// Being prepared.
    Pending,
    /// Ready to download at `downloadUrl` until `expiresAt`.
    Ready,
    /// Preparing it failed; ask for a new one.
    Failed,
}

/// An export of personal or organization data (GDPR Art. 15 and 20): a zip of one
/// NDJSON file per table and a `manifest.json` (table, rows, sha256).
pub struct DataExport(tenancy::DataExport);

#[Object]
impl DataExport {
    /// Its id.
    async fn id(&self) -> ID {
        GlobalId::global(NodeKind::DataExport, self.0.id)
    }

    /// What it holds.
    async fn scope(&self) -> DataExportScope {
        match self.0.scope {
            tenancy::ExportScope::Person => DataExportScope::Person,
            tenancy::ExportScope::Organization => DataExportScope::Organization,
        }
    }

    /// Where it is.
    async fn status(&self) -> DataExportStatus {
        match self.0.status {
            tenancy::ExportStatus::Pending => DataExportStatus::Pending,
            tenancy::ExportStatus::Ready => DataExportStatus::Ready,
            tenancy::ExportStatus::Failed => DataExportStatus::Failed,
        }
    }

    /// When it was asked for.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    /// When it was ready (or failed).
    async fn completed_at(&self) -> Option<DateTime<Utc>> {
        self.0.completed_at
    }

    /// When the archive is deleted.
    async fn expires_at(&self) -> DateTime<Utc> {
        self.0.expires_at
    }

    /// Once ready: where to `GET` it, with the same credentials (only whoever asked may).
    async fn download_url(&self) -> Option<String> {
        (self.0.status == tenancy::ExportStatus::Ready).then(|| format!("/exports/{}", self.0.id))
    }

    /// Once ready: the archive's SHA-256 (hex).
    async fn sha256(&self) -> Option<&str> {
        self.0.sha256.as_deref()
    }

    /// Once ready: the archive's size in bytes.
    async fn size_bytes(&self) -> Option<i64> {
        self.0.size_bytes
    }
}

/// Input of `requestDataExport`.
#[derive(InputObject)]
pub struct RequestDataExportInput {
    /// `PERSON` (the caller) or `ORGANIZATION` (the active one; owners).
    pub scope: DataExportScope,
}

/// Result of `requestDataExport`.
#[derive(SimpleObject)]
pub struct RequestDataExportPayload {
    /// The export, `PENDING` until prepared.
    pub data_export: DataExport,
}

#[derive(Default)]
pub struct PrivacyQuery;

#[Object]
impl PrivacyQuery {
    /// The data exports the caller asked for (of either scope), oldest first.
    async fn data_exports(
        &self,
        ctx: &Context<'_>,
        after: Option<String>,
        before: Option<String>,
        first: Option<i32>,
        last: Option<i32>,
    ) -> GqlResult<Connection<String, DataExport>> {
        let page = page_request(after, before, first, last).gql()?;
        let user = ctx.user().await?;
        let exports = ctx
            .state()
            .tenancy
            .data_exports_of(user, &page)
            .await
            .gql()?;
        Ok(connection(exports, |e| e.id, DataExport))
    }

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
    /// Asks for an export, prepared in the background: `PERSON`, everything held about
    /// the caller (account, sessions with addresses, memberships, what they authored,
    /// their audit events decrypted); `ORGANIZATION`, every row of the active
    /// organization in every table (owners; also the hand-back when leaving). One of each
    /// at a time (`CONFLICT` while one is pending). Download it from `downloadUrl` with
    /// the same credentials until `expiresAt` (`DATA_EXPORT_TTL_HOURS`, 24). Asking and
    /// downloading are audited.
    async fn request_data_export(
        &self,
        ctx: &Context<'_>,
        input: RequestDataExportInput,
    ) -> GqlResult<RequestDataExportPayload> {
        let export = match input.scope {
            DataExportScope::Person => {
                let user = ctx.user().await?;
                ctx.state()
                    .tenancy
                    .request_person_export(user)
                    .await
                    .gql()?
            }
            DataExportScope::Organization => {
                write(ctx, Where::Active, WriteClass::HandBack, async |unit| {
                    Ok(unit
                        .state
                        .tenancy
                        .request_organization_export(unit.tx, unit.actor)
                        .await?)
                })
                .await?
            }
        };
        // Prepared by a job worker: the job was enqueued with the request.
        Ok(RequestDataExportPayload {
            data_export: DataExport(export),
        })
    }

    /// Accepts the current data processing agreement for the active organization
    /// (owners): who, which text (by hash) and when are recorded, and audited with the
    /// address. Until then the organization cannot start a paid plan or create API keys
    /// (`FORBIDDEN`, `reason = "DPA_NOT_ACCEPTED"`).
    async fn accept_data_processing_agreement(
        &self,
        ctx: &Context<'_>,
        input: AcceptDataProcessingAgreementInput,
    ) -> GqlResult<AcceptDataProcessingAgreementPayload> {
        write(ctx, Where::Active, WriteClass::Ordinary, async |unit| {
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
