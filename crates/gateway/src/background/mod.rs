//! Work that outlives a request: the job kinds this server runs on the durable queue
//! (crate `jobs`) and what they do, and the timers that enqueue the periodic ones.
//!
//! - `job_kinds`: each kind's name, worker and handler (a new kind goes there);
//! - `schedule`: the timers (billing run, retention run, webhook dispatch);
//! - `billing_run`, `retention_run`, `data_export`: the work itself;
//! - `webhook_dispatch`: fans the audit trail out to webhook deliveries.
//!
//! Not `jobs`: that name is the queue's crate.

pub mod billing_run;
pub mod data_export;
pub mod job_kinds;
pub mod retention_run;
pub mod schedule;
pub mod webhook_dispatch;
