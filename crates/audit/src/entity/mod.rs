//! The tables this crate owns; private to the crate.

pub(crate) mod audit_event;
pub(crate) mod personal_data_key;
