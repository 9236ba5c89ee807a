//! Errors of the core domain.

use kernel::ErrorCode;
use sea_orm::DbErr;

/// What can go wrong with projects.
#[derive(Debug, thiserror::Error)]
pub enum Error {
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
        /// What is wrong.
        reason: String,
    },
    /// A permission decision failed or a permit did not fit.
    #[error(transparent)]
    Authz(#[from] authz::Error),
    /// Recording the change failed.
    #[error(transparent)]
    Audit(#[from] audit::Error),
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbErr),
}

/// Results of core-domain services.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The code clients see.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::NotFound { .. } => ErrorCode::NotFound,
            Self::Invalid { .. } => ErrorCode::BadUserInput,
            Self::Authz(e) => e.code(),
            Self::Audit(e) => e.code(),
            Self::Db(_) => ErrorCode::Internal,
        }
    }
}
