//! The audit trail: one event per change or decision, written by the same transaction as
//! the change ([`AuditLog::record`]), append-only in the database, chained per
//! organization with SHA-256 so that a changed, missing or reordered event is found by
//! [`AuditLog::verify`], and with personal data encrypted per person so that erasing a
//! person leaves `[erased]` and a chain that still verifies.

mod chain;
mod entity;
pub mod error;
pub mod model;
mod pii;
mod retention;
mod service;

pub use chain::GENESIS;
pub use error::{Error, Result};
pub use model::{
    AuditEvent, BrokenLink, Change, EventFilter, NewEvent, Outcome, ReadChange, VerifyReport,
};
pub use pii::ERASED;
pub use retention::{PURGED, PurgeReport};
pub use service::AuditLog;
