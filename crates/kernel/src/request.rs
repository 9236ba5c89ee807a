//! What the audit trail needs to know about the request a change happens in: who acts
//! (and on whose behalf), the request id, the operation, the client's address and user
//! agent. The gateway sets it once per operation as a task-local; services and the audit
//! writer read it without threading it through every call.

use crate::id::UserId;
use crate::principal::Principal;
use std::future::Future;

/// Facts about the current request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestMeta {
    /// The authenticated caller, if any.
    pub principal: Option<Principal>,
    /// The staff member acting through the caller's identity, if any.
    pub impersonator: Option<UserId>,
    /// `X-Request-Id` or a generated one.
    pub request_id: Option<String>,
    /// The GraphQL operation name or HTTP route.
    pub operation: Option<String>,
    /// The client's address.
    pub ip: Option<String>,
    /// The client's `User-Agent`.
    pub user_agent: Option<String>,
}

tokio::task_local! {
    static CURRENT: RequestMeta;
}

/// Runs `future` with `meta` as the current request.
pub async fn scope<F: Future>(meta: RequestMeta, future: F) -> F::Output {
    CURRENT.scope(meta, future).await
}

/// The current request's facts (empty outside a request: CLI, background jobs).
pub fn current() -> RequestMeta {
    CURRENT.try_with(Clone::clone).unwrap_or_default()
}
