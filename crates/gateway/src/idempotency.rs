//! `Idempotency-Key` on mutations (Stripe's semantics): the key belongs to the
//! organization and the caller; the first request with it claims it in the transaction
//! that makes its change, so the claim exists exactly when the change committed; its
//! answer is kept for 24 hours and replayed to a retry with `Idempotent-Replayed: true`.
//! The same key with another request is `CONFLICT` (`reason = "IDEMPOTENCY_KEY_REUSED"`);
//! a duplicate sent while the first runs waits for its answer, or after
//! [`WAIT_FOR_FIRST`] answers `CONFLICT` (`reason = "IN_PROGRESS"`).

use crate::error::ApiError;
use async_graphql::Request;
use kernel::{OrgId, TenantTx};
use sha2::{Digest, Sha256};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// The request header.
pub const HEADER: &str = "idempotency-key";
/// The answer header of a replay.
pub const REPLAYED: &str = "idempotent-replayed";
/// How long a duplicate waits for the first request's answer.
pub const WAIT_FOR_FIRST: Duration = Duration::from_secs(5);
/// How often it looks.
pub const LOOK_EVERY: Duration = Duration::from_millis(50);

/// `IDEMPOTENCY_KEY_REUSED`.
pub const REUSED: ApiError = ApiError::Idempotency {
    reason: "IDEMPOTENCY_KEY_REUSED",
    message: "this Idempotency-Key was used for another request in the last 24 hours; use a new key for a new request",
};
/// `IN_PROGRESS`.
pub const IN_PROGRESS: ApiError = ApiError::Idempotency {
    reason: "IN_PROGRESS",
    message: "a request with this Idempotency-Key is still running; retry shortly to get its answer",
};

/// Reads the header: 1 to 255 visible ASCII characters. `Err` with why not.
pub fn key_of(headers: &axum::http::HeaderMap) -> Result<Option<String>, &'static str> {
    let Some(value) = headers.get(HEADER) else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .ok()
        .filter(|k| {
            !k.is_empty()
                && k.len() <= tenancy::MAX_IDEMPOTENCY_KEY_CHARS
                && k.bytes().all(|b| b.is_ascii_graphic())
        })
        .ok_or("Idempotency-Key must be 1 to 255 visible ASCII characters (a UUID, say)")?;
    Ok(Some(key.to_owned()))
}

/// What makes two requests the same: operation name, document text and variables.
pub fn fingerprint(request: &Request) -> String {
    let mut hash = Sha256::new();
    hash.update(request.operation_name.as_deref().unwrap_or_default());
    hash.update([0]);
    hash.update(&request.query);
    hash.update([0]);
    // Variables are an ordered map: the same values serialize the same.
    hash.update(serde_json::to_vec(&request.variables).unwrap_or_default());
    hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// A mutation's claim on its key, made by the first write unit of its organization.
#[derive(Debug)]
pub struct IdempotencyClaim {
    /// The organization.
    pub org: OrgId,
    /// The caller (a person's or a key's id).
    pub principal: uuid::Uuid,
    /// The key.
    pub key: String,
    /// What the request is.
    pub fingerprint: String,
    recorded: AtomicBool,
    lost: AtomicBool,
}

impl IdempotencyClaim {
    /// A claim not made yet.
    pub fn new(org: OrgId, principal: uuid::Uuid, key: String, fingerprint: String) -> Self {
        Self {
            org,
            principal,
            key,
            fingerprint,
            recorded: AtomicBool::new(false),
            lost: AtomicBool::new(false),
        }
    }

    /// Claims the key in `tx` (the operation's first write of the organization) before
    /// its change: `IN_PROGRESS` when another request holds it.
    pub async fn claim_in(
        &self,
        tenancy: &tenancy::TenancyService,
        tx: &TenantTx,
    ) -> Result<(), ApiError> {
        if tx.org_id() != self.org || self.recorded.load(Ordering::Acquire) {
            return Ok(());
        }
        if tenancy
            .claim_idempotency_key(tx, self.principal, &self.key, &self.fingerprint)
            .await?
        {
            // Holds once `tx` commits; a rollback takes the claim with the change.
            self.recorded.store(true, Ordering::Release);
            Ok(())
        } else {
            self.lost.store(true, Ordering::Release);
            Err(IN_PROGRESS)
        }
    }

    /// Whether a write unit claimed the key (and so it committed if the unit did).
    pub fn recorded(&self) -> bool {
        self.recorded.load(Ordering::Acquire)
    }

    /// Whether another request held the key when this one tried to claim it.
    pub fn lost(&self) -> bool {
        self.lost.load(Ordering::Acquire)
    }
}

/// What an earlier request with the key says about this one.
pub enum Earlier {
    /// It ran: its answer, to replay.
    Replay(Box<async_graphql::Response>),
    /// None ran: this request claims the key when it writes.
    New(std::sync::Arc<IdempotencyClaim>),
}

/// Looks for the caller's earlier request with `key` in `org`: its answer if it is the
/// same request and done (waiting up to [`WAIT_FOR_FIRST`] while its answer is being
/// written), `IDEMPOTENCY_KEY_REUSED` if it was another request.
pub async fn look_up(
    app: &crate::startup::AppState,
    caller: &tenancy::Caller,
    org: OrgId,
    key: String,
    fingerprint: String,
) -> Result<Earlier, ApiError> {
    let principal = principal_id(caller);
    let deadline = tokio::time::Instant::now() + WAIT_FOR_FIRST;
    loop {
        let (tx, _) = app.tenancy.enter(caller, org, kernel::TxMode::Read).await?;
        let earlier = app.tenancy.idempotent_request(&tx, principal, &key).await?;
        drop(tx);
        match earlier {
            None => {
                return Ok(Earlier::New(std::sync::Arc::new(IdempotencyClaim::new(
                    org,
                    principal,
                    key,
                    fingerprint,
                ))));
            }
            Some(earlier) if earlier.fingerprint != fingerprint => return Err(REUSED),
            Some(tenancy::IdempotentRequest {
                response: Some(answer),
                ..
            }) => return Ok(Earlier::Replay(Box::new(replayed(&answer)?))),
            Some(_) if tokio::time::Instant::now() >= deadline => return Err(IN_PROGRESS),
            Some(_) => tokio::time::sleep(LOOK_EVERY).await,
        }
    }
}

/// After the mutation ran: keeps its answer for retries (if it claimed the key, or made
/// no write unit of the organization and succeeded: then claimed now), or, if another
/// request held the key, answers with that request's answer.
pub async fn settle(
    app: &crate::startup::AppState,
    caller: &tenancy::Caller,
    claim: &IdempotencyClaim,
    response: async_graphql::Response,
) -> async_graphql::Response {
    if claim.lost() {
        return match look_up(
            app,
            caller,
            claim.org,
            claim.key.clone(),
            claim.fingerprint.clone(),
        )
        .await
        {
            Ok(Earlier::Replay(first)) => *first,
            Ok(Earlier::New(_)) => response,
            Err(error) => {
                async_graphql::Response::from_errors(vec![crate::http::server_error(error)])
            }
        };
    }
    if !claim.recorded() && !response.errors.is_empty() {
        return response;
    }
    let kept = async {
        let (tx, _) = app
            .tenancy
            .enter(caller, claim.org, kernel::TxMode::Write)
            .await?;
        let claimed = claim.recorded()
            || app
                .tenancy
                .claim_idempotency_key(&tx, claim.principal, &claim.key, &claim.fingerprint)
                .await?;
        if claimed {
            let answer = serde_json::to_string(&response).unwrap_or_default();
            app.tenancy
                .store_idempotent_response(&tx, claim.principal, &claim.key, &answer)
                .await?;
        }
        tx.commit().await?;
        Ok::<_, tenancy::Error>(())
    };
    if let Err(error) = kept.await {
        // The change stands; a retry finds the claim without an answer and is told
        // `IN_PROGRESS` until the claim expires.
        tracing::warn!(error = ?error, "the answer of an idempotent request could not be kept");
    }
    response
}

/// The id a claim is kept under: the person's or the key's.
fn principal_id(caller: &tenancy::Caller) -> uuid::Uuid {
    match caller.claimed() {
        kernel::Principal::User(user) => user.as_uuid(),
        kernel::Principal::ApiKey { key, .. } => key.as_uuid(),
    }
}

/// A kept answer, marked as a replay.
fn replayed(answer: &str) -> Result<async_graphql::Response, ApiError> {
    let mut response: async_graphql::Response = serde_json::from_str(answer).map_err(|e| {
        ApiError::Db(sea_orm::DbErr::Custom(format!(
            "a kept answer is corrupt: {e}"
        )))
    })?;
    response
        .http_headers
        .insert(REPLAYED, axum::http::HeaderValue::from_static("true"));
    Ok(response)
}
