//! Outbound webhooks: integrations (ERP, CRM, webshops) learn about an organization's
//! changes as signed HTTP requests.
//!
//! - **Endpoints** per organization, managed by its admins ([`Webhooks::create_endpoint`]
//!   and friends): a URL, the event types it wants from the [`catalog`], a signing secret
//!   (`whsec_…`, shown once), enabled or disabled.
//! - **The audit trail is the outbox.** Every change already writes its audit event in
//!   its own transaction, so an event exists exactly when its change committed. A
//!   dispatcher follows each organization's chain from a cursor (`webhook_cursors`),
//!   turns events of the catalog into messages (`webhook_messages`, the message id is the
//!   event id) and fans them out to the endpoints that want them (`webhook_deliveries`),
//!   enqueueing one delivery job each, all in one transaction.
//! - **Deliveries** are signed per the Standard Webhooks specification ([`signing`]),
//!   sent over guarded egress ([`egress`]: https only, public addresses only, no
//!   redirects, 10 s, bounded response), retried on [`RETRY_SCHEDULE`] with jitter; an
//!   endpoint failing for [`DISABLE_AFTER`] (through a delivery's last attempt) is
//!   disabled and an event says so.
//! - At least once: a receiver deduplicates by `webhook-id`. No order is guaranteed
//!   (deliveries run concurrently and retries do not hold back later ones); a receiver
//!   that needs order compares `createdAt` (and the ids, UUIDv7, which sort by time).

pub mod catalog;
pub mod data_map;
pub mod egress;
mod entity;
mod error;
mod model;
mod service;
pub mod signing;

pub use error::{Error, Result};
pub use model::{
    Attempt, Delivery, DeliveryStatus, Endpoint, EndpointChange, NewEndpoint, Prepared,
};
pub use service::{
    DELIVER, DELIVERY_LOG_KEPT, DISABLE_AFTER, FanOut, PREVIOUS_SECRET_SIGNS, RETRY_SCHEDULE,
    Webhooks,
};
