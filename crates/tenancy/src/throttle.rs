//! Log-in throttling: attempts counted per scope in a fixed window, each by one atomic
//! upsert that returns the new count, so parallel guesses cannot all slip under a limit.
//!
//! Three scopes, so that throttling stops guessing without locking the owner out:
//! - an account from one address: at most `max_failures_per_account` attempts that did
//!   not succeed (the guesser's own address is what gets refused);
//! - an address, whatever the account: at most `max_failures_per_ip`;
//! - an account from anywhere: once it has `max_failures_per_account` failures, only
//!   addresses without a failure on it in the window may still try. A correct password
//!   from a fresh address is let in, so ten wrong guesses lock nobody out.

use crate::entity::login_throttle::{ActiveModel, Column, Entity, Model};
use crate::error::{Error, Result};
use chrono::{DateTime, Duration, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};

/// The scopes one log-in attempt counts in.
pub(crate) struct LogInScopes {
    /// The account, from this address.
    pub pair: String,
    /// This address.
    pub address: String,
    /// The account, from anywhere.
    pub account: String,
}

impl LogInScopes {
    /// The scopes of an attempt, each stored as `pseudonym(scope)` (a keyed hash): the
    /// counters hold no email or address in plaintext.
    pub(crate) fn new(
        normalized_email: &str,
        address: Option<&str>,
        pseudonym: impl Fn(&str) -> String,
    ) -> Self {
        let address = address.unwrap_or("unknown");
        Self {
            pair: pseudonym(&format!("account-address:{normalized_email}|{address}")),
            address: pseudonym(&format!("address:{address}")),
            account: pseudonym(&format!("account:{normalized_email}")),
        }
    }
}

/// Limits and window.
pub(crate) struct Limits {
    pub per_account: u64,
    pub per_address: u64,
    pub window: Duration,
}

impl crate::service::TenancyService {
    /// The counters and limits a password check of the account with `normalized_email`
    /// from `client` counts in (log-in and re-authentication share them).
    pub(crate) fn password_throttle(
        &self,
        normalized_email: &str,
        client: &crate::service::ClientInfo,
    ) -> (LogInScopes, Limits) {
        let scopes = LogInScopes::new(normalized_email, client.ip.as_deref(), |s| {
            self.pseudonym(s)
        });
        let limits = Limits {
            per_account: self.settings.max_failures_per_account,
            per_address: self.settings.max_failures_per_ip,
            window: self.settings.failure_window,
        };
        (scopes, limits)
    }
}

/// Counts an attempt in `scope` (starting a new window when the last one is over) and
/// returns the scope's counter after it: one statement, atomic on both engines.
pub(crate) async fn count(
    conn: &impl ConnectionTrait,
    scope: &str,
    now: DateTime<Utc>,
    window: Duration,
) -> Result<Model> {
    let expired = || Expr::col((Entity, Column::WindowStartedAt)).lte(now - window);
    let attempts = Expr::case(expired(), Expr::val(1i64))
        .finally(Expr::col((Entity, Column::Attempts)).add(1i64));
    let started =
        Expr::case(expired(), Expr::val(now)).finally(Expr::col((Entity, Column::WindowStartedAt)));
    let on_conflict = OnConflict::column(Column::Scope)
        .value(Column::Attempts, attempts)
        .value(Column::WindowStartedAt, started)
        .to_owned();
    let first = ActiveModel {
        scope: Set(scope.to_owned()),
        window_started_at: Set(now),
        attempts: Set(1),
    };
    Ok(Entity::insert(first)
        .on_conflict(on_conflict)
        .exec_with_returning(conn)
        .await?)
}

/// The scope's attempts in the current window (0 when none or the window is over).
async fn current(
    conn: &impl ConnectionTrait,
    scope: &str,
    now: DateTime<Utc>,
    window: Duration,
) -> Result<Option<Model>> {
    Ok(Entity::find_by_id(scope.to_owned())
        .filter(Column::WindowStartedAt.gt(now - window))
        .one(conn)
        .await?)
}

/// Counts a log-in attempt and decides whether it may check the password.
pub(crate) async fn admit(
    conn: &impl ConnectionTrait,
    scopes: &LogInScopes,
    limits: &Limits,
    now: DateTime<Utc>,
) -> Result<()> {
    let window = limits.window;
    let refused = |counter: &Model| Error::Throttled {
        retry_after_secs: Ord::max((counter.window_started_at + window - now).num_seconds(), 1),
    };
    let over = |counter: &Model, limit: u64| u64::try_from(counter.attempts).unwrap_or(0) > limit;
    let pair = count(conn, &scopes.pair, now, window).await?;
    if over(&pair, limits.per_account) {
        return Err(refused(&pair));
    }
    let address = count(conn, &scopes.address, now, window).await?;
    if over(&address, limits.per_address) {
        return Err(refused(&address));
    }
    // An account under attack: only addresses that have not failed on it may try.
    if pair.attempts > 1
        && let Some(account) = current(conn, &scopes.account, now, window).await?
        && u64::try_from(account.attempts).unwrap_or(0) >= limits.per_account
    {
        return Err(refused(&account));
    }
    Ok(())
}

/// After a correct password: the account's counters start over, and the attempt no
/// longer counts against the address.
pub(crate) async fn succeeded(conn: &impl ConnectionTrait, scopes: &LogInScopes) -> Result<()> {
    Entity::delete_many()
        .filter(Column::Scope.is_in([scopes.pair.as_str(), scopes.account.as_str()]))
        .exec(conn)
        .await?;
    Entity::update_many()
        .col_expr(Column::Attempts, Expr::col(Column::Attempts).sub(1i64))
        .filter(Column::Scope.eq(scopes.address.as_str()))
        .filter(Column::Attempts.gt(0))
        .exec(conn)
        .await?;
    Ok(())
}

/// Drops the counters whose window is over.
pub(crate) async fn forget_expired(
    conn: &impl ConnectionTrait,
    now: DateTime<Utc>,
    window: Duration,
) -> Result<u64> {
    let done = Entity::delete_many()
        .filter(Column::WindowStartedAt.lte(now - window))
        .exec(conn)
        .await?;
    Ok(done.rows_affected)
}
