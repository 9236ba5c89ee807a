//! The tables this crate owns; private to the crate.

pub(crate) mod usage_event;
