//! Data processing agreements (GDPR Art. 28). Staff publish a version (its text, stored
//! with its SHA-256, and the subprocessors it lists); it never changes. An owner accepts
//! the current version for their organization (who, which text by hash, when; the
//! address is in the audit event). Until an organization has accepted it, it cannot
//! start a paid plan or create API keys; a new version gives owners a notice period
//! during which an earlier acceptance still counts.

use crate::entity::{dpa_acceptance, dpa_version};
use crate::error::{Error, Result};
use crate::model::Actor;
use crate::role::Role;
use crate::service::TenancyService;
use audit::NewEvent;
use chrono::{DateTime, Utc};
use kernel::{OrgId, Principal, TenantTx, TxMode, UserId};
use sea_orm::{ActiveValue::Set, ConnectionTrait, EntityTrait, QueryOrder, QuerySelect, SqlErr};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// A subprocessor an agreement lists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subprocessor {
    /// Who.
    pub name: String,
    /// For what.
    pub purpose: String,
    /// Where it processes.
    pub location: String,
}

/// A published agreement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DpaVersion {
    /// Id.
    pub id: Uuid,
    /// Its label (`2026-12`, say).
    pub version: String,
    /// The text (Markdown or plain).
    pub text: String,
    /// Hex SHA-256 of the text.
    pub sha256: String,
    /// The subprocessors it lists.
    pub subprocessors: Vec<Subprocessor>,
    /// When it was published.
    pub published_at: DateTime<Utc>,
}

/// An organization's acceptance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DpaAcceptance {
    /// The version accepted.
    pub version: String,
    /// The accepted text's SHA-256.
    pub sha256: String,
    /// Who accepted.
    pub accepted_by: UserId,
    /// When.
    pub accepted_at: DateTime<Utc>,
}

const MAX_TEXT: usize = 1_000_000;
const MAX_SUBPROCESSORS: usize = 100;

fn version_from_row(row: dpa_version::Model) -> Result<DpaVersion> {
    let subprocessors = serde_json::from_str(&row.subprocessors)
        .map_err(|e| Error::Conflict(format!("stored subprocessors unreadable: {e}")))?;
    Ok(DpaVersion {
        id: row.id,
        version: row.version,
        text: row.body,
        sha256: row.sha256,
        subprocessors,
        published_at: row.published_at,
    })
}

impl TenancyService {
    /// Publishes a new agreement version (staff, from the command line): immutable,
    /// recorded in the platform's audit trail. A version label already used is
    /// `CONFLICT`.
    pub async fn publish_dpa(
        &self,
        version: &str,
        text: &str,
        subprocessors: Vec<Subprocessor>,
    ) -> Result<DpaVersion> {
        let version = version.trim();
        if version.is_empty() || version.chars().count() > 50 {
            return Err(Error::invalid("version", "1 to 50 characters"));
        }
        if text.trim().is_empty() || text.len() > MAX_TEXT {
            return Err(Error::invalid("text", "a text of up to 1 MB"));
        }
        if subprocessors.len() > MAX_SUBPROCESSORS {
            return Err(Error::invalid("subprocessors", "at most 100"));
        }
        let sha256: String = Sha256::digest(text.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let listed = serde_json::to_string(&subprocessors)
            .map_err(|e| Error::invalid("subprocessors", e.to_string()))?;
        let tx = self.open(OrgId::PLATFORM, TxMode::Write).await?;
        // The current version is the latest published: each one strictly after the last
        // (ids are not ordered within a millisecond).
        let mut published_at = self.clock.now();
        if let Some(last) = self.current_dpa(tx.conn()).await?
            && published_at <= last.published_at
        {
            published_at = last.published_at + chrono::Duration::milliseconds(1);
        }
        let row = dpa_version::ActiveModel {
            id: Set(Uuid::now_v7()),
            version: Set(version.to_owned()),
            body: Set(text.to_owned()),
            sha256: Set(sha256.clone()),
            subprocessors: Set(listed),
            published_at: Set(published_at),
        };
        let row = match dpa_version::Entity::insert(row)
            .exec_with_returning(tx.conn())
            .await
        {
            Ok(row) => row,
            Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
                return Err(Error::Conflict(format!(
                    "agreement version {version} is already published"
                )));
            }
            Err(e) => return Err(e.into()),
        };
        self.audit
            .record(
                &tx,
                NewEvent::new("dpa.published", "dpa", Some(row.id))
                    .change("version", None::<String>, Some(version))
                    .change("sha256", None::<String>, Some(sha256)),
            )
            .await?;
        tx.commit().await?;
        version_from_row(row)
    }

    /// The current (latest published) agreement, if any, read on `conn` (a request's
    /// transaction: never a second pool connection while one is held).
    pub async fn current_dpa(&self, conn: &impl ConnectionTrait) -> Result<Option<DpaVersion>> {
        dpa_version::Entity::find()
            .order_by_desc(dpa_version::Column::PublishedAt)
            .order_by_desc(dpa_version::Column::Id)
            .one(conn)
            .await?
            .map(version_from_row)
            .transpose()
    }

    /// The organization's latest acceptance.
    pub async fn dpa_acceptance(&self, tx: &TenantTx) -> Result<Option<DpaAcceptance>> {
        let Some(row) = tx
            .select::<dpa_acceptance::Entity>()
            .order_by_desc(dpa_acceptance::Column::AcceptedAt)
            .order_by_desc(dpa_acceptance::Column::Id)
            .one(tx.conn())
            .await?
        else {
            return Ok(None);
        };
        let version = dpa_version::Entity::find_by_id(row.dpa_version_id)
            .one(tx.conn())
            .await?
            .map(|v| v.version)
            .unwrap_or_default();
        Ok(Some(DpaAcceptance {
            version,
            sha256: row.sha256,
            accepted_by: UserId::from_uuid(row.accepted_by),
            accepted_at: row.accepted_at,
        }))
    }

    /// An owner accepts `version`, which must be the current one (`CONFLICT` otherwise:
    /// the text they read is not the one in force).
    pub async fn accept_dpa(
        &self,
        tx: &TenantTx,
        actor: &Actor,
        version: &str,
    ) -> Result<DpaAcceptance> {
        let Principal::User(user) = actor.principal else {
            return Err(Error::Forbidden("an owner accepts the agreement".into()));
        };
        if actor.role != Role::Owner {
            return Err(Error::Forbidden("an owner accepts the agreement".into()));
        }
        let current = self.current_dpa(tx.conn()).await?.ok_or(Error::NotFound {
            entity: "agreement",
        })?;
        if current.version != version {
            return Err(Error::Conflict(format!(
                "the current agreement is version {}",
                current.version
            )));
        }
        let now = self.clock.now();
        dpa_acceptance::Entity::insert(dpa_acceptance::ActiveModel {
            organization_id: Set(tx.org_id().as_uuid()),
            id: Set(Uuid::now_v7()),
            dpa_version_id: Set(current.id),
            sha256: Set(current.sha256.clone()),
            accepted_by: Set(user.as_uuid()),
            accepted_at: Set(now),
        })
        .exec_without_returning(tx.conn())
        .await?;
        self.audit
            .record(
                tx,
                NewEvent::new("dpa.accepted", "dpa", Some(current.id))
                    .change("version", None::<String>, Some(current.version.clone()))
                    .change("sha256", None::<String>, Some(current.sha256.clone())),
            )
            .await?;
        Ok(DpaAcceptance {
            version: current.version,
            sha256: current.sha256,
            accepted_by: user,
            accepted_at: now,
        })
    }

    /// `FORBIDDEN` with `DPA_NOT_ACCEPTED` unless the organization accepted the current
    /// agreement (the version, not just its text: the subprocessors are part of it), or
    /// accepted the one before it and the current one is still within its notice period.
    /// No agreement published: nothing to accept.
    pub async fn ensure_dpa_accepted(&self, tx: &TenantTx) -> Result<()> {
        let latest: Vec<dpa_version::Model> = dpa_version::Entity::find()
            .order_by_desc(dpa_version::Column::PublishedAt)
            .order_by_desc(dpa_version::Column::Id)
            .limit(2)
            .all(tx.conn())
            .await?;
        let Some(current) = latest.first() else {
            return Ok(());
        };
        let Some(accepted) = self.dpa_acceptance(tx).await? else {
            return Err(Error::DpaNotAccepted);
        };
        if accepted.version == current.version {
            return Ok(());
        }
        let previous = latest.get(1).map(|v| v.version.as_str());
        let in_notice = self.clock.now() < current.published_at + self.settings.dpa_notice;
        if in_notice && previous == Some(accepted.version.as_str()) {
            return Ok(());
        }
        Err(Error::DpaNotAccepted)
    }
}
