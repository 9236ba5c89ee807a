//! The tenancy service and the one place a tenant transaction is opened.

use crate::caller::Caller;
use crate::error::{Error, Result};
use crate::model::Actor;
use crate::role::Role;
use crate::tokens::TokenSigner;
use audit::AuditLog;
use authz::Authorizer;
use chrono::Duration;
use kernel::{Db, OrgId, Principal, SharedClock, TenantOpener, TenantTx, TxMode};
use sea_orm::{ConnectionTrait, FromQueryResult, Statement};
use secrecy::SecretString;
use uuid::Uuid;

/// Lifetimes and limits of the tenancy rules.
#[derive(Debug, Clone)]
pub struct TenancySettings {
    /// How long an access token is valid.
    pub access_token_ttl: Duration,
    /// How long a refresh token is valid (each refresh starts a new period).
    pub refresh_token_ttl: Duration,
    /// How long an invitation can be accepted.
    pub invitation_ttl: Duration,
    /// Failed log-ins on one account from one client address within the window before
    /// that address is refused for the account; once the account has this many failures
    /// from anywhere, only addresses without a failure on it may still try.
    pub max_failures_per_account: u64,
    /// Failed log-ins from one client address, any account, within the window before the
    /// address is refused.
    pub max_failures_per_ip: u64,
    /// The window failed log-ins are counted in.
    pub failure_window: Duration,
    /// Accounts one client address may create per [`TenancySettings::sign_up_window`].
    pub max_sign_ups_per_ip: u64,
    /// The window sign-ups are counted in.
    pub sign_up_window: Duration,
    /// How long after a new data processing agreement an earlier acceptance still counts.
    pub dpa_notice: Duration,
    /// How long an organization whose deletion was asked for stays (readable by its
    /// owners, and cancellable) before the purge may run.
    pub deletion_grace: Duration,
    /// How long a prepared data export may be downloaded before it is deleted.
    pub export_ttl: Duration,
    /// Years a purged organization's finalized invoices and credit notes are kept (the
    /// legal retention period of commercial and tax law).
    pub invoice_retention_years: u32,
}

impl Default for TenancySettings {
    fn default() -> Self {
        Self {
            access_token_ttl: Duration::minutes(15),
            refresh_token_ttl: Duration::days(30),
            invitation_ttl: Duration::days(7),
            max_failures_per_account: 10,
            max_failures_per_ip: 100,
            failure_window: Duration::minutes(15),
            max_sign_ups_per_ip: 20,
            sign_up_window: Duration::hours(1),
            dpa_notice: Duration::days(30),
            deletion_grace: Duration::days(30),
            export_ttl: Duration::hours(24),
            invoice_retention_years: 10,
        }
    }
}

/// Where a request comes from, for throttling and (later) the audit trail.
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    /// The client's address.
    pub ip: Option<String>,
    /// The client's `User-Agent`.
    pub user_agent: Option<String>,
}

/// Users, organizations and who may act where.
#[derive(Debug, Clone)]
pub struct TenancyService {
    pub(crate) db: Db,
    pub(crate) clock: SharedClock,
    pub(crate) signer: TokenSigner,
    pub(crate) settings: TenancySettings,
    pub(crate) authz: Authorizer,
    pub(crate) audit: AuditLog,
    pub(crate) limits: kernel::SharedLimits,
    pub(crate) verifications: std::sync::Arc<crate::audit_trail::VerificationSlots>,
    /// Keys the pseudonyms stored instead of plaintext (the erasure ledger's email hashes,
    /// throttling counters' scopes); derived from the token secret.
    pub(crate) pseudonym_key: std::sync::Arc<[u8; 32]>,
    /// Where work a change causes is enqueued (data exports' preparation); without it
    /// (the command line) nothing is enqueued.
    pub(crate) jobs: Option<jobs::Jobs>,
    /// When this process last recorded each API key's use (see `note_key_use`).
    pub(crate) key_uses: std::sync::Arc<crate::auth::KeyUses>,
}

impl TenancyService {
    /// A service over `db`, signing tokens with `token_secret`.
    pub fn new(
        db: Db,
        clock: SharedClock,
        token_secret: &SecretString,
        settings: TenancySettings,
        authz: Authorizer,
        audit: AuditLog,
    ) -> Self {
        Self {
            db,
            clock,
            signer: TokenSigner::new(token_secret),
            settings,
            authz,
            audit,
            limits: std::sync::Arc::new(kernel::ConfiguredLimits::default()),
            verifications: std::sync::Arc::default(),
            pseudonym_key: std::sync::Arc::new(crate::erasure::pseudonym_key(token_secret)),
            jobs: None,
            key_uses: std::sync::Arc::default(),
        }
    }

    /// The same service enqueueing the work its changes cause on `jobs`.
    pub fn with_jobs(mut self, jobs: jobs::Jobs) -> Self {
        self.jobs = Some(jobs);
        self
    }

    /// The same service with other lifetimes and limits.
    pub fn with_settings(mut self, settings: TenancySettings) -> Self {
        self.settings = settings;
        self
    }

    /// The same service asking `limits` (the plan) before adding seats.
    pub fn with_plan_limits(mut self, limits: kernel::SharedLimits) -> Self {
        self.limits = limits;
        self
    }

    /// The audit trail changes are recorded in.
    pub fn audit(&self) -> &AuditLog {
        &self.audit
    }

    /// The authorizer permits come from.
    pub fn authz(&self) -> &Authorizer {
        &self.authz
    }

    /// The database handle.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Opens `org`'s transaction for the caller after checking that it may act there:
    /// a person must be a member (and their session live: checked here, in the same
    /// statement, unless the request established it already), an API key must belong to
    /// `org` and be unrevoked. A session that is not live is [`Error::InvalidToken`];
    /// anyone else gets [`Error::NotMember`]; either way the transaction is rolled back
    /// unread.
    #[tracing::instrument(name = "tenancy.enter", skip_all, fields(org.id = %org), err(level = "debug"))]
    pub async fn enter(
        &self,
        caller: &Caller,
        org: OrgId,
        mode: TxMode,
    ) -> Result<(TenantTx, Actor)> {
        if let Some(known) = caller.established() {
            known?;
        }
        let principal = caller.claimed();
        if let Principal::ApiKey { org: key_org, .. } = principal
            && key_org != org
        {
            return Err(Error::NotMember);
        }
        // The caller's session, standing and the organization's policy version in one
        // statement (the first permission check then needs no statement of its own); on
        // PostgreSQL the same statement binds the transaction to the organization.
        let (tx, found) = if self.db.backend() == kernel::Backend::Postgres {
            let tx = TenantTx::open_binding_in_first_statement(
                &self.db,
                org,
                mode,
                TenantOpener::issued_by_tenancy(),
            )
            .await?;
            let credential = Unchecked {
                session: caller.unchecked_session(),
                key_digest: caller.unchecked_key_digest(),
                now: self.clock.now(),
            };
            let found = enter_organization(&tx, principal, &credential, mode).await?;
            (tx, found)
        } else {
            let tx = self.open(org, mode).await?;
            let holds = match (caller.unchecked_key_digest(), principal) {
                (Some(digest), Principal::ApiKey { key, org }) => {
                    crate::caller::key_is_valid(tx.conn(), (org, key), digest, self.clock.now())
                        .await?
                }
                _ => match self.verify_on(tx.conn(), caller).await {
                    Ok(_) => true,
                    Err(Error::InvalidToken) => false,
                    Err(e) => return Err(e),
                },
            };
            let found = if holds {
                standing(&tx, principal).await?
            } else {
                Some(Standing::session_not_live())
            };
            (tx, found)
        };
        if let Some(row) = &found
            && let Err(e) = caller.settle(row.session_live)
        {
            tx.rollback().await?;
            return Err(e);
        }
        let found = found.and_then(|row| {
            authz::remember_policy_version(&tx, row.policy_version);
            let membership = match principal {
                Principal::User(_) => row.id.map(kernel::MembershipId::from_uuid),
                Principal::ApiKey { .. } => None,
            };
            Some((row.role?, membership, row.pending_deletion.unwrap_or(false)))
        });
        let Some((role, membership_id, pending_deletion)) = found else {
            tx.rollback().await?;
            return Err(Error::NotMember);
        };
        let role = Role::parse(&role)?;
        // While deletion is pending only owners enter: to read, export, or cancel it.
        if pending_deletion && role != Role::Owner {
            tx.rollback().await?;
            return Err(Error::PendingDeletion);
        }
        let actor = Actor {
            principal,
            org_id: org,
            role,
            membership_id,
            organization_pending_deletion: pending_deletion,
        };
        Ok((tx, actor))
    }

    /// Opens a tenant transaction. Private: every caller in this crate has verified its
    /// right to the organization (or is creating it).
    pub(crate) async fn open(&self, org: OrgId, mode: TxMode) -> Result<TenantTx> {
        Ok(TenantTx::open(&self.db, org, mode, TenantOpener::issued_by_tenancy()).await?)
    }

    /// Checks that the permit's holder may hand out `role`: they must hold every
    /// permission it gives (an admin cannot make an owner).
    pub(crate) async fn ensure_may_confer(
        &self,
        tx: &TenantTx,
        permit: &authz::Permit,
        role: Role,
    ) -> Result<()> {
        Ok(self
            .authz
            .ensure_may_confer_role(tx, permit.principal(), role.as_str())
            .await?)
    }
}

/// A caller's row in an organization (membership or API key) with its policy version,
/// and whether the caller's session is live (no row: live, and not a member).
#[derive(Debug, sea_orm::FromQueryResult)]
struct Standing {
    role: Option<String>,
    id: Option<Uuid>,
    policy_version: Option<i64>,
    /// The organization is pending deletion.
    pending_deletion: Option<bool>,
    session_live: bool,
}

impl Standing {
    /// The answer for a caller whose session is not live: no standing.
    fn session_not_live() -> Self {
        Self {
            role: None,
            id: None,
            policy_version: None,
            pending_deletion: None,
            session_live: false,
        }
    }
}

/// Reads the caller's membership (or live API key) and the organization's policy
/// version together, inside the organization's transaction.
async fn standing(tx: &TenantTx, principal: Principal) -> Result<Option<Standing>> {
    let backend = tx.conn().get_database_backend();
    let (table, caller_column, live, caller) = match principal {
        Principal::User(user) => ("memberships", "user_id", "", user.as_uuid()),
        Principal::ApiKey { key, .. } => {
            ("api_keys", "id", " AND c.revoked_at IS NULL", key.as_uuid())
        }
    };
    let (org_param, caller_param) = match backend {
        sea_orm::DbBackend::Postgres => ("$1", "$2"),
        _ => ("?", "?"),
    };
    let sql = format!(
        "SELECT c.role, c.id, v.version AS policy_version, \
         o.deletion_scheduled_at IS NOT NULL AS pending_deletion, 1 = 1 AS session_live \
         FROM {table} c \
         JOIN organizations o ON o.id = c.organization_id \
         LEFT JOIN authz_policy_versions v ON v.organization_id = c.organization_id \
         WHERE c.organization_id = {org_param} AND c.{caller_column} = {caller_param}{live}"
    );
    Ok(Standing::find_by_statement(Statement::from_sql_and_values(
        backend,
        sql,
        [tx.org_id().as_uuid().into(), caller.into()],
    ))
    .one(tx.conn())
    .await?)
}

/// The part of a caller's credential still to be checked where it enters.
struct Unchecked<'a> {
    session: Option<kernel::SessionId>,
    key_digest: Option<&'a str>,
    now: chrono::DateTime<chrono::Utc>,
}

/// PostgreSQL: binds the transaction to its organization, checks what is unchecked of the
/// credential and reads the caller's standing in one round trip (the `enter_organization`
/// function, migration m0030).
async fn enter_organization(
    tx: &TenantTx,
    principal: Principal,
    credential: &Unchecked<'_>,
    mode: TxMode,
) -> Result<Option<Standing>> {
    let (user, key) = match principal {
        Principal::User(user) => (Some(user.as_uuid()), None),
        Principal::ApiKey { key, .. } => (None, Some(key.as_uuid())),
    };
    Ok(Standing::find_by_statement(Statement::from_sql_and_values(
        sea_orm::DbBackend::Postgres,
        format!(
            "SELECT standing_role AS role, standing_id AS id, \
             standing_policy_version AS policy_version, \
             standing_pending_deletion AS pending_deletion, \
             standing_session_live AS session_live{} \
             FROM enter_organization($1, $2, $3, $4, $5, $6)",
            TenantTx::read_only_column(mode)
        ),
        [
            tx.org_id().as_uuid().into(),
            user.into(),
            key.into(),
            credential.session.map(|s| s.as_uuid()).into(),
            credential.key_digest.map(str::to_owned).into(),
            credential.now.into(),
        ],
    ))
    .one(tx.conn())
    .await?)
}
