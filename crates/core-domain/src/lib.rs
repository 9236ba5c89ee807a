//! The business records that prove the foundations carry real work: every record is
//! tenant-scoped, every read and change needs a permit, every change is audited in its
//! transaction, and lists are filtered in SQL by the caller's policy. Projects first;
//! documents and their approval workflow follow.

mod entity;
pub mod error;
pub mod model;
mod service;

pub use error::{Error, Result};
pub use model::{NewProject, Project, UpdateProject};
pub use service::ProjectService;
