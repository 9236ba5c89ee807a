//! The tables this crate owns; private to the crate.

pub(crate) mod billing_metric;
pub(crate) mod invoice;
pub(crate) mod invoice_item;
pub(crate) mod invoice_line;
pub(crate) mod plan;
pub(crate) mod plan_version;
pub(crate) mod subscription;
pub(crate) mod usage_event;
