//! Errors of the tenancy crate, each with the stable code clients see.

use kernel::{ClientError, Details, ErrorCode};
use sea_orm::DbErr;

/// What can go wrong in tenancy.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The plan allows no more of this.
    #[error(transparent)]
    LimitExceeded(#[from] kernel::LimitExceeded),
    /// Wrong email or password. Says nothing about which of the two.
    #[error("invalid email or password")]
    InvalidCredentials,
    /// A missing, malformed, tampered, expired or revoked token or key.
    #[error("the credentials are invalid, expired or revoked")]
    InvalidToken,
    /// Too many failed log-ins for the account or the address.
    #[error("too many failed log-in attempts; try again in {retry_after_secs} seconds")]
    Throttled {
        /// Seconds until the oldest counted failure leaves the window.
        retry_after_secs: i64,
    },
    /// The caller is not a member of the organization it named.
    #[error("you are not a member of this organization")]
    NotMember,
    /// The caller's role does not allow this.
    #[error("{0}")]
    Forbidden(String),
    /// No such record in this organization (or none the caller may see).
    #[error("{entity} not found")]
    NotFound {
        /// What was looked for.
        entity: &'static str,
    },
    /// Malformed input.
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// The input field.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The request clashes with the current state.
    #[error("{0}")]
    Conflict(String),
    /// The organization has not accepted the current data processing agreement.
    #[error("an owner must accept the current data processing agreement first")]
    DpaNotAccepted,
    /// The organization is pending deletion: nothing changes in it but cancelling that,
    /// and only its owners may enter it.
    #[error("the organization is pending deletion; an owner may cancel the deletion")]
    PendingDeletion,
    /// More of something than the platform keeps per organization.
    #[error(transparent)]
    TooMany(#[from] kernel::TooMany),
    /// The change would leave the organization without an owner.
    #[error("an organization must keep at least one owner")]
    LastOwner,
    /// Password hashing failed (a bug or resource exhaustion, never the user's fault).
    #[error("password hashing failed: {0}")]
    Hashing(String),
    /// A permission decision or change failed.
    #[error(transparent)]
    Authz(#[from] authz::Error),
    /// Recording the change in the audit trail failed.
    #[error(transparent)]
    Audit(#[from] audit::Error),
    /// Enqueueing the work a change causes failed.
    #[error(transparent)]
    Jobs(#[from] jobs::Error),
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbErr),
}

/// Results of tenancy services.
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
            Self::InvalidCredentials | Self::InvalidToken => ErrorCode::Unauthenticated,
            Self::Throttled { .. } => ErrorCode::RateLimited,
            Self::LimitExceeded(exceeded) => exceeded.code(),
            Self::TooMany(capped) => capped.code(),
            Self::NotMember | Self::Forbidden(_) | Self::DpaNotAccepted => ErrorCode::Forbidden,
            Self::NotFound { .. } => ErrorCode::NotFound,
            Self::Invalid { .. } => ErrorCode::BadUserInput,
            Self::Conflict(_) | Self::LastOwner | Self::PendingDeletion => ErrorCode::Conflict,
            Self::Authz(e) => e.code(),
            Self::Audit(e) => e.code(),
            Self::Jobs(e) => e.code(),
            Self::Hashing(_) => ErrorCode::Internal,
            Self::Db(e) => kernel::db_error_code(e),
        }
    }

    fn details(&self) -> Details {
        match self {
            Self::Throttled { retry_after_secs } => Details::none().with(
                "retryAfterSeconds",
                u64::try_from(*retry_after_secs).unwrap_or_default(),
            ),
            Self::LimitExceeded(exceeded) => exceeded.details(),
            Self::TooMany(capped) => capped.details(),
            Self::LastOwner => Details::reason("LAST_OWNER"),
            Self::DpaNotAccepted => Details::reason("DPA_NOT_ACCEPTED"),
            Self::PendingDeletion => Details::reason("PENDING_DELETION"),
            Self::Invalid { field, .. } => Details::field(field),
            Self::Authz(e) => e.details(),
            Self::Audit(e) => e.details(),
            Self::Jobs(e) => e.details(),
            _ => Details::none(),
        }
    }
}
