//! A durable job queue in the database (table `jobs`, migration m0034), for work that
//! outlives a request: the billing run's organizations today; deliveries and exports
//! next.
//!
//! - **Enqueued in the transaction that causes it** ([`Jobs::enqueue`] takes the caller's
//!   connection or transaction), so a job exists exactly when its cause committed.
//! - **Deduplicated** by `(kind, unique_key)`: enqueueing a key twice keeps one job (e.g.
//!   one billing job per organization and period, however many instances schedule it).
//! - **Claimed with a lease** ([`Jobs::claim`]): on PostgreSQL `FOR UPDATE SKIP LOCKED`,
//!   so instances share the work and never take the same job; SQLite has one writer at a
//!   time anyway. A running job's worker renews its lease ([`Jobs::heartbeat`]); a job
//!   whose lease ran out (its worker died) is claimed again. Handlers must therefore be
//!   idempotent: a job runs at least once, its effect must happen once.
//! - **Retried** with exponential backoff and jitter ([`retry_delay`]), then **dead**
//!   with its last error after `max_attempts`; an operator retries or cancels it
//!   (`platform jobs list|retry|cancel`).
//! - Payloads carry ids, never personal data (the data map says so).
//!
//! Times come from the injectable clock, so tests move retries and leases forward.

pub mod data_map;
mod error;
mod queue;
mod worker;

pub use error::{Error, Result};
pub use queue::{Job, JobCount, JobState, Jobs, NewJob, retry_delay};
pub use worker::{Handler, HandlerFuture, Worker, WorkerSettings};
