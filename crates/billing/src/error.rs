//! Errors of billing.

/// What can go wrong computing money.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
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
}

/// Results of billing computations.
pub type Result<T, E = Error> = std::result::Result<T, E>;
