//! Errors of the authz crate.

use kernel::{ClientError, Details, ErrorCode};
use sea_orm::DbErr;

/// What can go wrong deciding or changing permissions.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The policy does not allow this.
    #[error("not allowed to {action} this {resource}")]
    Denied {
        /// The action asked for.
        action: String,
        /// The resource type.
        resource: String,
    },
    /// A permit was presented for something it does not cover (a bug in the caller).
    #[error("the permit does not cover this operation")]
    PermitMismatch,
    /// The caller tried to hand out more than they hold.
    #[error("you cannot grant permissions you do not hold yourself: {0}")]
    Escalation(String),
    /// Malformed input (unknown role, type, action, relation).
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// The input field.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// No such role or grant in this organization.
    #[error("{entity} not found")]
    NotFound {
        /// What was looked for.
        entity: &'static str,
    },
    /// The change clashes with the current state (a duplicate role name, a role in use).
    #[error("{0}")]
    Conflict(String),
    /// The organization already has as many of something as the platform allows.
    #[error(transparent)]
    TooMany(#[from] kernel::TooMany),
    /// The policy engine failed.
    #[error("policy engine: {0}")]
    Engine(String),
    /// Recording the change in the audit trail failed.
    #[error(transparent)]
    Audit(#[from] audit::Error),
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbErr),
}

/// Results of authz services.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Self::Invalid {
            field,
            reason: reason.into(),
        }
    }
}

impl From<casbin::Error> for Error {
    fn from(e: casbin::Error) -> Self {
        Self::Engine(e.to_string())
    }
}

impl ClientError for Error {
    fn code(&self) -> ErrorCode {
        match self {
            Self::Denied { .. } | Self::Escalation(_) => ErrorCode::Forbidden,
            Self::Invalid { .. } => ErrorCode::BadUserInput,
            Self::NotFound { .. } => ErrorCode::NotFound,
            Self::Conflict(_) => ErrorCode::Conflict,
            Self::TooMany(capped) => capped.code(),
            Self::Audit(e) => e.code(),
            Self::PermitMismatch | Self::Engine(_) => ErrorCode::Internal,
            Self::Db(e) => kernel::db_error_code(e),
        }
    }

    fn details(&self) -> Details {
        match self {
            Self::Escalation(_) => Details::reason("ESCALATION"),
            Self::Invalid { field, .. } => Details::field(field),
            Self::TooMany(capped) => capped.details(),
            _ => Details::none(),
        }
    }
}
