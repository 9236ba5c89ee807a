//! The tables this crate owns; private to the crate.

pub(crate) mod document;
pub(crate) mod document_review;
pub(crate) mod document_version;
pub(crate) mod project;
