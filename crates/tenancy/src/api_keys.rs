//! API keys: service accounts of one organization, acting with their own role. The
//! secret is shown once and stored as a digest.

use crate::auth::API_KEY_PREFIX;
use crate::crypto;
use crate::entity::api_key;
use crate::error::{Error, Result};
use crate::model::{ApiKey, IssuedApiKey};
use crate::repo::{api_key_from_row, validate_name};
use crate::role::Role;
use crate::service::TenancyService;
use audit::NewEvent;
use authz::{Action, Permit, ResourceType, Subject};
use kernel::page::keyset;
use kernel::{ApiKeyId, Page, PageRequest, Principal, TenantTx};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};

/// The longest a key may be issued for with an expiry (about ten years).
const MAX_KEY_LIFETIME_DAYS: i64 = 3_660;

/// What a new key is.
#[derive(Debug, Clone)]
pub struct NewApiKey<'a> {
    /// What it is for.
    pub name: &'a str,
    /// The role it acts with.
    pub role: Role,
    /// When it stops working by itself (`None`: when revoked).
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
    /// The permissions of its role it is restricted to (`None`: all of them).
    pub scope: Option<&'a [(ResourceType, Action)]>,
    /// Whether it may run trusted documents only.
    pub trusted_documents_only: bool,
}

impl TenancyService {
    /// Creates a key acting with `role`. Keys cannot be owners, and nobody creates a key
    /// more powerful than themselves.
    #[tracing::instrument(name = "tenancy.create_api_key", skip_all, err(level = "debug"))]
    pub async fn create_api_key(
        &self,
        tx: &TenantTx,
        permit: &Permit,
        key: NewApiKey<'_>,
    ) -> Result<IssuedApiKey> {
        let NewApiKey {
            name,
            role,
            expires_at,
            scope,
            trusted_documents_only,
        } = key;
        permit.ensure(tx, ResourceType::ApiKey, Action::Create, None)?;
        self.ensure_dpa_accepted(tx).await?;
        if role == Role::Owner {
            return Err(Error::invalid("role", "an API key cannot be an owner"));
        }
        let now = self.clock.now();
        // A key made by a key lives no longer than its maker: an expiring key cannot
        // mint a permanent one.
        let mut expires_at = expires_at;
        let mut trusted_documents_only = trusted_documents_only;
        if let Principal::ApiKey { key, .. } = permit.principal() {
            let maker = find(tx, key).await?;
            // A key restricted to trusted documents makes restricted keys only.
            trusted_documents_only |= maker.trusted_documents_only;
            if let Some(maker_expiry) = maker.expires_at {
                if expires_at.is_some_and(|asked| asked > maker_expiry) {
                    return Err(Error::invalid(
                        "expiresAt",
                        "a key made by a key cannot outlive it",
                    ));
                }
                expires_at = Some(expires_at.unwrap_or(maker_expiry));
            }
        }
        if let Some(expiry) = expires_at
            && (expiry <= now || expiry > now + chrono::Duration::days(MAX_KEY_LIFETIME_DAYS))
        {
            return Err(Error::invalid(
                "expiresAt",
                format!("must be in the future and within {MAX_KEY_LIFETIME_DAYS} days"),
            ));
        }
        self.ensure_may_confer(tx, permit, role).await?;
        let name = validate_name("name", name)?;
        let created_by = permit.principal().id();
        let id = ApiKeyId::generate();
        let secret = crypto::random_secret();
        let row = api_key::Entity::insert(api_key::ActiveModel {
            organization_id: Set(tx.org_id().as_uuid()),
            id: Set(id.as_uuid()),
            name: Set(name),
            role: Set(role.as_str().to_owned()),
            secret_hash: Set(crypto::digest(&secret)),
            created_by: Set(created_by),
            created_at: Set(now),
            last_used_at: Set(None),
            revoked_at: Set(None),
            expires_at: Set(expires_at),
            trusted_documents_only: Set(trusted_documents_only),
        })
        .exec_with_returning(tx.conn())
        .await?;
        self.authz
            .assign_role(tx, &Subject::Key(id), role.as_str())
            .await?;
        let scope_text = match scope {
            Some(scope) => {
                self.authz
                    .restrict_key(tx, id, role.as_str(), scope)
                    .await?;
                let mut listed: Vec<String> =
                    scope.iter().map(|(t, a)| format!("{t}:{a}")).collect();
                listed.sort();
                listed.dedup();
                Some(listed.join(","))
            }
            None => None,
        };
        self.audit
            .record(
                tx,
                NewEvent::new("api_key.created", "api_key", Some(id))
                    .change("name", None::<String>, Some(row.name.clone()))
                    .change("role", None::<String>, Some(row.role.clone()))
                    .change(
                        "expires_at",
                        None::<String>,
                        row.expires_at.map(|at| at.to_rfc3339()),
                    )
                    .change("scopes", None::<String>, scope_text)
                    .change(
                        "trusted_documents_only",
                        None::<bool>,
                        Some(row.trusted_documents_only),
                    ),
            )
            .await?;
        Ok(IssuedApiKey {
            api_key: api_key_from_row(row)?,
            secret: format!(
                "{API_KEY_PREFIX}{}_{}_{secret}",
                tx.org_id().as_uuid().simple(),
                id.as_uuid().simple()
            ),
        })
    }

    /// One page of the organization's keys (revoked ones included).
    pub async fn api_keys(
        &self,
        tx: &TenantTx,
        permit: &Permit,
        page: &PageRequest,
    ) -> Result<Page<ApiKey>> {
        permit.ensure(tx, ResourceType::ApiKey, Action::Read, None)?;
        let rows = keyset(tx.select::<api_key::Entity>(), api_key::Column::Id, page)
            .all(tx.conn())
            .await?;
        Page::from_overfetch(rows, page).try_map(api_key_from_row)
    }

    /// How many keys the organization has, revoked ones included (every page of
    /// [`Self::api_keys`]).
    pub async fn count_api_keys(&self, tx: &TenantTx, permit: &Permit) -> Result<u64> {
        permit.ensure(tx, ResourceType::ApiKey, Action::Read, None)?;
        Ok(tx.select::<api_key::Entity>().count(tx.conn()).await?)
    }

    /// A key of this organization.
    pub async fn api_key(&self, tx: &TenantTx, permit: &Permit, id: ApiKeyId) -> Result<ApiKey> {
        permit.ensure(tx, ResourceType::ApiKey, Action::Read, Some(id.as_uuid()))?;
        api_key_from_row(find(tx, id).await?)
    }

    /// Revokes a key; it stops authenticating at once and loses its roles. Keys it made
    /// are revoked with it (their creator no longer stands).
    #[tracing::instrument(name = "tenancy.revoke_api_key", skip_all, err(level = "debug"))]
    pub async fn revoke_api_key(
        &self,
        tx: &TenantTx,
        permit: &Permit,
        id: ApiKeyId,
    ) -> Result<ApiKey> {
        permit.ensure(tx, ResourceType::ApiKey, Action::Delete, Some(id.as_uuid()))?;
        let row = find(tx, id).await?;
        if row.revoked_at.is_some() {
            return Err(Error::Conflict("this API key is already revoked".into()));
        }
        let now = self.revoke_key(tx, &row, None).await?;
        self.revoke_keys_made_by(tx, vec![row.id], "creator_key_revoked")
            .await?;
        api_key_from_row(api_key::Model {
            revoked_at: Some(now),
            ..row
        })
    }

    /// Keys follow their creator's standing: revokes the live keys `creator` made with a
    /// role it may no longer confer (all of them when `gone`), and every key made by a
    /// revoked key, each recorded as `api_key.revoked` with the reason. Called after the
    /// creator's membership changed, in the same transaction.
    pub(crate) async fn revoke_keys_beyond_standing(
        &self,
        tx: &TenantTx,
        creator: Principal,
        gone: bool,
        reason: &'static str,
    ) -> Result<()> {
        let creator_id = creator.id();
        let mut revoked = Vec::new();
        for key in live_keys_made_by(tx, &[creator_id]).await? {
            let beyond = gone
                || match self
                    .authz
                    .ensure_may_confer_role(tx, creator, &key.role)
                    .await
                {
                    Ok(()) => false,
                    Err(authz::Error::Escalation(_)) => true,
                    Err(e) => return Err(e.into()),
                };
            if beyond {
                self.revoke_key(tx, &key, Some(reason)).await?;
                revoked.push(key.id);
            }
        }
        self.revoke_keys_made_by(tx, revoked, "creator_key_revoked")
            .await
    }

    /// Revokes, breadth first, every live key made by the keys in `revoked`.
    async fn revoke_keys_made_by(
        &self,
        tx: &TenantTx,
        mut revoked: Vec<uuid::Uuid>,
        reason: &'static str,
    ) -> Result<()> {
        while !revoked.is_empty() {
            let made = live_keys_made_by(tx, &revoked).await?;
            revoked = Vec::with_capacity(made.len());
            for key in made {
                self.revoke_key(tx, &key, Some(reason)).await?;
                revoked.push(key.id);
            }
        }
        Ok(())
    }

    /// Marks one key revoked, takes its roles and records it; returns the time.
    pub(crate) async fn revoke_key(
        &self,
        tx: &TenantTx,
        row: &api_key::Model,
        reason: Option<&'static str>,
    ) -> Result<chrono::DateTime<chrono::Utc>> {
        let now = self.clock.now();
        let id = ApiKeyId::from_uuid(row.id);
        api_key::Entity::update_many()
            .col_expr(api_key::Column::RevokedAt, Expr::value(now))
            .filter(api_key::Column::OrganizationId.eq(tx.org_id().as_uuid()))
            .filter(api_key::Column::Id.eq(row.id))
            .exec(tx.conn())
            .await?;
        self.authz.remove_subject(tx, &Subject::Key(id)).await?;
        let mut event = NewEvent::new("api_key.revoked", "api_key", Some(id)).change(
            "revoked_at",
            None::<String>,
            Some(now.to_rfc3339()),
        );
        if let Some(reason) = reason {
            event = event.change("reason", None::<String>, Some(reason));
        }
        self.audit.record(tx, event).await?;
        Ok(now)
    }
}

/// The live keys made by any of `creators`.
async fn live_keys_made_by(tx: &TenantTx, creators: &[uuid::Uuid]) -> Result<Vec<api_key::Model>> {
    Ok(tx
        .select::<api_key::Entity>()
        .filter(api_key::Column::CreatedBy.is_in(creators.iter().copied()))
        .filter(api_key::Column::RevokedAt.is_null())
        .all(tx.conn())
        .await?)
}

async fn find(tx: &TenantTx, id: ApiKeyId) -> Result<api_key::Model> {
    tx.select::<api_key::Entity>()
        .filter(api_key::Column::Id.eq(id.as_uuid()))
        .one(tx.conn())
        .await?
        .ok_or(Error::NotFound { entity: "API key" })
}
