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
/// How soon it looks again, at first (then twice as late each time, up to a second).
pub const LOOK_AGAIN: Duration = Duration::from_millis(25);
/// A claim without an answer this old belongs to a request that committed and then
/// could not keep its answer (its process stopped): the answer is lost, not coming.
pub const ANSWER_LOST_AFTER: chrono::Duration = chrono::Duration::minutes(2);

/// The mutations an Idempotency-Key is accepted with: each changes the active
/// organization through the operation's unit of work, which claims the key in the
/// change's own transaction. Others are refused with the key (`BAD_REQUEST`); a test
/// holds every mutation of the schema to one of the two lists.
pub const IDEMPOTENT_MUTATIONS: &[&str] = &[
    "acceptDataProcessingAgreement",
    "approveDocument",
    "archiveDocument",
    "assignRole",
    "cancelSubscription",
    "changeMemberRole",
    "changePlan",
    "createDocument",
    "createProject",
    "createRole",
    "deleteRole",
    "deleteWebhookEndpoint",
    "denyPermission",
    "grantAccess",
    "leaveOrganization",
    "payInvoice",
    "publishDocument",
    "purgeAuditEvents",
    "recordUsage",
    "redeliverWebhook",
    "registerTrustedDocuments",
    "removeDenyRule",
    "removeMember",
    "requestDataExport",
    "requestDocumentChanges",
    "revokeAccess",
    "revokeApiKey",
    "revokeInvitation",
    "revokeTrustedDocument",
    "setAuditRetention",
    "submitDocument",
    "unassignRole",
    "updateDocument",
    "updateProject",
    "updateRole",
    "updateWebhookEndpoint",
];

/// The mutations refused with an Idempotency-Key, and why.
pub const NOT_IDEMPOTENT_MUTATIONS: &[(&str, &str)] = &[
    (
        "createApiKey",
        "its answer holds a secret shown once, never kept",
    ),
    (
        "createWebhookEndpoint",
        "its answer holds the signing secret, shown once",
    ),
    (
        "rotateWebhookEndpointSecret",
        "its answer holds the signing secret, shown once",
    ),
    (
        "inviteMember",
        "its answer holds the invitation's secret token",
    ),
    (
        "resendInvitation",
        "its answer holds the invitation's secret token",
    ),
    ("signUp", "outside any organization"),
    ("logIn", "outside any organization; its answer holds tokens"),
    (
        "refreshToken",
        "outside any organization; its answer holds tokens",
    ),
    ("logOut", "outside any organization"),
    ("createOrganization", "outside any organization"),
    (
        "acceptInvitation",
        "outside any organization until it succeeds",
    ),
    ("deleteAccount", "outside any organization"),
    ("erasePersonalData", "outside any organization"),
    (
        "requestOrganizationDeletion",
        "names its organization in its input",
    ),
    (
        "cancelOrganizationDeletion",
        "names its organization in its input",
    ),
    (
        "importCatalog",
        "platform staff's, outside any organization",
    ),
];

/// `IDEMPOTENCY_KEY_REUSED`.
pub const REUSED: ApiError = ApiError::Idempotency {
    reason: "IDEMPOTENCY_KEY_REUSED",
    message: "this Idempotency-Key was used for another request in the last 24 hours; use a new key for a new request",
};
/// `ANSWER_LOST`.
pub const ANSWER_LOST: ApiError = ApiError::Idempotency {
    reason: "ANSWER_LOST",
    message: "the request with this Idempotency-Key completed, but its answer could not be kept; read the current state instead of retrying",
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
    // Through `serde_json::Value`, whose objects keep their keys sorted: the same values
    // hash the same whatever order the client wrote them in.
    let variables = serde_json::to_value(&request.variables).unwrap_or_default();
    hash.update(variables.to_string());
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
    /// Claimed in a write that committed.
    recorded: AtomicBool,
    /// Another request held the key.
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

    /// Claims the key in `tx` (a write of the operation in the claim's organization)
    /// before its change: whether it did (then [`Self::committed`] once `tx` commits);
    /// `IN_PROGRESS` when another request holds it. A write after one that committed
    /// the claim claims nothing; one after a write that rolled back claims again.
    pub async fn claim_in(
        &self,
        tenancy: &tenancy::TenancyService,
        tx: &TenantTx,
    ) -> Result<bool, ApiError> {
        if tx.org_id() != self.org || self.recorded.load(Ordering::Acquire) {
            return Ok(false);
        }
        if tenancy
            .claim_idempotency_key(tx, self.principal, &self.key, &self.fingerprint)
            .await?
        {
            Ok(true)
        } else {
            self.lost.store(true, Ordering::Release);
            Err(IN_PROGRESS)
        }
    }

    /// The transaction that claimed the key committed.
    pub fn committed(&self) {
        self.recorded.store(true, Ordering::Release);
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
    let principal = caller.claimed().id();
    let deadline = tokio::time::Instant::now() + WAIT_FOR_FIRST;
    let mut pause = LOOK_AGAIN;
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
            Some(earlier) if app.clock.now() - earlier.created_at > ANSWER_LOST_AFTER => {
                return Err(ANSWER_LOST);
            }
            Some(_) if tokio::time::Instant::now() >= deadline => return Err(IN_PROGRESS),
            Some(_) => {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(1));
            }
        }
    }
}

/// After the mutation ran: keeps its answer for retries if it claimed the key (its
/// change committed), or, if another request held the key, answers with that request's
/// answer.
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
                async_graphql::Response::from_errors(vec![crate::error::server_error(error)])
            }
        };
    }
    if !claim.recorded() {
        return response;
    }
    let kept = async {
        // The system's transaction: the caller may have left the organization (or
        // revoked their own key) in this very mutation.
        let tx = app.tenancy.system_tx(claim.org).await?;
        let answer = serde_json::to_string(&response).unwrap_or_default();
        app.tenancy
            .store_idempotent_response(&tx, claim.principal, &claim.key, &answer)
            .await?;
        tx.commit().await?;
        Ok::<_, tenancy::Error>(())
    };
    if let Err(error) = kept.await {
        // The change stands; a retry finds the claim without an answer: `IN_PROGRESS`
        // for a while, then `ANSWER_LOST`.
        tracing::warn!(error = ?error, "the answer of an idempotent request could not be kept");
    }
    response
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
