//! Errors of the core domain.

use crate::model::{DocumentStatus, Transition};
use kernel::ErrorCode;
use sea_orm::DbErr;

/// What can go wrong with projects and documents.
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
    /// The plan allows no more of this.
    #[error("the plan allows {max} {}; {usage} in use", limit.as_str().replace('_', " "))]
    LimitExceeded {
        /// Which limit.
        limit: kernel::Limit,
        /// The limit.
        max: u64,
        /// Current usage.
        usage: u64,
    },
    /// The workflow does not allow this step from the document's status.
    #[error("cannot {} a document that is {status}", transition.verb())]
    IllegalTransition {
        /// The document's current status.
        status: DocumentStatus,
        /// The refused step.
        transition: Transition,
    },
    /// Four eyes: an author does not approve their own document.
    #[error("authors cannot approve their own documents")]
    SelfApproval,
    /// The reviewer already approved in this review round.
    #[error("you already approved this version")]
    AlreadyApproved,
    /// The project is archived: its documents are read-only.
    #[error("the project is archived")]
    ProjectArchived,
    /// A permission decision failed or a permit did not fit.
    #[error(transparent)]
    Authz(#[from] authz::Error),
    /// Recording the change failed.
    #[error(transparent)]
    Audit(#[from] audit::Error),
    /// Recording the usage failed.
    #[error(transparent)]
    Usage(#[from] billing::Error),
    /// A stored value does not parse (a bug, a hand edit or a bad migration): never
    /// replaced by a default, answered as an internal error.
    #[error("corrupt stored {column}: {value}")]
    Corrupt {
        /// `table.column`.
        column: &'static str,
        /// The value as stored (ids, statuses and counters only).
        value: String,
    },
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
            Self::LimitExceeded { .. } => ErrorCode::LimitExceeded,
            Self::IllegalTransition { .. } | Self::AlreadyApproved | Self::ProjectArchived => {
                ErrorCode::Conflict
            }
            Self::SelfApproval => ErrorCode::Forbidden,
            Self::Corrupt { .. } => ErrorCode::Internal,
            Self::Authz(e) => e.code(),
            Self::Audit(e) => e.code(),
            Self::Usage(e) => e.code(),
            Self::Db(e) => kernel::db_error_code(e),
        }
    }
}
