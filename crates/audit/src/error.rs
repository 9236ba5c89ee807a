//! Errors of the audit crate.

use kernel::{ClientError, Details, ErrorCode};
use sea_orm::DbErr;

/// What can go wrong recording or reading the trail.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Malformed input (a filter).
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// The input field.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// Encryption of personal data failed (a bug or a corrupt key).
    #[error("personal data encryption: {0}")]
    Crypto(String),
    /// A verification worker panicked or was cancelled.
    #[error("verification worker: {0}")]
    Worker(String),
    /// A stored event does not parse (a bug or a hand edit).
    #[error("corrupt audit event: {0}")]
    Corrupt(String),
    /// Serializing an event failed.
    #[error("serializing an event: {0}")]
    Serialize(#[from] serde_json::Error),
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbErr),
}

/// Results of audit services.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl ClientError for Error {
    fn code(&self) -> ErrorCode {
        match self {
            Self::Invalid { .. } => ErrorCode::BadUserInput,
            Self::Crypto(_) | Self::Worker(_) | Self::Corrupt(_) | Self::Serialize(_) => {
                ErrorCode::Internal
            }
            Self::Db(e) => kernel::db_error_code(e),
        }
    }

    fn details(&self) -> Details {
        Details::none()
    }
}
