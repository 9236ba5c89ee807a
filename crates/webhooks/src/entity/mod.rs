//! One module per table this crate owns (private: other crates use the service).

pub(crate) mod webhook_delivery;
pub(crate) mod webhook_endpoint;
pub(crate) mod webhook_message;
