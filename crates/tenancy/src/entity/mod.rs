//! One module per table this crate owns. Private to the crate: other crates use the
//! services, never these.

pub(crate) mod api_key;
pub(crate) mod data_export;
pub(crate) mod dpa_acceptance;
pub(crate) mod dpa_version;
pub(crate) mod erasure_request;
pub(crate) mod idempotency_key;
pub(crate) mod invitation;
pub(crate) mod login_failure;
pub(crate) mod login_throttle;
pub(crate) mod membership;
pub(crate) mod organization;
pub(crate) mod organization_purge;
pub(crate) mod platform_trusted_document;
pub(crate) mod session;
pub(crate) mod trusted_document;
pub(crate) mod user;
