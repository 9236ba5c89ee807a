//! The one place errors become GraphQL errors: a message plus a stable `extensions.code`.
//! Internal failures are logged once, inside the request's span (so with its request
//! id), and the client sees a generic message, never SQL text.

use async_graphql::{ErrorExtensions, ServerError};
use kernel::{ClientError as _, Detail, Details, ErrorCode};

/// An error on its way to a GraphQL client.
#[derive(Debug)]
pub enum ApiError {
    /// From the tenancy services.
    Tenancy(tenancy::Error),
    /// From authorization.
    Authz(authz::Error),
    /// From the audit trail.
    Audit(audit::Error),
    /// From the core domain.
    Domain(core_domain::Error),
    /// From billing.
    Billing(billing::Error),
    /// From outbound webhooks.
    Webhooks(webhooks::Error),
    /// The organization's plan does not include a feature the operation needs.
    PlanFeature(&'static str),
    /// The operation needs a logged-in caller.
    Unauthenticated,
    /// The `Idempotency-Key` was used for another request, or its request is still
    /// running (`reason`: `IDEMPOTENCY_KEY_REUSED`, `IN_PROGRESS`).
    Idempotency {
        /// The stable reason.
        reason: &'static str,
        /// What the client is told.
        message: &'static str,
    },
    /// The operation needs a person, not an API key (or the other way round).
    WrongPrincipal(&'static str),
    /// The operation needs an active organization (`X-Organization-Id`).
    NoActiveOrganization,
    /// The database failed outside a domain service (commit, rollback).
    Db(sea_orm::DbErr),
    /// Malformed input the gateway itself checks (ids, cursors, page sizes).
    BadInput {
        /// The argument.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
}

/// Results of resolvers.
pub type GqlResult<T> = async_graphql::Result<T>;

impl ApiError {
    /// Malformed input.
    pub fn bad_input(field: &'static str, reason: impl Into<String>) -> Self {
        Self::BadInput {
            field,
            reason: reason.into(),
        }
    }

    /// The code clients see.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Tenancy(e) => e.code(),
            Self::Authz(e) => e.code(),
            Self::Audit(e) => e.code(),
            Self::Domain(e) => e.code(),
            Self::Billing(e) => e.code(),
            Self::Webhooks(e) => e.code(),
            Self::Unauthenticated => ErrorCode::Unauthenticated,
            Self::WrongPrincipal(_) | Self::PlanFeature(_) => ErrorCode::Forbidden,
            Self::NoActiveOrganization | Self::BadInput { .. } => ErrorCode::BadUserInput,
            Self::Db(e) => kernel::db_error_code(e),
            Self::Idempotency { .. } => ErrorCode::Conflict,
        }
    }

    /// The extensions beside the code: each crate's own details, and the gateway's.
    pub fn details(&self) -> Details {
        match self {
            // The status as the API names it (`IN_REVIEW`), not as it is stored.
            Self::Domain(core_domain::Error::IllegalTransition { status, .. }) => Details::none()
                .with(
                    "status",
                    crate::graphql::types::document::DocumentStatus::graphql_name(*status),
                ),
            Self::Tenancy(e) => e.details(),
            Self::Authz(e) => e.details(),
            Self::Audit(e) => e.details(),
            Self::Domain(e) => e.details(),
            Self::Billing(e) => e.details(),
            Self::Webhooks(e) => e.details(),
            Self::PlanFeature(feature) => Details::reason("PLAN_FEATURE").with("feature", *feature),
            Self::Idempotency { reason, .. } => Details::reason(reason),
            Self::BadInput { field, .. } => Details::field(field),
            Self::Unauthenticated
            | Self::WrongPrincipal(_)
            | Self::NoActiveOrganization
            | Self::Db(_) => Details::none(),
        }
    }

    fn message(&self) -> String {
        match self {
            Self::Tenancy(e) => e.to_string(),
            Self::Authz(e) => e.to_string(),
            Self::Audit(e) => e.to_string(),
            Self::Domain(e) => e.to_string(),
            Self::Billing(e) => e.to_string(),
            Self::Webhooks(e) => e.to_string(),
            Self::Unauthenticated => {
                "authentication required: send Authorization: Bearer <token>".into()
            }
            Self::WrongPrincipal(what) => (*what).to_owned(),
            Self::PlanFeature(feature) => format!(
                "the organization's plan does not include {feature}: change the plan to use it"
            ),
            Self::NoActiveOrganization => {
                "no active organization: send the X-Organization-Id header".into()
            }
            Self::BadInput { field, reason } => format!("invalid {field}: {reason}"),
            Self::Db(e) => e.to_string(),
            Self::Idempotency { message, .. } => (*message).to_owned(),
        }
    }
}

impl From<tenancy::Error> for ApiError {
    fn from(e: tenancy::Error) -> Self {
        Self::Tenancy(e)
    }
}

impl From<authz::Error> for ApiError {
    fn from(e: authz::Error) -> Self {
        Self::Authz(e)
    }
}

impl From<core_domain::Error> for ApiError {
    fn from(e: core_domain::Error) -> Self {
        Self::Domain(e)
    }
}

impl From<billing::Error> for ApiError {
    fn from(e: billing::Error) -> Self {
        Self::Billing(e)
    }
}

impl From<webhooks::Error> for ApiError {
    fn from(e: webhooks::Error) -> Self {
        Self::Webhooks(e)
    }
}

impl From<audit::Error> for ApiError {
    fn from(e: audit::Error) -> Self {
        Self::Audit(e)
    }
}

impl From<sea_orm::DbErr> for ApiError {
    fn from(e: sea_orm::DbErr) -> Self {
        Self::Db(e)
    }
}

impl From<ApiError> for async_graphql::Error {
    fn from(e: ApiError) -> Self {
        let code = e.code();
        let message = match code {
            ErrorCode::Internal => {
                tracing::error!(error = ?e, "internal error");
                "internal error".to_owned()
            }
            ErrorCode::ServiceUnavailable => {
                tracing::warn!(error = ?e, "database unavailable");
                UNAVAILABLE_MESSAGE.to_owned()
            }
            _ => e.message(),
        };
        async_graphql::Error::new(message).extend_with(|_, ext| {
            ext.set("code", code.as_str());
            if code == ErrorCode::ServiceUnavailable {
                ext.set("retryAfterSeconds", RETRY_AFTER_SECS);
            }
            for (key, value) in e.details().iter() {
                match value {
                    Detail::Text(text) => ext.set(key, text.as_str()),
                    Detail::Number(number) => ext.set(key, *number),
                }
            }
        })
    }
}

/// The HTTP status an error code answers with outside GraphQL (downloads, ingestion):
/// GraphQL answers 200 with the code in the body, these answer with the status too.
pub fn http_status(code: ErrorCode) -> axum::http::StatusCode {
    use axum::http::StatusCode;
    match code {
        ErrorCode::Unauthenticated => StatusCode::UNAUTHORIZED,
        ErrorCode::Forbidden => StatusCode::FORBIDDEN,
        ErrorCode::NotFound => StatusCode::NOT_FOUND,
        ErrorCode::Conflict => StatusCode::CONFLICT,
        ErrorCode::PaymentRequired => StatusCode::PAYMENT_REQUIRED,
        ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        // The plan allows no more: not a rate, nothing to retry.
        ErrorCode::LimitExceeded => StatusCode::FORBIDDEN,
        ErrorCode::ServiceUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::Timeout => StatusCode::GATEWAY_TIMEOUT,
        ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        ErrorCode::BadUserInput
        | ErrorCode::BadRequest
        | ErrorCode::GraphqlParseFailed
        | ErrorCode::GraphqlValidationFailed
        | ErrorCode::QueryTooDeep
        | ErrorCode::QueryTooComplex
        | ErrorCode::QueryTooLarge
        | ErrorCode::PersistedQueryNotFound
        | ErrorCode::PersistedQueryNotInList => StatusCode::BAD_REQUEST,
    }
}

/// An answer outside GraphQL in the GraphQL error shape (`{"errors": [{message,
/// extensions}]}`), with `status`.
pub fn http_error(status: axum::http::StatusCode, error: ServerError) -> axum::response::Response {
    use axum::http::header;
    use axum::response::IntoResponse as _;
    let body = serde_json::json!({ "errors": [error] }).to_string();
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// An error outside any field (refused before execution), with its code and extensions.
pub fn server_error(error: ApiError) -> ServerError {
    let error = async_graphql::Error::from(error);
    let mut server = ServerError::new(error.message, None);
    server.extensions = error.extensions;
    server
}

/// Outside GraphQL an error answers as it would inside (the same message, code and
/// details, internal failures logged once and not shown), with the status of its code;
/// `SERVICE_UNAVAILABLE` also says `Retry-After`.
impl axum::response::IntoResponse for ApiError {
    fn into_response(self) -> axum::response::Response {
        let code = self.code();
        let mut response = http_error(http_status(code), server_error(self));
        if code == ErrorCode::ServiceUnavailable {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, RETRY_AFTER_SECS.into());
        }
        response
    }
}

/// What a client is told when the database could not be reached.
pub const UNAVAILABLE_MESSAGE: &str = "the service is temporarily unavailable: retry shortly";

/// Seconds a client should wait before retrying a `SERVICE_UNAVAILABLE` answer (also sent
/// as `Retry-After`).
pub const RETRY_AFTER_SECS: u64 = 1;

/// `?` on a domain result inside a resolver: `service.call().await.gql()?`.
pub trait ResultExt<T> {
    /// Converts the error into a GraphQL error with its code.
    fn gql(self) -> GqlResult<T>;
}

impl<T, E: Into<ApiError>> ResultExt<T> for Result<T, E> {
    fn gql(self) -> GqlResult<T> {
        self.map_err(|e| async_graphql::Error::from(e.into()))
    }
}

/// A request-level error (no resolver ran) with a code.
pub fn request_error(code: ErrorCode, message: impl Into<String>) -> ServerError {
    let mut error = ServerError::new(message, None);
    let mut ext = async_graphql::ErrorExtensionValues::default();
    ext.set("code", code.as_str());
    error.extensions = Some(ext);
    error
}

/// Gives an error that has no code `fallback` (async-graphql's own errors are classified
/// by stage in `http::respond::add_missing_codes`).
pub fn ensure_code(error: &mut ServerError, fallback: ErrorCode) {
    let has_code = error
        .extensions
        .as_ref()
        .is_some_and(|ext| ext.get("code").is_some());
    if !has_code {
        error
            .extensions
            .get_or_insert_with(Default::default)
            .set("code", fallback.as_str());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::response::IntoResponse as _;

    async fn answer(error: ApiError) -> (u16, Option<String>, serde_json::Value) {
        let response = error.into_response();
        let status = response.status().as_u16();
        let retry = response
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap_or_default().to_owned());
        let body = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .expect("body");
        (status, retry, serde_json::from_slice(&body).expect("json"))
    }

    #[tokio::test]
    async fn outside_graphql_an_error_answers_with_its_code_details_and_status() {
        let (status, retry, body) = answer(ApiError::PlanFeature("audit_export")).await;
        assert_eq!((status, retry), (403, None));
        let extensions = &body["errors"][0]["extensions"];
        assert_eq!(extensions["code"], "FORBIDDEN");
        assert_eq!(extensions["reason"], "PLAN_FEATURE");
        assert_eq!(extensions["feature"], "audit_export");

        let exceeded = kernel::LimitExceeded {
            limit: kernel::Limit::Projects,
            max: 3,
            usage: 3,
        };
        let (status, _, body) = answer(tenancy::Error::LimitExceeded(exceeded).into()).await;
        assert_eq!(status, 403);
        assert_eq!(body["errors"][0]["extensions"]["limit"], "projects");
        assert_eq!(body["errors"][0]["extensions"]["max"], 3);

        let (status, _, body) = answer(ApiError::bad_input("format", "jsonl or csv")).await;
        assert_eq!(status, 400);
        assert_eq!(body["errors"][0]["extensions"]["field"], "format");

        let lost = sea_orm::DbErr::ConnectionAcquire(sea_orm::ConnAcquireErr::Timeout);
        let (status, retry, body) = answer(ApiError::Db(lost)).await;
        assert_eq!((status, retry.as_deref()), (503, Some("1")));
        assert_eq!(body["errors"][0]["message"], UNAVAILABLE_MESSAGE);

        let (status, _, body) =
            answer(ApiError::Db(sea_orm::DbErr::Custom("SELECT secret".into()))).await;
        assert_eq!(status, 500);
        assert_eq!(
            body["errors"][0]["message"], "internal error",
            "never the database's text"
        );
    }
}
