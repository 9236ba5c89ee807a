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

/// A value of an error's detail: text or a count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Detail {
    /// Text (a reason, a field name, a key).
    Text(String),
    /// A count or a number of seconds.
    Number(u64),
}

impl From<&str> for Detail {
    fn from(text: &str) -> Self {
        Self::Text(text.to_owned())
    }
}

impl From<String> for Detail {
    fn from(text: String) -> Self {
        Self::Text(text)
    }
}

impl From<u64> for Detail {
    fn from(number: u64) -> Self {
        Self::Number(number)
    }
}

/// What an error tells a client besides its message and code: the extensions beside
/// `extensions.code` (`limit`, `max`, `usage`, `reason`, `field`, `retryAfterSeconds`, …),
/// named as clients read them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Details(Vec<(&'static str, Detail)>);

impl Details {
    /// No details.
    pub fn none() -> Self {
        Self::default()
    }

    /// These details and `key`.
    pub fn with(mut self, key: &'static str, value: impl Into<Detail>) -> Self {
        self.0.push((key, value.into()));
        self
    }

    /// A `reason` alone (a stable name for why, beside the code).
    pub fn reason(reason: &'static str) -> Self {
        Self::none().with("reason", reason)
    }

    /// A `field` alone: the input the error is about, as the client wrote it.
    pub fn field(field: &str) -> Self {
        Self::none().with("field", field)
    }

    /// Each detail, in the order given.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &Detail)> {
        self.0.iter().map(|(key, value)| (*key, value))
    }
}

/// Every crate's error, as a client meets it: a stable code, and the details that go with
/// it. The gateway turns any of them into a GraphQL error (or an HTTP answer) in one
/// place; a crate adding a variant decides both here, next to the variant.
pub trait ClientError: std::error::Error {
    /// The code clients see.
    fn code(&self) -> ErrorCode;

    /// The extensions beside the code; none by default.
    fn details(&self) -> Details {
        Details::none()
    }
}

/// A plan limit that would be exceeded: the one error every service that creates raises
/// when the organization's plan allows no more (`LIMIT_EXCEEDED` with `limit`, `max` and
/// `usage`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the plan allows {max} {}; {usage} in use", limit.as_str().replace('_', " "))]
pub struct LimitExceeded {
    /// Which limit.
    pub limit: crate::Limit,
    /// What the plan allows.
    pub max: u64,
    /// What the organization has (or would have).
    pub usage: u64,
}

impl ClientError for LimitExceeded {
    fn code(&self) -> ErrorCode {
        ErrorCode::LimitExceeded
    }

    fn details(&self) -> Details {
        Details::none()
            .with("limit", self.limit.as_str())
            .with("max", self.max)
            .with("usage", self.usage)
    }
}

/// A fixed cap of the platform (not of the plan) that would be exceeded: so many custom
/// roles, webhook endpoints, trusted documents (`LIMIT_EXCEEDED` with `limit` and `max`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("an organization may have at most {max} {what}")]
pub struct TooMany {
    /// What is capped, as clients read it in `limit` (`custom_roles`, …).
    pub what: &'static str,
    /// The cap.
    pub max: u64,
}

impl ClientError for TooMany {
    fn code(&self) -> ErrorCode {
        ErrorCode::LimitExceeded
    }

    fn details(&self) -> Details {
        Details::none()
            .with("limit", self.what)
            .with("max", self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_limit_names_itself_its_cap_and_the_usage() {
        let exceeded = LimitExceeded {
            limit: crate::Limit::DocumentsPerProject,
            max: 10,
            usage: 10,
        };
        assert_eq!(
            exceeded.to_string(),
            "the plan allows 10 documents per project; 10 in use"
        );
        assert_eq!(exceeded.code(), ErrorCode::LimitExceeded);
        let details: Vec<_> = exceeded.details().iter().map(|(k, _)| k).collect();
        assert_eq!(details, ["limit", "max", "usage"]);
        let capped = TooMany {
            what: "custom roles",
            max: 50,
        };
        assert_eq!(
            capped.details(),
            Details::none()
                .with("limit", "custom roles")
                .with("max", 50u64)
        );
    }
}
