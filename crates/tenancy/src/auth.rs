//! Sign-up, log-in with throttling, refresh-token rotation, log-out and turning a bearer
//! credential into a principal.

use crate::caller::Caller;
use crate::crypto;
use crate::entity::{api_key, login_failure, session, user};
use crate::error::{Error, Result};
use crate::model::{NewUser, Tokens, User};
use crate::repo::{normalize_email, validate_email, validate_name};
use crate::service::{ClientInfo, TenancyService};
use crate::throttle;
use audit::NewEvent;
use chrono::{DateTime, Utc};
use kernel::{ApiKeyId, OrgId, Principal, SessionId, TxMode, UserId};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, SqlErr,
};
use uuid::Uuid;

/// Prefix of API key secrets: `plsk_<org>_<key>_<secret>` ("platform secret key"), which
/// people and secret scanners cannot mistake for a public key.
pub(crate) const API_KEY_PREFIX: &str = "plsk_";
/// The prefix keys were issued with before: still accepted. (`pk_` reads as a public,
/// "publishable" key, which these never were.)
const LEGACY_API_KEY_PREFIX: &str = "pk_";
/// Prefix of refresh tokens.
const REFRESH_PREFIX: &str = "rt_";
const MIN_PASSWORD_CHARS: usize = 10;
const MAX_PASSWORD_CHARS: usize = 128;

impl TenancyService {
    /// Creates an account. The email must not be taken (compared case-insensitively).
    /// The password is hashed only after the cheap checks (input, the client address's
    /// sign-ups in the window, a taken email): abuse costs the abuser, not the platform.
    #[tracing::instrument(name = "tenancy.sign_up", skip_all, err(level = "debug"))]
    pub async fn sign_up(&self, input: NewUser, client: &ClientInfo) -> Result<User> {
        validate_email(&input.email)?;
        let name = validate_name("name", &input.name)?;
        let length = input.password.chars().count();
        if length < MIN_PASSWORD_CHARS {
            return Err(Error::invalid(
                "password",
                format!("must be at least {MIN_PASSWORD_CHARS} characters"),
            ));
        }
        if length > MAX_PASSWORD_CHARS {
            return Err(Error::invalid(
                "password",
                format!("must be at most {MAX_PASSWORD_CHARS} characters"),
            ));
        }
        let email = input.email.trim().to_owned();
        let normalized = normalize_email(&email);
        let now = self.clock.now();
        // Counted under a keyed hash: the table holds no address in plaintext.
        let ip_scope = client
            .ip
            .as_ref()
            .map(|ip| self.pseudonym(&format!("sign-up:ip:{ip}")));
        if let Some(scope) = &ip_scope {
            self.ensure_not_throttled(
                scope,
                self.settings.max_sign_ups_per_ip,
                self.settings.sign_up_window,
                now,
            )
            .await?;
        }
        let taken = user::Entity::find()
            .select_only()
            .column(user::Column::Id)
            .filter(user::Column::EmailNormalized.eq(&normalized))
            .into_tuple::<Uuid>()
            .one(self.db.conn())
            .await?;
        if taken.is_some() {
            return Err(Error::Conflict(
                "an account with this email already exists".into(),
            ));
        }
        let password_hash = crypto::hash_password(input.password).await?;
        let id = UserId::generate();
        let row = user::ActiveModel {
            id: Set(id.as_uuid()),
            email: Set(email.clone()),
            email_normalized: Set(normalized),
            name: Set(name.clone()),
            password_hash: Set(password_hash),
            created_at: Set(now),
            // The column's default (false): the application role may not set it.
            is_staff: sea_orm::ActiveValue::NotSet,
        };
        let tx = self.open(OrgId::PLATFORM, TxMode::Write).await?;
        if let Some(scope) = ip_scope {
            login_failure::Entity::insert(login_failure::ActiveModel {
                id: Set(Uuid::now_v7()),
                scope: Set(scope),
                occurred_at: Set(now),
            })
            .exec(tx.conn())
            .await?;
        }
        let user = match user::Entity::insert(row)
            .exec_with_returning(tx.conn())
            .await
        {
            Ok(row) => User::from(row),
            Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
                return Err(Error::Conflict(
                    "an account with this email already exists".into(),
                ));
            }
            Err(e) => return Err(e.into()),
        };
        let subject = format!("user:{id}");
        self.audit
            .record(
                &tx,
                NewEvent::new("user.signed_up", "user", Some(id))
                    .by(Principal::User(id))
                    .personal("email", &subject, None::<String>, Some(email))
                    .personal("name", &subject, None::<String>, Some(name)),
            )
            .await?;
        tx.commit().await?;
        Ok(user)
    }

    /// Checks the password and starts a session. Refused for a while after too many
    /// failures for the account or the client address.
    #[tracing::instrument(name = "tenancy.log_in", skip_all, err(level = "debug"))]
    pub async fn log_in(
        &self,
        email: &str,
        password: String,
        client: &ClientInfo,
    ) -> Result<Tokens> {
        let normalized = normalize_email(email);
        let (scopes, limits) = self.password_throttle(&normalized, client);
        let attempted = self.email_subject(&normalized);
        let now = self.clock.now();
        // Counted before the password is checked, atomically: parallel guesses each get
        // their own count, and those past a limit never reach the check.
        if let Err(refused) = throttle::admit(self.db.conn(), &scopes, &limits, now).await {
            let tx = self.open(OrgId::PLATFORM, TxMode::Write).await?;
            self.audit
                .record(
                    &tx,
                    NewEvent::new("user.login_throttled", "user", None::<String>)
                        .failed()
                        .client_of(&attempted)
                        .personal(
                            "email",
                            &attempted,
                            None::<String>,
                            Some(normalized.clone()),
                        ),
                )
                .await?;
            tx.commit().await?;
            return Err(refused);
        }

        let found = user::Entity::find()
            .filter(user::Column::EmailNormalized.eq(&normalized))
            .one(self.db.conn())
            .await?;
        let stored = found.as_ref().map(|u| u.password_hash.clone());
        let verified = crypto::verify_password(password, stored).await?;
        let tx = self.open(OrgId::PLATFORM, TxMode::Write).await?;
        let user = match found {
            Some(user) if verified => user,
            _ => {
                throttle::count(tx.conn(), &scopes.account, now, limits.window).await?;
                self.audit
                    .record(
                        &tx,
                        NewEvent::new("user.login_failed", "user", None::<String>)
                            .failed()
                            .client_of(&attempted)
                            .personal("email", &attempted, None::<String>, Some(normalized)),
                    )
                    .await?;
                tx.commit().await?;
                return Err(Error::InvalidCredentials);
            }
        };
        throttle::succeeded(tx.conn(), &scopes).await?;
        let family = SessionId::generate();
        let user_id = UserId::from_uuid(user.id);
        let refresh_token = self.insert_session(tx.conn(), user_id, family, now).await?;
        self.audit
            .record(
                &tx,
                NewEvent::new("user.logged_in", "session", Some(family))
                    .by(Principal::User(user_id)),
            )
            .await?;
        tx.commit().await?;
        self.issue(user.into(), family, refresh_token, now)
    }

    /// Drops log-in throttling counters whose window is over (the retention run).
    pub async fn forget_expired_throttles(&self) -> Result<u64> {
        let window = self.settings.failure_window;
        throttle::forget_expired(self.db.conn(), self.clock.now(), window).await
    }

    /// Trades a refresh token for a new pair. Each refresh token works once: presenting
    /// one that was already used revokes its whole session, since one of the two parties
    /// holding it is not the user.
    #[tracing::instrument(name = "tenancy.refresh", skip_all, err(level = "debug"))]
    pub async fn refresh(&self, refresh_token: &str) -> Result<Tokens> {
        let now = self.clock.now();
        let tx = self.open(OrgId::PLATFORM, TxMode::Write).await?;
        let row = session::Entity::find()
            .filter(session::Column::TokenHash.eq(crypto::digest(refresh_token)))
            .one(tx.conn())
            .await?
            .ok_or(Error::InvalidToken)?;
        let owner = Principal::User(UserId::from_uuid(row.user_id));
        if row.rotated_at.is_some() {
            revoke_family(tx.conn(), row.family_id, now).await?;
            self.audit
                .record(
                    &tx,
                    NewEvent::new("session.reuse_detected", "session", Some(row.family_id))
                        .failed()
                        .by(owner),
                )
                .await?;
            tx.commit().await?;
            return Err(Error::InvalidToken);
        }
        if row.revoked_at.is_some() || row.expires_at <= now {
            return Err(Error::InvalidToken);
        }
        // Only one of two concurrent refreshes with the same token wins the rotation.
        let rotated = session::Entity::update_many()
            .col_expr(session::Column::RotatedAt, Expr::value(now))
            .filter(session::Column::Id.eq(row.id))
            .filter(session::Column::RotatedAt.is_null())
            .exec(tx.conn())
            .await?;
        if rotated.rows_affected != 1 {
            return Err(Error::InvalidToken);
        }
        let user: User = user::Entity::find_by_id(row.user_id)
            .one(tx.conn())
            .await?
            .ok_or(Error::InvalidToken)?
            .into();
        let family = SessionId::from_uuid(row.family_id);
        let refresh_token = self.insert_session(tx.conn(), user.id, family, now).await?;
        self.audit
            .record(
                &tx,
                NewEvent::new("session.refreshed", "session", Some(family)).by(owner),
            )
            .await?;
        tx.commit().await?;
        self.issue(user, family, refresh_token, now)
    }

    /// Ends the session the access token belongs to: its refresh tokens stop working and
    /// so does the access token itself.
    #[tracing::instrument(name = "tenancy.log_out", skip_all, err(level = "debug"))]
    pub async fn log_out(&self, session: SessionId) -> Result<()> {
        let tx = self.open(OrgId::PLATFORM, TxMode::Write).await?;
        revoke_family(tx.conn(), session.as_uuid(), self.clock.now()).await?;
        self.audit
            .record(
                &tx,
                NewEvent::new("session.revoked", "session", Some(session)),
            )
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Turns `Authorization: Bearer <credential>` into a caller: the person of a validly
    /// signed access token, or an API key of the right form. Whether the session is live,
    /// or the key's secret right (and the key unrevoked, unexpired), is established later
    /// in the request, where it first enters its organization (see [`Caller`]).
    #[tracing::instrument(name = "tenancy.authenticate", skip_all, err(level = "debug"))]
    pub async fn authenticate(&self, credential: &str) -> Result<Caller> {
        if let Some(rest) = credential
            .strip_prefix(API_KEY_PREFIX)
            .or_else(|| credential.strip_prefix(LEGACY_API_KEY_PREFIX))
        {
            return api_key_caller(rest);
        }
        let claims = self.signer.verify(credential, self.clock.now())?;
        Ok(Caller::of_session(
            Principal::User(claims.user),
            claims.session,
        ))
    }

    async fn ensure_not_throttled(
        &self,
        scope: &str,
        limit: u64,
        window: chrono::Duration,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let since = now - window;
        let recent: Vec<DateTime<Utc>> = login_failure::Entity::find()
            .select_only()
            .column(login_failure::Column::OccurredAt)
            .filter(login_failure::Column::Scope.eq(scope))
            .filter(login_failure::Column::OccurredAt.gt(since))
            .order_by_desc(login_failure::Column::OccurredAt)
            // SQL limits are signed: a setting of "no limit" (u64::MAX) must not
            // overflow the bound parameter.
            .limit(limit.min(i64::MAX.unsigned_abs()))
            .into_tuple()
            .all(self.db.conn())
            .await?;
        match recent.last() {
            Some(oldest) if recent.len() as u64 >= limit => Err(Error::Throttled {
                retry_after_secs: (*oldest + window - now).num_seconds().max(1),
            }),
            _ => Ok(()),
        }
    }

    async fn insert_session(
        &self,
        conn: &impl ConnectionTrait,
        user: UserId,
        family: SessionId,
        now: DateTime<Utc>,
    ) -> Result<String> {
        let token = format!("{REFRESH_PREFIX}{}", crypto::random_secret());
        session::Entity::insert(session::ActiveModel {
            id: Set(Uuid::now_v7()),
            user_id: Set(user.as_uuid()),
            family_id: Set(family.as_uuid()),
            token_hash: Set(crypto::digest(&token)),
            expires_at: Set(now + self.settings.refresh_token_ttl),
            rotated_at: Set(None),
            revoked_at: Set(None),
            created_at: Set(now),
        })
        .exec(conn)
        .await?;
        Ok(token)
    }

    fn issue(
        &self,
        user: User,
        family: SessionId,
        refresh_token: String,
        now: DateTime<Utc>,
    ) -> Result<Tokens> {
        let (access_token, expires_at) =
            self.signer
                .sign(user.id, family, now, self.settings.access_token_ttl)?;
        Ok(Tokens {
            access_token,
            refresh_token,
            expires_at,
            user,
        })
    }

    /// A user by id.
    pub async fn user(&self, id: UserId) -> Result<User> {
        user::Entity::find_by_id(id.as_uuid())
            .one(self.db.conn())
            .await?
            .map(User::from)
            .ok_or(Error::NotFound { entity: "user" })
    }

    /// The accounts among `ids`, in one query (authors and reviewers of records the
    /// caller was already allowed to read).
    pub async fn users(&self, ids: &[UserId]) -> Result<Vec<User>> {
        self.users_on(self.db.conn(), ids).await
    }

    /// [`Self::users`] on a connection or transaction the caller already holds (users
    /// are platform-wide, so any organization's transaction reads them).
    pub async fn users_on(&self, conn: &impl ConnectionTrait, ids: &[UserId]) -> Result<Vec<User>> {
        crate::repo::public_users(conn, ids.iter().map(|id| id.as_uuid())).await
    }
}

async fn revoke_family(
    conn: &impl ConnectionTrait,
    family: Uuid,
    now: DateTime<Utc>,
) -> Result<()> {
    session::Entity::update_many()
        .col_expr(session::Column::RevokedAt, Expr::value(now))
        .filter(session::Column::FamilyId.eq(family))
        .filter(session::Column::RevokedAt.is_null())
        .exec(conn)
        .await?;
    Ok(())
}

/// The caller of an API key `plsk_<org>_<key>_<secret>` (the prefix taken off), its
/// secret kept as a digest only, to compare with the key's row.
fn api_key_caller(rest: &str) -> Result<Caller> {
    let mut parts = rest.splitn(3, '_');
    let (Some(org), Some(key), Some(secret)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(Error::InvalidToken);
    };
    let (Ok(org), Ok(key)) = (Uuid::try_parse(org), Uuid::try_parse(key)) else {
        return Err(Error::InvalidToken);
    };
    let principal = Principal::ApiKey {
        key: ApiKeyId::from_uuid(key),
        org: OrgId::from_uuid(org),
    };
    Ok(Caller::of_key(principal, crypto::digest(secret)))
}

impl TenancyService {
    /// Keeps an API key's `lastUsedAt` to the minute (in the transaction that meters its
    /// call; nothing is written while it is less than a minute old).
    pub async fn note_key_use(&self, tx: &kernel::TenantTx, caller: &Caller) -> Result<()> {
        let Principal::ApiKey { key, .. } = caller.claimed() else {
            return Ok(());
        };
        let now = self.clock.now();
        // Recorded by this process less than a minute ago: nothing to write (the statement
        // below would change no row), so no statement. Remembered once the write commits.
        if self
            .key_uses
            .noted_since(key.as_uuid(), now - KEY_USE_PRECISION)
        {
            return Ok(());
        }
        let key_uses = self.key_uses.clone();
        tx.after_commit(move || key_uses.note(key.as_uuid(), now));
        api_key::Entity::update_many()
            .col_expr(api_key::Column::LastUsedAt, Expr::value(now))
            .filter(api_key::Column::OrganizationId.eq(tx.org_id().as_uuid()))
            .filter(api_key::Column::Id.eq(key.as_uuid()))
            .filter(
                sea_orm::Condition::any()
                    .add(api_key::Column::LastUsedAt.is_null())
                    .add(api_key::Column::LastUsedAt.lt(now - KEY_USE_PRECISION)),
            )
            .exec(tx.conn())
            .await?;
        Ok(())
    }
}

/// How precisely an API key's `last_used_at` follows its calls: it is written at most
/// once in this long per key.
const KEY_USE_PRECISION: chrono::Duration = chrono::Duration::minutes(1);

/// When this process last recorded each API key's use, so that a key calling many times
/// a minute costs its call no statement. Bounded: past `KEY_USES_KEPT` keys the oldest
/// notes are forgotten (a forgotten key's next call writes again, which is harmless).
#[derive(Debug, Default)]
pub(crate) struct KeyUses(
    std::sync::Mutex<std::collections::HashMap<uuid::Uuid, chrono::DateTime<chrono::Utc>>>,
);

const KEY_USES_KEPT: usize = 100_000;

impl KeyUses {
    /// Whether `key`'s use was recorded at or after `since`.
    fn noted_since(&self, key: uuid::Uuid, since: chrono::DateTime<chrono::Utc>) -> bool {
        let noted = self.0.lock().unwrap_or_else(|p| p.into_inner());
        noted.get(&key).is_some_and(|at| *at >= since)
    }

    /// Remembers that `key`'s use was recorded at `at`.
    fn note(&self, key: uuid::Uuid, at: chrono::DateTime<chrono::Utc>) {
        let mut noted = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if noted.len() >= KEY_USES_KEPT && !noted.contains_key(&key) {
            let stale = at - KEY_USE_PRECISION;
            noted.retain(|_, when| *when >= stale);
            if noted.len() >= KEY_USES_KEPT {
                noted.clear();
            }
        }
        noted.insert(key, at);
    }
}

#[cfg(test)]
mod key_use_tests {
    use super::*;

    #[test]
    fn a_key_is_noted_for_a_minute_and_the_notes_stay_bounded() {
        let uses = KeyUses::default();
        let start = chrono::DateTime::<chrono::Utc>::UNIX_EPOCH;
        let key = uuid::Uuid::from_u128(1);
        assert!(!uses.noted_since(key, start - KEY_USE_PRECISION));
        uses.note(key, start);
        assert!(uses.noted_since(
            key,
            start + chrono::Duration::seconds(59) - KEY_USE_PRECISION
        ));
        assert!(!uses.noted_since(
            key,
            start + chrono::Duration::seconds(61) - KEY_USE_PRECISION
        ));
        for n in 0..(KEY_USES_KEPT as u128 + 10) {
            uses.note(
                uuid::Uuid::from_u128(n + 2),
                start + chrono::Duration::minutes(5),
            );
        }
        assert!(uses.0.lock().unwrap().len() <= KEY_USES_KEPT);
    }
}
