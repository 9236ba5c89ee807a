//! Errors of billing.

use kernel::{ClientError, Details};

/// What can go wrong computing money or recording usage.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Amounts of different currencies were combined.
    #[error("cannot combine {left} and {right} amounts")]
    CurrencyMismatch {
        /// One currency.
        left: String,
        /// The other.
        right: String,
    },
    /// A currency the platform does not bill in.
    #[error("unknown currency {0}")]
    UnknownCurrency(String),
    /// A price definition that cannot be used.
    #[error("invalid {field}: {reason}")]
    InvalidPrice {
        /// The field.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// A date outside what a period allows.
    #[error("invalid period: {0}")]
    InvalidPeriod(String),
    /// An amount beyond what can be represented.
    #[error("amount out of range")]
    Overflow,
    /// Malformed usage input.
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// The input field.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// An idempotency key already recorded with another payload.
    #[error("usage key {key} of metric {metric} was recorded with another payload")]
    KeyConflict {
        /// The metric.
        metric: String,
        /// The key.
        key: String,
    },
    /// A catalog change that contradicts what is stored.
    #[error("{0}")]
    CatalogConflict(String),
    /// No plan has this code (or it has no published version).
    #[error("no plan `{0}`")]
    UnknownPlan(String),
    /// Something this organization does not have.
    #[error("no {0}")]
    NotFound(&'static str),
    /// The organization is on that plan's latest version already.
    #[error("already on the latest version of plan `{0}`")]
    AlreadyOnPlan(String),
    /// The subscription is suspended for non-payment.
    #[error("payment required: the subscription is suspended until its open invoice is paid")]
    PaymentRequired,
    /// A payment provider failed to answer.
    #[error("payment provider: {0}")]
    Provider(String),
    /// The invoice is not in a state that allows this.
    #[error("the invoice is {}", sea_orm::ActiveEnum::to_value(.0))]
    InvoiceState(crate::entity::invoice::InvoiceStatus),
    /// The subscription already ends at the period's end.
    #[error("the subscription is already cancelled at the end of its period")]
    AlreadyCanceled,
    /// What the organization has exceeds what a plan allows.
    #[error(transparent)]
    LimitExceeded(#[from] kernel::LimitExceeded),
    /// A hard metered quota of the plan is used up for this period.
    #[error("the plan's {max} {metric} per period are used up")]
    QuotaExceeded {
        /// The metric.
        metric: String,
        /// What the plan allows per period.
        max: u64,
        /// What the period has used.
        usage: u64,
    },
    /// A permission decision failed or a permit did not fit.
    #[error(transparent)]
    Authz(#[from] authz::Error),
    /// Recording the change failed.
    #[error(transparent)]
    Audit(#[from] audit::Error),
    /// A stored value does not parse (a bug, a hand edit or a bad migration): never
    /// replaced by a default, answered as an internal error.
    #[error("corrupt stored {column}: {value}")]
    Corrupt {
        /// `table.column`.
        column: &'static str,
        /// The value as stored (codes, statuses, rates: never personal data).
        value: String,
    },
    /// The database failed.
    #[error(transparent)]
    Db(#[from] sea_orm::DbErr),
}

/// The error for a stored value that does not parse, logged once where it is made.
pub(crate) fn corrupt(column: &'static str, value: impl std::fmt::Display) -> Error {
    let value = value.to_string();
    tracing::error!(column, value = %value, "corrupt stored value");
    Error::Corrupt { column, value }
}

/// Results of billing computations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl ClientError for Error {
    fn code(&self) -> kernel::ErrorCode {
        use kernel::ErrorCode;
        match self {
            Self::CurrencyMismatch { .. }
            | Self::UnknownCurrency(_)
            | Self::InvalidPrice { .. }
            | Self::InvalidPeriod(_)
            | Self::Invalid { .. } => ErrorCode::BadUserInput,
            Self::KeyConflict { .. } | Self::CatalogConflict(_) => ErrorCode::Conflict,
            Self::UnknownPlan(_) => ErrorCode::BadUserInput,
            Self::AlreadyOnPlan(_) | Self::AlreadyCanceled | Self::InvoiceState(_) => {
                ErrorCode::Conflict
            }
            Self::LimitExceeded(exceeded) => exceeded.code(),
            Self::QuotaExceeded { .. } => ErrorCode::LimitExceeded,
            Self::NotFound(_) => ErrorCode::NotFound,
            Self::Authz(e) => e.code(),
            Self::Audit(e) => e.code(),
            Self::Overflow => ErrorCode::BadUserInput,
            Self::PaymentRequired => ErrorCode::PaymentRequired,
            Self::Provider(_) | Self::Corrupt { .. } => ErrorCode::Internal,
            Self::Db(e) => kernel::db_error_code(e),
        }
    }

    fn details(&self) -> Details {
        match self {
            Self::Invalid { field, .. } | Self::InvalidPrice { field, .. } => Details::field(field),
            Self::KeyConflict { metric, key } => Details::none()
                .with("metric", metric.as_str())
                .with("key", key.as_str()),
            Self::LimitExceeded(exceeded) => exceeded.details(),
            Self::QuotaExceeded { metric, max, usage } => Details::none()
                .with("limit", metric.as_str())
                .with("max", *max)
                .with("usage", *usage),
            Self::Authz(e) => e.details(),
            Self::Audit(e) => e.details(),
            _ => Details::none(),
        }
    }
}
