//! The stable error codes that reach clients as `extensions.code`. Every crate's error
//! enum maps each of its variants to one of these in an exhaustive `code()`, so adding a
//! variant forces a decision about what clients see.

use serde::Serialize;

/// A machine-readable error category, stable across releases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    /// No valid credentials: missing, wrong, expired or tampered.
    Unauthenticated,
    /// Authenticated, but not allowed to do this here.
    Forbidden,
    /// The record does not exist, or exists where the caller cannot see it.
    NotFound,
    /// The input is malformed or breaks a rule about its own shape.
    BadUserInput,
    /// The input is fine but clashes with the current state.
    Conflict,
    /// A plan limit would be exceeded.
    LimitExceeded,
    /// The organization's subscription is suspended for non-payment: reads work, writes
    /// other than billing, export and deletion wait for payment.
    PaymentRequired,
    /// Too many attempts in a short time; try again later.
    RateLimited,
    /// The request body could not be parsed as GraphQL.
    GraphqlParseFailed,
    /// The document does not validate against the schema.
    GraphqlValidationFailed,
    /// The document nests deeper than the server allows.
    QueryTooDeep,
    /// The document is more complex than the server allows.
    QueryTooComplex,
    /// The document is longer, or has more tokens, than the server reads.
    QueryTooLarge,
    /// The request is not allowed over this HTTP method or in this shape.
    BadRequest,
    /// No document with the id the request named is known to the caller (an APQ
    /// client then sends the text with the id).
    PersistedQueryNotFound,
    /// The caller may run trusted documents only, by id; this request sent text.
    PersistedQueryNotInList,
    /// The database could not be reached or the connection was lost; nothing was
    /// changed unless the failure hit the commit itself. Retry after `Retry-After`.
    ServiceUnavailable,
    /// The request ran past its deadline and was stopped.
    Timeout,
    /// Something failed on our side; details are in the server log, not the response.
    Internal,
}

impl ErrorCode {
    /// The code as it appears in `extensions.code`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Unauthenticated => "UNAUTHENTICATED",
            Self::Forbidden => "FORBIDDEN",
            Self::NotFound => "NOT_FOUND",
            Self::BadUserInput => "BAD_USER_INPUT",
            Self::Conflict => "CONFLICT",
            Self::LimitExceeded => "LIMIT_EXCEEDED",
            Self::PaymentRequired => "PAYMENT_REQUIRED",
            Self::RateLimited => "RATE_LIMITED",
            Self::GraphqlParseFailed => "GRAPHQL_PARSE_FAILED",
            Self::GraphqlValidationFailed => "GRAPHQL_VALIDATION_FAILED",
            Self::QueryTooDeep => "QUERY_TOO_DEEP",
            Self::QueryTooComplex => "QUERY_TOO_COMPLEX",
            Self::QueryTooLarge => "QUERY_TOO_LARGE",
            Self::BadRequest => "BAD_REQUEST",
            Self::PersistedQueryNotFound => "PERSISTED_QUERY_NOT_FOUND",
            Self::PersistedQueryNotInList => "PERSISTED_QUERY_NOT_IN_LIST",
            Self::ServiceUnavailable => "SERVICE_UNAVAILABLE",
            Self::Timeout => "TIMEOUT",
            Self::Internal => "INTERNAL",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
