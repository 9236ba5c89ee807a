//! The business records that prove the foundations carry real work: every record is
//! tenant-scoped, every read and change needs a permit, every change and decision is
//! audited in its transaction, lists are filtered in SQL by the caller's policy, and
//! creation asks the plan's limits. Projects, and their documents with immutable
//! versions and an approval workflow.

pub mod data_map;
mod documents;
mod entity;
pub mod error;
mod history;
mod limits;
pub mod model;
mod service;

pub use documents::DocumentService;
pub use error::{Error, Result};
pub use history::version_key;
pub use model::{
    Document, DocumentFilter, DocumentStatus, DocumentVersion, EditDocument, NewDocument,
    NewProject, Project, Review, ReviewDecision, Transition, UpdateProject,
};
pub use service::{ProjectService, UncheckedProject};
