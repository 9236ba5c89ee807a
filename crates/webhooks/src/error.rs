//! Errors of the webhooks crate, each with the stable code clients see.

use kernel::{ClientError, Details, ErrorCode};
use sea_orm::DbErr;

/// What can go wrong with endpoints and deliveries.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No such endpoint or delivery in this organization.
    #[error("{entity} not found")]
    NotFound {
        /// What was looked for.
        entity: &'static str,
    },
    /// Malformed input.
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// The input field, as the client wrote it.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// More endpoints than an organization may have.
    #[error(transparent)]
    TooMany(#[from] kernel::TooMany),
    /// A stored row does not parse (a bug or a hand edit).
    #[error("corrupt webhook row: {0}")]
    Corrupt(String),
    /// A permission decision failed.
    #[error(transparent)]
    Authz(#[from] authz::Error),
    /// Recording the change in the audit trail failed.
    #[error(transparent)]
    Audit(#[from] audit::Error),
    /// Enqueueing a delivery failed.
    #[error(transparent)]
    Jobs(#[from] jobs::Error),
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbErr),
}

/// Results of the webhooks service.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Self::Invalid {
            field,
            reason: reason.into(),
        }
    }
}

impl ClientError for Error {
    fn code(&self) -> ErrorCode {
        match self {
            Self::NotFound { .. } => ErrorCode::NotFound,
            Self::Invalid { .. } => ErrorCode::BadUserInput,
            Self::TooMany(capped) => capped.code(),
            Self::Corrupt(_) => ErrorCode::Internal,
            Self::Authz(e) => e.code(),
            Self::Audit(e) => e.code(),
            Self::Jobs(e) => e.code(),
            Self::Db(e) => kernel::db_error_code(e),
        }
    }

    fn details(&self) -> Details {
        match self {
            Self::Invalid { field, .. } => Details::field(field),
            Self::TooMany(capped) => capped.details(),
            Self::Authz(e) => e.details(),
            Self::Audit(e) => e.details(),
            Self::Jobs(e) => e.details(),
            _ => Details::none(),
        }
    }
}
