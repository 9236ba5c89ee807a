//! The tables this crate owns; private to the crate.

pub(crate) mod audit_event;
pub(crate) mod audit_purge;
pub(crate) mod audit_retention;
pub(crate) mod personal_data_key;
