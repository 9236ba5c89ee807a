//! Data exports (GDPR Art. 15 and 20): the ledger of who asked for which export, its
//! state, and who may download it. The archive itself is built by the gateway, which
//! reads every crate's tables; this crate owns the `data_exports` rows and decides who
//! may ask (anyone for themselves; owners for their organization) and download (only
//! whoever asked, until it expires).

use crate::entity::{data_export, membership};
use crate::error::{Error, Result};
use crate::model::Actor;
use crate::role::Role;
use crate::service::TenancyService;
use audit::NewEvent;
use chrono::{DateTime, Utc};
use kernel::page::keyset;
use kernel::{OrgId, Page, PageRequest, Principal, TenantTx, UserId};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QuerySelect};
use uuid::Uuid;

/// What an export holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportScope {
    /// Everything held about the person who asked, across organizations.
    Person,
    /// Every row of one organization.
    Organization,
}

impl ExportScope {
    fn as_str(self) -> &'static str {
        match self {
            Self::Person => "person",
            Self::Organization => "organization",
        }
    }

    fn parse(text: &str) -> Result<Self> {
        match text {
            "person" => Ok(Self::Person),
            "organization" => Ok(Self::Organization),
            _ => Err(Error::invalid(
                "scope",
                format!("unknown export scope {text:?}"),
            )),
        }
    }
}

/// Where an export is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportStatus {
    /// Being prepared.
    Pending,
    /// Ready to download until it expires.
    Ready,
    /// Preparing it failed (asking again is allowed).
    Failed,
}

impl ExportStatus {
    fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Ready => "ready",
            Self::Failed => "failed",
        }
    }

    fn parse(text: &str) -> Result<Self> {
        match text {
            "pending" => Ok(Self::Pending),
            "ready" => Ok(Self::Ready),
            "failed" => Ok(Self::Failed),
            _ => Err(Error::invalid(
                "status",
                format!("unknown export status {text:?}"),
            )),
        }
    }
}

/// One export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataExport {
    /// Id (also the archive's file name).
    pub id: Uuid,
    /// Who asked; the only one who may download it.
    pub requested_by: UserId,
    /// What it holds.
    pub scope: ExportScope,
    /// The organization, for an organization's export.
    pub organization: Option<OrgId>,
    /// Where it is.
    pub status: ExportStatus,
    /// When it was asked for.
    pub created_at: DateTime<Utc>,
    /// When it was ready (or failed).
    pub completed_at: Option<DateTime<Utc>>,
    /// When the archive is deleted.
    pub expires_at: DateTime<Utc>,
    /// The archive's SHA-256 (hex), once ready.
    pub sha256: Option<String>,
    /// The archive's size, once ready.
    pub size_bytes: Option<i64>,
}

impl TryFrom<data_export::Model> for DataExport {
    type Error = Error;

    fn try_from(row: data_export::Model) -> Result<Self> {
        Ok(Self {
            id: row.id,
            requested_by: UserId::from_uuid(row.requested_by),
            scope: ExportScope::parse(&row.scope)?,
            organization: row.exported_organization_id.map(OrgId::from_uuid),
            status: ExportStatus::parse(&row.status)?,
            created_at: row.created_at,
            completed_at: row.completed_at,
            expires_at: row.expires_at,
            sha256: row.sha256,
            size_bytes: row.size_bytes,
        })
    }
}

/// The job kind that prepares a data export (`{"export_id": uuid}`).
pub const PREPARE_EXPORT: &str = "data_export.prepare";

impl TenancyService {
    /// The calling person asks for an export of everything held about them; recorded in
    /// the platform chain. One at a time: another pending one is a conflict.
    pub async fn request_person_export(&self, user: UserId) -> Result<DataExport> {
        let tx = self.open(OrgId::PLATFORM, kernel::TxMode::Write).await?;
        let export = self
            .insert_export(&tx, user, ExportScope::Person, None)
            .await?;
        tx.commit().await?;
        Ok(export)
    }

    /// An owner (a person) asks for an export of every row of the transaction's
    /// organization; recorded in its chain.
    pub async fn request_organization_export(
        &self,
        tx: &TenantTx,
        actor: &Actor,
    ) -> Result<DataExport> {
        let Principal::User(user) = actor.principal else {
            return Err(Error::Forbidden(
                "only an owner (a person, not a key) may export the organization".into(),
            ));
        };
        if actor.role != Role::Owner {
            return Err(Error::Forbidden(
                "only an owner may export the organization".into(),
            ));
        }
        self.insert_export(tx, user, ExportScope::Organization, Some(tx.org_id()))
            .await
    }

    async fn insert_export(
        &self,
        tx: &TenantTx,
        user: UserId,
        scope: ExportScope,
        organization: Option<OrgId>,
    ) -> Result<DataExport> {
        let pending = data_export::Entity::find()
            .filter(data_export::Column::RequestedBy.eq(user.as_uuid()))
            .filter(data_export::Column::Scope.eq(scope.as_str()))
            .filter(
                data_export::Column::ExportedOrganizationId
                    .eq(organization.map(|org| org.as_uuid())),
            )
            .filter(data_export::Column::Status.eq(ExportStatus::Pending.as_str()))
            .limit(1)
            .all(tx.conn())
            .await?;
        if !pending.is_empty() {
            return Err(Error::Conflict(
                "an export is already being prepared; wait for it".into(),
            ));
        }
        let now = self.clock.now();
        let row = data_export::Entity::insert(data_export::ActiveModel {
            id: Set(Uuid::now_v7()),
            requested_by: Set(user.as_uuid()),
            scope: Set(scope.as_str().to_owned()),
            exported_organization_id: Set(organization.map(|org| org.as_uuid())),
            status: Set(ExportStatus::Pending.as_str().to_owned()),
            created_at: Set(now),
            completed_at: Set(None),
            expires_at: Set(now + self.settings.export_ttl),
            sha256: Set(None),
            size_bytes: Set(None),
            error: Set(None),
        })
        .exec_with_returning(tx.conn())
        .await?;
        self.audit
            .record(
                tx,
                NewEvent::new("data_export.requested", "data_export", Some(row.id))
                    .by(Principal::User(user))
                    .change("scope", None::<String>, Some(scope.as_str())),
            )
            .await?;
        if let Some(jobs) = &self.jobs {
            // Prepared by a worker once this commits; again if that worker dies.
            let job = jobs::NewJob::new(PREPARE_EXPORT, serde_json::json!({ "export_id": row.id }))
                .unique(row.id.to_string());
            jobs.enqueue(tx.conn(), job).await?;
            let jobs = jobs.clone();
            tx.after_commit(move || jobs.wake());
        }
        row.try_into()
    }

    /// Records how preparing an export ended: the archive's digest and size (it may be
    /// downloaded for the export time from now), or why it failed (an operator's
    /// message, never personal data). False when the export is gone meanwhile (expired,
    /// its person erased, its organization purged): its archive must go too.
    pub async fn finish_export(
        &self,
        id: Uuid,
        outcome: std::result::Result<(String, i64), String>,
    ) -> Result<bool> {
        let now = self.clock.now();
        let update = data_export::Entity::update_many()
            .col_expr(data_export::Column::CompletedAt, Expr::value(now))
            .col_expr(
                data_export::Column::ExpiresAt,
                Expr::value(now + self.settings.export_ttl),
            )
            .filter(data_export::Column::Id.eq(id))
            .filter(data_export::Column::Status.eq(ExportStatus::Pending.as_str()));
        let update = match outcome {
            Ok((sha256, size)) => update
                .col_expr(
                    data_export::Column::Status,
                    Expr::value(ExportStatus::Ready.as_str()),
                )
                .col_expr(data_export::Column::Sha256, Expr::value(sha256))
                .col_expr(data_export::Column::SizeBytes, Expr::value(size)),
            Err(error) => update
                .col_expr(
                    data_export::Column::Status,
                    Expr::value(ExportStatus::Failed.as_str()),
                )
                .col_expr(data_export::Column::Error, Expr::value(error)),
        };
        Ok(update.exec(self.db.conn()).await?.rows_affected == 1)
    }

    /// The ids of every export there is (to find archives that lost their row).
    pub async fn export_ids(&self) -> Result<std::collections::HashSet<Uuid>> {
        let ids: Vec<Uuid> = data_export::Entity::find()
            .select_only()
            .column(data_export::Column::Id)
            .into_tuple()
            .all(self.db.conn())
            .await?;
        Ok(ids.into_iter().collect())
    }

    /// One page of the exports `user` asked for.
    pub async fn data_exports_of(
        &self,
        user: UserId,
        page: &PageRequest,
    ) -> Result<Page<DataExport>> {
        let select =
            data_export::Entity::find().filter(data_export::Column::RequestedBy.eq(user.as_uuid()));
        let rows = keyset(select, data_export::Column::Id, page)
            .all(self.db.conn())
            .await?;
        Page::from_overfetch(rows, page).try_map(DataExport::try_from)
    }

    /// The export `id`, whoever asked for it (its preparing job).
    pub async fn data_export(&self, id: Uuid) -> Result<Option<DataExport>> {
        data_export::Entity::find_by_id(id)
            .one(self.db.conn())
            .await?
            .map(TryInto::try_into)
            .transpose()
    }

    /// The export `id` if `user` asked for it; anyone else's is `NOT_FOUND`, like one
    /// that does not exist.
    pub async fn data_export_for(&self, user: UserId, id: Uuid) -> Result<DataExport> {
        data_export::Entity::find_by_id(id)
            .filter(data_export::Column::RequestedBy.eq(user.as_uuid()))
            .one(self.db.conn())
            .await?
            .ok_or(Error::NotFound {
                entity: "data export",
            })?
            .try_into()
    }

    /// Records that `export` was downloaded, in the chain that recorded its request.
    pub async fn record_export_download(&self, export: &DataExport) -> Result<()> {
        let chain = export.organization.unwrap_or(OrgId::PLATFORM);
        let tx = self.open(chain, kernel::TxMode::Write).await?;
        self.audit
            .record(
                &tx,
                NewEvent::new("data_export.downloaded", "data_export", Some(export.id))
                    .by(Principal::User(export.requested_by)),
            )
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Exports whose time is over (the retention run deletes their files and rows), and
    /// pending ones older than a day (their preparation died with its process).
    pub async fn expired_exports(&self) -> Result<Vec<DataExport>> {
        let now = self.clock.now();
        let stale = sea_orm::Condition::any()
            .add(data_export::Column::ExpiresAt.lte(now))
            .add(
                sea_orm::Condition::all()
                    .add(data_export::Column::Status.eq(ExportStatus::Pending.as_str()))
                    .add(data_export::Column::CreatedAt.lte(now - chrono::Duration::days(1))),
            );
        data_export::Entity::find()
            .filter(stale)
            .all(self.db.conn())
            .await?
            .into_iter()
            .map(DataExport::try_from)
            .collect()
    }

    /// Deletes an export's row (its file is gone first).
    pub async fn delete_export(&self, id: Uuid) -> Result<()> {
        data_export::Entity::delete_by_id(id)
            .exec(self.db.conn())
            .await?;
        Ok(())
    }

    /// The organizations `user` belongs to (for a person's export).
    pub async fn organization_ids_of(&self, user: UserId) -> Result<Vec<OrgId>> {
        let txn = self.read_as_user(user).await?;
        let ids: Vec<Uuid> = membership::Entity::find()
            .select_only()
            .column(membership::Column::OrganizationId)
            .filter(membership::Column::UserId.eq(user.as_uuid()))
            .into_tuple()
            .all(&txn)
            .await?;
        txn.commit().await?;
        Ok(ids.into_iter().map(OrgId::from_uuid).collect())
    }
}
