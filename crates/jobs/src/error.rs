//! Errors of the job queue.

use kernel::{ClientError, Details, ErrorCode};
use sea_orm::DbErr;

/// What can go wrong with the queue itself (a job's own failure is its handler's text).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No job has this id.
    #[error("no job {0}")]
    NotFound(uuid::Uuid),
    /// The job is not in a state that allows this (e.g. cancelling a running job).
    #[error("job {id} is {state}: {action} is for {allowed} jobs")]
    WrongState {
        /// The job.
        id: uuid::Uuid,
        /// Its state.
        state: String,
        /// What was asked.
        action: &'static str,
        /// The states that allow it.
        allowed: String,
    },
    /// A stored row does not parse (a bug or a hand edit).
    #[error("corrupt job row: {0}")]
    Corrupt(String),
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbErr),
}

/// Results of the queue.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl ClientError for Error {
    fn code(&self) -> ErrorCode {
        match self {
            Self::NotFound(_) => ErrorCode::NotFound,
            Self::WrongState { .. } => ErrorCode::Conflict,
            Self::Corrupt(_) => ErrorCode::Internal,
            Self::Db(e) => kernel::db_error_code(e),
        }
    }

    fn details(&self) -> Details {
        Details::none()
    }
}
