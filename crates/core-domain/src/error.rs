//! Errors of the core domain.

use crate::model::{DocumentStatus, Transition};
use kernel::{ClientError, Details, ErrorCode};
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
    #[error(transparent)]
    LimitExceeded(#[from] kernel::LimitExceeded),
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

impl ClientError for Error {
    fn code(&self) -> ErrorCode {
        match self {
            Self::NotFound { .. } => ErrorCode::NotFound,
            Self::Invalid { .. } => ErrorCode::BadUserInput,
            Self::LimitExceeded(exceeded) => exceeded.code(),
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

    fn details(&self) -> Details {
        match self {
            Self::Invalid { field, .. } => Details::field(field),
            Self::LimitExceeded(exceeded) => exceeded.details(),
            // The status as the domain names it; the gateway shows it as the API does.
            Self::IllegalTransition { status, .. } => {
                Details::none().with("status", sea_orm::ActiveEnum::to_value(status))
            }
            Self::SelfApproval => Details::reason("FOUR_EYES"),
            Self::Authz(e) => e.details(),
            Self::Audit(e) => e.details(),
            Self::Usage(e) => e.details(),
            _ => Details::none(),
        }
    }
}
