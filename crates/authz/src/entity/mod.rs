//! One module per table this crate owns; private to the crate.

pub(crate) mod custom_role;
pub(crate) mod policy_version;
pub(crate) mod record_grant;
pub(crate) mod role_assignment;
pub(crate) mod rule;
