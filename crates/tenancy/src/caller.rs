//! Who a request's credential says it is, and when that is known to be true.
//!
//! When the request starts, only what needs no database is checked: a person's access
//! token by its signature, an API key by its form. The rest (the log-in session still
//! live, not logged out or revoked for reuse of a refresh token; the key's secret right,
//! the key unrevoked and unexpired) is established once per request and lazily: inside
//! the statement that enters the first organization (no round trip of its own: the usual
//! case, and always for keys, whose calls are metered in their organization first), or
//! by a statement of its own ([`TenancyService::verify`]) for operations that enter
//! none. Either way nothing is read or written for the caller before it is known: the
//! principal is handed out only by [`TenancyService::verify`] and
//! [`TenancyService::enter`].

use crate::entity::{api_key, session};
use crate::error::{Error, Result};
use crate::service::TenancyService;
use kernel::{Principal, SessionId};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect};
use std::sync::{Arc, OnceLock};
use uuid::Uuid;

/// A request's caller as its credential names it (see the module documentation).
/// Clones share what has been established.
#[derive(Debug, Clone)]
pub struct Caller {
    principal: Principal,
    /// The person's log-in session.
    session: Option<SessionId>,
    /// The digest of the API key's secret, compared with the key's row where the key is
    /// first used.
    key_digest: Option<Arc<str>>,
    /// Whether the session is live (the key valid), once established.
    live: Arc<OnceLock<bool>>,
}

impl Caller {
    /// A principal the platform acts as on its own authority (the demo seed, the command
    /// line): no credential, nothing to verify. Never for a principal a request names.
    pub fn trusted(principal: Principal) -> Self {
        Self {
            principal,
            session: None,
            key_digest: None,
            live: Arc::new(OnceLock::from(true)),
        }
    }

    /// An API key whose secret (by its digest) is still to be compared with its row.
    pub(crate) fn of_key(principal: Principal, digest: String) -> Self {
        Self {
            principal,
            session: None,
            key_digest: Some(digest.into()),
            live: Arc::default(),
        }
    }

    /// A person whose token's signature verified, of a session not yet known to be live.
    pub(crate) fn of_session(principal: Principal, session: SessionId) -> Self {
        Self {
            principal,
            session: Some(session),
            key_digest: None,
            live: Arc::default(),
        }
    }

    /// The principal the credential names, whether or not it is known to be live yet:
    /// for logs and the request's trace, never to decide access.
    pub fn claimed(&self) -> Principal {
        self.principal
    }

    /// The person's log-in session (none for API keys).
    pub fn session(&self) -> Option<SessionId> {
        self.session
    }

    /// The session still to be checked, if any.
    pub(crate) fn unchecked_session(&self) -> Option<SessionId> {
        match self.live.get() {
            Some(_) => None,
            None => self.session,
        }
    }

    /// The digest of the key's secret, while the key is still to be checked.
    pub(crate) fn unchecked_key_digest(&self) -> Option<&str> {
        match self.live.get() {
            Some(_) => None,
            None => self.key_digest.as_deref(),
        }
    }

    /// Records whether the session is live (the first answer counts) and hands out the
    /// principal if it is.
    pub(crate) fn settle(&self, live: bool) -> Result<Principal> {
        let live = *self.live.get_or_init(|| live);
        if live {
            Ok(self.principal)
        } else {
            Err(Error::InvalidToken)
        }
    }

    /// The principal if it is known to be live; `InvalidToken` if it is known not to be;
    /// `None` while that is still open.
    pub fn established(&self) -> Option<Result<Principal>> {
        self.live.get().map(|live| self.settle(*live))
    }
}

impl TenancyService {
    /// The caller's principal, once its session is known to be live (`InvalidToken` if
    /// it is not); checked with a statement of its own on `conn` if no earlier step of
    /// the request established it.
    pub async fn verify_on(
        &self,
        conn: &impl ConnectionTrait,
        caller: &Caller,
    ) -> Result<Principal> {
        if let Some(known) = caller.established() {
            return known;
        }
        if let Some(digest) = caller.unchecked_key_digest() {
            return self.verify_key(caller, digest).await;
        }
        let Some(session) = caller.session else {
            return caller.settle(true);
        };
        let Some(user) = caller.principal.user_id() else {
            return caller.settle(false);
        };
        let live = session::Entity::find()
            .select_only()
            .column(session::Column::Id)
            .filter(session::Column::FamilyId.eq(session.as_uuid()))
            .filter(session::Column::UserId.eq(user.as_uuid()))
            .filter(session::Column::RevokedAt.is_null())
            .into_tuple::<Uuid>()
            .one(conn)
            .await?
            .is_some();
        caller.settle(live)
    }

    /// Compares an API key's secret with its row (unrevoked, unexpired), in a transaction
    /// of the key's organization. Reached only when no organization was entered first:
    /// a key's request is metered, which enters its organization and settles this, before
    /// any of its operations runs.
    async fn verify_key(&self, caller: &Caller, digest: &str) -> Result<Principal> {
        let Principal::ApiKey { key, org } = caller.principal else {
            return caller.settle(false);
        };
        let tx = self.open(org, kernel::TxMode::Read).await?;
        let valid = key_is_valid(tx.conn(), (org, key), digest, self.clock.now()).await;
        tx.rollback().await?;
        caller.settle(valid?)
    }

    /// [`Self::verify_on`] with a connection from the pool.
    pub async fn verify(&self, caller: &Caller) -> Result<Principal> {
        self.verify_on(self.db.conn(), caller).await
    }
}

/// Whether the key `key` of `org` exists with the secret of `digest`, unrevoked and
/// unexpired at `now` (`conn`: a transaction of that organization).
pub(crate) async fn key_is_valid(
    conn: &impl ConnectionTrait,
    (org, key): (kernel::OrgId, kernel::ApiKeyId),
    digest: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<bool> {
    let row = api_key::Entity::find()
        .filter(api_key::Column::OrganizationId.eq(org.as_uuid()))
        .filter(api_key::Column::Id.eq(key.as_uuid()))
        .one(conn)
        .await?;
    Ok(row.is_some_and(|row| {
        row.revoked_at.is_none()
            && row.expires_at.is_none_or(|expiry| expiry > now)
            && crate::crypto::digests_equal(&row.secret_hash, digest)
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kernel::UserId;

    #[test]
    fn a_session_is_settled_once_and_its_clones_share_the_answer() {
        let principal = Principal::User(UserId::from_uuid(Uuid::now_v7()));
        let caller = Caller::of_session(principal, SessionId::from_uuid(Uuid::now_v7()));
        let clone = caller.clone();
        assert!(caller.established().is_none());
        assert!(caller.unchecked_session().is_some());
        assert!(matches!(clone.settle(false), Err(Error::InvalidToken)));
        // A later answer does not overturn the first.
        assert!(matches!(caller.settle(true), Err(Error::InvalidToken)));
        assert!(matches!(
            caller.established(),
            Some(Err(Error::InvalidToken))
        ));
        assert!(caller.unchecked_session().is_none());
    }

    #[test]
    fn a_trusted_principal_is_verified_from_the_start() {
        let principal = Principal::ApiKey {
            key: kernel::ApiKeyId::from_uuid(Uuid::now_v7()),
            org: kernel::OrgId::from_uuid(Uuid::now_v7()),
        };
        let caller = Caller::trusted(principal);
        assert!(caller.unchecked_session().is_none());
        assert!(matches!(caller.established(), Some(Ok(p)) if p == principal));
    }
}
